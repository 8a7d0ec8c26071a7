"""Reports of ``nvmc compile``: the JSON report dict, its JSON Schema, the HTML page.

Data first, rendering second: :func:`build_report` turns estimates into the dict that
``--json`` writes (schema ``nvmc.report/1``, published as ``nvmc/schema/report.schema.json``);
:func:`render_html` draws the ``--html`` page from that dict and the targets' parameter
tables (:func:`parameters_of`), nothing else. ``compile --generate --json`` writes another
document, ``nvmc.generation/1``, published as ``nvmc/schema/generation.schema.json``.

    >>> import nvmc
    >>> out = nvmc.compile("examples/models/tiny_cnn.onnx", ["sram", "sot-mram"])
    >>> report = build_report("examples/models/tiny_cnn.onnx", out.graph, out.estimates)
    >>> report["schema"], report["target"]["name"], [c["target"]["name"] for c in report["compare"]]
    ('nvmc.report/1', 'sram', ['sot-mram'])
    >>> validate_report(report)  # raises jsonschema.ValidationError when it does not conform
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Mapping, Sequence

from nvmc.ir.files import atomic_write
from nvmc.ir.units import prefixed

@dataclass(frozen=True)
class Metric:
    """A total of an estimate: how reports show it and how ``--budget`` names and bounds it."""

    name: str                  # its name in --budget
    total: str                 # key of Estimate.totals
    label: str                 # as reports show it
    unit: str                  # the SI unit of the totals value, as printed
    units: Mapping[str, float] = field(default_factory=dict)  # --budget spellings -> factor to the SI value
    example: str = ""          # a --budget value, for hints
    spellings: str = ""        # the --budget units a hint lists
    upper: bool = True         # a cost, bounded above; False: a rate (throughput), bounded below
    bare: bool = False         # --budget takes a number without unit


_AREA_UNITS = {"mm2": 1.0, "mm^2": 1.0, "mm²": 1.0, "um2": 1e-6, "um^2": 1e-6, "µm2": 1e-6, "µm²": 1e-6,
               "cm2": 100.0, "cm^2": 100.0, "cm²": 100.0}
_THROUGHPUT_UNITS = {"": 1.0, "/s": 1.0, "ips": 1.0, "inf/s": 1.0, "k/s": 1e3, "kips": 1e3, "kinf/s": 1e3,
                     "M/s": 1e6, "Mips": 1e6}

# The totals a report shows, in order (nvmc.budget indexes the same table by name).
METRICS = (
    Metric("latency", "latency_s", "latency", "s", prefixed("s"), "5ms", "s, ms, us, ns"),
    Metric("throughput", "throughput_ips", "throughput", "inf/s", _THROUGHPUT_UNITS, "1000/s",
           "/s, k/s, M/s or a bare number", upper=False, bare=True),
    Metric("energy", "energy_j", "energy", "J", prefixed("J"), "2mJ", "J, mJ, uJ, nJ"),
    Metric("energy_per_inference", "energy_per_inference_j", "energy / inference", "J", prefixed("J"), "50uJ",
           "J, mJ, uJ, nJ"),
    Metric("edp", "edp_js", "EDP", "J·s", prefixed("Js", ("J*s", "J·s", "J.s")), "1uJs", "Js, mJs, uJs, nJs"),
    Metric("area", "area_mm2", "area (modelled parts)", "mm²", _AREA_UNITS, "10mm2", "mm2, um2, cm2"),
)
MACS = Metric("macs", "macs", "MACs", "MAC")  # shown beside them; no budget takes it
_TOKEN_RATE_UNITS = {"": 1.0, "/s": 1.0, "tok/s": 1.0, "tokens/s": 1.0, "k/s": 1e3, "ktok/s": 1e3, "M/s": 1e6}

# The figures of a generation (compile --generate; keys of TargetGeneration.totals) that only it
# produces; its latency and energy are the whole generation's, under the names above.
GENERATION_METRICS = (
    Metric("ttft", "ttft_s", "time to first token", "s", prefixed("s"), "50ms", "s, ms, us, ns"),
    Metric("token_latency", "token_latency_s", "per-token latency (median decode step)", "s", prefixed("s"), "5ms",
           "s, ms, us, ns"),
    Metric("tokens_per_s", "tokens_per_s", "tokens/s", "tok/s", _TOKEN_RATE_UNITS, "100/s",
           "/s, tok/s, k/s, M/s or a bare number", upper=False, bare=True),
    Metric("j_per_token", "j_per_token", "J/token", "J", prefixed("J"), "1mJ", "J, mJ, uJ, nJ"),
)

if TYPE_CHECKING:
    from nvmc.backends import Estimate, Target
    from nvmc.budget import BudgetResult
    from nvmc.ir import Graph

SCHEMA_DIR = Path(__file__).resolve().parent.parent / "schema"
REPORT_SCHEMA_PATH = SCHEMA_DIR / "report.schema.json"
GENERATION_SCHEMA_PATH = SCHEMA_DIR / "generation.schema.json"   # compile --generate --json (nvmc.generation/1)

__all__ = ["GENERATION_SCHEMA_PATH", "REPORT_SCHEMA_PATH", "build_report", "generation_schema", "parameters_of",
           "ratios", "render_html", "report_schema", "validate_generation", "validate_report", "write_html"]


def build_report(model: str | os.PathLike, graph: "Graph", estimates: Sequence["Estimate"], *,
                 budgets: Iterable["BudgetResult"] = (), accuracy: dict | None = None) -> dict[str, Any]:
    """The ``--json`` report: the first estimate's fields at the top level, the others under
    ``compare``, each one's totals divided by the first's under ``ratios``, and (when given)
    the budget checks under ``budgets``."""
    first = estimates[0].to_dict()
    report = {"schema": first.pop("schema"), "model": {"path": str(model), "name": graph.name,
                                                        "nodes": len(graph), "batch": estimates[0].batch}}
    report.update(first)
    if len(estimates) > 1:
        report["compare"] = [e.to_dict() for e in estimates[1:]]
        report["ratios"] = {e.target: ratios(e, estimates[0]) for e in estimates[1:]}
    budgets = list(budgets)
    if budgets:
        report["budgets"] = [b.to_dict() for b in budgets]
    if accuracy is not None:
        report["accuracy"] = dict(accuracy)
    return report


def ratios(other: "Estimate", base: "Estimate") -> dict[str, float | None]:
    """other / base for every total (a ratio > 1 on a cost means the base target is better)."""
    out: dict[str, float | None] = {}
    for key, value in base.totals.items():
        o = other.totals[key]
        ok = value is not None and o is not None and value and math.isfinite(value) and math.isfinite(o)
        out[key] = (o / value) if ok else None
    return out


def parameters_of(target: "Target") -> list[dict[str, Any]]:
    """Every parameter the target's cost model uses, as ``nvmc explain --json`` lists them.

    A target that cannot be resolved (e.g. an iso-area capacity outside the data) gives one
    row saying why, so a report of a model that does not fit still renders."""
    from nvmc.backends import family_module
    from nvmc.ir.errors import NvmcError

    try:
        params = family_module(target.family).parameters(target)
    except NvmcError as e:
        return [{"key": "(unavailable)", "value": "", "kind": "error", "note": e.message, "file": target.source,
                 "formula": ""}]
    return [parameter_row(p) for p in params]


def parameter_row(p) -> dict[str, Any]:
    """One cost-model parameter as ``nvmc explain --json`` and the HTML report list it."""
    return {"key": p.key, "value": p.value, "kind": p.kind, "note": p.note, "file": p.origin, "formula": p.formula}


@lru_cache(maxsize=None)
def _schema(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))


def report_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of the ``--json`` report."""
    return _schema(REPORT_SCHEMA_PATH)


