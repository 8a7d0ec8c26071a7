"""`nvmc compile`, `nvmc targets`, `nvmc explain`: cost a model on hardware targets.

    nvmc compile model.onnx --target sot-mram --compare sram,stt-mram --iso area --json r.json
    nvmc targets
    nvmc explain --target stt-mram --set llc.capacity=8MiB

Registered on the ``cli`` group of nvmc/cli.py (imported at its end). User errors are
``NvmcError``s (exit 2); a target the model does not fit is a result: it is reported and
``compile`` exits with code 1.
"""

from __future__ import annotations

import io
import math
import sys
from pathlib import Path

import click
import numpy as np
from rich.table import Table

from nvmc.budget import EXIT_BUDGET, check_budgets, parse_budgets, refuse_unmodelled
from nvmc.cli import (EXIT_ACCURACY, accuracy_gate_option, check_output_path, cli, input_shape_option,
                      load_model, model_argument, path_option, write_output)
from nvmc.ir.dataout import json_text
from nvmc.ir.errors import NvmcError
from nvmc.render import (binary, console, err_console, one_line, print_error, print_notices, report_table,
                         si, styled)
from nvmc.ir.limits import MAX_BATCH
from nvmc.report import MACS, METRICS, build_report, parameter_row

EXIT_NOT_FITTING = 1
MAX_SCALE = MAX_BATCH  # --devices, --batch: beyond, MAC and byte counts leave int64 for large models


def _target_list(value: str | None) -> list[str]:
    """``T2,T3``; ``all`` (or ``*``): every shipped target."""
    if value and value.strip() in ("all", "*"):
        from nvmc.backends import shipped_targets

        return list(shipped_targets())
    return [t.strip() for t in value.split(",") if t.strip()] if value else []


@cli.command("compile")
@model_argument
@click.option("-t", "--target", "target_name", required=True,
              help="A shipped target (see 'nvmc targets') or a path to a target .toml file.")
@click.option("--compare", metavar="T2,T3", help="Also cost on these targets and print ratios side by side "
                                                  "('all': every shipped target).")
@click.option("--passes", "pipeline", metavar="PIPELINE",
              help="Transform the model first, e.g. 'fuse-conv-bn,dce' (see 'nvmc passes').")
@click.option("--iso", type=click.Choice(["capacity", "area"]),
              help="gpu-llc: keep the L2 capacity (capacity) or grow it to the reference SRAM L2's area (area).")
@click.option("--set", "sets", multiple=True, metavar="KEY=VALUE",
              help="Override a target field, e.g. llc.capacity=8MiB (repeatable; applies to every target).")
@path_option("--json", "json_path", help="Write the report as JSON ('-': stdout).")
@path_option("--csv", "csv_path", help="Write per-layer figures as CSV.")
@path_option("-o", "--output", help="Write the compiled model as ONNX.")
@click.option("--top", default=8, show_default=True, help="Layers to list in the terminal summary.")
@click.option("--layers", "show_layers", is_flag=True,
              help="Print every layer's mapping: how it was laid onto the hardware (utilization, units, folds or "
                   "waves, split-K, replicas, stall cycles, traffic; the fields the family models).")
@path_option("--html", "html_path", help="Write a self-contained HTML report with plots (opens offline).")
@click.option("--budget", "budget_spec", metavar="METRIC=VALUE,...",
              help="Fail (exit 3) when a target exceeds a budget, e.g. latency=5ms,energy=2mJ,area=10mm2 "
                   "(metrics: latency, energy, energy_per_inference, edp, area, throughput). With --generate: "
                   "ttft, token_latency (median decode step), tokens_per_s (a minimum), j_per_token, area, and "
                   "latency / energy of the whole generation.")
@click.option("-q", "--quiet", is_flag=True, help="Print no summary and no notes; errors and broken budgets only.")
@click.option("--grid", metavar="G_PER_KWH|REGION",
              help="Carbon: use-phase grid intensity in g CO2e/kWh or an ACT region (world, usa, europe, ...; "
                   "default world).")
@click.option("--lifetime", "lifetime_years", type=float, metavar="YEARS",
              help="Carbon: years the chip is deployed (embodied carbon is shared over them; default 3).")
@click.option("--utilisation", type=float, metavar="FRACTION",
              help="Carbon: fraction of its lifetime the chip runs this model (default 0.5).")
@click.option("--mode", type=click.Choice(["inference", "train"]), default=None,
              help="train: cost one training iteration (forward, backward, update; + gradient all-reduce with "
                   "--devices).")
@click.option("--devices", type=click.IntRange(max=MAX_SCALE), metavar="N",
              help="--mode train: data-parallel devices (default 1).")
