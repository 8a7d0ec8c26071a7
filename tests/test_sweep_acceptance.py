"""Issue 14's acceptance: a >= 300-point sweep (3 models x 6 targets x 3 pipelines x a
grid) gives identical databases locally and on a Dask LocalCluster; a sweep killed with
SIGKILL at random moments (>= 5 times) resumes to exactly one complete row per point.

The 6 targets are the three shipped gpu-llc targets (sram, stt-mram, sot-mram), each at
iso-capacity and iso-area, the cheapest cost model there is; the grid adds six L2 capacities.
"""

from __future__ import annotations

import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time

import pytest

from conftest import REPO, run_nvmc, zoo_path
from nvmc import sweep

MODELS = [REPO / "examples" / "models" / "tiny_cnn.onnx", REPO / "examples" / "models" / "tiny_transformer.onnx",
          zoo_path("light_squeezenet")]
COMPARED = ("point_id", "status", "error", "model_hash", "target", "family", "target_hash", "pipeline", "params",
            "batch", "nvmc_version", "latency_s", "energy_j", "edp_js", "throughput_ips", "energy_per_inference_j",
            "area_mm2", "macs", "breakdown", "report")
METRICS = ("latency_s", "energy_j", "edp_js", "throughput_ips", "energy_per_inference_j", "area_mm2", "macs")


@pytest.fixture(scope="module")
def spec_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("sweep") / "acceptance.toml"
    path.write_text(f"""schema = "nvmc.sweep/1"
name = "acceptance"
models = {json.dumps([str(m) for m in MODELS])}
targets = ["sram", "stt-mram", "sot-mram"]
pipelines = ["", "canonicalize", "prune{{sparsity=0.5}}"]
[grid]
"llc.iso" = ["capacity", "area"]
"llc.capacity" = {{from = "1MiB", to = "32MiB", factor = 2}}
""")
    return path


@pytest.fixture(scope="module")
def local_db(spec_path):
    """The reference: the sweep run locally by the CLI, two worker processes."""
    db = spec_path.parent / "local.sqlite"
    proc = run_nvmc("sweep", str(spec_path), "--db", str(db), "--workers", "2", "-q", check=True)
    assert "ran 324 points" in proc.stdout and "0 failed" in proc.stdout, proc.stdout
    return db


def table(db) -> dict[str, tuple]:
    with sqlite3.connect(db) as con:
        rows = con.execute(f"SELECT {', '.join(COMPARED)} FROM results").fetchall()
    return {r[0]: r for r in rows}


def test_spec_has_at_least_300_points(spec_path):
    spec = sweep.load_spec(spec_path)
    assert len(spec.models) == 3 and len(spec.targets) == 3 and len(spec.groups()) == 9
    configs = {(spec.targets[p.target].name, dict(p.params)["llc.iso"]) for p in spec.points}
    assert len(configs) == 6                                   # 3 technologies x iso-capacity/iso-area
    assert len(spec.points) == 3 * 6 * 3 * 6 == 324


def test_local_and_dask_cluster_give_identical_results(spec_path, local_db):
    distributed = pytest.importorskip("distributed")
    cluster = distributed.LocalCluster(n_workers=1, threads_per_worker=2, processes=False, host="127.0.0.1",
                                       protocol="tcp", dashboard_address=None)
    try:
        db = spec_path.parent / "cluster.sqlite"
        proc = run_nvmc("sweep", str(spec_path), "--db", str(db), "--scheduler", cluster.scheduler_address, "-q",
                        check=True)
        assert "ran 324 points" in proc.stdout and "Dask cluster" in proc.stdout
    finally:
        cluster.close()
    local, remote = table(local_db), table(db)
    assert len(local) == 324
    statuses = {r[1] for r in local.values()}
    assert "ok" in statuses and "error" not in statuses
    assert local == remote


def _count(db) -> int:
    try:
        with sqlite3.connect(db, timeout=5) as con:
            return con.execute("SELECT COUNT(*) FROM results").fetchone()[0]
    except sqlite3.OperationalError:  # not created yet
        return 0


def test_killed_sweep_resumes_with_one_complete_row_per_point(spec_path, local_db):
    db = spec_path.parent / "killed.sqlite"
    env = dict(os.environ, NO_COLOR="1")
    cmd = [sys.executable, "-m", "nvmc", "sweep", str(spec_path), "--db", str(db), "--workers", "1", "--chunk", "1",
           "-q"]
    rng = random.Random(14)
    kills, mid_sweep, rounds = [], 0, 0
    while (len(kills) < 5 or mid_sweep < 3) and rounds < 20:
        rounds += 1
        before = _count(db)
        proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                start_new_session=True)
        try:
            if rounds % 3 == 1:   # a moment during start-up, planning or the first tasks
                deadline = time.monotonic() + rng.uniform(0.05, 0.6)
                while time.monotonic() < deadline and proc.poll() is None:
                    time.sleep(0.01)
            else:                 # a moment after this run has written some rows
                deadline = time.monotonic() + 60
                while _count(db) == before and proc.poll() is None and time.monotonic() < deadline:
                    time.sleep(0.01)
                time.sleep(rng.uniform(0.0, 0.04))  # soon after: a quiet machine runs ~100 points/s
            if proc.poll() is None:
                at = _count(db)
                proc.send_signal(signal.SIGKILL)
                kills.append(at)
                mid_sweep += 0 < at < 324
            proc.wait(timeout=30)
        finally:
            try:                  # the worker processes of this run (its own session) exit with it
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if _count(db) == 324:
            break
    assert len(kills) >= 5 and mid_sweep >= 3, f"kills at row counts {kills}: the sweep ran too fast to kill"

    final = run_nvmc("sweep", str(spec_path), "--db", str(db), "--workers", "1", "-q", check=True)
    assert "0 pending" in final.stdout

    with sqlite3.connect(db) as con:
        assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        n, distinct = con.execute("SELECT COUNT(*), COUNT(DISTINCT point_id) FROM results").fetchone()
    assert n == distinct == 324
    planned = {p.id for p in sweep.load_spec(spec_path).points}
    got = table(db)
    assert set(got) == planned
    for row in got.values():                                   # every row complete
        r = dict(zip(COMPARED, row))
        assert r["status"] in ("ok", "not_fitting")
        if r["status"] == "ok":
            assert all(r[k] is not None for k in METRICS)
            report = sweep.decode_report(r["report"])
            assert report["totals"]["edp_js"] == r["edp_js"] and report["layers"]
    assert got == table(local_db)                              # and the same figures as an uninterrupted run
