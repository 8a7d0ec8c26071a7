"""Sweeps: spec expansion, the SQLite store, the in-process runner, Pareto front, and the
`nvmc sweep` / `nvmc results` commands as a user runs them."""

from __future__ import annotations

import csv
import dataclasses
import json
import os
import re
import sqlite3

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import nvmc
from conftest import REPO, run_nvmc
from nvmc import sweep
from nvmc.sweep import worker
from nvmc.sweep.spec import expand_range

MODELS = REPO / "examples" / "models"


def write_spec(tmp_path, body: str, name: str = "s.toml"):
    path = tmp_path / name
    path.write_text('schema = "nvmc.sweep/1"\n' + body)
    return path


def small_spec(tmp_path, **extra):
    return write_spec(tmp_path, f"""
name = "small"
models = ["{MODELS / 'tiny_cnn.onnx'}", "{MODELS / 'tiny_transformer.onnx'}"]
targets = ["sram", "sot-mram"]
pipelines = ["", "canonicalize"]
[grid]
"llc.capacity" = ["2MiB", "8MiB"]
""")


# ------------------------------------------------------------------ spec
def test_spec_product_and_identity(tmp_path):
    spec = sweep.load_spec(small_spec(tmp_path))
    assert len(spec.points) == 2 * 2 * 2 * 2
    assert len({p.id for p in spec.points}) == len(spec.points)
    assert len(spec.groups()) == 4                       # (model, pipeline)
    assert {p.params for p in spec.points} == {(("llc.capacity", 2 * 2**20),), (("llc.capacity", 8 * 2**20),)}
    again = sweep.load_spec(small_spec(tmp_path))        # stable identities: the resume key
    assert [p.id for p in again.points] == [p.id for p in spec.points]
    other = sweep.load_spec(small_spec(tmp_path), version="9.9")
    assert not {p.id for p in other.points} & {p.id for p in spec.points}


def test_identity_follows_the_library_numbers(tmp_path, monkeypatch):
    """Editing a number the cost model reads (shown by nvmc explain) re-runs the points it affects."""
    from nvmc.backends import gpu_llc

    before = {p.id for p in sweep.load_spec(small_spec(tmp_path)).points}
    real = gpu_llc.parameters

    def edited(target):
        rows = real(target)
        rows[-1] = dataclasses.replace(rows[-1], value=f"{rows[-1].value}+1")
        return rows

    monkeypatch.setattr(gpu_llc, "parameters", edited)
    assert not {p.id for p in sweep.load_spec(small_spec(tmp_path)).points} & before


def test_spec_ranges_dedupe_and_nested_keys(tmp_path):
    assert expand_range({"from": "1MiB", "to": "8MiB", "factor": 2}, "x") == [2**20, 2**21, 2**22, 2**23]
    assert expand_range({"from": 64, "to": 256, "step": 64}, "x") == [64, 128, 192, 256]
    assert expand_range({"from": 1.0, "to": 2.0, "num": 3}, "x") == [1.0, 1.5, 2.0]
    assert expand_range({"from": 1, "to": 100, "num": 3, "scale": "log"}, "x") == [1, 10, 100]
    path = write_spec(tmp_path, f"""
models = ["{MODELS / 'tiny_cnn.onnx'}"]
targets = ["stt-mram"]
[grid]
llc.capacity = ["4MiB", "4096KiB", 4194304]
"llc.iso" = ["capacity", "area"]
""")
    spec = sweep.load_spec(path)
    assert len(spec.points) == 2                         # three spellings of one capacity: one point


def _fake_family(monkeypatch):
    """A second cost-model family with its own keys (``array.rows``), registered for one test."""
    import sys
    import types

    from nvmc.backends import Estimate, Field, registry

    mod = types.ModuleType("nvmc_test_fake_family")
    mod.FAMILY = "fake-array"
    mod.SCHEMA = {"array": {"rows": Field("int", "rows", default=8)}}

    def estimate(workload, target, *, batch=1):
        n = len(workload.names)
        lat = np.full(n, 1e-6 / target["array.rows"])
        return Estimate(target.name, target.family, target.hash, list(workload.names), list(workload.ops),
                        np.asarray(workload.columns["macs"]), lat, {"compute": lat}, {"compute": lat * 1e-3},
                        {"array": 0.1 * target["array.rows"]}, batch=batch, target_file=target.source)

    mod.estimate = estimate
    mod.parameters = lambda target: []
    monkeypatch.setitem(sys.modules, mod.__name__, mod)
    monkeypatch.setitem(registry._BUILTIN, mod.FAMILY, mod.__name__)


