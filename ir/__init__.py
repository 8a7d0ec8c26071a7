"""nvmc's graph IR: Graph / Node / Value / TensorType, the nvmc ops' definitions (``NVMC_OPS``),
the verifier and the .nvir text form.

This package imports nothing else of nvmc, and not onnx (see DESIGN.md, import direction).
Its names load on first use (PEP 562): ``from nvmc.ir.errors import NvmcError`` costs a
few milliseconds, not the graph library and the text parser.
"""

import importlib

_WHERE = {
    "ModelError": "errors", "NvmcError": "errors", "ParseError": "errors", "ShapeError": "errors",
    "SourceSpan": "errors", "VerifyError": "errors", "NVMC_DOMAIN": "graph", "ONNX_DOMAIN": "graph",
    "Graph": "graph", "Node": "graph", "Value": "graph", "parse_text": "parser", "print_graph": "printer",
    "Annotation": "types", "TensorType": "types", "dtype_size": "types", "verify_structure": "verify",
    "NVMC_OPS": "dialect", "OpDef": "ops", "op_def": "dialect", "register_op": "dialect",
}
__all__ = sorted(_WHERE)


def __getattr__(name: str):
    if name in _WHERE:
        return getattr(importlib.import_module(f"{__name__}.{_WHERE[name]}"), name)
    raise AttributeError(f"module '{__name__}' has no attribute '{name}'")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
