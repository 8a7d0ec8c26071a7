"""Structural verifier: SSA, definitions before use, acyclicity, nvmc-op invariants.

The type check against ONNX shape inference needs the ONNX exporter, which lives in
``frontend`` (``ir`` imports nothing else of nvmc), so it is ``frontend.verify_types``;
``nvmc.verify(graph)`` runs both.
"""

from __future__ import annotations

from .errors import VerifyError
from .graph import NVMC_DOMAIN, Graph
from .ops import NVMC_OPS


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
        if node.domain == NVMC_DOMAIN:
            opdef = NVMC_OPS.get(node.op)
            if opdef is None:
                raise VerifyError(f"node '{node.name}': unknown nvmc op '{node.op}'")
            reason = opdef.verify(node, graph)
            if reason:
                raise VerifyError(f"node '{node.name}' ({node.qualified_op}): {reason}")
    for out in graph.outputs:
        if out not in graph.values:
            raise VerifyError(f"graph output '%{out}' is not defined")
    if len(set(graph.values)) != len(defined):
        stray = sorted(set(graph.values) - defined)
        raise VerifyError(f"value '%{stray[0]}' has no definition (not an input, constant or node output)")
