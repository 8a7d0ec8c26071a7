"""The `nvmc` command line.

Every user-facing failure is an ``NvmcError``; ``main`` prints its one-line rendering to
stderr and exits with code 2. Commands for later parts (compile, opt, ...) live in their
own ``nvmc/cli_*.py`` modules and register on the same group.
"""

from __future__ import annotations

import functools
import json
import os
import sys
from pathlib import Path

import click

import nvmc
from nvmc import __version__
from nvmc.ir.errors import NvmcError
from nvmc.ir.files import check_output, write_output  # noqa: F401 (write_output: re-exported)
from nvmc.render import console, err_console, print_error, print_notices, workload_table

EXIT_USER_ERROR = 2
EXIT_INTERNAL_ERROR = 70  # EX_SOFTWARE (sysexits.h)


class InputShape(click.ParamType):
    """``name=1x3x224x224`` -> ("name", (1, 3, 224, 224))."""

    name = "NAME=DIMS"

    def convert(self, value, param, ctx):
        if isinstance(value, tuple):
            return value
        name, sep, dims = value.rpartition("=")
        try:
            shape = tuple(int(d) for d in dims.lower().split("x"))
            if not sep or not name or any(d < 0 for d in shape):
                raise ValueError
        except ValueError:
            self.fail(f"'{value}' is not NAME=DIMS with dims >= 0, e.g. input=1x3x224x224", param, ctx)
        return name, shape


class NameValue(click.ParamType):
    """``seq=128`` -> ("seq", 128); ``sr=16000``, ``scale=0.5``, ``mask=[1,0,1]`` (a number or a
    JSON list of numbers)."""

    name = "NAME=VALUE"

    def __init__(self, whole: bool):
        self.whole = whole  # --dim: a whole number >= 0

    def convert(self, value, param, ctx):
        if isinstance(value, tuple):
            return value
        name, sep, text = value.partition("=")
        try:
            parsed = json.loads(text)
            if not sep or not name or isinstance(parsed, (bool, dict, str)) or parsed is None:
                raise ValueError
            if self.whole and (not isinstance(parsed, int) or parsed < 0):
                raise ValueError
        except ValueError:
            self.fail(f"'{value}' is not NAME=VALUE with " + ("a whole number >= 0, e.g. seq=128" if self.whole
                                                              else "a number or a list, e.g. sr=16000"), param, ctx)
        return name, parsed


class Bindings(dict):
    """What the user bound: input shapes (the dict itself: name -> dims, as before), named
    dimensions (``dims``) and constant inputs (``values``)."""

    def __init__(self, shapes=(), dims=(), values=()):
        super().__init__(shapes)
        self.dims, self.values = dict(dims), dict(values)

    def load_kwargs(self) -> dict:
        return {"input_shapes": dict(self), "dims": self.dims, "input_values": self.values}


def input_shape_option(f):
    """--input-shape, --dim and --input-value: collected into one ``input_shapes`` argument
    (a :class:`Bindings`)."""

    @functools.wraps(f)
    def command(*args, input_shapes=(), dims=(), input_values=(), **kwargs):
        return f(*args, input_shapes=Bindings(input_shapes, dims, input_values), **kwargs)

    command = click.option("--input-value", "input_values", type=NameValue(whole=False), multiple=True,
                           help="Make an input a constant, e.g. sr=16000 (repeatable); an If on it then takes its "
                                "branch.")(command)
    command = click.option("--dim", "dims", type=NameValue(whole=True), multiple=True,
                           help="Bind a named dimension in every input, e.g. seq=128 (repeatable).")(command)
    return click.option("--input-shape", "input_shapes", type=InputShape(), multiple=True,
                        help="Bind an input's dynamic dimensions, e.g. input=1x3x224x224 (repeatable).")(command)


EXIT_ACCURACY = 4  # an approximate pipeline broke --min-cosine / --min-sqnr / --min-top1


def accuracy_gate_option(f):
    """--min-cosine, --min-sqnr and --min-top1: collected into one ``gate`` argument (a
    nvmc.pipeline.Gate) that compile, opt and results judge measured accuracy by."""

    @functools.wraps(f)
    def command(*args, min_cosine=None, min_sqnr=None, min_top1=None, **kwargs):
        from nvmc.pipeline import Gate

        return f(*args, gate=Gate(min_cosine, min_sqnr, min_top1), **kwargs)

    command = click.option("--min-top1", type=click.FloatRange(0.0, 1.0), metavar="F",
                           help="Fail (exit 4) when approximate passes leave the top-1 agreement below F, "
                                "e.g. 0.95.")(command)
    command = click.option("--min-sqnr", type=click.FloatRange(-1e6, 1e6), metavar="DB",
                           help="Fail (exit 4) when approximate passes leave the SQNR below DB dB.")(command)
    return click.option("--min-cosine", type=click.FloatRange(-1.0, 1.0), metavar="C",
                        help="Fail (exit 4) when approximate passes leave the outputs' cosine similarity below C, "
                             "e.g. 0.99 (measured in onnxruntime on seeded random inputs).")(command)


