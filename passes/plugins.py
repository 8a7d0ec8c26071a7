"""Out-of-tree passes and targets, found through Python entry points.

A package adds passes by declaring, in its ``pyproject.toml``::

    [project.entry-points."nvmc.passes"]
    strip-identity = "nvmc_example_plugin:StripIdentity"

The entry point's name is the pass name. It may point at a ``Pass`` class (registered
under that name if its module did not register it already) or at a module whose import
registers its passes with ``@register_pass``. Targets use the group ``nvmc.targets`` the
same way (read by the backends). A plugin that fails to import does not break nvmc: the
failure is kept and shown by ``nvmc passes`` and when the pass is asked for.
"""

from __future__ import annotations

import inspect
from importlib.metadata import entry_points

PASSES_GROUP = "nvmc.passes"
TARGETS_GROUP = "nvmc.targets"

_loaded = False
_failures: dict[str, str] = {}


def load_plugins(*, reload: bool = False) -> None:
    """Import every ``nvmc.passes`` entry point once per process (again with ``reload``)."""
    global _loaded
    if _loaded and not reload:
        return
    _loaded = True
    from .base import Pass, _REGISTRY, register_pass

    for ep in entry_points(group=PASSES_GROUP):
        if ep.name in _REGISTRY and not reload:
            continue
        try:
            obj = ep.load()
            if inspect.isclass(obj) and issubclass(obj, Pass):
                if obj.name != ep.name or _REGISTRY.get(ep.name) is not obj:
                    register_pass(ep.name, exact=obj.exact)(obj)
            elif not inspect.ismodule(obj):
                raise TypeError(f"entry point '{ep.value}' is neither a Pass class nor a module")
            if ep.name not in _REGISTRY:
                raise TypeError(f"loading '{ep.value}' registered no pass named '{ep.name}'")
            _failures.pop(ep.name, None)
        except Exception as e:  # a broken plugin must not break nvmc
            _failures[ep.name] = f"{ep.value}: {type(e).__name__}: {e}"


def plugin_failures() -> dict[str, str]:
    """Pass name -> why its plugin could not be loaded."""
    load_plugins()
    return dict(_failures)


def plugin_entry_points(group: str = PASSES_GROUP) -> list[tuple[str, str, str]]:
    """(name, object reference, distribution) of every entry point in ``group``."""
    out = []
    for ep in entry_points(group=group):
        dist = getattr(ep, "dist", None)
        out.append((ep.name, ep.value, f"{dist.name} {dist.version}" if dist else "?"))
    return sorted(out)
