"""Sweep results out: flat tables (CSV/JSON), the Pareto front, and an HTML plot (plotly).

The Pareto front is taken per (model, batch): points of different models do not compete.
A point is Pareto-optimal when no other finished point of its model is at most as slow, at
most as energy-hungry per inference and at most as large, and strictly better in one; where
a pipeline of the group approximates the model (quantize, prune, neon, ...), the error it
measured (1 − cosine of the outputs, 0 for an exact pipeline) is one more axis, so a point
that wrecks the model to save energy does not push the faithful ones off the front.

An accuracy gate ([accuracy] in the spec, ``--min-cosine`` ...) judges the finished points:
one whose measured error breaks it becomes 'rejected' (with the reason) and leaves the front.

Rows of a generation sweep (``[generate]``) carry nvmc.generate's figures in
``breakdown["generation"]``; they compete only with rows of the same generation settings
(prompt, tokens, samples), never with forward-pass rows of the same model, and their tables
add time to first token, tokens/s and J/token.
"""

from __future__ import annotations

import json
import math
from functools import lru_cache
from pathlib import Path

import numpy as np

from nvmc.ir.dataout import csv_text, json_text
from nvmc.ir.errors import NvmcError
from nvmc.ir.files import atomic_write, write_output
from nvmc.render import si

from .store import COLUMNS, decode_report

PARETO_AXES = ("latency_s", "energy_per_inference_j", "area_mm2")
ERROR_AXIS = "error"  # 1 − cosine of the outputs: see model_error
SHOWN_STATUSES = ("ok", "not_fitting", "not_applicable", "rejected", "error")  # rejected: by a gate, when read
_FIXED = [c for c in COLUMNS if c not in ("params", "breakdown", "report", "host", "elapsed_s")]


# the generation figures as CSV columns: (column, path in breakdown["generation"])
GENERATION_COLUMNS = {"gen:prompt": ("prompt",), "gen:tokens": ("tokens",), "gen:samples": ("samples",),
                      "gen:ttft_s": ("ttft_s",), "gen:per_token_latency_median_s": ("per_token_latency_s", "median"),
                      "gen:tokens_per_s": ("tokens_per_s",), "gen:j_per_token": ("j_per_token",),
                      "gen:decode_j_per_token": ("decode_j_per_token",), "gen:decode_bound": ("decode_bound",),
                      "gen:kv_cache_bytes_per_token": ("kv_cache_bytes_per_token",),
                      "gen:kv_cache_bytes_total": ("kv_cache_bytes_total",)}


def generation_of(row: dict) -> dict | None:
    """The row's generation figures (``breakdown["generation"]``), or None for a forward-pass point.
    Parsed once per row (kept in ``row["_generation"]``)."""
    if "_generation" not in row:
        b = row.get("breakdown")
        try:
            b = json.loads(b) if isinstance(b, str) else b
        except ValueError:
            b = None
        row["_generation"] = b.get("generation") if isinstance(b, dict) else None
    return row["_generation"]


def generation_columns(row: dict) -> dict:
    g = generation_of(row) or {}
    out = {}
    for column, path in GENERATION_COLUMNS.items():
        v = g
        for part in path:
            v = v.get(part) if isinstance(v, dict) else None
        out[column] = v
    return out


def generation_label(row: dict) -> str:
    """``generate prompt=32,tokens=16`` (samples when not the default); '' for a forward-pass point."""
    g = generation_of(row)
    if not g:
        return ""
    return f"generate prompt={g['prompt']},tokens={g['tokens']}" + (
        f",samples={g['samples']}" if g.get("samples") not in (None, 9) else "")


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
            groups.setdefault(group_key(r), []).append(i)
    for members in groups.values():
        axes = [k for k in PARETO_AXES if all(rows[i].get(k) is not None for i in members)]
        values = np.array([[_f(rows[i][k]) for k in axes] for i in members]).reshape(len(members), len(axes))
        if not all(_exact(rows[i]) for i in members):
            axes.append(ERROR_AXIS)
            values = np.column_stack([values, [model_error(rows[i]) for i in members]])
        for i, keep in zip(members, pareto_mask(values)):
            rows[i]["pareto"] = bool(keep)
            rows[i]["pareto_axes"] = ",".join(axes)


def group_key(row: dict) -> tuple:
    """The points that compete: the same model file, bound to the same input shapes, at one batch,
    costed as the same generation (or as one forward pass)."""
    g = generation_of(row) or {}
    return (row["model_hash"], row.get("input_shapes") or "", row["batch"],
            tuple(g.get(k) for k in ("prompt", "tokens", "samples")))


