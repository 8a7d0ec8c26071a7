"""`nvmc opt`, `nvmc passes` and `nvmc check`: the pass developer's commands.

    nvmc opt model.onnx --passes 'fold-constants,fuse-conv-bn,dce' -o out.onnx --timing
    nvmc passes [NAME]
    nvmc check model.onnx out.onnx --rtol 1e-5
"""

from __future__ import annotations

import inspect
import sys
from pathlib import Path

import click
from rich.table import Table

from nvmc.cli import (EXIT_ACCURACY, accuracy_gate_option, check_output_path, cli, echo_nvir, input_shape_option,
                      load_model, model_argument, path_option, write_output)
from nvmc.ir.dataout import json_text
from nvmc.ir.errors import NvmcError
from nvmc.render import (MAX_MESSAGE_LINE, binary, console, err_console, one_line, print_error, print_notices,
                         report_table)

OUTPUT_SUFFIXES = (".onnx", ".nvir")


@cli.command("opt")
@model_argument
@click.option("-p", "--passes", "pipeline", metavar="PIPELINE", default="", show_default=False,
              help="Passes to run, MLIR-style: 'fold-constants,dce,fuse-activation{clip=false}'.")
@path_option("-o", "--output",
              help="Write the result (.onnx or .nvir + .npz); without it the .nvir text goes to stdout.")
@click.option("--verify-each/--no-verify-each", default=True, show_default=True,
              help="Run the verifier after every pass that changed the graph.")
@click.option("--print-after-all", is_flag=True, help="Dump the IR (.nvir) to stderr after every pass.")
@click.option("--print-after", "print_after", metavar="NAME", multiple=True,
              help="Dump the IR to stderr after each run of pass NAME (repeatable).")
@click.option("--timing", is_flag=True, help="Print the time of every pass (and of the verifier).")
@click.option("--explain-pass", "explain", metavar="NAME", multiple=True,
              help="List where pass NAME looked and left the graph alone, and why (repeatable).")
@click.option("--macs", "measure_macs", is_flag=True,
              help="Add the MACs each pass saved to its stats (runs the workload analysis around every pass).")
@click.option("--check", "check_numerics", is_flag=True,
              help="Run the input and the result in onnxruntime on random inputs and report the error.")
@path_option("--json", "json_path", help="Write what every pass did as JSON ('-' for stdout, with -o).")
@accuracy_gate_option
@input_shape_option
def opt_cmd(model: Path, pipeline: str, output: Path | None, verify_each: bool, print_after_all: bool,
            print_after: tuple[str, ...], timing: bool, explain: tuple[str, ...], measure_macs: bool,
            check_numerics: bool, json_path: Path | None, input_shapes, gate) -> None:
    """Run a pass pipeline on MODEL (.onnx or .nvir), like mlir-opt.

    Exits 0 on success, 2 on bad input, 4 when approximate passes break an accuracy gate
    (--min-cosine, --min-sqnr, --min-top1; the result is still written, as compile does)."""
    from nvmc.passes import parse_pipeline, registered_passes, run_pipeline
    from nvmc.passes.manager import check_pass_names

    parsed = parse_pipeline(pipeline)  # a typo fails before the model is read
    check_pass_names(explain, "--explain-pass")
    if output is not None:
        if output.suffix not in OUTPUT_SUFFIXES:
            raise NvmcError(f"opt writes .onnx or .nvir, not '{output.suffix or output.name}'", where=str(output))
        check_output_path(output, model)
    check_output_path(json_path, model, option="--json")
    if json_path is not None and str(json_path) == "-" and output is None:
        raise NvmcError("--json - needs -o: stdout already carries the IR", where="--json")
    graph = load_model(model, input_shapes)
    original = graph.copy() if check_numerics or gate.active else None
    result = run_pipeline(graph, parsed, verify_each=verify_each, print_after_all=print_after_all,
                          print_after=print_after, timing=timing, measure_macs=measure_macs, dump=_stderr)
    err_console().print(_summary_table(result, model.name))
    for name in explain:
        _explain(result, name, registered_passes()[name])
    broken_gate = _judge(gate, original, graph, result)
    if check_numerics:
        from nvmc.harness import compare

        report = compare(original, graph, input_shapes=dict(input_shapes), dims=input_shapes.dims)
        err_console().print(str(report), markup=False, highlight=False)
    if json_path is not None:
        text = json_text(result.to_dict() | ({"accuracy": broken_gate} if gate.active else {}))
        write_output(json_path, text)
    _write_result(graph, model, output)
    for why in broken_gate.get("failures", ()):
        print_error(f"accuracy gate: {why} (--passes {result.pipeline})")
    if broken_gate.get("failures"):
        print_error(f"error: the passes broke the accuracy gate (exit {EXIT_ACCURACY})")
        sys.exit(EXIT_ACCURACY)


