"""Generation costing: a prefill, then decode steps with a growing KV cache, on every target.

A generative transformer is costed from its own graph at the shapes each step has:

* **with past** (the usual decoder-with-past export: ``input_ids [batch, seq]``, ``past_key_values.*
  [batch, heads, past_seq, head_dim]``, ``attention_mask [batch, total_seq]``): the prefill binds
  ``seq = prompt, past_seq = 0``; the step that reads a context of ``c`` cached tokens binds
  ``seq = 1, past_seq = c, total_seq = c + 1``. The KV cache is what the past inputs hold.
* **without past** (``[batch, seq]`` inputs only): every decode step re-runs the whole sequence,
  ``seq = c + 1``; nothing is cached, and the report says so.

``tokens = T`` generated tokens are the prefill's (the first token) and ``T - 1`` decode steps over
contexts ``prompt .. prompt + T - 2``. A step's cost is smooth in its context (the weights are read
once per step; attention and the KV reads grow linearly), so ``samples`` contexts spread over the
range are costed and the steps between them are interpolated linearly; with ``samples >= T - 1``
every step is costed. 4096 tokens cost as much as ``samples + 1`` compiles.

    >>> g = generate("tests/data/gpt2/tiny_gpt2_past.onnx", ["gpu"], prompt=16, tokens=8)
    >>> r = g.results[0]
    >>> r.tokens, len(r.steps), g.kv_bytes_per_token      # the prefill's token, then 7 steps of 1 KiB each
    (8, 7, 1024)
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

from nvmc.ir.errors import NvmcError

if TYPE_CHECKING:
    from nvmc.ir import Graph

# a node whose largest latency component is one of these is bound by memory (the families' names)
MEMORY_COMPONENTS = frozenset({"dram", "l2", "memory", "mram", "transfer", "transfer_in", "transfer_out", "host_link",
                               "ifmap", "filter", "ofmap", "buffer", "row_activations"})
_MEMORY_NAMES = {"llc": "L2", "dram": "DRAM", "mram": "MRAM (all DPUs)", "": "DRAM (PIM)"}


@dataclass(frozen=True)
class GenerateSpec:
    """``prompt=P,tokens=T[,samples=S]``: P prompt tokens, T generated, S decode contexts costed."""

    prompt: int
    tokens: int
    samples: int = 9

    @classmethod
    def parse(cls, text: str) -> "GenerateSpec":
        fields: dict[str, int] = {}
        for part in filter(None, (p.strip() for p in text.split(","))):
            key, sep, value = part.partition("=")
            if not sep or key.strip() not in ("prompt", "tokens", "samples") or not re.fullmatch(r"\d+", value.strip()):
                raise NvmcError(f"--generate: cannot read '{part}'", where=f"--generate {text}",
                                hint="write --generate prompt=128,tokens=128 (optionally samples=9)")
            fields[key.strip()] = int(value)
        if "prompt" not in fields or "tokens" not in fields:
            raise NvmcError("--generate needs both prompt and tokens", where=f"--generate {text}",
                            hint="write --generate prompt=128,tokens=128")
        return cls(**fields).checked()

    def checked(self) -> "GenerateSpec":
        if self.prompt < 1 or self.tokens < 1 or self.samples < 2:
            raise NvmcError(f"--generate prompt={self.prompt},tokens={self.tokens},samples={self.samples}: prompt and "
                            "tokens must be at least 1 and samples at least 2", hint="e.g. prompt=128,tokens=128")
        return self

    def __str__(self) -> str:
        return f"prompt={self.prompt},tokens={self.tokens},samples={self.samples}"


@dataclass(frozen=True)
class Decoder:
    """How a decoder's symbolic dims bind for a prefill and for one decode step."""

    seq: str                          # the dim of input_ids' sequence axis
    batch: str | None                 # the dim of its batch axis (None: fixed)
    past: str | None                  # the past inputs' sequence dim (None: no KV cache inputs)
    total: str | None                 # past + seq (attention_mask's), when the graph names it
    past_inputs: tuple[str, ...] = ()

    @classmethod
    def of(cls, model) -> "Decoder":
        """Read the dims from the ONNX model's graph inputs (initializers excluded)."""
        inits = {i.name for i in model.graph.initializer}
        inputs = [(i.name, [d.dim_param or d.dim_value for d in i.type.tensor_type.shape.dim])
                  for i in model.graph.input if i.name not in inits]
        ids = next(((n, d) for n, d in inputs if len(d) == 2 and isinstance(d[1], str)), None)
        if ids is None:
            raise NvmcError("--generate needs a token input with a symbolic sequence dim, [batch, seq] "
                            f"(the model's inputs: {', '.join(f'{n} {d}' for n, d in inputs)})",
                            hint="export the decoder with dynamic sequence axes")
        batch = ids[1][0] if isinstance(ids[1][0], str) else None
        seq = ids[1][1]
        past_inputs = tuple(n for n, d in inputs if "past" in n.lower() and len(d) >= 3)
        past_dims = {x for n, d in inputs if n in past_inputs for x in d if isinstance(x, str) and x != batch}
        if len(past_dims) > 1:
            raise NvmcError(f"the past inputs name more than one sequence dim ({', '.join(sorted(past_dims))})",
                            hint="export the past tensors with one shared past-length dim (nvmc binds one per step)")
        past = next(iter(past_dims), None)
        others = {x for n, d in inputs for x in d if isinstance(x, str)} - {batch, seq, past}
        total = None
        if others:
            masks = {x for n, d in inputs if "mask" in n.lower() for x in d if x in others}
            if past is not None and len(masks) == 1 and masks == others:
                total = masks.pop()
            else:
                raise NvmcError(f"--generate cannot tell how the dims {', '.join(sorted(others))} grow with the "
                                "sequence", hint="export the decoder with only batch, sequence, past-length and "
                                "attention-mask (past + sequence) dims symbolic")
        return cls(seq, batch, past, total, past_inputs)

    def prefill(self, prompt: int, batch: int) -> dict[str, int]:
        dims = {self.seq: prompt}
        if self.past:
            dims[self.past] = 0
        if self.total:
            dims[self.total] = prompt
        return self._with_batch(dims, batch)

    def step(self, context: int, batch: int) -> dict[str, int]:
        """The step that reads ``context`` earlier tokens and adds one."""
        if not self.past:
            return self._with_batch({self.seq: context + 1}, batch)
        dims = {self.seq: 1, self.past: context}
        if self.total:
            dims[self.total] = context + 1
        return self._with_batch(dims, batch)

    def _with_batch(self, dims: dict[str, int], batch: int) -> dict[str, int]:
        return {**dims, self.batch: batch} if self.batch else dims


