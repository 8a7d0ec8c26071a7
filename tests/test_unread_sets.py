"""A key the user sets that the cost model never reads (backends/family.py, ``Params.unread_sets``):
the estimate says so in one note, so a flat sweep over it is not mistaken for a finding. A key the
model reads, on any layer, gets no note; listing every key (``nvmc explain``, carbon's node look-up)
is not the model reading it."""

from __future__ import annotations

import pytest

import nvmc
from nvmc.backends import estimate, explain, load_target
from nvmc.passes.workload import analyze

from conftest import REPO

STACK = "memory.stack_bandwidth_bytes_per_s=1e9"     # mensa's in-memory path: read with partition.rule = mensa only
INTERFACE = "interface.bandwidth_words_per_cycle=4"  # systolic: read with interface.mode = user only


def unread(est) -> list[str]:
    return [n for n in est.notes if n.endswith("it changed nothing")]


@pytest.fixture(scope="module")
def cnn(example_models):
    return analyze(nvmc.load(example_models / "tiny_cnn.onnx"))


@pytest.mark.parametrize("target, sets", [("edge-tpu", [STACK]), ("mensa", ["partition.rule=single", STACK]),
                                          ("systolic-sram-28nm", [INTERFACE])])
def test_a_key_the_model_does_not_read_gets_one_note_and_changes_nothing(cnn, target, sets):
    key = sets[-1].partition("=")[0]
    est = estimate(cnn, target, sets=sets)
    assert len(unread(est)) == 1
    assert unread(est)[0].startswith(f"--set {key}=")
    assert f"not read by {target}'s model in this configuration" in unread(est)[0]
    without = estimate(cnn, target, sets=sets[:-1])
    assert unread(without) == []
    assert est.totals["latency_s"] == without.totals["latency_s"]
    assert est.totals["energy_j"] == without.totals["energy_j"]


@pytest.mark.parametrize("target, sets", [("mensa", [STACK]), ("systolic-sram-28nm", ["array.rows=64"]),
                                          ("systolic-sram-28nm", ["interface.mode=user", INTERFACE]),
                                          ("sram", ["llc.capacity=8MiB"])])
def test_a_key_the_model_reads_gets_no_note(cnn, target, sets):
    assert unread(estimate(cnn, target, sets=sets)) == []


def test_listing_every_key_does_not_count_as_reading_it(cnn):
    target = load_target("edge-tpu", [STACK])
    explain(target)                       # nvmc explain, and carbon's node look-up, list every key
    assert len(unread(estimate(cnn, target))) == 1
    explain(target)
    assert len(unread(estimate(cnn, target))) == 1   # a second estimate of the same target (generation's steps)


def test_the_note_reaches_compile_and_its_json(example_models):
    c = nvmc.compile(example_models / "tiny_cnn.onnx", "edge-tpu", sets=[STACK])
    assert len(unread(c.estimates[0])) == 1
    assert unread(c.estimates[0])[0] in c.to_dict()["notes"]


def test_training_adds_no_note_of_its_own_sets(example_models):
    """Training switches crossbar targets to run.mode=train with a --set of its own: it is read."""
    c = nvmc.compile(example_models / "tiny_cnn.onnx", "rram-pim", sets=["chip.tiles=16"], mode="train")
    assert [unread(e) for e in c.estimates] == [[]]


def test_generation_notes_only_an_unread_key():
    model = REPO / "examples" / "models" / "gpt2" / "gpt2_tiny_past.onnx"
    read = nvmc.generate(model, "sram", prompt=8, tokens=4, sets=["llc.capacity=8MiB"])
    assert [unread(r) for r in read.results] == [[]]
    flat = nvmc.generate(model, "sram", prompt=8, tokens=4, sets=["scope.static_power_fraction=0.5"])
    assert [len(unread(r)) for r in flat.results] == [1]
