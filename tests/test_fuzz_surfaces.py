"""Fuzzing the surfaces of issue 21 ("Hardening II"): output paths, renderers, element types,
nesting depth and resource bombs, with generated cases (tests/fuzz/destinations.py,
hostile.py, dtype_models.py, bombs.py), run in-process through tests/fuzz/harness.py.

Every case must end in a result (exit 0; ``compile`` also 1: does not fit) or one clean
error (exit 2, one ``error:`` line, no traceback, no "internal error", never exit 70),
within its timeout, under an address-space cap, leaving every input byte-identical; stderr
never holds a character a terminal would act on nor a line over 2,200 characters. Each
surface adds its own invariants:

* output paths: exit 0 only for a regular file or a new name that is not an input, and then
  the file is there and parses (JSON strictly, CSV by the csv module, ONNX by the checker,
  .nvir by ``nvmc verify``, the database by sqlite3); otherwise exit 2 and nothing changed:
  devices, FIFOs, sockets, directories and links are what they were, no file is left behind;
* renderers: the terminal output holds no control character (NO_COLOR=1), a name with rich
  markup appears literally, CSV cells never start a formula, JSON is standard, an HTML page
  has only its own scripts and no tag from a name;
* element types: every onnx.TensorProto type is costed or refused by name; what
  ``nvmc ir -o`` writes reads back;
* nesting and bombs: a clean exit in bounded time, no MemoryError.

Seeds: ``NVMC_FUZZ_SEEDS`` (default 1, as CI runs it; 20 to 50 to hunt), starting at
``NVMC_FUZZ_SEED_BASE`` (default 0); a failure names its surface, seed and command line.
``NVMC_FUZZ_DUMP=path`` appends every failure there as it happens, ``NVMC_FUZZ_TRACE=path``
each command line before it runs (the last one names a case that killed the process), and
``NVMC_FUZZ_OPEN=1`` also draws, at full size, the slow cases of crashers left open
(``KNOWN_OPEN``). Crashers found here are replayed from
tests/data/fuzz_crashers/ (tests/fuzz/crashers.py) by test_fuzz_models.py.
"""

from __future__ import annotations

import collections
import contextlib
import os
import random
import shutil
import sqlite3
import time
from pathlib import Path

import numpy as np
import onnx
import pytest

from fuzz import bombs, crashers, destinations, dtype_models, hostile
from fuzz.harness import Checksums, classify, memory_limit, run_cli_io

pytestmark = pytest.mark.fuzz

REPO = Path(__file__).resolve().parents[1]
CNN = REPO / "examples" / "models" / "tiny_cnn.onnx"
TARGETS = REPO / "backends" / "targets"
SEEDS = int(os.environ.get("NVMC_FUZZ_SEEDS", "1"))
SEED_BASE = int(os.environ.get("NVMC_FUZZ_SEED_BASE", "0"))
TIMEOUT_S = 20.0
COMPILE_OK = (0, 1)  # 1: the model does not fit the target (a result)
FAMILY_TARGETS = ["sram", "systolic-sot-7nm", "rram-pim", "upmem", "simdram", "eie", "mensa", "cpu",
                  "racetrack-hdc"]  # one shipped target of each cost-model family
MEM_CAP = 2 << 30

TALLY: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
FAILURES: list[str] = []

# Crashers found here whose fix belongs to backends/ (another engineer's, being refactored):
# a failure whose message matches is counted as "open" and listed, not failed; each has a
# replay case in tests/data/fuzz_crashers/ (tests/fuzz/crashers.py OPEN_CASES). Remove an
# entry when its fix lands. NVMC_FUZZ_OPEN=1 also draws their slow cases at full size.
KNOWN_OPEN: dict = {}  # label -> pattern of a failure left open for another layer: none now
DRAW_OPEN = os.environ.get("NVMC_FUZZ_OPEN") == "1"
DUMP = os.environ.get("NVMC_FUZZ_DUMP")    # every failure, appended as it happens
TRACE = os.environ.get("NVMC_FUZZ_TRACE")  # each case's command line, written before it runs (names a hard crash)
OPEN_SEEN: collections.Counter = collections.Counter()


def seeds() -> range:
    return range(SEED_BASE, SEED_BASE + SEEDS)