@dataclass
class Step:
    """One costed binding on one target."""

    context: int            # tokens read from the cache (prefill: 0)
    latency_s: float
    energy_j: float
    memory_share: float     # of its work (latency less the fixed per-kernel overhead), the share in memory-bound nodes
    bound_by: dict[str, float] = field(default_factory=dict)   # component -> share of that work
    overhead_share: float = 0.0   # of its latency, the fixed per-kernel overhead (a family's "overhead" component)


@dataclass
class TargetGeneration:
    """One target's generation: prefill, the costed decode steps, and the figures over all tokens."""

    target: str
    family: str
    ok: bool
    reason: str = ""
    status: str = "ok"                 # Estimate.status: ok, not_fitting (too big) or not_applicable (cannot run it)
    prefill: Step | None = None
    steps: list[Step] = field(default_factory=list)             # the costed decode contexts
    per_token_latency_s: np.ndarray = field(default_factory=lambda: np.zeros(0))   # token 1 = the prefill
    per_token_energy_j: np.ndarray = field(default_factory=lambda: np.zeros(0))
    memories: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    residency: dict[str, str] = field(default_factory=dict)    # weights / kv_cache -> resident or stream (declared)
    scope: dict[str, str] = field(default_factory=dict)        # what its energy covers (Estimate.scope)
    batch: int = 1                     # sequences generated at once: every figure per token counts each
    area_mm2: float | None = None      # the target's modelled area (None: the family models none)

    @property
    def tokens(self) -> int:
        return len(self.per_token_latency_s)

    @property
    def ttft_s(self) -> float:
        return float(self.per_token_latency_s[0])

    @property
    def decode_s(self) -> float:
        return float(self.per_token_latency_s[1:].sum())

    @property
    def decode_j(self) -> float:
        return float(self.per_token_energy_j[1:].sum())

    @property
    def total_s(self) -> float:
        return float(self.per_token_latency_s.sum())

    @property
    def total_j(self) -> float:
        return float(self.per_token_energy_j.sum())

    @property
    def decode_memory_share(self) -> float | None:
        """The latency-weighted share of the decode steps spent in memory-bound nodes."""
        return _over_steps(self.steps, [s.memory_share for s in self.steps]) if self.steps else None

    @property
    def decode_overhead_share(self) -> float:
        return _over_steps(self.steps, [s.overhead_share for s in self.steps]) if self.steps else 0.0

    @property
    def totals(self) -> dict[str, float | None]:
        """The figures a --budget bounds (keys of nvmc.report's Metric.total): latency and energy of the
        whole generation, area, and the generation's own; no token_latency_s without a decode step."""
        if not self.ok:
            return dict.fromkeys(("latency_s", "energy_j", "area_mm2", "ttft_s", "token_latency_s", "tokens_per_s",
                                  "j_per_token"))
        out = {"latency_s": self.total_s, "energy_j": self.total_j, "area_mm2": self.area_mm2, "ttft_s": self.ttft_s,
               "tokens_per_s": self.batch * self.tokens / self.total_s,
               "j_per_token": self.total_j / (self.batch * self.tokens)}
        if self.tokens > 1:
            out["token_latency_s"] = float(np.median(self.per_token_latency_s[1:]))
        return out

    def summary(self) -> dict[str, Any]:
        if not self.ok:
            return {"target": self.target, "family": self.family, "ok": False, "status": self.status,
                    "reason": self.reason}
        decode = self.per_token_latency_s[1:]
        n_dec = len(decode)
        bound = self.decode_memory_share
        totals = self.totals
        return {
            "target": self.target, "family": self.family, "ok": True, "status": "ok",
            "ttft_s": self.ttft_s,
            "per_token_latency_s": {"first": float(decode[0]) if n_dec else None,
                                    "median": totals.get("token_latency_s"),
                                    "last": float(decode[-1]) if n_dec else None},
            "tokens_per_s": totals["tokens_per_s"],
            "decode_tokens_per_s": self.batch * n_dec / self.decode_s if n_dec else None,
            "j_per_token": totals["j_per_token"],
            "decode_j_per_token": self.decode_j / (self.batch * n_dec) if n_dec else None,
            "area_mm2": self.area_mm2,
            "prefill": {"latency_s": self.ttft_s, "energy_j": float(self.per_token_energy_j[0])},
            "decode": {"latency_s": self.decode_s, "energy_j": self.decode_j, "steps": n_dec},
            "decode_memory_bound_share": bound,
            "decode_overhead_share": self.decode_overhead_share,
            "decode_bound": None if bound is None else ("memory" if bound >= 0.5 else "compute"),
            "decode_bound_by": _mean_bound(self.steps),
            "memories": self.memories,
            "residency": self.residency,
            "energy_scope": self.scope,
            "notes": self.notes,
            "curve": {"context": [s.context for s in self.steps], "latency_s": [s.latency_s for s in self.steps],
                      "energy_j": [s.energy_j for s in self.steps]},
        }


