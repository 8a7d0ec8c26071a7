"""nvmc: a compiler-style toolchain for deep learning on memory-centric hardware.

    >>> import nvmc
    >>> g = nvmc.load("examples/models/tiny_cnn.onnx")
    >>> nvmc.analyze(g).totals["macs"]
"""

from importlib.metadata import PackageNotFoundError, version

from nvmc.api import Compiled, Workload, analyze, compile, export, load, parse_text, save, to_onnx, verify

try:
    __version__ = version("nvmc")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+unknown"

__all__ = ["Compiled", "Workload", "analyze", "compile", "export", "load", "parse_text", "save", "to_onnx", "verify", "__version__"]
