"""What every cost-model family refuses the same way: ops it has no rule for."""

from __future__ import annotations

import numpy as np

from nvmc.ir.kinds import KIND

from .errors import UnsupportedOpError

CONTROL_FLOW = frozenset({"If", "Loop", "Scan"})


def op_mask(ops, names) -> np.ndarray:
    """``np.isin(ops, names)`` for op names: np.isin where ``ops`` is a numpy string array,
    else a hash lookup per node (linear; np.isin would sort the objects: 2-5x slower)."""
    names = frozenset(names)
    if isinstance(ops, np.ndarray) and ops.dtype.kind == "U":
        return np.isin(ops, list(names))
    return np.fromiter(map(names.__contains__, ops), dtype=bool, count=len(ops))


def check_supported(workload, target, family: str) -> None:
    """Control flow and ops of unknown domains without a MAC count cannot be costed. A domain
    op with a count rule of its own (the nvmc HDC ops: kind 'elementwise') is known work."""
    kinds = set(workload.ops)
    if not kinds & CONTROL_FLOW and not any("." in op for op in kinds):
        return
    macs = workload.columns["macs"]
    kind = workload.columns.get("kind")
    no_rule = np.ones(len(macs), dtype=bool) if kind is None else kind == KIND["other"]
    for i, op in enumerate(workload.ops):
        if op in CONTROL_FLOW:
            why = f"its subgraph is not costed by family '{family}'"
        elif "." in op and macs[i] == 0 and no_rule[i]:
            why = f"ops of domain '{op.rsplit('.', 1)[0]}' without a MAC count have no cost rule in family '{family}'"
        else:
            continue
        raise UnsupportedOpError(f"node '{workload.names[i]}' ({op}) is not supported by target '{target.name}': {why}",
                                 hint="lower or remove the op before compiling, or choose another target")