@dataclass
class Generation:
    """``nvmc.generate``'s result: the model's decoder binding and one TargetGeneration per target."""

    model: str
    spec: GenerateSpec
    decoder: Decoder
    batch: int
    kv_bytes_per_token: int | None     # None: the graph has no past inputs (nothing is cached)
    weight_bytes: int
    results: list[TargetGeneration]
    contexts: list[int]                # the decode contexts costed
    analysed: str = ""                 # how their workloads were obtained (see workloads())
    graph: Graph | None = None         # the prefill's graph after the passes (what compile --generate -o writes)

    @property
    def kv_bytes_total(self) -> int | None:
        """The cache after the last step: prompt + tokens - 1 positions (the last token is not cached)."""
        if self.kv_bytes_per_token is None:
            return None
        return self.kv_bytes_per_token * (self.spec.prompt + self.spec.tokens - 1)

    def notes(self) -> list[str]:
        out = []
        if self.decoder.past is None:
            out.append("the model has no past (KV cache) inputs: each decode step re-runs the whole sequence "
                       "(seq = context + 1); export it with past_key_values to cost cached decoding")
        n = self.spec.tokens - 1
        if n > len(self.contexts):
            out.append(f"{n} decode steps: {len(self.contexts)} contexts costed ({self.contexts[0]} .. "
                       f"{self.contexts[-1]}), the steps between them interpolated linearly")
        if self.analysed:
            out.append(self.analysed)
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"schema": "nvmc.generation/1", "model": self.model, "prompt": self.spec.prompt,
                "tokens": self.spec.tokens, "samples": self.spec.samples, "batch": self.batch,
                "kv_cache": {"past_inputs": list(self.decoder.past_inputs), "bytes_per_token": self.kv_bytes_per_token,
                             "bytes_total": self.kv_bytes_total},
                "weight_bytes": self.weight_bytes, "contexts_costed": self.contexts, "notes": self.notes(),
                "targets": [r.summary() for r in self.results], "comparison": self.comparison()}

    def comparison(self) -> list[str]:
        """Each other target's decode against the first target's, with what bounds each side."""
        costed = [r for r in self.results if r.ok and r.steps]
        if len(costed) < 2 or costed[0] is not self.results[0]:
            return []
        base = costed[0]

        def side(r: TargetGeneration) -> str:
            by = _mean_bound(r.steps)
            where = ", ".join(f"{k} {100 * v:.0f} %" for k, v in sorted(by.items(), key=lambda kv: -kv[1])[:2]
                              if v >= 0.005)
            held = [k.replace("_", " ") for k, v in r.residency.items() if v == "resident"]
            stays = f"{' and '.join(held)} resident; " if held else "weights read from memory every step; "
            gap = f"; fixed per-kernel overhead {100 * r.decode_overhead_share:.0f} % of the time" \
                if r.decode_overhead_share >= 0.25 else ""
            return f"{r.target}: {stays}decode bound by {where}{gap}"

        out = []
        for r in costed[1:]:
            t, e = r.decode_s / base.decode_s, r.decode_j / base.decode_j
            scopes = "" if r.scope.get("label") == base.scope.get("label") else (
                f"; the energies count different parts: {r.target} {r.scope.get('label', '?')}, {base.target} "
                f"{base.scope.get('label', '?')}")
            out.append(f"decode {r.target} vs {base.target}: {_times(t)} the time, {_times(e)} the energy per token "
                       f"({side(r)}; {side(base)}{scopes})")
        return out