def model_title(row: dict) -> str:
    """``big.onnx [x=8x3x224x224] (batch 8)``: the model as a group of the front names it
    (``gpt2.onnx (batch 1, generate prompt=32,tokens=16)`` for a generation)."""
    shapes = row.get("input_shapes") or ""
    gen = generation_label(row)
    return f"{row['model']}{f' [{shapes}]' if shapes else ''} (batch {row['batch']}{', ' + gen if gen else ''})"


def model_error(row: dict) -> float:
    """How far the point's pipeline moved the model's outputs: 1 − cosine on seeded inputs
    (nvmc/pipeline.py: accuracy); 0 when every pass was exact; NaN when an approximate pass
    changed the model and its error could not be measured (never optimal on that axis)."""
    if row.get("cosine") is not None:
        return max(0.0, 1.0 - float(row["cosine"]))
    return 0.0 if _exact(row) else math.nan


def _exact(row: dict) -> bool:
    """Whether the point's model is the original (every pass exact, or none changed it)."""
    if row.get("approximate") is not None:
        return not row["approximate"]
    return exact_pipeline(row.get("pipeline") or "")  # a row of an older database: judged by its passes


@lru_cache(maxsize=256)
def exact_pipeline(text: str) -> bool:
    """Whether every pass of the pipeline text is exact (an unknown pass is not known to be)."""
    from nvmc.passes.base import get_pass
    from nvmc.passes.pipeline import parse_pipeline

    try:
        return all(get_pass(name).exact for name in parse_pipeline(text).names())
    except NvmcError:  # a pass this nvmc does not know: not known to be exact
        return False


def apply_gate(rows: list[dict], gate) -> int:
    """Judge finished rows by ``gate`` (a nvmc.pipeline.Gate): a row whose measured error
    breaks it becomes status 'rejected', the reasons in its ``error``. Returns how many."""
    if gate is None or not gate.active:
        return 0
    rejected = 0
    for r in rows:
        if r["status"] not in ("ok", "not_fitting") or _exact(r):
            continue
        measured = {k: r.get(k) for k in ("cosine", "sqnr_db", "top1_agreement")}
        if all(v is None for v in measured.values()):
            measured["note"] = "not measured; the point's report says why"
        why = gate.failures(measured)
        if why:
            r["status"], r["error"] = "rejected", "accuracy gate: " + "; ".join(why)
            rejected += 1
    return rejected


def status_counts(rows: list[dict]) -> dict[str, int]:
    return {s: sum(r["status"] == s for r in rows) for s in SHOWN_STATUSES}


def show_params(params: dict | str) -> str:
    """``capacity=4MiB iso=area``: short keys where unambiguous, capacities in binary units."""
    from nvmc.ir.units import format_capacity

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
    """One row per point: the store's columns, one column per parameter (``set:llc.capacity``), a generation
    sweep's figures (``gen:ttft_s`` ...) and a ``pareto`` flag."""
    keys = sorted({k for r in rows for k in _params(r)})
    mark_pareto(rows)
    generation = any(generation_of(r) for r in rows)   # a sweep without [generate] keeps its columns
    head = (_FIXED[:9] + [f"set:{k}" for k in keys] + _FIXED[9:]  # set: columns after pipeline
            + (list(GENERATION_COLUMNS) if generation else []) + ["pareto"])

    def cells(r: dict) -> list:
        named = {**r, **{f"set:{k}": v for k, v in _params(r).items()}, **(generation_columns(r) if generation else {})}
        return [named.get(h) for h in head]

    write_output(path, csv_text(head, map(cells, rows)))


def write_json(rows: list[dict], path: Path | str, *, meta: dict) -> None:
    """``{"schema": "nvmc.sweep-results/1", ..., "points": [...]}``; with reports when rows have them."""
    mark_pareto(rows)
    points = []
    for r in rows:
        p = {c: r.get(c) for c in _FIXED}
        p["params"] = _params(r)
        p["pareto"] = r["pareto"]
        p["breakdown"] = json.loads(r["breakdown"]) if r.get("breakdown") else None   # "generation": its figures
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
    groups: dict[tuple, list[dict]] = {}
    for r in done:
        groups.setdefault(group_key(r), []).append(r)
    ordered = sorted(groups.values(), key=lambda g: (g[0]["model"], g[0].get("input_shapes") or "", g[0]["batch"] or 0))
    styles = _styles(done)
    figures = [_pareto_figure(i, group, model_title(group[0]), styles) for i, group in enumerate(ordered)]
    counts = status_counts(rows)
    failed = [r for r in rows if r["status"] in ("error", "rejected")]
    sections = [("pareto", "Energy, latency and area", _caption(
        "One plot per model (points of different models do not compete). Each dot is a design point: latency "
        "across, energy per inference up (log scales); its colour is the target and its shape the pipeline "
        "(legend; click an entry to hide it). Ringed points are Pareto-optimal (no other point of the model is "
        "at least as good on every axis and better on one: latency, energy, area where every point has it, and "
        "the measured error where a pipeline approximates the model); the line is the latency-energy staircase "
        "through them. Hover for the parameters, area and error.")
        + "".join(_div(f) for f in figures))]
    sections.append(("front", "Pareto-optimal points", _pareto_table(done, esc)))
    if failed:
        items = "".join(f"<li><code>{esc(label_of(r))}</code>: {esc((r['error'] or '').splitlines()[0])}</li>"
                        for r in failed[:50])
        sections.append(("failed", f"Failed or rejected points ({len(failed)})", f"<ul>{items}</ul>"))
    header = (f"<p>{len(rows)} points: {counts['ok']} ok, {counts['not_fitting']} not fitting, "
              f"{counts['not_applicable']} not applicable (the target cannot run the model), "
              + (f"{counts['rejected']} rejected by the accuracy gate, " if counts["rejected"] else "")
              + f"{counts['error']} failed; {sum(r['pareto'] for r in rows)} Pareto-optimal (lower is better on "
              "every axis)</p>")
    footer = "Every point's full report is in the database (<code>nvmc results DB --json - --reports</code>)."
    return page(title, header, sections, footer, figures, generated=generated)