def generation_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of the ``compile --generate --json`` report (``Generation.to_dict()``)."""
    return _schema(GENERATION_SCHEMA_PATH)


def validate_report(report: Mapping[str, Any]) -> None:
    """Validate ``report`` against the schema (needs the ``jsonschema`` package, a dev extra)."""
    _validate(report_schema(), report)


def validate_generation(data: Mapping[str, Any]) -> None:
    """Validate a ``compile --generate --json`` report against its schema (needs ``jsonschema``)."""
    _validate(generation_schema(), data)


def _validate(schema: dict[str, Any], data: Mapping[str, Any]) -> None:
    import jsonschema

    jsonschema.Draft202012Validator(schema).validate(data)


def render_html(report: Mapping[str, Any], parameters: Mapping[str, list] | None = None, **kw: Any) -> str:
    """The self-contained HTML page of a report (see :mod:`nvmc.report.html`)."""
    from .html import render_html as render

    return render(report, parameters, **kw)


def write_html(path: str | os.PathLike, report: Mapping[str, Any], parameters: Mapping[str, list] | None = None,
               **kw: Any) -> Path:
    """Write the HTML page to ``path`` (under a temporary name, then renamed); returns the path."""
    path = Path(path)
    text = render_html(report, parameters, **kw)
    return atomic_write(path, text)


def write_generation_html(path: str | os.PathLike, data: Mapping[str, Any]) -> Path:
    """Write the ``compile --generate --html`` page (from ``Generation.to_dict()``); returns the path."""
    from nvmc.report.html import render_generation_html

    return atomic_write(Path(path), render_generation_html(data))