@click.option("--parallel", type=click.Choice(["data"]), help="--mode train: parallelism (data).")
@click.option("--interconnect", metavar="NAME[,NAME2]",
              help="--mode train: the network (nvlink2, pcie4, 25gbe, ib-edr, aws-p3-16xlarge, ...; several: "
                   "compared), or --set net.bandwidth=25Gbit/s --set net.latency=5us.")
@click.option("--batch", "train_batch", type=click.IntRange(max=MAX_SCALE), metavar="B",
              help="--mode train: samples per device.")
@click.option("--generate", "generate_spec", metavar="prompt=P,tokens=T",
              help="Cost text generation: a P-token prefill, then T-1 decode steps with a growing KV cache "
                   "(time to first token, per-token latency, tokens/s, J/token, KV cache and what fits); -o "
                   "writes the model at the prefill's shapes.")
@accuracy_gate_option
@input_shape_option
def compile_cmd(model: Path, target_name: str, compare: str | None, pipeline: str | None, iso: str | None,
                sets: tuple[str, ...], json_path: Path | None, csv_path: Path | None, output: Path | None, top: int,
                html_path: Path | None, budget_spec: str | None, quiet: bool, grid: str | None,
                lifetime_years: float | None, utilisation: float | None, input_shapes, mode: str | None = None,
                devices: int | None = None, parallel: str | None = None, interconnect: str | None = None,
                train_batch: int | None = None, gate=None, generate_spec: str | None = None,
                show_layers: bool = False) -> None:
    """Estimate latency, energy and area of MODEL on a hardware target.

    Exits 0 on success, 1 when the model does not fit a target (reported, not an error),
    2 on bad input, 3 when a --budget is exceeded, 4 when --passes break an accuracy gate
    (--min-cosine, --min-sqnr, --min-top1: measured on seeded random inputs in onnxruntime).
    """
    import nvmc
    from nvmc.backends.errors import UnsupportedOpError
    from nvmc.pipeline import Costing, resolve_targets
    from nvmc.render import progress

    budgets = parse_budgets(budget_spec) if budget_spec is not None else []

    if output is not None and output.suffix != ".onnx":
        raise NvmcError("-o writes an .onnx file", where=str(output))
    others = [t for t in _target_list(compare) if t != target_name]
    given = [model, target_name, *others]  # target TOML files are inputs too
    for path, option in ((output, "-o"), (json_path, "--json"), (csv_path, "--csv"), (html_path, "--html")):
        check_output_path(path, *given, option=option)
    if html_path is not None and str(html_path) == "-":
        raise NvmcError("--html writes a file, not stdout", where="--html", hint="give a path, e.g. report.html")

    net, sets = Costing.split_sets(sets)  # net.* describe the training network, the rest the targets
    Costing(mode=mode or "inference", devices=devices, parallel=parallel, interconnect=interconnect,
            batch_per_device=train_batch, net=net)  # bad training options fail before the model loads
    targets = resolve_targets([target_name, *others], tuple(sets), iso)
    if generate_spec is not None:
        bound = bool(input_shapes or input_shapes.dims or input_shapes.values)
        return _generate(model, targets, generate_spec, pipeline=pipeline, net=net, json_path=json_path,
                         html_path=html_path, csv_path=csv_path, output=output, budgets=budgets, quiet=quiet,
                         train=mode == "train", bound=bound)
    with progress(f"loading {model.name}", quiet=quiet):
        graph = nvmc.load(model, **input_shapes.load_kwargs()) if quiet else load_model(model, input_shapes)
    try:
        with progress(f"costing {model.name} on {len(targets)} target(s)", quiet=quiet):
            compiled = nvmc.compile(graph, targets, passes=pipeline, sets=net, mode=mode or "inference",
                                    devices=devices, parallel=parallel, interconnect=interconnect,
                                    train_batch=train_batch, grid=grid, lifetime_years=lifetime_years,
                                    utilisation=utilisation)
    except UnsupportedOpError as e:
        if e.where is None:
            e.where = str(model)
        raise
    if not quiet:
        print_notices(compiled.workload.notices)
        if compiled.passes is not None:
            print_notices(_pass_lines(compiled.passes))
    graph, estimates = compiled.graph, compiled.estimates
    _check_finite(estimates)
    refuse_unmodelled(budgets, estimates)
    checked = check_budgets(budgets, [(e.target, e.totals) for e in estimates])
    measured = compiled.accuracy
    broken_gate = gate.failures(measured)
    if measured is not None and gate.active:
        measured = {**measured, "gate": {"min_cosine": gate.min_cosine, "min_sqnr_db": gate.min_sqnr_db,
                                         "min_top1": gate.min_top1, "ok": not broken_gate, "failures": broken_gate}}
    report = build_report(model, graph, estimates, budgets=checked, accuracy=measured)
    if json_path is not None:
        write_output(json_path, json_text(report))
    if csv_path is not None:
        _write_csv(estimates, csv_path)
    if output is not None:
        nvmc.save(graph, output)
        if not quiet:
            err_console().print(f"wrote {output}")
    if html_path is not None:
        from nvmc.report import parameters_of, write_html

        with progress(f"writing {html_path.name}", quiet=quiet):
            write_html(html_path, report, {t.name: parameters_of(t) for t in targets})
        if not quiet:
            err_console().print(f"wrote {html_path}")
    if not quiet and "-" not in (str(json_path), str(csv_path)):  # stdout carries the data
        out = console()
        _print_summary(out, model, estimates[0], top)
        if show_layers:
            for e in estimates:
                if e.ok:
                    out.print(_mapping_table(e, out.width))
        if len(estimates) > 1:
            out.print(_compare_table(estimates, out.width))
            for e in estimates[1:]:
                if not e.ok:
                    out.print(styled((f"{e.target}: ", "yellow"), e.reason), soft_wrap=True)
            scopes: dict[str, list[str]] = {}
            for e in estimates:
                if e.ok:
                    scopes.setdefault(e.scope.get("label") or "not stated", []).append(e.target)
            if len(scopes) > 1:
                out.print(styled(("note: ", "yellow"), "the energies cover different parts of the system:"))
                for label, names in scopes.items():
                    out.print(styled(f"  {', '.join(names)}: ", (label, "dim")), soft_wrap=True)
    if quiet:
        for e in estimates:
            if not e.ok:
                print_error(f"{e.target}: does not fit: {e.reason}")
    _print_budgets(checked, quiet)
    for why in broken_gate:
        print_error(f"accuracy gate: {why} (--passes {pipeline})")
    if not all(e.ok for e in estimates if e.applicable):  # n/a rows of a comparison are not failures
        sys.exit(EXIT_NOT_FITTING)
    _exit_if_exceeded(checked)
    if broken_gate:
        print_error(f"error: the passes broke the accuracy gate (exit {EXIT_ACCURACY})")
        sys.exit(EXIT_ACCURACY)