def test_grid_key_applies_only_to_families_that_have_it(tmp_path, monkeypatch):
    _fake_family(monkeypatch)
    (tmp_path / "arr.toml").write_text('schema = "nvmc.target/1"\nname = "arr"\nfamily = "fake-array"\n')
    spec = sweep.load_spec(write_spec(tmp_path, f"""
models = ["{MODELS / 'tiny_cnn.onnx'}"]
targets = ["sram", "arr.toml"]
[grid]
"llc.capacity" = ["2MiB", "8MiB"]
"array.rows" = [4, 8, 16]
"""))
    by_target = {}
    for p in spec.points:
        by_target.setdefault(spec.targets[p.target].name, []).append(dict(p.params))
    assert by_target["sram"] == [{"llc.capacity": 2 * 2**20}, {"llc.capacity": 8 * 2**20}]
    assert by_target["arr"] == [{"array.rows": 4}, {"array.rows": 8}, {"array.rows": 16}]
    with sweep.Store(tmp_path / "r.sqlite") as store:
        summary = sweep.run_sweep(spec, store, workers=0)
        rows = store.rows()
    assert summary.counts["ok"] == 5
    area = sorted(r["area_mm2"] for r in rows if r["family"] == "fake-array")
    assert area == pytest.approx([0.4, 0.8, 1.6])


@pytest.mark.parametrize("body, message", [
    ('models = ["{m}"]\ntargets = ["sram"]\n[grid]\n"llc.capacty" = ["1MiB"]\n', "did you mean 'llc.capacity'"),
    ('models = ["{m}"]\ntargets = ["sram"]\n[grid]\n"llc.capacity" = ["-1MiB"]\n', "capacity"),
    ('models = ["{m}"]\ntargets = ["sramm"]\n', "did you mean 'sram'"),
    ('models = ["nope.onnx"]\ntargets = ["sram"]\n', "model file not found"),
    ('models = ["{m}"]\ntargets = ["sram"]\npipelines = ["canonicalise"]\n', "did you mean 'canonicalize'"),
    ('models = ["{m}"]\ntargets = ["sram"]\nmodel = 3\n', "did you mean 'models'"),
    ('models = ["{m}"]\ntargets = ["sram"]\n[grid]\n"llc.capacity" = {{from = 1, to = 4}}\n', "a range is"),
    ('targets = ["sram"]\n', "missing required key 'models'"),
])
def test_spec_errors_name_the_problem(tmp_path, body, message):
    path = write_spec(tmp_path, body.format(m=MODELS / "tiny_cnn.onnx"))
    with pytest.raises(nvmc.ir.errors.NvmcError) as e:
        sweep.load_spec(path)
    assert message in e.value.render()


@pytest.mark.parametrize("example", sorted((REPO / "examples" / "sweeps").glob("*.toml")), ids=lambda p: p.stem)
def test_example_specs_expand(example):
    spec = sweep.load_spec(example)
    assert spec.points and len({p.id for p in spec.points}) == len(spec.points)


def test_listed_points(tmp_path):
    spec = sweep.load_spec(REPO / "examples" / "sweeps" / "listed_points.toml")
    assert len(spec.points) == 3
    assert spec.points[2].batch == 8 and dict(spec.points[1].params) == {"llc.capacity": 4 * 2**20, "llc.iso": "area"}


# ------------------------------------------------------------------ running
def test_serial_sweep_matches_compile_and_analyses_once_per_group(tmp_path):
    spec = sweep.load_spec(small_spec(tmp_path))
    before = worker.analyses
    worker._WORKLOADS.items.clear()
    with sweep.Store(tmp_path / "r.sqlite") as store:
        summary = sweep.run_sweep(spec, store, workers=0, chunk=3)
        rows = store.rows(report=True)
    assert summary.counts == {"ok": 16, "not_fitting": 0, "not_applicable": 0, "error": 0, "pending": 0}
    assert worker.analyses - before == len(spec.groups()) == 4   # import + analysis reused across targets
    assert len(rows) == 16
    row = next(r for r in rows if r["target"] == "sot-mram" and r["pipeline"] == "canonicalize"
               and r["model"].endswith("tiny_cnn.onnx") and json.loads(r["params"])["llc.capacity"] == 8 * 2**20)
    ref = nvmc.compile(MODELS / "tiny_cnn.onnx", "sot-mram", passes="canonicalize", sets=["llc.capacity=8MiB"])
    assert row["edp_js"] == pytest.approx(ref.estimate.totals["edp_js"], rel=1e-12)
    report = sweep.decode_report(row["report"])
    assert report["totals"]["energy_j"] == pytest.approx(ref.estimate.totals["energy_j"], rel=1e-12)
    assert report["layers"] and report["pipeline"] == "canonicalize"


