"""Output destinations for the output-path fuzzer (tests/test_fuzz_surfaces.py).

A case is one output option of one command (``OPTIONS``), one run's inputs (the model and
what it reads: external data, .npz sidecar, target TOML, calibration .npz, sweep spec and its
models, a results database) and one destination ``KIND``, made in a private copy of the
base folder by :func:`make_destination`:

* what may be written: a new name, an existing regular file, a name with control characters
  or rich markup in it;
* what must be refused (exit 2, nothing changed): private character devices ((1, 3) as
  /dev/null, (1, 7) as /dev/full; made with mknod, skipped where that fails), FIFOs (never
  opened: a case that opens one to write would hang, and the timeout fails it), sockets,
  directories, a symlink to each of them, a hard link, a symlink or a ``./``, ``sub/../``,
  ``../w/`` or absolute spelling of each input of the run, a .nvir whose sidecar .npz would
  be an input or a FIFO, a name over NAME_MAX, a path over PATH_MAX, a missing directory;
* either (exit 0 or 2): a symlink to a regular file that is not an input (a write replaces
  the link, never its target), a dangling symlink (never written through), a 255-byte name,
  ``-`` (stdout) and a companion file (``X.onnx.data``) that is a FIFO.
"""

from __future__ import annotations

import os
import random
import re
import socket
import stat
from dataclasses import dataclass, field
from pathlib import Path

KINDS = ["new", "regular", "ctrl-name", "markup-name", "chr-null", "chr-full", "fifo", "sock", "dir", "link-chr",
         "link-fifo", "link-sock", "link-dir", "link-regular", "dangling", "hard-input", "link-input", "dot-input",
         "dotdot-input", "up-input", "abs-input", "sidecar-input", "sidecar-fifo", "companion-fifo", "long-name",
         "name-255", "long-path", "missing-dir", "stdout"]
MUST_WRITE = {"new", "regular", "ctrl-name", "markup-name"}
EITHER = {"link-regular", "dangling", "name-255", "stdout", "companion-fifo"}
SPECIAL = {"chr-null": "chr", "chr-full": "chr", "fifo": "fifo", "sock": "sock", "dir": "dir"}


@dataclass
class Option:
    """One output option: ``argv`` has {model}, {target}, {out} (and {passes}) placeholders."""

    name: str
    argv: list[str]
    fmt: str                      # json, csv, html, onnx, nvir, sqlite
    suffix: str = ""              # the suffix the option requires ("" = any)
    models: tuple[str, ...] = ("m.onnx", "ext.onnx", "cnn.nvir")
    stdout_ok: bool = False       # '-' writes to stdout
    calibrated: bool = False      # may add quantize{inputs="cal.npz"} (then cal.npz is an input)


OPTIONS = [
    Option("compile --json", ["compile", "{model}", "-t", "{target}", "-q", "{passes}", "--json", "{out}"], "json",
           stdout_ok=True, calibrated=True),
    Option("compile --csv", ["compile", "{model}", "-t", "{target}", "-q", "{passes}", "--csv", "{out}"], "csv",
           stdout_ok=True, calibrated=True),
    Option("compile --html", ["compile", "{model}", "-t", "{target}", "-q", "{passes}", "--html", "{out}"], "html",
           calibrated=True),
    Option("compile -o", ["compile", "{model}", "-t", "{target}", "-q", "{passes}", "-o", "{out}"], "onnx", ".onnx",
           calibrated=True),
    Option("analyze --json", ["analyze", "{model}", "--json", "{out}"], "json", stdout_ok=True),
    Option("analyze --csv", ["analyze", "{model}", "--csv", "{out}"], "csv", stdout_ok=True),
    Option("ir -o", ["ir", "{model}", "-o", "{out}"], "nvir", ".nvir"),
    Option("export -o", ["export", "{model}", "-o", "{out}"], "onnx", ".onnx"),
    Option("opt -o .onnx", ["opt", "{model}", "-p", "{pipeline}", "-o", "{out}"], "onnx", ".onnx", calibrated=True),
    Option("opt -o .nvir", ["opt", "{model}", "-p", "{pipeline}", "-o", "{out}"], "nvir", ".nvir", calibrated=True),
    Option("opt --json", ["opt", "{model}", "-p", "{pipeline}", "--json", "{out}"], "json", calibrated=True),
    Option("check --json", ["check", "{model}", "{model}", "--samples", "1", "{inputs}", "--json", "{out}"], "json",
           models=("m.onnx", "cnn.nvir"), stdout_ok=True, calibrated=True),
    Option("results --csv", ["results", "{source}", "--csv", "{out}"], "csv", models=(), stdout_ok=True),
    Option("results --json", ["results", "{source}", "--json", "{out}"], "json", models=(), stdout_ok=True),
    Option("results --html", ["results", "{source}", "--html", "{out}"], "html", models=()),
    Option("sweep --db", ["sweep", "spec.toml", "--workers", "0", "-q", "--db", "{out}"], "sqlite", models=()),
]