@pytest.fixture(scope="module", autouse=True)
def _report(request):
    """Print the case counts per surface when the module is done (also without -s)."""
    start = time.perf_counter()
    for path in (DUMP, TRACE):
        if path:
            Path(path).write_text("")
    yield
    writer = request.config.pluginmanager.getplugin("terminalreporter")
    capture = request.config.pluginmanager.getplugin("capturemanager")
    if writer is None or not TALLY:
        return
    total = collections.Counter()
    for c in TALLY.values():
        total.update(c)
    lines = [f"fuzz (surfaces, seeds {SEED_BASE}..{SEED_BASE + SEEDS - 1}): "
             f"{sum(total[k] for k in ('ok', 'error', 'FAIL', 'open'))} "
             f"cases in {time.perf_counter() - start:.1f} s: {total['ok']} ok, {total['error']} clean errors, "
             f"{total['FAIL']} failures"]
    for surface, c in sorted(TALLY.items()):
        n = c["ok"] + c["error"] + c["FAIL"] + c["open"]
        lines.append(f"  {surface:<22} {n:5d} cases: {c['ok']} ok, {c['error']} clean errors"
                     + (f", {c['FAIL']} FAILURES" if c["FAIL"] else "")
                     + (f", {c['open']} known open" if c["open"] else "") + f"; slowest {c['slowest_ms']} ms"
                     + (f" ({c['skipped']} skipped: not permitted here)" if c["skipped"] else ""))
    lines += [f"  known open (left for backends): {label}: {n} case(s)" for label, n in OPEN_SEEN.items()]
    with capture.global_and_fixture_disabled() if capture else contextlib.nullcontext():
        writer.write_line("")
        for line in lines:
            writer.write_line(line)


@contextlib.contextmanager
def cwd(path: Path):
    old = os.getcwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(old)


OUTPUT_OPTIONS = {"-o", "--output", "--json", "--csv", "--html", "--db"}


def inputs_of(argv: list, *extra) -> list[Path]:
    """The existing files a command line names, but for those given to an output option."""
    argv = [str(a) for a in argv]
    return [Path(a) for i, a in enumerate(argv) if (i == 0 or argv[i - 1] not in OUTPUT_OPTIONS)
            and len(a) < 4096 and os.path.isfile(a)] + [Path(e) for e in extra if os.path.isfile(e)]


def _clip(message: str, keep: int = 3000) -> str:
    """A failure's text with its middle left out: its start names the case, its end the reason."""
    if len(message) <= 2 * keep:
        return message
    return f"{message[:keep]} …({len(message) - 2 * keep:,} characters)… {message[-keep:]}"


class Cases:
    """Runs the cases of one surface; tallies outcomes and collects every failure."""

    def __init__(self, surface: str):
        self.surface = surface
        self.failures: list[str] = []

    def count(self, outcome: str, section: str | None = None) -> None:
        TALLY[section or self.surface][outcome] += 1

    def fail(self, message: str, section: str | None = None, counted: bool = False) -> None:
        known = next((label for label, pattern in KNOWN_OPEN.items() if pattern.search(message)), None)
        if known is not None:
            OPEN_SEEN[known] += 1
            self.count("open", section)
            return
        self.failures.append(message)
        FAILURES.append(message)
        if DUMP:
            with open(DUMP, "a") as f:
                f.write(message + "\n\n")
        if counted:  # a later check failed a case already counted as a result or an error
            c = TALLY[section or self.surface]
            for k in ("ok", "error"):
                if c[k]:
                    c[k] -= 1
                    break
        self.count("FAIL", section)

    def run(self, what: str, argv: list, *, ok_codes=(0,), timeout: float = TIMEOUT_S, data_stdout: bool = False,
            section: str | None = None, env=None, inputs=()):
        """One nvmc run; returns (outcome, result) or (None, None) when it failed the contract.
        ``inputs``: files that must be byte-identical afterwards."""
        argv = [str(a) for a in argv]
        sums = Checksums(*inputs) if inputs else None
        shown = " ".join(a if len(a) < 300 else a[:300] + "…" for a in argv)
        label = f"[{section or self.surface}] {what}: nvmc {shown!r}"
        if TRACE:
            with open(TRACE, "a") as f:
                f.write(label.replace("\n", "\\n") + "\n")
        try:
            t0 = time.perf_counter()
            r = run_cli_io(argv, timeout=timeout, env=env)
            seconds = time.perf_counter() - t0
            outcome = classify(r.code, r.stderr, what=label, ok_codes=ok_codes)
            hostile.assert_terminal_safe(r.stderr, f"{label}: stderr")
            if not {"--print-after-all", "--print-after"} & set(argv):  # a dump of the IR: its lines are its lines
                hostile.assert_short_lines(r.stderr, label)
            if not data_stdout:
                hostile.assert_terminal_safe(r.stdout, f"{label}: stdout")
            assert "MemoryError" not in r.stderr, f"{label}: {r.stderr}"
            if outcome == "error":  # the error line is one line: what follows it is indented (source, hint)
                after = r.stderr.split("\nerror:", 1)[-1].split("\n")[1:] if not r.stderr.startswith("error:") \
                    else r.stderr.split("\n")[1:]
                stray = [ln for ln in after if ln and not ln.startswith("  ")]
                assert not stray, f"{label}: the error line is broken by a newline:\n{r.stderr[:3000]}"
        except AssertionError as e:
            self.fail(_clip(str(e)), section)
            return None, None
        self.count(outcome, section)
        if sums is not None:
            self.check(label, lambda: sums.assert_unchanged(label), section)
        TALLY[section or self.surface]["slowest_ms"] = max(TALLY[section or self.surface]["slowest_ms"],
                                                            int(seconds * 1000))
        return outcome, r

    def check(self, what: str, fn, section: str | None = None) -> bool:
        """A further check of a case already counted; a failure is recorded, not raised."""
        try:
            fn()
        except AssertionError as e:
            self.fail(_clip(f"[{section or self.surface}] {what}: {e}"), section, counted=True)
            return False
        except Exception as e:  # noqa: BLE001 - a check that cannot even run is a failure too
            self.fail(_clip(f"[{section or self.surface}] {what}: {type(e).__name__}: {e}"), section, counted=True)
            return False
        return True

    def assert_none(self) -> None:
        assert not self.failures, \
            f"{len(self.failures)} failing cases; first ones:\n\n" + "\n\n".join(self.failures[:12])