# ------------------------------------------------------------------ costing
def contexts(spec: GenerateSpec) -> list[int]:
    """The decode contexts costed: every one when there are few, else ``samples`` spread evenly."""
    first, last = spec.prompt, spec.prompt + spec.tokens - 2
    if last < first:
        return []
    if last - first + 1 <= spec.samples:
        return list(range(first, last + 1))
    return sorted({int(round(x)) for x in np.linspace(first, last, spec.samples)})


def generate(model: "str | os.PathLike | Any", target: "str | Sequence[str]", *, prompt: int, tokens: int,
             samples: int = 9, batch: int = 1, passes: str | None = None, sets: Sequence[str] = ()) -> Generation:
    """Cost generating ``tokens`` tokens after a ``prompt``-token prompt on each target.

    ``model``: an ONNX file or ModelProto of a decoder (with or without past inputs);
    ``passes``/``sets`` as :func:`nvmc.compile` (applied at every step's shapes).

        >>> g = generate("tests/data/gpt2/tiny_gpt2_past.onnx", ["sram", "sot-mram"], prompt=64, tokens=64)
        >>> sram, sot = (r.summary() for r in g.results)
        >>> sot["decode_j_per_token"] < sram["decode_j_per_token"]     # the MRAM L2 hardly leaks
        True
        >>> g.to_dict()["kv_cache"]["bytes_total"]                    # 1 KiB per token, 127 tokens cached
        130048
    """
    import onnx

    from nvmc.api import _check_batch
    from nvmc.frontend.onnx_import import read_model
    from nvmc.pipeline import Costing, resolve_targets

    spec = GenerateSpec(prompt, tokens, samples).checked()
    batch = _check_batch(batch)
    proto = model if isinstance(model, onnx.ModelProto) else read_model(model)  # the errors every command gives
    decoder = Decoder.of(proto)
    names = list(target) if isinstance(target, (list, tuple)) else [target]
    ctx = contexts(spec)
    costing = Costing()
    targets = costing.targets(resolve_targets(names, tuple(sets)))
    prefill_graph, pre_wl, step_wls, how = workloads(proto, decoder, spec, ctx, batch, passes, targets)

    def cost(workload):
        return costing.estimates(workload, targets, batch=batch, pipeline=passes or "", leading=batch)

    first = cost(pre_wl)
    steps = [cost(w) for w in step_wls]
    per_token = kv_per_token(proto, decoder, batch) if decoder.past else None
    weights = int(pre_wl.totals["weight_bytes"])
    need = weights + (per_token or 0) * (prompt + tokens - 1)
    results = []
    for i in range(len(first)):
        pre = first[i]
        ests = [s[i] for s in steps]
        bad = next((e for e in (pre, *ests) if not e.ok), None)
        if bad is not None:
            results.append(TargetGeneration(pre.target, pre.family, False, bad.reason, bad.status))
            continue
        costed = [_step(c, e) for c, e in zip(ctx, ests)]
        all_ctx = np.arange(prompt, prompt + tokens - 1)
        lat = np.interp(all_ctx, ctx, [s.latency_s for s in costed]) if ctx else np.zeros(0)
        energy = np.interp(all_ctx, ctx, [s.energy_j for s in costed]) if ctx else np.zeros(0)
        results.append(TargetGeneration(
            pre.target, pre.family, True, prefill=_step(0, pre), steps=costed,
            per_token_latency_s=np.concatenate([[pre.totals["latency_s"]], lat]),
            per_token_energy_j=np.concatenate([[pre.totals["energy_j"]], energy]),
            memories=memories(ests[-1] if ests else pre, need),
            notes=list(dict.fromkeys(ests[-1].notes if ests else [])),
            residency={k: pre.info[k] for k in ("weights", "kv_cache") if isinstance(pre.info.get(k), str)},
            scope=dict(pre.scope), batch=batch, area_mm2=pre.area_mm2))
    source = "" if isinstance(model, onnx.ModelProto) else str(model)
    return Generation(source, spec, decoder, batch, per_token, weights, results, ctx, how, prefill_graph)


