"""Pipelines: the grammar (round trip, errors with a caret), run_pipeline's instruments, `nvmc opt`."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import onnx
import pytest
from conftest import run_nvmc
from hypothesis import given, settings
from hypothesis import strategies as st
from onnx import TensorProto, helper, numpy_helper

import nvmc
from nvmc.ir import Graph, ParseError
from nvmc.passes import (Pass, PassError, PassResult, PassSpec, Pipeline, option, options_of, parse_pipeline,
                         register_pass, registered_passes, run_pipeline)
from nvmc.passes import base as pass_base


@register_pass("test-pipeline-options", exact=False)
@dataclass(frozen=True)
class OptionsPass(Pass):
    """Declares one option of every kind, for the round-trip property."""

    bits: int = option(8, min=1, max=32)
    ratio: float = option(0.5, min=-1e6, max=1e6)
    label: str = option("x")
    mode: str = option("channel", choices=("channel", "tensor", "per-group"))
    strict: bool = option(False)

    def run(self, graph: Graph) -> PassResult:
        return PassResult(False)


@register_pass("test-break-ssa", exact=True)
@dataclass(frozen=True)
class BreakSsa(Pass):
    """Points the first node at a value that does not exist (the verifier must catch it).

    Before:
        %y = Relu(%x)
    After:
        %y = Relu(%nowhere)
    """

    def run(self, graph: Graph) -> PassResult:
        graph.nodes[0].inputs = ("nowhere",)
        return PassResult(True)


@register_pass("test-crash", exact=True)
@dataclass(frozen=True)
class Crash(Pass):
    """Raises a plain Python error, as a buggy pass would.

    Before: anything. After: nothing.
    """

    def run(self, graph: Graph) -> PassResult:
        return {}["missing"]


@pytest.fixture(autouse=True, scope="module")
def _unregister_test_passes():
    """This module's test passes leave the registry with it."""
    yield
    for name in ("test-pipeline-options", "test-break-ssa", "test-crash"):
        pass_base._REGISTRY.pop(name, None)


# ------------------------------------------------------------------------------ grammar
def test_canonical_print():
    text = " fold-constants , dce,fuse-activation{ clip=false },test-pipeline-options{mode=tensor bits=4}"
    p = parse_pipeline(text)
    assert str(p) == "fold-constants,dce,fuse-activation{clip=false},test-pipeline-options{mode=tensor,bits=4}"
    assert p.passes[3] == PassSpec("test-pipeline-options", (("mode", "tensor"), ("bits", 4)))
    assert parse_pipeline(str(p)) == p
    assert str(parse_pipeline("")) == "" and len(parse_pipeline("dce{}")) == 1


def test_pipeline_builds_configured_passes():
    passes = parse_pipeline('test-pipeline-options{ratio=1e-05,label="a b",strict=true},dce').build()
    assert (passes[0].ratio, passes[0].label, passes[0].strict) == (1e-05, "a b", True)
    assert str(passes[0]) == 'test-pipeline-options{ratio=1e-05,label="a b",strict=true}'


def _value(spec):
    if spec.choices:
        return st.sampled_from(spec.choices)
    if spec.type is bool:
        return st.booleans()
    if spec.type is int:
        return st.integers(int(spec.min if spec.min is not None else -10**9),
                           int(min(spec.max if spec.max is not None else 10**9, 10**12)))
    if spec.type is float:
        return st.floats(spec.min, spec.max, allow_nan=False, allow_infinity=False)
    return st.text(max_size=12)


@st.composite
def pipelines(draw):
    passes = registered_passes()
    names = draw(st.lists(st.sampled_from(sorted(n for n in passes if n not in ("test-break-ssa", "test-crash"))),
                          max_size=6))
    specs = []
    for name in names:
        opts = options_of(passes[name])
        chosen = draw(st.lists(st.sampled_from(opts), unique_by=lambda s: s.name, max_size=len(opts))) if opts else []
        specs.append(PassSpec(name, tuple((s.name, draw(_value(s))) for s in chosen)))
    return Pipeline(tuple(specs))


@settings(max_examples=150, deadline=None)
@given(pipelines(), st.sampled_from(["", " ", "\n  "]))
def test_print_parse_round_trip(pipeline, space):
    text = str(pipeline)
    assert parse_pipeline(text) == pipeline
    assert str(parse_pipeline(text)) == text
    if '"' not in text:  # spaces between tokens (not inside quoted values) change nothing
        spaced = text.replace(",", space + "," + space).replace("{", "{" + space)
        assert parse_pipeline(spaced) == pipeline


