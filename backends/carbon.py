"""Carbon footprint of an estimate on any target: operational + embodied (ACT model).

ACT (Gupta et al., ISCA'22; data in ``data/carbon/act.toml`` with its sources)::

    CF = OP + (T / LT) * E
    OP = CI_use * energy                                    (operational)
    E  = area * (CI_fab * EPA + GPA + MPA) / Y + K          (embodied: die + one IC package)

nvmc applies it per inference: ``energy`` is the estimate's energy per inference, ``T`` the
time one inference occupies the chip (latency / batch) and ``LT`` the busy part of the
chip's life (lifetime x utilisation), so the embodied carbon is shared by every inference the
chip runs in its life. ``area`` is the estimate's area by component (the parts the family
models; a family that models no area gets no embodied figure, and the report says so), at
the target's process node (``info["node_nm"]`` or a ``node_nm`` parameter of the target),
using the ACT table's node nearest to it (ACT has 28, 20, 14, 10, 8, 7, 5 and 3 nm). GPA is ACT's
default, the mean of its 95 % and 99 % abatement figures.

The grid (``grid=``) is a number in g CO2e/kWh or a region/source name of the ACT table
(``world``, ``usa``, ``europe``, ``taiwan``, ..., ``coal``, ``solar``). Changing the grid
changes only the operational part.

    >>> from nvmc.backends.carbon import grid_intensity
    >>> grid_intensity("europe"), grid_intensity(100)
    ((295, 'europe'), (100.0, '100 g/kWh'))
"""

from __future__ import annotations

import math
from functools import lru_cache
from pathlib import Path
from typing import Any

from nvmc.ir.errors import did_you_mean

from .errors import TargetError
from .techlib import DATA_DIR, DataFile, Param, load_data_file

ACT_FILE = DATA_DIR / "carbon" / "act.toml"
ACT_NODES_NM = (28, 20, 14, 10, 8, 7, 5, 3)
SECONDS_PER_YEAR = 365.25 * 24 * 3600
J_PER_KWH = 3.6e6
FORMULA = ("per inference: operational = energy_per_inference / 3.6e6 J/kWh x grid; embodied = "
           "(area_cm2 x (ci_fab x EPA + (GPA95 + GPA99) / 2 + MPA) / yield + packaging) x "
           "(latency / batch) / (lifetime x utilisation)")


@lru_cache(maxsize=1)
def act() -> DataFile:
    return load_data_file(Path(ACT_FILE))


def grid_names() -> list[str]:
    return [k.split(".", 1)[1] for k in act().params if k.startswith("grid.")]


def grid_intensity(grid: str | float | None) -> tuple[float, str]:
    """(g CO2e/kWh, label) of a grid given as a number, a numeric string or a region name."""
    if grid is None:
        grid = "world"
    if isinstance(grid, str):
        try:
            grid = float(grid)
        except ValueError:
            name = grid.strip().lower()
            value = act().get(f"grid.{name}")
            if value is None:
                raise TargetError(f"unknown grid '{grid}'{did_you_mean(name, grid_names())}", where="--grid",
                                  hint=f"give g CO2e/kWh (e.g. 300) or one of: {', '.join(grid_names())}") from None
            return value, name
    value = float(grid)
    if not math.isfinite(value) or value < 0:
        raise TargetError(f"grid intensity {grid!r} must be a non-negative number of g CO2e/kWh", where="--grid")
    return value, f"{value:g} g/kWh"


def act_node(node_nm: float) -> tuple[int, str]:
    """The ACT table node used for ``node_nm`` and a note when it is not the same node."""
    best = min(ACT_NODES_NM, key=lambda n: abs(math.log(n / node_nm)))
    if best == node_nm:
        return best, ""
    if node_nm > max(ACT_NODES_NM):
        return best, (f"{node_nm:g} nm is older than ACT's table (28-3 nm): its 28 nm per-area figures are used "
                      "(fab energy per area falls with older nodes, so this is an upper bound)")
    return best, f"{node_nm:g} nm is not an ACT node: the nearest, {best} nm, is used"


def node_of(estimate, target=None) -> float | None:
    """The process node of the estimate's target: ``info["node_nm"]``, else a ``node_nm``
    parameter of the target's cost model (e.g. a device's ``compute.process_node_nm``)."""
    node = estimate.info.get("node_nm") if estimate is not None else None
    if node:
        return float(node)
    if target is None:
        return None
    from .registry import family_module

    try:
        params = family_module(target.family).parameters(target)
    except Exception:  # a target that cannot be resolved has no node; carbon says so
        return None
    for p in params:
        if p.key.endswith("node_nm") and isinstance(p.value, (int, float)) and p.value > 0:
            return float(p.value)
    return None


def _deployment(lifetime_years, utilisation) -> tuple[float, float]:
    d = act()
    life = float(d["deployment.lifetime_years"] if lifetime_years is None else lifetime_years)
    util = float(d["deployment.utilisation"] if utilisation is None else utilisation)
    if not (math.isfinite(life) and life > 0):
        raise TargetError(f"lifetime {lifetime_years!r} must be a positive number of years", where="--lifetime")
    if not (0 < util <= 1):
        raise TargetError(f"utilisation {utilisation!r} must be in (0, 1]", where="--utilisation")
    return life, util


