"""An out-of-tree cost-model family: ``scratchpad``, a MAC array with one on-chip SRAM
scratchpad and DRAM behind it. It shows what a family is: a ``count`` function (this file)
and a data file (``scratchpad.toml``: every key, its default and where that comes from).
nvmc prices the counts (energy = count x price, static power x time), states the scope and
the precision, and lists every number in ``nvmc explain``.

Per node: MACs run on ``array.lanes`` lanes at ``array.clock_hz``; non-MAC ops on the same
lanes, a transcendental one taking ``array.transcendental_cost`` slots. Every operand and
result passes through the scratchpad once; weights come from DRAM (their rows only, for a
lookup), and so do activations larger than the scratchpad. The node takes the longer of
its compute and DRAM times.
"""

from pathlib import Path

import numpy as np

from nvmc.backends.family import KIND, Counts, FamilySpec, element_slots

FAMILY = "scratchpad"
TARGETS_DIR = Path(__file__).parent / "targets"   # nvmc targets lists the targets found here
SPEC = FamilySpec.load(FAMILY, Path(__file__).parent)
SCHEMA = SPEC.schema


def resolve(p) -> None:
    """Every number the model reads (so that nvmc explain lists them all)."""
    for key in ("array.lanes", "array.clock_hz", "array.transcendental_cost", "energy.mac_j", "energy.sram_byte_j",
                "energy.dram_byte_j", "memory.scratchpad", "memory.dram_bytes_per_s", "power.static_w"):
        p.param(key)


def count(workload, p) -> Counts:
    c = workload.columns
    work = c["kind"] != KIND["view"]
    macs = np.where(work, c["macs"], 0.0)
    slots = np.where(work, element_slots(workload, p["array.transcendental_cost"]), 0.0)
    act = c["input_bytes"] + c["output_bytes"]
    sram_bytes = np.where(work, act + c["weight_read_bytes"], 0.0)
    dram_bytes = np.where(work, c["weight_read_bytes"] + np.maximum(0.0, act - p["memory.scratchpad"]), 0.0)
    busy = {"compute": (macs + slots) / (p["array.lanes"] * p["array.clock_hz"]),
            "dram": dram_bytes / p["memory.dram_bytes_per_s"]}
    return Counts(
        actions={"compute": (macs + slots, p["energy.mac_j"]), "scratchpad": (sram_bytes, p["energy.sram_byte_j"]),
                 "dram": (dram_bytes, p["energy.dram_byte_j"])},
        busy=busy, latency=np.maximum(busy["compute"], busy["dram"]), static={"static": p["power.static_w"]},
        bits=np.full(len(macs), float(p["array.bits"])))


def estimate(workload, target, *, batch=1):
    return SPEC.estimate(workload, target, count, batch=batch)


def parameters(target):
    return SPEC.parameters(target, resolve)