def label_of(r: dict) -> str:
    parts = [r["model"], r["target"], r["pipeline"] or "", show_params(_params(r))]
    return " ".join(p for p in parts if p)


_SYMBOLS = ("circle", "square", "diamond", "triangle-up", "x", "cross", "triangle-down", "star", "hexagon",
            "pentagon")


def _styles(done: list[dict]) -> dict[str, dict]:
    """One colour per target and one marker shape per pipeline, the same in every plot of the page."""
    from plotly.colors import qualitative

    colours = qualitative.Dark24 + qualitative.Light24
    targets = sorted({r["target"] for r in done})
    pipelines = sorted({r["pipeline"] or "" for r in done})
    return {"colour": {t: colours[i % len(colours)] for i, t in enumerate(targets)},
            "symbol": {p: _SYMBOLS[i % len(_SYMBOLS)] for i, p in enumerate(pipelines)}}


def _pareto_figure(i: int, mine: list[dict], title: str, styles: dict) -> dict:
    from nvmc.report.html import _layout, esc

    data = []
    pipelines = sorted({r["pipeline"] or "" for r in mine})
    shown: set[str] = set()
    for target in sorted({r["target"] for r in mine}):
        for pipeline in pipelines:
            pts = [r for r in mine if r["target"] == target and (r["pipeline"] or "") == pipeline]
            if not pts:
                continue
            data.append({"type": "scatter", "mode": "markers", "name": esc(target), "legendgroup": esc(target),
                         "showlegend": target not in shown,
                         "x": [r["latency_s"] for r in pts], "y": [r["energy_per_inference_j"] for r in pts],
                         "text": [_hover(r, esc) for r in pts], "hovertemplate": "%{text}<extra></extra>",
                         "marker": {"color": styles["colour"][target], "symbol": styles["symbol"][pipeline],
                                    "size": 9}})
            shown.add(target)
    if len(pipelines) > 1:  # the shapes' key: one grey entry per pipeline
        for pipeline in pipelines:
            data.append({"type": "scatter", "mode": "markers", "x": [None], "y": [None], "hoverinfo": "skip",
                         "name": esc(f"pipeline: {pipeline or '(none)'}"), "legendgroup": "pipelines",
                         "marker": {"color": "#888", "symbol": styles["symbol"][pipeline], "size": 9}})
    front = [r for r in mine if r["pareto"]]
    data.append({"type": "scatter", "mode": "markers", "name": "Pareto-optimal (ringed)", "hoverinfo": "skip",
                 "x": [r["latency_s"] for r in front], "y": [r["energy_per_inference_j"] for r in front],
                 "marker": {"symbol": "circle-open", "size": 17, "color": "#111", "line": {"width": 2}}})
    xs, ys, best = [], [], math.inf
    for r in sorted(front, key=lambda r: r["latency_s"]):
        if r["energy_per_inference_j"] < best:  # the latency-energy staircase of the front's points
            best = r["energy_per_inference_j"]
            xs.append(r["latency_s"])
            ys.append(best)
    if len(xs) > 1:  # a line only where the front has a step
        data.append({"type": "scatter", "mode": "lines", "name": "latency-energy staircase", "x": xs, "y": ys,
                     "line": {"color": "#111", "width": 1, "shape": "hv", "dash": "dot"}, "hoverinfo": "skip"})
    axes = (mine[0].get("pareto_axes") or "") if mine else ""
    gen = bool(mine and generation_of(mine[0]))
    layout = _layout(f"{esc(title)}<br><sub>Pareto-optimal over {esc(axes_text(axes))}</sub>", height=540,
                     xaxis={"type": "log", "title": {"text": "generation latency (prefill + decode)" if gen else
                                                     "latency"},
                            **_log_ticks([r["latency_s"] for r in mine], "s")},
                     yaxis={"type": "log", "title": {"text": "energy / token" if gen else "energy / inference"},
                            **_log_ticks([r["energy_per_inference_j"] for r in mine], "J")},
                     legend={"orientation": "v", "x": 1.02, "y": 1, "font": {"size": 11}},
                     margin={"l": 80, "r": 20, "t": 80, "b": 60})
    return {"id": f"fig-pareto-{i}", "data": data, "layout": layout}


