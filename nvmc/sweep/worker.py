"""What a worker runs: one task = a chunk of points sharing a (model, pipeline).

Runs in a local worker process, a Dask worker (process or thread) or in-process. The graph
is imported, transformed and analysed once per (model, pipeline) and kept in a small
per-process cache, so the next chunk of the same group on this worker reuses it. A task
carries the target files' bytes (and, for a cluster, the model's bytes), so a remote worker
needs only nvmc installed, not the files.

A failing point becomes a row with status "error" and the message; the task goes on.

A generation sweep (the spec's ``[generate]``) costs each point with ``nvmc.generate`` instead
of one forward pass: the group's "analysis" is then the model's ONNX graph and its decoder
binding (nvmc/generation.py: Decoder), and a model that cannot generate (no ``[batch, seq]``
token input) makes every point of the group ``not_applicable`` with the reason.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import threading
import time
import traceback
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nvmc import report

from .spec import ModelRef, TargetRef, file_sha256
from .store import encode_report, timestamp

_CACHE_SIZE = 8


@dataclass
class TaskPoint:
    id: str
    target: TargetRef
    params: tuple[tuple[str, Any], ...]
    batch: int | None


@dataclass
class Task:
    """Points of one (model, pipeline) group; ``version`` is the nvmc the sweep was planned with."""

    sweep: str
    model: ModelRef
    pipeline: str
    points: list[TaskPoint]
    version: str
    costing: tuple[tuple[str, Any], ...] = ()   # the spec's [costing]: nvmc.pipeline.Costing's options
    generate: tuple[tuple[str, int], ...] = ()  # the spec's [generate] (prompt, samples, tokens); () = forward pass


class _Cache:
    """A small LRU of analysed workloads (or the error that analysis raised), per process.

    Thread-safe: Dask may run several tasks of one process in threads; a per-key lock makes
    the second thread wait for the first's analysis instead of repeating it."""

    def __init__(self, size: int):
        self.size = size
        self.items: OrderedDict = OrderedDict()
        self.lock = threading.Lock()
        self.key_locks: dict = {}

    def get(self, key, make):
        with self.lock:
            if key in self.items:
                self.items.move_to_end(key)
                return self.items[key]
            key_lock = self.key_locks.setdefault(key, threading.Lock())
        with key_lock:
            with self.lock:
                if key in self.items:
                    return self.items[key]
            value = make()
            with self.lock:
                self.items[key] = value
                while len(self.items) > self.size:
                    self.items.popitem(last=False)
                self.key_locks.pop(key, None)
            return value


_WORKLOADS = _Cache(_CACHE_SIZE)
_TARGETS = _Cache(64)
analyses = 0  # how many (model, pipeline) analyses this process ran (tests check the reuse)


def analyse(task: Task, model_bytes: bytes | None = None):
    """The (workload, leading batch, measured accuracy) of the task's model after its pipeline (or the failure),
    through this process's cache. For a generation task: the model's ModelProto, or why it cannot generate."""
    if task.generate:
        return _WORKLOADS.get((task.model.sha256, "generate"), lambda: _decoder_model(task, model_bytes))
    requests = _requests(task)
    key = (task.model.sha256, task.model.input_shapes, task.pipeline, repr(requests))
    return _WORKLOADS.get(key, lambda: _analyse(task, model_bytes, requests))


def _requests(task: Task) -> list[dict]:
    """Workload columns the task's targets ask to be measured (nvmc/calibrate.py), as nvmc.compile does."""
    from nvmc.calibrate import requests_of

    try:
        return sorted(requests_of(_costing(task).targets([_target(p.target).with_overrides(list(p.params))
                                                          for p in task.points])), key=repr)
    except Exception:  # noqa: BLE001 - a bad target is reported by its own point
        return []


def _costing(task: Task):
    from nvmc.pipeline import Costing

    return Costing(**dict(task.costing))


def evaluate(task: Task, model_bytes: bytes | None = None, analysed=None) -> list[dict]:
    """Cost every point of ``task``; one row (a dict of the store's columns) per point.

    ``analysed``: the group's ``analyse`` result when the runner computed it elsewhere (Dask)."""
    import nvmc

    host = f"{socket.gethostname()}:{os.getpid()}"
    if task.version != nvmc.__version__:
        message = (f"this worker runs nvmc {nvmc.__version__}, the sweep was planned with {task.version}: "
                   "install the same nvmc on every worker")
        return [_error_row(task, p, message, 0.0, host) for p in task.points]
    start = time.perf_counter()
    if analysed is None:
        analysed = analyse(task, model_bytes)
    shared = (time.perf_counter() - start) / max(1, len(task.points))
    rows = []
    for p in task.points:
        t0 = time.perf_counter()
        if isinstance(analysed, _NotApplicable):
            rows.append(_error_row(task, p, analysed.message, time.perf_counter() - t0 + shared, host,
                                   status="not_applicable", batch=p.batch or 1))
            continue
        if isinstance(analysed, _Failure):
            rows.append(_error_row(task, p, analysed.message, shared, host))
            continue
        try:
            if task.generate:
                rows.append(_generation_row(task, p, analysed, t0 - shared, host))
                continue
            workload, (leading, declared), measured = analysed
            rows.append(_estimate(task, p, workload, p.batch or leading, t0 - shared, host, measured, declared))
        except Exception as e:  # noqa: BLE001 - a failing point is recorded; the sweep goes on
            rows.append(_error_row(task, p, _message(e), time.perf_counter() - t0 + shared, host))
    return rows


