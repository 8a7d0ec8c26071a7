"""One path from model to report (issue 23): nvmc.compile, the CLI and a sweep point run the
same steps (nvmc/pipeline.py) and give the same numbers, inference and training alike."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

import nvmc
from nvmc import sweep

from conftest import run_nvmc

REPO = Path(__file__).resolve().parent.parent
CNN = REPO / "examples" / "models" / "tiny_cnn.onnx"


def _spec(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "s.toml"
    path.write_text(f'schema = "nvmc.sweep/1"\nname = "one-path"\nmodels = ["{CNN}"]\n{body}')
    return path


def test_training_through_the_api_the_cli_and_a_sweep_point(tmp_path):
    api = nvmc.compile(CNN, "sram", mode="train", devices=8, interconnect="pcie3", grid="europe").estimate
    dist = api.info["distributed"]
    assert dist["devices"] == 8 and dist["comm_s"] > 0 and api.batch == 8
    cli = run_nvmc("compile", str(CNN), "-t", "sram", "--mode", "train", "--devices", "8", "--interconnect", "pcie3",
                   "--grid", "europe", "--json", "-")
    assert cli.returncode == 0, cli.stderr
    report = json.loads(cli.stdout)
    assert report["totals"]["latency_s"] == pytest.approx(api.totals["latency_s"], rel=1e-12)
    assert report["totals"]["energy_j"] == pytest.approx(api.totals["energy_j"], rel=1e-12)
    assert report["carbon"]["total_g_per_inference"] == pytest.approx(api.carbon["total_g_per_inference"], rel=1e-12)

    spec = sweep.load_spec(_spec(tmp_path, 'targets = ["sram"]\n[costing]\nmode = "train"\ndevices = 8\n'
                                           'interconnect = "pcie3"\ngrid = "europe"\n'))
    with sweep.Store(tmp_path / "r.sqlite") as store:
        sweep.run_sweep(spec, store, workers=0)
        (row,) = store.rows(report=True)
    assert row["status"] == "ok"
    assert row["latency_s"] == pytest.approx(api.totals["latency_s"], rel=1e-12)
    assert row["energy_j"] == pytest.approx(api.totals["energy_j"], rel=1e-12)
    assert row["carbon_g_per_inference"] == pytest.approx(api.carbon["total_g_per_inference"], rel=1e-12)
    stored = sweep.decode_report(row["report"])
    assert stored["target"]["distributed"]["devices"] == 8


def test_the_costing_is_part_of_a_points_identity(tmp_path):
    plain = sweep.load_spec(_spec(tmp_path, 'targets = ["sram"]\n')).points[0].id
    trained = sweep.load_spec(_spec(tmp_path, 'targets = ["sram"]\n[costing]\nmode = "train"\n')).points[0].id
    assert plain != trained
    with pytest.raises(sweep.SpecError, match=r"\[costing\] --devices: only with --mode train"):
        sweep.load_spec(_spec(tmp_path, 'targets = ["sram"]\n[costing]\ndevices = 8\n'))
    with pytest.raises(sweep.SpecError, match="unknown key 'devcies'"):
        sweep.load_spec(_spec(tmp_path, 'targets = ["sram"]\n[costing]\nmode = "train"\ndevcies = 8\n'))


def _older_database(tmp_path: Path, db: Path, schema: str, drop: str) -> None:
    """A database of one sram point, turned into what ``schema`` looked like: without ``drop``."""
    with sweep.Store(db) as store:
        sweep.run_sweep(sweep.load_spec(_spec(tmp_path, 'targets = ["sram"]\n')), store, workers=0)
    con = sqlite3.connect(db)
    cols = [r[1] for r in con.execute("PRAGMA table_info(results)") if r[1] != drop]
    con.executescript(f"""
        CREATE TABLE old AS SELECT {', '.join(cols)} FROM results; DROP TABLE results;
        ALTER TABLE old RENAME TO results; UPDATE meta SET value='{schema}' WHERE key='schema';""")
    con.close()


def test_a_schema_1_database_is_read_as_it_is_and_upgraded_when_written(tmp_path):
    """A results database written before carbon and 'not_applicable' existed keeps its rows."""
    db = tmp_path / "old.sqlite"
    _older_database(tmp_path, db, "nvmc.sweepdb/1", drop="carbon_g_per_inference")
    with sweep.Store(db, readonly=True) as store:
        (row,) = store.rows()
        assert row["status"] == "ok" and row["carbon_g_per_inference"] is None
    with sweep.Store(db) as store:  # a sweep writes to it: upgraded, the old row kept
        spec = sweep.load_spec(_spec(tmp_path, 'targets = ["sram", "racetrack-hdc"]\n'))
        summary = sweep.run_sweep(spec, store, workers=0)
        rows = {r["target"]: r for r in store.rows()}
    assert summary.counts["not_applicable"] == 1 and summary.counts["error"] == 0
    assert rows["sram"]["status"] == "ok" and rows["racetrack-hdc"]["status"] == "not_applicable"
    con = sqlite3.connect(db)
    assert con.execute("SELECT value FROM meta WHERE key='schema'").fetchone()[0] == sweep.DB_SCHEMA
    con.close()


def test_the_ir_imports_nothing_of_onnx_the_passes_or_the_backends():
    """`import nvmc.ir` loads the IR only, at run time (not only in its module-level imports)."""
    text = ("// nvmc.ir 1  opset=17\ngraph @g(%x: f32[1,4]) -> (%y: f32[1,4]) {\n"
            "  %y = Relu(%x) : f32[1,4]  // r\n  return %y\n}\n")
    code = ("import sys, nvmc.ir; from nvmc.ir import parse_text, verify_structure; g = parse_text(sys.argv[1]); "
            "verify_structure(g); print(g.to_text() == sys.argv[1], sorted(sys.modules))")
    out = subprocess.run([sys.executable, "-c", code, text], capture_output=True, text=True, check=True).stdout
    assert out.startswith("True ")
    out = out[len("True "):]
    loaded = eval(out)  # noqa: S307 - our own subprocess's printed list
    bad = [m for m in loaded if m.split(".")[0] in ("onnx", "onnxruntime") or m.startswith(
        ("nvmc.passes", "nvmc.backends", "nvmc.frontend", "nvmc.api", "nvmc.cli"))]
    assert not bad, bad


LAYERS = {"ir": {"ir"}, "frontend": {"ir", "frontend"}, "passes": {"ir", "frontend", "passes"},
          "backends": {"ir", "backends"}}


def test_imports_follow_the_layering_at_every_depth():
    """DESIGN.md: nvmc -> passes -> frontend -> ir, nvmc -> backends -> ir; ir imports no onnx.
    Every import counts, the ones inside functions too (they run as surely as the others)."""
    import ast

    crossings = []
    for layer, allowed in LAYERS.items():
        for path in sorted((REPO / layer).rglob("*.py")):
            if "data" in path.relative_to(REPO).parts:
                continue
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.ImportFrom) and not node.level:
                    names = [node.module or ""]
                elif isinstance(node, ast.Import):
                    names = [a.name for a in node.names]
                else:
                    continue
                for name in names:
                    parts = name.split(".")
                    if parts[0] in ("onnx", "onnxruntime") and layer == "ir":
                        crossings.append(f"{path.relative_to(REPO)}:{node.lineno} {name}")
                    elif parts[0] == "nvmc" and (parts[1] if len(parts) > 1 else "nvmc") not in allowed:
                        crossings.append(f"{path.relative_to(REPO)}:{node.lineno} {name}")
    assert not crossings, crossings


def test_a_pass_that_destroys_accuracy_fails_the_result_and_sweeps_record_the_error(tmp_path):
    """issue 24: the report shows what an approximate pipeline did to the outputs, and a gate
    (--min-cosine, --min-sqnr, --min-top1) fails the result (exit 4) instead of showing a win."""
    wrecked = run_nvmc("compile", str(CNN), "-t", "sram", "--passes", "prune{sparsity=0.9}", "--min-cosine", "0.99",
                       "--json", str(tmp_path / "r.json"), "-q")
    assert wrecked.returncode == 4, wrecked.stderr
    assert "accuracy gate: cosine" in wrecked.stderr and "below the required 0.99" in wrecked.stderr
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["accuracy"]["cosine"] < 0.99 and report["accuracy"]["gate"]["ok"] is False
    kept = run_nvmc("compile", str(CNN), "-t", "sram", "--passes", "quantize{bits=8}", "--min-cosine", "0.99", "-q")
    assert kept.returncode == 0, kept.stderr
    exact = nvmc.compile(CNN, "sram", passes="fuse-conv-bn,dce")
    assert exact.accuracy is None and "accuracy" not in exact.to_dict()  # exact passes: nothing to measure

    spec = sweep.load_spec(_spec(tmp_path, 'targets = ["sram"]\npipelines = ["", "prune{sparsity=0.9}"]\n'))
    with sweep.Store(tmp_path / "s.sqlite") as store:
        sweep.run_sweep(spec, store, workers=0)
        rows = {r["pipeline"]: r for r in store.rows()}
    assert rows[""]["cosine"] is None
    assert rows["prune{sparsity=0.9}"]["cosine"] == pytest.approx(report["accuracy"]["cosine"], rel=1e-9)
    assert rows[""]["approximate"] == 0 and rows["prune{sparsity=0.9}"]["approximate"] == 1


def test_error_is_a_pareto_axis_where_a_pipeline_approximates(tmp_path):
    """A point that saves energy by wrecking the model does not push the faithful ones off the
    front: with an approximate pipeline in the group, the measured error (1 − cosine) is an
    axis; an exact group is judged on latency, energy and area alone."""
    from nvmc.sweep.export import mark_pareto, model_error

    spec = sweep.load_spec(_spec(tmp_path, 'targets = ["eie"]\npipelines = ["", "prune{sparsity=0.9}"]\n'))
    with sweep.Store(tmp_path / "s.sqlite") as store:  # eie skips zero weights: pruning saves its energy
        sweep.run_sweep(spec, store, workers=0)
        rows = store.rows()
    mark_pareto(rows)
    by = {r["pipeline"]: r for r in rows}
    pruned, plain = by["prune{sparsity=0.9}"], by[""]
    assert pruned["energy_per_inference_j"] < plain["energy_per_inference_j"]  # the "win" the error explains
    assert plain["pareto_axes"].endswith(",error")
    assert model_error(plain) == 0.0 and model_error(pruned) == pytest.approx(1 - pruned["cosine"])
    assert plain["pareto"] and pruned["pareto"]  # each is best on one axis: both are on the front
    without_error = [dict(r, approximate=0, cosine=None) for r in rows]  # as if both were exact
    mark_pareto(without_error)
    assert not {r["pipeline"]: r for r in without_error}[""]["pareto"]   # the exact one is dominated then
    unmeasured = dict(pruned, cosine=None)  # approximate, error not measured: never optimal on that axis
    assert model_error(unmeasured) != model_error(unmeasured)


def test_the_sweep_accuracy_gate_rejects_points_and_exits_4(tmp_path):
    spec = _spec(tmp_path, 'targets = ["sram", "sot-mram"]\npipelines = ["", "quantize{bits=8}", '
                           '"prune{sparsity=0.9}"]\n[accuracy]\nmin_cosine = 0.99\n')
    db = tmp_path / "s.sqlite"
    proc = run_nvmc("sweep", str(spec), "--db", str(db), "--workers", "0", "-q")
    assert proc.returncode == 4, proc.stderr
    assert "2 point(s) break the accuracy gate" in proc.stderr and "prune{sparsity=0.9}" in proc.stderr
    assert "quantize" not in proc.stderr.split("break the accuracy gate")[1]
    listed = run_nvmc("results", str(spec), "--db", str(db), "--csv", str(tmp_path / "p.csv"))
    assert listed.returncode == 4 and "2 rejected by the accuracy gate" in listed.stdout
    assert "Pareto-optimal points over latency, energy/inference, area, error (1 − cosine)" in " ".join(
        listed.stdout.split())
    import csv

    with open(tmp_path / "p.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    rejected = [r for r in rows if r["status"] == "rejected"]
    assert {r["pipeline"] for r in rejected} == {"prune{sparsity=0.9}"} and all(r["pareto"] == "False" for r in rejected)
    assert all(r["error"].startswith("accuracy gate: cosine") for r in rejected)
    # the database keeps every point as it was costed: the gate is a reading, not a rewrite
    assert run_nvmc("results", str(db)).returncode == 0
    assert run_nvmc("results", str(db), "--min-sqnr", "1000").returncode == 4
    # an exact-only sweep has nothing for the gate to judge
    exact = _spec(tmp_path, 'targets = ["sram"]\npipelines = ["", "canonicalize"]\n[accuracy]\nmin_cosine = 0.999\n')
    assert run_nvmc("sweep", str(exact), "--db", str(tmp_path / "e.sqlite"), "--workers", "0", "-q").returncode == 0


@pytest.mark.parametrize("body, message", [
    ("[accuracy]\nmin_cosin = 0.9\n", "unknown key 'min_cosin'"),
    ("[accuracy]\nmin_cosine = 2\n", "min_cosine must be a number from -1 to 1, not 2"),
    ("[accuracy]\nmin_top1 = true\n", "min_top1 must be a number from 0 to 1, not True"),
    ("[accuracy]\nmin_sqnr_db = nan\n", "min_sqnr_db must be a number, not nan"),
    ("accuracy = 3\n", "'accuracy' must be a table"),
])
def test_a_bad_accuracy_table_is_refused_before_the_sweep(tmp_path, body, message):
    with pytest.raises(sweep.SpecError, match=message):
        sweep.load_spec(_spec(tmp_path, 'targets = ["sram"]\n' + body))


def test_opt_fails_a_pipeline_that_breaks_the_gate_with_exit_4(tmp_path):
    out = tmp_path / "p.onnx"
    proc = run_nvmc("opt", str(CNN), "-p", "prune{sparsity=0.9}", "--min-cosine", "0.99", "-o", str(out),
                    "--json", str(tmp_path / "p.json"))
    assert proc.returncode == 4 and out.exists(), proc.stderr  # written, as compile writes, and failed
    assert "accuracy gate: cosine" in proc.stderr
    gate = json.loads((tmp_path / "p.json").read_text())["accuracy"]
    assert gate["measured"]["cosine"] < 0.99 and gate["failures"]
    assert run_nvmc("opt", str(CNN), "-p", "quantize{bits=8}", "--min-cosine", "0.99", "-o", str(out)).returncode == 0


def test_a_schema_2_database_gains_the_approximate_column_when_written(tmp_path):
    db = tmp_path / "two.sqlite"
    _older_database(tmp_path, db, "nvmc.sweepdb/2", drop="approximate")
    with sweep.Store(db, readonly=True) as store:
        (row,) = store.rows()
    assert row["approximate"] is None   # read as it is
    from nvmc.sweep.export import model_error

    assert model_error(row) == 0.0      # no pass: judged exact by its pipeline
    with sweep.Store(db) as store:
        sweep.run_sweep(sweep.load_spec(_spec(tmp_path, 'targets = ["sram", "sot-mram"]\n')), store, workers=0)
        rows = {r["target"]: r for r in store.rows()}
    assert rows["sram"]["approximate"] is None and rows["sot-mram"]["approximate"] == 0


def test_a_batch_other_than_the_models_own_is_said_not_silently_divided(tmp_path):
    """``batch`` counts inferences per run; it does not reshape the model. A batch of 8 on a
    model bound at 1 divides the run by 8: every estimate says so (API and sweep alike)."""
    said = [n for n in nvmc.compile(CNN, "sram", batch=8).estimate.notes if n.startswith("batch 8")]
    assert said and "leading input dimension is 1" in said[0] and "nothing is reshaped" in said[0]
    assert not [n for n in nvmc.compile(CNN, "sram").estimate.notes if n.startswith("batch")]
    bound = nvmc.compile(CNN.with_name("tiny_transformer.onnx"), "sram", batch=8, input_shapes={"tokens": [8, 16, 64]})
    assert not [n for n in bound.estimate.notes if n.startswith("batch")]
    spec = sweep.load_spec(_spec(tmp_path, 'targets = ["sram"]\nbatch = [1, 8]\n'))
    with sweep.Store(tmp_path / "s.sqlite") as store:
        sweep.run_sweep(spec, store, workers=0)
        rows = {r["batch"]: r for r in store.rows(report=True)}
    notes = {b: [n for n in sweep.decode_report(r["report"])["notes"] if n.startswith("batch")] for b, r in rows.items()}
    assert notes[1] == [] and notes[8] == said


def test_a_set_applies_to_the_targets_that_have_it_in_the_api_as_in_the_cli(tmp_path):
    """nvmc.compile and nvmc compile resolve targets the same way (nvmc.pipeline.resolve_targets):
    across families a --set key applies where the family has it; a key of none is an error."""
    key = "memory.host_link_bytes_per_s=2e9"  # gpu (roofline) has it, upmem does not
    api = nvmc.compile(CNN, ["upmem", "gpu"], sets=[key])
    plain = nvmc.compile(CNN, ["upmem", "gpu"])
    assert api.estimates[0].totals == plain.estimates[0].totals          # upmem untouched
    proc = run_nvmc("compile", str(CNN), "-t", "upmem", "--compare", "gpu", "--set", key, "--json", "-")
    cli = json.loads(proc.stdout)
    assert [cli["totals"]["latency_s"], cli["compare"][0]["totals"]["latency_s"]] == pytest.approx(
        [e.totals["latency_s"] for e in api.estimates], rel=1e-12)
    assert api.estimates[1].target_hash != plain.estimates[1].target_hash  # gpu took the key
    assert api.estimates[0].target_hash == plain.estimates[0].target_hash
    from nvmc.ir.errors import NvmcError

    with pytest.raises(NvmcError, match="unknown key .nope.x."):
        nvmc.compile(CNN, ["upmem", "gpu"], sets=["nope.x=1"])
