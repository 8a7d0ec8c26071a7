"""``mapping.tiling = "search"`` in the systolic family (backends/systolic_tiling.py, issue 26):
per layer the GEMM tiles and DRAM-level loop order that move the fewest DRAM bytes within the
usable buffer bytes.

* Never more DRAM bytes than ``"fixed"``, per layer. Why: the search is a per-layer choice between
  the fixed loop-order rule (systolic.py point 3, exactly the numbers ``"fixed"`` computes, order
  code 6) and the best searched tiling, and the searched tiling is only taken where it moves
  fewer bytes (or as many, with no more buffer accesses). So the fixed orders are in the search
  space by construction; the test checks it on real models, every dataflow, small and large
  buffers. Compute cycles do not change (the array's folds stay SCALE-Sim's).
* Every chosen tile fits its buffer's usable bytes (capacity x buffers.usable_fraction).
* A brute force over *all* tile sizes (1..M, 1..N, 1..K) and the 6 loop orders, written here
  independently and in plain Python, agrees with the vectorised search on 3 small layers (M, N
  <= 8, where the search's trip-count grid is exhaustive and K is solved exactly).
* The CLI: ``--set mapping.tiling=search`` reports the note and the per-layer columns; USER mode
  refuses it with a one-line error.
"""

from __future__ import annotations

import itertools
import json
from functools import lru_cache
from pathlib import Path

import numpy as np
import pytest

import nvmc
from conftest import run_nvmc
from nvmc.backends import estimate, load_target, systolic
from nvmc.backends import systolic_tiling as st
from nvmc.backends.errors import TargetError
from nvmc.backends.systolic_traffic import operands, traffic

MODELS = Path(__file__).resolve().parents[1] / "examples" / "models"
TARGET = "systolic-sram-28nm"
SMALL_BUFFERS = ["ifmap_buffer.capacity=8KiB", "filter_buffer.capacity=8KiB", "ofmap_buffer.capacity=8KiB"]
CASES = [pytest.param(model, sets, id=f"{model}-{'-'.join(sets) or 'default'}")
         for model in ("resnet50", "tiny_transformer", "tiny_cnn")
         for sets in ([], ["array.dataflow=ws"], ["array.dataflow=is"], ["array.dataflow=auto", "array.size=128x128"],
                      SMALL_BUFFERS, ["array.dataflow=ws", *SMALL_BUFFERS])]


@lru_cache(maxsize=None)
def workload(name: str):
    return nvmc.analyze(nvmc.load(MODELS / f"{name}.onnx"))


def dram(est) -> np.ndarray:
    return est.events["dram_read_bytes"] + est.events["dram_write_bytes"]


@pytest.mark.parametrize("model, sets", CASES)
def test_search_never_moves_more_dram_bytes_than_fixed(model, sets):
    w = workload(model)
    fixed = estimate(w, load_target(TARGET, sets))
    default = estimate(w, load_target(TARGET, [*sets, "mapping.tiling=fixed"]))
    found = estimate(w, load_target(TARGET, [*sets, "mapping.tiling=search"]))
    assert np.array_equal(dram(default), dram(fixed)) and default.totals == fixed.totals   # "fixed" is the default
    if "array.dataflow=auto" in sets:
        # auto may choose another dataflow once DRAM time falls: compare each node with the fixed
        # tiling of the dataflow it ran (the guarantee is per dataflow)
        runs = [estimate(w, load_target(TARGET, [*sets[1:], f"array.dataflow={df}"])) for df in ("os", "ws", "is")]
        ran = np.nan_to_num(found.events["dataflow"]).astype(int)
        fixed_dram = np.choose(ran, [dram(e) for e in runs])
        fixed_cycles = np.choose(ran, [e.events["compute_cycles"] for e in runs])
    else:
        fixed_dram, fixed_cycles = dram(fixed), fixed.events["compute_cycles"]
    assert np.all(dram(found) <= fixed_dram)
    assert np.array_equal(found.events["compute_cycles"], fixed_cycles)
    assert "loop_order" in found.events and "loop_order" not in fixed.events
    note = [n for n in found.notes if n.startswith("tiling search:")]
    assert len(note) == 1 and "over fixed loop orders" in note[0]
    assert found.info["dram_bytes_fixed_tiling"] == pytest.approx(float(fixed_dram.sum()), rel=1e-12)
    mac = np.isfinite(found.events["loop_order"])
    assert mac.sum() > 0 and set(np.unique(found.events["loop_order"][mac])) <= set(range(st.FIXED + 1))


