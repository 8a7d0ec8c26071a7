"""Generation sweeps: a spec's [generate] makes every point nvmc.generate's generation (the
figures of `nvmc compile --generate`), stored in the rows' existing columns and breakdown."""

from __future__ import annotations

import csv
import io
import json
import sqlite3

import pytest

import nvmc
from conftest import REPO, run_nvmc
from nvmc import sweep
from nvmc.sweep import worker
from nvmc.sweep.spec import SpecError

PAST = REPO / "tests" / "data" / "gpt2" / "tiny_gpt2_past.onnx"
CNN = REPO / "examples" / "models" / "tiny_cnn.onnx"
GENERATE = "[generate]\nprompt = 32\ntokens = 16\n"


def write_spec(tmp_path, body: str, name: str = "g.toml"):
    path = tmp_path / name
    path.write_text('schema = "nvmc.sweep/1"\n' + body)
    return path


def gen_spec(tmp_path, generate: str = GENERATE, models=(PAST,), name: str = "g.toml"):
    return write_spec(tmp_path, f"""name = "gen"
models = [{", ".join(f'"{m}"' for m in models)}]
targets = ["sram", "sot-mram"]
[grid]
"llc.capacity" = ["2MiB", "8MiB"]
{generate}""", name)


def test_rows_are_nvmc_generate_of_the_point(tmp_path):
    spec = sweep.load_spec(gen_spec(tmp_path))
    assert len(spec.points) == 4 and spec.generate == (("prompt", 32), ("samples", 9), ("tokens", 16))
    with sweep.Store(tmp_path / "r.sqlite") as store:
        summary = sweep.run_sweep(spec, store, workers=0)
        rows = store.rows(report=True)
    assert summary.counts["ok"] == 4
    for row in rows:
        capacity = json.loads(row["params"])["llc.capacity"]
        g = nvmc.generate(str(PAST), [row["target"]], prompt=32, tokens=16, sets=[f"llc.capacity={capacity}"])
        want, r = g.to_dict(), g.results[0]
        t = want["targets"][0]
        assert row["status"] == "ok" and row["batch"] == 1
        assert row["latency_s"] == pytest.approx(r.total_s, rel=1e-12)             # prefill + every decode step
        assert row["energy_j"] == pytest.approx(r.total_j, rel=1e-12)
        assert row["edp_js"] == pytest.approx(r.total_s * r.total_j, rel=1e-12)
        assert row["throughput_ips"] == pytest.approx(t["tokens_per_s"], rel=1e-12)  # tokens/s (batch 1)
        assert row["energy_per_inference_j"] == pytest.approx(t["j_per_token"], rel=1e-12)  # J/token
        gen = json.loads(row["breakdown"])["generation"]
        assert (gen["prompt"], gen["tokens"], gen["samples"], gen["batch"]) == (32, 16, 9, 1)
        assert gen["ttft_s"] == pytest.approx(t["ttft_s"], rel=1e-12)
        assert gen["per_token_latency_s"]["median"] == pytest.approx(t["per_token_latency_s"]["median"], rel=1e-12)
        assert gen["tokens_per_s"] == pytest.approx(t["tokens_per_s"], rel=1e-12)
        assert gen["j_per_token"] == pytest.approx(t["j_per_token"], rel=1e-12)
        assert gen["kv_cache_bytes_per_token"] == 1024 and gen["kv_cache_bytes_total"] == 1024 * (32 + 16 - 1)
        report = sweep.decode_report(row["report"])
        assert report["schema"] == "nvmc.generation/1" and report["targets"][0]["curve"] == t["curve"]
    # SQL reaches the figures without a schema change
    db = sqlite3.connect(tmp_path / "r.sqlite")
    tps = db.execute("SELECT json_extract(breakdown, '$.generation.tokens_per_s') FROM results").fetchall()
    assert all(v > 0 for (v,) in tps)


def test_identity_includes_the_generate_settings(tmp_path):
    forward = sweep.load_spec(gen_spec(tmp_path, generate="", name="f.toml"))
    a = sweep.load_spec(gen_spec(tmp_path))
    b = sweep.load_spec(gen_spec(tmp_path, generate="[generate]\nprompt = 32\ntokens = 17\n", name="b.toml"))
    c = sweep.load_spec(gen_spec(tmp_path, generate="[generate]\nprompt = 32\ntokens = 16\nsamples = 9\n",
                                 name="c.toml"))
    ids = [{p.id for p in s.points} for s in (forward, a, b)]
    assert not ids[0] & ids[1] and not ids[1] & ids[2] and not ids[0] & ids[2]
    assert {p.id for p in c.points} == ids[1]          # samples = 9 is the default: the same points