def _judge(gate, original, graph, result) -> dict:
    """The measured accuracy of the pipeline (nvmc/pipeline.py: accuracy) and what ``gate`` says of it."""
    if not gate.active:
        return {}
    from nvmc.pipeline import accuracy

    measured = accuracy(original, graph, result)
    if measured is None:
        err_console().print("note: every pass that changed the model is exact: nothing for the accuracy gate to "
                            "judge", markup=False, highlight=False)
    return {"measured": measured, "failures": gate.failures(measured)}


def _write_result(graph, model: Path, output: Path | None) -> None:
    import nvmc

    if output is None:
        return echo_nvir(graph, model)
    for path in nvmc.save(graph, output):
        err_console().print(f"wrote {path}")


def _stderr(text: str) -> None:
    sys.stderr.write(text)
    sys.stderr.flush()


def _summary_table(result, title: str) -> Table:
    table = report_table(f"{title}: {result.pipeline or '(no passes)'}",
                         ("#", "pass", "changed", "nodes", "const bytes", "stats"),
                         text=("pass", "changed", "stats"))
    for r in result.records:
        saved = r.bytes_before - r.bytes_after
        stats = ", ".join(f"{k}={_fmt_stat(v)}" for k, v in r.result.stats.items() if v)
        table.add_row(str(r.index), r.spec, "yes" if r.changed else "no", f"{r.nodes_before} -> {r.nodes_after}",
                      ("-" if saved >= 0 else "+") + binary(abs(saved)), stats)
    return table


def _fmt_stat(v) -> str:
    return str(int(v)) if float(v).is_integer() else f"{v:.3g}"


def _explain(result, name: str, cls) -> None:
    out = err_console()
    if name not in result.pipeline.names():
        out.print(f"{name}: not in the pipeline", markup=False)
        return
    reasons = result.why_not(name)
    if not reasons:
        out.print(f"{name}: no place left alone", markup=False)
        return
    out.print(f"{name}: {len(reasons)} place(s) left alone", markup=False)
    for node, reason in reasons:
        # names (in the node and in the reason) can be any length: one line of at most ~2,000 characters
        out.print(one_line(f"  {one_line(node)}: {reason}", MAX_MESSAGE_LINE), markup=False, highlight=False,
                  soft_wrap=True)


