"""The --json report against its published JSON Schema (nvmc/schema/report.schema.json),
for every shipped target (`nvmc targets --json`, so targets added later are covered)."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import onnx
import pytest
from click.testing import CliRunner

from conftest import REPO, run_nvmc
from nvmc.report import REPORT_SCHEMA_PATH, render_html, report_schema

jsonschema = pytest.importorskip("jsonschema", reason="jsonschema is a dev dependency: pip install -e '.[dev]'")

TINY_CNN = REPO / "examples" / "models" / "tiny_cnn.onnx"


def validator():
    return jsonschema.Draft202012Validator(report_schema())


def hdc_model(folder: Path) -> Path:
    """A small HDC classifier (nvmc.validate.nets.hdc_query, as examples/hdc builds it): for the
    families that cost only HDC models."""
    from nvmc.validate.nets import hdc_query

    rng = np.random.default_rng(0)
    im = rng.integers(0, 2, size=(27, 256)).astype(bool)  # a-z and space
    am = rng.integers(0, 2, size=(3, 256)).astype(bool)
    path = folder / "hdc.onnx"
    onnx.save(hdc_query(im, am, length=16, n=3), path)
    return path


@pytest.fixture(scope="module")
def reports(tmp_path_factory) -> dict[str, dict]:
    """target name -> the report `nvmc compile --json -` printed for it (in-process CLI runs).

    Each target gets the first model it accepts: tiny_cnn, else the HDC example through
    `--passes hdc-recognize`. A target that takes neither fails the test, naming why."""
    from nvmc.cli import cli

    folder = tmp_path_factory.mktemp("schema")
    names = [r["name"] for r in json.loads(run_nvmc("targets", "--json", check=True).stdout)]
    assert {"sram", "stt-mram", "sot-mram"} <= set(names)
    candidates = [[str(TINY_CNN)], [str(hdc_model(folder)), "--passes", "hdc-recognize"]]
    runner = CliRunner()
    out, failures = {}, {}
    for name in names:
        for args in candidates:
            result = runner.invoke(cli, ["compile", *args, "--target", name, "--json", "-", "-q"])
            clean = result.exception is None or isinstance(result.exception, SystemExit)
            if clean and result.exit_code in (0, 1):             # 1: does not fit, still a report
                out[name] = json.loads(result.stdout)
                break
            failures.setdefault(name, []).append(f"{' '.join(args)}: {result.exception}")
    missing = {n: failures[n] for n in names if n not in out}
    assert not missing, "targets that produced no report:\n" + "\n".join(f"{n}: {w}" for n, w in missing.items())
    return out


def test_the_schema_is_a_valid_json_schema():
    schema = json.loads(REPORT_SCHEMA_PATH.read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    assert schema["properties"]["schema"]["const"] == "nvmc.report/1"
    from nvmc.backends import REPORT_SCHEMA
    assert REPORT_SCHEMA == "nvmc.report/1"


def test_every_target_report_validates(reports):
    check = validator()
    for name, report in reports.items():
        errors = sorted(check.iter_errors(report), key=lambda e: list(e.path))
        assert not errors, f"{name}: " + "; ".join(f"{list(e.path)}: {e.message}" for e in errors[:5])
        assert report["target"]["name"] == name


def test_every_target_report_renders_as_html(reports):
    for name, report in reports.items():
        text = render_html(report, {}, generated="test")
        assert f"on {name}</title>" in text
        if report["ok"] and any(layer["latency_s"] for layer in report["layers"]):
            assert '"fig-layer-latency"' in text and '"fig-layer-energy"' in text, name


def test_the_schema_rejects_what_it_should(reports):
    check = validator()
    good = reports["sram"]
    broken = []
    for mutate in (
        lambda r: r.update(schema="nvmc.report/2"),
        lambda r: r.update(unknown_field=1),
        lambda r: r["totals"].update(latency_s="fast"),
        lambda r: r["totals"].pop("energy_j"),
        lambda r: r["layers"][0].update(macs=-1),
        lambda r: r["layers"][0].pop("name"),
        lambda r: r["target"].update(hash="not-a-sha"),
        lambda r: r["model"].update(batch=0),
        lambda r: r.update(compare=[{"target": {}}]),
        lambda r: r.update(budgets=[{"metric": "speed"}]),
    ):
        bad = copy.deepcopy(good)
        mutate(bad)
        broken.append(not check.is_valid(bad))
    assert all(broken), broken