# ------------------------------------------------------------------ inputs of every kind
@pytest.fixture(scope="module")
def base(tmp_path_factory) -> Path:
    """m.onnx; ext.onnx + w.bin (external data); cnn.nvir + cnn.npz (sidecar); mine.toml (a
    target by path); cal.npz (calibration inputs); spec.toml + spec.sqlite (a finished sweep of
    m.onnx on sram and mine.toml); sub/ (for sub/../ spellings)."""
    d = tmp_path_factory.mktemp("base")
    shutil.copy(CNN, d / "m.onnx")
    onnx.save_model(onnx.load(CNN), d / "ext.onnx", save_as_external_data=True, location="w.bin", size_threshold=0)
    hostile.write_target(d / "mine.toml", TARGETS / "sram.toml", "mine", "sram, renamed")
    np.savez(d / "cal.npz", x=np.random.default_rng(0).standard_normal((1, 3, 32, 32)).astype(np.float32))
    (d / "spec.toml").write_text('schema = "nvmc.sweep/1"\nname = "s"\nmodels = ["m.onnx"]\n'
                                 'targets = ["sram", "mine.toml"]\n')
    (d / "sub").mkdir()
    with cwd(d):
        for argv in (["ir", "m.onnx", "-o", "cnn.nvir"], ["sweep", "spec.toml", "--workers", "0", "-q"]):
            r = run_cli_io(argv, timeout=60)
            assert r.code == 0, r.stderr
    assert {"cnn.npz", "spec.sqlite", "w.bin"} <= set(os.listdir(d))
    return d


# ------------------------------------------------------------------ 1. output paths
def _parse_output(fmt: str, path: Path | None, text: str | None = None) -> None:
    """The written output is what its format says (``text``: what went to stdout)."""
    if path is not None:
        st = os.lstat(path)
        assert os.path.isfile(path) and not os.path.islink(path), f"{path} is not a regular file now ({st.st_mode:o})"
    if fmt == "json":
        hostile.strict_json(text if text is not None else path.read_text(encoding="utf-8"))
    elif fmt == "csv":
        rows = hostile.csv_rows(text if text is not None else path.read_text(encoding="utf-8"))
        assert len(rows) > 1 and all(len(r) == len(rows[0]) for r in rows), rows[:3]
    elif fmt == "html":
        hostile.assert_html_safe(path.read_text(encoding="utf-8"), str(path))
    elif fmt == "onnx":
        onnx.checker.check_model(onnx.load(path))
    elif fmt == "nvir":
        r = run_cli_io(["verify", str(path)], timeout=TIMEOUT_S)
        assert r.code == 0, f"what `-o {path.name}` wrote does not read back: {r.stderr}"
    elif fmt == "sqlite":
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            assert db.execute("SELECT count(*) FROM results").fetchone()[0] >= 1
        finally:
            db.close()