# ------------------------------------------------------------------------------- passes
@cli.command("passes")
@click.argument("name", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print the registry as JSON.")
def passes_cmd(name: str | None, as_json: bool) -> None:
    """List the registered passes with their options; with NAME, that pass's documentation."""
    from nvmc.passes import get_pass, options_of, registered_passes
    from nvmc.passes.base import format_value, summary_of
    from nvmc.passes.plugins import plugin_failures

    if name is not None:
        cls = get_pass(name)
        if as_json:
            click.echo(json_text(_pass_dict(cls), indent=1))
            return
        kind = "exact" if cls.exact else "approximate"
        click.echo(f"{cls.name} ({kind}; {cls.__module__}.{cls.__qualname__})\n")
        click.echo(inspect.cleandoc(cls.__doc__ or ""))
        specs = options_of(cls)
        click.echo("\noptions:" if specs else "\noptions: none")
        for s in specs:
            click.echo(f"  {s.name}: {s.allowed()}, default {format_value(s.default)}"
                       + (f" -- {s.help}" if s.help else ""))
        return
    passes = registered_passes()
    if as_json:
        click.echo(json_text({"schema": "nvmc.passes/1", "passes": [_pass_dict(c) for c in passes.values()],
                               "plugin_failures": plugin_failures()}, indent=1))
        return
    table = report_table("nvmc passes ('nvmc passes NAME' for one pass's documentation)",
                         ("pass", "kind", "summary", "options"), text=("pass", "kind", "summary", "options"))
    for cls in passes.values():
        opts = "\n".join(f"{s.name}={format_value(s.default)} ({s.allowed()})" for s in options_of(cls))
        table.add_row(cls.name, "exact" if cls.exact else "approx.", summary_of(cls), opts or "-")
    console().print(table)
    for ep, why in plugin_failures().items():
        err_console().print(f"warning: plugin pass '{ep}' failed to load: {why}", markup=False)


def _pass_dict(cls) -> dict:
    from nvmc.passes import options_of

    return {"name": cls.name, "exact": cls.exact, "doc": inspect.cleandoc(cls.__doc__ or ""),
            "module": cls.__module__,
            "options": [{"name": s.name, "type": s.type.__name__, "default": s.default, "min": s.min, "max": s.max,
                         "choices": list(s.choices) if s.choices else None, "allowed": s.allowed(), "help": s.help}
                        for s in options_of(cls)]}


# -------------------------------------------------------------------------------- check
@cli.command("check")
@click.argument("original", type=click.Path(path_type=Path))
@click.argument("transformed", type=click.Path(path_type=Path))
@path_option("--inputs", "inputs_path",
              help="An .npz with one array per model input (default: seeded random inputs).")
@click.option("--seed", default=0, show_default=True, help="Seed of the random inputs.")
@click.option("--samples", default=8, show_default=True, type=click.IntRange(1, 10_000),
              help="Random input draws to run (top-1 agreement is over all of them).")
@click.option("--rtol", type=click.FloatRange(min=0), default=None,
              help="Fail (exit 1) when the max relative error exceeds this, e.g. 1e-5 for an exact pass.")
@path_option("--json", "json_path", help="Write the report as JSON ('-' for stdout).")
@input_shape_option
def check_cmd(original: Path, transformed: Path, inputs_path: Path | None, seed: int, samples: int,
              rtol: float | None, json_path: Path | None, input_shapes) -> None:
    """Run ORIGINAL and TRANSFORMED in onnxruntime on the same inputs and compare their outputs.

    Reports per output: max abs error, max rel error (to the output's max |value|), SQNR,
    cosine similarity and, for classifier outputs, top-1 agreement.
    """
    from nvmc.harness import compare

    check_output_path(json_path, original, transformed, inputs_path, option="--json")
    for path in (original, transformed):
        if path.suffix not in OUTPUT_SUFFIXES:
            raise NvmcError(f"check compares .onnx or .nvir models, not '{path.suffix or path.name}'", where=str(path))
        if not path.exists():
            raise NvmcError("file not found", where=str(path), hint="check the path")
    report = compare(original, transformed, inputs=inputs_path, seed=seed, samples=samples,
                     input_shapes=dict(input_shapes), dims=input_shapes.dims)
    if json_path is not None:
        text = json_text(report.to_dict())
        write_output(json_path, text)
    if json_path is None or str(json_path) != "-":
        console().print(_report_table(report, f"{original.name} vs {transformed.name}"))
        print_notices([f"{o.name}: {o.caveat}" for o in report.outputs if o.caveat])
    if rtol is not None and not report.within(rtol):
        err_console().print(f"error: max rel error {report.max_rel_err:.3g} exceeds --rtol {rtol:g}", markup=False)
        click.get_current_context().exit(1)


def _report_table(report, title: str) -> Table:
    table = report_table(f"{title}: {report.samples} sample(s), inputs {report.inputs_from}",
                         ("output", "shape", "max abs err", "max rel err", "SQNR (dB)", "cosine", "top-1"),
                         text=("output", "shape"))
    for o in report.outputs:
        top1 = "-" if o.top1_agreement is None else f"{100 * o.top1_agreement:.1f}%"
        table.add_row(one_line(o.name), o.note or str(list(o.shape)), f"{o.max_abs_err:.3g}", f"{o.max_rel_err:.3g}",
                      f"{o.sqnr_db:.1f}", f"{o.cosine:.6f}", top1)
    return table
