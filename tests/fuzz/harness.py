"""Run one `nvmc` CLI invocation in-process, bounded in time, and check what it left behind.

A fuzz case is: write some input files, call ``run_cli([...])``, then ``classify`` the
outcome and check that the inputs are byte-identical (``Checksums``). In-process runs cost
about a millisecond of overhead instead of the ~1 s of a fresh interpreter, so thousands
of cases fit a CI budget; a few real subprocess runs (tests/conftest.py ``run_nvmc``)
confirm that the real entry point prints the same clean messages.

    from fuzz.harness import Checksums, classify, run_cli   # tests/ is on sys.path (conftest)

    sums = Checksums(model_path)                  # hashes every file under the paths
    code, stderr = run_cli(["verify", str(model_path)], timeout=10)
    outcome = classify(code, stderr)              # "ok" | "error"; AssertionError otherwise
    sums.assert_unchanged()                       # AssertionError naming changed files
    code, stdout, stderr = run_cli_io(["analyze", str(model_path)])   # stdout kept (renderers)

Wrap a loop of cases in ``memory_limit()`` so that an attempt to allocate a huge tensor
fails at once (and shows up as a crasher) instead of swapping the shared machine, and a
derandomized hypothesis test in ``reproducible_hypothesis()`` so that its examples do not
depend on the tests that ran before it.

The contract every case must meet (issue 15): exit 0 (a valid result) or exit 2 with one
``error:`` line (no "Traceback", no "internal error"), within the per-case timeout.
"""

from __future__ import annotations

import contextlib
import faulthandler
import hashlib
import io
import os
import signal
import sys
from pathlib import Path
from typing import NamedTuple

__all__ = ["CaseTimeout", "Checksums", "CliOutcome", "CliResult", "classify", "memory_limit", "reproducible_hypothesis",
           "run_cli", "run_cli_io", "time_limit"]

DEFAULT_TIMEOUT_S = 10.0
# A hang inside C code (numpy, protobuf) cannot be interrupted by a Python signal handler;
# faulthandler then dumps every thread's stack and ends the process after this much more.
HARD_KILL_GRACE_S = 50.0


class CaseTimeout(BaseException):
    """Raised inside the case when it runs past its timeout.

    A BaseException, so the CLI's own ``except Exception`` cannot swallow it.
    """


class CliOutcome(NamedTuple):
    code: int
    stderr: str


class CliResult(NamedTuple):
    code: int
    stdout: str
    stderr: str


def _on_alarm(signum, frame):
    raise CaseTimeout()