def _companions(out: Path, fmt: str) -> set[Path]:
    """Files a successful write may add or replace besides ``out``."""
    extra = {out}
    if fmt == "nvir":
        extra.add(out.with_suffix(".npz"))
    if fmt == "onnx":
        extra.add(out.with_name(out.name + ".data"))
    return extra


def _output_case(s: Cases, base: Path, root: Path, i: int, option, kind: str, rnd: random.Random, seed: int) -> None:
    work = root / f"w{i}"
    shutil.copytree(base, work, symlinks=True)
    try:
        with cwd(work):
            try:
                case = destinations.make_destination(work, option, kind, rnd)
            except destinations.Skip:
                s.count("skipped")
                return
            before = destinations.snapshot(work)
            outside = set(os.listdir(root))
            what = f"seed {seed}, {option.name}, {kind}"
            outcome, r = s.run(what, case.argv, data_stdout=case.out == "-")
            if outcome is None:
                return
            s.check(what + f": nvmc {case.argv}", lambda: _output_invariants(case, outcome, r, work, before, root,
                                                                            outside))
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _output_invariants(case, outcome, r, work: Path, before: dict, root: Path, outside: set) -> None:
    option = case.option
    expect = case.expect
    did, want = ("wrote", "a refusal") if outcome == "ok" else ("refused", "a write")
    assert expect is None or outcome == expect, f"{did} (want {want}):\n{r.stderr}"
    after = destinations.snapshot(work)
    if outcome == "error":
        changed = {k: (v, after.get(k, "missing")) for k, v in before.items() if after.get(k) != v}
        added = sorted(set(after) - set(before))
        assert not changed and not added, f"refused, yet changed {changed} and added {added}"
    else:
        if case.out == "-":
            _parse_output(option.fmt, None, r.stdout)
            allowed = set()
        else:
            out = Path(os.path.normpath(work / case.out))
            allowed = {os.path.relpath(p, work) for p in _companions(out, option.fmt)}
            _parse_output(option.fmt, out)
        changed = {k: (v, after.get(k, "missing")) for k, v in before.items() if after.get(k) != v and k not in allowed}
        added = sorted(set(after) - set(before) - allowed)
        assert not changed and not added, f"wrote, and also changed {changed} and added {added}"
        for name in case.inputs:
            assert before.get(name) == after.get(name), f"input {name} changed"
    if case.dangling_target is not None:
        assert not os.path.lexists(work / case.dangling_target), "a write went through a dangling link"
    assert set(os.listdir(root)) <= outside, f"files appeared beside the work folder: {set(os.listdir(root)) - outside}"


def test_fuzz_output_paths(base, tmp_path):
    """Every output option of every command against every kind of destination (each seed
    draws the model, target, pipeline and spelling of each case)."""
    s = Cases("output-paths")
    i = 0
    for seed in seeds():
        rnd = random.Random(f"outputs {seed}")
        for option in destinations.OPTIONS:
            for kind in destinations.KINDS:
                i += 1
                _output_case(s, base, tmp_path, i, option, kind, rnd, seed)
    s.assert_none()


# ------------------------------------------------------------------ 2. renderers
RENDER_TEMPLATES = ["sram", "systolic-sot-7nm", "cpu", "upmem", "rram-pim", "mensa", "simdram", "racetrack-hdc"]
RENDER_CASES = 10  # hostile models per seed


def _literal_names(names: list[str], text: str) -> None:
    """Each short name is shown as written (markup and emoji codes literal, controls escaped)."""
    from nvmc.render import one_line

    for name in names:
        shown = one_line(name)
        if len(shown) <= 40 and "\n" not in name:
            assert shown in text, f"{shown!r} is not in the output:\n{text[:3000]}"


@contextlib.contextmanager
def _plugin_targets(folder: Path):
    """`nvmc targets` lists ``folder``'s target files as if a plugin shipped them."""
    from nvmc.backends import registry

    saved = registry.plugin_target_dirs
    registry.plugin_target_dirs = lambda: [folder]
    try:
        yield
    finally:
        registry.plugin_target_dirs = saved


