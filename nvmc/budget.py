"""Budgets: limits on an estimate's totals that fail a build (``nvmc compile --budget``).

    nvmc compile model.onnx -t sot-mram --budget latency=5ms,energy=2mJ,area=10mm2

A budget is ``METRIC=VALUE`` with a unit; several are joined by commas. Every metric but
``throughput`` and ``tokens_per_s`` is an upper bound; those two are lower bounds (inferences,
tokens per second). With ``--generate`` budgets bound the generation's figures: ``ttft``,
``token_latency`` (the median decode step), ``tokens_per_s``, ``j_per_token``, and ``latency`` /
``energy`` of the whole generation; a budget on a figure the run does not produce is an input
error. Budgets apply to every costed target (the ``--target`` and each ``--compare`` one). When
one is exceeded the CLI prints one line per broken budget and exits with code 3
(``EXIT_BUDGET``); a malformed budget is an input error (exit 2) reported before the model
is read.

    >>> from nvmc.budget import parse_budgets
    >>> [str(b) for b in parse_budgets("latency=5ms, energy=2mJ, area=10mm2")]
    ['latency <= 5 ms', 'energy <= 2 mJ', 'area <= 10 mm²']
    >>> parse_budgets("latency=5ms")[0].limit
    0.005
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Iterable, Mapping

from nvmc.ir.errors import NvmcError, did_you_mean
from nvmc.ir.units import NUMBER
from nvmc.report import GENERATION_METRICS, METRICS as TOTALS, Metric

EXIT_BUDGET = 3

# the report's totals, then the generation's figures, upper bounds first (the order hints list them in)
METRICS: dict[str, Metric] = {m.name: m for m in sorted((*TOTALS, *GENERATION_METRICS), key=lambda m: not m.upper)}
_ALIASES = {"energy-per-inference": "energy_per_inference", "energy/inference": "energy_per_inference",
            "energy_per_inf": "energy_per_inference"}


@dataclass(frozen=True)
class Budget:
    """One limit: ``metric`` (a key of METRICS), ``limit`` in SI units (mm² for area), as written."""

    metric: str
    limit: float
    text: str

    @property
    def spec(self) -> Metric:
        return METRICS[self.metric]

    def __str__(self) -> str:
        op = "<=" if self.spec.upper else ">="
        value = self.text.partition("=")[2].strip()
        m = NUMBER.match(value)
        unit = _pretty_unit(m.group(2), self.spec) if m else ""
        shown = (m.group(1) + ("" if unit.startswith("/") else " ") + unit).strip() if m else value
        return f"{self.metric} {op} {shown}"

    def check(self, value: float | None) -> bool:
        """True when ``value`` keeps the budget (NaN / None: cannot be judged, so False)."""
        if value is None or not math.isfinite(value):
            return False
        return value <= self.limit if self.spec.upper else value >= self.limit


def _pretty_unit(unit: str, spec: Metric) -> str:
    if not unit:
        return spec.unit if spec.bare else ""
    return unit.replace("mm2", "mm²").replace("um2", "µm²").replace("cm2", "cm²").replace("^2", "²")


def parse_budgets(text: str) -> list[Budget]:
    """``"latency=5ms,energy=2mJ"`` -> budgets; an NvmcError names the bad part and the fix."""
    budgets: list[Budget] = []
    parts = [p.strip() for p in text.split(",")]
    if not any(parts):
        raise NvmcError("empty budget", where="--budget", hint="e.g. --budget latency=5ms,energy=2mJ,area=10mm2")
    for part in parts:
        if not part:
            continue
        name, sep, value = part.partition("=")
        name = name.strip().rstrip("<>").strip().lower()
        name = _ALIASES.get(name, name)
        if not sep or not name or not value.strip():
            raise NvmcError(f"'{part}' is not METRIC=VALUE", where="--budget",
                            hint="e.g. --budget latency=5ms,energy=2mJ,area=10mm2")
        if name not in METRICS:
            raise NvmcError(f"unknown budget metric '{name}'{did_you_mean(name, METRICS)}", where="--budget",
                            hint=f"metrics: {', '.join(METRICS)}")
        spec = METRICS[name]
        m = NUMBER.match(value)
        if not m:
            raise NvmcError(f"'{part}': '{value.strip()}' is not a number with a unit", where="--budget",
                            hint=f"e.g. {name}={spec.example}")
        number, unit = float(m.group(1)), m.group(2).replace(" ", "")
        if unit not in spec.units:
            what = "needs a unit" if not unit else f"unknown unit '{unit}'{did_you_mean(unit, spec.units)}"
            raise NvmcError(f"'{part}': {what}", where="--budget",
                            hint=f"{name} takes {spec.spellings}, e.g. {name}={spec.example}")
        if number <= 0:
            raise NvmcError(f"'{part}': a budget must be positive", where="--budget")
        if not math.isfinite(number * spec.units[unit]):  # more digits than a float holds
            raise NvmcError(f"'{part[:60]}': the number is too large", where="--budget",
                            hint=f"e.g. {name}={spec.example}")
        budgets.append(Budget(name, number * spec.units[unit], part))
    return budgets


@dataclass(frozen=True)
class BudgetResult:
    target: str
    budget: Budget
    value: float | None     # the estimate's total (None: the target does not fit)
    ok: bool

    def message(self) -> str:
        """One line: 'sot-mram: latency 6.12 ms exceeds the budget of 5 ms by 22%'."""
        from nvmc.render import si

        spec = self.budget.spec
        fmt = (lambda v: f"{v:.3g} mm²") if spec.name == "area" else (lambda v: si(v, spec.unit))
        if self.value is None:
            return f"{self.target}: {self.budget.metric} cannot be checked: the model does not fit the target"
        value, limit = fmt(self.value), fmt(self.budget.limit)
        if self.ok:
            return f"{self.target}: {self.budget.metric} {value} is within the budget of {limit}"
        if spec.upper:
            return (f"{self.target}: {self.budget.metric} {value} exceeds the budget of {limit} "
                    f"by {self.value / self.budget.limit - 1:.0%}")
        return (f"{self.target}: {self.budget.metric} {value} is below the budget of {limit} "
                f"by {1 - self.value / self.budget.limit:.0%}")

    def to_dict(self) -> dict[str, Any]:
        spec = self.budget.spec
        return {"target": self.target, "metric": self.budget.metric, "total": spec.total,
                "bound": "max" if spec.upper else "min", "limit": self.budget.limit, "value": self.value,
                "ok": self.ok, "text": self.budget.text}


def refuse_unmodelled(budgets: Iterable[Budget], results, run: str = "compile without --generate") -> None:
    """A budget on a figure the run does not produce (``ttft`` of one forward pass, ``throughput``
    of a generation, area of a family that models none) is an error, not a pass.

    ``results``: the run's Estimates or TargetGenerations (``target``, ``family``, ``ok``, ``totals``);
    ``run`` says what produced them, for the message."""
    results = [(r, r.totals) for r in results]   # an Estimate sums its totals on every access
    for b in budgets:
        for r, totals in results:
            if b.spec.total not in totals:
                produced = [name for name, m in METRICS.items() if m.total in totals]
                generation = [m.name for m in GENERATION_METRICS]
                need = (f"; {', '.join(generation)} are figures of --generate prompt=P,tokens=T"
                        if b.metric in generation and not set(generation) & set(produced) else "")
                raise NvmcError(f"{b.text}: {run} produces no {b.metric}", where="--budget",
                                hint=f"budget what it produces: {', '.join(produced)}{need}")
            if b.spec.total == "area_mm2" and r.ok and totals["area_mm2"] is None:
                raise NvmcError(f"{b.text}: target '{r.target}' (family '{r.family}') models no area, so an area "
                                "budget cannot be checked", where="--budget",
                                hint="leave area out of the budget, or choose a target whose family models area")


def check_budgets(budgets: Iterable[Budget],
                  totals: Iterable[tuple[str, Mapping[str, float]]] | Mapping[str, Mapping[str, float]]
                  ) -> list[BudgetResult]:
    """Every budget against every target's totals: (target name, ``Estimate.totals``) pairs or a dict.

        >>> b = parse_budgets("latency=5ms,throughput=100/s")
        >>> [r.ok for r in check_budgets(b, [("t", {"latency_s": 0.004, "throughput_ips": 250.0})])]
        [True, True]
        >>> print(check_budgets(b, {"t": {"latency_s": 0.006, "throughput_ips": 166.7}})[0].message())
        t: latency 6 ms exceeds the budget of 5 ms by 20%
    """
    budgets = list(budgets)
    pairs = totals.items() if isinstance(totals, Mapping) else totals
    results = []
    for target, totals in pairs:
        for b in budgets:
            value = totals.get(b.spec.total)
            value = float(value) if value is not None and math.isfinite(value) else None
            results.append(BudgetResult(target, b, value, b.check(value)))
    return results
