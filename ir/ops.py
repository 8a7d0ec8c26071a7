"""Registry of nvmc-domain ops: their invariants and their lowering to ONNX ops.

Every nvmc op must be expressible in standard ONNX so a transformed graph can always be
exported and run in onnxruntime. An op registers two functions:

* ``verify(node, graph) -> str | None``: the reason the node is malformed, or None;
* ``lower(node, graph) -> None``: replace ``node`` in ``graph`` by ONNX-domain nodes that
  compute the same outputs (same value names).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from .graph import Graph, Node


@dataclass(frozen=True)
class OpDef:
    name: str
    doc: str
    verify: Callable[[Node, Graph], str | None]
    lower: Callable[[Node, Graph], None]


NVMC_OPS: dict[str, OpDef] = {}


def register_op(name: str, *, verify: Callable[[Node, Graph], str | None],
                lower: Callable[[Node, Graph], None], doc: str = "") -> OpDef:
    if name in NVMC_OPS:
        raise ValueError(f"nvmc op '{name}' is registered twice")
    NVMC_OPS[name] = OpDef(name, doc, verify, lower)
    return NVMC_OPS[name]