@dataclass
class _Failure:
    message: str


@dataclass
class _NotApplicable:
    """A model that every point of the group cannot cost (a generation sweep over a model that has no
    token input): a result, stored with the reason, not a failure."""

    message: str


def _model_source(task: Task, model_bytes: bytes | None):
    """The task's model as planned: its file's path (unchanged since), the ModelProto of the bytes sent
    to a remote worker, or a _Failure."""
    ref = task.model
    if Path(ref.path).is_file() and file_sha256(ref.path) == ref.sha256:
        return ref.path
    if model_bytes is not None:
        if hashlib.sha256(model_bytes).hexdigest() != ref.sha256:
            return _Failure(f"{ref.label}: the model bytes sent to the worker do not match the planned hash")
        import onnx

        return onnx.load_model_from_string(model_bytes)
    if Path(ref.path).is_file():
        return _Failure(f"{ref.label}: the model file changed since the sweep was planned; run the sweep again")
    return _Failure(f"{ref.label}: model file not found on worker {socket.gethostname()}")


def _decoder_model(task: Task, model_bytes: bytes | None):
    """A generation group's model: the ModelProto when nvmc.generate can bind its decode steps,
    else _NotApplicable (why) or _Failure (an unreadable model)."""
    global analyses
    from nvmc.generation import Decoder
    from nvmc.ir.errors import NvmcError

    analyses += 1
    if not task.model.path.endswith(".onnx"):
        return _NotApplicable(f"[generate] costs ONNX decoders; {task.model.label} is not an .onnx file")
    from nvmc.frontend.onnx_import import read_model  # the errors every command gives for a bad file

    try:
        proto = _model_source(task, model_bytes)
        proto = read_model(proto) if isinstance(proto, str) else proto
    except Exception as e:  # noqa: BLE001 - every point of the group records it
        return _Failure(_message(e))
    if isinstance(proto, _Failure):
        return proto
    try:
        Decoder.of(proto)
    except NvmcError as e:  # the model has no [batch, seq] token input, or dims that do not follow the sequence
        return _NotApplicable("[generate]: " + _reason(e).removeprefix("--generate "))
    return proto


def _generation_row(task: Task, p: TaskPoint, proto, t0: float, host: str) -> dict:
    """The row of a generation point: nvmc.generate at the point's target (with its parameters),
    pipeline and batch. Its figures cover the whole generation (docs/sweeps.md, "Generation sweeps"):
    latency_s and energy_j the prefill plus every decode step, throughput_ips generated tokens per
    second, energy_per_inference_j joules per generated token (both over every sequence of the batch);
    breakdown["generation"] holds nvmc.generate's figures, the report its whole nvmc.generation/1 dict."""
    from nvmc.backends import UnsupportedOpError
    from nvmc.generation import generate

    from .export import exact_pipeline

    settings = dict(task.generate)
    batch = p.batch or 1
    target = _target(p.target).with_overrides(list(p.params))
    row = _base_row(task, p, host)
    row.update(family=target.family, target_hash=target.hash, batch=batch)
    try:
        gen = generate(proto, [target], prompt=settings["prompt"], tokens=settings["tokens"],
                       samples=settings["samples"], batch=batch, passes=task.pipeline or None)
    except UnsupportedOpError as e:
        return _error_row(task, p, _reason(e), time.perf_counter() - t0, host, status="not_applicable",
                          family=target.family, target_hash=target.hash, batch=batch)
    data = gen.to_dict()
    result, summary = gen.results[0], data["targets"][0]
    report = {**data, "model": task.model.label, "model_sha256": task.model.sha256, "pipeline": task.pipeline,
              "params": dict(p.params)}
    figures = {k: v for k, v in summary.items() if k not in ("target", "family", "ok", "curve")}
    generation = {"prompt": gen.spec.prompt, "tokens": gen.spec.tokens, "samples": gen.spec.samples, "batch": batch,
                  "kv_cache_bytes_per_token": gen.kv_bytes_per_token, "kv_cache_bytes_total": gen.kv_bytes_total,
                  "weight_bytes": gen.weight_bytes, "contexts_costed": gen.contexts, "model_notes": gen.notes(),
                  **figures}
    row.update(breakdown=json.dumps({"generation": generation}, allow_nan=False), report=encode_report(report),
               elapsed_s=time.perf_counter() - t0, approximate=int(not exact_pipeline(task.pipeline)))
    if not result.ok:  # a step that does not fit the target (the prefill's buffers, ...): a result
        row.update(status="not_fitting", error=result.reason or None)
        return row
    generated = result.tokens * batch   # tokens out of the whole batch: every sequence gets `tokens`
    latency, energy = result.total_s, result.total_j
    row.update(status="ok", error=None, latency_s=latency, energy_j=energy, edp_js=energy * latency,
               throughput_ips=generated / latency if latency > 0 else None,
               energy_per_inference_j=energy / generated, area_mm2=summary.get("area_mm2"))
    return row


