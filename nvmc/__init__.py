"""nvmc: a compiler-style toolchain for deep learning on memory-centric hardware.

    >>> import nvmc
    >>> g = nvmc.load("examples/models/tiny_cnn.onnx")
    >>> nvmc.analyze(g).totals["macs"]
    1069216
    >>> _ = nvmc.run_passes(g, "fuse-conv-bn,dce")
    >>> est = nvmc.estimate(g, "sot-mram")
    >>> est.ok, sorted(est.energy_by_component())
    (True, ['compute', 'dram', 'l2_leakage', 'l2_read', 'l2_write'])

The names below load on first use (PEP 562): ``import nvmc.ir`` loads the IR only, and the
command line starts without importing onnx, the passes or the cost models it does not use.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("nvmc")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+unknown"

__all__ = ["Compiled", "Workload", "analyze", "compile", "estimate", "export", "generate", "load", "parse_text",
           "run_passes", "save", "to_onnx", "verify", "__version__"]


_SUBPACKAGES = ("api", "backends", "frontend", "ir", "passes", "report", "sweep")


def __getattr__(name: str):
    if name == "generate":
        from nvmc.generation import generate

        return generate
    if name in __all__:
        from nvmc import api

        return getattr(api, name)
    if name in _SUBPACKAGES:  # ``import nvmc; nvmc.ir.parse_text(...)`` works as before
        import importlib

        return importlib.import_module(f"nvmc.{name}")
    raise AttributeError(f"module 'nvmc' has no attribute '{name}'")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
