"""Hardening, round 2: one regression test (or a small parametrised group) per finding of the
issue, written as the behaviour it asks for.

Every CLI case runs as its own process with real file descriptors (stdout and stderr are files,
not a terminal; NO_COLOR=1), but without paying ~2 s of interpreter start and imports per case:
a module-scoped server imports nvmc once and ``os.fork()``s one child per case, which calls
``nvmc.cli.main(argv)`` the way ``python -m nvmc`` does (exit code, messages and any traceback
as a user sees them; a hang is killed at the case's timeout and reported as rc None).
``test_fork_server_matches_a_fresh_interpreter`` checks that against ``python -m nvmc``.

Every hostile input is built in ``tmp_path``; device nodes are private ones made with
``os.mknod`` (skipped where that is not permitted), never the real /dev files.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math
import os
import re
import shutil
import socket
import sqlite3
import stat
import struct
import subprocess
import sys
import zlib
from pathlib import Path
from typing import NamedTuple

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

REPO = Path(__file__).resolve().parents[1]
CNN = REPO / "examples" / "models" / "tiny_cnn.onnx"
SHIPPED_SRAM = REPO / "backends" / "targets" / "sram.toml"
ENV = dict(os.environ, NO_COLOR="1", COLUMNS="200")
MEM_CAP = 2 << 30  # RLIMIT_AS for the cases that could allocate huge tensors
ESC = "\x1b[2J\x1b]0;pwned\x07"
MAX_ERROR_LINE = 2200  # "about 2,000 characters"

# ------------------------------------------------------------------------------ helpers
_SERVER = r'''
import json, os, resource, signal, sys, time, traceback
from nvmc.cli import main
import nvmc.backends, nvmc.harness, nvmc.passes, nvmc.sweep, onnxruntime  # noqa: F401 (imports the cases share)
for line in sys.stdin:
    req = json.loads(line)
    fds = [os.open(req[k], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600) for k in ("out", "err")]
    rd, wr = os.pipe()
    os.close(wr)
    sys.stdout.flush()
    start = time.monotonic()
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            os.dup2(rd, 0); os.dup2(fds[0], 1); os.dup2(fds[1], 2); os.chdir(req["cwd"])
            if req["mem"]:
                resource.setrlimit(resource.RLIMIT_AS, (req["mem"], req["mem"]))
            main(req["argv"])
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
        except BaseException:
            traceback.print_exc()
        finally:
            for f in (sys.stdout, sys.stderr):
                try:
                    f.flush()
                except BaseException:
                    pass
            os._exit(code)
    os.close(rd)
    rc = None
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            rc = os.waitstatus_to_exitcode(status)
            break
        if time.monotonic() - start > req["timeout"]:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            break
        time.sleep(0.005)
    for fd in fds:
        os.close(fd)
    print(json.dumps({"rc": rc, "seconds": time.monotonic() - start}), flush=True)
'''


class Run(NamedTuple):
    rc: int | None          # None: killed at the timeout (a hang)
    out: bytes
    err: bytes
    seconds: float

    @property
    def stdout(self) -> str:
        return self.out.decode("utf-8", "replace")

    @property
    def stderr(self) -> str:
        return self.err.decode("utf-8", "replace")


@pytest.fixture(scope="module")
def nv(tmp_path_factory):
    """nv(cwd, *argv, timeout=60, mem=None) -> Run: `nvmc argv...` in a forked child of a warm server."""
    logs = tmp_path_factory.mktemp("nvmc-runs")
    server = subprocess.Popen([sys.executable, "-c", _SERVER], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              text=True, env=ENV, cwd=logs)

    def run(cwd: Path, *argv: str, timeout: float = 60, mem: int | None = None) -> Run:
        out, err = logs / "out", logs / "err"
        server.stdin.write(json.dumps({"argv": [str(a) for a in argv], "cwd": str(cwd), "timeout": timeout,
                                       "mem": mem, "out": str(out), "err": str(err)}) + "\n")
        server.stdin.flush()
        reply = server.stdout.readline()
        assert reply, "the nvmc test server died"
        reply = json.loads(reply)
        return Run(reply["rc"], out.read_bytes(), err.read_bytes(), reply["seconds"])

    yield run
    server.stdin.close()
    server.wait(timeout=30)


def what(r: Run, argv=()) -> str:
    return f"nvmc {' '.join(map(str, argv))}: rc={r.rc}\nstderr: {r.stderr[:3000]}\nstdout: {r.stdout[:1000]}"


def assert_refused(r: Run, *needles: str, argv=()) -> None:
    """Exit 2, exactly one 'error:' line, no traceback or internal error; each needle in stderr."""
    assert r.rc == 2, what(r, argv)
    assert "Traceback" not in r.stderr and "internal error" not in r.stderr, what(r, argv)
    assert sum(ln.startswith("error:") for ln in r.stderr.splitlines()) == 1, what(r, argv)
    for needle in needles:
        assert needle.lower() in r.stderr.lower(), what(r, argv)


def assert_clean(r: Run, ok=(0,), argv=()) -> None:
    """A result (rc in ok) or a clean refusal (assert_refused)."""
    if r.rc in ok and "Traceback" not in r.stderr and "internal error" not in r.stderr:
        return
    assert_refused(r, argv=argv)


def kind(path: Path) -> str:
    """What is at path, without following a link: 'file:<sha256>', 'link:<target>', 'chr', 'fifo', ..."""
    st = os.lstat(path)
    if stat.S_ISLNK(st.st_mode):
        return "link:" + os.readlink(path)
    if stat.S_ISREG(st.st_mode):
        return "file:" + hashlib.sha256(path.read_bytes()).hexdigest()
    return next(n for t, n in ((stat.S_ISCHR, "chr"), (stat.S_ISFIFO, "fifo"), (stat.S_ISSOCK, "sock"),
                               (stat.S_ISDIR, "dir"), (stat.S_ISBLK, "blk")) if t(st.st_mode))


def snapshot(folder: Path) -> dict[str, str]:
    return {p.name: kind(p) for p in sorted(folder.iterdir())}


def assert_unchanged(before: dict[str, str], folder: Path) -> None:
    after = snapshot(folder)
    changed = {k: (v, after.get(k, "missing")) for k, v in before.items() if after.get(k, "missing") != v}
    assert not changed, f"inputs or special files changed: {changed}"


def mknod(path: Path, minor: int = 3) -> Path:
    """A private character device with /dev/null's (1, 3) or /dev/full's (1, 7) numbers."""
    try:
        os.mknod(path, stat.S_IFCHR | 0o666, os.makedev(1, minor))
    except (PermissionError, OSError) as e:
        pytest.skip(f"cannot make a device node here: {e}")
    return path


def make_special(path: Path, what_kind: str) -> None:
    if what_kind in ("chr", "full"):
        mknod(path, 7 if what_kind == "full" else 3)
    elif what_kind == "fifo":
        os.mkfifo(path)
    elif what_kind == "dir":
        path.mkdir()
    elif what_kind == "sock":
        s = socket.socket(socket.AF_UNIX)
        try:
            s.bind(str(path))
        except OSError as e:
            pytest.skip(f"cannot bind a unix socket at {path}: {e}")
        finally:
            s.close()
    elif what_kind == "link":
        mknod(path.with_name(path.name + ".dev"))
        path.symlink_to(path.name + ".dev")


def save_model(path: Path, nodes, inputs, outputs, inits=(), opset: int = 17) -> Path:
    graph = helper.make_graph(nodes, "g", inputs, outputs, list(inits))
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)]), path)
    return path


def vi(name: str, shape, dtype: int = TensorProto.FLOAT):
    return helper.make_tensor_value_info(name, dtype, shape)


def conv_relu(path: Path, conv_name: str = "conv", relu_name: str = "relu") -> Path:
    """x[1,3,8,8] -> Conv (4 filters 3x3) -> Relu, with the given node names."""
    w = numpy_helper.from_array(np.full((4, 3, 3, 3), 0.1, np.float32), "w")
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], name=conv_name, pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c"], ["y"], name=relu_name)]
    return save_model(path, nodes, [vi("x", [1, 3, 8, 8])], [vi("y", [1, 4, 8, 8])], [w])


def target_toml(path: Path, name: str, description: str = "") -> Path:
    """The shipped sram target, renamed (TOML basic strings: control characters as \\uXXXX)."""
    quote = json.dumps  # JSON escapes such as \u001b are valid in a TOML basic string
    text = re.sub(r"(?m)^name = .*$", lambda m: f"name = {quote(name)}", SHIPPED_SRAM.read_text(), count=1)
    text = re.sub(r"(?m)^description = .*$", lambda m: f"description = {quote(description)}", text, count=1)
    path.write_text(text)
    return path


def write_spec(path: Path, body: str) -> Path:
    path.write_text('schema = "nvmc.sweep/1"\n' + body)
    return path


def _reject(constant: str):
    raise ValueError(f"non-standard JSON constant {constant}")


def strict_json(text: str):
    return json.loads(text, parse_constant=_reject)


def numbers(obj, key: str = ""):
    """(dotted key, value) of every number in a JSON document."""
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from numbers(v, f"{key}.{k}")
    elif isinstance(obj, list):
        for v in obj:
            yield from numbers(v, f"{key}[]")
    elif isinstance(obj, (int, float)) and not isinstance(obj, bool):
        yield key, obj


def zip_bomb(path: Path, member: str, shape: tuple[int, ...], chunk: int = 1 << 20) -> Path:
    """An .npz whose f32 zeros `member` of `shape` is deflated as identical full-flush blocks:
    MBs on disk, GBs unpacked, with honest sizes and CRC (so only its size gives it away)."""
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "<f4", "fortran_order": False, "shape": shape})
    header = header.getvalue()
    n = math.prod(shape) * 4 // chunk
    co = zlib.compressobj(9, zlib.DEFLATED, -15)
    data = co.compress(header) + co.flush(zlib.Z_FULL_FLUSH)
    data += (co.compress(bytes(chunk)) + co.flush(zlib.Z_FULL_FLUSH)) * n + co.flush()
    f0 = zlib.crc32(bytes(chunk))  # crc32(zeros, v) is affine in v: precompute its 32 columns
    cols = [zlib.crc32(bytes(chunk), 1 << i) ^ f0 for i in range(32)]
    crc = zlib.crc32(header)
    for _ in range(n):
        crc = f0 ^ np.bitwise_xor.reduce([c for i, c in enumerate(cols) if crc >> i & 1] or [0])
    crc, size, name = int(crc), len(header) + n * chunk, (member + ".npy").encode()
    local = struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, 0, 8, 0, 0, crc, len(data), size, len(name), 0) + name
    central = struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 20, 20, 0, 8, 0, 0, crc, len(data), size, len(name),
                          0, 0, 0, 0, 0, 0) + name
    end = struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, 1, 1, len(central), len(local) + len(data), 0)
    path.write_bytes(local + data + central + end)
    return path


def nvir(path: Path, body: str) -> Path:
    path.write_text("// nvmc.ir 1  opset=17\n" + body)
    return path


def csv_cells(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text, newline="")))  # a bare CR ends a row, as in a spreadsheet


def is_number(cell: str) -> bool:
    try:
        float(cell)
        return True
    except ValueError:
        return False


# ------------------------------------------------------------------------------ fixtures
@pytest.fixture(scope="module")
def base(tmp_path_factory, nv) -> Path:
    """Inputs of every kind, built once: m.onnx, ext.onnx + w.bin (external data), cnn.nvir + cnn.npz,
    my.toml (a target by path), cal.npz (calibration inputs), spec.toml + spec.sqlite (a finished sweep)."""
    d = tmp_path_factory.mktemp("base")
    shutil.copy(CNN, d / "m.onnx")
    onnx.save_model(onnx.load(CNN), d / "ext.onnx", save_as_external_data=True, location="w.bin", size_threshold=0)
    shutil.copy(SHIPPED_SRAM, d / "my.toml")
    np.savez(d / "cal.npz", x=np.random.default_rng(0).standard_normal((2, 3, 32, 32)).astype(np.float32))
    write_spec(d / "spec.toml", 'name = "s"\nmodels = ["m.onnx"]\ntargets = ["sram"]\n')
    for argv in (["ir", "m.onnx", "-o", "cnn.nvir"], ["sweep", "spec.toml", "--workers", "0", "-q"]):
        r = nv(d, *argv)
        assert r.rc == 0, what(r, argv)
    assert {"cnn.npz", "spec.sqlite", "w.bin"} <= set(os.listdir(d))
    return d


@pytest.fixture
def work(base, tmp_path) -> Path:
    """A private copy of ``base`` (the cases may link to, or wrongly overwrite, its files)."""
    d = tmp_path / "w"
    shutil.copytree(base, d, symlinks=True)
    return d


def test_fork_server_matches_a_fresh_interpreter(nv, work):
    """The fast runner behaves as `python -m nvmc` does: same exit code, same stderr, same stdout."""
    make_special(work / "out", "chr")
    for argv in (["analyze", "m.onnx", "--json", "out"], ["analyze", "m.onnx", "--top", "3"]):
        fresh = subprocess.run([sys.executable, "-m", "nvmc", *argv], capture_output=True, check=False, cwd=work,
                               env=ENV, timeout=120)
        forked = nv(work, *argv)
        assert (forked.rc, forked.err, forked.out) == (fresh.returncode, fresh.stderr, fresh.stdout)


# ------------------------------------------------------------------------------ 1. output policy
ALL_KINDS = ["chr", "full", "fifo", "sock", "dir", "link"]  # link: a symlink to a character device
OUTPUT_CASES = {  # {out}: the special file; its name gets the suffix the option needs
    "analyze --csv": ["analyze", "m.onnx", "--csv", "{out}"],
    "compile --json": ["compile", "m.onnx", "-t", "sram", "--json", "{out}"],
    "compile --csv": ["compile", "m.onnx", "-t", "sram", "--csv", "{out}"],
    "compile --html": ["compile", "m.onnx", "-t", "sram", "--html", "{out}"],
    "compile -o": ["compile", "m.onnx", "-t", "sram", "-o", "{out}.onnx"],
    "opt -o": ["opt", "m.onnx", "-p", "dce", "-o", "{out}.onnx"],
    "opt --json": ["opt", "m.onnx", "-p", "dce", "-o", "x.onnx", "--json", "{out}"],
    "ir -o": ["ir", "m.onnx", "-o", "{out}.nvir"],
    "export -o": ["export", "m.onnx", "-o", "{out}.onnx"],
    "check --json": ["check", "m.onnx", "m.onnx", "--samples", "1", "--json", "{out}"],
    "sweep --db": ["sweep", "spec.toml", "--workers", "0", "-q", "--db", "{out}.sqlite"],
    "sweep --status --db": ["sweep", "spec.toml", "--status", "--db", "{out}.sqlite"],
    "results --csv": ["results", "spec.toml", "--csv", "{out}"],
    "results --json": ["results", "spec.sqlite", "--json", "{out}"],
    "results --html": ["results", "spec.toml", "--html", "{out}"],
}


def _output_case(nv, work: Path, argv: list[str], what_kind: str) -> None:
    argv = [a.replace("{out}", "out") for a in argv]
    out = work / next(a for a in argv if a.startswith("out"))
    make_special(out, what_kind)
    before = snapshot(work)
    r = nv(work, *argv, timeout=15)
    assert_refused(r, argv=argv)
    assert_unchanged(before, work)  # the device, FIFO, socket, directory or link is what it was
    if what_kind == "link":
        assert kind(work / (out.name + ".dev")) == "chr"
    leftovers = [p for p in os.listdir(work) if p not in before]
    assert not [p for p in leftovers if p.endswith(("-journal", "-wal", "-shm"))], leftovers


@pytest.mark.parametrize("what_kind", ALL_KINDS)
def test_analyze_json_to_a_non_regular_file_is_refused(nv, work, what_kind):
    _output_case(nv, work, ["analyze", "m.onnx", "--json", "{out}"], what_kind)


@pytest.mark.parametrize("what_kind", ["chr", "fifo"])
@pytest.mark.parametrize("case", sorted(OUTPUT_CASES))
def test_every_output_option_refuses_devices_and_fifos(nv, work, case, what_kind):
    _output_case(nv, work, OUTPUT_CASES[case], what_kind)


def test_dash_is_still_stdout(nv, work):
    r = nv(work, "analyze", "m.onnx", "--json", "-")
    assert r.rc == 0 and strict_json(r.stdout)["schema"] == "nvmc.analysis/1", what(r)
    r = nv(work, "results", "spec.toml", "--csv", "-")
    assert r.rc == 0 and csv_cells(r.stdout)[0][0] == "point_id", what(r)


# ------------------------------------------------------------------------------ 2. outputs never overwrite inputs
INPUT_CASES = {
    "external data --json": ["analyze", "ext.onnx", "--json", "w.bin"],
    "external data --csv": ["compile", "ext.onnx", "-t", "sram", "--csv", "w.bin"],
    "external data via a symlink": ["opt", "ext.onnx", "-p", "dce", "-o", "x.onnx", "--json", "w-link.bin"],
    "external data via a hard link": ["export", "ext.onnx", "-o", "w-hard.onnx"],
    "sidecar --csv": ["analyze", "cnn.nvir", "--csv", "cnn.npz"],
    "sidecar ./ --json": ["compile", "cnn.nvir", "-t", "sram", "--json", "./cnn.npz"],
    "sidecar via a hard link": ["opt", "cnn.nvir", "-p", "dce", "-o", "npz-hard.onnx"],
    "target toml --json": ["compile", "m.onnx", "-t", "my.toml", "--json", "my.toml"],
    "target ./toml via a symlink": ["compile", "m.onnx", "-t", "./my.toml", "--csv", "toml-link.csv"],
    "compared target --html": ["compile", "m.onnx", "-t", "sram", "--compare", "my.toml", "--html", "my.toml"],
    "shipped target by name": ["compile", "m.onnx", "-t", "sram", "--json", "shipped-link.json"],
    "calibration -o (hard link)": ["opt", "m.onnx", "-p", 'quantize{inputs="cal.npz"}', "-o", "cal-hard.onnx"],
    "calibration opt --json": ["opt", "m.onnx", "-p", 'quantize{inputs="cal.npz"}', "-o", "q.onnx", "--json",
                               "cal.npz"],
    "calibration compile --json": ["compile", "m.onnx", "-t", "sram", "--passes", 'quantize{inputs="cal.npz"}',
                                   "--json", "cal.npz"],
    "check --inputs --json": ["check", "m.onnx", "m.onnx", "--inputs", "cal.npz", "--json", "cal.npz"],
    "results --csv model": ["results", "spec.toml", "--csv", "m.onnx"],
    "results --json ./model": ["results", "spec.toml", "--json", "./m.onnx"],
    "results --html model via a symlink": ["results", "spec.toml", "--html", "m-link.html"],
    "sweep --db model": ["sweep", "spec.toml", "--workers", "0", "-q", "--db", "m.onnx"],
}


@pytest.mark.parametrize("case", sorted(INPUT_CASES))
def test_outputs_never_overwrite_an_input(nv, work, case):
    """exit 2, one error line, every input byte-identical, whatever the spelling or link."""
    for link, to in (("w-link.bin", "w.bin"), ("toml-link.csv", "my.toml"), ("m-link.html", "m.onnx")):
        (work / link).symlink_to(to)
    (work / "shipped-link.json").symlink_to(SHIPPED_SRAM)  # a write replaces the link, never the shipped file
    for hard, to in (("w-hard.onnx", "w.bin"), ("npz-hard.onnx", "cnn.npz"), ("cal-hard.onnx", "cal.npz")):
        os.link(work / to, work / hard)
    shipped = kind(SHIPPED_SRAM)
    before = snapshot(work)
    argv = INPUT_CASES[case]
    r = nv(work, *argv, timeout=60)
    assert_refused(r, argv=argv)
    assert_unchanged(before, work)
    assert kind(SHIPPED_SRAM) == shipped


# ------------------------------------------------------------------------------ 3. read-only results
def _journal_mode(path: Path) -> str:
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return db.execute("PRAGMA journal_mode").fetchone()[0]
    finally:
        db.close()


READ_ONLY = {  # {db}: the database given
    "results DB": ["results", "{db}"],
    "results SPEC --db": ["results", "spec.toml", "--db", "{db}"],
    "sweep --status --db": ["sweep", "spec.toml", "--status", "--db", "{db}"],
}


@pytest.mark.parametrize("case", sorted(READ_ONLY))
def test_read_only_commands_leave_a_foreign_sqlite_file_alone(nv, work, case):
    foreign = work / "foreign.db"
    db = sqlite3.connect(foreign)
    db.execute("CREATE TABLE t (a)")
    db.execute("INSERT INTO t VALUES (1)")
    db.commit()
    db.close()
    mode = _journal_mode(foreign)
    before = snapshot(work)
    argv = [a.replace("{db}", "foreign.db") for a in READ_ONLY[case]]
    r = nv(work, *argv)
    assert_refused(r, "not an nvmc results database", argv=argv)
    assert snapshot(work) == before and _journal_mode(foreign) == mode  # bytes, journal mode, no new files


@pytest.mark.parametrize("case", sorted(READ_ONLY))
def test_read_only_commands_leave_an_empty_file_empty(nv, work, case):
    (work / "empty.sqlite").write_bytes(b"")
    before = snapshot(work)
    argv = [a.replace("{db}", "empty.sqlite") for a in READ_ONLY[case]]
    r = nv(work, *argv)
    assert_refused(r, "not an nvmc results database", argv=argv)
    assert (work / "empty.sqlite").stat().st_size == 0 and snapshot(work) == before


@pytest.mark.parametrize("case", sorted(READ_ONLY))
@pytest.mark.parametrize("via_link", [False, True], ids=["plain", "symlink"])
def test_read_only_commands_write_nothing(nv, work, case, via_link):
    """Design (from nvmc/sweep/store.py): the read-only commands follow a --db symlink and read the
    database it points to, writing nothing anywhere: not the database, not a -wal/-shm/-journal
    beside the link or beside the file it points to. (Writing, `nvmc sweep --db LINK`, is refused:
    see the next test.)"""
    real = work / "real" / "spec.sqlite"
    real.parent.mkdir()
    shutil.move(work / "spec.sqlite", real)
    (work / "link.sqlite").symlink_to(real)
    db = "link.sqlite" if via_link else "real/spec.sqlite"
    before, before_real = snapshot(work), snapshot(real.parent)
    argv = [a.replace("{db}", db) for a in READ_ONLY[case]]
    r = nv(work, *argv)
    assert r.rc == 0, what(r, argv)
    assert snapshot(work) == before and snapshot(real.parent) == before_real


def test_sweep_does_not_write_through_a_db_symlink(nv, work):
    """nvmc sweep writes a database only at its own path: --db LINK is refused (exit 2) and the
    file the link points to keeps its bytes."""
    (work / "link.sqlite").symlink_to("spec.sqlite")
    write_spec(work / "two.toml", 'name = "two"\nmodels = ["m.onnx"]\ntargets = ["sot-mram"]\n')
    before = snapshot(work)
    r = nv(work, "sweep", "two.toml", "--workers", "0", "-q", "--db", "link.sqlite")
    assert_refused(r, "link", argv=["sweep", "--db", "link.sqlite"])
    assert snapshot(work) == before


# ------------------------------------------------------------------------------ 4. names are only text
MARKUP = ["[/]", "[link=https://evil]click[/link]", "[bold red]x[/]"]


@pytest.mark.parametrize("argv", [["analyze", "n.onnx"], ["compile", "n.onnx", "-t", "sram"]],
                         ids=["analyze", "compile"])
def test_markup_in_node_names_is_printed_literally(nv, tmp_path, argv):
    conv_relu(tmp_path / "n.onnx", MARKUP[0], MARKUP[1])
    r = nv(tmp_path, *argv)
    assert r.rc == 0, what(r, argv)
    assert MARKUP[0] in r.stdout and MARKUP[1] in r.stdout, what(r, argv)


def test_markup_in_target_and_file_names_is_printed_literally(nv, tmp_path):
    target_toml(tmp_path / "b.toml", MARKUP[0], MARKUP[1])
    conv_relu(tmp_path / "[bold]m.onnx")
    r = nv(tmp_path, "explain", "--target", "b.toml")
    assert r.rc in (0, 2) and "internal error" not in r.stderr, what(r)
    if r.rc == 0:
        assert MARKUP[0] in r.stdout and MARKUP[1] in r.stdout, what(r)
    else:
        assert_refused(r)
    r = nv(tmp_path, "compile", "[bold]m.onnx", "-t", "b.toml")
    assert r.rc == 0 and "[bold]m.onnx" in r.stdout and MARKUP[0] in r.stdout, what(r)


# ------------------------------------------------------------------------------ 5. terminal escapes
def _escape_case(d: Path, case: str) -> list[str]:
    if case == "node name: analyze":
        return ["analyze", conv_relu(d / "e.onnx", "a" + ESC + "b").name]
    if case == "node name: compile":
        return ["compile", conv_relu(d / "e.onnx", "a" + ESC + "b").name, "-t", "sram"]
    if case == "node name: error":
        save_model(d / "u.onnx", [helper.make_node("Fancy", ["x"], ["y"], name="n" + ESC)], [vi("x", [1])],
                   [vi("y", [1])])
        return ["analyze", "u.onnx"]
    if case == "file name":
        return ["analyze", conv_relu(d / f"f{ESC}.onnx").name]
    if case == "file name: error":
        return ["analyze", f"missing{ESC}.onnx"]
    if case == "target name: compile":
        return ["compile", conv_relu(d / "m.onnx").name, "-t", target_toml(d / "t.toml", "t" + ESC, "d" + ESC).name]
    if case == "target name: explain":
        return ["explain", "--target", target_toml(d / "t.toml", "t" + ESC, "d" + ESC).name]
    raise AssertionError(case)


@pytest.mark.parametrize("case", ["node name: analyze", "node name: compile", "node name: error", "file name",
                                  "file name: error", "target name: compile", "target name: explain"])
def test_terminal_escapes_never_reach_the_terminal_raw(nv, tmp_path, case):
    argv = _escape_case(tmp_path, case)
    r = nv(tmp_path, *argv)
    assert_clean(r, argv=argv)
    both = r.out + r.err
    assert b"\x1b" not in both and b"\x07" not in both, what(r, argv)
    assert b"pwned" in both and re.search(rb"\\(x1b|u001b|033|e\b)", both), what(r, argv)  # shown, escaped


# ------------------------------------------------------------------------------ 6. CSV formula injection
FORMULAS = ['=HYPERLINK("http://x","y")', "+cmd|' /C calc'!A0", "-2+3", "@SUM(1)", "\t=1", "\r=1"]


def _assert_no_formula(text: str, names: list[str]) -> None:
    """No cell starts a formula (numbers excepted); each name is still there, neutralised."""
    rows = csv_cells(text)
    assert len(rows) > 1, text
    for row in rows:
        for cell in row:
            assert not cell.startswith(("=", "+", "-", "@", "\t", "\r")) or is_number(cell), (cell, row)
    cells = [cell for row in rows for cell in row]
    for name in names:
        assert any(name.strip() in cell for cell in cells), (name, rows)


def _formula_model(path: Path) -> Path:
    w = numpy_helper.from_array(np.full((4, 3, 3, 3), -0.5, np.float32), "w")
    names = iter(FORMULAS)
    nodes = [helper.make_node("Conv", ["x", "w"], ["c0"], name=next(names), pads=[1, 1, 1, 1])]
    nodes += [helper.make_node("Relu", [f"c{i}"], [f"c{i + 1}"], name=n) for i, n in enumerate(names)]
    nodes[-1].output[0] = "y"
    return save_model(path, nodes, [vi("x", [1, 3, 8, 8])], [vi("y", [1, 4, 8, 8])], [w])


@pytest.mark.parametrize("argv", [["analyze", "f.onnx", "--csv", "out.csv"],
                                  ["compile", "f.onnx", "-t", "sram", "--csv", "out.csv"]],
                         ids=["analyze", "compile"])
def test_csv_cells_from_names_are_not_formulas(nv, tmp_path, argv):
    _formula_model(tmp_path / "f.onnx")
    r = nv(tmp_path, *argv)
    assert r.rc == 0, what(r, argv)
    text = (tmp_path / "out.csv").read_bytes().decode()
    rows = csv_cells(text)
    assert len(rows) == 1 + len(FORMULAS), rows  # a name (with a CR) never splits a row
    _assert_no_formula(text, FORMULAS)
    macs = rows[0].index("macs")
    assert all(is_number(row[macs]) for row in rows[1:]), rows  # numbers stay numbers


def test_results_csv_cells_are_not_formulas(nv, tmp_path):
    _formula_model(tmp_path / "=1+2.onnx")
    target_toml(tmp_path / "t.toml", "@SUM(1)", "-1")
    write_spec(tmp_path / "s.toml", 'name = "=HYPERLINK(1)"\nmodels = ["=1+2.onnx"]\ntargets = ["t.toml"]\n'
                                    'pipelines = ["", "dce"]\n')
    r = nv(tmp_path, "sweep", "s.toml", "--workers", "0", "-q")
    assert r.rc == 0, what(r)
    r = nv(tmp_path, "results", "s.toml", "--csv", "out.csv")
    assert r.rc == 0, what(r)
    text = (tmp_path / "out.csv").read_bytes().decode()
    _assert_no_formula(text, ["=1+2.onnx", "@SUM(1)", "=HYPERLINK(1)"])
    rows = csv_cells(text)
    latency = rows[0].index("latency_s")
    assert all(is_number(row[latency]) for row in rows[1:]), rows


# ------------------------------------------------------------------------------ 7. integer wrap
def _maxpool(path: Path, k: int) -> Path:
    node = helper.make_node("MaxPool", ["x"], ["y"], name="mp", kernel_shape=[k, k], pads=[k] * 4, strides=[k, k])
    return save_model(path, [node], [vi("x", [1, 1, 1, 1])], [vi("y", [1, 1, 2, 2])])


CONV_K, CONV_P = 1 << 19, 1 << 12
CONV_MACS = (2 * CONV_P + 1) ** 2 * CONV_K * CONV_K  # about 1.8e19 > 2**63; no tensor above 2**38 elements


def _big_conv(path: Path) -> Path:
    node = helper.make_node("Conv", ["x", "w"], ["y"], name="c", pads=[CONV_P] * 4)
    o = 2 * CONV_P + 1
    return save_model(path, [node], [vi("x", [1, 1, CONV_K, CONV_K]), vi("w", [1, 1, CONV_K, CONV_K])],
                      [vi("y", [1, 1, o, o])])


@pytest.mark.parametrize("model", ["maxpool 2**40", "maxpool 2**31", "conv 2**64 MACs"])
@pytest.mark.parametrize("command", ["analyze", "compile"])
def test_huge_counts_are_exact_or_refused_never_wrapped(nv, tmp_path, model, command):
    if model == "conv 2**64 MACs":
        _big_conv(tmp_path / "m.onnx")
    else:
        _maxpool(tmp_path / "m.onnx", 2 ** int(model.split("**")[1]))
    argv = [command, "m.onnx", "--json", "-"] + (["-t", "sram"] if command == "compile" else [])
    r = nv(tmp_path, *argv, mem=MEM_CAP)
    assert_clean(r, ok=(0, 1) if command == "compile" else (0,), argv=argv)  # compile: 1 = does not fit
    if r.rc == 2:
        return
    doc = strict_json(r.stdout)
    bad = [(k, v) for k, v in numbers(doc) if not math.isfinite(v) or v < 0]
    assert not bad, bad[:10]
    if model.startswith("conv") and doc.get("ok", True):
        macs = doc["totals"]["macs"]
        assert macs > 0 and abs(macs - CONV_MACS) <= 1e-9 * CONV_MACS, (macs, CONV_MACS)


# ------------------------------------------------------------------------------ 8. element types
SUB_BYTE_BITS = {"UINT4": 4, "INT4": 4, "FLOAT4E2M1": 4, "UINT2": 2, "INT2": 2, "FLOAT6E2M3": 6, "FLOAT6E3M2": 6}
DTYPES = [name for name, v in TensorProto.DataType.items() if v != TensorProto.UNDEFINED]


def _dtype_model(path: Path, name: str) -> Path:
    """x (dtype) and an initializer w (dtype), each through Identity (or Cast to float where the
    newest Identity does not take the type, e.g. FLOAT6*)."""
    dt = getattr(TensorProto, name)
    if dt == TensorProto.STRING:
        w = helper.make_tensor("w", dt, [2, 3], [b"a"] * 6)
    else:
        w = numpy_helper.from_array(np.ones((2, 3)).astype(helper.tensor_dtype_to_np_dtype(dt)), "w")
    identity = onnx.defs.get_schema("Identity")
    if any(f"tensor({name.lower()})" in c.allowed_type_strs for c in identity.type_constraints):
        op, attrs, out_dt, opset = "Identity", {}, dt, identity.since_version
    else:
        op, attrs, out_dt, opset = "Cast", {"to": TensorProto.FLOAT}, TensorProto.FLOAT, \
            onnx.defs.get_schema("Cast").since_version
    nodes = [helper.make_node(op, ["x"], ["y"], name="use_x", **attrs),
             helper.make_node(op, ["w"], ["y2"], name="use_w", **attrs)]
    model = save_model(path, nodes, [vi("x", [2, 3], dt)], [vi("y", [2, 3], out_dt), vi("y2", [2, 3], out_dt)],
                       [w], opset=opset)
    onnx.checker.check_model(onnx.load(model), full_check=True)
    return model


@pytest.mark.parametrize("name", DTYPES)
def test_every_onnx_element_type_is_costed_or_named(nv, tmp_path, name):
    _dtype_model(tmp_path / "m.onnx", name)
    r = nv(tmp_path, "analyze", "m.onnx", "--json", "-")
    assert_clean(r, argv=["analyze", name])
    if r.rc == 2:  # a clear message naming the type
        assert name.lower() in r.stderr.lower().replace("_", ""), what(r)
        return
    if name == "STRING":
        return
    bits = SUB_BYTE_BITS.get(name) or helper.tensor_dtype_to_np_dtype(getattr(TensorProto, name)).itemsize * 8
    node = next(n for n in strict_json(r.stdout)["nodes"] if n["name"] == "use_x")
    assert node["input_bytes"] == 6 * bits / 8, (name, bits, node)


def test_int4_weights_through_dequantize_linear(nv, tmp_path):
    w = helper.make_tensor("w", TensorProto.INT4, [4, 4], [1, -2, 3, -4] * 4)
    s = numpy_helper.from_array(np.array(0.5, np.float32), "s")
    nodes = [helper.make_node("DequantizeLinear", ["w", "s"], ["wf"], name="dq"),
             helper.make_node("MatMul", ["x", "wf"], ["y"], name="mm")]
    save_model(tmp_path / "m.onnx", nodes, [vi("x", [1, 4])], [vi("y", [1, 4])], [w, s], opset=21)
    r = nv(tmp_path, "analyze", "m.onnx", "--json", "-")
    assert_clean(r)
    if r.rc == 0:
        totals = strict_json(r.stdout)["totals"]
        assert totals["macs"] == 16 and 8 <= totals["weight_bytes"] <= 16, totals  # 16 int4 = 8 bytes (+ scale)
    else:
        assert "int4" in r.stderr.lower(), what(r)


# ------------------------------------------------------------------------------ 9. resources
def _constant_of_shape(path: Path, n: int = 1 << 16) -> Path:
    """167 bytes on disk; its MatMul weight is ConstantOfShape([n, n]) = 16 GiB of float32."""
    shape = numpy_helper.from_array(np.array([n, n], np.int64), "s")
    nodes = [helper.make_node("ConstantOfShape", ["s"], ["w"], name="cos",
                              value=helper.make_tensor("v", TensorProto.FLOAT, [1], [0.5])),
             helper.make_node("MatMul", ["x", "w"], ["y"], name="mm")]
    return save_model(path, nodes, [vi("x", [1, n])], [vi("y", [1, n])], [shape])


@pytest.mark.parametrize("argv", [["opt", "m.onnx", "--passes", "share-weights", "-o", "out.onnx"],
                                  ["compile", "m.onnx", "-t", "sram", "--passes", "share-weights"]],
                         ids=["opt", "compile"])
def test_a_tiny_model_that_expands_to_a_huge_tensor_stays_under_a_memory_cap(nv, tmp_path, argv):
    _constant_of_shape(tmp_path / "m.onnx")
    r = nv(tmp_path, *argv, mem=MEM_CAP, timeout=60)
    assert_clean(r, ok=(0, 1) if argv[0] == "compile" else (0,), argv=argv)


BOMB = (24576, 24576)  # 2.25 GiB of zeros in a 2.3 MB .npz


@pytest.mark.parametrize("declared", ["declared huge", "declared small"])
def test_an_npz_sidecar_zip_bomb_is_refused_quickly(nv, tmp_path, declared):
    zip_bomb(tmp_path / "b.npz", "w", BOMB)
    n = BOMB[0] if declared == "declared huge" else 2
    nvir(tmp_path / "b.nvir", f"graph @g(%x: f32[1,{n}]) -> (%y: f32[1,{n}]) {{\n  %w = const f32[{n},{n}] @b.npz:w\n"
                              f"  %y = MatMul(%x, %w) : f32[1,{n}]\n  return %y\n}}\n")
    before = snapshot(tmp_path)
    r = nv(tmp_path, "analyze", "b.nvir", mem=MEM_CAP, timeout=20)
    assert_refused(r, argv=["analyze", declared])
    assert snapshot(tmp_path) == before


def test_a_sweep_of_listed_points_over_the_limit_is_refused_quickly(nv, tmp_path):
    """~4,000 [[points]] entries with target = "*" (every shipped target) expand to more than
    100,000 points: refused, and in bounded time (a typo must not hang). Counting entries x
    targets before building any point takes ~3 s here; building 100,000 points first, ~10 s."""
    shutil.copy(CNN, tmp_path / "m.onnx")
    entries = 100_000 // len(list((REPO / "backends" / "targets").glob("*.toml"))) + 1
    write_spec(tmp_path / "big.toml", 'name = "big"\n' + "".join(
        f'[[points]]\nmodel = "m.onnx"\ntarget = "*"\nbatch = {b}\n' for b in range(1, entries + 1)))
    r = nv(tmp_path, "sweep", "big.toml", "--status", timeout=30)
    assert_refused(r, "points", argv=["sweep", "big.toml (points > 100,000)"])
    assert not (tmp_path / "big.sqlite").exists()


FIFO_CASES = {
    "model .onnx": ["analyze", "f.onnx"],
    "model .nvir": ["analyze", "f.nvir"],
    "target .toml": ["compile", "m.onnx", "-t", "f.toml"],
    "sweep spec": ["sweep", "f.toml", "--status"],
    "check --inputs": ["check", "m.onnx", "m.onnx", "--inputs", "f.npz"],
    "opt quantize{inputs}": ["opt", "m.onnx", "-p", 'quantize{inputs="f.npz"}', "-o", "q.onnx"],
    "compile quantize{inputs}": ["compile", "m.onnx", "-t", "sram", "--passes", 'quantize{inputs="f.npz"}'],
}


@pytest.mark.parametrize("case", sorted(FIFO_CASES))
def test_a_fifo_given_as_an_input_is_refused_at_once(nv, tmp_path, case):
    shutil.copy(CNN, tmp_path / "m.onnx")
    for name in ("f.onnx", "f.nvir", "f.toml", "f.npz"):
        os.mkfifo(tmp_path / name)
    r = nv(tmp_path, *FIFO_CASES[case], timeout=10)  # opening a FIFO to read blocks: a hang fails here
    assert_refused(r, argv=FIFO_CASES[case])


def test_a_file_url_scheduler_is_refused_quickly(nv, work):
    r = nv(work, "sweep", "spec.toml", "--scheduler", "file:///x", "--db", "new.sqlite", timeout=5)
    assert_refused(r, argv=["sweep", "--scheduler", "file:///x"])
    assert r.seconds < 5


# ------------------------------------------------------------------------------ 10. standard JSON
def _nan_model(path: Path) -> Path:
    model = onnx.load(CNN)
    t = model.graph.initializer[0]
    a = numpy_helper.to_array(t).copy()
    a.flat[:3] = [np.nan, np.inf, -np.inf]
    t.CopyFrom(numpy_helper.from_array(a, t.name))
    onnx.save(model, path)
    return path


@pytest.mark.parametrize("pair", [("m.onnx", "m.onnx"), ("m.onnx", "nan.onnx")], ids=["identical", "nan"])
def test_check_json_is_standard_json(nv, work, pair):
    _nan_model(work / "nan.onnx")
    r = nv(work, "check", *pair, "--samples", "2", "--json", "-")
    assert_clean(r, ok=(0, 1))
    if r.rc != 2:
        strict_json(r.stdout)


@pytest.mark.parametrize("pipeline", ["dce", "prune", "share-weights"])
def test_opt_json_with_nan_weights_is_standard_json(nv, tmp_path, pipeline):
    _nan_model(tmp_path / "nan.onnx")
    argv = ["opt", "nan.onnx", "-p", pipeline, "-o", "out.onnx", "--json", "-"]
    r = nv(tmp_path, *argv)
    assert_clean(r, argv=argv)
    if r.rc == 0:
        strict_json(r.stdout)


# ------------------------------------------------------------------------------ also: nesting, escapes, names
DEEP = "[" * 60_000 + "]" * 60_000  # under the kernel's 128 KiB limit on one argument


def _deep_case(d: Path, case: str) -> list[str]:
    shutil.copy(CNN, d / "m.onnx")
    deep = "[" * 100_000 + "]" * 100_000
    if case == "nvir attribute":
        nvir(d / "d.nvir", "graph @g(%x: f32[1]) -> (%y: f32[1]) {\n  %y = Relu(%x) {a=" + deep +
             "} : f32[1]\n  return %y\n}\n")
        return ["analyze", "d.nvir"]
    if case == "target toml":
        (d / "d.toml").write_text(SHIPPED_SRAM.read_text().replace("[llc]", "[llc]\nx = " + deep, 1))
        return ["compile", "m.onnx", "-t", "d.toml"]
    if case == "target toml inline tables":
        (d / "d.toml").write_text(SHIPPED_SRAM.read_text() + "\nx = " + "{a=" * 20_000 + "1" + "}" * 20_000 + "\n")
        return ["explain", "--target", "d.toml"]
    if case == "sweep spec set":
        write_spec(d / "d.toml", f'name = "d"\nmodels = ["m.onnx"]\ntargets = ["sram"]\nset = {deep}\n')
        return ["sweep", "d.toml", "--status"]
    if case == "sweep spec grid":
        write_spec(d / "d.toml", f'name = "d"\nmodels = ["m.onnx"]\ntargets = ["sram"]\n[grid]\n'
                                 f'"llc.capacity" = {deep}\n')
        return ["results", "d.toml"]
    if case == "--set value":
        return ["compile", "m.onnx", "-t", "sram", "--set", "llc.capacity=" + DEEP]
    if case == "--set value (explain)":
        return ["explain", "--target", "sram", "--set", "llc.capacity=" + DEEP]
    if case == "pipeline option":
        return ["opt", "m.onnx", "-p", "quantize{bits=" + DEEP + "}", "-o", "q.onnx"]
    raise AssertionError(case)


@pytest.mark.parametrize("case", ["nvir attribute", "target toml", "target toml inline tables", "sweep spec set",
                                  "sweep spec grid", "--set value", "--set value (explain)", "pipeline option"])
def test_deeply_nested_input_is_a_clean_error(nv, tmp_path, case):
    argv = _deep_case(tmp_path, case)
    assert_refused(nv(tmp_path, *argv), argv=argv[:3])


BAD_ESCAPES = ["\\x41", "\\u12", "\\q", "\\U0001F600", "\\uZZZZ", "\\ud800"]


@pytest.mark.parametrize("escape", BAD_ESCAPES)
@pytest.mark.parametrize("where", ["attribute", "node name", "graph name", "value name", "pipeline"])
def test_bad_string_escapes_are_a_clean_error(nv, tmp_path, where, escape):
    shutil.copy(CNN, tmp_path / "m.onnx")
    text = f'"a{escape}b"'
    body = {"attribute": f"graph @g(%x: f32[1]) -> (%y: f32[1]) {{\n  %y = Relu(%x) {{s={text}}} : f32[1]\n",
            "node name": f"graph @g(%x: f32[1]) -> (%y: f32[1]) {{\n  %y = Relu(%x) : f32[1]  // {text}\n",
            "graph name": f"graph @{text}(%x: f32[1]) -> (%y: f32[1]) {{\n  %y = Relu(%x) : f32[1]\n",
            "value name": f"graph @g(%{text}: f32[1]) -> (%y: f32[1]) {{\n  %y = Relu(%{text}) : f32[1]\n",
            "pipeline": None}[where]
    if body is None:
        argv = ["opt", "m.onnx", "-p", f"quantize{{inputs={text}}}", "-o", "q.onnx"]
    else:
        nvir(tmp_path / "e.nvir", body + "  return %y\n}\n")
        argv = ["analyze", "e.nvir"]
    assert_refused(nv(tmp_path, *argv), argv=argv)


def test_an_over_long_output_file_name_is_a_clean_error(nv, work):
    for option in ("--json", "--csv"):
        argv = ["analyze", "m.onnx", option, "a" * 300 + ".out"]
        assert_refused(nv(work, *argv), argv=argv[:3])


@pytest.mark.parametrize("command", ["analyze", "compile"])
def test_a_batch_zero_input_is_refused_or_zero_work_never_batch_one(nv, tmp_path, command):
    w = numpy_helper.from_array(np.ones((4, 3, 3, 3), np.float32), "w")
    save_model(tmp_path / "b0.onnx", [helper.make_node("Conv", ["x", "w"], ["y"], name="conv", pads=[1, 1, 1, 1])],
               [vi("x", [0, 3, 8, 8])], [vi("y", [0, 4, 8, 8])], [w])
    argv = [command, "b0.onnx", "--json", "-"] + (["-t", "sram"] if command == "compile" else [])
    r = nv(tmp_path, *argv)
    assert_clean(r, argv=argv)
    if r.rc == 0:
        doc = strict_json(r.stdout)
        assert doc["totals"]["macs"] == 0, doc["totals"]
        if command == "analyze":
            assert doc["totals"]["activation_bytes"] == 0, doc["totals"]
        else:
            assert doc["batch"] == 0 and doc["model"]["batch"] == 0, (doc["batch"], doc["model"])


def _long_name_case(d: Path, case: str) -> list[str]:
    long = "n" * 100_000
    if case == "unknown op":
        save_model(d / "m.onnx", [helper.make_node("Fancy", ["x"], ["y"], name=long)], [vi("x", [1])], [vi("y", [1])])
    elif case == "unbound dim":
        save_model(d / "m.onnx", [helper.make_node("Relu", ["x" + long], ["y"], name=long)],
                   [vi("x" + long, [1, "s" + long])], [vi("y", [1, "s" + long])])
    elif case == "shape mismatch":
        save_model(d / "m.onnx", [helper.make_node("Conv", ["x", "w"], ["y"], name=long)],
                   [vi("x", [1, 3, 4, 4]), vi("w", [2, 5, 1, 1])], [vi("y", [1, 2, 4, 4])])
    elif case == "missing file":
        return ["analyze", long + ".onnx"]
    return ["analyze", "m.onnx"]


@pytest.mark.parametrize("case", ["unknown op", "unbound dim", "shape mismatch", "missing file"])
def test_error_lines_stay_short_with_a_100kb_name(nv, tmp_path, case):
    argv = _long_name_case(tmp_path, case)
    r = nv(tmp_path, *argv)
    assert_refused(r, argv=argv[:1] + [case])
    longest = max(len(ln) for ln in r.stderr.splitlines())
    assert longest <= MAX_ERROR_LINE, f"a stderr line of {longest} characters"
