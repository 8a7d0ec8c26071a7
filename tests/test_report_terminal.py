"""The terminal report: colours only on a terminal and never with NO_COLOR; --quiet."""

from __future__ import annotations

import os
import pty
import re
import select
import subprocess
import sys

from conftest import REPO, run_nvmc

TINY_CNN = str(REPO / "examples" / "models" / "tiny_cnn.onnx")
COLOUR = re.compile(r"\x1b\[[0-9;]*(3[0-9]|9[0-7]|38;)[0-9;]*m")   # a foreground colour SGR sequence


def run_on_a_terminal(*args: str, no_color: bool) -> str:
    """Run nvmc with stdout and stderr on a pseudo-terminal; returns what it printed."""
    env = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "FORCE_COLOR", "TERM")}
    env.update(TERM="xterm-256color", COLUMNS="160")
    if no_color:
        env["NO_COLOR"] = "1"
    master, slave = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "nvmc", *args], stdout=slave, stderr=slave, stdin=subprocess.DEVNULL,
                            cwd=REPO, env=env)
    os.close(slave)
    chunks = []
    while True:
        ready, _, _ = select.select([master], [], [], 60)
        if not ready:
            proc.kill()
            break
        try:
            data = os.read(master, 65536)
        except OSError:     # the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    proc.wait(60)
    os.close(master)
    assert proc.returncode == 0
    return b"".join(chunks).decode("utf-8", "replace")


def test_colours_on_a_terminal_and_none_with_no_color():
    args = ("compile", TINY_CNN, "-t", "sram", "--compare", "sot-mram")
    coloured = run_on_a_terminal(*args, no_color=False)
    plain = run_on_a_terminal(*args, no_color=True)
    assert "energy by component" in coloured and "energy by component" in plain
    assert COLOUR.search(coloured), "rich printed no colour on a terminal"
    assert not COLOUR.search(plain), "NO_COLOR is set, yet colours were printed"


def test_no_escape_codes_when_not_a_terminal_and_quiet_prints_nothing(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "FORCE_COLOR")}
    proc = subprocess.run([sys.executable, "-m", "nvmc", "compile", TINY_CNN, "-t", "sram"], capture_output=True,
                          text=True, cwd=REPO, env=env, timeout=300)
    assert proc.returncode == 0 and "energy by component" in proc.stdout
    assert "\x1b[" not in proc.stdout + proc.stderr
    quiet = run_nvmc("compile", TINY_CNN, "-t", "sram", "-q", "--json", str(tmp_path / "r.json"),
                     "--html", str(tmp_path / "r.html"), check=True)
    assert quiet.stdout == "" and quiet.stderr == ""
    assert (tmp_path / "r.json").exists() and (tmp_path / "r.html").exists()
