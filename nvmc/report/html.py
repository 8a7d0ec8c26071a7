"""The ``--html`` report: one self-contained page with plotly plots and tables.

Drawn from the report dict that ``--json`` writes (schema nvmc.report/1) and each target's
parameter table, nothing else. Sections: totals side by side (with ratios and a ratio plot
when targets are compared), budgets, energy by component, per-layer latency and energy
by component, area by component, the most expensive layers, every parameter with its
source, notes and assumptions.

Self-contained: plotly.js is embedded once; a Content-Security-Policy forbids every
network request, so the page opens offline and cannot leak.

Safe with hostile models: every model- or target-supplied string is escaped.
* HTML text goes through ``html.escape``.
* Plot labels are escaped too: plotly draws labels from a small HTML subset and decodes
  entities, so an escaped ``<script>`` shows as text and never becomes markup.
* The figures travel in a JSON data block (``<script type="application/json">``) whose
  ``<``, ``>`` and ``&`` are written as ``\\u003c`` ..., so no string can close it.
* The CSP allows exactly the page's two scripts (plotly.js and the small init script) by
  their sha256, so even a markup bug could not run an injected script or event handler.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import math
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from nvmc.render import binary, si
from nvmc.report import MACS, METRICS

MAX_LAYERS = 200       # layers drawn in the per-layer plots (the costliest, in graph order)
TICK_LABELS = 60       # up to this many layers, the x axis names them
TOP_LAYERS = 20        # rows of the layer table

_PALETTE = ("#636EFA", "#EF553B", "#00CC96", "#AB63FA", "#FFA15A", "#19D3F3", "#FF6692", "#B6E880", "#FF97FF",
            "#FECB52", "#8C564B", "#7F7F7F", "#1F77B4", "#FF7F0E", "#2CA02C", "#D62728", "#9467BD", "#E377C2",
            "#BCBD22", "#17BECF", "#393B79", "#637939", "#843C39", "#7B4173")
_PREFIXES = ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k"), (1, ""), (1e-3, "m"), (1e-6, "µ"), (1e-9, "n"),
             (1e-12, "p"), (1e-15, "f"))

_INIT_JS = """(function () {
  "use strict";
  var payload = JSON.parse(document.getElementById("nvmc-data").textContent);
  var config = {responsive: true, displaylogo: false, modeBarButtonsToRemove: ["sendDataToCloud"]};
  var pending = payload.figures.map(function (f) {
    return Plotly.newPlot(f.id, f.data, f.layout, config);
  });
  Promise.all(pending).then(function () {
    document.body.setAttribute("data-plots-ready", String(pending.length));
  }, function (err) {
    document.body.setAttribute("data-plots-error", String(err));
    console.error("nvmc report: a plot failed", err);
  });
})();
"""

_CSS = """
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", "DejaVu Sans", sans-serif; margin: 0; color: #1d2330;
       background: #fff; }