def carbon_per_area(node_nm: int) -> dict[str, float]:
    """ACT's embodied carbon per cm^2 of good die at ``node_nm`` (an ACT node), by part."""
    d = act()
    s = f"node_{node_nm}nm"
    ci_fab, y = d["fab.ci_g_per_kwh"], d["fab.yield"]
    fab_energy = ci_fab * d[f"{s}.epa_kwh_per_cm2"]
    gases = (d[f"{s}.gpa95_g_per_cm2"] + d[f"{s}.gpa99_g_per_cm2"]) / 2
    materials = d[f"{s}.mpa_g_per_cm2"]
    return {"fab_energy_g_per_cm2": fab_energy / y, "gases_g_per_cm2": gases / y, "materials_g_per_cm2": materials / y,
            "total_g_per_cm2": (fab_energy + gases + materials) / y}


def carbon(estimate, target=None, *, grid: str | float | None = None, lifetime_years: float | None = None,
           utilisation: float | None = None, node_nm: float | None = None) -> dict[str, Any]:
    """Operational and embodied carbon of ``estimate`` (g CO2e), per inference and over the
    chip's life. Undefined figures (the model does not fit; no area or node) are None and
    ``note`` says why."""
    ci, label = grid_intensity(grid)
    life, util = _deployment(lifetime_years, utilisation)
    totals = estimate.totals
    out: dict[str, Any] = {"grid": label, "grid_g_per_kwh": ci, "lifetime_years": life, "utilisation": util,
                           "formula": FORMULA}
    notes = []
    e_inf, latency = totals["energy_per_inference_j"], totals["latency_s"]
    ok = estimate.ok and math.isfinite(e_inf) and math.isfinite(latency) and latency > 0
    operational = e_inf / J_PER_KWH * ci if ok else None
    t_inf = latency / estimate.batch if ok else None
    busy_s = life * SECONDS_PER_YEAR * util
    inferences = busy_s / t_inf if ok else None
    out.update({"operational_g_per_inference": operational, "inferences_lifetime": inferences,
                "operational_g_lifetime": operational * inferences if ok else None})
    if not estimate.ok:
        notes.append("the model does not fit the target")
    area = float(sum(estimate.area.values())) if estimate.area else 0.0
    node = node_nm if node_nm is not None else node_of(estimate, target)
    embodied = None
    if area <= 0:
        notes.append(f"family '{estimate.family}' models no area: no embodied carbon")
    elif node is None:
        notes.append("the target names no process node: no embodied carbon")
    else:
        table_node, why = act_node(node)
        if why:
            notes.append(why)
        per_cm2 = carbon_per_area(table_node)
        die = area / 100.0 * per_cm2["total_g_per_cm2"]
        package = act()["fab.packaging_g_per_ic"]
        embodied = die + package
        out.update({"node_nm": node, "act_node_nm": table_node, "area_mm2": area,
                    "embodied_g_per_cm2": per_cm2["total_g_per_cm2"], "embodied_die_g": die,
                    "embodied_packaging_g": package})
    out["embodied_g"] = embodied
    per_inf = embodied * t_inf / busy_s if (embodied is not None and ok) else None
    out["embodied_g_per_inference"] = per_inf
    out["total_g_per_inference"] = (operational + per_inf) if (operational is not None and per_inf is not None) \
        else operational
    out["embodied_share"] = per_inf / out["total_g_per_inference"] if per_inf is not None and \
        out["total_g_per_inference"] else None
    if notes:
        out["note"] = "; ".join(notes)
    return out


def parameters(node_nm: float | None = None, grid: str | float | None = None) -> list[Param]:
    """The ACT numbers a carbon figure uses (for ``nvmc explain``): the node's row (or all
    rows), yield, packaging, fab and use grids, deployment defaults, and the formula."""
    d = act()
    nodes = [act_node(node_nm)[0]] if node_nm else list(ACT_NODES_NM)
    keys = [k for k in d.params if any(k.startswith(f"node_{n}nm.") for n in nodes)]
    keys += [k for k in d.params if k.startswith(("fab.", "deployment."))]
    ci, label = grid_intensity(grid)
    # the deployment figures are the user's choice (--lifetime, --utilisation), not hardware data:
    # assumed defaults, with the reason and the option that sets them
    rows = [Param(f"carbon:{d.params[k].key}", d.params[k].value, d.params[k].kind, d.params[k].note,
                  d.params[k].origin) for k in keys]
    rows.append(Param("carbon:grid", ci, "source" if label in grid_names() else "--set",
                      f"use-phase grid '{label}' (g CO2e/kWh; --grid). Carbon {FORMULA}",
                      d.params["grid.world"].origin))
    return rows


def summary_line(c: dict[str, Any]) -> str:
    """One line for the terminal summary."""
    def g(x):
        return "—" if x is None else f"{x:.3g} g"

    line = (f"carbon per inference: {g(c.get('total_g_per_inference'))} CO2e = operational "
            f"{g(c.get('operational_g_per_inference'))} (grid {c['grid']}, {c['grid_g_per_kwh']:g} g/kWh) + embodied "
            f"{g(c.get('embodied_g_per_inference'))} (chip {g(c.get('embodied_g'))} over {c['lifetime_years']:g} years "
            f"at {100 * c['utilisation']:.0f} % use)")
    if c.get("note"):
        line += f"; {c['note']}"
    return line