@pytest.mark.parametrize("text, message, col, length", [
    ("fold-constants,fuse-conv-bm", "unknown pass 'fuse-conv-bm' — did you mean 'fuse-conv-bn'?", 16, 12),
    ("canonicalize{max-iteratons=3}",
     "pass 'canonicalize' has no option 'max-iteratons' — did you mean 'max-iterations'?", 14, 13),
    ("canonicalize{max-iterations=0}",
     "option 'max-iterations' of 'canonicalize' takes an integer in [1, 1000], not 0", 29, 1),
    ("fold-constants{engine=ort}",
     "option 'engine' of 'fold-constants' takes one of onnxruntime, reference, not 'ort'", 23, 3),
    ("fuse-activation{clip=yes}", "option 'clip' of 'fuse-activation' takes true or false, not 'yes'", 22, 3),
    ("dce,canonicalize{max-iterations=3", "unbalanced braces: this '{' is never closed", 17, 1),
    ("dce}", "unbalanced braces: this '}' closes nothing", 4, 1),
    ("dce,,cse", "unexpected ','; expected pass or option name", 5, 1),
    ("dce;cse", "unexpected character ';'", 4, 1),
    ("dce{x=1}", "pass 'dce' has no option 'x'", 5, 1),
    ("fold-constants{engine=reference,engine=reference}", "option 'engine' of 'fold-constants' is given twice",
     33, 6),
])
def test_errors_point_at_the_place(text, message, col, length):
    with pytest.raises(ParseError) as e:
        parse_pipeline(text)
    rendered = e.value.render().splitlines()
    assert rendered[0] == f"error: pipeline:1:{col}: {message}"
    assert rendered[1] == "  " + text
    assert rendered[2] == "  " + " " * (col - 1) + "^" * length


# ------------------------------------------------------------------------- instruments
def _conv_bn_relu_model() -> onnx.ModelProto:
    rng = np.random.default_rng(0)
    inits = [numpy_helper.from_array(rng.standard_normal((4, 3, 3, 3)).astype(np.float32), "w"),
             numpy_helper.from_array(rng.uniform(0.5, 1.5, 4).astype(np.float32), "scale"),
             numpy_helper.from_array(rng.standard_normal(4).astype(np.float32), "bias"),
             numpy_helper.from_array(rng.standard_normal(4).astype(np.float32), "mean"),
             numpy_helper.from_array(rng.uniform(0.5, 1.5, 4).astype(np.float32), "var")]
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], name="conv1", kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
             helper.make_node("BatchNormalization", ["c", "scale", "bias", "mean", "var"], ["b"], name="bn1"),
             helper.make_node("Relu", ["b"], ["y"], name="relu1")]
    graph = helper.make_graph(nodes, "cbr", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4, 8, 8])], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def test_print_after_and_timing_go_to_dump():
    g = nvmc.load(_conv_bn_relu_model())
    dumps: list[str] = []
    result = run_pipeline(g, "fuse-conv-bn,dce,fuse-activation", print_after=("dce",), timing=True, dump=dumps.append)
    assert len(dumps) == 2
    assert dumps[0].startswith("// -----// IR Dump After dce (2 of 3) //----- //\n// nvmc.ir 1")
    assert "BatchNormalization" not in dumps[0]
    assert "nvmc pass timing report" in dumps[1] and "fuse-activation" in dumps[1] and "(verify)" in dumps[1]
    assert [r.name for r in result.records] == ["fuse-conv-bn", "dce", "fuse-activation"]
    assert result.records[0].nodes_before == 3 and result.records[0].nodes_after == 2
    assert result.records[1].bytes_before - result.records[1].bytes_after == 4 * 4 * 4 + 3 * 3 * 3 * 4 * 4

    dumps.clear()
    run_pipeline(nvmc.load(_conv_bn_relu_model()), "dce,cse", print_after_all=True, dump=dumps.append)
    assert [d.splitlines()[0] for d in dumps] == ["// -----// IR Dump After dce (1 of 2) //----- //",
                                                 "// -----// IR Dump After cse (2 of 2) //----- //"]


def test_verify_each_names_the_pass_that_broke_the_graph():
    g = nvmc.load(_conv_bn_relu_model())
    with pytest.raises(PassError) as e:
        run_pipeline(g, "dce,test-break-ssa")
    assert "pass 'test-break-ssa' (2 of 2) left an invalid graph" in e.value.message
    assert "undefined value '%nowhere'" in e.value.message
    run_pipeline(nvmc.load(_conv_bn_relu_model()), "test-break-ssa", verify_each=False)  # no check, no error