header { background: #1d2330; color: #fff; padding: 18px 28px; }
header h1 { margin: 0 0 6px; font-size: 22px; }
header p { margin: 2px 0; color: #c9d1e0; }
main { padding: 8px 28px 40px; max-width: 1400px; }
nav { margin: 10px 0; } nav a { margin-right: 14px; color: #3056b8; }
h2 { margin: 28px 0 6px; font-size: 18px; border-bottom: 1px solid #dde3ee; padding-bottom: 4px; }
p.caption { color: #556; margin: 4px 0 8px; max-width: 1100px; }
table { border-collapse: collapse; margin: 8px 0; }
th, td { padding: 3px 10px; border-bottom: 1px solid #e6eaf2; text-align: right; vertical-align: top; }
th { background: #f3f5fa; }
td.l, th.l { text-align: left; }
td.note { text-align: left; max-width: 760px; color: #333; }
tr.bad td { background: #fde8e8; } tr.good td { background: #eaf7ee; }
.kind-assumed { color: #a15c00; font-weight: 600; } .kind-source { color: #1b7a3a; } .kind-derived { color: #236a9c; }
.kind-error { color: #b00020; font-weight: 600; }
.plot { width: 100%; }
.notfit { color: #b00020; font-weight: 600; }
code { background: #f3f5fa; padding: 0 3px; border-radius: 3px; }
header code { background: #2e3648; color: #fff; }
details { margin: 6px 0; } summary { cursor: pointer; font-weight: 600; }
footer { color: #778; font-size: 12px; padding: 12px 28px; }
"""


def esc(value: Any) -> str:
    """Text for HTML (and plotly labels): &, <, >, quotes escaped."""
    return html.escape(str(value), quote=True)


def render_html(report: Mapping[str, Any], parameters: Mapping[str, list] | None = None, *,
                max_layers: int = MAX_LAYERS, top: int = TOP_LAYERS, generated: str | None = None) -> str:
    """The page as a string. ``parameters``: target name -> rows as ``nvmc explain --json`` lists them."""
    estimates = [dict(report), *report.get("compare", [])]
    model = report.get("model", {})
    names = [e["target"]["name"] for e in estimates]
    figures: list[dict[str, Any]] = []
    sections: list[tuple[str, str, str]] = []  # id, title, html

    sections.append(("summary", "Totals", _summary_table(estimates, report.get("ratios", {}))))
    if len(estimates) > 1:
        fig = _ratio_figure(estimates, report.get("ratios", {}))
        if fig:
            figures.append(fig)
            sections.append(("compare", "Comparison", _caption(
                f"Each bar is another target's total divided by {esc(names[0])}'s (log scale): below 1 the other "
                "target is lower. Throughput is a rate, so there above 1 is better.") + _div(fig)))
    if report.get("budgets"):
        sections.append(("budgets", "Budgets", _budget_table(report["budgets"])))
    colors = _palette()
    fig = _component_figure(estimates, "energy_j", "J", "energy by component", colors)
    if fig:
        figures.append(fig)
        sections.append(("energy", "Energy by component", _caption(
            "Total energy of the run (all layers, the whole batch), split by the component that spends it. "
            "The buttons switch between absolute values and each target's shares.")
            + _div(fig)))
    lat_html, lat_figs = _layer_figures(estimates, max_layers, colors)
    figures += lat_figs
    if lat_html:
        sections.append(("layers", "Per layer", lat_html))
    fig = _utilization_figure(estimates, max_layers)
    if fig:
        figures.append(fig)
        sections.append(("mapping", "Utilization per layer", _caption(
            "How much of each target's peak MAC rate a layer achieves while it computes (the layer's <code>mapping"
            "</code> in the JSON: its MACs over the whole target's MAC units x its compute time); only layers with "
            "MACs are drawn. The JSON and <code>nvmc compile --layers</code> give the rest of each layer's mapping "
            "(units used, folds or waves, split-K, replicas, stall cycles, traffic).") + _div(fig)))
    fig = _component_figure(estimates, "area_mm2", "mm²", "area by component", colors)
    if fig:
        figures.append(fig)
        sections.append(("area", "Area", _caption(
            "Area of the components the target models (not the whole chip).") + _div(fig)))
    sections.append(("top", "Costliest layers", _top_table(estimates, top)))
    sections.append(("parameters", "Parameters and their sources", _param_tables(estimates, parameters or {})))
    sections.append(("notes", "Notes and assumptions", _notes(estimates)))

    shown = Path(str(model.get("path") or "")).name or model.get("name") or "model"  # the file, not "main_graph"
    title = f"nvmc report: {shown} on {', '.join(names)}"
    header = "".join(f"<p>{m}</p>" for m in [
        f"model <code>{esc(model.get('path', ''))}</code> (graph <code>{esc(model.get('name', ''))}</code>, "
        f"{esc(model.get('nodes', '?'))} nodes, "
        f"batch {esc(report.get('batch', 1))})",
        f"pipeline <code>{esc(report.get('pipeline') or '(none)')}</code>",
        "targets " + ", ".join(f"<code>{esc(n)}</code> ({esc(e['target'].get('family', ''))}, sha256 "
                               f"{esc(str(e['target'].get('hash', ''))[:12])})" for n, e in zip(names, estimates))])
    footer = (f"(schema {esc(report.get('schema', ''))}). The same figures as <code>nvmc compile --json</code>; "
              "every number of a target is listed with its source under \"Parameters\".")
    return page(title, header, sections, footer, figures, generated=generated)


def page(title: str, header_html: str, sections: Sequence[tuple[str, str, str]], footer_html: str,
         figures: list[dict], *, generated: str | None = None) -> str:
    """A self-contained HTML page: plotly.js inline, a CSP that admits only its own two scripts.

    ``header_html`` and ``footer_html`` are trusted HTML (escape model strings with ``esc``);
    ``sections`` are (id, title, trusted HTML content); ``figures`` are drawn into the
    ``_div`` placeholders by the page's init script."""
    from plotly.offline import get_plotlyjs

    from nvmc import __version__

    plotly_js = get_plotlyjs()
    csp = ("default-src 'none'; "
           f"script-src {_sha256(plotly_js)} {_sha256(_INIT_JS)}; "
           "style-src 'unsafe-inline'; img-src data: blob:; font-src data:; connect-src 'none'; "
           "base-uri 'none'; form-action 'none'")
    when = generated or datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    nav = " ".join(f'<a href="#{sid}">{esc(stitle)}</a>' for sid, stitle, _ in sections)
    body = "\n".join(f'<section id="{sid}"><h2>{esc(stitle)}</h2>\n{content}\n</section>'
                     for sid, stitle, content in sections)
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{esc(csp)}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="nvmc {esc(__version__)}">
<title>{esc(title)}</title>
<style>{_CSS}</style>
</head>
<body>
<header><h1>{esc(title)}</h1>
{header_html}
</header>
<main>
<nav>{nav}</nav>
{body}
</main>
<footer>nvmc {esc(__version__)}, generated {esc(when)}. {footer_html}</footer>
<script id="nvmc-data" type="application/json">{_script_json({"figures": figures})}</script>
<script>{plotly_js}</script>
<script>{_INIT_JS}</script>
</body>
</html>
"""


# ------------------------------------------------------------------ helpers
def _sha256(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode() + "'"


def _script_json(payload: Any) -> str:
    """JSON that is safe inside <script>: no '<', '>' or '&' survives as such."""
    text = json.dumps(payload, allow_nan=False, separators=(",", ":"), ensure_ascii=False)
    return (text.replace("&", "\\u0026").replace("<", "\\u003c").replace(">", "\\u003e")
            .replace("\u2028", "\\u2028").replace("\u2029", "\\u2029"))


def _caption(text: str) -> str:
    return f'<p class="caption">{text}</p>'


def _div(fig: Mapping[str, Any]) -> str:
    return f'<div class="plot" id="{fig["id"]}"></div>'


def _finite(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def _fmt(value: Any, unit: str) -> str:
    if not _finite(value):
        return "—"
    if unit == "mm²":
        return f"{value:.4g} mm²"
    if unit == "MAC":
        return si(value, "MAC")
    return si(float(value), unit)


def _scale(values: Sequence[float], unit: str) -> tuple[float, str]:
    """A factor and a prefixed unit so that the largest value reads between 1 and 1000."""
    if unit == "mm²":
        return 1.0, unit
    peak = max((abs(v) for v in values if _finite(v)), default=0.0)
    if peak == 0:
        return 1.0, unit
    for factor, prefix in _PREFIXES:
        if peak >= factor:
            return 1.0 / factor, prefix + unit
    return 1e15, "f" + unit


def _color(i: int) -> str:
    return _PALETTE[i % len(_PALETTE)]


def _layout(title: str, **kw: Any) -> dict[str, Any]:
    """A layout; ``title`` must already be escaped."""
    layout = {"title": {"text": title, "x": 0.01, "xanchor": "left"},
              "font": {"family": "system-ui, DejaVu Sans, sans-serif", "size": 12},
              "margin": {"l": 70, "r": 20, "t": 50, "b": 60}, "plot_bgcolor": "#fbfcfe", "paper_bgcolor": "#ffffff",
              "legend": {"orientation": "h", "y": -0.18}, "hoverlabel": {"namelength": -1}}
    layout.update(kw)
    return layout


# ------------------------------------------------------------------ tables
def _summary_table(estimates: list[Mapping[str, Any]], ratios: Mapping[str, Mapping[str, Any]]) -> str:
    base = estimates[0]["target"]["name"]
    head = ["metric", *(e["target"]["name"] for e in estimates), *(f"{e['target']['name']} ÷ {base}"
                                                                   for e in estimates[1:])]
    rows = []
    for m in (*METRICS, MACS):
        cells = [_fmt(e["totals"].get(m.total), m.unit) if e["totals"].get(m.total) is not None
                 or m.total != "area_mm2" or not e.get("ok", True) else "not modelled" for e in estimates]
        for e in estimates[1:]:
            r = ratios.get(e["target"]["name"], {}).get(m.total)
            cells.append(f"{r:.3g}×" if _finite(r) else "—")
        rows.append(f'<tr><td class="l">{esc(m.label)}</td>' + "".join(f"<td>{esc(c)}</td>" for c in cells) + "</tr>")
    for key, label in (("costed", "precision costed"), ("model", "model precision")):
        cells = [e.get("precision", {}).get(key, "—") for e in estimates] + ["" for _ in estimates[1:]]
        rows.append(f'<tr><td class="l">{esc(label)}</td>' + "".join(f"<td>{esc(c)}</td>" for c in cells) + "</tr>")
    scopes = [f'<p class="scope"><b>{esc(e["target"]["name"])}</b> energy covers: '
              f'{esc(e.get("scope", {}).get("label", "?"))}'
              + (f'; not modelled: {esc(e["scope"]["excludes"])}' if e.get("scope", {}).get("excludes") else "")
              + "</p>" for e in estimates]
    if len({e.get("scope", {}).get("label") for e in estimates}) > 1:
        scopes.insert(0, '<p class="notfit">The targets cover different parts of the system: compare their energy '
                         'with care.</p>')
    fits = [f'<p class="notfit">{esc(e["target"]["name"])} does not fit: {esc(e.get("reason", ""))}</p>'
            for e in estimates if not e.get("ok", True)]
    th = "".join(f'<th class="{"l" if i == 0 else ""}">{esc(h)}</th>' for i, h in enumerate(head))
    return (_caption("Totals of one run of the batch. Ratios divide each target by the first; below 1 the other "
                     "target is lower.")
            + f"<table><thead><tr>{th}</tr></thead><tbody>{''.join(rows)}</tbody></table>" + "".join(fits)
            + "".join(scopes))


def _budget_table(budgets: Sequence[Mapping[str, Any]]) -> str:
    units = {m.name: m.unit for m in METRICS}
    rows = []
    for b in budgets:
        unit = units.get(b["metric"], "")
        bound = "≤" if b.get("bound") == "max" else "≥"
        state = "ok" if b["ok"] else ("does not fit" if b.get("value") is None else "EXCEEDED")
        rows.append(f'<tr class="{"good" if b["ok"] else "bad"}"><td class="l">{esc(b["target"])}</td>'
                    f'<td class="l">{esc(b["metric"])}</td><td>{esc(_fmt(b.get("value"), unit))}</td>'
                    f'<td>{bound} {esc(_fmt(b["limit"], unit))}</td><td class="l">{esc(state)}</td></tr>')
    broken = sum(1 for b in budgets if not b["ok"])
    verdict = f"{broken} of {len(budgets)} budget checks failed" if broken else "every budget is kept"
    return (_caption(f"From <code>--budget</code>: {esc(verdict)} (the CLI exits 3 when one is exceeded).")
            + '<table><thead><tr><th class="l">target</th><th class="l">metric</th><th>value</th><th>budget</th>'
              f'<th class="l">result</th></tr></thead><tbody>{"".join(rows)}</tbody></table>')


def _top_table(estimates: list[Mapping[str, Any]], top: int) -> str:
    base = next((e for e in estimates if e.get("ok", True) and e.get("layers")), None)
    if base is None:
        return _caption("No target produced per-layer figures.")
    layers = base["layers"]
    lat = [x["latency_s"] if _finite(x["latency_s"]) else 0.0 for x in layers]
    total = sum(lat) or 1.0
    order = sorted(range(len(layers)), key=lambda i: -lat[i])[:top]
    others = [e for e in estimates if e is not base and e.get("ok", True) and len(e.get("layers", [])) == len(layers)]
    head = ["#", "node", "op", "MACs", f"latency ({base['target']['name']})", "share", "energy", "bound by",
            *(f"latency ({e['target']['name']})" for e in others)]
    rows = []
    for i in order:
        x = layers[i]
        comps = {k: v for k, v in x.get("latency_by_component_s", {}).items() if _finite(v)}
        units = {k: v for k, v in comps.items() if k != "overhead"}
        bound = max(units, key=units.get) if units and max(units.values()) > 0 else "—"
        cells = [str(i), x["name"], x["op"], si(x["macs"], ""), _fmt(x["latency_s"], "s"),
                 f"{100 * lat[i] / total:.1f}%", _fmt(x["energy_j"], "J"), bound,
                 *(_fmt(e["layers"][i]["latency_s"], "s") for e in others)]
        rows.append("<tr>" + "".join(f'<td class="{"l" if c in (1, 2, 7) else ""}">{esc(v)}</td>'
                                     for c, v in enumerate(cells)) + "</tr>")
    th = "".join(f'<th class="{"l" if c in (1, 2, 7) else ""}">{esc(h)}</th>' for c, h in enumerate(head))
    return (_caption(f"The {len(order)} layers with the longest latency on {esc(base['target']['name'])} "
                     f"(of {len(layers)}); '#' is the position in graph order.")
            + f"<table><thead><tr>{th}</tr></thead><tbody>{''.join(rows)}</tbody></table>")


def _param_tables(estimates: list[Mapping[str, Any]], parameters: Mapping[str, list]) -> str:
    parts = [_caption("Every number each target's cost model uses: <span class='kind-source'>source</span> "
                      "(cited), <span class='kind-derived'>derived</span> (computed from cited numbers), "
                      "<span class='kind-assumed'>assumed</span> (no source; the reason is given), or set by the "
                      "target file, <code>--set</code> or a default. The same as <code>nvmc explain</code>.")]
    def value(v: Any) -> str:
        return f"{v:.6g}" if isinstance(v, float) else str(v)

    for i, e in enumerate(estimates):
        name = e["target"]["name"]
        rows = parameters.get(name)
        if rows is None:
            parts.append(f"<p>{esc(name)}: parameters not supplied.</p>")
            continue
        assumed = sum(1 for r in rows if r.get("kind") == "assumed")
        body = "".join(
            f'<tr><td class="l"><code>{esc(r.get("key", ""))}</code></td><td>{esc(value(r.get("value", "")))}'
            f'</td><td class="l kind-{esc(r.get("kind", ""))}">{esc(r.get("kind", ""))}</td>'
            f'<td class="note">{esc(r.get("note", ""))}'
            + (f'<br><small>formula: <code>{esc(r["formula"])}</code></small>' if r.get("formula") else "")
            + "</td></tr>" for r in rows)
        parts.append(f'<details{" open" if i == 0 else ""}><summary>{esc(name)} '
                     f'({esc(e["target"].get("family", ""))}): {len(rows)} parameters, {assumed} assumed; file '
                     f'<code>{esc(e["target"].get("file", ""))}</code></summary>'
                     '<table><thead><tr><th class="l">key</th><th>value</th><th class="l">kind</th>'
                     f'<th class="l">source / note</th></tr></thead><tbody>{body}</tbody></table></details>')
    return "\n".join(parts)


def _notes(estimates: list[Mapping[str, Any]]) -> str:
    parts = []
    for e in estimates:
        items = [*(f"note: {n}" for n in e.get("notes", [])), *(f"assumed: {a}" for a in e.get("assumptions", []))]
        if not e.get("ok", True):
            items.insert(0, f"does not fit: {e.get('reason', '')}")
        if items:
            parts.append(f"<h3>{esc(e['target']['name'])}</h3><ul>"
                         + "".join(f"<li>{esc(x)}</li>" for x in items) + "</ul>")
    return "\n".join(parts) or _caption("None.")


# ------------------------------------------------------------------ figures
def _palette() -> Callable[[str], str]:
    """One colour per component name, the same in every plot of a page."""
    colors: dict[str, str] = {}
    return lambda name: colors.setdefault(name, _color(len(colors)))


def _component_figure(estimates: list[Mapping[str, Any]], key: str, unit: str, title: str,
                      colors: Callable[[str], str]) -> dict | None:
    """One stacked horizontal bar per target, split by the components of breakdown[key].

    Buttons switch between absolute values and each target's shares (targets of different
    families have different components and totals orders of magnitude apart: shares are
    the default then)."""
    ok = [e for e in estimates
          if any(_finite(v) and v > 0 for v in (e.get("breakdown", {}).get(key) or {}).values())]
    if not ok:
        return None
    comps: list[str] = []
    for e in ok:
        comps += [c for c in e["breakdown"][key] if c not in comps]
    targets = [esc(e["target"]["name"]) for e in ok]
    totals = [sum(v for v in e["breakdown"][key].values() if _finite(v)) for e in ok]
    factor, shown = _scale(totals, unit)
    same = all(list(e["breakdown"][key]) == list(ok[0]["breakdown"][key]) for e in ok)
    absolute, share = [], []
    for c in comps:
        raw = [e["breakdown"][key].get(c) for e in ok]
        if not any(_finite(v) and v > 0 for v in raw):
            continue
        text = [_fmt(v, unit) for v in raw]
        base = {"type": "bar", "orientation": "h", "name": esc(c), "y": targets, "customdata": text,
                "marker": {"color": colors(c)}, "legendgroup": esc(c)}
        absolute.append({**base, "x": [v * factor if _finite(v) else None for v in raw], "visible": same,
                         "hovertemplate": f"{esc(c)}: %{{customdata}}<extra>%{{y}}</extra>"})
        share.append({**base, "x": [100 * v / t if _finite(v) and t > 0 else None for v, t in zip(raw, totals)],
                      "visible": not same,
                      "hovertemplate": f"{esc(c)}: %{{x:.1f}}% (%{{customdata}})<extra>%{{y}}</extra>"})
    n = len(absolute)
    titles = (f"{title} ({esc(shown)})", f"{title} (% of each target's total)")
    buttons = [{"label": f"absolute ({esc(shown)})", "method": "update",
                "args": [{"visible": [True] * n + [False] * n}, {"title.text": titles[0]}]},
               {"label": "share of each target (%)", "method": "update",
                "args": [{"visible": [False] * n + [True] * n}, {"title.text": titles[1]}]}]
    layout = _layout(titles[0] if same else titles[1], barmode="stack", xaxis={"rangemode": "tozero"},
                     yaxis={"automargin": True, "autorange": "reversed"}, height=max(260, 150 + 44 * len(ok)),
                     updatemenus=[{"type": "buttons", "direction": "right", "buttons": buttons, "active": 0 if same
                                   else 1, "x": 0.42, "xanchor": "left", "y": 1.02, "yanchor": "bottom",
                                   "showactive": True}])
    return {"id": f"fig-{key.replace('_', '-')}", "data": absolute + share, "layout": layout}


def _ratio_figure(estimates: list[Mapping[str, Any]], ratios: Mapping[str, Mapping[str, Any]]) -> dict | None:
    data = []
    for i, e in enumerate(estimates[1:], start=1):
        r = ratios.get(e["target"]["name"], {})
        ys = [r.get(m.total) if _finite(r.get(m.total)) and r.get(m.total) > 0 else None for m in METRICS]
        if not any(y is not None for y in ys):
            continue
        data.append({"type": "bar", "name": f"{esc(e['target']['name'])} ÷ {esc(estimates[0]['target']['name'])}",
                     "x": [m.label for m in METRICS], "y": [y - 1 if y is not None else None for y in ys], "base": 1,
                     "customdata": ys, "marker": {"color": _color(i)},
                     "text": [f"{y:.3g}×" if y is not None else "" for y in ys], "textposition": "outside",
                     "hovertemplate": "%{x}: %{customdata:.4g}×<extra>%{fullData.name}</extra>"})
    if not data:
        return None
    values = [y for t in data for y in t["customdata"] if y is not None] + [1.0]
    low, high = min(values) / 1.5, max(values) * 1.5
    ticks = [m * 10.0 ** e for e in range(-12, 13) for m in (1, 2, 5) if low <= m * 10.0 ** e <= high]
    if len(ticks) > 12:
        ticks = [t for t in ticks if f"{t:g}".lstrip("0.").startswith("1")]
    return {"id": "fig-ratios", "data": data,
            "layout": _layout(f"ratio to {esc(estimates[0]['target']['name'])}", barmode="group",
                              yaxis={"type": "log", "title": {"text": "ratio (log scale)"}, "tickmode": "array",
                                     "tickvals": ticks, "ticktext": [_times(t) for t in ticks]},
                              shapes=[{"type": "line", "xref": "paper", "x0": 0, "x1": 1, "yref": "y", "y0": 1,
                                       "y1": 1, "line": {"color": "#333", "dash": "dash", "width": 1}}],
                              height=420)}


def _times(t: float) -> str:
    """A ratio tick: 0.5×, 20×, 1e6×."""
    if 1e-3 <= t < 1e4:
        return f"{t:g}×"
    mantissa, exponent = f"{t:.0e}".split("e")
    return f"{mantissa}e{int(exponent)}×"


def _pick_layers(layers: Sequence[Mapping[str, Any]], limit: int) -> list[int]:
    """All layers, or the ``limit`` with the longest latency, kept in graph order."""
    if len(layers) <= limit:
        return list(range(len(layers)))
    lat = [x["latency_s"] if _finite(x["latency_s"]) else 0.0 for x in layers]
    return sorted(sorted(range(len(layers)), key=lambda i: -lat[i])[:limit])


def latency_stack(layers: Sequence[Mapping[str, Any]], idx: Sequence[int]) -> tuple[str, dict[str, list[float]]]:
    """How a family's per-layer latency splits into bars that add up to it.

    * "additive": the components' busy times sum to the layer's latency: stack them.
    * "bound": latency = max(units) (+ "overhead"): a unit that bounds a layer gets the bar,
      the others' overlapping busy time is hidden under it; the overhead stacks on top.
    * "busy": neither: the busy times are drawn side by side, the latency as a marker.
    """
    comps: list[str] = []
    for i in idx:
        comps += [c for c in layers[i].get("latency_by_component_s", {}) if c not in comps]

    def val(i: int, c: str) -> float:
        v = layers[i].get("latency_by_component_s", {}).get(c)
        return float(v) if _finite(v) else 0.0

    lat = [float(layers[i]["latency_s"]) if _finite(layers[i]["latency_s"]) else 0.0 for i in idx]
    close = lambda a, b: abs(a - b) <= 1e-6 * max(abs(a), abs(b), 1e-30)  # noqa: E731
    if comps and all(close(sum(val(i, c) for c in comps), t) for i, t in zip(idx, lat)):
        return "additive", {c: [val(i, c) for i in idx] for c in comps}
    units = [c for c in comps if c != "overhead"]
    extra = "overhead" if "overhead" in comps else None
    if units and all(close(max(val(i, c) for c in units) + (val(i, extra) if extra else 0.0), t)
                     for i, t in zip(idx, lat)):
        stack: dict[str, list[float]] = {c: [] for c in units}
        for i in idx:
            top = max(units, key=lambda c: val(i, c))
            for c in units:
                stack[c].append(val(i, c) if c == top else 0.0)
        if extra:
            stack[extra] = [val(i, extra) for i in idx]
        return "bound", stack
    return "busy", {c: [val(i, c) for i in idx] for c in comps}


def _utilization_figure(estimates: list[Mapping[str, Any]], max_layers: int) -> dict | None:
    """Each target's per-layer utilization (mapping.utilization), layers with MACs, in graph order."""
    ok = [e for e in estimates if e.get("ok", True) and e.get("layers")]
    if not ok:
        return None
    layers0 = ok[0]["layers"]
    mac_idx = [i for i, x in enumerate(layers0) if x.get("macs")]
    idx = [mac_idx[j] for j in _pick_layers([layers0[i] for i in mac_idx], max_layers)]
    data = []
    for k, e in enumerate(ok):
        layers = e["layers"]
        if len(layers) != len(layers0):
            continue
        ys = [layers[i].get("mapping", {}).get("utilization") for i in idx]
        if not any(_finite(y) for y in ys):
            continue
        data.append({"type": "bar", "name": esc(e["target"]["name"]), "x": list(range(len(idx))),
                     "y": [100 * y if _finite(y) else None for y in ys], "marker": {"color": _color(k)},
                     "customdata": [f"#{i} {esc(layers0[i]['name'])} ({esc(layers0[i]['op'])})" for i in idx],
                     "hovertemplate": "%{customdata}<br>%{y:.3g} %<extra>%{fullData.name}</extra>"})
    if not data:
        return None
    xaxis = _layer_axis("layers with MACs, in graph order", [layers0[i]["name"] for i in idx])
    return {"id": "fig-utilization", "data": data,
            "layout": _layout("utilization per layer", barmode="group", xaxis=xaxis,
                              yaxis={"title": {"text": "% of the peak MAC rate"}, "range": [0, 100]}, height=400)}


def _layer_figures(estimates: list[Mapping[str, Any]], max_layers: int,
                   color: Callable[[str], str]) -> tuple[str, list[dict]]:
    ok = [e for e in estimates if e.get("ok", True) and e.get("layers")]
    if not ok:
        return "", []
    layers0 = ok[0]["layers"]
    idx = _pick_layers(layers0, max_layers)
    n = len(layers0)
    hover = [f"#{i} {esc(layers0[i]['name'])} ({esc(layers0[i]['op'])})" for i in idx]
    xs = list(range(len(idx)))
    xaxis = _layer_axis("layers in graph order" + ("" if len(idx) <= TICK_LABELS else " (hover for names)"),
                        [layers0[i]["name"] for i in idx])
    picked = "" if len(idx) == n else (f" The {len(idx)} of {n} layers with the longest latency on "
                                       f"{esc(ok[0]['target']['name'])} are drawn, in graph order.")
    lat_traces: list[list[dict]] = []
    modes = []
    eng_traces: list[list[dict]] = []
    for e in ok:
        layers = e["layers"]
        if len(layers) != n:
            continue
        target = esc(e["target"]["name"])
        mode, stack = latency_stack(layers, idx)
        modes.append((target, mode + ("+overhead" if mode == "bound" and "overhead" in stack else "")))
        lat_all = [v for vs in stack.values() for v in vs] + [layers[i]["latency_s"] or 0.0 for i in idx]
        factor, unit = _scale(lat_all, "s")
        traces = [{"type": "bar", "name": esc(c), "x": xs, "y": [v * factor for v in vs], "customdata": hover,
                   "marker": {"color": color(c)}, "legendgroup": esc(c),
                   "hovertemplate": f"%{{customdata}}<br>{esc(c)}: %{{y:.4g}} {unit}<extra>{target}</extra>"}
                  for c, vs in stack.items()]
        if mode == "busy":
            traces.append({"type": "scatter", "mode": "markers", "name": "layer latency", "x": xs,
                           "y": [(layers[i]["latency_s"] or 0.0) * factor for i in idx], "customdata": hover,
                           "marker": {"color": "#111", "symbol": "line-ew-open", "size": 14},
                           "hovertemplate": f"%{{customdata}}<br>latency %{{y:.4g}} {unit}<extra>{target}</extra>"})
        for t in traces:
            t["meta"] = unit
        lat_traces.append(traces)

        energy_keys: list[str] = []
        for i in idx:
            energy_keys += [c for c in layers[i].get("energy_by_component_j", {}) if c not in energy_keys]
        vals = {c: [layers[i].get("energy_by_component_j", {}).get(c) for i in idx] for c in energy_keys}
        factor, unit = _scale([v for vs in vals.values() for v in vs if _finite(v)], "J")
        eng_traces.append([{"type": "bar", "name": esc(c), "x": xs, "customdata": hover, "legendgroup": esc(c),
                            "y": [v * factor if _finite(v) else None for v in vs], "marker": {"color": color(c)},
                            "hovertemplate": f"%{{customdata}}<br>{esc(c)}: %{{y:.4g}} {unit}<extra>{target}</extra>",
                            "meta": unit}
                           for c, vs in vals.items()])
    shown = [t for t, _ in modes]
    lat_fig = _switchable("fig-layer-latency", "latency per layer", shown, lat_traces, xaxis,
                          ["group" if m == "busy" else "stack" for _, m in modes])
    eng_fig = _switchable("fig-layer-energy", "energy per layer", shown, eng_traces, xaxis, ["stack"] * len(shown))
    bound = ("units work in parallel, so a layer takes as long as its slowest unit: the bar is coloured by that "
             "unit (the others' busy time overlaps it and is not drawn)")
    explain = {
        "additive": "the components' times add up to the layer's latency and are stacked",
        "bound": bound,
        "bound+overhead": bound + ", with the fixed per-layer overhead stacked on top",
        "busy": "units overlap in a way the plot cannot split, so each unit's busy time is drawn side by side and "
                "the layer's latency is the black mark",
    }
    by_mode: dict[str, list[str]] = {}
    for t, m in modes:
        by_mode.setdefault(m, []).append(t)
    how = "; ".join(f"{', '.join(ts)}: {explain[m]}" for m, ts in by_mode.items()) if len(by_mode) > 1 else \
        (explain[modes[0][1]] if modes else "")
    switch = " Pick the target with the menu above the plot." if len(shown) > 1 else ""
    text = (_caption(f"Latency of each layer: {how}.{picked}{switch}") + _div(lat_fig)
            + _caption("Energy of each layer, stacked by component (they add up to the layer's energy).")
            + _div(eng_fig))
    return text, [lat_fig, eng_fig]


def _switchable(fig_id: str, title: str, targets: list[str], traces: list[list[dict]], xaxis: dict,
                barmodes: list[str]) -> dict:
    """One figure holding every target's traces; a dropdown shows one target at a time."""
    data: list[dict] = []
    owner: list[int] = []
    for k, ts in enumerate(traces):
        for t in ts:
            t = dict(t)
            t["visible"] = k == 0
            t["showlegend"] = True
            data.append(t)
            owner.append(k)
    unit0 = traces[0][0]["meta"] if traces and traces[0] else ""
    layout = _layout(f"{title}: {targets[0]}" if targets else title, barmode=barmodes[0] if barmodes else "stack",
                     xaxis=xaxis,
                     yaxis={"title": {"text": unit0}, "rangemode": "tozero"}, bargap=0.15, height=460)
    if len(targets) > 1:
        buttons = []
        for k, name in enumerate(targets):
            unit = traces[k][0]["meta"] if traces[k] else ""
            buttons.append({"label": name, "method": "update",
                            "args": [{"visible": [o == k for o in owner]},
                                     {"title.text": f"{title}: {name}", "yaxis.title.text": unit,
                                      "barmode": barmodes[k]}]})
        layout["updatemenus"] = [{"type": "dropdown", "buttons": buttons, "x": 0.42, "xanchor": "left", "y": 1.02,
                                  "yanchor": "bottom", "showactive": True}]
    return {"id": fig_id, "data": data, "layout": layout}


def _layer_axis(title: str, names: Sequence[str]) -> dict[str, Any]:
    """The x axis of a per-layer plot: the layers' names as ticks while they fit (TICK_LABELS)."""
    if len(names) > TICK_LABELS:
        return {"title": {"text": title}, "showticklabels": False}
    return {"title": {"text": title}, "tickmode": "array", "tickvals": list(range(len(names))),
            "ticktext": [esc(_short(n, 28)) for n in names], "tickangle": -45, "automargin": True}


def _short(text: str, n: int) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


# ------------------------------------------------------------------ generation (compile --generate)
def render_generation_html(data: Mapping[str, Any], *, generated: str | None = None) -> str:
    """The ``compile --generate --html`` page, from ``Generation.to_dict()`` only: the summary per
    target, the per-token latency and energy over the context, the memories and the comparison."""
    targets = [t for t in data["targets"] if t.get("ok")]
    figures, sections = [], []
    rows = []
    for t in data["targets"]:
        if not t.get("ok"):
            rows.append(f"<tr><td>{esc(t['target'])}</td><td colspan=6>not costed: {esc(t.get('reason', ''))}"
                        "</td></tr>")
            continue
        tok = t["per_token_latency_s"]
        rows.append("<tr>" + "".join(f"<td>{c}</td>" for c in (
            esc(t["target"]), _fmt(t["ttft_s"], "s"),
            " / ".join(_fmt(tok[k], "s") for k in ("first", "median", "last")),
            f"{t['tokens_per_s']:.4g}", _fmt(t["j_per_token"], "J"),
            esc(f"{t['decode_bound']} ({100 * (t['decode_memory_bound_share'] or 0):.0f} % in memory-bound nodes)"),
            esc(", ".join(f"{m['memory']} {'fits' if m['fits'] else 'spills'}" for m in t["memories"])
                or "not modelled"))) + "</tr>")
    sections.append(("summary", "Per target", "<table><tr><th>target</th><th>time to first token</th><th>per token "
                     "(first / median / last)</th><th>tokens/s</th><th>J/token</th><th>decode bound</th><th>weights + "
                     "KV cache</th></tr>" + "".join(rows) + "</table>"))
    for key, unit, what in (("latency_s", "s", "latency"), ("energy_j", "J", "energy")):
        values = [v for t in targets for v in t["curve"][key]]
        if not values:
            continue
        factor, shown = _scale(values, unit)
        fig = {"id": f"fig-token-{what}", "data": [
            {"type": "scatter", "mode": "lines+markers", "name": esc(t["target"]), "x": t["curve"]["context"],
             "y": [v * factor for v in t["curve"][key]], "marker": {"color": _color(i)},
             "hovertemplate": f"context %{{x}}: %{{y:.4g}} {esc(shown)}<extra>%{{fullData.name}}</extra>"}
            for i, t in enumerate(targets)],
            "layout": _layout(f"{what} per decode step", xaxis={"title": {"text": "tokens in the KV cache (context)"}},
                              yaxis={"title": {"text": f"{what} per token ({esc(shown)})"}, "type": "log"}, height=420)}
        figures.append(fig)
        sections.append((f"token-{what}", f"Per-token {what}", _caption(
            f"Each decode step's {what} at the contexts costed (markers; the steps between them are interpolated "
            "linearly). Log scale: targets differ by orders of magnitude.") + _div(fig)))
    mem = [f"<tr><td>{esc(t['target'])}</td><td>{esc(m['memory'])}</td><td>{binary(m['capacity_bytes'])}</td>"
           f"<td>{binary(m['need_bytes'])}</td><td>{'yes' if m['fits'] else 'no: spills'}</td></tr>"
           for t in targets for m in t["memories"]]
    if mem:
        sections.append(("memories", "Weights + KV cache against the memories", "<table><tr><th>target</th><th>memory"
                         "</th><th>capacity</th><th>needs</th><th>fits</th></tr>" + "".join(mem) + "</table>"))
    notes = [*data.get("comparison", []), *data.get("notes", [])]
    sections.append(("notes", "Comparison and notes", "<ul>" + "".join(f"<li>{esc(n)}</li>" for n in notes) + "</ul>"))
    kv = data["kv_cache"]
    cache = ("no past inputs: every step re-runs the sequence" if kv["bytes_per_token"] is None else
             f"{binary(kv['bytes_per_token'])} per token, {binary(kv['bytes_total'])} at the end")
    shown = Path(str(data.get("model") or "model")).name
    title = f"nvmc generation: {shown}, {data['prompt']}-token prompt, {data['tokens']} tokens"
    header = (f"<p>model <code>{esc(data.get('model', ''))}</code>, batch {esc(data['batch'])}, weights "
              f"{binary(data['weight_bytes'])}, KV cache {esc(cache)}</p><p>targets "
              + ", ".join(f"<code>{esc(t['target'])}</code>" for t in data["targets"]) + "</p>")
    footer = f"(schema {esc(data.get('schema', ''))}). The same figures as <code>nvmc compile --generate --json</code>."
    return page(title, header, sections, footer, figures, generated=generated)
