"""Hostile text, and models, targets and sweep specs whose every name is made of it, for the
renderer fuzzer (tests/test_fuzz_surfaces.py), with the checks each output format must pass.

    rnd = random.Random(seed)
    text = hostile_text(rnd)                         # '[bold]x\\x1b[2J=HYPERLINK(...)</script>...'
    names = HostileNames.draw(rnd)                   # node/op/value/graph/file/target names
    path = write_hostile_model(folder, names, rnd)   # an .onnx file that uses them all
    target = write_target(folder / "t.toml", SRAM, names.target, names.description)

    assert_terminal_safe(stdout + stderr)           # no byte a terminal would act on
    assert_csv_safe(text); strict_json(text); assert_html_safe(page, names.all())

The atoms are what a terminal, rich, a spreadsheet or a browser would act on instead of
showing: rich markup and emoji codes, ESC/CSI/OSC sequences, BEL, CR, backspace, C1
controls, bidirectional overrides, NUL (where ONNX lets a string hold it), formula starters,
``</script>`` and quotes; and names long enough to need shortening.
"""

from __future__ import annotations

import csv
import io
import json
import random
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

MARKUP = ["[/]", "[bold]", "[bold red]x[/]", "[link=https://evil.example]click[/link]", "[/link]", "[red",
          "\\[escaped]", ":smile:", ":cross_mark:", ":thumbs_up:", "[i]", "[reverse blink]"]
TERMINAL = ["\x1b[2J", "\x1b]0;pwned\x07", "\x1b]8;;https://evil.example\x1b\\link\x1b]8;;\x1b\\", "\x1b[31m",
            "\x9b2J", "\x9d0;pwned\x9c", "\x07", "\r", "\b", "\x7f", "\x0c", "\x0b", "\x85", "\u202e", "\u2066",
            "\u200f", "\x1bc", "\x1b[?1049h"]
FORMULAS = ['=HYPERLINK("http://evil.example","x")', "+cmd|' /C calc'!A0", "-2+3", "@SUM(1)", "\t=1", "\r=1",
            "=1", "-1", "+1.5", "=", "@"]
HTML = ["</script><script>alert('NVMCPWN')</script>", "<img src=x onerror=NVMCPWN>", "<!--", "]]>",
        "</title><b>NVMCPWN", "<svg/onload=NVMCPWN>", "&amp;", "&lt;b&gt;", "\u2028", "\u2029",
        "\"><i>NVMCPWN</i>", "' onmouseover='NVMCPWN"]
OTHER = ['"', "'", "\\", "%s", "{0}", "{}", "é", "😀", "\ufeff", "\n", " ", "\t", "a,b", '","', "//", "#",
         "NaN", "Infinity", "\u00a0", "𝕏", "ﷺ"]
ATOMS = MARKUP + TERMINAL + FORMULAS + HTML + OTHER
PLAIN = ["a", "conv", "relu", "x", "node_1", "out", "layer.2", "W"]

# What a terminal would act on (nvmc/render.py shows each as an escape): C0 controls but tab
# and newline, DEL, C1, the line and paragraph separators (rich breaks lines at them) and the
# bidirectional marks and overrides.
UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u200e\u200f\u2028-\u202e\u2066-\u2069]")
MAX_STDERR_LINE = 2200  # nvmc/render.py prints an error line of at most about 2,000 characters
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def hostile_text(rnd: random.Random, *, nul: bool = False, long: float = 0.06, newline: bool = True) -> str:
    """1 to 4 hostile atoms between plain words; now and then very long; never empty."""
    parts = []
    for _ in range(rnd.randint(1, 4)):
        if rnd.random() < 0.3:
            parts.append(rnd.choice(PLAIN))
        parts.append(rnd.choice(ATOMS))
    if nul and rnd.random() < 0.3:
        parts.insert(rnd.randrange(len(parts) + 1), "\x00")
    if rnd.random() < long:
        parts.append(rnd.choice(["n" * 300, "[b]" * 200, "\x1b[2J" * 100, "é" * 2500, "x" * 20_000]))
    text = "".join(parts)
    if not newline:
        text = text.replace("\n", " ")
    return text or "x"


