"""The numerics harness: run two models in onnxruntime on the same inputs and compare them
(nvmc/frontend/runtime.py, where every nvmc layer can reach it), plus two pytest helpers.

    report = compare(original_graph, transformed_graph, seed=0)
    assert_numerics_close(reference, candidate, rel=1e-5)
    transformed, result, report = check_pipeline(graph, "fuse-conv-bn,dce")
"""

from __future__ import annotations

from nvmc.frontend.runtime import (INLINE_WEIGHTS, ModelLike, NumericsReport, OutputComparison, Session,  # noqa: F401
                                   compare, compare_arrays, load_inputs, random_inputs)
from nvmc.ir.graph import Graph
from nvmc.passes import run_pipeline


def assert_numerics_close(reference: ModelLike, candidate: ModelLike, *, rel: float = 1e-5, **kw) -> NumericsReport:
    """pytest helper: compare, and fail with the full report when max_rel_err exceeds ``rel``."""
    report = compare(reference, candidate, **kw)
    if not report.within(rel):
        raise AssertionError(f"max rel error {report.max_rel_err:.3g} exceeds {rel:g}\n{report}")
    return report


def check_pipeline(graph: Graph, pipeline: str, *, rel: float = 1e-5, **kw):
    """pytest helper: run ``pipeline`` (verifying after each pass) on a copy of ``graph``, then
    assert the copy computes what ``graph`` does. Returns (transformed, PipelineResult, report)."""
    transformed = graph.copy()
    result = run_pipeline(transformed, pipeline, verify_each=True)
    report = assert_numerics_close(graph, transformed, rel=rel, **kw)
    return transformed, result, report