def _print_budgets(checked, quiet: bool) -> None:
    """One line per budget on stderr: every broken one, and (unless -q) every kept one."""
    for r in checked:
        if not r.ok:
            print_error(f"budget exceeded: {r.message()}")
        elif not quiet:
            print_error(f"budget ok: {r.message()}")


def _exit_if_exceeded(checked) -> None:
    if not all(r.ok for r in checked):
        print_error(f"error: {sum(not r.ok for r in checked)} budget(s) exceeded (exit {EXIT_BUDGET})")
        sys.exit(EXIT_BUDGET)


def _check_finite(estimates) -> None:
    """Parameters at the edge of their range (e.g. --set net.bandwidth=1e-300Gbit/s) can make a
    total overflow; say so instead of reporting inf or NaN."""
    from nvmc.backends.errors import CostModelError

    for e in estimates:
        if not e.ok:
            continue
        totals = e.totals
        bad = [k for k in ("latency_s", "energy_j", "edp_js", "energy_per_inference_j", "area_mm2")
               if totals[k] is not None and not math.isfinite(totals[k])]
        if bad:
            raise CostModelError(f"the estimate on '{e.target}' is not finite "
                                 f"({', '.join(f'{k} = {totals[k]}' for k in bad)})",
                                 hint="a parameter is outside any physical range: check the --set, net.*, "
                                      "--devices and --batch values")


def _left_alone(why_not: list[tuple[str, str]], shown: int = 2) -> str:
    """``left 3 place(s) alone: 2 because A; 1 because B``: how many a pass skipped and why,
    the commonest reasons first (a pass that skips a node never does so silently)."""
    counts: dict[str, int] = {}
    for _, reason in why_not:
        counts[reason] = counts.get(reason, 0) + 1
    top = sorted(counts.items(), key=lambda kv: -kv[1])
    parts = [f"{n} because {one_line(reason, 240)}" for reason, n in top[:shown]]
    more = len(top) - shown
    return (f"left {len(why_not)} place(s) alone: " + "; ".join(parts)
            + (f"; {more} other reason(s)" if more > 0 else ""))


