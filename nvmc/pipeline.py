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
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Sequence

from nvmc.ir.errors import NvmcError

if TYPE_CHECKING:
    from nvmc.backends import Estimate, Target
    from nvmc.ir import Graph
    from nvmc.passes import PipelineResult, Workload

MODES = ("inference", "train")


def prepare(graph: "Graph", passes: str | None) -> tuple["PipelineResult | None", "Workload"]:
    """Run the pass pipeline on ``graph`` (in place) and analyse what it leaves."""
    from nvmc.passes import run_pipeline
    from nvmc.passes.workload import analyze

    result = run_pipeline(graph, passes, dump=lambda text: None) if passes else None
    return result, analyze(graph)


def measure(graph: "Graph", workload: "Workload", targets: Sequence["Target"]) -> "Workload":
    """The workload with the columns the targets ask to be measured (activation density, ...)."""
    from nvmc.calibrate import calibrate, requests_of

    requests = requests_of(targets)
    return calibrate(graph, workload, requests) if requests else workload


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
                  compared: bool = True) -> list["Estimate"]:
        """One complete estimate per target (and per network when several are compared). A
        target after the first that cannot run the model at all is a ``not_applicable``
        estimate saying why (``compared``); the first one's refusal is an error."""
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
                est = dataclasses.replace(est, pipeline=pipeline)
                out.append(dataclasses.replace(est, carbon=carbon(est, target, grid=self.grid,
                                                                  lifetime_years=self.lifetime_years,
                                                                  utilisation=self.utilisation)))
        return out

    def identity(self) -> dict[str, Any]:
        """What a sweep point's identity must include (the same model and target, costed another
        way, is another point)."""
        return {k: v for k, v in dataclasses.asdict(self).items() if not k.startswith("_") and v not in (None, ())}
