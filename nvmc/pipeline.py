"""The one path from a model to estimates, for ``nvmc.compile``, the CLI and the sweep worker:

    load -> passes -> workload -> measurements -> estimates -> training iteration -> carbon

``prepare`` runs the pass pipeline and the workload analysis; ``measure`` adds the columns the
targets ask to be measured (nvmc/calibrate.py); ``Costing.estimates`` costs the workload on
each target, as inference or as one (data-parallel) training iteration, and gives each
estimate its carbon footprint. Every caller goes through these steps, so a sweep point and a
``compile`` of the same model, target and options give the same numbers; estimates are built
complete (``dataclasses.replace``), never patched afterwards.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Sequence

from nvmc.ir.errors import NvmcError

if TYPE_CHECKING:
    from nvmc.backends import Estimate, Target
    from nvmc.ir import Graph
    from nvmc.passes import PipelineResult, Workload

MODES = ("inference", "train")


def prepare(graph: "Graph", passes: str | None) -> tuple["PipelineResult | None", "Workload", dict | None]:
    """Run the pass pipeline on ``graph`` (in place), analyse what it leaves, and measure the
    whole pipeline's error when an approximate pass changed the model (``accuracy``)."""
    from nvmc.passes import run_pipeline
    from nvmc.passes.workload import analyze

    original = graph.copy() if passes else None
    result = run_pipeline(graph, passes, dump=lambda text: None) if passes else None
    return result, analyze(graph), accuracy(original, graph, result)


ACCURACY_SAMPLES = 4  # seeded random input draws the transformed model is compared on


def accuracy(original: "Graph | None", transformed: "Graph", result: "PipelineResult | None") -> dict | None:
    """What an approximate pipeline did to the model's outputs, measured in onnxruntime on
    seeded random inputs (frontend/runtime.compare): cosine, SQNR, top-1 agreement and max
    relative error over every output (the worst of each). None when every pass was exact or
    nothing changed; ``{"note": ...}`` when it could not be measured."""
    if original is None or result is None or not any(not r.exact and r.changed for r in result.records):
        return None
    from nvmc.frontend.runtime import compare

    try:
        report = compare(original, transformed, seed=0, samples=ACCURACY_SAMPLES)
    except NvmcError as e:
        return {"note": f"not measured: {e.message}"}
    sqnr = report.sqnr_db
    return {"cosine": report.cosine, "sqnr_db": sqnr if sqnr == sqnr and abs(sqnr) != float("inf") else None,
            "top1_agreement": report.top1_agreement, "max_rel_err": report.max_rel_err,
            "samples": report.samples, "inputs": report.inputs_from}


@dataclass(frozen=True)
class Gate:
    """Accuracy a result must keep (``--min-cosine``, ``--min-sqnr``, ``--min-top1``): a
    pipeline that destroys the model fails the result instead of showing a win."""

    min_cosine: float | None = None
    min_sqnr_db: float | None = None
    min_top1: float | None = None

    def __post_init__(self) -> None:
        for name, low, high in (("min_cosine", -1.0, 1.0), ("min_sqnr_db", -math.inf, math.inf),
                                ("min_top1", 0.0, 1.0)):
            v = getattr(self, name)
            if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v)
                                  or not low <= v <= high):
                span = "a number" if math.isinf(low) else f"a number from {low:g} to {high:g}"
                raise NvmcError(f"{name} must be {span}, not {v!r}", where=name)

    @property
    def active(self) -> bool:
        return any(v is not None for v in (self.min_cosine, self.min_sqnr_db, self.min_top1))

    def failures(self, measured: dict | None) -> list[str]:
        """Why ``measured`` (an ``accuracy`` dict) breaks the gate; [] when it keeps it."""
        out = []
        for key, floor, label in (("cosine", self.min_cosine, "cosine"), ("sqnr_db", self.min_sqnr_db, "SQNR (dB)"),
                                  ("top1_agreement", self.min_top1, "top-1 agreement")):
            if floor is None:
                continue
            value = (measured or {}).get(key)
            if measured is None:
                continue  # exact passes only (or none): nothing was approximated
            if value is None:
                out.append(f"{label} could not be measured ({(measured or {}).get('note', 'no such output')})")
            elif value < floor:
                out.append(f"{label} {value:.4g} is below the required {floor:g}")
        return out


