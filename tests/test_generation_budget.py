"""`nvmc compile --generate` with --budget and -o: budgets on the generation's figures (ttft,
token_latency, tokens_per_s, j_per_token; latency and energy of the whole generation) fail a
build with exit 3, a budget on a figure the run does not produce is refused (exit 2), and -o
writes the transformed model at the prefill's shapes, under compile's output-path checks.

Every threshold is argued from the run's own figures (nvmc.generate in-process, the same
costing the CLI runs): half and twice what it measured, so a pass and a failure are each
a factor of 2 away from the edge."""

from __future__ import annotations

import hashlib
import json
import shutil

import numpy as np
import pytest

from conftest import REPO, run_nvmc
from nvmc.budget import EXIT_BUDGET, METRICS
from nvmc.generation import generate

MODEL = REPO / "examples" / "models" / "gpt2" / "gpt2_tiny_past.onnx"
PROMPT, TOKENS = 16, 8
SPEC = f"prompt={PROMPT},tokens={TOKENS}"
TARGETS = ["gpu", "upmem"]
UNITS = {"ttft": "s", "token_latency": "s", "tokens_per_s": "/s", "j_per_token": "J", "latency": "s", "energy": "J"}


@pytest.fixture(scope="module")
def figures() -> dict[str, dict[str, float]]:
    """target -> metric -> the value the generation produced."""
    gen = generate(MODEL, TARGETS, prompt=PROMPT, tokens=TOKENS)
    return {r.target: {m: r.totals[METRICS[m].total] for m in UNITS} for r in gen.results}


def budget_at(figures, factor_upper: float) -> str:
    """Every metric at ``factor_upper`` x the largest figure of the targets (upper bounds), and at
    1 / factor_upper x the smallest (tokens_per_s, a lower bound): > 1 keeps them all, < 1 breaks them all."""
    parts = []
    for m, unit in UNITS.items():
        values = [f[m] for f in figures.values()]
        limit = factor_upper * max(values) if METRICS[m].upper else min(values) / factor_upper
        parts.append(f"{m}={limit:.6g}{unit}")
    return ",".join(parts)


def test_the_figures_are_the_generations(figures):
    gen = generate(MODEL, "gpu", prompt=PROMPT, tokens=TOKENS).results[0]
    f = figures["gpu"]
    assert f["latency"] == pytest.approx(gen.per_token_latency_s.sum()) and f["latency"] > f["ttft"]  # the whole run
    assert f["energy"] == pytest.approx(gen.per_token_energy_j.sum())
    assert f["token_latency"] == pytest.approx(np.median(gen.per_token_latency_s[1:]))
    assert f["tokens_per_s"] == pytest.approx(TOKENS / f["latency"]) and f["j_per_token"] == pytest.approx(
        f["energy"] / TOKENS)


def test_every_metric_kept_at_twice_the_figure(figures, tmp_path):
    out = tmp_path / "g.json"
    r = run_nvmc("compile", str(MODEL), "-t", "gpu", "--compare", "upmem", "--generate", SPEC,
                 "--budget", budget_at(figures, 2.0), "--json", str(out))
    assert r.returncode == 0, r.stderr
    for target in TARGETS:
        for m in UNITS:
            assert f"budget ok: {target}: {m} " in r.stderr
    assert "budget exceeded" not in r.stderr
    checks = {(b["target"], b["metric"]): b for b in json.loads(out.read_text())["budgets"]}
    assert set(checks) == {(t, m) for t in TARGETS for m in UNITS}
    for (target, m), b in checks.items():
        assert b["ok"] is True and b["value"] == pytest.approx(figures[target][m], rel=1e-9)
        assert b["total"] == METRICS[m].total and b["bound"] == ("max" if METRICS[m].upper else "min")


def test_every_metric_broken_at_half_the_figure(figures, tmp_path):
    out = tmp_path / "g.json"
    r = run_nvmc("compile", str(MODEL), "-t", "gpu", "--compare", "upmem", "--generate", SPEC,
                 "--budget", budget_at(figures, 0.5), "--json", str(out), "-q")
    assert r.returncode == EXIT_BUDGET == 3, r.stderr
    assert r.stdout == "" and "Traceback" not in r.stderr
    lines = r.stderr.strip().splitlines()
    broken = [line for line in lines if line.startswith("budget exceeded: ")]
    assert len(broken) == len(TARGETS) * len(UNITS) and lines[-1] == f"error: {len(broken)} budget(s) exceeded (exit 3)"
    for target in TARGETS:
        for m in UNITS:
            word = "exceeds" if METRICS[m].upper else "is below"
            assert any(line.startswith(f"budget exceeded: {target}: {m} ") and word in line for line in broken)
    data = json.loads(out.read_text())
    assert data["schema"] == "nvmc.generation/1" and not any(b["ok"] for b in data["budgets"])