def model_argument(f):
    return click.argument("model", type=click.Path(path_type=Path))(f)


def path_option(*decls: str, **kwargs):
    """An option that names a file or folder."""
    return click.option(*decls, type=click.Path(path_type=Path), **kwargs)


def load_model(model: Path, input_shapes=()):
    bound = input_shapes if isinstance(input_shapes, Bindings) else Bindings(input_shapes)
    graph = nvmc.load(model, **bound.load_kwargs())
    print_notices(graph.meta.get("notices", []))
    return graph


def check_output_path(out: Path | None, *inputs: Path | str | None, option: str = "-o") -> None:
    """Never overwrite what the user gave us (also through a link); see nvmc/ir/files.py."""
    if out is not None:
        check_output(out, inputs, option=option)  # fail before slow passes run


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="nvmc")
def cli() -> None:
    """nvmc: compile ONNX models for memory-centric hardware and estimate their cost."""


@cli.command("ir")
@model_argument
@path_option("-o", "--output", help="Write .nvir (+ .npz sidecar) here.")
@input_shape_option
def ir_cmd(model: Path, output: Path | None, input_shapes) -> None:
    """Print MODEL (.onnx or .nvir) in the .nvir text form."""
    graph = load_model(model, input_shapes)
    if output is None:
        return echo_nvir(graph, model)
    if output.suffix != ".nvir":
        raise NvmcError("the text form is written to a .nvir file", where=str(output))
    check_output_path(output, model)
    for path in nvmc.save(graph, output):
        err_console().print(f"wrote {path}")


def echo_nvir(graph, model: Path) -> None:
    """``graph`` as .nvir text on stdout; its large tensors are referenced in MODEL's sidecar name."""
    from nvmc.ir.printer import sidecar_for

    sidecar = sidecar_for(model)  # its name as a .nvir can hold it
    text, arrays = nvmc.ir.print_graph(graph, sidecar=sidecar)
    click.echo(text, nl=False)
    if arrays:
        print_notices([f"{len(arrays)} tensors are referenced as @{sidecar}:...; write them with -o NAME.nvir"])


@cli.command("analyze")
@model_argument
@path_option("--json", "json_path", help="Write the table as JSON ('-' for stdout).")
@path_option("--csv", "csv_path", help="Write the per-node table as CSV.")
@click.option("--top", default=10, show_default=True, help="Layers to list in the terminal table.")
@input_shape_option
def analyze_cmd(model: Path, json_path: Path | None, csv_path: Path | None, top: int, input_shapes) -> None:
    """Count MACs, non-MAC ops, parameters and bytes per node of MODEL."""
    for path, option in ((json_path, "--json"), (csv_path, "--csv")):
        check_output_path(path, model, option=option)
    graph = load_model(model, input_shapes)
    workload = nvmc.analyze(graph)
    print_notices(workload.notices)
    if json_path is not None:
        write_output(json_path, workload.to_json(indent=1))
    if csv_path is not None:
        write_workload_csv(workload, csv_path)
    if "-" not in (str(json_path), str(csv_path)):  # stdout carries the data, not the table
        console().print(workload_table(workload, title=model.name, top=top))


def write_workload_csv(workload, path: Path) -> None:
    from nvmc.ir.dataout import csv_text
    from nvmc.passes.workload import NONMAC_KINDS

    c = workload.columns
    rows = ([name, op, int(c["macs"][i]), int(c["params"][i]), float(c["weight_bytes"][i]),
             float(c["input_bytes"][i]), float(c["output_bytes"][i]), float(c["weight_density"][i]),
             *(int(c[k][i]) for k in NONMAC_KINDS)] for i, (name, op) in enumerate(zip(workload.names, workload.ops)))
    write_output(path, csv_text(["name", "op", "macs", "params", "weight_bytes", "input_bytes", "output_bytes",
                                 "weight_density", *NONMAC_KINDS], rows))