def _analyse(task: Task, model_bytes: bytes | None, requests: list[dict] = ()):
    """(workload, leading batch, measured accuracy) of the task's model after its pipeline, or a _Failure."""
    global analyses
    import nvmc
    from nvmc.api import _leading_dim, declared_batch
    from nvmc.calibrate import calibrate
    from nvmc.pipeline import prepare

    analyses += 1
    try:
        source = _model_source(task, model_bytes)
        if isinstance(source, _Failure):
            return source
        graph = nvmc.load(source, input_shapes={k: list(v) for k, v in task.model.input_shapes})
        _, workload, measured = prepare(graph, task.pipeline)  # the steps of nvmc.compile (nvmc/pipeline.py)
        return ((calibrate(graph, workload, requests) if requests else workload),
                (_leading_dim(graph), declared_batch(graph)), measured)
    except Exception as e:  # noqa: BLE001 - every point of the group records it
        return _Failure(_message(e))


def _target(ref: TargetRef):
    from nvmc.backends.target import parse_target

    return _TARGETS.get((ref.sha256, ref.path), lambda: parse_target(ref.data, Path(ref.path)))


def _estimate(task: Task, p: TaskPoint, workload, batch: int, t0: float, host: str, measured: dict | None,
              declared: int | None = None) -> dict:
    """The point's row: the estimate nvmc.compile would give (nvmc/pipeline.py), or why the
    target cannot run the model (status 'not_applicable': a result, not a failure)."""
    from nvmc.backends import UnsupportedOpError

    costing = _costing(task)
    target = costing.targets([_target(p.target).with_overrides(list(p.params))])[0]
    try:
        estimates = costing.estimates(workload, [target], batch=batch, pipeline=task.pipeline, compared=False,
                                      leading=declared)
    except UnsupportedOpError as e:
        return _error_row(task, p, _reason(e), time.perf_counter() - t0, host, status="not_applicable",
                          family=target.family, target_hash=target.hash, batch=batch)
    if len(estimates) != 1:
        raise ValueError("a sweep point is costed over one interconnect: list several as separate sweeps")
    est = estimates[0]
    report = est.to_dict()
    report["model"] = {"path": task.model.label, "sha256": task.model.sha256, "batch": batch}
    report["params"] = dict(p.params)
    if measured is not None:
        report["accuracy"] = dict(measured)
    totals = report["totals"]
    row = _base_row(task, p, host)
    row.update(status=est.status, error=est.reason or None, family=target.family, target_hash=target.hash,
               batch=batch, breakdown=json.dumps(report["breakdown"], allow_nan=False),
               report=encode_report(report), elapsed_s=time.perf_counter() - t0,
               carbon_g_per_inference=(est.carbon or {}).get("total_g_per_inference"),
               approximate=int(measured is not None),
               **{k: (measured or {}).get(k) for k in ("cosine", "sqnr_db", "top1_agreement")})
    row.update({k: totals.get(k) for k in METRICS})
    return row


METRICS = tuple(m.total for m in (*report.METRICS, report.MACS))  # the totals a row stores


def _base_row(task: Task, p: TaskPoint, host: str) -> dict:
    return {"point_id": p.id, "sweep": task.sweep, "model": task.model.label, "model_hash": task.model.sha256,
            "input_shapes": ";".join(f"{k}={'x'.join(map(str, v))}" for k, v in task.model.input_shapes),
            "target": p.target.name, "family": p.target.family, "target_hash": None, "pipeline": task.pipeline,
            "params": json.dumps(dict(p.params), sort_keys=True), "batch": p.batch, "nvmc_version": task.version,
            "host": host, "finished_at": timestamp(),
            **{k: None for k in METRICS}}


def _error_row(task: Task, p: TaskPoint, message: str, elapsed: float, host: str, status: str = "error",
               **fields) -> dict:
    """The row of a point with no estimate: failed ('error') or one the target cannot run ('not_applicable')."""
    row = _base_row(task, p, host)
    row.update(status=status, error=message, breakdown=None, report=None, elapsed_s=elapsed, **fields)
    return row


def _reason(e) -> str:
    """A not_applicable row's reason: a result, not an error (no "error:" prefix)."""
    return e.message + (f"; {e.hint}" if e.hint else "")


def _message(e: BaseException) -> str:
    from nvmc.ir.errors import NvmcError

    if isinstance(e, NvmcError):
        return e.render()
    tb = traceback.extract_tb(e.__traceback__)[-1:]
    where = f" (at {Path(tb[0].filename).name}:{tb[0].lineno})" if tb else ""
    return f"{type(e).__name__}: {e}{where}"


def watch_parent(parent: int) -> None:
    """Local pool initializer: exit when the sweep process is gone (e.g. killed with SIGKILL)."""
    def loop():
        while os.getppid() == parent:
            time.sleep(0.5)
        os._exit(0)

    threading.Thread(target=loop, daemon=True, name="nvmc-sweep-parent-watch").start()