def test_search_saves_dram_on_resnet50():
    w = workload("resnet50")
    fixed = dram(estimate(w, load_target(TARGET, []))).sum()
    found = estimate(w, load_target(TARGET, ["mapping.tiling=search"]))
    assert dram(found).sum() < 0.9 * fixed
    assert found.totals["energy_j"] < estimate(w, load_target(TARGET, [])).totals["energy_j"]


@pytest.mark.parametrize("model, sets", CASES)
def test_every_chosen_tile_fits_its_buffer(model, sets):
    target = load_target(TARGET, [*sets, "mapping.tiling=search"])
    p = systolic.SPEC.params(target)
    chip = systolic.resolve(p)
    s = operands(workload(model), p, chip)
    dfs = ("os", "ws", "is") if p["array.dataflow"] == "auto" else (p["array.dataflow"],)
    for df in dfs:
        tl = traffic(s, p, chip, df)["tiles"]
        tiled = np.isfinite(tl["tile_m"])
        assert np.all(np.isfinite(tl["order"]) == (s.is_mac & (s.gm * s.gn * s.gk > 0)))
        assert np.all(np.isnan(tl["tile_m"]) == (tl["order"] == st.FIXED) | ~np.isfinite(tl["order"]))
        mt, nt, kt = (tl[k][tiled] for k in ("tile_m", "tile_n", "tile_k"))
        assert np.all((mt >= 1) & (nt >= 1) & (kt >= 1))
        assert np.all((mt <= s.gm[tiled]) & (nt <= s.gn[tiled]) & (kt <= s.gk[tiled]))
        assert np.all(mt * kt * s.a_el[tiled] <= s.use["ifmap"])
        assert np.all(kt * nt * s.w_el[tiled] <= s.use["filter"])
        assert np.all(mt * nt * s.psum <= s.use["ofmap"])


# ------------------------------------------------------------------ brute force
ORDERS = ["".join(o) for o in itertools.permutations("MNK")]