def measure(graph: "Graph", workload: "Workload", targets: Sequence["Target"], *,
            samples: int | None = None) -> "Workload":
    """The workload with the columns the targets ask to be measured (activation density, ...),
    over ``samples`` seeded input draws (default: calibrate's)."""
    from nvmc.calibrate import calibrate, requests_of

    requests = requests_of(targets)
    if not requests:
        return workload
    return calibrate(graph, workload, requests, **({"samples": samples} if samples else {}))


@dataclass(frozen=True)
class Costing:
    """How to cost a workload: inference, or one training iteration (``mode="train"``) on
    ``devices`` data-parallel devices over ``interconnect`` (``net`` sets describe a network
    of your own, e.g. ``("net.bandwidth=25Gbit/s",)``), ``batch_per_device`` samples each; and
    the carbon assumptions (``grid``, ``lifetime_years``, ``utilisation``)."""

    mode: str = "inference"
    devices: int | None = None
    parallel: str | None = None
    interconnect: str | None = None
    batch_per_device: int | None = None
    net: tuple[str, ...] = ()
    grid: str | float | None = None
    lifetime_years: float | None = None
    utilisation: float | None = None
    _networks: list = field(default_factory=list, compare=False, repr=False)

    def __post_init__(self) -> None:
        from nvmc.backends.errors import TargetError

        if self.mode not in MODES:
            raise NvmcError(f"mode must be one of {', '.join(MODES)}, not {self.mode!r}", where="mode")
        asked = [name for name, v in (("--devices", self.devices), ("--parallel", self.parallel),
                                      ("--interconnect", self.interconnect), ("--batch", self.batch_per_device))
                 if v is not None] + (["--set net.*"] if self.net else [])
        if self.mode != "train":
            if asked:
                raise TargetError(f"{', '.join(asked)}: only with --mode train (they describe a training iteration)",
                                  where=asked[0], hint="add --mode train")
            return
        for value, what in ((self.devices, "device"), (self.batch_per_device, "sample per device")):
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise TargetError(f"need at least one {what}, got {value!r}",
                                  where="--devices" if what == "device" else "--batch")
        if self.parallel not in (None, "data"):
            raise TargetError(f"parallel={self.parallel!r}: only data parallelism is modelled", where="--parallel")
        self._networks.extend(self._resolve_networks())

    def _resolve_networks(self) -> list:
        from nvmc.backends.collective import network

        names = [t.strip() for t in self.interconnect.split(",") if t.strip()] if self.interconnect else []
        if (self.devices or 1) > 1 or names or self.net:
            return [network(name, list(self.net)) for name in names] or [network(None, list(self.net))]
        return [None]

    @staticmethod
    def split_sets(sets: Sequence[str]) -> tuple[tuple[str, ...], list[str]]:
        """(the ``net.*`` sets, which describe the training network, the target sets)."""
        net = tuple(s for s in sets if s.strip().startswith("net."))
        return net, [s for s in sets if not s.strip().startswith("net.")]

    # ---------------------------------------------------------------- costing
    def targets(self, targets: Sequence["Target"]) -> list["Target"]:
        """The targets as costed: switched to their family's own training mode where they have one."""
        if self.mode != "train":
            return list(targets)
        from nvmc.backends.training import train_sets

        return [t.with_overrides(train_sets(t)) if train_sets(t) else t for t in targets]

    def estimates(self, workload: "Workload", targets: Sequence["Target"], *, batch: int, pipeline: str = "",
                  compared: bool = True, leading: int | None = None) -> list["Estimate"]:
        """One complete estimate per target (and per network when several are compared). A
        target after the first that cannot run the model at all is a ``not_applicable``
        estimate saying why (``compared``); the first one's refusal is an error. ``leading``:
        the model's own leading dimension; a ``batch`` other than it is said in every estimate
        (the run is costed as bound, then divided by ``batch``: nothing is reshaped)."""
        from nvmc.backends import Estimate, UnsupportedOpError
        from nvmc.backends import estimate as backend_estimate
        from nvmc.backends.carbon import carbon
        from nvmc.backends.training import data_parallel

        out = []
        for i, target in enumerate(targets):
            try:
                forward = backend_estimate(workload, target, batch=batch)
            except UnsupportedOpError as e:
                if i == 0 or not compared:
                    raise
                forward = Estimate.not_applicable(target, f"n/a: {e.message}", names=workload.names,
                                                  ops=workload.ops)
            runs = [forward]
            if self.mode == "train" and forward.ok:
                several = len(self._networks) > 1
                runs = [data_parallel(forward, workload, devices=self.devices or 1, batch=self.batch_per_device,
                                      net=net, label=f"{forward.target}@{net.name}" if several else forward.target)
                        for net in self._networks]
            for est in runs:
                est = dataclasses.replace(est, pipeline=pipeline,
                                          notes=est.notes + _batch_notes(batch, leading) + _origin_notes(target))
                out.append(dataclasses.replace(est, carbon=carbon(est, target, grid=self.grid,
                                                                  lifetime_years=self.lifetime_years,
                                                                  utilisation=self.utilisation)))
        return out

    def identity(self) -> dict[str, Any]:
        """What a sweep point's identity must include (the same model and target, costed another
        way, is another point)."""
        return {k: v for k, v in dataclasses.asdict(self).items() if not k.startswith("_") and v not in (None, ())}


