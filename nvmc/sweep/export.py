"""Sweep results out: flat tables (CSV/JSON), the Pareto front, and an HTML plot (plotly).

The Pareto front is taken per (model, batch): points of different models do not compete.
A point is Pareto-optimal when no other finished point of its model is at most as slow, at
most as energy-hungry per inference and at most as large, and strictly better in one.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from nvmc.ir.dataout import csv_text, json_text
from nvmc.ir.files import atomic_write, write_output
from nvmc.render import si

from .store import COLUMNS, decode_report

PARETO_AXES = ("latency_s", "energy_per_inference_j", "area_mm2")
_FIXED = [c for c in COLUMNS if c not in ("params", "breakdown", "report", "host", "elapsed_s")]


def flat_rows(rows: list[dict]) -> tuple[list[str], list[dict]]:
    """Rows with one column per parameter (``set:llc.capacity``) and a ``pareto`` flag."""
    keys = sorted({k for r in rows for k in _params(r)})
    mark_pareto(rows)
    out = []
    for r in rows:
        params = _params(r)
        flat = {c: r.get(c) for c in _FIXED}
        flat.update({f"set:{k}": params.get(k) for k in keys})
        flat["pareto"] = r["pareto"]
        out.append(flat)
    head = _FIXED[:8] + [f"set:{k}" for k in keys] + _FIXED[8:] + ["pareto"]
    return head, out


def _params(row: dict) -> dict:
    p = row.get("params") or {}
    return json.loads(p) if isinstance(p, str) else p


def pareto_mask(values: np.ndarray) -> np.ndarray:
    """Non-dominated rows of ``values`` (n x d, lower is better; rows with NaN are never optimal)."""
    values = np.asarray(values, dtype=np.float64)
    n = len(values)
    ok = np.isfinite(values).all(axis=1)
    mask = ok.copy()
    idx = np.flatnonzero(ok)
    v = values[idx]
    for start in range(0, len(idx), 512):  # blocks keep memory at 512 x n
        block = v[start:start + 512]
        le = (v[None, :, :] <= block[:, None, :]).all(axis=2)
        lt = (v[None, :, :] < block[:, None, :]).any(axis=2)
        dominated = (le & lt).any(axis=1)
        mask[idx[start:start + len(block)]] = ~dominated
    return mask if n else np.zeros(0, bool)


def mark_pareto(rows: list[dict]) -> None:
    """Set ``row["pareto"]`` (True/False) per (model hash, batch) group of finished rows.

    Area competes only where every point of the group has it: a target whose family models no
    area (null, never 0) is compared on latency and energy alone, and so are the others of its
    group (``row["pareto_axes"]`` says which axes decided)."""
    groups: dict[tuple, list[int]] = {}
    for i, r in enumerate(rows):
        r["pareto"] = False
        if r["status"] == "ok":
            groups.setdefault((r["model_hash"], r["batch"]), []).append(i)
    for members in groups.values():
        axes = [k for k in PARETO_AXES if all(rows[i].get(k) is not None for i in members)]
        values = np.array([[_f(rows[i][k]) for k in axes] for i in members])
        for i, keep in zip(members, pareto_mask(values)):
            rows[i]["pareto"] = bool(keep)
            rows[i]["pareto_axes"] = ",".join(axes)


def show_params(params: dict | str) -> str:
    """``capacity=4MiB iso=area``: short keys where unambiguous, capacities in binary units."""
    from nvmc.backends.units import format_capacity

    params = json.loads(params) if isinstance(params, str) else params
    names = [k.rpartition(".")[2] for k in params]
    out = []
    for key, value in params.items():
        name = key.rpartition(".")[2]
        if name.endswith("capacity") and isinstance(value, int):
            value = format_capacity(value)
        out.append(f"{name if names.count(name) == 1 else key}={value}")
    return " ".join(out)


def _area(row: dict) -> str:
    return "not modelled" if row.get("area_mm2") is None else f"{row['area_mm2']:.4g} mm²"


def _f(x) -> float:
    return math.nan if x is None else float(x)


def write_csv(rows: list[dict], path: Path | str) -> None:
    head, flat = flat_rows(rows)
    write_output(path, csv_text(head, ([r.get(h, "") for h in head] for r in flat)))


def write_json(rows: list[dict], path: Path | str, *, meta: dict) -> None:
    """``{"schema": "nvmc.sweep-results/1", ..., "points": [...]}``; with reports when rows have them."""
    mark_pareto(rows)
    points = []
    for r in rows:
        p = {c: r.get(c) for c in _FIXED}
        p["params"] = _params(r)
        p["pareto"] = r["pareto"]
        p["breakdown"] = json.loads(r["breakdown"]) if r.get("breakdown") else None
        if r.get("report"):
            p["report"] = decode_report(r["report"])
        points.append(p)
    write_output(path, json_text({"schema": "nvmc.sweep-results/1", **meta, "points": points}))


# ------------------------------------------------------------------ HTML
def write_html(rows: list[dict], path: Path | str, *, title: str) -> None:
    """A self-contained page: per model, energy vs latency (colour: area), Pareto points ringed.

    Built with the report page's machinery (nvmc/report/html.py: styles, escaping, figures
    in a JSON block drawn by plotly.js, a Content-Security-Policy that allows no request)."""
    atomic_write(path, render_html(rows, title=title))


def render_html(rows: list[dict], *, title: str, generated: str | None = None) -> str:
    from nvmc.report.html import _caption, _div, esc, page

    mark_pareto(rows)
    done = [r for r in rows if r["status"] == "ok"]
    models = sorted({(r["model"], r["model_hash"], r["batch"]) for r in done}, key=lambda m: (m[0], m[2] or 0))
    area = [r["area_mm2"] for r in done if r["area_mm2"] is not None]
    span = (min(area), max(area)) if area else (0.0, 1.0)
    figures = [_pareto_figure(i, [r for r in done if (r["model_hash"], r["batch"]) == (mhash, batch)],
                              f"{model} (batch {batch})", span) for i, (model, mhash, batch) in enumerate(models)]
    counts = {s: sum(r["status"] == s for r in rows) for s in ("ok", "not_fitting", "not_applicable", "error")}
    failed = [r for r in rows if r["status"] == "error"]
    sections = [("pareto", "Energy, latency and area", _caption(
        "One plot per model (points of different models do not compete). Each dot is a design point: latency "
        "across, energy per inference up (log scales), colour the modelled area. Ringed points are Pareto-optimal "
        "over all three (no other point of the model is at least as good in each and better in one); the line is "
        "the latency-energy staircase through them. Hover for the target, pipeline and parameters.")
        + "".join(_div(f) for f in figures))]
    sections.append(("front", "Pareto-optimal points", _pareto_table(done, esc)))
    if failed:
        items = "".join(f"<li><code>{esc(label_of(r))}</code>: {esc((r['error'] or '').splitlines()[0])}</li>"
                        for r in failed[:50])
        sections.append(("failed", f"Failed points ({len(failed)})", f"<ul>{items}</ul>"))
    header = (f"<p>{len(rows)} points: {counts['ok']} ok, {counts['not_fitting']} not fitting, "
              f"{counts['not_applicable']} not applicable (the target cannot run the model), {counts['error']} "
              f"failed; {sum(r['pareto'] for r in rows)} Pareto-optimal over latency, energy per inference and "
              "area (lower is better)</p>")
    footer = "Every point's full report is in the database (<code>nvmc results DB --json - --reports</code>)."
    return page(title, header, sections, footer, figures, generated=generated)


def label_of(r: dict) -> str:
    parts = [r["model"], r["target"], r["pipeline"] or "", show_params(_params(r))]
    return " ".join(p for p in parts if p)


def _pareto_figure(i: int, mine: list[dict], title: str, span: tuple[float, float]) -> dict:
    from nvmc.report.html import _layout, esc

    data = []
    for optimal in (False, True):
        pts = [r for r in mine if r["pareto"] == optimal]
        if not pts:
            continue
        data.append({"type": "scatter", "mode": "markers", "name": "Pareto-optimal" if optimal else "other points",
                     "x": [r["latency_s"] for r in pts], "y": [r["energy_per_inference_j"] for r in pts],
                     "text": [_hover(r, esc) for r in pts], "hovertemplate": "%{text}<extra></extra>",
                     "marker": {"color": [r["area_mm2"] for r in pts], "colorscale": "Viridis", "cmin": span[0],
                                "cmax": span[1], "size": 11 if optimal else 7, "showscale": not optimal,
                                "colorbar": {"title": {"text": "area mm²"}},
                                "line": {"width": 2 if optimal else 0, "color": "crimson"}}})
    xs, ys, best = [], [], math.inf
    for r in sorted((r for r in mine if r["pareto"]), key=lambda r: r["latency_s"]):
        if r["energy_per_inference_j"] < best:  # the latency-energy staircase of the 3-D front's points
            best = r["energy_per_inference_j"]
            xs.append(r["latency_s"])
            ys.append(best)
    data.append({"type": "scatter", "mode": "lines", "name": "latency-energy front", "x": xs, "y": ys,
                 "line": {"color": "crimson", "width": 1, "shape": "hv"}, "hoverinfo": "skip"})
    layout = _layout(esc(title), height=440, xaxis={"type": "log", "title": {"text": "latency (s)"}},
                     yaxis={"type": "log", "title": {"text": "energy / inference (J)"}})
    return {"id": f"fig-pareto-{i}", "data": data, "layout": layout}


def _hover(r: dict, esc) -> str:
    return "<br>".join(esc(s) for s in (
        f"{r['target']} ({r['family']})", f"pipeline: {r['pipeline'] or '(none)'}", show_params(_params(r)),
        f"latency {r['latency_s']:.4g} s", f"energy/inf {r['energy_per_inference_j']:.4g} J",
        f"area {_area(r)}") if s)


def _pareto_table(done: list[dict], esc) -> str:
    front = sorted((r for r in done if r["pareto"]), key=lambda r: (r["model"], r["latency_s"]))
    head = ("model", "target", "pipeline", "parameters", "latency", "energy / inference", "area", "EDP")
    cells = ["<tr>" + "".join(f'<th class="l">{h}</th>' if j < 4 else f"<th>{h}</th>" for j, h in enumerate(head))
             + "</tr>"]
    for r in front:
        vals = (r["model"], r["target"], r["pipeline"] or "—", show_params(_params(r)) or "—",
                si(r["latency_s"], "s"), si(r["energy_per_inference_j"], "J"), _area(r),
                si(r["edp_js"], "J·s"))
        cells.append("<tr>" + "".join(f'<td class="l">{esc(v)}</td>' if j < 4 else f"<td>{esc(v)}</td>"
                                      for j, v in enumerate(vals)) + "</tr>")
    return f"<table>{''.join(cells)}</table>" if front else "<p>No finished points.</p>"
