"""The public Python API: load, run passes, estimate on hardware, save.

    >>> import nvmc
    >>> g = nvmc.load("examples/models/tiny_cnn.onnx")
    >>> _ = nvmc.run_passes(g, "fuse-conv-bn,dce")          # in place; returns what each pass did
    >>> est = nvmc.estimate(g, "sot-mram", llc_capacity="4MiB")
    >>> est.ok, est.totals["macs"] == nvmc.analyze(g).totals["macs"]
    (True, True)

The examples in these docstrings run in the test suite (tests/test_api_doc.py), from the
repository root.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Sequence

import numpy as np
import onnx

from nvmc.frontend import import_model, save_onnx, to_onnx, verify_types
from nvmc.ir import Graph, ModelError, parse_text, print_graph, verify_structure
from nvmc.ir.printer import SIDECAR_FILE
from nvmc.ir.errors import NvmcError
from nvmc.ir.files import atomic_write, check_output, read_input
from nvmc.ir.limits import MAX_BATCH
from nvmc.passes.workload import Workload, analyze

from dataclasses import dataclass, field

if TYPE_CHECKING:
    from nvmc.backends import Estimate, Target
    from nvmc.passes import PipelineResult

__all__ = ["Compiled", "analyze", "compile", "estimate", "export", "load", "parse_text", "run_passes", "save",
           "to_onnx", "verify", "Workload"]


def load(source: str | os.PathLike | onnx.ModelProto, *,
         input_shapes: Mapping[str, Sequence[int]] | None = None, dims: Mapping[str, int] | None = None,
         input_values: Mapping[str, Any] | None = None, verify_graph: bool = True) -> Graph:
    """Load an ONNX model (path or ModelProto), a .nvir file or a SCALE-Sim topology (.csv, one
    independent layer per row: frontend/scalesim_topology.py) into a verified Graph.

    ``input_shapes`` binds an input's dynamic dimensions, e.g. ``{"tokens": (8, 16, 64)}``;
    ``dims`` binds a named dimension in every input that has it, e.g. ``{"seq": 128}``;
    ``input_values`` makes inputs constants, e.g. ``{"sr": 16000}`` (an ``If`` on one then
    takes its branch).

        >>> g = load("examples/models/tiny_cnn.onnx")
        >>> g.name, len(g), g.nodes[0].op
        ('tiny_cnn', 13, 'Conv')
    """
    try:
        if isinstance(source, onnx.ModelProto):
            graph = import_model(source, input_shapes, dims=dims, input_values=input_values)
        else:
            path = Path(source)
            if path.suffix == ".nvir":
                if dims or input_values:
                    raise ModelError("--dim and --input-value bind ONNX models; a .nvir file is already bound",
                                     hint="bind them when you make the .nvir (nvmc ir MODEL.onnx --dim ... -o x.nvir)")
                graph = load_text(path)
            elif path.suffix.lower() == ".csv":
                from nvmc.frontend.scalesim_topology import load_topology

                if input_shapes or dims or input_values:
                    raise ModelError("--input-shape, --dim and --input-value bind ONNX models; a SCALE-Sim "
                                     "topology's layers have fixed sizes", hint="edit the rows instead")
                graph = load_topology(path)
            else:
                graph = import_model(path, input_shapes, source=str(path), dims=dims, input_values=input_values)
        if verify_graph:  # types too: a .nvir file's are as written (an import's are ONNX's: cached)
            verify(graph)
    except NvmcError as e:  # an error deep in the import still names the file it is about
        if e.where is None and not isinstance(source, onnx.ModelProto):
            e.where = str(source)
        raise
    return graph


def load_text(path: str | os.PathLike) -> Graph:
    path = Path(path)
    try:
        text = read_input(path, "model file", error=ModelError).decode("utf-8")
    except UnicodeDecodeError:
        raise ModelError("not a text file (.nvir must be UTF-8 text)", where=str(path)) from None
    return parse_text(text, filename=str(path), sidecar=path.parent)


MAX_SAVED_CONST_BYTES = 2**32


def save(graph: Graph, path: str | os.PathLike, *, overwrite_inputs: bool = False) -> list[Path]:
    """Write ``graph`` as .onnx or as .nvir (+ a sidecar .npz for large constants).

    Returns the files written. Files are written under temporary names, then renamed, and
    never over a file the graph was loaded from (its model, external data or sidecar)
    unless ``overwrite_inputs``.

        >>> import tempfile
        >>> folder = Path(tempfile.mkdtemp())
        >>> [p.name for p in save(load("examples/models/tiny_cnn.onnx"), folder / "cnn.nvir")]
        ['cnn.nvir', 'cnn.npz']
        >>> load(folder / "cnn.nvir").name
        'tiny_cnn'
        >>> save(load(folder / "cnn.nvir"), folder / "cnn.npz")
        Traceback (most recent call last):
        nvmc.ir.errors.NvmcError: error: ...cnn.npz: the output would overwrite the input '...cnn.npz'
          hint: choose another -o path
    """
    path = Path(path)
    for name, array in graph.consts.items():  # a filled constant is a view: writing it materialises it
        if array.nbytes > MAX_SAVED_CONST_BYTES:
            raise ModelError(f"constant '%{name}' ({list(array.shape)}, {array.dtype}) would take "
                             f"{array.nbytes / 2**30:.0f} GiB written out; nvmc writes constants of up to 4 GiB",
                             where=str(path), hint="check the shape that makes it (a ConstantOfShape?)")
    inputs = [] if overwrite_inputs else graph.meta.get("files", [])
    if path.suffix == ".nvir":
        sidecar = path.with_suffix(".npz")
        text, arrays = print_graph(graph, sidecar=sidecar.name)
        if arrays and not SIDECAR_FILE.match(sidecar.name):  # the text could not name it: it would not read back
            raise NvmcError(f"the .nvir would reference its sidecar as '@{sidecar.name}:...', which a .nvir cannot "
                            "hold: a sidecar name has no whitespace, ':', '@', '<' or '>'", where=str(path),
                            hint="choose a -o name without them")
        written = [path, sidecar] if arrays else [path]
        if not overwrite_inputs:
            for out in written:
                check_output(out, inputs)
        if arrays:
            atomic_write(sidecar, lambda f: np.savez(f, **arrays), inputs=inputs, overwrite_inputs=overwrite_inputs)
        atomic_write(path, text, inputs=inputs, overwrite_inputs=overwrite_inputs)
        return written
    if not overwrite_inputs:
        for out in (path, path.with_name(path.name + ".data")):
            check_output(out, inputs)
    return save_onnx(graph, path, overwrite_inputs=overwrite_inputs)


def verify(graph: Graph, *, types: bool = True) -> None:
    """Structural invariants, then (``types``) agreement with ONNX shape inference."""
    verify_structure(graph)
    if types:
        verify_types(graph)


def export(graph: Graph) -> onnx.ModelProto:
    """The graph as an ONNX ModelProto (nvmc ops lowered)."""
    return to_onnx(graph)


@dataclass
class Compiled:
    """What ``compile`` produced: the transformed graph, its workload and one Estimate per target."""

    graph: Graph
    workload: Workload
    estimates: list  # list[nvmc.backends.Estimate], in the order the targets were given
    targets: list = field(default_factory=list)   # list[nvmc.backends.Target], the same order
    source: str = ""                               # the model's path, when it was loaded from one
    passes: "PipelineResult | None" = None         # what each pass of ``passes=`` did, with its measured error
    accuracy: dict | None = None                   # the whole pipeline's measured error (nvmc/pipeline.accuracy)

    @property
    def estimate(self) -> "Estimate":
        return self.estimates[0]

    def to_dict(self) -> dict[str, Any]:
        """The report ``nvmc compile --json`` writes (schema nvmc.report/1)."""
        from nvmc.report import build_report

        return build_report(self.source or self.graph.name, self.graph, self.estimates, accuracy=self.accuracy)

    def write_html(self, path: str | os.PathLike) -> Path:
        """Write the self-contained HTML report of ``nvmc compile --html``; returns the path."""
        from nvmc.report import parameters_of, write_html

        return write_html(path, self.to_dict(), {t.name: parameters_of(t) for t in self.targets})


def compile(model: str | os.PathLike | onnx.ModelProto | Graph, target: str | Sequence[str], *,
            passes: str | None = None, sets: Sequence[str] = (), batch: int | None = None,
            input_shapes: Mapping[str, Sequence[int]] | None = None, dims: Mapping[str, int] | None = None,
            input_values: Mapping[str, Any] | None = None, mode: str = "inference", devices: int | None = None,
            parallel: str | None = None, interconnect: str | None = None, train_batch: int | None = None,
            grid: str | float | None = None,
            lifetime_years: float | None = None, utilisation: float | None = None) -> Compiled:
    """Load (or take) a model, run the pass pipeline, and cost it on one or more targets.

    ``target``: a shipped target name, a .toml path, a ``Target``, or a list of them (a target
    after the first that cannot run the model at all is a ``not_applicable`` estimate saying why);
    ``sets``: field overrides such as ``["llc.capacity=8MiB"]`` applied to every target (and
    ``net.*`` ones that describe a training network);
    ``batch``: inferences per run (default: the leading dimension of the first input).
    ``mode="train"``: one training iteration instead of an inference, data-parallel on
    ``devices`` devices over ``interconnect`` (``nvmc compile --mode train``), ``train_batch``
    samples per device. A model that does not fit a target is a result (``estimate.ok`` is
    False), not an error. Each estimate gets its carbon footprint (``estimate.carbon``,
    backends/carbon.py) for the use-phase ``grid`` (g CO2e/kWh or an ACT region; default
    world), ``lifetime_years`` and ``utilisation``. The steps are nvmc/pipeline.py's: the CLI
    and sweeps run the same ones.

        >>> out = compile("examples/models/tiny_cnn.onnx", ["sram", "sot-mram"], passes="fuse-conv-bn")
        >>> [e.target for e in out.estimates]
        ['sram', 'sot-mram']
        >>> sot, sram = out.estimates[1].totals, out.estimates[0].totals
        >>> sot["energy_j"] < sram["energy_j"]                # the MRAM L2 leaks far less
        True
        >>> out.to_dict()["ratios"]["sot-mram"]["macs"]
        1.0
    """
    from nvmc.pipeline import Costing, measure, prepare, resolve_targets

    net, sets = Costing.split_sets(list(sets))
    costing = Costing(mode=mode, devices=devices, parallel=parallel, interconnect=interconnect,
                      batch_per_device=train_batch, net=net, grid=grid, lifetime_years=lifetime_years,
                      utilisation=utilisation)
    if isinstance(model, Graph):
        graph = model.copy() if passes else model  # never change the caller's graph
    else:
        graph = load(model, input_shapes=input_shapes, dims=dims, input_values=input_values)
    pipeline_result, workload, measured = prepare(graph, passes)
    names = [target] if isinstance(target, (str, os.PathLike)) or not isinstance(target, Sequence) else target
    targets = costing.targets(resolve_targets(list(names), tuple(sets)))
    batch = _check_batch(batch) if batch is not None else _leading_dim(graph)
    estimates = costing.estimates(measure(graph, workload, targets), targets, batch=batch, pipeline=passes or "",
                                  leading=declared_batch(graph))
    source = "" if isinstance(model, (Graph, onnx.ModelProto)) else str(model)
    return Compiled(graph, workload, estimates, targets, source, pipeline_result, measured)


def run_passes(graph: Graph, pipeline: str, *, verify_each: bool = True, timing: bool = False) -> "PipelineResult":
    """Run a pass pipeline on ``graph``, in place, and return what each pass did.

    ``pipeline`` is the MLIR-style string of ``nvmc opt --passes``, e.g.
    ``"fold-constants,fuse-conv-bn,dce"`` (``nvmc passes`` lists the passes and their
    options). The verifier runs after every pass that changed the graph. Keep the original
    with ``run_passes(g2 := g.copy(), ...)``.

        >>> g = load("examples/models/tiny_cnn.onnx")
        >>> result = run_passes(g, "fuse-conv-bn,dce")
        >>> [(r.name, r.nodes_before, r.nodes_after) for r in result.records]
        [('fuse-conv-bn', 13, 12), ('dce', 12, 12)]
        >>> any(n.op == "BatchNormalization" for n in g.nodes)
        False
    """
    from nvmc.passes import run_pipeline

    return run_pipeline(graph, pipeline, verify_each=verify_each, timing=timing)


def estimate(model: "str | os.PathLike | onnx.ModelProto | Graph", target: "str | os.PathLike | Target", *,
             batch: int | None = None, input_shapes: Mapping[str, Sequence[int]] | None = None,
             **overrides: Any) -> "Estimate":
    """Cost a model on one hardware target: latency, energy and area, per layer and in total.

    ``model``: a Graph (not changed) or anything :func:`load` takes. ``target``: a shipped
    target name (``nvmc targets``), a .toml path or a ``Target``. ``overrides`` set target
    fields as ``--set`` does, named ``section_key`` (``llc_capacity="8MiB"``) or, through a
    dict, ``**{"llc.capacity": "8MiB"}``; an unknown one raises ``TargetError`` with a
    close match. ``batch``: inferences per run (default: the first input's leading
    dimension). A model that does not fit is a result: ``ok`` is False and ``reason`` says why.

        >>> est = estimate("examples/models/tiny_cnn.onnx", "sot-mram", llc_capacity="8MiB")
        >>> est.target, est.info["llc_capacity_bytes"] == 8 * 2**20, est.ok
        ('sot-mram', True, True)
        >>> layer = est.layers()[0]                       # one record per node, in graph order
        >>> layer["name"], layer["op"], layer["macs"]
        ('conv1', 'Conv', 442368)
        >>> sorted(est.to_dict()["totals"])
        ['area_mm2', 'edp_js', 'energy_j', 'energy_per_inference_j', 'latency_s', 'macs', 'throughput_ips']
        >>> estimate("examples/models/tiny_cnn.onnx", "sot-mram", llc_capacty="8MiB")
        Traceback (most recent call last):
        nvmc.backends.errors.TargetError: error: estimate(llc_capacty=...): unknown target field 'llc_capacty' — did you mean 'llc_capacity'?
          hint: fields of family 'gpu-llc': gpu_device, gpu_clock_hz, gpu_utilization, ...
    """
    return compile(model, _target_with(target, overrides), batch=batch, input_shapes=input_shapes).estimate


def _target_with(target: "str | os.PathLike | Target", overrides: Mapping[str, Any]) -> "Target":
    """The target with keyword overrides (``llc_capacity`` or ``"llc.capacity"``) applied."""
    from nvmc.backends import family_module
    from nvmc.backends.errors import TargetError
    from nvmc.ir.errors import did_you_mean
    from nvmc.pipeline import resolve_targets

    t = resolve_targets([target])[0]   # a shipped name, a .toml, a SCALE-Sim .cfg or a Target
    if not overrides:
        return t
    schema = family_module(t.family).SCHEMA
    dotted = [f"{section}.{key}" for section, keys in schema.items() for key in keys]
    by_name: dict[str, list[str]] = {}
    for d in dotted:
        by_name.setdefault(d.replace(".", "_"), []).append(d)
    sets = []
    for name, value in overrides.items():
        if name in dotted:
            key = name
        elif len(by_name.get(name, ())) == 1:
            key = by_name[name][0]
        elif name in by_name:
            raise TargetError(f"'{name}' is ambiguous: {', '.join(by_name[name])}", where=f"estimate({name}=...)",
                              hint="name the field with a dot, as **{'section.key': value}")
        else:
            shown = ", ".join(list(by_name)[:3]) + (", ..." if len(by_name) > 3 else "")
            raise TargetError(f"unknown target field '{name}'{did_you_mean(name, by_name)}",
                              where=f"estimate({name}=...)", hint=f"fields of family '{t.family}': {shown}")
        sets.append((key, value))
    return t.with_overrides(sets)




def _check_batch(batch: Any) -> int:
    if isinstance(batch, bool) or not isinstance(batch, (int, np.integer)) or not 1 <= batch <= MAX_BATCH:
        raise NvmcError(f"batch must be a whole number in [1, {MAX_BATCH}], got {batch!r}", where="nvmc.compile(batch=...)")
    return int(batch)


def declared_batch(graph: Graph) -> int | None:
    """The first input's leading dimension where the model states one (a >= 2-D input with a
    positive static first dimension); None otherwise."""
    shape = graph.values[graph.inputs[0]].type.shape if graph.inputs else None
    if shape and len(shape) >= 2 and isinstance(shape[0], int) and shape[0] > 0:
        return int(shape[0])
    return None


def _leading_dim(graph: Graph) -> int:
    """The leading dimension of the first graph input (the batch, for image and token inputs)."""
    if not graph.inputs:
        return 1
    shape = graph.values[graph.inputs[0]].type.shape
    if shape and len(shape) >= 2 and shape[0] == 0:
        raise NvmcError(f"the model's batch dimension is 0 (input '{graph.inputs[0]}': "
                        f"{graph.values[graph.inputs[0]].type}): it computes nothing",
                        hint="bind the batch with --input-shape NAME=1x... or pass batch=...")
    if shape and len(shape) >= 2 and isinstance(shape[0], int) and shape[0] > 0:
        return int(shape[0])
    return 1
