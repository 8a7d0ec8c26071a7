"""Running a sweep: pending points -> tasks -> a runner -> rows into the store as tasks finish.

Runners (each yields the rows of a task as soon as it is done, or the exception that lost
the task: a worker that died, a cluster that dropped it; its points stay pending for the
next run instead of being stored as failures):

* ``serial``: in this process (``workers=0``); for debugging and small sweeps.
* ``local`` (default): ``workers`` processes on this machine (fork: they start with nvmc
  already imported), fed with group affinity so that each (model, pipeline) is analysed
  about once (_Dispatcher). A worker exits by itself when the sweep process disappears, so
  a killed sweep leaves no stray workers behind.
* ``dask``: ``scheduler="tcp://host:8786"`` sends the same tasks to an existing Dask
  distributed cluster (the ``cluster`` extra): one analysis task per (model, pipeline), on
  which that group's chunks depend (the scheduler runs them where the workload is, or
  moves it: a few arrays). The model files go to the cluster once each (scattered), target
  files travel inside the tasks. The rows come back here; only this process writes the
  database.

Tasks hold at most ``chunk`` points of one (model, pipeline), so import and analysis run
once per group on a worker, and a kill loses at most the tasks in flight.
"""

from __future__ import annotations

import math
import os
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Callable, Iterator

from nvmc.ir.errors import NvmcError
from nvmc.ir.files import read_input

from .spec import SweepSpec
from .store import STATUSES, Store
from .worker import Task, TaskPoint, analyse, evaluate


@dataclass
class Summary:
    """What a run did and where the spec's points stand now."""

    total: int
    skipped: int                                  # already in the database at the start
    ran: int
    seconds: float
    counts: dict[str, int] = field(default_factory=dict)   # status -> points of the spec
    errors: list[tuple[str, str]] = field(default_factory=list)   # (point label, message), first few
    runner: str = "local"
    workers: int = 1
    lost: list[str] = field(default_factory=list)   # why tasks came back without rows (their points stay pending)

    @property
    def rate(self) -> float:
        return self.ran / self.seconds if self.seconds > 0 else math.inf


def make_tasks(spec: SweepSpec, pending: set[str], chunk: int) -> list[Task]:
    """Chunks of at most ``chunk`` pending points, each of one (model, pipeline) group."""
    tasks = []
    for (m, pipeline), points in spec.groups().items():
        todo = [TaskPoint(p.id, spec.targets[p.target], p.params, p.batch) for p in points if p.id in pending]
        for i in range(0, len(todo), chunk):
            tasks.append(Task(spec.name, spec.models[m], pipeline, todo[i:i + chunk], spec.version, spec.costing,
                              spec.generate))
    return tasks


def default_chunk(pending: int, workers: int) -> int:
    """About 8 tasks per worker (balance), at most 32 points (a kill loses little), at least 1."""
    return max(1, min(32, math.ceil(pending / max(1, 8 * workers))))


def run_sweep(spec: SweepSpec, store: Store, *, workers: int | None = None, scheduler: str | None = None,
              chunk: int | None = None, retry_errors: bool = False,
              on_progress: Callable[[int, int], None] | None = None,
              on_start: Callable[[int, int], None] | None = None) -> Summary:
    """Run the spec's points that the store lacks; returns a Summary.

    ``workers``: local processes (default: CPU count; 0 runs in this process); ignored with
    ``scheduler``. ``on_start(total, already_done)`` and ``on_progress(points_done_now, rows)``
    drive a progress display.
    """
    if scheduler:
        check_scheduler(scheduler)
    ids = [p.id for p in spec.points]
    if retry_errors:
        store.forget_errors(ids)
    done = store.statuses(ids)
    pending = {pid for pid in ids if pid not in done}
    workers = (os.cpu_count() or 1) if workers is None else workers
    if workers < 0:
        raise NvmcError(f"--workers must be >= 0, got {workers}")
    runner = "dask" if scheduler else ("serial" if workers == 0 else "local")
    tasks = make_tasks(spec, pending, chunk or default_chunk(len(pending), max(1, workers)))
    start = time.perf_counter()
    local = _LocalWorkers(min(workers, len(tasks))) if runner == "local" and tasks else None
    ran = 0
    lost: list[str] = []
    results = None
    finished = False
    try:
        if on_start:
            on_start(len(ids), len(done))
        store.start_sweep(spec)
        if runner == "dask":
            results = _run_dask(tasks, scheduler)
        elif local is None:
            results = ((t, evaluate(t)) for t in tasks)
        else:
            results = _run_local(tasks, local)
        for task, rows in results:
            if isinstance(rows, BaseException):   # the runner lost the task: its points stay pending
                lost.append(f"{len(task.points)} points of {task.model.label}: {type(rows).__name__}: {rows}")
                continue
            store.write(rows)
            ran += len(rows)
            if on_progress:
                on_progress(len(rows), ran)
        finished = True
    finally:
        if results is not None:
            results.close()
        if local is not None:
            local.close(now=not finished)   # interrupted: stop the workers, do not let them finish
    seconds = time.perf_counter() - start
    if not pending or ran == len(pending):
        store.finish_sweep(spec.name)
    summary = Summary(len(ids), len(done), ran, seconds, runner=runner,
                      workers=workers if runner == "local" else (1 if runner == "serial" else 0), lost=lost)
    fill_status(spec, store, summary)
    return summary