@contextlib.contextmanager
def time_limit(seconds: float):
    """Raise ``CaseTimeout`` in the main thread after ``seconds`` (POSIX, main thread only)."""
    previous = signal.signal(signal.SIGALRM, _on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    real_stderr = sys.__stderr__  # faulthandler needs a real file descriptor
    if real_stderr is not None:
        faulthandler.dump_traceback_later(seconds + HARD_KILL_GRACE_S, exit=True, file=real_stderr)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        if real_stderr is not None:
            faulthandler.cancel_dump_traceback_later()
        signal.signal(signal.SIGALRM, previous)


@contextlib.contextmanager
def memory_limit(extra_bytes: int = 4 << 30):
    """Cap this process's address space at its current size + ``extra_bytes`` (Linux).

    Wrap a whole fuzz loop in it: a case that tries to allocate a tensor of 2**40 elements
    then fails with MemoryError (exit 70, a crasher) instead of swapping the machine.
    Does nothing where ``resource`` or /proc is unavailable.
    """
    try:
        import resource

        with open("/proc/self/statm") as f:
            current = int(f.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    except (ImportError, OSError, ValueError):
        yield
        return
    previous = resource.getrlimit(resource.RLIMIT_AS)
    cap = current + extra_bytes
    if previous[1] != resource.RLIM_INFINITY:
        cap = min(cap, previous[1])
    resource.setrlimit(resource.RLIMIT_AS, (cap, previous[1]))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_AS, previous)


@contextlib.contextmanager
def reproducible_hypothesis():
    """Make ``@settings(derandomize=True)`` examples the same whatever ran before.

    Hypothesis (6.131+) mixes literals found in the local modules loaded so far into the
    values it draws, so the examples of a derandomized test change with the tests that ran
    before it in the process. Inside this block it draws from its own constants only. A
    no-op where that Hypothesis internal does not exist.
    """
    try:
        from hypothesis.internal.conjecture import providers
        from hypothesis.internal.constants_ast import Constants
    except ImportError:
        yield
        return
    if not hasattr(providers, "_get_local_constants") or not hasattr(providers, "CONSTANTS_CACHE"):
        yield
        return
    saved = providers._get_local_constants
    providers._get_local_constants = Constants
    providers.CONSTANTS_CACHE.cache.clear()
    try:
        yield
    finally:
        providers._get_local_constants = saved
        providers.CONSTANTS_CACHE.cache.clear()


def run_cli(argv: list[str], *, timeout: float = DEFAULT_TIMEOUT_S, env: dict[str, str] | None = None) -> CliOutcome:
    """Run ``nvmc argv...`` in this process; return (exit code, captured stderr).

    stdout is captured and dropped (outputs that matter go to files; ``run_cli_io`` keeps it).
    ``env`` entries are set for the call and restored afterwards (NO_COLOR=1 and COLUMNS=200
    always are). A run past ``timeout`` seconds raises ``AssertionError`` naming the argv, as
    does an exception escaping ``nvmc.cli.main`` (it must end every failure itself).
    """
    code, _, stderr = run_cli_io(argv, timeout=timeout, env=env)
    return CliOutcome(code, stderr)


def run_cli_io(argv: list[str], *, timeout: float = DEFAULT_TIMEOUT_S, env: dict[str, str] | None = None) -> CliResult:
    """As ``run_cli``, returning (exit code, captured stdout, captured stderr).

    Each call starts as a fresh process would: no file read by an earlier call counts as an
    input of this one (nvmc/ir/files.py refuses to write over the inputs of a run).
    """
    from nvmc.cli import main
    from nvmc.ir.files import forget_inputs

    overrides = {"NO_COLOR": "1", "COLUMNS": "200", **(env or {})}
    saved = {k: os.environ.get(k) for k in overrides}
    os.environ.update(overrides)
    forget_inputs()
    err, out = io.StringIO(), io.StringIO()
    code = 0
    try:
        with time_limit(timeout), contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
            try:
                main(list(argv))
            except SystemExit as e:
                code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    except CaseTimeout:
        raise AssertionError(f"nvmc {' '.join(argv)} ran past its {timeout:g} s timeout") from None
    except Exception as e:  # main() must turn every exception into an exit code
        raise AssertionError(f"nvmc {' '.join(argv)} raised {type(e).__name__}: {e}") from e
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    return CliResult(code, out.getvalue(), err.getvalue())


def classify(code: int, stderr: str, *, what: str = "", ok_codes: tuple[int, ...] = (0,)) -> str:
    """"ok" for an exit code in ``ok_codes``, "error" for exit 2 with exactly one ``error:`` line.

    ``ok_codes`` adds results that are not errors (``nvmc compile`` exits 1 when a model
    does not fit a target, 3 when a --budget is exceeded).
    Anything else (another exit code, a traceback, "internal error", no or several error
    lines) raises AssertionError with ``what`` (e.g. the argv and the case's seed) and stderr.
    """
    label = f"{what}: " if what else ""
    if "Traceback" in stderr or "internal error" in stderr:
        raise AssertionError(f"{label}exit {code} with a crash:\n{stderr}")
    if code in ok_codes:
        return "ok"
    if code != 2:
        raise AssertionError(f"{label}exit {code} (want {' or '.join(map(str, (*ok_codes, 2)))}):\n{stderr}")
    errors = [ln for ln in stderr.splitlines() if ln.lower().startswith("error:")]
    if len(errors) != 1:
        raise AssertionError(f"{label}exit 2 with {len(errors)} 'error:' lines (want 1):\n{stderr}")
    return "error"


def _hash_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


class Checksums:
    """SHA-256 of every file under the given files and folders, taken at construction.

    Symlinks are recorded by their target (not followed), so a case cannot pass by
    rewriting what a link points to outside the tree. ``assert_unchanged()`` fails on any
    file that changed, vanished or became a different kind; new files are allowed (outputs).
    """

    def __init__(self, *paths: str | os.PathLike):
        self.paths = [Path(p) for p in paths]
        self.before = self.snapshot()

    def snapshot(self) -> dict[str, str]:
        sums: dict[str, str] = {}
        for root in self.paths:
            items = [root] if not root.is_dir() or root.is_symlink() else sorted(root.rglob("*"))
            for p in items:
                if p.is_symlink():
                    sums[str(p)] = "link:" + os.readlink(p)
                elif p.is_file():
                    sums[str(p)] = _hash_file(p)
                elif not p.exists() and p == root:
                    sums[str(p)] = "missing"
        return sums

    def changed(self) -> list[str]:
        after = self.snapshot()
        return [p for p, h in self.before.items() if after.get(p, "missing") != h]

    def assert_unchanged(self, what: str = "") -> None:
        bad = self.changed()
        if bad:
            label = f"{what}: " if what else ""
            raise AssertionError(f"{label}inputs modified or removed: {', '.join(bad)}")