def test_a_crashing_pass_is_a_pass_error_and_unknown_print_after_is_refused():
    with pytest.raises(PassError, match=r"pass 'test-crash' \(1 of 1\) failed: KeyError"):
        run_pipeline(nvmc.load(_conv_bn_relu_model()), "test-crash")
    with pytest.raises(PassError, match="--print-after names unknown pass 'dec' — did you mean 'dce'"):
        run_pipeline(nvmc.load(_conv_bn_relu_model()), "dce", print_after=("dec",))


def test_measure_macs_is_a_stat():
    g = nvmc.load(_conv_bn_relu_model())
    result = run_pipeline(g, "fuse-conv-bn", measure_macs=True)
    assert result.records[0].result.stats["macs_saved"] == 0  # BN folding saves non-MAC work only


# --------------------------------------------------------------------------- nvmc opt
@pytest.fixture()
def cbr_model(tmp_path):
    path = tmp_path / "cbr.onnx"
    onnx.save(_conv_bn_relu_model(), path)
    return path


def test_opt_writes_onnx_and_nvir(cbr_model, tmp_path):
    out = tmp_path / "out.onnx"
    proc = run_nvmc("opt", str(cbr_model), "--passes", "fuse-conv-bn,dce", "-o", str(out), "--timing",
                    "--print-after=dce", "--check", check=True)
    assert "IR Dump After dce" in proc.stderr and "nvmc pass timing report" in proc.stderr
    assert "max rel" in proc.stderr
    g = nvmc.load(out)
    assert [n.op for n in g.nodes] == ["Conv", "Relu"]
    text_out = tmp_path / "out.nvir"
    proc = run_nvmc("opt", str(out), "-p", "fuse-activation", "-o", str(text_out), "--json", "-", check=True)
    assert '"activations_fused": 1' in proc.stdout
    assert '#fused<activation="Relu", node="relu1">' in text_out.read_text()
    proc = run_nvmc("opt", str(text_out), "-p", "dce", check=True)  # no -o: the IR goes to stdout
    assert proc.stdout.startswith("// nvmc.ir 1")


@pytest.mark.parametrize("pipeline, message, col, length", [
    ("fuse-conv-bm", "unknown pass 'fuse-conv-bm' — did you mean 'fuse-conv-bn'?", 1, 12),
    ("fold-constants{max-elemnts=2}", "pass 'fold-constants' has no option 'max-elemnts'", 16, 11),
    ("canonicalize{max-iterations=5000}",
     "option 'max-iterations' of 'canonicalize' takes an integer in [1, 1000], not 5000", 29, 4),
    ("dce,fuse-activation{clip=true", "unbalanced braces: this '{' is never closed", 20, 1),
])
def test_opt_pipeline_errors_exit_2_without_traceback(cbr_model, tmp_path, pipeline, message, col, length):
    out = tmp_path / "never.onnx"
    proc = run_nvmc("opt", str(cbr_model), "--passes", pipeline, "-o", str(out))
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.splitlines()
    assert lines[0].startswith(f"error: pipeline:1:{col}: {message}"), proc.stderr
    assert lines[1] == "  " + pipeline
    assert lines[2] == "  " + " " * (col - 1) + "^" * length
    assert not out.exists()


def test_opt_refuses_bad_outputs(cbr_model, tmp_path):
    proc = run_nvmc("opt", str(cbr_model), "-p", "dce", "-o", str(tmp_path / "out.txt"))
    assert proc.returncode == 2 and "opt writes .onnx or .nvir" in proc.stderr
    proc = run_nvmc("opt", str(cbr_model), "-p", "dce", "-o", str(cbr_model))
    assert proc.returncode == 2 and "would overwrite the input" in proc.stderr


def test_passes_command_lists_passes_and_documents_one():
    proc = run_nvmc("passes", check=True)
    for name in ("canonicalize", "cse", "dce", "fold-constants", "fuse-activation", "fuse-conv-bn"):
        assert name in proc.stdout
    assert "max-elements=1048576" in proc.stdout
    proc = run_nvmc("passes", "fold-constants", check=True)
    assert "Before:" in proc.stdout and "engine: one of onnxruntime, reference, default onnxruntime" in proc.stdout
    proc = run_nvmc("passes", "fold-constant")
    assert proc.returncode == 2 and "did you mean 'fold-constants'" in proc.stderr