def fill_status(spec: SweepSpec, store: Store, summary: Summary) -> None:
    statuses = store.statuses(p.id for p in spec.points)
    summary.counts = {s: 0 for s in (*STATUSES, "pending")}
    for p in spec.points:
        summary.counts[statuses.get(p.id, "pending")] += 1
    if summary.counts["error"]:
        errors = [r for r in store.rows([p.id for p in spec.points]) if r["status"] == "error"]
        summary.errors = [(label(r), r["error"]) for r in errors[:5]]


def label(row: dict) -> str:
    """export.label_of and the batch: ``m.onnx sram capacity=4MiB batch=8``."""
    from .export import label_of

    return label_of(row) + (f" batch={row['batch']}" if row.get("batch") else "")


# ------------------------------------------------------------------ runners
class _LocalWorkers:
    """``n`` forked worker processes, each with its own pipe, so that the dispatcher chooses
    which worker runs which task (group affinity). Started before any thread of this
    process (the progress bar's), as forking is only safe then."""

    def __init__(self, n: int):
        import multiprocessing

        context = multiprocessing.get_context("fork")
        self.conns, self.procs = [], []
        for _ in range(n):
            parent, child = context.Pipe()
            proc = context.Process(target=_serve, args=(child, os.getpid()), daemon=True,
                                   name="nvmc-sweep-worker")
            proc.start()
            child.close()
            self.conns.append(parent)
            self.procs.append(proc)

    def close(self, now: bool = False) -> None:
        for conn in self.conns:
            try:
                conn.send(None)
            except OSError:
                pass
        for proc in self.procs:
            if now:
                proc.terminate()
            proc.join(timeout=5)
            if proc.is_alive():
                proc.terminate()
                proc.join(timeout=5)
        for conn in self.conns:
            conn.close()


def _serve(conn, parent: int) -> None:
    """A local worker: tasks in, rows out, until None, a closed pipe or a gone parent."""
    import signal

    from .worker import watch_parent

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the sweep process's to handle
    watch_parent(parent)
    while True:
        try:
            task = conn.recv()
        except (EOFError, OSError):
            return
        if task is None:
            return
        try:
            reply = ("rows", evaluate(task))
        except Exception as e:  # noqa: BLE001 - evaluate records point failures; this is anything else
            reply = ("lost", f"{type(e).__name__}: {e}")
        conn.send(reply)


def _run_local(tasks: list[Task], workers: _LocalWorkers) -> Iterator[tuple[Task, list[dict]]]:
    """Feed the workers with group affinity (_Dispatcher), ``_IN_FLIGHT`` tasks each. A worker
    that dies (killed, out of memory) loses its own tasks (they come back as exceptions: their
    points stay pending); the others go on with the rest."""
    from multiprocessing.connection import wait as wait_any

    dispatch = _Dispatcher(tasks)
    queued: list[list[Task]] = [[] for _ in workers.conns]
    dead: set[int] = set()
    lost: list[Task] = []
    died = "a worker process died (out of memory?); run the same command again to resume, perhaps with fewer --workers"

    def bury(w: int) -> None:  # a dead worker's queued tasks are lost
        dead.add(w)
        lost.extend(queued[w])
        queued[w] = []

    def feed(w: int) -> None:
        task = dispatch.next_for(w) if w not in dead else None
        if task is None:
            return
        queued[w].append(task)
        try:
            workers.conns[w].send(task)
        except OSError:  # it died before it could take the task
            bury(w)

    for w in range(len(workers.conns)):
        for _ in range(_IN_FLIGHT):
            feed(w)
    while any(queued) or lost:
        while lost:
            yield lost.pop(0), RuntimeError(died)
        for conn in wait_any([c for c, q in zip(workers.conns, queued) if q]) if any(queued) else ():
            w = workers.conns.index(conn)
            try:
                kind, payload = conn.recv()
            except (EOFError, OSError):
                bury(w)
                continue
            task = queued[w].pop(0)
            feed(w)
            yield task, (payload if kind == "rows" else RuntimeError(payload))
    while (task := dispatch.next_for(0)) is not None:  # every worker died: the rest stays pending
        yield task, RuntimeError("no worker process left: " + died)


