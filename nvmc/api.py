"""The public Python API: load, save, verify, analyze, export."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import onnx

from nvmc.frontend import import_model, save_onnx, to_onnx, verify_types
from nvmc.ir import Graph, ModelError, parse_text, print_graph, verify_structure
from nvmc.passes.workload import Workload, analyze

from dataclasses import dataclass

__all__ = ["Compiled", "analyze", "compile", "export", "load", "parse_text", "save", "to_onnx", "verify", "Workload"]


def load(source: str | os.PathLike | onnx.ModelProto, *,
         input_shapes: Mapping[str, Sequence[int]] | None = None, verify_graph: bool = True) -> Graph:
    """Load an ONNX model (path or ModelProto) or a .nvir file into a verified Graph."""
    if isinstance(source, onnx.ModelProto):
        graph = import_model(source, input_shapes)
    else:
        path = Path(source)
        if path.suffix == ".nvir":
            graph = load_text(path)
        else:
            graph = import_model(path, input_shapes, source=str(path))
    if verify_graph:
        verify_structure(graph)
    return graph


def load_text(path: str | os.PathLike) -> Graph:
    path = Path(path)
    if not path.exists():
        raise ModelError("file not found", where=str(path), hint="check the path")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ModelError("not a text file (.nvir must be UTF-8 text)", where=str(path)) from None
    return parse_text(text, filename=str(path), sidecar=path.parent)


def save(graph: Graph, path: str | os.PathLike) -> list[Path]:
    """Write ``graph`` as .onnx or as .nvir (+ a sidecar .npz for large constants).

    Returns the files written. Files are written under temporary names, then renamed.
    """
    path = Path(path)
    if path.suffix == ".nvir":
        sidecar = path.with_suffix(".npz")
        text, arrays = print_graph(graph, sidecar=sidecar.name)
        written = [path]
        if arrays:
            _atomic_write(sidecar, lambda f: np.savez(f, **arrays))
            written.append(sidecar)
        _atomic_write(path, lambda f: f.write(text.encode("utf-8")))
        return written
    save_onnx(graph, path)
    return [path]


def _atomic_write(path: Path, write) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as f:
        write(f)
    os.replace(tmp, path)


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

    @property
    def estimate(self):
        return self.estimates[0]


def compile(model: str | os.PathLike | onnx.ModelProto | Graph, target: str | Sequence[str], *,
            passes: str | None = None, sets: Sequence[str] = (), batch: int | None = None,
            input_shapes: Mapping[str, Sequence[int]] | None = None) -> Compiled:
    """Load (or take) a model, run the pass pipeline, and cost it on one or more targets.

    ``target``: a shipped target name, a .toml path, a ``Target``, or a list of them;
    ``sets``: field overrides such as ``["llc.capacity=8MiB"]`` applied to every target;
    ``batch``: inferences per run (default: the leading dimension of the first input).
    A model that does not fit a target is a result (``estimate.ok`` is False), not an error.
    """
    from nvmc.backends import family_module, load_target
    from nvmc.passes import run_pipeline

    if isinstance(model, Graph):
        graph = model.copy() if passes else model  # never change the caller's graph
    else:
        graph = load(model, input_shapes=input_shapes)
    if passes:
        run_pipeline(graph, passes)
    workload = analyze(graph)
    names = [target] if isinstance(target, (str, os.PathLike)) or not isinstance(target, Sequence) else target
    targets = [load_target(t, list(sets)) for t in names]
    batch = batch or _leading_dim(graph)
    estimates = []
    for t in targets:
        est = family_module(t.family).estimate(workload, t, batch=batch)
        est.pipeline = passes or ""
        estimates.append(est)
    return Compiled(graph, workload, estimates)


def _leading_dim(graph: Graph) -> int:
    """The leading dimension of the first graph input (the batch, for image and token inputs)."""
    if not graph.inputs:
        return 1
    shape = graph.values[graph.inputs[0]].type.shape
    if shape and len(shape) >= 2 and isinstance(shape[0], int) and shape[0] > 0:
        return int(shape[0])
    return 1
