"""The `compile --generate --json` report against its published JSON Schema
(nvmc/schema/generation.schema.json, schema "nvmc.generation/1"): real reports of the tiny GPT-2
on several families, with and without --budget, with targets that do not fit or cannot run it,
with no decode step (tokens=1) and without a KV cache."""

from __future__ import annotations

import copy
import json

import pytest
from click.testing import CliRunner

from conftest import REPO
from nvmc.report import GENERATION_SCHEMA_PATH, generation_schema

jsonschema = pytest.importorskip("jsonschema", reason="jsonschema is a dev dependency: pip install -e '.[dev]'")

GPT2 = REPO / "examples" / "models" / "gpt2"
PAST, NO_PAST = GPT2 / "gpt2_tiny_past.onnx", GPT2 / "gpt2_tiny.onnx"
SPEC = "prompt=16,tokens=8"
BUDGETS = "latency=1s,energy=1J,ttft=1s,token_latency=1s,tokens_per_s=1/s,j_per_token=1J"

# case -> the `compile` arguments after the model (each run adds --json - -q)
RUNS = {
    # racetrack-hdc costs HDC models only: a target that cannot run the model ("n/a: ...")
    "families": (PAST, "-t", "gpu", "--compare", "eie,upmem,sot-mram,systolic-sram-28nm,rram-pim,racetrack-hdc",
                 "--generate", SPEC),
    "upmem-resident": (PAST, "-t", "upmem", "--set", "mapping.activations=resident", "--generate", SPEC,
                       "--budget", BUDGETS),
    "eie-budget": (PAST, "-t", "eie", "--compare", "sot-mram", "--generate", SPEC,
                   "--budget", BUDGETS + ",area=1000mm2"),
    # the first target does not fit (weights beyond its memory): budgets on it hold null values
    "not-fitting": (PAST, "-t", "cpu", "--set", "memory.capacity=100KiB", "--compare", "gpu", "--generate", SPEC,
                    "--budget", "latency=1s,ttft=1s"),
    "one-token": (PAST, "-t", "eie", "--compare", "upmem", "--generate", "prompt=16,tokens=1"),
    "no-kv-cache": (NO_PAST, "-t", "gpu", "--generate", "prompt=8,tokens=4"),
}


def validator():
    return jsonschema.Draft202012Validator(generation_schema())


@pytest.fixture(scope="module")
def reports() -> dict[str, dict]:
    """case -> the report `nvmc compile --generate --json -` printed (in-process CLI runs)."""
    from nvmc.cli import cli

    runner = CliRunner()
    out = {}
    for case, args in RUNS.items():
        result = runner.invoke(cli, ["compile", *map(str, args), "--json", "-", "-q"])
        clean = result.exception is None or isinstance(result.exception, SystemExit)
        assert clean and result.exit_code in (0, 3), f"{case}: exit {result.exit_code}: {result.exception}"
        out[case] = json.loads(result.stdout)
    return out


def test_the_schema_is_a_valid_json_schema():
    schema = json.loads(GENERATION_SCHEMA_PATH.read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    assert schema["properties"]["schema"]["const"] == "nvmc.generation/1"


def test_every_generation_report_validates(reports):
    check = validator()
    for case, report in reports.items():
        errors = sorted(check.iter_errors(report), key=lambda e: list(e.path))
        assert not errors, f"{case}: " + "; ".join(f"{list(e.path)}: {e.message}" for e in errors[:5])


def test_the_reports_cover_every_shape(reports):
    """The cases above reach each branch of the schema, so a shape that changes is validated."""
    def targets(case):
        return {t["target"]: t for t in reports[case]["targets"]}

    assert "budgets" not in reports["families"] and reports["families"]["comparison"]
    refused = targets("families")["racetrack-hdc"]
    assert refused["ok"] is False and refused["reason"].startswith("n/a: ") and refused["status"] == "not_applicable"
    assert all(t["ok"] and t["status"] == "ok" for name, t in targets("families").items() if name != "racetrack-hdc")
    assert targets("upmem-resident")["upmem"]["residency"] == {"weights": "resident", "kv_cache": "resident"}
    assert {b["metric"] for b in reports["upmem-resident"]["budgets"]} == {
        "latency", "energy", "ttft", "token_latency", "tokens_per_s", "j_per_token"}
    assert any(b["metric"] == "area" for b in reports["eie-budget"]["budgets"])
    assert targets("not-fitting")["cpu"]["status"] == "not_fitting"
    assert targets("not-fitting")["cpu"]["ok"] is False and reports["not-fitting"]["comparison"] == []
    assert [b["value"] for b in reports["not-fitting"]["budgets"] if b["target"] == "cpu"] == [None, None]
    one = targets("one-token")["eie"]
    assert one["decode"]["steps"] == 0 and one["decode_bound"] is None and one["per_token_latency_s"]["median"] is None
    assert reports["one-token"]["contexts_costed"] == []
    assert reports["no-kv-cache"]["kv_cache"] == {"past_inputs": [], "bytes_per_token": None, "bytes_total": None}


def test_the_schema_rejects_what_it_should(reports):
    check = validator()
    good = reports["eie-budget"]
    broken = []
    for mutate in (
        lambda r: r.update(schema="nvmc.generation/2"),
        lambda r: r.update(unknown_field=1),
        lambda r: r.pop("kv_cache"),
        lambda r: r["kv_cache"].update(bytes_per_token="1 KiB"),
        lambda r: r["targets"][0].update(ttft_s=None),
        lambda r: r["targets"][0].pop("j_per_token"),
        lambda r: r["targets"][0].update(ok=False),                  # a refused record has no figures
        lambda r: r["targets"][0].update(decode_bound="dram"),
        lambda r: r["targets"][0]["per_token_latency_s"].update(mean=1.0),
        lambda r: r["targets"][0]["decode"].update(steps=-1),
        lambda r: r["targets"][0]["memories"].append({"memory": "L2"}),
        lambda r: r["targets"][0]["residency"].update(weights="cached"),
        lambda r: r["targets"][0]["curve"]["latency_s"].append("slow"),
        lambda r: r["targets"].append({"target": "x", "family": "y", "ok": False}),
        lambda r: r["budgets"][0].update(metric="throughput"),     # compile's metric, not a generation's
        lambda r: r["budgets"][0].update(limit=0),
    ):
        bad = copy.deepcopy(good)
        mutate(bad)
        broken.append(not check.is_valid(bad))
    assert all(broken), broken
