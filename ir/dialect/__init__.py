"""The nvmc dialect: every op of the ``nvmc`` domain, one ``OpDef`` each (nvmc.ir.ops), one
module per op family. Importing this package registers them; an out-of-tree op (a plugin's
pass that emits one) adds its own OpDef with ``register_op``."""

from __future__ import annotations

from ..graph import NVMC_DOMAIN
from ..ops import OpDef
from . import hdc, neon, winograd

NVMC_OPS: dict[str, OpDef] = {}


def register_op(op: OpDef) -> OpDef:
    if op.name in NVMC_OPS:
        raise ValueError(f"nvmc op '{op.name}' is registered twice")
    NVMC_OPS[op.name] = op
    return op


def op_def(qualified_op: str) -> OpDef | None:
    """The definition of a qualified op name (``"nvmc.Bind"``); None for other domains' ops."""
    domain, _, name = qualified_op.rpartition(".")
    return NVMC_OPS.get(name) if domain == NVMC_DOMAIN else None


for _op in (winograd.WINOGRAD_CONV, neon.NEON_APPROX, hdc.BIND, hdc.PERMUTE, hdc.BUNDLE, hdc.SIMILARITY):
    register_op(_op)
