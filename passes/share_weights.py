"""Weight sharing: each layer's weights take one of a few shared values (a k-means codebook)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from nvmc.ir import csc
from nvmc.ir.graph import Graph
from nvmc.ir.types import Annotation

from .base import Pass, PassResult, option, register_pass
from .compression_common import (add_savings, find_weights, measure_error, sample_feeds, short_float,
                                 workload_totals)
from .workload import csc_entries


@register_pass("share-weights", exact=False)
@dataclass(frozen=True)
class ShareWeights(Pass):
    """Share each layer's weights among a few values found by k-means, as Deep Compression / EIE do.

    1. Each float32 weight of a Conv/ConvTranspose/Gemm/MatMul (see compression_common) is
       clustered on its own: 1-D k-means with linear initialisation between the smallest and
       the largest weight and Lloyd iterations (Han et al., ICLR 2016, found linear
       initialisation best). Every weight is replaced by its cluster's centroid.
    2. A weight with zeros (from prune) keeps them exactly: the codebook's entry for 0.0 is
       reserved and the other ``clusters - 1`` entries cluster the non-zeros.
    3. The constant holds the shared values (so export and onnxruntime run it as is) and is
       annotated ``#codebook<clusters, index_bits, values, format, axis, rel_bits>``; an
       element's index is the position of its value in ``values``. ``format`` is ``csc``
       (EIE's compressed sparse columns over the [outputs, inputs] matrix: an index plus a
       ``rel_bits`` relative row index per non-zero, padding zeros for long runs, a pointer
       per column) when that is smaller than one index per element, else ``dense``. The
       workload analysis counts the weight's bytes in that form, codebook included.
    4. Left alone: weights that are not float32 constants (quantised codes included: share
       before quantize, not after), weights already shared, and weights with fewer distinct
       values than ``clusters`` are annotated but not moved.
    5. Error: with ``measure`` (default) the model runs before and after in onnxruntime on
       ``samples`` seeded random draws or the ``.npz`` ``inputs`` (``PassResult.error``).

    Before:
        %w = const f32[64,32]
        %y = MatMul(%x, %w) : f32[1,64]
    After (share-weights{clusters=16}):
        %w = const f32[64,32] #codebook<axis=1, clusters=16, format="dense", index_bits=4, rel_bits=4, values=[-0.31, ..., 0.29]>
        %y = MatMul(%x, %w) : f32[1,64]
    """

    clusters: int = option(16, min=2, max=256, help="shared values per layer (index bits = ceil(log2 clusters))")
    iterations: int = option(30, min=1, max=1000, help="Lloyd iterations of k-means, at most")
    rel_bits: int = option(4, min=1, max=16, help="csc storage: bits of the relative row index (EIE: 4)")
    samples: int = option(4, min=1, max=100000, help="seeded random draws to measure the error on")
    inputs: str = option("", help="an .npz of inputs to measure the error on, arrays named after the graph inputs")
    seed: int = option(0, min=0, help="seed of the random draws")
    measure: bool = option(True, help="run the model before and after in onnxruntime and report the error")

    def run(self, graph: Graph) -> PassResult:
        result = PassResult(False)
        found, why_not = find_weights(graph)
        result.why_not.extend(why_not)
        weights, seen = [], set()
        for w in found:
            t = graph.values[w.const].type
            if w.const in seen:
                continue
            seen.add(w.const)
            if w.quantized:
                result.why_not.append((w.node.name, f"the weight '%{w.const}' is quantised; share weights before "
                                                    "quantize"))
            elif t.dtype != "f32":
                result.why_not.append((w.node.name, f"the weight '%{w.const}' is {t.dtype}, not f32"))
            elif t.annotation("codebook") is not None:
                result.why_not.append((w.node.name, f"the weight '%{w.const}' is shared already"))
            else:
                weights.append(w)
        if not weights:
            return result
        feeds = sample_feeds(graph, self.samples, self.seed, self.inputs) if self.measure else []
        before = graph.copy() if self.measure else None
        totals_before = workload_totals(graph)
        for w in weights:
            array = graph.consts[w.const]
            book, shared = share(array, self.clusters, self.iterations)
            index_bits = max(1, math.ceil(math.log2(book.size)))
            dense = array.size * index_bits / 8
            form = "dense"
            nonzero = np.count_nonzero(shared)
            if nonzero * (index_bits + self.rel_bits) < array.size * index_bits:  # else csc cannot be smaller
                entries, columns = csc_entries(shared, w.out_axis, self.rel_bits)
                if csc.storage_bits(entries, columns, index_bits, self.rel_bits) / 8 < dense:
                    form = "csc"
            graph.set_const(w.const, shared)
            ann = Annotation.of("codebook", {"clusters": int(book.size), "index_bits": index_bits, "format": form,
                                             "axis": w.out_axis, "rel_bits": self.rel_bits,
                                             "values": [short_float(v) for v in book]})
            value = graph.values[w.const]
            value.type = value.type.with_annotation(ann)
        result.changed = True
        result.stats["layers_shared"] = len(weights)
        add_savings(result.stats, totals_before, workload_totals(graph))
        if before is not None:
            result.error = measure_error(before, graph, feeds)
        return result


def share(array: np.ndarray, clusters: int, iterations: int) -> tuple[np.ndarray, np.ndarray]:
    """(codebook: sorted float32 values, the array with every element replaced by its nearest
    codebook value). Zeros stay zero, with a reserved 0.0 entry, when the array has any."""
    flat = array.reshape(-1)
    nonzero = flat != 0
    sparse = not nonzero.all()
    data = flat[nonzero] if sparse else flat
    k = clusters - 1 if sparse else clusters
    centroids = kmeans_1d(data, k, iterations) if data.size else np.zeros(0)
    book = np.unique(np.array([short_float(c) for c in centroids], dtype=np.float32))
    if sparse:
        book = book[book != 0]
    shared = np.zeros_like(flat)
    if book.size:
        shared[nonzero if sparse else slice(None)] = book[nearest(book, data)]
    if sparse:
        book = np.concatenate([book, np.zeros(1, np.float32)])
        book.sort()
    return book, shared.reshape(array.shape)


def nearest(book: np.ndarray, data: np.ndarray, bins: int = 1 << 16) -> np.ndarray:
    """Index of the nearest entry of the sorted ``book`` for each element of ``data``. Large
    arrays go through a lookup table over ``bins`` equal bins of their range, exact because
    the elements of the few bins holding a decision boundary (and their neighbours) are
    resolved one by one: a few passes over the data instead of a binary search per element."""
    mids = ((book[1:].astype(np.float64) + book[:-1]) / 2).astype(data.dtype)
    lo, hi = float(data.min(initial=0.0)), float(data.max(initial=0.0))
    if data.size <= 4 * bins or hi <= lo:
        return np.searchsorted(mids, data)
    width = (hi - lo) / bins
    index = np.clip(((data - np.float32(lo)) * np.float32(1.0 / width)).astype(np.int32), 0, bins - 1)
    edges = lo + width * np.arange(bins + 1)
    table = np.searchsorted(mids, (edges[:-1] + edges[1:]) / 2).astype(np.int32)
    boundary = np.zeros(bins + 2, dtype=bool)
    holds = np.clip(((mids.astype(np.float64) - lo) / width).astype(np.int64), 0, bins - 1)
    for shift in (0, 1, 2):  # the bin holding a boundary and its neighbours (rounding)
        boundary[holds + shift] = True
    out = table[index]
    exact = boundary[1:-1][index]
    out[exact] = np.searchsorted(mids, data[exact])
    return out


def kmeans_1d(values: np.ndarray, k: int, iterations: int) -> np.ndarray:
    """Centroids of 1-D k-means: linear initialisation over [min, max], Lloyd iterations on
    the sorted data (each a searchsorted and prefix sums: no per-element loop)."""
    xs = np.sort(values.reshape(-1))  # float32 sorts fast; the sums are float64
    distinct = 1 + int(np.count_nonzero(xs[1:] != xs[:-1]))
    if distinct <= k:
        return np.unique(xs).astype(np.float64)
    centroids = np.linspace(float(xs[0]), float(xs[-1]), k)
    prefix = np.concatenate(([0.0], np.cumsum(xs, dtype=np.float64)))
    for _ in range(iterations):
        cuts = np.searchsorted(xs, ((centroids[1:] + centroids[:-1]) / 2).astype(xs.dtype))  # same dtype: no copy
        edges = np.concatenate(([0], cuts, [xs.size]))
        counts = np.diff(edges)
        sums = prefix[edges[1:]] - prefix[edges[:-1]]
        updated = np.where(counts > 0, sums / np.maximum(counts, 1), centroids)
        if np.array_equal(updated, centroids):
            break
        centroids = updated
    return centroids