def _renderer_case(s: Cases, d: Path, rnd: random.Random, label: str) -> None:
    names = hostile.HostileNames.draw(rnd)
    model = hostile.write_hostile_model(d, names, rnd)
    tdir = d / "targets"
    tdir.mkdir()
    template = TARGETS / f"{rnd.choice(RENDER_TEMPLATES)}.toml"
    target = hostile.write_target(tdir / hostile.file_name(rnd, ".toml"), template, names.target, names.description)
    what = f"{label} ({names.file!r}, target {target.name!r})"
    sums = Checksums(model, target)

    # analyze: terminal table, CSV, JSON
    outcome, r = s.run(what, ["analyze", model])
    if outcome == "ok":
        s.check(what + ": analyze shows names literally", lambda: _literal_names(names.nodes, r.stdout))
    outcome, r = s.run(what, ["analyze", model, "--csv", d / "a.csv", "--json", d / "a.json"])
    if outcome == "ok":
        s.check(what + ": analyze --csv", lambda: hostile.assert_csv_safe((d / "a.csv").read_text(), "analyze --csv"))
        s.check(what + ": analyze --json", lambda: hostile.strict_json((d / "a.json").read_text()))

    # compile: terminal summary and every report at once; then beside another target
    outcome, r = s.run(what, ["compile", model, "-t", target, "--json", d / "c.json", "--csv", d / "c.csv", "--html",
                              d / "c.html", "--top", "20"], ok_codes=COMPILE_OK)
    if outcome == "ok":
        if r.code == 0:
            s.check(what + ": compile shows names literally", lambda: _literal_names(names.nodes, r.stdout))
            s.check(what + ": compile --csv",
                    lambda: hostile.assert_csv_safe((d / "c.csv").read_text(), "compile --csv"))
        s.check(what + ": compile --json", lambda: hostile.strict_json((d / "c.json").read_text()))
        s.check(what + ": compile --html",
                lambda: hostile.assert_html_safe((d / "c.html").read_text(), "compile --html"))
    s.run(what, ["compile", model, "-t", "sram", "--compare", target], ok_codes=COMPILE_OK)
    outcome, r = s.run(what, ["compile", model, "-t", target, "--json", "-"], ok_codes=COMPILE_OK, data_stdout=True)
    if outcome == "ok":
        s.check(what + ": compile --json -", lambda: hostile.strict_json(r.stdout))

    # explain and targets: the target's name and description
    outcome, r = s.run(what, ["explain", "-t", target])
    if outcome == "ok":
        s.check(what + ": explain shows the target name", lambda: _literal_names([names.target], r.stdout))
    outcome, r = s.run(what, ["explain", "-t", target, "--json"], data_stdout=True)
    if outcome == "ok":
        s.check(what + ": explain --json", lambda: hostile.strict_json(r.stdout))
    with _plugin_targets(tdir):
        s.run(what, ["targets"])
        outcome, r = s.run(what, ["targets", "--json"], data_stdout=True)
        if outcome == "ok":
            s.check(what + ": targets --json", lambda: hostile.strict_json(r.stdout))

    # the pass developer's commands: timings, dumps and explanations name nodes
    pipeline = rnd.choice(["dce,canonicalize", "fuse-activation,dce", "fold-constants", "prune", "cse,dce"])
    s.run(what, ["opt", model, "-p", pipeline, "--timing", "--explain-pass", pipeline.split(",")[0],
                 *(["--print-after-all"] if rnd.random() < 0.5 else []), "-o", d / "o.onnx"])
    outcome, r = s.run(what, ["opt", model, "-p", pipeline, "--json", d / "o.json"])
    if outcome == "ok":
        s.check(what + ": opt --json", lambda: hostile.strict_json((d / "o.json").read_text()))
    s.run(what, ["ir", model])
    s.run(what, ["verify", model])
    outcome, r = s.run(what, ["check", model, model, "--samples", "1", "--json", d / "k.json"])
    if outcome == "ok":
        s.check(what + ": check --json", lambda: hostile.strict_json((d / "k.json").read_text()))

    # hostile text where a value or a name is expected: the error quotes it, escaped
    text = hostile.hostile_text(rnd, long=0.2)
    s.run(what, ["explain", "-t", "sram", "--set", f"{text}={text}"])
    s.run(what, ["opt", model, "-p", text, "-o", d / "p.onnx"])
    s.run(what, ["passes", text])
    s.run(what, ["analyze", d / hostile.file_name(rnd, ".onnx").replace("\x00", "")])  # a missing file
    s.run(what, ["compile", model, "-t", d / hostile.file_name(rnd, ".toml"), "-q"])
    s.run(what, ["compile", model, "-t", "sram", "-q", "--budget", f"latency={text}"], ok_codes=COMPILE_OK)

    # a sweep with hostile names, then every view of its results
    spec = hostile.write_spec(d / "spec.toml", names.sweep, [model.name], [f"targets/{target.name}"])
    with cwd(d):
        outcome, _ = s.run(what, ["sweep", "spec.toml", "--workers", "0", "-q"], ok_codes=(0, 1))
        s.run(what, ["sweep", "spec.toml", "--status"])
        if outcome == "ok":
            s.run(what, ["results", spec])
            outcome, r = s.run(what, ["results", "spec.toml", "--csv", "r.csv", "--json", "r.json", "--html", "r.html"])
        if outcome == "ok":
            s.check(what + ": results --csv",
                    lambda: hostile.assert_csv_safe((d / "r.csv").read_text(), "results --csv"))
            s.check(what + ": results --json", lambda: hostile.strict_json((d / "r.json").read_text()))
            s.check(what + ": results --html", lambda: hostile.assert_html_safe((d / "r.html").read_text(),
                                                                                 "results --html"))
    s.check(what + ": inputs unchanged", lambda: sums.assert_unchanged(what))


