"""nvmc's graph IR: Graph / Node / Value / TensorType, the verifier and the .nvir text form.

This package imports nothing else of nvmc (see DESIGN.md, import direction).
"""

from .errors import ModelError, NvmcError, ParseError, ShapeError, SourceSpan, VerifyError
from .graph import NVMC_DOMAIN, ONNX_DOMAIN, Graph, Node, Value
from .parser import parse_text
from .printer import print_graph
from .types import Annotation, TensorType, dtype_size
from .verify import verify_structure

__all__ = [
    "Annotation", "Graph", "ModelError", "Node", "NVMC_DOMAIN", "NvmcError", "ONNX_DOMAIN", "ParseError",
    "ShapeError", "SourceSpan", "TensorType", "Value", "VerifyError", "dtype_size", "parse_text",
    "print_graph", "verify_structure",
]