def file_name(rnd: random.Random, suffix: str) -> str:
    """A hostile but legal file name (no '/', no NUL, at most 200 bytes) ending in ``suffix``."""
    stem = hostile_text(rnd, long=0).replace("/", "_").replace("\x00", "_")
    while len(stem.encode()) > 200 - len(suffix):
        stem = stem[: len(stem) // 2]
    if stem in ("", ".", ".."):
        stem = "f" + stem
    return stem + suffix


def toml_string(text: str) -> str:
    """A TOML basic string holding ``text`` exactly (controls as \\uXXXX)."""
    out = ['"']
    for c in text:
        o = ord(c)
        if c == '"':
            out.append('\\"')
        elif c == "\\":
            out.append("\\\\")
        elif o < 0x20 or o == 0x7F:
            out.append(f"\\u{o:04x}")
        else:
            out.append(c)
    out.append('"')
    return "".join(out)


@dataclass
class HostileNames:
    """Every name a model, a target and a sweep carry, drawn together for one case."""

    nodes: list[str]
    values: list[str]
    graph: str
    op_type: str
    domain: str
    file: str
    target: str
    description: str
    sweep: str
    custom_op: bool = False
    extra: dict = field(default_factory=dict)

    @classmethod
    def draw(cls, rnd: random.Random) -> "HostileNames":
        def name(nul=False):
            return hostile_text(rnd, nul=nul)

        values = []
        while len(values) < 4:  # distinct: they are the graph's edges
            v = hostile_text(rnd, nul=rnd.random() < 0.05)
            if v not in values:
                values.append(v)
        nodes = [name(nul=True) for _ in range(3)]
        return cls(nodes=nodes, values=values, graph=name(), op_type=hostile_text(rnd, long=0),
                   domain=rnd.choice(["", "com.evil", hostile_text(rnd, long=0)]),
                   file=file_name(rnd, ".onnx"), target=name(), description=name(), sweep=name(),
                   custom_op=rnd.random() < 0.2)

    def all(self) -> list[str]:
        return [*self.nodes, *self.values, self.graph, self.op_type, self.domain, self.file, self.target,
                self.description, self.sweep]


def hostile_model(names: HostileNames, rnd: random.Random) -> onnx.ModelProto:
    """x -> Conv -> Relu (-> a custom-domain op) -> Relu -> y, every name from ``names``."""
    x, c, r, y = names.values
    w_name = "w" if rnd.random() < 0.5 else names.values[1] + "_w"
    w = numpy_helper.from_array(np.full((4, 3, 3, 3), 0.1, np.float32), w_name)
    nodes = [helper.make_node("Conv", [x, w_name], [c], name=names.nodes[0], pads=[1, 1, 1, 1],
                              doc_string=names.description)]
    if names.custom_op:
        nodes.append(helper.make_node(names.op_type, [c], [r], name=names.nodes[1], domain=names.domain))
    else:
        nodes.append(helper.make_node("Relu", [c], [r], name=names.nodes[1]))
    nodes.append(helper.make_node("Relu", [r], [y], name=names.nodes[2]))
    graph = helper.make_graph(nodes, names.graph, [helper.make_tensor_value_info(x, TensorProto.FLOAT, [1, 3, 8, 8])],
                              [helper.make_tensor_value_info(y, TensorProto.FLOAT, [1, 4, 8, 8])], [w],
                              doc_string=names.description)
    opsets = [helper.make_opsetid("", 17)]
    if names.custom_op and names.domain:
        opsets.append(helper.make_opsetid(names.domain, 1))
    model = helper.make_model(graph, opset_imports=opsets, producer_name=names.target)
    model.ir_version = 8
    return model


def write_hostile_model(folder: Path, names: HostileNames, rnd: random.Random) -> Path:
    path = folder / names.file
    path.write_bytes(hostile_model(names, rnd).SerializeToString())
    return path


def write_target(path: Path, template: Path, name: str, description: str) -> Path:
    """``template`` (a shipped target TOML) with its name and description replaced."""
    text = re.sub(r"(?m)^name = .*$", lambda m: f"name = {toml_string(name)}", template.read_text(), count=1)
    text = re.sub(r"(?m)^description = .*$", lambda m: f"description = {toml_string(description)}", text, count=1)
    path.write_text(text, encoding="utf-8")
    return path


def write_spec(path: Path, name: str, models: list[str], targets: list[str], pipelines=("", "dce")) -> Path:
    lines = ['schema = "nvmc.sweep/1"', f"name = {toml_string(name)}",
             "models = [" + ", ".join(map(toml_string, models)) + "]",
             "targets = [" + ", ".join(map(toml_string, targets)) + "]",
             "pipelines = [" + ", ".join(map(toml_string, pipelines)) + "]"]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


# ------------------------------------------------------------------ checks
def _reject(constant: str):
    raise ValueError(f"non-standard JSON constant {constant}")


def strict_json(text: str):
    """json.loads that refuses NaN, Infinity and -Infinity (RFC 8259)."""
    return json.loads(text, parse_constant=_reject)


def assert_terminal_safe(text: str, what: str = "") -> None:
    """No character a terminal would act on (NO_COLOR=1: not even colour sequences)."""
    m = UNSAFE.search(text)
    if m:
        at = m.start()
        raise AssertionError(f"{what}: raw control character {m.group()!r} at {at}: {text[max(0, at - 80):at + 80]!r}")


def assert_short_lines(stderr: str, what: str = "") -> None:
    longest = max((len(ln) for ln in stderr.splitlines()), default=0)
    assert longest <= MAX_STDERR_LINE, f"{what}: a stderr line of {longest} characters"


def is_number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


def csv_rows(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text, newline="")))


def assert_csv_safe(text: str, what: str = "") -> list[list[str]]:
    """Rows of equal length; no cell that a spreadsheet would run as a formula."""
    rows = csv_rows(text)
    assert rows and len(rows) > 1, f"{what}: CSV without data rows: {text[:300]!r}"
    width = len(rows[0])
    for row in rows:
        assert len(row) == width, f"{what}: a row of {len(row)} cells under a header of {width}: {row!r}"
        for cell in row:
            assert not cell.startswith(FORMULA_START) or is_number(cell), f"{what}: formula cell {cell!r}"
    return rows


DATA_BLOCK = re.compile(r'<script id="nvmc-data" type="application/json">(.*?)</script>', re.S)


def assert_html_safe(page: str, what: str = "", scripts: int = 3) -> None:
    """The page's data block is strict JSON, the page has exactly its own ``scripts`` script
    elements, and no tag from a hostile name (marked NVMCPWN) appears unescaped."""
    m = DATA_BLOCK.search(page)
    assert m, f"{what}: no data block"
    strict_json(m.group(1))
    assert page.count("</script>") == scripts, f"{what}: {page.count('</script>')} </script> (want {scripts})"
    raw = re.search(r"<[^<>&]*NVMCPWN", page)
    assert raw is None, f"{what}: markup from a name appears unescaped: {page[raw.start():raw.end() + 40]!r}"