def test_resume_skips_done_points_and_errors_are_recorded(tmp_path):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not an onnx file")
    spec_path = write_spec(tmp_path, f"""
models = ["{MODELS / 'tiny_cnn.onnx'}", "{bad}"]
targets = ["sram", "stt-mram"]
""")
    spec = sweep.load_spec(spec_path)
    with sweep.Store(tmp_path / "r.sqlite") as store:
        first = sweep.run_sweep(spec, store, workers=0)
        assert first.counts == {"ok": 2, "not_fitting": 0, "not_applicable": 0, "error": 2, "pending": 0}
        assert "bad.onnx" in first.errors[0][1]
        again = sweep.run_sweep(spec, store, workers=0)
        assert again.ran == 0 and again.skipped == 4
        retry = sweep.run_sweep(spec, store, workers=0, retry_errors=True)
        assert retry.ran == 2
        assert store.db.execute("SELECT COUNT(*) FROM results").fetchone()[0] == 4


def test_store_writes_once_per_point(tmp_path):
    with sweep.Store(tmp_path / "r.sqlite") as store:
        assert store.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        row = {"point_id": "p1", "sweep": "s", "model": "m", "model_hash": "h", "target": "t", "family": "f",
               "pipeline": "", "params": "{}", "nvmc_version": "0", "status": "error", "error": "boom"}
        assert store.write([row]) == 1
        assert store.write([dict(row, error="again")]) == 0          # a finished point is never written twice
        with pytest.raises(sqlite3.IntegrityError):                   # an ok row without its report is refused
            store.write([dict(row, point_id="p2", status="ok")])
        assert store.statuses() == {"p1": "error"}                   # ... and the failed batch left nothing
    (tmp_path / "x.sqlite").write_text("not sqlite")
    with pytest.raises(sweep.StoreError):
        sweep.Store(tmp_path / "x.sqlite")


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(*[st.integers(0, 6)] * 3), min_size=1, max_size=40))
def test_pareto_mask_is_the_set_of_non_dominated_points(points):
    v = np.array(points, dtype=float)
    mask = sweep.pareto_mask(v)
    for i, p in enumerate(v):
        dominated = any((q <= p).all() and (q < p).any() for q in v)
        assert mask[i] == (not dominated)


# ------------------------------------------------------------------ CLI
def test_cli_sweep_status_and_results(tmp_path):
    spec = small_spec(tmp_path)
    db = tmp_path / "r.sqlite"
    status = run_nvmc("sweep", str(spec), "--db", str(db), "--status", check=True)
    assert "16 points: 0 ok" in status.stdout and "16 pending" in status.stdout
    proc = run_nvmc("sweep", str(spec), "--db", str(db), "--workers", "2", check=True)
    assert "ran 16 points" in proc.stdout and "16 ok" in proc.stdout and "Traceback" not in proc.stderr
    status = run_nvmc("sweep", str(spec), "--db", str(db), "--status", check=True)
    assert "16 points: 16 ok, 0 not fitting, 0 not applicable, 0 failed, 0 pending" in status.stdout
    assert "tiny_transformer.onnx" in status.stdout
    out = run_nvmc("results", str(spec), "--db", str(db), "--csv", str(tmp_path / "r.csv"), "--json",
                   str(tmp_path / "r.json"), "--reports", "--html", str(tmp_path / "r.html"), check=True)
    assert "Pareto-optimal" in out.stdout and "16 points of 16 planned" in out.stdout
    rows = list(csv.DictReader((tmp_path / "r.csv").open()))
    assert len(rows) == 16 and "set:llc.capacity" in rows[0] and {r["status"] for r in rows} == {"ok"}
    assert any(r["pareto"] == "True" for r in rows)
    data = json.loads((tmp_path / "r.json").read_text())
    assert data["schema"] == "nvmc.sweep-results/1" and len(data["points"]) == 16
    assert data["points"][0]["report"]["schema"] == "nvmc.report/1"
    page = (tmp_path / "r.html").read_text()
    assert "plotly" in page.lower() and "Pareto-optimal points" in page and "capacity=8MiB" in page


