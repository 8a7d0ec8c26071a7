"""nvmc.backends: the technology library, targets, cost-model families and their Estimate.

    >>> from nvmc import backends
    >>> target = backends.load_target("sot-mram", sets=["llc.capacity=4MiB"])
    >>> est = backends.estimate(workload, target)
    >>> est.totals["edp_js"]

This package never imports nvmc.frontend (see DESIGN.md, import direction).
"""

from __future__ import annotations

from .errors import CostModelError, TargetError, TechLibError, UnsupportedOpError
from .estimate import REPORT_SCHEMA, Estimate
from .registry import families, family_module
from .target import Field, Target, load_target, shipped_targets
from .techlib import Param, library

__all__ = [
    "CostModelError", "Estimate", "Field", "Param", "REPORT_SCHEMA", "Target", "TargetError", "TechLibError",
    "UnsupportedOpError", "estimate", "explain", "families", "family_module", "library", "load_target",
    "shipped_targets",
]


def estimate(workload, target: "Target | str", *, sets=(), batch: int = 1) -> Estimate:
    """Cost ``workload`` on ``target`` (a Target, a shipped name or a .toml path): the one
    entry to every family, so every estimate states its scope and precision."""
    from .family import fill_scope_and_precision

    target = load_target(target, sets)
    return fill_scope_and_precision(family_module(target.family).estimate(workload, target, batch=batch), workload)


def explain(target: "Target | str", *, sets=()) -> list[Param]:
    """Every parameter the target's cost model uses, with its source (or why it is assumed)."""
    target = load_target(target, sets)
    return family_module(target.family).parameters(target)
