"""Cost-model families: family name -> module with ``estimate(workload, target) -> Estimate``.

A family module defines::

    FAMILY = "gpu-llc"                       # the name target files use
    SCHEMA = {section: {key: Field, ...}}    # what its target files may say
    def estimate(workload, target, *, batch=1) -> Estimate
    def parameters(target) -> list[ParamRow] # every number it uses, for `nvmc explain`

Built-in families are listed in ``_BUILTIN``. Out-of-tree families register a module under
the ``nvmc.targets`` entry-point group; a module may also name a ``TARGETS_DIR`` whose
``*.toml`` files then appear in ``nvmc targets``.
"""

from __future__ import annotations

import importlib
from functools import lru_cache
from pathlib import Path
from types import ModuleType

from nvmc.ir.errors import did_you_mean

from .errors import TargetError

_BUILTIN = {
    "gpu-llc": "nvmc.backends.gpu_llc",
    "upmem": "nvmc.backends.upmem",
    "mensa": "nvmc.backends.mensa",
    "simdram": "nvmc.backends.simdram",
    "roofline": "nvmc.backends.roofline",
    "systolic": "nvmc.backends.systolic",
    "crossbar": "nvmc.backends.crossbar",
    "racetrack-hdc": "nvmc.backends.racetrack",
    "sparse-engine": "nvmc.backends.eie",
}
ENTRY_POINT_GROUP = "nvmc.targets"


_FAILURES: dict[str, str] = {}  # entry point -> why it failed to load (nvmc targets prints them)


def plugin_failures() -> dict[str, str]:
    _plugins()
    return dict(_FAILURES)


@lru_cache(maxsize=1)
def _plugins() -> dict[str, ModuleType]:
    from importlib.metadata import entry_points

    found: dict[str, ModuleType] = {}
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        try:
            module = ep.load()
        except Exception as e:  # a broken plugin must not break nvmc: kept to be reported, then ignored
            _FAILURES[ep.name] = f"{type(e).__name__}: {e}"
            continue
        family = getattr(module, "FAMILY", ep.name)
        if family not in _BUILTIN:
            found[family] = module
    return found


def families() -> list[str]:
    return [*_BUILTIN, *_plugins()]


def family_module(name: str) -> ModuleType:
    if name in _BUILTIN:
        return importlib.import_module(_BUILTIN[name])
    plugins = _plugins()
    if name in plugins:
        return plugins[name]
    raise TargetError(f"unknown cost-model family '{name}'{did_you_mean(name, families())}",
                      hint=f"families: {', '.join(families())}")


def plugin_target_dirs() -> list[Path]:
    return [Path(m.TARGETS_DIR) for m in _plugins().values() if getattr(m, "TARGETS_DIR", None)]