def test_cli_errors_exit_2(tmp_path):
    spec = write_spec(tmp_path, f'models = ["{MODELS / "tiny_cnn.onnx"}"]\ntargets = ["sram"]\n'
                                '[grid]\n"llc.capacty" = ["1MiB"]\n')
    proc = run_nvmc("sweep", str(spec), "--db", str(tmp_path / "r.sqlite"))
    assert proc.returncode == 2 and "did you mean 'llc.capacity'" in proc.stderr and "Traceback" not in proc.stderr
    proc = run_nvmc("results", str(tmp_path / "missing.sqlite"))
    assert proc.returncode == 2 and "results database not found" in proc.stderr
    good = small_spec(tmp_path)
    proc = run_nvmc("sweep", str(good), "--db", str(tmp_path / "r.sqlite"), "--scheduler", "tcp://127.0.0.1:9",
                    "--workers", "1")
    assert proc.returncode == 2 and "Dask scheduler" in proc.stderr and "Traceback" not in proc.stderr


def test_every_shipped_target_runs_through_a_sweep(tmp_path):
    """Whatever `nvmc targets` lists (targets are being added): each gives one complete row,
    and its figures are those of `nvmc.compile`."""
    from nvmc.backends import shipped_targets

    spec = sweep.load_spec(write_spec(tmp_path, f'models = ["{MODELS / "tiny_cnn.onnx"}"]\ntargets = ["*"]\n'))
    assert len(spec.points) == len(shipped_targets())
    with sweep.Store(tmp_path / "r.sqlite") as store:
        sweep.run_sweep(spec, store, workers=0)
        rows = store.rows(report=True)
    assert {r["target"] for r in rows} == set(shipped_targets())
    for r in rows:
        # a CNN on an HDC-only target is not applicable (a result saying why), never an error
        assert r["status"] in ("ok", "not_fitting", "not_applicable"), r["error"]
        if r["status"] == "ok":
            ref = nvmc.compile(MODELS / "tiny_cnn.onnx", r["target"]).estimate
            assert r["latency_s"] == pytest.approx(ref.totals["latency_s"], rel=1e-12)
            assert r["carbon_g_per_inference"] == pytest.approx(ref.carbon["total_g_per_inference"], rel=1e-12)
        else:
            assert r["error"]
    assert {r["target"] for r in rows if r["status"] == "not_applicable"} == {"fpga", "racetrack-hdc"}


def test_local_dispatch_analyses_each_group_about_once(tmp_path):
    from nvmc.sweep.run import _Dispatcher

    spec = sweep.load_spec(small_spec(tmp_path))
    tasks = sweep.make_tasks(spec, {p.id for p in spec.points}, chunk=1)   # 4 groups x 4 tasks
    d = _Dispatcher(tasks)
    seen: dict[int, list] = {0: [], 1: []}
    order = [0, 1] * len(tasks)
    while True:
        w = order.pop(0)
        t = d.next_for(w)
        if t is None:
            break
        seen[w].append((t.model.label, t.pipeline))
    assert sum(len(v) for v in seen.values()) == len(tasks)
    groups_per_worker = [len(set(v)) for v in seen.values()]
    assert sum(groups_per_worker) == 4                 # no group analysed on both workers
    for v in seen.values():                            # each worker finishes a group before the next
        assert v == sorted(v, key=v.index)


def test_lost_tasks_stay_pending(tmp_path, monkeypatch):
    from nvmc.sweep import run

    spec = sweep.load_spec(small_spec(tmp_path))
    real = run.evaluate
    calls = []

    def flaky(task, *args):
        calls.append(task)
        if len(calls) == 2:
            raise RuntimeError("worker vanished")
        return real(task, *args)

    monkeypatch.setattr(run, "evaluate", flaky)
    with sweep.Store(tmp_path / "r.sqlite") as store:
        first = sweep.run_sweep(spec, store, workers=1, chunk=4)
        assert first.counts["pending"] == 4 and first.lost and "worker vanished" in first.lost[0]
        monkeypatch.setattr(run, "evaluate", real)
        second = sweep.run_sweep(spec, store, workers=1)
        assert second.ran == 4 and second.counts["pending"] == 0


@pytest.mark.parametrize("lo, hi", [(34e-6, 62e-6), (4.7e-7, 2.1e-4), (1e-9, 10.0), (5e-3, 5e-3)])
def test_log_axis_ticks_are_few_and_carry_units(lo, hi):
    """The Pareto page's log axes: 1-9 steps on a narrow span, 1-2-5 or decades on wider ones,
    never more than 9, inside the data's span (padded 1.3x), labelled with SI prefixes."""
    from nvmc.sweep.export import _log_ticks

    ticks = _log_ticks([lo, (lo * hi) ** 0.5, hi], "s")
    vals, text = ticks["tickvals"], ticks["ticktext"]
    assert 1 <= len(vals) <= 9 and len(vals) >= (2 if hi > lo else 1)
    assert all(lo / 1.3 <= v <= hi * 1.3 for v in vals) and vals == sorted(vals)
    assert all(t.endswith("s") and t[0].isdigit() for t in text)