_IN_FLIGHT = 2  # tasks queued per local worker: one running, one ready while this process writes rows


class _Dispatcher:
    """Which task a local worker gets next: more of the (model, pipeline) group it has
    analysed while any is left; else a group no worker has started (the largest); else a
    share of the largest remaining group. So each group is analysed about once, not once
    per worker, and no worker idles while tasks remain."""

    def __init__(self, tasks: list[Task]):
        self.left: dict[tuple, deque[Task]] = {}
        for t in tasks:
            self.left.setdefault(_group(t), deque()).append(t)
        self.current: dict[int, tuple] = {}
        self.started: set[tuple] = set()

    def next_for(self, w: int) -> Task | None:
        key = self.current.get(w)
        if key not in self.left:
            fresh = [k for k in self.left if k not in self.started]
            pool = fresh or list(self.left)
            if not pool:
                return None
            key = max(pool, key=lambda k: len(self.left[k]))
            self.current[w] = key
            self.started.add(key)
        queue = self.left[key]
        task = queue.popleft()
        if not queue:
            del self.left[key]
        return task


def _group(task: Task) -> tuple:
    return task.model.sha256, task.model.input_shapes, task.pipeline


def _run_dask(tasks: list[Task], scheduler: str) -> Iterator[tuple[Task, list[dict]]]:
    try:
        from distributed import Client, as_completed
    except ImportError:
        raise NvmcError("--scheduler needs dask.distributed, which is not installed",
                        hint="pip install 'nvmc[cluster]'") from None
    if not tasks:
        return
    hint = ("start one with 'dask scheduler' (and workers with 'dask worker ADDRESS'), "
            "or leave --scheduler out to run locally")
    _probe(scheduler, hint)
    try:
        client = Client(scheduler, timeout="20s", set_as_default=False)
    except (OSError, TimeoutError) as e:
        raise NvmcError(f"cannot reach the Dask scheduler: {e}", where=f"--scheduler {scheduler}",
                        hint=hint) from None
    try:
        paths = {t.model.sha256: t.model.path for t in tasks}
        blobs = {sha: _model_bytes(client, path) for sha, path in paths.items()}
        analysed = {}  # one analysis task per (model, pipeline); its chunks depend on it (data locality)
        futures = {}
        for t in tasks:
            key = _group(t)
            if key not in analysed:
                analysed[key] = client.submit(analyse, t, blobs[t.model.sha256], pure=False)
            futures[client.submit(evaluate, t, None, analysed[key], pure=False)] = t
        for f in as_completed(futures, loop=client.loop):
            task = futures[f]
            try:
                rows = f.result()
            except Exception as e:  # noqa: BLE001 - a lost task (e.g. KilledWorker) stays pending; the sweep goes on
                rows = e
            yield task, rows
    finally:
        client.close()


def check_scheduler(scheduler: str) -> tuple[str, int]:
    """(host, port) of a Dask scheduler address; raises for anything else (before any connection)."""
    from urllib.parse import urlsplit

    scheme = scheduler.partition("://")[0] if "://" in scheduler else ""
    hint = "give tcp://host:8786 (or tls://host:8786)"
    if scheme not in ("tcp", "tls"):  # inproc://, file://, ucx:// ... are not a cluster nvmc can use
        raise NvmcError(f"'{scheduler}' is not a Dask scheduler address", where=f"--scheduler {scheduler}", hint=hint)
    try:
        url = urlsplit(scheduler)
        host, port = url.hostname, url.port
    except ValueError:
        host = port = None
    if not host or not port:
        raise NvmcError("expected a scheduler address such as tcp://host:8786", where=f"--scheduler {scheduler}",
                        hint=hint)
    return host, port


def _probe(scheduler: str, hint: str) -> None:
    """Fail at once on a refused address (the Dask client would retry until its timeout)."""
    import socket

    host, port = check_scheduler(scheduler)
    try:
        socket.create_connection((host, port), timeout=10).close()
    except OSError as e:
        raise NvmcError(f"cannot reach the Dask scheduler: {e.strerror or e}", where=f"--scheduler {scheduler}",
                        hint=hint) from None


def _model_bytes(client, path: str):
    """The model's bytes scattered to the cluster once (an .onnx file); None for other files."""
    if not path.endswith(".onnx"):
        return None
    return client.scatter(read_input(path, "model file"), hash=True)