def brute_force(m, n, k, gb, a_u, b_u, a_el, w_el, psum, use, word, k_folds):
    """Every tile size and order, one at a time: (DRAM bytes, buffer accesses, tiles) of the best, the
    rule written out from the docstring of systolic_tiling, not from its code."""
    best = (np.inf, np.inf, np.inf)
    for mt, nt, kt in itertools.product(range(1, m + 1), range(1, n + 1), range(1, k + 1)):
        if mt * kt * a_el > use["ifmap"] or kt * nt * w_el > use["filter"] or mt * nt * psum > use["ofmap"]:
            continue
        trips = {"M": -(-m // mt), "N": -(-n // nt), "K": -(-k // kt)}
        for order in ORDERS:
            def fetched(irrelevant):   # times an operand ignoring this loop is fetched
                inner = order[order.index(irrelevant) + 1:]
                return trips[irrelevant] if any(trips[c] > 1 for c in inner) else 1
            a_re, b_re = a_u * (fetched("N") - 1), b_u * (fetched("M") - 1)
            c_bytes = gb * m * n * psum
            spill = 2 * c_bytes * (fetched("K") - 1)
            extra = c_bytes * max(trips["K"] - k_folds, 0) if fetched("K") == 1 else 0
            cost = (a_re + b_re + spill, a_re / word["ifmap"] + b_re / word["filter"] + 2 * extra / word["ofmap"],
                    trips["M"] * trips["N"] * trips["K"])
            best = min(best, cost)
    return best


LAYERS = [  # M, N, K, gemm_batch, a_el, w_el, k_folds: a conv, a depthwise-like batch, an fp16 GEMM
    (8, 6, 12, 1, 1.0, 1.0, 1),
    (7, 3, 9, 4, 1.0, 1.0, 2),
    (5, 8, 10, 1, 2.0, 2.0, 1),
]


@pytest.mark.parametrize("use", [dict(ifmap=24.0, filter=20.0, ofmap=64.0), dict(ifmap=64.0, filter=16.0, ofmap=32.0),
                                 dict(ifmap=12.0, filter=40.0, ofmap=200.0)])
def test_vectorised_search_agrees_with_a_brute_force(use):
    m, n, k, gb, a_el, w_el, k_folds = (np.array(c, dtype=np.float64) for c in zip(*LAYERS))
    a_u, b_u = gb * m * k * a_el, gb * k * n * w_el
    word = dict(ifmap=32.0, filter=32.0, ofmap=32.0)
    r = st.search(m, n, k, gb=gb, a_u=a_u, b_u=b_u, a_el=a_el, w_el=w_el, psum=4.0, use=use, word=word,
                  k_folds=k_folds)
    for i, (mi, ni, ki, gbi, ae, we, kf) in enumerate(LAYERS):
        want = brute_force(mi, ni, ki, gbi, a_u[i], b_u[i], ae, we, 4.0, use, word, kf)
        assert r["ok"][i] == np.isfinite(want[0])
        if r["ok"][i]:
            tiles = np.ceil(mi / r["tile_m"][i]) * np.ceil(ni / r["tile_n"][i]) * np.ceil(ki / r["tile_k"][i])
            assert (r["dram"][i], r["accesses"][i], tiles) == pytest.approx(want, rel=1e-12, abs=1e-12)
            assert r["dram"][i] == pytest.approx(r["a_re"][i] + r["b_re"][i] + r["spill"][i])
            mt, nt, kt = r["tile_m"][i], r["tile_n"][i], r["tile_k"][i]
            assert mt * kt * ae <= use["ifmap"] and kt * nt * we <= use["filter"] and mt * nt * 4 <= use["ofmap"]


def test_a_layer_nothing_fits_keeps_the_fixed_rule():
    r = st.search(np.array([4.0]), np.array([4.0]), np.array([4.0]), gb=1.0, a_u=16.0, b_u=16.0, a_el=1.0,
                  w_el=1.0, psum=4.0, use=dict(ifmap=8.0, filter=8.0, ofmap=2.0), word=dict(ifmap=32, filter=32,
                                                                                          ofmap=32), k_folds=1.0)
    assert not r["ok"][0] and np.isnan(r["tile_m"][0]) and r["dram"][0] == np.inf


# ------------------------------------------------------------------ CLI
def test_cli_set_mapping_tiling_search(tmp_path):
    report = tmp_path / "r.json"
    proc = run_nvmc("compile", str(MODELS / "tiny_cnn.onnx"), "--target", TARGET, "--set", "mapping.tiling=search",
                    "--json", str(report), check=True)
    assert "Traceback" not in proc.stderr
    data = json.loads(report.read_text())
    text = json.dumps(data)
    assert "tiling search: DRAM traffic" in text and "loop_order" in text and "tile_k" in text


def test_user_mode_refuses_the_search():
    with pytest.raises(TargetError, match="mapping.tiling = 'search' needs interface.mode = 'calc'"):
        estimate(workload("tiny_cnn"), load_target(TARGET, ["mapping.tiling=search", "interface.mode=user"]))
    proc = run_nvmc("compile", str(MODELS / "tiny_cnn.onnx"), "--target", TARGET, "--set", "mapping.tiling=search",
                    "--set", "interface.mode=user")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "mapping.tiling" in proc.stderr + proc.stdout


def test_a_bad_tiling_value_names_the_choices():
    with pytest.raises(TargetError, match="search"):
        estimate(workload("tiny_cnn"), load_target(TARGET, ["mapping.tiling=greedy"]))