def _pass_lines(result) -> list[str]:
    """One line per pass of --passes: its counters and the error it measured (approximate passes)."""
    lines = []
    for r in result.records:
        stats = ", ".join(f"{k}={v:.4g}" for k, v in r.result.stats.items() if "." not in k)
        errors = {k: v for k, v in r.result.error.items() if "." not in k}
        measured = ("; measured " + ", ".join(f"{k} {v:.6g}" for k, v in errors.items())) if errors else ""
        left = f"; {_left_alone(r.result.why_not)} (all: nvmc opt --explain-pass {r.name})" if r.result.why_not else ""
        lines.append(f"pass {r.spec}: {stats or ('changed' if r.changed else 'no change')}{measured}{left}")
    return lines


def _write_csv(estimates, path: Path) -> None:
    from nvmc.ir.dataout import csv_text

    components = sorted({k for e in estimates for k in e.energy})
    lat_components = sorted({k for e in estimates for k in e.latency})
    from nvmc.backends.estimate import MAPPING_FIELDS

    events = sorted({k for e in estimates for k in e.events})
    mapping = [k for k in MAPPING_FIELDS if any(k in e.mapping for e in estimates)]

    def mapped(e, k, i) -> str:
        v = e.mapping[k][i] if k in e.mapping else math.nan
        return f"{v:.6g}" if math.isfinite(v) else ""

    header = ["target", "energy_scope", "name", "op", "macs", "latency_s", "energy_j",
              *(f"latency_{k}_s" for k in lat_components), *(f"energy_{k}_j" for k in components), *events,
              *(f"mapping_{k}" for k in mapping)]
    rows = ([e.target, e.scope.get("system", ""), name, e.ops[i], int(e.macs[i]), f"{e.node_latency[i]:.6e}",
             f"{e.node_energy[i]:.6e}",
             *(f"{e.latency[k][i]:.6e}" if k in e.latency else "" for k in lat_components),
             *(f"{e.energy[k][i]:.6e}" if k in e.energy else "" for k in components),
             *(f"{e.events[k][i]:.6g}" if k in e.events else "" for k in events),
             *(mapped(e, k, i) for k in mapping)]
            for e in estimates if e.ok for i, name in enumerate(e.names))
    write_output(path, csv_text(header, rows))


# ------------------------------------------------------------------ rendering
def _fmt_metric(key: str, value: float, unit: str) -> str:
    if value is None or not math.isfinite(value):
        return "—"
    if key.endswith("mm2"):
        return f"{value:.3g} mm²"
    return si(value, unit)


def _print_summary(out, model: Path, est, top: int) -> None:
    info = est.info
    cap = info.get("llc_capacity_bytes")
    head = f"{model.name} on {est.target} ({est.family})"
    if cap:
        head += f": L2 {info.get('llc_technology')} {binary(cap)}"
        if info.get("iso") == "area":
            head += f" (iso-area; declared {binary(info.get('declared_capacity_bytes'))})"
    head += f", batch {est.batch}"
    if not est.ok:
        out.print(styled((head, "bold")))
        out.print(styled(("does not fit:", "yellow"), f" {est.reason}"), soft_wrap=True)
        return
    totals = est.totals
    out.print(styled((head, "bold")), soft_wrap=True)
    if est.scope.get("label"):
        out.print(styled(("energy covers: ", "dim"), est.scope["label"]), soft_wrap=True)
    if est.precision.get("note"):
        out.print(styled(("precision: ", "yellow"), est.precision["note"]), soft_wrap=True)
    table = Table(show_header=False)
    table.add_column("metric")
    table.add_column("value", justify="right")
    for m in METRICS:
        value = totals[m.total]
        table.add_row(m.label, _fmt_metric(m.total, value, m.unit) if value is not None else "not modelled")
    table.add_row(MACS.label, si(totals["macs"], MACS.unit))
    out.print(table)

    energy = est.energy_by_component()
    total_e = sum(energy.values()) or 1.0
    busy = est.latency_by_component()
    comp = report_table("energy by component", ("component", "energy", "share"), text=("component",))
    for k, v in sorted(energy.items(), key=lambda kv: -kv[1]):
        comp.add_row(k, si(v, "J"), f"{100 * v / total_e:.1f}%")
    out.print(comp)
    out.print("busy time by unit (units overlap): "
              + ", ".join(f"{k} {si(v, 's')}" for k, v in busy.items()), soft_wrap=True)

    lat = est.node_latency
    node_e = est.node_energy
    order = np.argsort(-lat, kind="stable")[:top]
    total_t = lat.sum() or 1.0
    layers = report_table(f"top {len(order)} layers by latency",
                          ("node", "op", "MACs", "latency", "share", "energy", "bound by"),
                          text=("node", "op", "bound by"))
    units = [k for k in est.latency if k != "overhead"]
    stacked = np.stack([est.latency[k] for k in units]) if units else None
    gap = est.latency.get("overhead")
    for i in order:
        bound = units[int(np.argmax(stacked[:, i]))] if stacked is not None else ""
        if gap is not None and stacked is not None and gap[i] > stacked[:, i].max():
            bound += " (overhead)"  # the fixed per-kernel time exceeds every unit's busy time
        layers.add_row(one_line(est.names[i]), one_line(est.ops[i]), si(int(est.macs[i]), ""), si(lat[i], "s"),
                       f"{100 * lat[i] / total_t:.1f}%", si(node_e[i], "J"), bound)
    out.print(layers)
    for note in est.notes:
        out.print(styled((f"note: {note}", "dim")), soft_wrap=True)
    if est.carbon:
        from nvmc.backends.carbon import summary_line

        out.print(summary_line(est.carbon), soft_wrap=True)


