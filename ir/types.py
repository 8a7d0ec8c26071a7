"""Tensor types: element type, shape and annotations.

A dimension is an ``int`` (known), a ``str`` (a named symbolic dimension such as
``"batch"``) or ``None`` (unknown). A shape of ``None`` means the rank is unknown.

Annotations carry what passes learn about a value and backends read: quantisation
(``quant``), sparsity (``sparsity``), weight sharing (``codebook``) and others. Each is
a name and a flat mapping of scalar or list values, printed as ``#quant<bits=8, ...>``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np

Dim = int | str | None

# nvmc's short dtype names <-> numpy dtypes. The names are what the text form prints.
_DTYPES: dict[str, Any] = {
    "f16": np.float16,
    "f32": np.float32,
    "f64": np.float64,
    "i8": np.int8,
    "i16": np.int16,
    "i32": np.int32,
    "i64": np.int64,
    "u8": np.uint8,
    "u16": np.uint16,
    "u32": np.uint32,
    "u64": np.uint64,
    "bool": np.bool_,
    "c64": np.complex64,
    "c128": np.complex128,
    "str": np.object_,
}
# Narrow element types numpy lacks: a name, a size in bytes, and the ml_dtypes name (the
# package onnx and onnxruntime use for them; it is optional here: without it these types are
# still named and sized, only their arrays cannot be made).
_NARROW = {"bf16": (2, "bfloat16"), "f8e4m3fn": (1, "float8_e4m3fn"), "f8e4m3fnuz": (1, "float8_e4m3fnuz"),
           "f8e5m2": (1, "float8_e5m2"), "f8e5m2fnuz": (1, "float8_e5m2fnuz"), "f8e8m0": (1, "float8_e8m0fnu"),
           "f6e2m3": (0.75, "float6_e2m3fn"), "f6e3m2": (0.75, "float6_e3m2fn"), "f4e2m1": (0.5, "float4_e2m1fn"),
           "u4": (0.5, "uint4"), "i4": (0.5, "int4"), "u2": (0.25, "uint2"), "i2": (0.25, "int2")}
_EXTRA_SIZES = {n: size for n, (size, _) in _NARROW.items()}
_BY_NUMPY_NAME = {np_name: n for n, (_, np_name) in _NARROW.items()}

DTYPE_NAMES: tuple[str, ...] = tuple(_DTYPES) + tuple(_EXTRA_SIZES)
# Bytes per element: fractions for sub-byte types; 8 for strings (a nominal pointer).
_SIZES: dict[str, float] = {**{n: (8 if n == "str" else np.dtype(t).itemsize) for n, t in _DTYPES.items()},
                            **_EXTRA_SIZES}


def dtype_size(dtype: str) -> float:
    """Bytes per element (0.5 for 4-bit types; 8 for strings, a nominal pointer)."""
    return _SIZES[dtype]


def numpy_dtype(dtype: str) -> np.dtype:
    if dtype in _DTYPES:
        return np.dtype(_DTYPES[dtype])
    if dtype in _NARROW:
        try:
            import ml_dtypes

            return np.dtype(getattr(ml_dtypes, _NARROW[dtype][1]))
        except (ImportError, AttributeError):
            pass
    raise ValueError(f"element type '{dtype}' has no numpy equivalent")


def dtype_of_array(array: np.ndarray) -> str:
    for name, np_type in _DTYPES.items():
        if array.dtype == np.dtype(np_type):
            return name
    if array.dtype.kind in "OSU":
        return "str"
    if array.dtype.name in _BY_NUMPY_NAME:  # ml_dtypes' bfloat16, float8_*, int4 ...
        return _BY_NUMPY_NAME[array.dtype.name]
    raise ValueError(f"numpy dtype {array.dtype} has no nvmc element type")


@dataclass(frozen=True)
class Annotation:
    """One named annotation on a tensor type, e.g. ``#quant<bits=8, scheme="symmetric">``."""

    name: str
    params: tuple[tuple[str, Any], ...] = ()

    @staticmethod
    def of(name: str, params: Mapping[str, Any] | None = None) -> "Annotation":
        items = tuple(sorted((params or {}).items()))
        return Annotation(name, tuple((k, tuple(v) if isinstance(v, list) else v) for k, v in items))

    def get(self, key: str, default: Any = None) -> Any:
        return dict(self.params).get(key, default)


@dataclass(frozen=True)
class TensorType:
    dtype: str
    shape: tuple[Dim, ...] | None
    annotations: tuple[Annotation, ...] = field(default=())

    def __post_init__(self) -> None:
        if self.dtype not in _SIZES:
            raise ValueError(f"unknown element type '{self.dtype}'")
        # Types are immutable, so the element count is computed once (hot in analyses).
        static = self.shape is not None and all(type(d) is int for d in self.shape)
        object.__setattr__(self, "_numel", math.prod(self.shape) if static else None)

    @property
    def rank(self) -> int | None:
        return None if self.shape is None else len(self.shape)

    @property
    def is_static(self) -> bool:
        return self._numel is not None

    def numel(self) -> int | None:
        """Element count, or None when any dimension is not a known integer."""
        return self._numel

    def nbytes(self) -> float | None:
        n = self._numel
        return None if n is None else n * _SIZES[self.dtype]

    def annotation(self, name: str) -> Annotation | None:
        return next((a for a in self.annotations if a.name == name), None)

    def with_annotation(self, ann: Annotation) -> "TensorType":
        kept = tuple(a for a in self.annotations if a.name != ann.name)
        return TensorType(self.dtype, self.shape, tuple(sorted(kept + (ann,), key=lambda a: a.name)))

    def with_shape(self, shape: tuple[Dim, ...] | None) -> "TensorType":
        return TensorType(self.dtype, shape, self.annotations)

    def __str__(self) -> str:  # f32[1,3,224,224]
        if self.shape is None:
            return f"{self.dtype}[*]"
        return f"{self.dtype}[{','.join('?' if d is None else str(d) for d in self.shape)}]"