MEASURE_SAMPLES = 2   # input draws for measured columns: one decode step's activations, not a dataset


def workloads(proto, decoder: Decoder, spec: GenerateSpec, ctx: list[int], batch: int, passes: str | None, targets):
    """The prefill's graph (after the passes) and workload, and a workload per decode context, with
    the columns the targets measure.

    A decode step's graph is the same at every context; only the sizes that follow the cache
    change, each a polynomial in the context: of degree 1 with past inputs (one new token attends
    to ``c + 1`` positions), 2 without (``c + 1`` tokens attend to each other). So the graph is
    imported and analysed at ``degree + 1`` contexts, every other context's columns are that
    polynomial (exact for counts), and one more analysed context checks it; where it disagrees
    (a graph whose sizes follow the context otherwise), every context is analysed. Measured
    columns (activation density, ...) are measured once, at the first decode context, and reused
    for the prefill and the other steps (the same nodes read the same weights)."""
    from nvmc.api import load
    from nvmc.pipeline import measure, prepare
    from nvmc.passes.workload import Workload

    def analyse(dims):
        graph = load(proto, dims=dims)
        return graph, prepare(graph, passes)[1]

    graph, pre = analyse(decoder.prefill(spec.prompt, batch))
    if not ctx:
        return graph, measure(graph, pre, targets), [], ""
    degree = 1 if decoder.past else 2
    anchors = sorted({ctx[0], ctx[-1], *([ctx[len(ctx) // 2]] if degree == 2 else [])})
    check = next((c for c in ctx if c not in anchors), None)
    done = {}
    for c in [*anchors, *([check] if check is not None else [])]:
        g, done[c] = analyse(decoder.step(c, batch))
        if c == ctx[0]:
            first_graph = g
    measured_first = measure(first_graph, done[ctx[0]], targets, samples=MEASURE_SAMPLES)
    added = [k for k in measured_first.columns if k not in done[ctx[0]].columns]

    def with_measured(w):
        return Workload(w.names, w.ops, {**w.columns, **{k: measured_first.columns[k] for k in added}}, w.notices)

    # the prefill reads the same weights through the same nodes: its measured columns are the first step's
    pre = with_measured(pre) if pre.names == measured_first.names else measure(graph, pre, targets)

    fitted = _fit(done, anchors, degree) if check is not None and len(anchors) > degree else None
    if fitted is not None and not _agrees(fitted(check), done[check]):
        fitted = None
    if fitted is None:
        for c in ctx:
            if c not in done:
                done[c] = analyse(decoder.step(c, batch))[1]
        how = f"every decode context analysed ({len(ctx)})" if check is not None else ""
        return graph, pre, [with_measured(done[c]) for c in ctx], how
    how = (f"decode workloads: the graph analysed at contexts {', '.join(map(str, anchors))}, the others from "
           f"their exact degree-{degree} polynomial in the context (checked at {check})"
           + (f"; {', '.join(added)} measured at context {ctx[0]} ({MEASURE_SAMPLES} seeded input draws) and reused "
              "for the prefill and every step" if added else ""))
    return graph, pre, [with_measured(done[c] if c in done else fitted(c)) for c in ctx], how


def _fit(done: dict, anchors: list[int], degree: int):
    """A function context -> Workload whose numeric columns are the polynomial through ``anchors``."""
    from nvmc.passes.workload import Workload

    base = done[anchors[0]]
    if any(done[c].names != base.names for c in anchors):
        return None
    x = np.array(anchors, dtype=np.float64)
    coeffs = {}
    for key, col in base.columns.items():
        ys = np.vstack([np.asarray(done[c].columns[key], dtype=np.float64) for c in anchors])
        if col.dtype.kind not in "iuf" or not np.all(np.isfinite(ys)):
            if not all(np.array_equal(done[c].columns[key], col) for c in anchors):
                return None
            continue
        coeffs[key] = np.polyfit(x, ys, degree)

    def at(c: int) -> Workload:
        cols = dict(base.columns)
        for key, k in coeffs.items():
            v = np.polyval(k, float(c))
            cols[key] = np.rint(v).astype(base.columns[key].dtype) if base.columns[key].dtype.kind in "iu" else v
        return Workload(base.names, base.ops, cols, base.notices)

    return at


def _agrees(a, b) -> bool:
    if a.names != b.names:
        return False
    for key, col in b.columns.items():
        mine = a.columns.get(key)
        if mine is None or (col.dtype.kind in "iuf"
                            and not np.allclose(mine, col, rtol=1e-9, atol=1e-6, equal_nan=True)):
            return False
    return True


def kv_per_token(model, decoder: Decoder, batch: int) -> int:
    """Bytes the KV cache grows by per token: each past input's size at one position."""
    from onnx import helper

    total = 0
    for value in model.graph.input:
        if value.name not in decoder.past_inputs:
            continue
        t = value.type.tensor_type
        size = 1   # Decoder.of made sure a named dim here is the batch or the past length
        for d in t.shape.dim:
            size *= batch if d.dim_param == decoder.batch else 1 if d.dim_param else d.dim_value
        total += size * np.dtype(helper.tensor_dtype_to_np_dtype(t.elem_type)).itemsize
    return total


def _step(context: int, est) -> Step:
    """A costed step: which component bounds each node's work (the overhead apart), latency-weighted."""
    lat = dict(est.latency)
    total = float(est.node_latency.sum())
    overhead = float(lat.pop("overhead").sum()) / total if "overhead" in lat and total > 0 else 0.0
    names = list(lat)
    if not names or total <= 0:
        return Step(context, est.totals["latency_s"], est.totals["energy_j"], 0.0, {}, overhead)
    stack = np.vstack([lat[k] for k in names])
    work = stack.max(axis=0)
    top = np.argmax(stack, axis=0)
    bound = {names[k]: float(work[top == k].sum() / work.sum()) for k in set(top.tolist())} if work.sum() > 0 else {}
    memory = sum(v for k, v in bound.items() if k in MEMORY_COMPONENTS)
    return Step(context, est.totals["latency_s"], est.totals["energy_j"], memory, bound, overhead)


def _times(x: float) -> str:
    return f"{x:.3g}x" if x >= 1 else f"1/{1 / x:.3g}"


def _over_steps(steps: list[Step], values: Sequence[float]) -> float:
    """The mean of a per-step figure, weighted by the steps' latency."""
    w = np.array([s.latency_s for s in steps])
    return float(np.dot(w, values) / w.sum())


def _mean_bound(steps: list[Step]) -> dict[str, float]:
    keys = sorted({k for s in steps for k in s.bound_by})
    return {k: _over_steps(steps, [s.bound_by.get(k, 0.0) for s in steps]) for k in keys}


def memories(est, need_bytes: int) -> list[dict[str, Any]]:
    """The target's memories that have a capacity (its ``*_capacity_bytes`` facts) and whether the
    weights plus the final KV cache fit each; an empty list: the family models no capacity."""
    out = []
    for key, value in est.info.items():
        if not key.endswith("capacity_bytes") or key.startswith("declared") or not isinstance(value, (int, float)):
            continue
        base = key[: -len("capacity_bytes")].rstrip("_")
        out.append({"memory": _MEMORY_NAMES.get(base, base), "capacity_bytes": int(value),
                    "need_bytes": int(need_bytes), "fits": bool(need_bytes <= value)})
    return out