def test_fuzz_renderers(tmp_path):
    s = Cases("renderers")
    for seed in seeds():
        rnd = random.Random(f"renderers {seed}")
        for i in range(RENDER_CASES):
            d = tmp_path / f"s{seed}c{i}"
            d.mkdir()
            _renderer_case(s, d, rnd, f"seed {seed} case {i}")
    s.assert_none()


# ------------------------------------------------------------------ 3. element types
def _assert_names_type(dtype: str, stderr: str) -> None:
    """A refusal of a model whose input or weight has ``dtype`` names the type (as ONNX or
    nvmc spells it)."""
    from nvmc.frontend.onnx_types import _ONNX_TO_NVMC

    short = _ONNX_TO_NVMC.get(getattr(onnx.TensorProto, dtype), "\0")
    low = stderr.lower()
    assert dtype.lower() in low.replace("_", "") or f"{short}[" in low or f"'{short}'" in low \
        or f" {short} " in low or f"{short}:" in low, f"the error does not name {dtype}:\n{stderr}"


def test_fuzz_dtypes(tmp_path):
    """Every element type in an input, an initializer, a Cast target, a Constant and a
    DequantizeLinear input, at a drawn opset, through analyze, compile on a drawn family,
    ir -o (read back), export and check."""
    s = Cases("dtypes")
    for seed in seeds():
        rnd = random.Random(f"dtypes {seed}")
        for dtype in dtype_models.DTYPES:
            place = rnd.choice(dtype_models.PLACES)
            opset = rnd.choice(dtype_models.OPSETS)
            d = tmp_path / f"s{seed}-{dtype}"
            d.mkdir()
            model = d / f"{dtype}.{place}.{opset}.onnx"
            model.write_bytes(dtype_models.dtype_model(dtype, place, opset, np.random.default_rng([seed, opset]),
                                                       newest_ir=rnd.random() < 0.7))
            what = f"seed {seed}: {dtype} as {place} at opset {opset}"
            target = rnd.choice(FAMILY_TARGETS)
            sums = Checksums(model)
            outcome, r = s.run(what, ["analyze", model, "--json", d / "a.json"])
            if outcome == "ok":
                s.check(what, lambda: hostile.strict_json((d / "a.json").read_text()))
            elif outcome == "error" and place in ("input", "initializer"):
                s.check(what + ": the error names the type", lambda: _assert_names_type(dtype, r.stderr))
            s.run(what, ["compile", model, "-t", target, "-q"], ok_codes=COMPILE_OK)
            outcome, _ = s.run(what, ["ir", model, "-o", d / "x.nvir"])
            if outcome == "ok":
                s.run(what + " (read back)", ["verify", d / "x.nvir"])
                s.run(what + " (.nvir)", ["compile", d / "x.nvir", "-t", target, "-q"], ok_codes=COMPILE_OK)
            outcome, _ = s.run(what, ["export", model, "-o", d / "x.onnx"])
            if outcome == "ok":
                s.check(what + ": export", lambda: onnx.checker.check_model(onnx.load(d / "x.onnx")))
            s.run(what, ["check", model, model, "--samples", "1"])
            s.check(what + ": the model unchanged", lambda: sums.assert_unchanged(what))
    s.assert_none()


# ------------------------------------------------------------------ 4. nesting
NEST_SURFACES = ["nvir", "target", "spec", "set", "pipeline", "onnx-if"]
NEST_CASES = 4  # per surface and seed
NEST_TIMEOUT_S = 10.0


