"""ONNX import (onnx_import) and export (onnx_export), and the ONNX-based type check."""

from .onnx_export import lower_nvmc_ops, save_onnx, to_onnx
from .onnx_import import import_model, read_model
from .typecheck import verify_types

__all__ = ["import_model", "lower_nvmc_ops", "read_model", "save_onnx", "to_onnx", "verify_types"]