# the --layers table: a short header per mapping field, and how its value reads
_MAPPING_COLUMNS = {"utilization": "util.", "units_used": "units", "passes": "passes", "split_k": "split K",
                    "replication": "copies", "stall_cycles": "stall cycles", "compute_cycles": "cycles",
                    "hit_rate": "L2 hit", "load_balance": "balance", "adc_conversions": "ADC conv.",
                    "dram_bytes": "DRAM", "onchip_bytes": "on-chip", "host_bytes": "host"}


def _mapping_table(est, width: int) -> Table:
    """Every layer of ``est`` with the mapping fields its family models (MAPPING_FIELDS), as many as
    ``width`` columns hold (in the order of _MAPPING_COLUMNS; the caption names the rest)."""
    from nvmc.backends.estimate import MAPPING_FIELDS

    # the fields this family models, less those that say nothing here (stall cycles of a run without stalls)
    fields = [k for k in _MAPPING_COLUMNS if k in est.mapping and np.nan_to_num(est.mapping[k]).any()]
    extra = f", {est.info['dataflow']} dataflow" if isinstance(est.info.get("dataflow"), str) else ""
    chosen = est.events.get("dataflow")             # systolic dataflow=auto: 0 os, 1 ws, 2 is per layer
    room = width - 2 * 12 - 12 - (11 if chosen is not None else 0)   # node, op (folded), latency, dataflow
    shown = [k for i, k in enumerate(fields) if room - 11 * (i + 1) >= 0]
    left = [_MAPPING_COLUMNS[k] for k in fields if k not in shown]
    table = report_table(f"layer mapping on {est.target} ({est.family}{extra})",
                         ("node", "op", "latency", *(["dataflow"] if chosen is not None else []),
                          *(_MAPPING_COLUMNS[k] for k in shown)), text=("node", "op"),
                         caption="; ".join(f"{_MAPPING_COLUMNS[k]}: {MAPPING_FIELDS[k]}" for k in shown)
                         + (f". Left out at this width: {', '.join(left)} (in --json and --csv)" if left else ""),
                         caption_justify="left")
    fields = shown
    table.columns[0].min_width, table.columns[1].min_width = 6, 6    # a name stays readable when columns crowd
    units_total = est.mapping.get("units_total")
    for i, name in enumerate(est.names):
        if est.node_latency[i] <= 0 and not est.macs[i]:
            continue   # views and folded nodes: nothing is mapped
        cells = []
        for k in fields:
            v = float(est.mapping[k][i])
            if not math.isfinite(v):
                cells.append("—")
            elif k in ("utilization", "hit_rate", "load_balance"):
                cells.append(f"{100 * v:.0f} %")
            elif k.endswith("_bytes"):
                cells.append(binary(v))
            elif k == "units_used" and units_total is not None and math.isfinite(float(units_total[i])):
                cells.append(f"{v:.0f}/{float(units_total[i]):.0f}")
            else:
                cells.append(si(v, "") if v >= 1e4 else f"{v:.0f}")
        flow = [] if chosen is None else [("os", "ws", "is")[int(chosen[i])] if math.isfinite(chosen[i]) else "—"]
        table.add_row(one_line(name), one_line(est.ops[i]), si(est.node_latency[i], "s"), *flow, *cells)
    return table


