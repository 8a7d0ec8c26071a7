"""Tables that never hide what identifies a row (issue 24).

A name (node, op, target) folds onto more lines instead of being cut to "…", the figures keep
their width, and a comparison of every shipped target fits 100 columns. These run the CLI in a
subprocess with a fixed terminal width, as a user's terminal would give it.
"""

from __future__ import annotations

import os
import subprocess
import sys

import onnx
import pytest

from conftest import REPO, zoo_path
from nvmc.backends.target import shipped_targets

TINY_CNN = REPO / "examples" / "models" / "tiny_cnn.onnx"


def run_at(columns: int, *args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, NO_COLOR="1", COLUMNS=str(columns))
    return subprocess.run([sys.executable, "-m", "nvmc", *args], capture_output=True, text=True, cwd=REPO,
                          env=env, timeout=300)


def table_rows(text: str, title: str) -> list[list[str]]:
    """The body rows of the boxed table titled ``title``, each a list of cell texts with the
    lines of a folded cell joined (a new row starts where the third column has a figure)."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(title))
    body = next(i for i in range(start, len(lines)) if lines[i].startswith("┡"))
    rows: list[list[str]] = []
    for line in lines[body + 1:]:
        if line.startswith("└"):
            break
        cells = [c.strip() for c in line.split("│")[1:-1]]
        if cells[2] or not rows:
            rows.append(cells)
        else:
            rows[-1] = [a + b for a, b in zip(rows[-1], cells)]
    return rows


def test_compare_every_shipped_target_on_resnet50_fits_100_columns():
    """Acceptance 2 of issue 24: every shipped target, ResNet-50, 100 columns: exit 0, the HDC-only
    targets a row with the reason, every target named whole at the start of its row."""
    proc = run_at(100, "compile", str(zoo_path("light_resnet50")), "--target", "sot-mram", "--compare", "all")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout[proc.stdout.index("comparison:"):].splitlines()
    rule = next(i for i, line in enumerate(lines) if line.startswith("───"))
    end = next(i for i in range(rule, len(lines)) if ": n/a: " in lines[i] or lines[i].startswith("note:"))
    table = lines[:end]
    assert max(map(len, table)) <= 100 and "…" not in "\n".join(table)
    costed = {line.split()[0] for line in table[rule + 1:]}
    na = {line.split(": n/a: ")[0]: line for line in lines[end:] if ": n/a: " in line}
    targets = set(shipped_targets())
    assert costed | set(na) == targets, f"targets missing or cut: {sorted(targets - costed - set(na))}"
    assert na and all("costs hyperdimensional-computing models only" in line for line in na.values())
    assert "the energies cover different parts of the system" in proc.stdout  # scopes differ across families


@pytest.fixture(scope="module")
def long_names(tmp_path_factory) -> str:
    """tiny_cnn with node names as long as a torch export's ('/encoder/layer.0/attention/...')."""
    model = onnx.load(TINY_CNN)
    for i, node in enumerate(model.graph.node):
        node.name = f"/encoder/layer.{i}/attention/self/{node.op_type}_with_a_very_long_export_suffix_{i}"
    path = tmp_path_factory.mktemp("names") / "long_names.onnx"
    onnx.save(model, path)
    return str(path)


def test_long_layer_names_fold_whole_at_80_columns(long_names):
    proc = run_at(80, "compile", long_names, "--target", "sot-mram", "--top", "5")
    assert proc.returncode == 0, proc.stderr
    assert "…" not in proc.stdout
    assert all(len(line) <= 80 for line in proc.stdout.splitlines() if line[:1] in "┏┃┡│└")
    rows = table_rows(proc.stdout, "top ")
    names = {n.name for n in onnx.load(long_names).graph.node}
    assert len(rows) == 5 and all(r[0] in names for r in rows), rows
    assert all(r[3].endswith("s") for r in rows)  # the latency column kept whole ("1.23 µs")