def _batch_notes(batch: int, leading: int | None) -> list[str]:
    if leading is None or batch == leading:
        return []
    return [f"batch {batch} counts the model's run as {batch} inferences, but its leading input dimension is "
            f"{leading}: the model is costed as bound (nothing is reshaped) and per-inference figures are the run's "
            f"divided by {batch}; to cost {batch} inferences bind the batch in the input shape (--input-shape, "
            "input_shapes)"]


def _origin_notes(target) -> list[str]:
    """Where a target made from another tool's file (a SCALE-Sim .cfg) took its values."""
    from nvmc.backends.scalesim_config import origin_notes

    return origin_notes(target)


# ------------------------------------------------------------------ targets
def _sets_for(target, sets: tuple[str, ...], iso: str | None) -> list[str]:
    from nvmc.backends import family_module
    from nvmc.backends.errors import TargetError

    out = list(sets)
    if iso is not None:
        schema = family_module(target.family).SCHEMA
        if "iso" not in schema.get("llc", {}):
            raise TargetError(f"--iso does not apply to target '{target.name}' (family '{target.family}' has no "
                              "[llc] iso setting)", where="--iso")
        out.append(f"llc.iso={iso}")
    return out


def resolve_targets(names, sets=(), iso: str | None = None) -> list:
    """The targets (names, .toml paths, SCALE-Sim ``.cfg[@BASE]`` configs or Targets) with ``sets``
    (``--set``) and ``iso`` applied, for nvmc.compile and the CLI alike. With several families, a
    key applies to the targets whose family has it (as in sweeps); one that no target has is an error."""
    from nvmc.backends import family_module, load_target
    from nvmc.backends.scalesim_config import is_scalesim_config, load_scalesim_config

    bases = [load_scalesim_config(name) if is_scalesim_config(name) else load_target(name) for name in names]
    if len({b.family for b in bases}) == 1:
        return [load_target(b, _sets_for(b, sets, iso)) for b in bases]
    targets = []
    for b in bases:
        schema = family_module(b.family).SCHEMA
        aliases = getattr(family_module(b.family), "SET_ALIASES", {})
        mine = tuple(s for s in sets if _has_key(schema, aliases, s.partition("=")[0].strip()))
        targets.append(load_target(b, _sets_for(b, mine, iso if "iso" in schema.get("llc", {}) else None)))
    for s in sets:  # a key of none of the families: say so, as a single target would
        if not any(_has_key(family_module(b.family).SCHEMA, getattr(family_module(b.family), "SET_ALIASES", {}),
                            s.partition("=")[0].strip()) for b in bases):
            load_target(bases[0], [s])
    return targets


def _has_key(schema, aliases, key: str) -> bool:
    section, _, name = aliases.get(key, key).partition(".")
    return name in schema.get(section, {})