def _compare_rows(estimates, width: int) -> Table:
    """The comparison with one row per target, for many targets: it fits 100 columns whatever
    their number (the wide table grows a column pair per target)."""
    from rich import box

    base = estimates[0]
    # the family column only where it fits beside whole target names (narrower: the scope note
    # below the table groups the targets by what their energy covers)
    family = width >= 100
    table = report_table(f"comparison: {len(estimates)} targets (×: ratio to {one_line(base.target)}, below 1 the "
                         "other target is lower; energy per inference; EDP = latency × energy; area —: not "
                         "modelled; "
                         "dtype: the precision costed)",
                         ("target", *(("family",) if family else ()), "latency", "×", "energy", "×", "EDP ×", "area",
                          "dtype"),
                         text=("target", "family", "dtype"), box=box.SIMPLE_HEAD,
                         padding=(0, 1), collapse_padding=True, pad_edge=False, show_edge=False)
    for e in estimates:
        head = (one_line(e.target), e.family) if family else (one_line(e.target),)
        if not e.ok:
            state = "n/a" if not e.applicable else "no fit"
            table.add_row(*head, state, "", state, "", "", "", "")
            continue
        cells = []
        for key, unit in (("latency_s", "s"), ("energy_per_inference_j", "J")):
            cells += [_fmt_metric(key, e.totals[key], unit), *_ratios_row([base.totals[key], e.totals[key]])]
        area = e.totals["area_mm2"]
        table.add_row(*head, *cells, *_ratios_row([base.totals["edp_js"], e.totals["edp_js"]]),
                      "—" if area is None else f"{area:.3g} mm²", e.precision.get("costed", "—"))
    return table


def _compare_table(estimates, width: int) -> Table:
    """Targets as columns (metric by metric, with the ratios) when that fits the terminal;
    otherwise, and for more than three targets, one row per target (_compare_rows)."""
    if len(estimates) > 3:
        return _compare_rows(estimates, width)
    table = _compare_columns(estimates)
    return table if _fits(table, width) else _compare_rows(estimates, width)


def _fits(table: Table, width: int) -> bool:
    from rich.measure import Measurement

    from nvmc.render import SafeConsole

    probe = SafeConsole(width=10_000, file=io.StringIO())  # measures names as the printer shows them
    return Measurement.get(probe, probe.options, table).maximum <= width


def _compare_columns(estimates) -> Table:
    targets = [one_line(e.target) for e in estimates]
    table = report_table(f"comparison (ratio = other ÷ {targets[0]}; below 1: the other target is lower)",
                         ("metric", *targets, *(f"{t} ÷ {targets[0]}" for t in targets[1:])), text=("metric",))
    for m in (*METRICS, MACS):
        values = [e.totals[m.total] for e in estimates]
        table.add_row(m.label, *(_fmt_metric(m.total, v, m.unit) if v is not None or not e.ok else "not modelled"
                                 for v, e in zip(values, estimates)), *_ratios_row(values))
    table.add_row("precision costed", *(e.precision.get("costed", "—") for e in estimates),
                  *("" for _ in estimates[1:]))
    cap_row = [binary(e.info["llc_capacity_bytes"]) if e.info.get("llc_capacity_bytes") else "—" for e in estimates]
    if any(c != "—" for c in cap_row):
        caps = [e.info.get("llc_capacity_bytes") for e in estimates]
        table.add_row("L2 capacity", *cap_row, *_ratios_row(caps))
    llc = [e.energy_of("l2_read", "l2_write", "l2_leakage") if e.ok and "l2_read" in e.energy else None
           for e in estimates]
    if any(v is not None for v in llc):
        table.add_row("L2 energy", *(si(v, "J") if v is not None else "—" for v in llc), *_ratios_row(llc))
    return table


def _ratios_row(values) -> list[str]:
    base = values[0]
    out = []
    for v in values[1:]:
        if base is None or v is None or not base or not math.isfinite(base) or not math.isfinite(v):
            out.append("—")
        else:
            r = v / base
            # 6.9e6× rather than 6.86e+06×: a ratio column stays narrow beside the figures
            out.append(f"{r:.3g}×" if 0.01 <= r < 1000 else
                       f"{r:.1e}×".replace("e+0", "e").replace("e-0", "e-").replace("e+", "e"))
    return out