MODEL_INPUTS = {"m.onnx": ["m.onnx"], "ext.onnx": ["ext.onnx", "w.bin"], "cnn.nvir": ["cnn.nvir", "cnn.npz"]}
SWEEP_INPUTS = ["spec.toml", "m.onnx", "mine.toml"]  # what `nvmc sweep spec.toml` reads


@dataclass
class Case:
    option: Option
    kind: str
    argv: list[str]
    inputs: list[str]             # names in the work folder, read by the run
    out: str                      # the destination as given on the command line
    companions: list[str] = field(default_factory=list)  # special files beside it that must stay as they are
    dangling_target: str | None = None
    expect: str | None = None     # "ok" (written), "error" (refused) or None (either)


def _argv(option: Option, rnd: random.Random) -> tuple[list[str], list[str]]:
    """The option's command line with a model, target and pipeline drawn; and the run's inputs."""
    inputs: list[str] = []
    subs = {}
    if option.models:
        model = rnd.choice(option.models)
        subs["{model}"] = model
        inputs += MODEL_INPUTS[model]
    subs["{target}"] = rnd.choice(["sram", "mine.toml"])
    if subs["{target}"] == "mine.toml" and option.argv[0] == "compile":
        inputs.append("mine.toml")
    calibrate = option.calibrated and rnd.random() < 0.4
    subs["{passes}"] = 'quantize{inputs="cal.npz"}' if calibrate else ""
    subs["{pipeline}"] = 'quantize{inputs="cal.npz"}' if calibrate else rnd.choice(["dce", "canonicalize", ""])
    subs["{inputs}"] = "cal.npz" if calibrate else ""
    if calibrate:
        inputs.append("cal.npz")
    if option.argv[0] == "results":
        subs["{source}"] = rnd.choice(["spec.toml", "spec.sqlite"])
        inputs += ["spec.sqlite"] + (SWEEP_INPUTS if subs["{source}"] == "spec.toml" else [])
    if option.argv[0] == "sweep":
        inputs += SWEEP_INPUTS
    argv = []
    for a in option.argv:
        if a == "{passes}":
            argv += ["--passes", subs[a]] if subs[a] else []
        elif a == "{inputs}":
            argv += ["--inputs", subs[a]] if subs[a] else []
        else:
            argv.append(subs.get(a, a))
    return argv, list(dict.fromkeys(inputs))


def mknod(path: Path, minor: int) -> bool:
    try:
        os.mknod(path, stat.S_IFCHR | 0o666, os.makedev(1, minor))
    except OSError:
        return False
    return True


def make_special(path: Path, kind: str) -> bool:
    """Make a private device, FIFO, socket or directory at ``path``; False where not permitted."""
    if kind in ("chr-null", "chr-full"):
        return mknod(path, 7 if kind == "chr-full" else 3)
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "dir":
        path.mkdir()
    elif kind == "sock":
        s = socket.socket(socket.AF_UNIX)
        try:
            s.bind(path.name)  # relative to the work folder (the cwd): AF_UNIX paths are short
        except OSError:
            return False
        finally:
            s.close()
    return True


class Skip(Exception):
    """This kind cannot be made here (mknod or bind not permitted)."""


