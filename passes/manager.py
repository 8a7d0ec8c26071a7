"""Running a pipeline, with the instruments of mlir-opt.

``run_pipeline(graph, "fold-constants,dce", ...)`` transforms ``graph`` in place and returns
a ``PipelineResult`` (per pass: its result, time, node and byte counts). The instruments
are options of the run, never code inside passes:

* ``verify_each``: after every pass that changed the graph, run the verifier (structure,
  then ONNX shape inference); a pass that breaks the IR is named with the verifier's message;
* ``print_after_all`` / ``print_after=("dce",)``: dump the ``.nvir`` text after those passes;
* ``timing``: print per-pass wall time (pass and verifier separately) when the run ends;
* ``measure_macs``: add ``macs_saved`` to each pass's stats (workload analysis, cached).
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

from nvmc.ir.errors import NvmcError, VerifyError, did_you_mean
from nvmc.ir.graph import Graph

from .analysis import get_analysis
from .base import PassError, PassResult, registered_passes
from .pipeline import Pipeline, parse_pipeline

Dump = Callable[[str], Any]


@dataclass
class PassRecord:
    """One pass of a run: what it reported and what the manager measured around it."""

    index: int
    name: str
    spec: str  # the pass as a pipeline element, with its non-default options
    exact: bool
    result: PassResult
    seconds: float
    verify_seconds: float
    nodes_before: int
    nodes_after: int
    bytes_before: int
    bytes_after: int

    @property
    def changed(self) -> bool:
        return self.result.changed

    def to_dict(self) -> dict[str, Any]:
        return {"pass": self.spec, "exact": self.exact, "changed": self.changed, "seconds": self.seconds,
                "verify_seconds": self.verify_seconds, "nodes_before": self.nodes_before,
                "nodes_after": self.nodes_after, "const_bytes_saved": self.bytes_before - self.bytes_after,
                "stats": dict(self.result.stats), "error": dict(self.result.error),
                "why_not": [list(w) for w in self.result.why_not]}


@dataclass
class PipelineResult:
    pipeline: Pipeline
    records: list[PassRecord] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return any(r.changed for r in self.records)

    @property
    def seconds(self) -> float:
        return sum(r.seconds + r.verify_seconds for r in self.records)

    def why_not(self, pass_name: str) -> list[tuple[str, str]]:
        """(node, reason) for every place pass ``pass_name`` looked at and left alone."""
        return [w for r in self.records if r.name == pass_name for w in r.result.why_not]

    def timing_report(self) -> str:
        """Per-pass wall time, mlir-opt style."""
        total = self.seconds or 1e-12
        lines = ["===" + "-" * 60 + "===", "  nvmc pass timing report", "===" + "-" * 60 + "===",
                 f"  Total: {self.seconds:.4f} s", "", "   wall (s)    %   pass"]
        for r in self.records:
            lines.append(f"  {r.seconds:9.4f} {100 * r.seconds / total:5.1f}%  {r.spec}")
            if r.verify_seconds:
                lines.append(f"  {r.verify_seconds:9.4f} {100 * r.verify_seconds / total:5.1f}%    (verify)")
        lines.append(f"  {self.seconds:9.4f} 100.0%  total")
        return "\n".join(lines) + "\n"

    def to_dict(self) -> dict[str, Any]:
        return {"pipeline": str(self.pipeline), "changed": self.changed, "seconds": self.seconds,
                "passes": [r.to_dict() for r in self.records]}


def default_verifier(graph: Graph) -> None:
    """Structural invariants, then agreement with ONNX shape inference (nvmc.verify)."""
    from nvmc.frontend import verify_types
    from nvmc.ir.verify import verify_structure

    verify_structure(graph)
    verify_types(graph)


def run_pipeline(graph: Graph, pipeline: str | Pipeline, *, verify_each: bool = True,
                 print_after_all: bool = False, print_after: Sequence[str] = (), timing: bool = False,
                 measure_macs: bool = False, dump: Dump | None = None,
                 verifier: Callable[[Graph], None] = default_verifier) -> PipelineResult:
    """Run ``pipeline`` (a string or a parsed ``Pipeline``) on ``graph``, in place.

    ``dump`` receives the IR dumps and the timing report (default: written to stderr).
    Raises ParseError for a bad pipeline, PassError for a pass that fails or (with
    ``verify_each``) leaves an invalid graph.
    """
    pipeline = parse_pipeline(pipeline)
    dump = dump or sys.stderr.write
    check_pass_names(print_after, "--print-after")
    passes = pipeline.build()
    out = PipelineResult(pipeline)
    for i, p in enumerate(passes, 1):
        where = f"pass '{p}' ({i} of {len(passes)})"
        version = graph.version
        nodes, const_bytes = len(graph), get_analysis(graph, "const-bytes")
        macs = get_analysis(graph, "workload").totals["macs"] if measure_macs else 0
        start = time.perf_counter()
        result = _run_one(p, graph, where)
        seconds = time.perf_counter() - start
        verify_seconds = 0.0
        if verify_each and graph.version != version:
            start = time.perf_counter()
            try:
                verifier(graph)
            except VerifyError as e:
                raise PassError(f"{where} left an invalid graph: {e.message}",
                                hint="this is a bug in the pass; rerun without --verify-each to see the IR "
                                     "it produced, with --print-after-all") from e
            verify_seconds = time.perf_counter() - start
        if measure_macs:
            result.stats["macs_saved"] = macs - get_analysis(graph, "workload").totals["macs"]
        out.records.append(PassRecord(i, p.name, str(p), p.exact, result, seconds, verify_seconds, nodes, len(graph),
                                      const_bytes, get_analysis(graph, "const-bytes")))
        if print_after_all or p.name in print_after:
            dump(f"// -----// IR Dump After {p} ({i} of {len(passes)}) //----- //\n{graph.to_text()}\n")
    if timing:
        dump(out.timing_report())
    return out


def _run_one(p, graph: Graph, where: str) -> PassResult:
    try:
        result = p.run(graph)
    except NvmcError as e:
        if isinstance(e, PassError) or e.where is not None:
            raise
        raise type(e)(f"{where}: {e.message}", hint=e.hint) from e
    except MemoryError:
        raise PassError(f"{where} ran out of memory", hint="the model is too large for this pass on this "
                        "machine; run it on a smaller model or leave the pass out") from None
    except Exception as e:  # a bug in the pass, not in the model: exit code 70, naming the pass
        err = PassError(f"{where} failed: {type(e).__name__}: {e}",
                        hint="this is a bug in the pass, not in the model; please report it")
        err.exit_code = 70
        raise err from e
    if not isinstance(result, PassResult):
        raise PassError(f"{where} returned {type(result).__name__}, not a PassResult")
    return result


def check_pass_names(names: Sequence[str], flag: str) -> None:
    known = registered_passes()
    for name in names:
        if name not in known:
            raise PassError(f"{flag} names unknown pass '{name}'{did_you_mean(name, known)}",
                            hint="'nvmc passes' lists the available passes")