# ------------------------------------------------------------------ targets, explain
def _generate(model: Path, targets, spec_text: str, *, pipeline, net, json_path, html_path, csv_path, output,
              budgets, quiet: bool, train: bool, bound: bool) -> None:
    """``compile --generate``: the generation table, and the JSON report's ``generation`` section;
    ``budgets`` bound its figures (exit 3 when one is exceeded), ``output`` gets the prefill's graph."""
    import nvmc
    from nvmc.generation import GenerateSpec, generate
    from nvmc.render import progress

    if train:
        raise NvmcError("--mode train does not combine with it: a generation is inference (a prefill, then "
                        "decode steps)", where="--generate",
                        hint="leave out --mode train, or cost a training iteration without --generate (binding the "
                             "sequence with --dim)")
    if bound:
        raise NvmcError("it binds the decoder's batch, sequence and past-length dims itself, to each step's "
                        "shapes, so --input-shape/--dim/--input-value cannot fix them", where="--generate",
                        hint="leave them out and set the lengths with --generate prompt=P,tokens=T; or cost one "
                             "forward pass at your dims without --generate")
    spec = GenerateSpec.parse(spec_text)
    with progress(f"costing generation of {model.name} on {len(targets)} target(s)", quiet=quiet):
        gen = generate(model, targets, prompt=spec.prompt, tokens=spec.tokens, samples=spec.samples,
                       passes=pipeline, sets=net)
    refuse_unmodelled(budgets, gen.results, run=f"--generate {spec}")
    checked = check_budgets(budgets, [(r.target, r.totals) for r in gen.results])
    data = gen.to_dict()
    if checked:
        data["budgets"] = [r.to_dict() for r in checked]
    if json_path is not None:
        write_output(json_path, json_text(data) + "\n")
    if csv_path is not None:   # one row per generated token and target: the per-token curve
        from nvmc.ir.dataout import csv_text

        costed = set(gen.contexts)
        rows = [[r.target, k + 1, "prefill" if k == 0 else "decode", 0 if k == 0 else spec.prompt + k - 1,
                 "yes" if k == 0 or spec.prompt + k - 1 in costed else "interpolated",
                 f"{r.per_token_latency_s[k]:.6e}", f"{r.per_token_energy_j[k]:.6e}"]
                for r in gen.results if r.ok for k in range(r.tokens)]
        write_output(csv_path, csv_text(["target", "token", "phase", "context", "costed", "latency_s", "energy_j"],
                                        rows))
    if output is not None:
        nvmc.save(gen.graph, output)
        if not quiet:
            err_console().print(f"wrote {output}")
    if html_path is not None:
        from nvmc.report import write_generation_html

        write_generation_html(html_path, data)
        if not quiet:
            err_console().print(f"wrote {html_path}")
    if not quiet:
        _print_generation(data, spec)
    _print_budgets(checked, quiet)
    _exit_if_exceeded(checked)


def _print_generation(data: dict, spec) -> None:
    """The generation's summary: the KV cache, one row per target, what fits, the comparison, notes."""
    kv = data["kv_cache"]
    cache = ("none (no past inputs)" if kv["bytes_per_token"] is None else
             f"{binary(kv['bytes_per_token'])}/token, {binary(kv['bytes_total'])} after "
             f"{spec.prompt + spec.tokens - 1} tokens")
    console().print(f"generation: {spec.prompt}-token prompt, {spec.tokens} tokens; weights "
                  f"{binary(data['weight_bytes'])}; KV cache {cache}", soft_wrap=True, markup=False)
    table = report_table(None, ("target", "TTFT", "per token", "tokens/s", "J/token", "decode bound by"),
                         text=("target", "decode bound by"))
    unfit = []
    fits = report_table("weights + KV cache against the target's memories",
                        ("target", "memory", "capacity", "needs", "fits"), text=("target", "memory"))
    for r in data["targets"]:
        if not r["ok"]:
            table.add_row(one_line(r["target"]), "—", "—", "—", "—", "n/a")
            unfit.append(f"{r['target']}: {r['reason']}")
            continue
        tok = r["per_token_latency_s"]
        by = r["decode_bound_by"]
        lead = max(by, key=by.get) if by else ""
        bound = "—" if r["decode_bound"] is None else f"{r['decode_bound']} ({lead} {100 * by.get(lead, 0):.0f} %)"
        if r["decode_overhead_share"] >= 0.5:
            bound += f"; kernel overhead {100 * r['decode_overhead_share']:.0f} % of the time"
        per_token = "—" if tok["median"] is None else (
            si(tok["median"], "s") if tok["first"] == tok["last"] else
            f"{si(tok['first'], 's')} .. {si(tok['last'], 's')}")
        rate = r["tokens_per_s"]
        table.add_row(one_line(r["target"]), si(r["ttft_s"], "s"), per_token,
                      f"{rate:,.0f}" if rate >= 100 else f"{rate:.3g}", si(r["j_per_token"], "J"), bound)
        for m in r["memories"]:
            fits.add_row(one_line(r["target"]), m["memory"], binary(m["capacity_bytes"]), binary(m["need_bytes"]),
                         "yes" if m["fits"] else "no: spills")
    console().print(table)
    if fits.row_count:
        console().print(fits)
    for line in data["comparison"]:
        console().print(line, soft_wrap=True, markup=False)
    print_notices([*data["notes"], *(f"not costed on {u}" for u in unfit)])


