"""Analyses cached on the graph and invalidated by any change to it.

An analysis is a function ``graph -> result``. ``get_analysis(graph, name)`` computes it
once per graph version: ``graph.analysis_cache[name] = (graph.version, result)``, and every
mutation of the graph bumps its version, so a pass never reads a stale result and never
has to say what it invalidated.

    >>> work = get_analysis(graph, "workload")   # computed
    >>> work = get_analysis(graph, "workload")   # cached, until the graph changes
"""

from __future__ import annotations

from typing import Any, Callable

from nvmc.ir.errors import NvmcError, did_you_mean
from nvmc.ir.graph import Graph

Analysis = Callable[[Graph], Any]
_ANALYSES: dict[str, Analysis] = {}


def register_analysis(name: str):
    """Decorator: make ``fn(graph)`` available as ``get_analysis(graph, name)``."""

    def decorate(fn: Analysis) -> Analysis:
        if name in _ANALYSES and _ANALYSES[name] is not fn:
            raise ValueError(f"analysis '{name}' is registered twice")
        _ANALYSES[name] = fn
        return fn

    return decorate


def get_analysis(graph: Graph, name: str) -> Any:
    """The result of analysis ``name`` on ``graph``, computed at most once per graph version."""
    if name not in _ANALYSES:
        raise NvmcError(f"unknown analysis '{name}'{did_you_mean(name, _ANALYSES)}")
    return cached(graph, name, _ANALYSES[name])


def cached(graph: Graph, key: str, compute: Analysis) -> Any:
    """``compute(graph)``, memoised in ``graph.analysis_cache`` against ``graph.version``."""
    hit = graph.analysis_cache.get(key)
    if hit is not None and hit[0] == graph.version:
        return hit[1]
    version = graph.version
    result = compute(graph)
    if graph.version != version:
        raise RuntimeError(f"analysis '{key}' changed the graph it analysed")
    graph.analysis_cache[key] = (version, result)
    return result


@register_analysis("workload")
def _workload(graph: Graph):
    from .workload import analyze

    return analyze(graph)


@register_analysis("use-counts")
def use_counts(graph: Graph) -> dict[str, int]:
    """Readers of every value (graph outputs count as one reader each)."""
    counts = {name: len(graph.users(name)) for name in graph.values}
    for out in graph.outputs:
        counts[out] = counts.get(out, 0) + 1
    return counts


@register_analysis("const-bytes")
def const_bytes(graph: Graph) -> int:
    """Bytes held in constants (what an exported model stores as initializers)."""
    return int(sum(a.size * a.itemsize for a in graph.consts.values()))
