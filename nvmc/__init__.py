"""nvmc: a compiler-style toolchain for deep learning on memory-centric hardware.

    >>> import nvmc
    >>> g = nvmc.load("examples/models/tiny_cnn.onnx")
    >>> nvmc.analyze(g).totals["macs"]
    1069216
    >>> _ = nvmc.run_passes(g, "fuse-conv-bn,dce")
    >>> est = nvmc.estimate(g, "sot-mram")
    >>> est.ok, sorted(est.energy_by_component())
    (True, ['compute', 'dram', 'l2_leakage', 'l2_read', 'l2_write'])
"""

from importlib.metadata import PackageNotFoundError, version

from nvmc.api import (Compiled, Workload, analyze, compile, estimate, export, load, parse_text, run_passes, save,
                      to_onnx, verify)

try:
    __version__ = version("nvmc")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+unknown"

__all__ = ["Compiled", "Workload", "analyze", "compile", "estimate", "export", "load", "parse_text", "run_passes", "save",
           "to_onnx", "verify", "__version__"]
