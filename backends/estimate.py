"""``Estimate``: what every cost-model family returns. Data first; rendering is elsewhere.

Per node (arrays aligned with ``names``): latency by component (the busy time each unit
needs, in s), the node's latency (how the family combines them), energy by component (J),
and event counts (accesses, bytes). Area by component (mm^2). Totals are derived, never
stored twice. Units are SI throughout.

A mapping that does not fit the hardware is a result, ``ok=False`` with a ``reason``; its
totals are then NaN (``None`` in JSON).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

REPORT_SCHEMA = "nvmc.report/1"

# How a layer was laid onto the hardware: the same words for the same things in every family
# (the ``mapping`` of each layer; a family fills the fields it models, a missing one is not
# modelled there). Field -> what it means.
MAPPING_FIELDS: dict[str, str] = {
    "utilization": "the layer's MACs over what the whole target's MAC units could do in the layer's compute time "
                   "(its peak MAC rate x that time): 1 = every unit busy with useful work",
    "units_used": "compute units the layer occupies: PEs of a systolic array, crossbar arrays, DPUs, SMs with a "
                  "thread block, PEs of a sparse engine",
    "units_total": "the target's compute units of that kind",
    "passes": "times the layer is laid onto the hardware one after another: systolic folds, GPU waves of thread "
              "blocks (1: in one go)",
    "split_k": "parts the reduction dimension (K) is split into, their partial sums added afterwards (1: not split)",
    "replication": "copies of the layer's weights held at once (crossbar replicas; UPMEM row groups)",
    "compute_cycles": "clock cycles of the layer's compute with no stall (systolic: SCALE-Sim's)",
    "stall_cycles": ("clock cycles the compute waits for DRAM (systolic with interface.mode = user; mensa: "
                     "an accelerator whose layer needs more than its DRAM path gives)"),
    "dram_bytes": "bytes the layer moves to and from DRAM",
    "onchip_bytes": "bytes the layer moves through on-chip memories (buffers, L2, WRAM)",
    "host_bytes": "bytes moved between the host and the device (DRAM-PIM)",
    "hit_rate": "share of the layer's L2 reads that hit",
    "load_balance": "mean over max of the work per PE (1: every PE equally busy)",
    "adc_conversions": "analogue-to-digital conversions (crossbar)",
}


@dataclass
class Estimate:
    target: str
    family: str
    target_hash: str
    names: list[str]
    ops: list[str]
    macs: np.ndarray
    node_latency: np.ndarray                      # s per node
    latency: dict[str, np.ndarray]                # component -> s per node (busy time)
    energy: dict[str, np.ndarray]                 # component -> J per node
    area: dict[str, float] | None                 # component -> mm^2; None: the family models no area
    events: dict[str, np.ndarray] = field(default_factory=dict)   # e.g. "l2_reads" -> count per node
    batch: int = 1
    ok: bool = True
    reason: str = ""
    notes: list[str] = field(default_factory=list)
    assumptions: list[str] = field(default_factory=list)
    info: dict[str, Any] = field(default_factory=dict)             # resolved target facts (capacity, ...)
    target_file: str = ""
    pipeline: str = ""
    carbon: dict[str, Any] = field(default_factory=dict)          # backends.carbon.carbon(...), set by the driver
    applicable: bool = True                                       # False: the target cannot run this model at all
    scope: dict[str, str] = field(default_factory=dict)           # what the energy covers: label, excludes
    precision: dict[str, Any] = field(default_factory=dict)       # model / costed precision (+ note when they differ)
    mapping: dict[str, np.ndarray] = field(default_factory=dict)  # MAPPING_FIELDS name -> value per node (NaN: none)

    def __post_init__(self) -> None:
        if self.area is not None and not self.area:  # no component: the family models no area
            self.area = None

    @classmethod
    def not_fitting(cls, target, reason: str, *, names=(), ops=(), notes=(), info=None, scope=None,
                    precision=None) -> "Estimate":
        n = len(names)
        return cls(target.name, target.family, target.hash, list(names), list(ops), np.zeros(n), np.full(n, np.nan),
                   {}, {}, {}, ok=False, reason=reason, notes=list(notes), info=dict(info or {}),
                   target_file=target.source, scope=dict(scope or {}), precision=dict(precision or {}))

    @classmethod
    def not_applicable(cls, target, reason: str, *, names=(), ops=()) -> "Estimate":
        """The target cannot run this kind of model (an op its family does not cost): a row of
        a comparison that says why, not an error that ends it."""
        est = cls.not_fitting(target, reason, names=names, ops=ops)
        est.applicable = False
        return est

    @property
    def status(self) -> str:
        """'ok', 'not_fitting' (a result: too big, ...) or 'not_applicable' (it cannot run the model)."""
        return "ok" if self.ok else ("not_fitting" if self.applicable else "not_applicable")

    @property
    def area_mm2(self) -> float | None:
        """Total area; None when the family models none (never 0 for 'not modelled')."""
        return None if self.area is None else float(sum(self.area.values()))

    # ------------------------------------------------------------- totals
    @property
    def node_energy(self) -> np.ndarray:
        if not self.energy:
            return np.full(len(self.names), np.nan)
        return np.sum(list(self.energy.values()), axis=0)

    def energy_by_component(self) -> dict[str, float]:
        return {k: float(v.sum()) for k, v in self.energy.items()}

    def latency_by_component(self) -> dict[str, float]:
        return {k: float(v.sum()) for k, v in self.latency.items()}

    def events_total(self) -> dict[str, float]:
        return {k: float(v.sum()) for k, v in self.events.items()}

    @property
    def totals(self) -> dict[str, float]:
        if not self.ok:
            nan = math.nan
            return {"latency_s": nan, "energy_j": nan, "edp_js": nan, "throughput_ips": nan,
                    "energy_per_inference_j": nan, "area_mm2": self.area_mm2 if self.area else None,
                    "macs": int(self.macs.sum())}
        latency = float(self.node_latency.sum())
        energy = float(self.node_energy.sum())
        return {
            "latency_s": latency,
            "energy_j": energy,
            "edp_js": energy * latency,
            "throughput_ips": self.batch / latency if latency > 0 else math.inf,
            "energy_per_inference_j": energy / self.batch,
            "area_mm2": self.area_mm2,
            "macs": int(self.macs.sum()),
        }

    def energy_of(self, *components: str) -> float:
        """Total energy of the named components (e.g. the LLC's "l2_read", "l2_write", "l2_leakage")."""
        return float(sum(self.energy[c].sum() for c in components))

    # ------------------------------------------------------------- export
    def rows(self) -> list[dict[str, Any]]:
        """Per-layer records, one per node in graph order (the ``layers`` of the JSON report)."""
        return self.layers()

    def layers(self) -> list[dict[str, Any]]:
        """One dict per node: name, op, macs, latency_s, energy_j, components, events.

        Columns are converted once (a per-node loop over numpy scalars is slow at 100k nodes)."""
        if not self.ok:
            return []

        def column(values) -> list:
            return [x if math.isfinite(x) else None for x in np.asarray(values, dtype=np.float64).tolist()]

        latency, energy = column(self.node_latency), column(self.node_energy)
        lat = {k: column(v) for k, v in self.latency.items()}
        eng = {k: column(v) for k, v in self.energy.items()}
        events = {k: column(v) for k, v in self.events.items()}
        mapping = {k: [int(x) if x is not None and float(x).is_integer() else x for x in column(v)]
                   for k, v in self.mapping.items()}
        macs = np.asarray(self.macs).astype(np.int64).tolist()
        rows = []
        for i, name in enumerate(self.names):
            row = {"name": name, "op": self.ops[i], "macs": macs[i], "latency_s": latency[i], "energy_j": energy[i],
                   "latency_by_component_s": {k: v[i] for k, v in lat.items()},
                   "energy_by_component_j": {k: v[i] for k, v in eng.items()},
                   "mapping": {k: v[i] for k, v in mapping.items() if v[i] is not None}}
            row.update({k: v[i] for k, v in events.items()})
            rows.append(row)
        return rows

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": REPORT_SCHEMA,
            "target": {"name": self.target, "family": self.family, "file": self.target_file,
                       "hash": self.target_hash, **{k: _jsonable(v) for k, v in self.info.items()}},
            "ok": self.ok,
            "status": self.status,
            "reason": self.reason,
            "batch": self.batch,
            "pipeline": self.pipeline,
            "totals": {k: _num(v) for k, v in self.totals.items()},
            "breakdown": {
                "energy_j": {k: _num(v) for k, v in self.energy_by_component().items()},
                "latency_s": {k: _num(v) for k, v in self.latency_by_component().items()},
                "area_mm2": None if self.area is None else {k: _num(v) for k, v in self.area.items()},
                "events": {k: _num(v) for k, v in self.events_total().items()},
            },
            "layers": self.layers(),
            "scope": dict(self.scope),
            "precision": _jsonable(self.precision),
            "notes": list(self.notes),
            "assumptions": list(self.assumptions),
            **({"carbon": _jsonable(self.carbon)} if self.carbon else {}),
        }

    def to_json(self, **kw) -> str:
        return json.dumps(self.to_dict(), allow_nan=False, **kw)


def _num(x) -> float | int | None:
    if x is None:
        return None
    if isinstance(x, (int, np.integer)):
        return int(x)
    x = float(x)
    return x if math.isfinite(x) else None


def _jsonable(v):
    if isinstance(v, (np.integer, np.floating)):
        return _num(v)
    if isinstance(v, float):
        return _num(v)
    if isinstance(v, dict):
        return {k: _jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    return v