def make_destination(work: Path, option: Option, kind: str, rnd: random.Random) -> Case:
    """Build the destination ``kind`` for ``option`` in ``work`` (the cwd); return the case."""
    argv, inputs = _argv(option, rnd)
    suffix = option.suffix or rnd.choice([".json", ".csv", ".html", ".out", ".sqlite", ""])
    if option.fmt == "sqlite" and rnd.random() < 0.7:
        suffix = ".sqlite"
    companions: list[str] = []
    dangling = None
    out = "out" + suffix
    expect = "ok" if kind in MUST_WRITE else None if kind in EITHER else "error"
    if kind == "new":
        out = rnd.choice(["out", "sub/out", "./out", "sub/../out", str(work / "out")]) + suffix
    elif kind == "regular":
        if option.fmt == "sqlite" and rnd.random() < 0.5:
            (work / out).write_bytes((work / "spec.sqlite").read_bytes())  # an nvmc database: resumed
        else:
            (work / out).write_bytes(b"old contents, not a database\n")
            if option.fmt == "sqlite":
                expect = "error"  # a file that is not a database is never overwritten by one
    elif kind == "ctrl-name":
        out = rnd.choice(["o\x1b[2J", "o\nx", "o\r", "o\x07", "o\u202e", "o\x7f", "o\t", "o\\x1b"]) + suffix
    elif kind == "markup-name":
        out = rnd.choice(["[bold]o", "[red]", "[link=evil.example]o", ":smile:", "o[i]", "=1+2", "@o", "o<>"]) + suffix
    elif kind in SPECIAL:
        if not make_special(work / out, kind):
            raise Skip(kind)
        companions.append(out)
    elif kind.startswith("link-") and kind.removeprefix("link-") in ("chr", "fifo", "sock", "dir"):
        real = {"chr": "chr-null", "fifo": "fifo", "sock": "sock", "dir": "dir"}[kind.removeprefix("link-")]
        if not make_special(work / "target.special", real):
            raise Skip(kind)
        (work / out).symlink_to(rnd.choice(["target.special", str(work / "target.special")]))
        companions += ["target.special", out]
    elif kind == "link-regular":
        (work / "elsewhere.txt").write_bytes(b"not an input\n")
        (work / out).symlink_to("elsewhere.txt")
        companions.append("elsewhere.txt")  # the link may be replaced; the file it points to, never
    elif kind == "dangling":
        dangling = rnd.choice(["nowhere.txt", "sub/nowhere.txt", "../outside-" + work.name + ".txt"])
        (work / out).symlink_to(dangling)
    elif kind in ("hard-input", "link-input"):
        target = rnd.choice(inputs)
        (os.link if kind == "hard-input" else os.symlink)(target if kind == "link-input" else work / target, work / out)
    elif kind in ("dot-input", "dotdot-input", "up-input", "abs-input"):
        fitting = [i for i in inputs if not option.suffix or i.endswith(option.suffix)]
        if not fitting:  # no input has the suffix the option needs: a link with it
            os.link(work / rnd.choice(inputs), work / out)
            fitting = [out]
        target = rnd.choice(fitting)
        out = {"dot-input": f"./{target}", "dotdot-input": f"sub/../{target}", "up-input": f"../{work.name}/{target}",
               "abs-input": str(work / target)}[kind]
    elif kind in ("sidecar-input", "sidecar-fifo"):
        if option.fmt != "nvir":  # the companion of an .onnx output: X.onnx.data
            return make_destination(work, option, "companion-fifo", rnd)
        stem = "side"
        npz = [i for i in inputs if i.endswith(".npz")]
        if kind == "sidecar-input" and npz and rnd.random() < 0.5:
            stem = Path(rnd.choice(npz)).stem  # the sidecar of the output is that input itself
        elif kind == "sidecar-input":
            (os.link if rnd.random() < 0.5 else os.symlink)(work / rnd.choice(inputs), work / f"{stem}.npz")
        else:
            os.mkfifo(work / f"{stem}.npz")
            companions.append(f"{stem}.npz")
        out = f"{stem}.nvir"
    elif kind == "companion-fifo":
        os.mkfifo(work / (out + ".data"))
        companions.append(out + ".data")
    elif kind == "long-name":
        out = "n" * rnd.choice([256, 300, 5000]) + suffix
    elif kind == "name-255":
        out = "n" * (255 - len(suffix)) + suffix
    elif kind == "long-path":
        out = "sub/../" * 700 + "out" + suffix  # over PATH_MAX (pathlib folds "./", not "..")
    elif kind == "missing-dir":
        out = rnd.choice(["nodir/out", "sub/nodir/out", "m.onnx/out"]) + suffix
    elif kind == "stdout":
        out = "-"
        expect = "ok" if option.stdout_ok else "error"
    else:
        raise AssertionError(kind)
    if option.fmt == "nvir" and expect == "ok" and re.search(r"[\s:@<>]", Path(out).stem):
        expect = "error"  # the .nvir text could not name its sidecar .npz ('@file:key'): refused, not written
    argv = [out if a == "{out}" else a for a in argv]
    return Case(option, kind, argv, inputs, out, companions, dangling, expect)


def kind_of(path: Path) -> str:
    """What is at ``path`` without following a link: 'file:<bytes>', 'link:<target>', 'chr', ..."""
    st = os.lstat(path)
    if stat.S_ISLNK(st.st_mode):
        return "link:" + os.readlink(path)
    if stat.S_ISREG(st.st_mode):
        return "file:" + str(hash(path.read_bytes()))
    for test, name in ((stat.S_ISCHR, "chr"), (stat.S_ISFIFO, "fifo"), (stat.S_ISSOCK, "sock"), (stat.S_ISDIR, "dir"),
                       (stat.S_ISBLK, "blk")):
        if test(st.st_mode):
            return name
    return "other"


def snapshot(folder: Path) -> dict[str, str]:
    """Relative path -> kind of everything under ``folder`` (links not followed)."""
    out = {}
    for root, dirs, files in os.walk(folder):
        for name in dirs + files:
            p = Path(root) / name
            out[str(p.relative_to(folder))] = kind_of(p)
    return out