@pytest.mark.parametrize("metric", list(UNITS))
def test_one_metric_alone_decides_the_exit_code(figures, metric):
    """One budget at a time, on the first target: 2x its figure keeps it (0), 0.5x breaks it (3)."""
    value, unit, upper = figures["gpu"][metric], UNITS[metric], METRICS[metric].upper
    for factor, code in ((2.0, 0), (0.5, EXIT_BUDGET)):
        limit = value * factor if upper else value / factor
        r = run_nvmc("compile", str(MODEL), "-t", "gpu", "--generate", SPEC, "--budget", f"{metric}={limit:.6g}{unit}",
                     "-q")
        assert r.returncode == code, (metric, factor, r.stderr)


@pytest.mark.parametrize("args,fragment", [
    (("--generate", SPEC, "--budget", "ttfb=1s"), "unknown budget metric 'ttfb' — did you mean 'ttft'?"),
    (("--budget", "ttft=1s"), "ttft=1s: compile without --generate produces no ttft"),
    (("--generate", SPEC, "--budget", "throughput=1/s"), f"--generate {SPEC},samples=9 produces no throughput"),
    (("--generate", SPEC, "--budget", "edp=1Js"), "produces no edp"),
    (("--generate", f"prompt={PROMPT},tokens=1", "--budget", "token_latency=1s"), "produces no token_latency"),
    (("--generate", SPEC, "--budget", "tokens_per_s=5mJ"), "'tokens_per_s=5mJ': unknown unit 'mJ'"),
])
def test_unknown_or_unproduced_metric_is_refused(args, fragment):
    model = REPO / "examples" / "models" / "tiny_cnn.onnx" if "--generate" not in args else MODEL
    r = run_nvmc("compile", str(model), "-t", "sram", *args, "-q")
    assert r.returncode == 2 and fragment in r.stderr and "hint: " in r.stderr, r.stderr
    assert "Traceback" not in r.stderr


def test_an_area_budget_on_a_target_without_area_is_refused():
    r = run_nvmc("compile", str(MODEL), "-t", "cpu", "--generate", SPEC, "--budget", "area=1mm2", "-q")
    assert r.returncode == 2 and "target 'cpu' (family 'roofline') models no area" in r.stderr


def test_output_runs_in_onnxruntime_as_the_input_model(tmp_path):
    import onnxruntime as ort

    out = tmp_path / "gen.onnx"
    r = run_nvmc("compile", str(MODEL), "-t", "gpu", "--generate", SPEC, "-o", str(out))
    assert r.returncode == 0, r.stderr
    assert f"wrote {out}" in r.stderr
    written, source = (ort.InferenceSession(str(p), providers=["CPUExecutionProvider"]) for p in (out, MODEL))
    # the prefill's shapes: PROMPT tokens and an empty cache
    rng = np.random.default_rng(0)
    feeds = {}
    for i in written.get_inputs():
        assert all(isinstance(d, int) for d in i.shape), i
        if i.name == "input_ids":
            feeds[i.name] = rng.integers(0, 256, i.shape, dtype=np.int64)
        elif i.name == "attention_mask":
            feeds[i.name] = np.ones(i.shape, dtype=np.int64)
        else:
            feeds[i.name] = np.zeros(i.shape, dtype=np.float32)
    assert feeds["input_ids"].shape == (1, PROMPT) and feeds["past_key_values.0.key"].shape[2] == 0
    got, want = written.run(None, feeds), source.run(None, feeds)
    assert [o.name for o in written.get_outputs()] == [o.name for o in source.get_outputs()]
    for a, b in zip(got, want):
        assert a.shape == b.shape and np.allclose(a, b, rtol=1e-5, atol=1e-6)


def test_output_onto_the_input_model_is_refused(tmp_path):
    model = tmp_path / "m.onnx"
    shutil.copy(MODEL, model)
    before = hashlib.sha256(model.read_bytes()).hexdigest()
    link = tmp_path / "link.onnx"
    link.symlink_to(model)
    for target in (model, link):
        r = run_nvmc("compile", str(model), "-t", "gpu", "--generate", SPEC, "-o", str(target))
        assert r.returncode == 2 and "would overwrite the input" in r.stderr, r.stderr
    assert hashlib.sha256(model.read_bytes()).hexdigest() == before
    r = run_nvmc("compile", str(model), "-t", "gpu", "--generate", SPEC, "-o", str(tmp_path / "m.nvir"))
    assert r.returncode == 2 and "-o writes an .onnx file" in r.stderr