_AXIS_NAMES = {"latency_s": "latency", "energy_per_inference_j": "energy/inference", "area_mm2": "area",
               ERROR_AXIS: "error (1 − cosine)"}


def axes_text(axes: str) -> str:
    """``latency_s,energy_per_inference_j,error`` -> ``latency, energy/inference, error (1 − cosine)``."""
    return ", ".join(_AXIS_NAMES.get(a, a) for a in axes.split(",") if a)


def _log_ticks(values: list[float], unit: str) -> dict:
    """Tick marks for a log axis, as fine as 1-2-...-9 steps on a narrow span and down to powers
    of ten on a wide one (at most 9), labelled with SI prefixes ("2 ms", "5 ms", "10 ms")
    instead of plotly's "5 6 7 8 9 0.01 2 3"."""
    vals = [v for v in values if v is not None and v > 0 and math.isfinite(v)]
    if not vals:
        return {}
    lo, hi = min(vals) / 1.3, max(vals) * 1.3
    for steps in (range(1, 10), (1, 2, 5), (1, 3), (1,)):
        ticks = [m * 10.0 ** k for k in range(math.floor(math.log10(lo)), math.ceil(math.log10(hi)) + 1)
                 for m in steps if lo <= m * 10.0 ** k <= hi]
        if len(ticks) <= 9:
            break
    else:  # many decades: every n-th power of ten
        stride = math.ceil(len(ticks) / 8)
        ticks = ticks[::stride]
    if len(ticks) < 2:  # less than one 1-2-5 step: the ends
        ticks = [min(vals), max(vals)] if min(vals) < max(vals) else [min(vals)]
    return {"tickmode": "array", "tickvals": ticks, "ticktext": [si(t, unit) for t in ticks]}


def _hover(r: dict, esc) -> str:
    g = generation_of(r)
    figures = ((f"generation latency {r['latency_s']:.4g} s (TTFT {g['ttft_s']:.4g} s)",
                f"{g['tokens_per_s']:.4g} tokens/s, {r['energy_per_inference_j']:.4g} J/token") if g else
               (f"latency {r['latency_s']:.4g} s", f"energy/inf {r['energy_per_inference_j']:.4g} J"))
    return "<br>".join(esc(s) for s in (
        f"{r['target']} ({r['family']})", f"pipeline: {r['pipeline'] or '(none)'}", show_params(_params(r)),
        *figures, f"area {_area(r)}", _error_text(r)) if s)


def accuracy_cell(r: dict) -> str:
    """The cosine of the point's outputs to the original model's: "exact" when every pass was."""
    if r.get("cosine") is not None:
        return f"{r['cosine']:.4g}"
    return "exact" if _exact(r) else "not measured"


def _error_text(r: dict) -> str:
    if r.get("cosine") is not None:
        return f"measured error: cosine {r['cosine']:.4g}" + (
            f", SQNR {r['sqnr_db']:.3g} dB" if r.get("sqnr_db") is not None else "")
    return "" if _exact(r) else "error: not measured"


def _pareto_table(done: list[dict], esc) -> str:
    front = sorted((r for r in done if r["pareto"]), key=lambda r: (r["model"], r["latency_s"]))
    head = ("model", "target", "pipeline", "parameters", "latency", "energy / inference", "area", "EDP", "cosine")
    cells = ["<tr>" + "".join(f'<th class="l">{h}</th>' if j < 4 else f"<th>{h}</th>" for j, h in enumerate(head))
             + "</tr>"]
    for r in front:
        vals = (model_title(r), r["target"], r["pipeline"] or "—", show_params(_params(r)) or "—",
                si(r["latency_s"], "s"), si(r["energy_per_inference_j"], "J"), _area(r),
                si(r["edp_js"], "J·s"), accuracy_cell(r))
        cells.append("<tr>" + "".join(f'<td class="l">{esc(v)}</td>' if j < 4 else f"<td>{esc(v)}</td>"
                                      for j, v in enumerate(vals)) + "</tr>")
    return f"<table>{''.join(cells)}</table>" if front else "<p>No finished points.</p>"