def test_fuzz_nesting(tmp_path):
    """Generated deep nesting (depth 10 to 200,000) in each surface that nests: a clean exit
    within NEST_TIMEOUT_S."""
    s = Cases("nesting")
    shutil.copy(CNN, tmp_path / "m.onnx")
    template = (TARGETS / "sram.toml").read_text()
    dotted = 10**9  # targets and --set values refuse a long dotted key before tomllib reads it
    with cwd(tmp_path), memory_limit(MEM_CAP):
        for seed in seeds():
            rnd = random.Random(f"nesting {seed}")
            for surface in NEST_SURFACES:
                for _ in range(NEST_CASES):
                    depth = rnd.choice(bombs.DEPTHS)
                    if surface == "nvir":
                        variant, text = bombs.nested_nvir(rnd, depth)
                        Path("d.nvir").write_text(text)
                        argv = [rnd.choice(["analyze", "verify", "ir"]), "d.nvir"]
                    elif surface == "target":
                        variant, text = bombs.nested_target(rnd, template, depth, max_dotted=dotted)
                        Path("d.toml").write_text(text)
                        argv = rnd.choice([["compile", "m.onnx", "-t", "d.toml", "-q"], ["explain", "-t", "d.toml"]])
                    elif surface == "spec":
                        variant, text = bombs.nested_spec(rnd, depth)
                        Path("spec.toml").write_text(text)
                        argv = rnd.choice([["sweep", "spec.toml", "--status"], ["results", "spec.toml"]])
                    elif surface == "set":
                        variant, value = bombs.nested_set(rnd, depth, max_dotted=dotted)
                        argv = rnd.choice([["compile", "m.onnx", "-t", "sram", "-q"], ["explain", "-t", "sram"]])
                        argv += ["--set", value]
                    elif surface == "pipeline":
                        variant, value = bombs.nested_pipeline(rnd, depth)
                        argv = rnd.choice([["opt", "m.onnx", "-o", "o.onnx", "-p"],
                                           ["compile", "m.onnx", "-t", "sram", "-q", "--passes"]])
                        argv.append(value)
                    else:
                        depth = min(depth, rnd.choice([3, 10, 30, 200]))
                        variant = "If"
                        Path("if.onnx").write_bytes(bombs.nested_if_model(depth))
                        argv = [rnd.choice(["analyze", "verify", "ir"]), "if.onnx"]
                    s.run(f"seed {seed}: {surface} {variant} depth {depth}", argv, ok_codes=COMPILE_OK,
                          timeout=NEST_TIMEOUT_S, section=f"nesting:{surface}", inputs=inputs_of(argv))
    s.assert_none()


# ------------------------------------------------------------------ 5. resource bombs
PASSES = ["quantize", "prune", "share-weights", "winograd", "neon", "fold-constants", "canonicalize"]
BOMB_CASES = {"npz-sidecar": 4, "npz-calibration": 4, "huge-fill": 8, "huge-protobuf": 3, "sweep-expansion": 3}