def test_analyze_folds_op_and_node_names_at_80_columns(long_names):
    proc = run_at(80, "analyze", long_names)
    assert proc.returncode == 0, proc.stderr
    assert "…" not in proc.stdout
    names = {n.name for n in onnx.load(long_names).graph.node}
    rows = table_rows(proc.stdout, "long_names")
    assert rows and all(r[0] in names for r in rows), rows


def test_a_pass_says_how_many_nodes_it_left_alone_and_why():
    """winograd then quantize: the WinogradConv nodes are not quantised, and the note says so."""
    proc = run_at(200, "compile", str(TINY_CNN), "--target", "sot-mram", "--passes", "winograd,quantize{bits=8}")
    assert proc.returncode == 0, proc.stderr
    line = next(ln for ln in proc.stderr.splitlines() if "pass quantize" in ln)
    assert "left 2 place(s) alone: 2 because nvmc.WinogradConv computes its MACs in a form of its own" in line
    assert "run them before the pass that made it" in line


def test_neon_says_why_it_changed_nothing(tmp_path):
    from onnx import TensorProto, helper, numpy_helper
    import numpy as np

    w = numpy_helper.from_array(np.ones((4, 4), np.float32), "w")
    graph = helper.make_graph([helper.make_node("MatMul", ["x", "w"], ["y"], name="mm")], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])], [w])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), tmp_path / "mm.onnx")
    proc = run_at(200, "compile", str(tmp_path / "mm.onnx"), "--target", "sot-mram", "--passes", "neon")
    assert proc.returncode == 0, proc.stderr
    assert "pass neon: no change; left 1 place(s) alone: 1 because the model has no node NEON would replace" \
        in proc.stderr
    proc = run_at(200, "compile", str(TINY_CNN), "--target", "sot-mram", "--passes", "neon{ops=gelu}")
    assert "1 because Softmax is not among ops=gelu" in proc.stderr


def test_three_target_comparison_switches_to_rows_when_the_columns_do_not_fit():
    """At 80 columns the metric-by-target table of three targets is wider than the terminal: it
    becomes one row per target rather than a table whose metric names are squeezed away."""
    args = ("compile", str(TINY_CNN), "--target", "sot-mram", "--compare", "sram,stt-mram")
    narrow, wide = run_at(80, *args), run_at(200, *args)
    assert narrow.returncode == wide.returncode == 0
    assert "energy / inference" in wide.stdout and "precision costed" in wide.stdout   # metric by metric
    rows = narrow.stdout[narrow.stdout.index("comparison:"):].splitlines()
    assert all(len(line) <= 80 for line in rows if not line.startswith("note"))
    assert {line.split()[0] for line in rows if line.split() and line.split()[0] in
            ("sot-mram", "sram", "stt-mram")} == {"sot-mram", "sram", "stt-mram"}


def test_the_readme_main_job_states_its_assumption_and_the_figures_it_quotes():
    """The README's main job runs as written, its output says what the assumed per-kernel gap
    costs in latency and in energy, and the figures the README quotes are the ones printed."""
    import re
    import shlex

    readme = (REPO / "README.md").read_text(encoding="utf-8")
    line = next(ln for ln in readme.splitlines() if ln.rstrip().endswith("# the main job"))
    args = shlex.split(line.split("#")[0])
    assert args[:2] == ["nvmc", "compile"]
    proc = run_at(100, *args[1:])
    assert proc.returncode == 0, proc.stderr
    out = " ".join((proc.stdout + proc.stderr).split())
    note = re.search(r"(\d+) % of the latency is the fixed per-kernel overhead .*? assumed\), and the static power "
                     r"during it \(l2_leakage\) is (\d+) % of the energy", out)
    assert note, out
    text = " ".join(readme.split())
    assert f"{note.group(1)} % of the latency is the assumed 5 µs per-kernel gap" in text
    assert f"static power during that gap is {note.group(2)} % of the energy" in text
    ratio = re.search(r"│ energy / inference +│[^│]+│[^│]+│ +([\d.]+)× │", proc.stdout)
    assert ratio and f"SRAM {ratio.group(1)}x" in text