def test_resume_skips_done_points(tmp_path, monkeypatch):
    spec = sweep.load_spec(gen_spec(tmp_path))
    db = tmp_path / "r.sqlite"
    with sweep.Store(db) as store:
        store.write(worker.evaluate(sweep.run.make_tasks(spec, {spec.points[0].id}, 8)[0]))
    calls = []
    real = nvmc.generation.generate
    monkeypatch.setattr(nvmc.generation, "generate", lambda *a, **k: calls.append(1) or real(*a, **k))
    with sweep.Store(db) as store:
        summary = sweep.run_sweep(spec, store, workers=0)
    assert (summary.skipped, summary.ran, len(calls)) == (1, 3, 3)
    with sweep.Store(db) as store:
        summary = sweep.run_sweep(spec, store, workers=0)
    assert (summary.skipped, summary.ran, len(calls)) == (4, 0, 3)


@pytest.mark.parametrize("table, message", [
    ("[generate]\nprompt = 32\n", "[generate] needs tokens"),
    ("[generate]\nprompt = 32\ntokens = 16\nsample = 4\n", "did you mean 'samples'"),
    ("[generate]\nprompt = 32\ntokens = \"16\"\n", "tokens = '16': expected a whole number"),
    ("[generate]\nprompt = 0\ntokens = 16\n", "prompt and tokens must be at least 1"),
    ("[generate]\nprompt = 4\ntokens = 16\nsamples = 1\n", "samples at least 2"),
    ("generate = 5\n", "must be a table"),
])
def test_bad_generate_table(tmp_path, table, message):
    path = (write_spec(tmp_path, f'{table}models = ["{PAST}"]\ntargets = ["sram"]\n') if table.startswith("generate")
            else gen_spec(tmp_path, generate=table))
    with pytest.raises(SpecError) as e:
        sweep.load_spec(path)
    assert message in e.value.render() and str(path) in e.value.render()


def test_bad_generate_table_cli_exit_2_with_line(tmp_path):
    path = gen_spec(tmp_path, generate="[generate]\nprompt = 32\ntokens = 16\ntokns = 3\n")
    proc = run_nvmc("sweep", str(path), "--db", str(tmp_path / "r.sqlite"))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert f"{path}:10: [generate] unknown key 'tokns'" in proc.stderr, proc.stderr   # the key's line
    assert "did you mean 'tokens'" in proc.stderr
    both = write_spec(tmp_path, f'models = ["{PAST}"]\ntargets = ["sram"]\n{GENERATE}[costing]\nmode = "train"\n',
                      "both.toml")
    proc = run_nvmc("sweep", str(both), "--db", str(tmp_path / "r.sqlite"))
    assert proc.returncode == 2 and "does not combine with [costing]" in proc.stderr
    assert not (tmp_path / "r.sqlite").exists()


def test_model_without_sequence_input_is_not_applicable(tmp_path):
    spec = sweep.load_spec(gen_spec(tmp_path, models=(PAST, CNN)))
    with sweep.Store(tmp_path / "r.sqlite") as store:
        summary = sweep.run_sweep(spec, store, workers=0)
        rows = store.rows()
    assert summary.counts == {"ok": 4, "not_fitting": 0, "not_applicable": 4, "error": 0, "pending": 0}
    na = [r for r in rows if r["status"] == "not_applicable"]
    assert all("tiny_cnn" in r["model"] and "needs a token input with a symbolic sequence dim" in r["error"]
               for r in na)


def test_cli_results_show_generation_figures(tmp_path):
    path = gen_spec(tmp_path, models=(PAST, CNN))
    db = tmp_path / "r.sqlite"
    proc = run_nvmc("sweep", str(path), "--db", str(db), "--workers", "1", "-q")
    assert proc.returncode == 0, proc.stderr
    proc = run_nvmc("results", str(path), "--db", str(db))
    assert proc.returncode == 0, proc.stderr
    assert "generate prompt=32,tokens=16" in proc.stdout and "tokens/s" in proc.stdout and "J/token" in proc.stdout
    assert "over generation latency, energy/token" in proc.stdout
    proc = run_nvmc("results", str(path), "--db", str(db), "--csv", "-")
    rows = list(csv.DictReader(io.StringIO(proc.stdout)))
    ok = [r for r in rows if r["status"] == "ok"]
    assert len(ok) == 4 and all(float(r["gen:tokens_per_s"]) == pytest.approx(float(r["throughput_ips"]))
                                and float(r["gen:j_per_token"]) > 0 for r in ok)
    assert sum(r["pareto"] == "True" for r in ok) >= 1


def test_generations_of_other_settings_do_not_compete(tmp_path):
    """One database, the same model generating 16 and 64 tokens: two groups, two fronts."""
    db = tmp_path / "r.sqlite"
    with sweep.Store(db) as store:
        for name, generate in (("h.toml", "[generate]\nprompt = 32\ntokens = 64\n"), ("g.toml", GENERATE)):
            sweep.run_sweep(sweep.load_spec(gen_spec(tmp_path, generate=generate, name=name)), store, workers=0)
        rows = store.rows()
    from nvmc.sweep.export import group_key, mark_pareto

    mark_pareto(rows)
    assert len({group_key(r) for r in rows}) == 2
    assert all(any(r["pareto"] for r in rows if group_key(r) == k) for k in {group_key(r) for r in rows})
