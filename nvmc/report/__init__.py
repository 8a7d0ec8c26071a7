"""Reports of ``nvmc compile``: the JSON report dict, its JSON Schema, the HTML page.

Data first, rendering second: :func:`build_report` turns estimates into the dict that
``--json`` writes (schema ``nvmc.report/1``, published as ``nvmc/schema/report.schema.json``);
:func:`render_html` draws the ``--html`` page from that dict and the targets' parameter
tables (:func:`parameters_of`), nothing else.

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
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Mapping, Sequence

from nvmc.ir.files import atomic_write

# The totals a report shows, in order: key, label, unit (lower is better, but throughput).
METRICS = (
    ("latency_s", "latency", "s"),
    ("throughput_ips", "throughput", "inf/s"),
    ("energy_j", "energy", "J"),
    ("energy_per_inference_j", "energy / inference", "J"),
    ("edp_js", "EDP", "J·s"),
    ("area_mm2", "area (modelled parts)", "mm²"),
)

if TYPE_CHECKING:
    from nvmc.backends import Estimate, Target
    from nvmc.budget import BudgetResult
    from nvmc.ir import Graph

SCHEMA_DIR = Path(__file__).resolve().parent.parent / "schema"
REPORT_SCHEMA_PATH = SCHEMA_DIR / "report.schema.json"

__all__ = ["REPORT_SCHEMA_PATH", "build_report", "parameters_of", "ratios", "render_html", "report_schema",
           "validate_report", "write_html"]


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
    return [{"key": p.key, "value": p.value, "kind": p.kind, "note": p.note, "file": p.origin, "formula": p.formula}
            for p in params]


@lru_cache(maxsize=1)
def report_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of the ``--json`` report."""
    return json.loads(REPORT_SCHEMA_PATH.read_text(encoding="utf-8"))


def validate_report(report: Mapping[str, Any]) -> None:
    """Validate ``report`` against the schema (needs the ``jsonschema`` package, a dev extra)."""
    import jsonschema

    jsonschema.Draft202012Validator(report_schema()).validate(report)


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
