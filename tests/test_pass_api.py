"""The pass API: registry, typed options, results, cached analyses, the rewrite helper."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

import nvmc
from nvmc.ir import Graph, TensorType
from nvmc.passes import (Const, Op, OptionError, Pass, PassError, PassResult, PatternPass, Var, get_analysis,
                         get_pass, make_pass, option, options_of, register_pass, registered_passes)
from nvmc.passes import base as pass_base
from nvmc.passes.analysis import cached

BUILTIN = {"canonicalize", "cse", "dce", "fold-constants", "fuse-activation", "fuse-conv-bn"}


@register_pass("test-scale-option", exact=False)
@dataclass(frozen=True)
class ScaleOptionPass(Pass):
    """A pass that only declares options (for the option tests)."""

    bits: int = option(8, min=2, max=16, help="bits per weight")
    granularity: str = option("channel", choices=("channel", "tensor"))
    sparsity: float = option(0.5, min=0.0, max=1.0)
    verbose: bool = option(False)

    def run(self, graph: Graph) -> PassResult:
        return PassResult(False)


@pytest.fixture(autouse=True, scope="module")
def _unregister_test_passes():
    """This module's test passes leave the registry with it."""
    yield
    for name in ("test-scale-option", "test-matmul-relu-to-gemm"):
        pass_base._REGISTRY.pop(name, None)


def test_builtin_passes_are_registered_with_docs_and_kind():
    passes = registered_passes()
    assert BUILTIN <= set(passes)
    for name in BUILTIN:
        cls = passes[name]
        assert cls.name == name and cls.exact is True
        doc = cls.__doc__
        assert "Before:" in doc and "After:" in doc, f"{name} docstring lacks the IR before/after"


def test_options_are_typed_with_defaults_ranges_and_choices():
    specs = {s.name: s for s in options_of(ScaleOptionPass)}
    assert list(specs) == ["bits", "granularity", "sparsity", "verbose"]
    assert specs["bits"].allowed() == "an integer in [2, 16]"
    assert specs["granularity"].allowed() == "one of channel, tensor"
    assert specs["verbose"].allowed() == "true or false"
    p = make_pass("test-scale-option", bits=4, granularity="tensor", sparsity=1)
    assert (p.bits, p.granularity, p.sparsity) == (4, "tensor", 1.0)
    assert str(p) == "test-scale-option{bits=4,granularity=tensor,sparsity=1.0}"
    assert str(make_pass("test-scale-option")) == "test-scale-option"


@pytest.mark.parametrize("kwargs, message", [
    ({"bits": 32}, "option 'bits' of 'test-scale-option' takes an integer in [2, 16], not 32"),
    ({"bits": True}, "takes an integer in [2, 16], not true"),
    ({"bits": "8"}, "takes an integer in [2, 16], not '8'"),
    ({"granularity": "chanel"}, "not 'chanel' — did you mean 'channel'?"),
    ({"sparsity": float("nan")}, "takes a number in [0.0, 1.0], not nan"),
    ({"verbose": 1}, "takes true or false, not 1"),
])
def test_bad_option_values_name_what_is_allowed(kwargs, message):
    with pytest.raises(OptionError) as e:
        make_pass("test-scale-option", **kwargs)
    assert message in e.value.message


def test_unknown_pass_and_option_suggest_a_close_name():
    with pytest.raises(PassError, match="unknown pass 'fuse-conv-bm' — did you mean 'fuse-conv-bn'"):
        get_pass("fuse-conv-bm")
    with pytest.raises(OptionError, match="has no option 'bts' — did you mean 'bits'"):
        make_pass("test-scale-option", bts=3)


def test_registration_rules():
    class NoDataclass(Pass):
        """Doc."""

    with pytest.raises(ValueError, match="kebab-case"):
        register_pass("Bad_Name", exact=True)
    with pytest.raises(TypeError, match="must be a dataclass"):
        register_pass("test-not-dataclass", exact=True)(NoDataclass)

    @dataclass(frozen=True)
    class NoDoc(Pass):
        pass

    with pytest.raises(TypeError, match="needs a docstring"):
        register_pass("test-no-doc", exact=True)(NoDoc)

    @dataclass(frozen=True)
    class Untyped(Pass):
        """Doc."""

        items: list = option(None)

    with pytest.raises(TypeError, match="options are bool, int, float or str"):
        register_pass("test-untyped", exact=True)(Untyped)

    @dataclass(frozen=True)
    class Dup(Pass):
        """Doc."""

    with pytest.raises(ValueError, match="registered twice"):
        register_pass("dce", exact=True)(Dup)


