"""Structural verifier: SSA, definitions before use, acyclicity, nvmc-op invariants.

The type check against ONNX shape inference needs the ONNX exporter, which lives in
``frontend`` (``ir`` imports nothing else of nvmc), so it is ``frontend.verify_types``;
``nvmc.verify(graph)`` runs both.
"""

from __future__ import annotations

from .errors import VerifyError
from .graph import NVMC_DOMAIN, Graph
from .dialect import NVMC_OPS

# 2**40 elements (4 TiB as f32) is beyond any real tensor; larger counts are damaged or
# mistyped dimensions, and their products would overflow the int64 workload columns.
from .limits import MAX_ELEMENTS  # noqa: F401 (re-exported)
# annotation parameters the analyses read as numbers (passes/workload.py, nvmc/calibrate.py)
_ANNOTATION_NUMBERS = {"codebook": {"index_bits": (0, 64), "rel_bits": (0, 64), "clusters": (1, 2**32)},
                       "quant": {"bits": (1, 64)}, "sparsity": {"density": (0, 1)}}


def verify_structure(graph: Graph) -> None:
    """Raise VerifyError naming the first broken invariant."""
    defined = set(graph.inputs) | set(graph.consts)
    if len(defined) != len(graph.inputs) + len(graph.consts):
        both = sorted(set(graph.inputs) & set(graph.consts))
        raise VerifyError(f"'%{both[0]}' is both a graph input and a constant")
    if len(set(graph.inputs)) != len(graph.inputs):
        raise VerifyError("a graph input is listed twice")
    for name in defined:
        if name not in graph.values:
            raise VerifyError(f"'%{name}' is an input or constant without a value entry")
    for name, value in graph.values.items():
        if "\x00" in name:  # the .npz sidecar (a zip) cuts a tensor's name at it
            raise VerifyError(f"value name {name!r} holds a NUL character", hint="rename the value in the model")
        t = value.type
        if t.shape is not None and any(isinstance(d, int) and d < 0 for d in t.shape):
            made = graph.producer(name)
            by = f" (made by node '{made.name}', {made.qualified_op})" if made is not None else ""
            raise VerifyError(f"value '%{name}'{by} has a negative dimension: {t}",
                              hint="dimensions are sizes >= 0: is a window or padding larger than its input?")
        for a in t.annotations:
            for key, (low, high) in _ANNOTATION_NUMBERS.get(a.name, {}).items():
                v = a.get(key)
                if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float)) or not low <= v <= high):
                    raise VerifyError(f"value '%{name}': #{a.name} {key}={v!r} is not a number in [{low}, {high}]",
                                      hint="the analyses and cost models read it as a number")
        n = t.numel()
        if n is not None and n > MAX_ELEMENTS:
            raise VerifyError(f"value '%{name}' ({t}) has {n} elements, more than the 2**40 nvmc handles",
                              hint="check the model's dimensions, or bind dynamic ones with --input-shape")
    for name, array in graph.consts.items():
        if tuple(array.shape) != graph.values[name].type.shape:
            raise VerifyError(f"constant '%{name}' holds shape {list(array.shape)} but is typed "
                              f"{graph.values[name].type}")
    for node in graph.topo_nodes():  # raises on a cycle
        for v in node.uses:
            if v and v not in graph.values:
                raise VerifyError(f"node '{node.name}' ({node.qualified_op}) uses undefined value '%{v}'")
        for out in node.outputs:
            if out in defined:
                raise VerifyError(f"value '%{out}' is defined more than once (again by node '{node.name}')")
            if graph.producer(out) is not node:
                raise VerifyError(f"value '%{out}' of node '{node.name}' is not indexed to it")
            defined.add(out)
        for key, value in node.attrs.items():
            problem = _attr_problem(value)
            if problem:
                raise VerifyError(f"node '{node.name}' ({node.qualified_op}): attribute '{key}' {problem}",
                                  hint="fix the attribute's value in the model")
        if node.domain == NVMC_DOMAIN:
            opdef = NVMC_OPS.get(node.op)
            if opdef is None:
                raise VerifyError(f"node '{node.name}': unknown nvmc op '{node.op}'")
            reason = opdef.check(node, graph)
            if reason:
                raise VerifyError(f"node '{node.name}' ({node.qualified_op}): {reason}")
        elif node.op in ("Conv", "ConvTranspose") and node.domain in ("", "ai.onnx"):
            reason = _conv_channels(node, graph)
            if reason:
                raise VerifyError(f"node '{node.name}' ({node.op}): {reason}", hint="fix the model's weights or 'group'")
    for out in graph.outputs:
        if out not in graph.values:
            raise VerifyError(f"graph output '%{out}' is not defined")
    if len(set(graph.values)) != len(defined):
        stray = sorted(set(graph.values) - defined)
        raise VerifyError(f"value '%{stray[0]}' has no definition (not an input, constant or node output)")


def _conv_channels(node, graph: Graph) -> str | None:
    """Why a Conv's channels and group do not fit (ONNX inference leaves this to the runtime)."""
    group = node.attrs.get("group", 1)
    if not isinstance(group, int) or group < 1:
        return f"group={group!r}; it must be a positive integer"
    if len(node.inputs) < 2 or not node.inputs[0] or not node.inputs[1]:
        return None
    x, w = graph.values[node.inputs[0]].type.shape, graph.values[node.inputs[1]].type.shape
    if not x or not w or len(x) < 2 or len(w) < 2 or not all(isinstance(d, int) for d in (x[1], w[0], w[1])):
        return None
    c, m, wc = x[1], w[0], w[1]
    if node.op == "Conv":
        if c != wc * group:
            return f"the input has {c} channels but the weight takes {wc} x group {group} = {wc * group}"
        if m % group:
            return f"the weight's {m} output channels do not split into {group} groups"
    elif c != m or c % group:  # ConvTranspose: weight [C, M/group, k...]
        return f"the input has {c} channels but the weight takes {m} (group {group})"
    return None


def _attr_problem(value) -> str | None:
    """Why an attribute value cannot be written as ONNX (an int beyond 64 bits, text that is
    not UTF-8), else None."""
    if isinstance(value, int):
        return None if -2**63 <= value < 2**63 else f"holds {value}, outside the 64-bit integer range"
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return f"holds text that is not valid UTF-8: {value!r}"
        return None
    if isinstance(value, list):
        texts = sum(isinstance(v, str) for v in value)
        if 0 < texts < len(value) or not all(isinstance(v, (str, int, float)) for v in value):
            return f"holds a list ONNX cannot store (texts and numbers mixed, or nested): {value!r:.80}"
        if any(isinstance(v, bool) for v in value) and not any(isinstance(v, float) for v in value):
            return f"holds true/false in a list of integers (ONNX stores 1/0): {value!r:.80}"
        return next((p for p in map(_attr_problem, value) if p), None)
    return None