def test_fuzz_resource_bombs(tmp_path):
    """Small files that ask for GiBs or hours: refused (or done) quickly, under a 2 GiB cap."""
    s = Cases("bombs")
    shutil.copy(CNN, tmp_path / "m.onnx")
    with cwd(tmp_path), memory_limit(MEM_CAP):
        for seed in seeds():
            rnd = random.Random(f"bombs {seed}")
            for _ in range(BOMB_CASES["npz-sidecar"]):
                kind, data = bombs.bomb_npz(rnd, "w")
                Path("b.npz").write_bytes(data)
                n = rnd.choice([2, 24576])
                Path("b.nvir").write_text(bombs.NVIR_HEAD + f"graph @g(%x: f32[1,{n}]) -> (%y: f32[1,{n}]) {{\n"
                                          f"  %w = const f32[{n},{n}] @b.npz:w\n  %y = MatMul(%x, %w) : f32[1,{n}]\n"
                                          "  return %y\n}\n")
                s.run(f"seed {seed}: .npz sidecar {kind}, declared {n}x{n}",
                      [rnd.choice(["analyze", "verify", "ir"]), "b.nvir"], section="bombs:npz-sidecar",
                      inputs=inputs_of(["b.nvir"], "b.npz"))
            for _ in range(BOMB_CASES["npz-calibration"]):
                kind, data = bombs.bomb_npz(rnd, "x")
                Path("cal.npz").write_bytes(data)
                argv = rnd.choice([["opt", "m.onnx", "-p", 'quantize{inputs="cal.npz"}', "-o", "q.onnx"],
                                   ["compile", "m.onnx", "-t", "sram", "-q", "--passes", 'quantize{inputs="cal.npz"}'],
                                   ["check", "m.onnx", "m.onnx", "--inputs", "cal.npz", "--samples", "1"]])
                s.run(f"seed {seed}: calibration .npz {kind}", argv, section="bombs:npz-calibration",
                      inputs=inputs_of(argv, "cal.npz"))
            for _ in range(BOMB_CASES["huge-fill"]):
                kind, data = bombs.huge_fill_model(rnd)
                Path("h.onnx").write_bytes(data)
                pass_ = rnd.choice(PASSES)
                what = f"seed {seed}: {kind} through {pass_}"
                if rnd.random() < 0.5:
                    argv = ["opt", "h.onnx", "-p", pass_, "-o", rnd.choice(["o.onnx", "o.nvir"])]
                else:
                    target = rnd.choice([t for t in FAMILY_TARGETS if t != "eie"] + ["eie"] * (rnd.random() < 0.1))
                    argv = ["compile", "h.onnx", "-t", target, "-q", "--passes", pass_]
                s.run(what, argv, ok_codes=COMPILE_OK, section="bombs:huge-fill", inputs=inputs_of(argv))
                s.run(what, [rnd.choice(["analyze", "ir", "verify"]), "h.onnx"], section="bombs:huge-fill",
                      inputs=inputs_of(["h.onnx"]))
            for _ in range(BOMB_CASES["huge-protobuf"]):
                kind, data = bombs.huge_repeated_model(rnd)
                Path("p.onnx").write_bytes(data)
                argv = rnd.choice([["analyze", "p.onnx"], ["verify", "p.onnx"],
                                   ["compile", "p.onnx", "-t", rnd.choice(FAMILY_TARGETS[:5]), "-q"]])
                s.run(f"seed {seed}: protobuf {kind}", argv, ok_codes=COMPILE_OK, section="bombs:huge-protobuf",
                      inputs=inputs_of(argv))
            for _ in range(BOMB_CASES["sweep-expansion"]):
                kind, text = bombs.exploding_spec(rnd)
                Path("boom.toml").write_text(text)
                argv = rnd.choice([["sweep", "boom.toml", "--status"], ["results", "boom.toml"]])
                s.run(f"seed {seed}: sweep spec {kind}", argv, section="bombs:sweep-expansion",
                      inputs=inputs_of(argv, "m.onnx"))
    s.assert_none()


# ------------------------------------------------------------------ replayed crashers
@pytest.mark.parametrize("case", crashers.SURFACE_CASES, ids=[f"{c[0]}-{c[2][0]}" for c in crashers.SURFACE_CASES])
def test_surface_crashers(case, tmp_path):
    """The crashers of this fuzzer whose outcome is a result (the error cases are in
    crashers.CASES, replayed by test_fuzz_models.py): now clean, the text shown escaped."""
    name, copy_as, args, want_code, fragment, _why = case
    model = crashers.FOLDER / name
    assert model.exists(), f"{model} missing: run tests/fuzz/crashers.py"
    if copy_as is not None:
        shutil.copy(model, tmp_path / copy_as)
        model = tmp_path / copy_as
    r = run_cli_io([a.replace("{}", str(model)).replace("{out}", str(tmp_path)) for a in args], timeout=TIMEOUT_S)
    assert classify(r.code, r.stderr, what=name, ok_codes=(0, 1)) in ("ok", "error") and r.code == want_code, r.stderr
    assert fragment in r.stdout + r.stderr, r.stdout[:2000] + r.stderr[:2000]
    hostile.assert_terminal_safe(r.stdout + r.stderr, name)
    hostile.assert_short_lines(r.stderr, name)


@pytest.mark.parametrize("case", crashers.OPEN_CASES, ids=[f"{c[0]}-{c[1][0]}" for c in crashers.OPEN_CASES])
def test_open_crashers(case, tmp_path):
    """Crashers left open for backends/: each should end in one clean error naming its cause.
    An xfail until then; once it does, this fails, asking to move it to crashers.CASES (and to
    drop its KNOWN_OPEN entry)."""
    name, args, want_code, fragment, why = case
    model = crashers.FOLDER / name
    assert model.exists(), f"{model} missing: run tests/fuzz/crashers.py"
    try:
        code, _out, stderr = run_cli_io([a.replace("{}", str(model)) for a in args], timeout=TIMEOUT_S)
        ok = classify(code, stderr, what=name) == "error" and code == want_code and fragment in stderr
    except AssertionError:
        ok = False
    if not ok:
        pytest.xfail(f"open (left for backends): {why}")
    pytest.fail(f"{name} {args[0]} is fixed: move it from crashers.OPEN_CASES to crashers.CASES and drop its "
                "KNOWN_OPEN entry")
