"""Graph API, def-use index, networkx view and the verifier."""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pytest

import nvmc
from nvmc.ir import Graph, TensorType, VerifyError, verify_structure

F = TensorType("f32", (2, 3))


def small_graph() -> Graph:
    g = Graph("g")
    g.add_input("x", F)
    g.add_const("w", np.ones((2, 3), np.float32))
    g.add_node("Add", ["x", "w"], ["a"], name="add", types=[F])
    g.add_node("Relu", ["a"], ["b"], name="relu", types=[F])
    g.outputs = ["b"]
    return g


def test_def_use_index_follows_mutations():
    g = small_graph()
    add, relu = g.node("add"), g.node("relu")
    assert g.producer("a") is add and g.users("a") == [relu] and g.users("x") == [add]
    v0 = g.version
    neg = g.add_node("Neg", ["x"], ["n"], name="neg", types=[F])
    relu.inputs = ["n"]
    assert g.version > v0 and g.users("a") == [] and g.users("n") == [relu]
    g.remove_node(add)
    assert "a" not in g.values and g.users("x") == [neg]
    assert list(g.nx().edges) == [("neg", "relu")]
    verify_structure(g)


def test_replace_all_uses_includes_graph_outputs():
    g = small_graph()
    g.add_node("Neg", ["a"], ["n"], name="neg", types=[F])
    assert g.replace_all_uses("b", "n") == 1 and g.outputs == ["n"]
    g.remove_node(g.node("relu"))
    verify_structure(g)


def test_remove_node_refuses_while_used():
    g = small_graph()
    with pytest.raises(VerifyError, match="still used by relu"):
        g.remove_node(g.node("add"))


def test_ssa_violation_is_refused():
    g = small_graph()
    with pytest.raises(VerifyError, match="defined more than once"):
        g.add_node("Neg", ["x"], ["a"])


def test_topological_order_is_restored_and_cycles_are_found():
    g = small_graph()
    first = g.add_node("Neg", ["x"], ["n"], name="neg", types=[F])
    g.node("add").inputs = ["n", "w"]  # now 'neg' (added last) must come first
    assert [n.name for n in g.topo_nodes()] == ["neg", "add", "relu"]
    first.inputs = ["b"]  # neg <- relu <- add <- neg
    with pytest.raises(VerifyError, match="cycle"):
        verify_structure(g)


def test_verifier_catches_undefined_inputs_and_outputs():
    g = small_graph()
    g.node("relu").inputs = ["missing"]
    with pytest.raises(VerifyError, match="undefined value '%missing'"):
        verify_structure(g)
    g = small_graph()
    g.outputs = ["nowhere"]
    with pytest.raises(VerifyError, match="graph output '%nowhere' is not defined"):
        verify_structure(g)


def test_type_check_against_onnx_inference():
    g = small_graph()
    nvmc.verify(g)
    g.values["b"].type = TensorType("f32", (2, 4))
    with pytest.raises(VerifyError, match="typed f32\\[2,4\\] but ONNX infers f32\\[2,3\\]"):
        nvmc.verify(g)


def test_unknown_nvmc_op_fails_verification_and_export():
    g = small_graph()
    g.add_node("Mystery", ["b"], ["m"], domain="nvmc", types=[F])
    with pytest.raises(VerifyError, match="unknown nvmc op 'Mystery'"):
        verify_structure(g)
    with pytest.raises(VerifyError, match="not registered"):
        nvmc.export(g)


def test_copy_is_independent():
    g = small_graph()
    c = g.copy()
    c.node("relu").attrs.update(alpha=1.0)
    assert "alpha" not in g.node("relu").attrs
    assert c.to_text() != g.to_text()


ROOT = Path(__file__).resolve().parents[1]


def _nvmc_imports(folder: str) -> set[str]:
    found = set()
    for path in (ROOT / folder).rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                found.add(node.module)
            elif isinstance(node, ast.Import):
                found.update(a.name for a in node.names)
    return {m for m in found if m.split(".")[0] == "nvmc"}


def test_import_direction():
    """nvmc -> frontend, passes, backends -> ir; ir imports nothing of nvmc.

    One addition to DESIGN.md's arrows: passes may use frontend's IR <-> ONNX conversion
    (fold-constants evaluates subgraphs in onnxruntime); frontend never imports passes or
    backends, so there is no cycle."""
    assert _nvmc_imports("ir") == set()
    assert not any(m.startswith(("nvmc.frontend", "nvmc.passes")) for m in _nvmc_imports("backends"))
    assert not any(m.startswith(("nvmc.passes", "nvmc.backends")) for m in _nvmc_imports("frontend"))
    for folder in ("frontend", "passes", "backends"):
        driver = {m for m in _nvmc_imports(folder) if m in ("nvmc", "nvmc.api", "nvmc.cli")}
        assert not driver, f"{folder} imports the driver: {driver}"