# ----------------------------------------------------------------------------- analyses
def _tiny_graph() -> Graph:
    g = Graph("tiny")
    g.add_input("x", TensorType("f32", (1, 4)))
    g.add_const("w", np.ones((4, 4), np.float32))
    g.add_node("MatMul", ["x", "w"], ["y"], types=[TensorType("f32", (1, 4))], name="mm")
    g.add_node("Relu", ["y"], ["z"], types=[TensorType("f32", (1, 4))], name="relu")
    g.outputs.append("z")
    return g


def test_analyses_are_cached_until_the_graph_changes():
    g = _tiny_graph()
    calls = []

    def count(graph):
        calls.append(graph.version)
        return len(graph)

    assert cached(g, "count", count) == 2 and cached(g, "count", count) == 2
    assert len(calls) == 1
    work = get_analysis(g, "workload")
    assert get_analysis(g, "workload") is work and work.totals["macs"] == 16
    g.outputs[0] = "y"
    g.remove_node(g.node("relu"))  # a change: version bumps, caches are stale
    assert cached(g, "count", count) == 1 and len(calls) == 2
    assert get_analysis(g, "workload") is not work
    assert get_analysis(g, "const-bytes") == 64


def test_unknown_analysis_is_an_error():
    with pytest.raises(nvmc.ir.NvmcError, match="unknown analysis 'workloda' — did you mean 'workload'"):
        get_analysis(_tiny_graph(), "workloda")


# ------------------------------------------------------------------------ rewrite helper
@register_pass("test-matmul-relu-to-gemm", exact=True)
@dataclass(frozen=True)
class MatMulReluToGemm(PatternPass):
    """Test pattern: Relu(MatMul(x, W)) -> Relu(Gemm(x, W)) with a constant 2-D W.

    Before:
        %y = MatMul(%x, %w)
    After:
        %y = Gemm(%x, %w)
    """

    pattern = Op("Relu", Op("MatMul", Var("x"), Const("w"), name="mm"), name="relu")

    def check(self, m, graph):
        return None if m["w"].ndim == 2 else f"weight has rank {m['w'].ndim}"

    def rewrite(self, m, rw):
        rw.replace([m["mm"]], "Gemm", [m.value("x"), m.value("w")])


def test_rewriter_keeps_value_names_types_and_metadata():
    g = _tiny_graph()
    g.node("mm").meta["onnx_name"] = "dense_1/MatMul"
    g.values["y"].type = g.values["y"].type.with_annotation(nvmc.ir.Annotation.of("sparsity", {"density": 0.5}))
    result = make_pass("test-matmul-relu-to-gemm").run(g)
    assert result.changed and result.stats["nodes_rewritten"] == 1
    node = g.producer("y")
    assert (node.op, node.name, node.inputs) == ("Gemm", "mm", ("x", "w"))
    assert node.meta["onnx_name"] == "dense_1/MatMul" and node.meta["rewritten_by"] == ["test-matmul-relu-to-gemm"]
    assert g.type_of("y").annotation("sparsity").get("density") == 0.5  # the value's type survived
    assert [u.name for u in g.users("y")] == ["relu"]
    nvmc.verify(g)


def test_pattern_pass_reports_why_not():
    g = _tiny_graph()
    g.add_node("Relu", ["x"], ["r2"], types=[TensorType("f32", (1, 4))], name="relu_of_input")
    g.outputs.append("r2")
    result = make_pass("test-matmul-relu-to-gemm").run(g)
    assert ("relu_of_input", "input 0 of Relu 'relu_of_input' is a graph input, not the result of MatMul") \
        in result.why_not


def test_fused_nodes_record_what_they_absorbed():
    model = helper.make_model(helper.make_graph(
        [helper.make_node("Conv", ["x", "w"], ["c"], name="conv1", kernel_shape=[1, 1]),
         helper.make_node("BatchNormalization", ["c", "s", "b", "m", "v"], ["y"], name="bn1")],
        "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2, 3, 3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2, 3, 3])],
        [numpy_helper.from_array(np.ones((2, 2, 1, 1), np.float32), "w")]
        + [numpy_helper.from_array(np.ones(2, np.float32), n) for n in "sbmv"]),
        opset_imports=[helper.make_opsetid("", 17)])
    g = nvmc.load(model)
    make_pass("fuse-conv-bn").run(g)
    conv = g.producer("y")
    assert (conv.op, conv.name, conv.meta["fused"]) == ("Conv", "conv1", ["bn1"])