@cli.command("export")
@model_argument
@path_option("-o", "--output", help="The .onnx file to write.")
@path_option("--scalesim-topology", "topology",
              help="Write the conv/GEMM layers as a SCALE-Sim topology CSV (docs/interchange.md).")
@click.option("--scalesim-format", "topology_format", type=click.Choice(["auto", "conv", "gemm"]), default="auto",
              show_default=True, help="SCALE-Sim's conv or GEMM (-i gemm) format; auto: conv if the model has convs.")
@path_option("--timeloop-dir", "timeloop_dir",
              help="Write one Timeloop CNN-Layer problem YAML per conv/GEMM layer (and layers.csv) here.")
@input_shape_option
def export_cmd(model: Path, output: Path | None, topology: Path | None, topology_format: str,
               timeloop_dir: Path | None, input_shapes) -> None:
    """Write MODEL (.onnx, .nvir or a SCALE-Sim topology .csv) as ONNX that onnxruntime runs, and
    its conv/GEMM layers for SCALE-Sim and Timeloop."""
    if output is None and topology is None and timeloop_dir is None:
        raise NvmcError("nothing to write", where="export",
                        hint="give -o MODEL.onnx, --scalesim-topology LAYERS.csv or --timeloop-dir DIR")
    if output is not None and output.suffix != ".onnx":
        raise NvmcError("export writes an .onnx file", where=str(output), hint="use 'nvmc ir -o x.nvir' for text")
    check_output_path(output, model)
    check_output_path(topology, model, option="--scalesim-topology")
    if output is not None and topology is not None and str(output) == str(topology):
        raise NvmcError("-o and --scalesim-topology name the same file", where=str(topology))
    graph = load_model(model, input_shapes)
    nvmc.verify(graph)
    if output is not None:
        nvmc.save(graph, output)
        err_console().print(f"wrote {output}")
    if topology is not None or timeloop_dir is not None:
        from nvmc.interchange import write_scalesim_topology, write_timeloop_dir

        if topology is not None:
            _, notes = write_scalesim_topology(graph, topology, topology_format)
            print_notices(notes)
            if str(topology) != "-":
                err_console().print(f"wrote {topology}", markup=False, highlight=False)
        if timeloop_dir is not None:
            _, notes = write_timeloop_dir(graph, timeloop_dir)
            print_notices(notes)


@cli.command("verify")
@model_argument
@input_shape_option
def verify_cmd(model: Path, input_shapes) -> None:
    """Check MODEL against the IR invariants and ONNX shape inference."""
    graph = load_model(model, input_shapes)
    nvmc.verify(graph)
    console().print(f"ok: {graph.summary()}")


def main(argv: list[str] | None = None) -> None:
    try:
        code = cli.main(args=argv, prog_name="nvmc", standalone_mode=False)
    except NvmcError as e:
        print_error(e.render())
        sys.exit(e.exit_code)
    except click.exceptions.Abort:
        print_error("aborted")
        sys.exit(130)
    except click.ClickException as e:
        ctx = getattr(e, "ctx", None)
        if isinstance(e, click.UsageError) and ctx is not None:
            print_error(f"{ctx.get_usage()}\nTry '{ctx.command_path} --help' for help.")
        print_error(f"error: {e.format_message()}")
        sys.exit(e.exit_code)
    except KeyboardInterrupt:
        sys.exit(130)
    except BrokenPipeError:
        sys.exit(0)
    except MemoryError:
        print_error("error: out of memory: the model or an option asks for more memory than this machine has\n"
                    "  hint: check the input shapes, --batch and the pass options")
        sys.exit(EXIT_USER_ERROR)
    except RecursionError:
        print_error("error: an input is nested too deeply to read (brackets, tables or subgraphs)\n"
                    "  hint: check the .nvir, TOML or pipeline text for runaway nesting")
        sys.exit(EXIT_USER_ERROR)
    except Exception as e:  # a bug in nvmc, not in the user's input: still one clear message
        if os.environ.get("NVMC_DEBUG"):
            raise
        print_error(f"internal error: {type(e).__name__}: {e}\n"
                    "  this is a bug in nvmc; rerun with NVMC_DEBUG=1 for the traceback and report it")
        sys.exit(EXIT_INTERNAL_ERROR)
    sys.exit(code if isinstance(code, int) else 0)


from nvmc import cli_compile  # noqa: E402,F401
from nvmc import cli_passes  # noqa: E402,F401
from nvmc import cli_sweep  # noqa: E402,F401
from nvmc import cli_validate  # noqa: E402,F401