@cli.command("targets")
@click.option("--json", "as_json", is_flag=True, help="Print the list as JSON.")
def targets_cmd(as_json: bool) -> None:
    """List the shipped hardware targets."""
    from nvmc.backends import load_target, shipped_targets
    from nvmc.backends.registry import plugin_failures

    print_notices([f"target plugin '{name}' failed to load: {why}" for name, why in plugin_failures().items()])
    rows = []
    for name, path in shipped_targets().items():
        t = load_target(path)
        rows.append({"name": name, "family": t.family, "description": t.description, "file": str(path)})
    if as_json:
        click.echo(json_text(rows, indent=1))
        return
    table = report_table("targets (use: nvmc compile MODEL --target NAME; nvmc explain --target NAME)",
                         ("name", "family", "description"), text=("name", "family", "description"))
    for r in rows:
        table.add_row(r["name"], r["family"], r["description"])
    console().print(table)


_UNITS = (("_bytes_per_s", "B/s"), ("_per_s", "/s"), ("_hz", "Hz"), ("_f2", "F²"), ("_ohm", "Ω"),
          ("_j_per_bit", "J/bit"), ("_j", "J"), ("_w", "W"), ("_s", "s"), ("_v", "V"), ("_a", "A"), ("_nm", "nm"))


def _fmt_param(key: str, value) -> str:
    if isinstance(value, str):
        return value
    name = key.rsplit(".", 1)[-1]
    if name.endswith("bytes") or name == "capacity":
        return f"{binary(value)}" + (f" ({int(value)} B)" if value >= 1024 else "")
    if name.endswith("_mm2"):
        return f"{value:.4g} mm²"
    for suffix, unit in _UNITS:
        if name.endswith(suffix):
            return si(float(value), unit, digits=4)
    return f"{value:.6g}" if isinstance(value, float) else str(value)


def _short(text: str) -> str:
    """Paths under the current directory, shown relative to it."""
    cwd = str(Path.cwd()) + "/"
    return text.replace(cwd, "")


@cli.command("explain")
@click.option("-t", "--target", "target_name", required=True, help="A shipped target name or a .toml path.")
@click.option("--iso", type=click.Choice(["capacity", "area"]), help="As for compile.")
@click.option("--set", "sets", multiple=True, metavar="KEY=VALUE", help="Override a target field (repeatable).")
@click.option("--json", "as_json", is_flag=True, help="Print the parameters as JSON.")
def explain_cmd(target_name: str, iso: str | None, sets: tuple[str, ...], as_json: bool) -> None:
    """Print every parameter a target's cost model uses, with its source; flag assumed ones."""
    from nvmc.backends import family_module
    from nvmc.pipeline import resolve_targets

    target = resolve_targets([target_name], sets, iso)[0]
    from nvmc.backends.carbon import node_of, parameters as carbon_parameters

    params = [*family_module(target.family).parameters(target), *carbon_parameters(node_of(None, target))]
    # the target's own keys and derived values first, then each library file's numbers together
    order = {owner: i for i, owner in enumerate(dict.fromkeys(p.key.split(":")[0] for p in params if ":" in p.key))}
    params.sort(key=lambda p: order[p.key.split(":")[0]] + 1 if ":" in p.key else 0)
    if as_json:
        click.echo(json_text({"target": target.name, "family": target.family, "file": target.source,
                               "hash": target.hash,
                               "parameters": [parameter_row(p) for p in params]}, indent=1))
        return
    out = console()
    out.print(styled((one_line(target.name), "bold"), f" ({target.family}): {target.description}"), soft_wrap=True)
    out.print(f"file {_short(target.source)}, sha256 {target.hash[:16]}…", soft_wrap=True)
    styles = {"assumed": "bold yellow", "derived": "cyan", "source": "green", "--set": "magenta"}
    width = max(len(p.key.split(":")[-1]) for p in params) if params else 10
    group = None
    for p in params:
        owner = p.key.split(":")[0] if ":" in p.key else "target"
        if owner != group:
            group = owner
            title = "target (file, --set, defaults and the values they resolve to)" if owner == "target" \
                else f"library: {owner} ({_short(p.origin)})"
            out.print(styled("\n", (title, "bold")))
        key = p.key.split(":")[-1]
        kind = "ASSUMED" if p.kind == "assumed" else p.kind
        note = _short(p.note) + (f"  [formula: {p.formula}]" if p.formula else "")
        out.print(styled(f"  {key:<{width}}  {_fmt_param(key, p.value):<22} ",
                         (f"{kind:<8}", styles.get(p.kind, "default")), f" {note}"), soft_wrap=True)
    counts = {k: sum(1 for p in params if p.kind == k) for k in ("source", "derived", "assumed")}
    other = len(params) - sum(counts.values())
    out.print(styled(f"\n{len(params)} parameters: {counts['source']} cited, {counts['derived']} derived, ",
                     (f"{counts['assumed']} assumed", "bold yellow"), f", {other} set by the target or defaults"),
              soft_wrap=True)