def test_the_all_targets_example_runs_to_its_results(tmp_path):
    """Its own documented `nvmc sweep ... && nvmc results ...` (issue 24): the HDC-only targets
    are 'not applicable' points, not failures, so the sweep exits 0 and results follow."""
    spec = REPO / "examples" / "sweeps" / "all_targets.toml"
    db = tmp_path / "all.sqlite"
    ran = run_nvmc("sweep", str(spec), "--db", str(db), "--workers", "0", "-q")
    assert ran.returncode == 0, ran.stderr
    counts = re.search(r"(\d+) points: (\d+) ok, 0 not fitting, (\d+) not applicable, 0 failed, 0 pending", ran.stdout)
    assert counts and int(counts.group(3)) > 0 and int(counts.group(2)) + int(counts.group(3)) == int(counts.group(1))
    shown = run_nvmc("results", str(spec), "--db", str(db))
    assert shown.returncode == 0 and "Pareto-optimal points" in shown.stdout, shown.stderr


@pytest.mark.parametrize("killed", [1, 2])
def test_a_dead_local_worker_leaves_its_points_pending_and_the_rest_runs(tmp_path, monkeypatch, killed):
    """A worker killed (out of memory, kill -9) loses only its own tasks: they stay pending (exit 1
    from the CLI, 'run the same command again'), the other worker runs the rest; with every
    worker dead, everything not finished is pending. Run again, the sweep completes."""
    import signal

    from nvmc.sweep import run as run_mod

    class Dying(run_mod._LocalWorkers):
        def __init__(self, n):
            super().__init__(n)
            for proc in self.procs[:killed]:
                os.kill(proc.pid, signal.SIGKILL)
                proc.join(5)

    spec = sweep.load_spec(write_spec(tmp_path, f"""
        models = ["{(REPO / 'examples/models/tiny_cnn.onnx').as_posix()}"]
        targets = ["sram", "sot-mram"]
        pipelines = ["", "canonicalize"]
        [grid]
        "llc.capacity" = ["1MiB", "2MiB", "4MiB", "8MiB"]
        """))
    monkeypatch.setattr(run_mod, "_LocalWorkers", Dying)
    with sweep.Store(tmp_path / "r.sqlite") as store:
        summary = sweep.run_sweep(spec, store, workers=2, chunk=2)
    assert summary.lost and summary.counts["pending"] > 0 and summary.counts["error"] == 0
    if killed == 1:
        assert summary.counts["ok"] > 0       # the survivor ran what it was given and what the dead one left
    else:
        assert summary.counts["ok"] == 0 and summary.counts["pending"] == len(spec.points)
    monkeypatch.undo()
    with sweep.Store(tmp_path / "r.sqlite") as store:
        again = sweep.run_sweep(spec, store, workers=2, chunk=2)
    assert again.counts["ok"] == len(spec.points) and not again.lost


def test_the_same_file_bound_to_other_shapes_is_another_front(tmp_path):
    """Fronts are per model as costed: the same file at two input shapes does not compete in one."""
    from nvmc.sweep.export import mark_pareto

    tiny = (REPO / "examples" / "models" / "tiny_transformer.onnx").as_posix()
    spec = sweep.load_spec(write_spec(tmp_path, f"""
models = [{{path = "{tiny}", input_shapes = {{tokens = [1, 16, 64]}}}},
          {{path = "{tiny}", input_shapes = {{tokens = [4, 16, 64]}}}}]
targets = ["sram", "sot-mram"]
"""))
    with sweep.Store(tmp_path / "r.sqlite") as store:
        sweep.run_sweep(spec, store, workers=0)
        rows = store.rows()
    assert {r["input_shapes"] for r in rows} == {"tokens=1x16x64", "tokens=4x16x64"}
    mark_pareto(rows)
    for shapes in ("tokens=1x16x64", "tokens=4x16x64"):
        assert sum(r["pareto"] for r in rows if r["input_shapes"] == shapes) >= 1   # each has its own front
    shown = run_nvmc("results", str(tmp_path / "r.sqlite"))
    assert "[tokens=1x16x64] (batch 1)" in shown.stdout and "[tokens=4x16x64] (batch 4)" in shown.stdout
