"""quantize, prune, share-weights: options, IR, numerics through onnxruntime, cost effects.

Models are built here with onnx.helper; weights are seeded. The trained models of
acceptance 1 are in test_compression_models.py, the zoo in test_compression_zoo.py.
"""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from conftest import run_nvmc
from onnx import TensorProto, helper, numpy_helper

import nvmc
from nvmc.harness import compare
from nvmc.ir import parse_text
from nvmc.ir.errors import NvmcError
from nvmc.passes import OptionError, PassError, make_pass, parse_pipeline, run_pipeline
from nvmc.passes.share_weights import kmeans_1d
from nvmc.passes.workload import csc_entries

RNG = np.random.default_rng(16)


def he(*shape):
    return (RNG.standard_normal(shape) * np.sqrt(2.0 / np.prod(shape[1:]))).astype(np.float32)


def cnn(c1=8, c2=4, residual=False) -> onnx.ModelProto:
    """x[1,3,8,8] -> conv1 (3->c1, 3x3) -> BN -> Relu -> conv2 (c1->c2, 3x3) -> Relu -> Flatten -> fc (->10)."""
    inits = [numpy_helper.from_array(a, n) for n, a in [
        ("w1", he(c1, 3, 3, 3)), ("b1", RNG.uniform(-0.1, 0.1, c1).astype(np.float32)),
        ("s", RNG.uniform(0.5, 1.5, c1).astype(np.float32)), ("bb", RNG.uniform(-0.1, 0.1, c1).astype(np.float32)),
        ("mu", RNG.uniform(-0.1, 0.1, c1).astype(np.float32)), ("var", RNG.uniform(0.5, 1.5, c1).astype(np.float32)),
        ("w2", he(c2, c1, 3, 3)), ("wf", he(10, c2 * 64)), ("bf", np.zeros(10, np.float32))]]
    nodes = [helper.make_node("Conv", ["x", "w1", "b1"], ["a"], name="conv1", kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
             helper.make_node("BatchNormalization", ["a", "s", "bb", "mu", "var"], ["n"], name="bn"),
             helper.make_node("Relu", ["n"], ["r"], name="relu1"),
             helper.make_node("Conv", ["r", "w2"], ["c"], name="conv2", kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c"], ["r2"], name="relu2")]
    last = "r2"
    if residual:  # conv2's result meets conv1's: neither can lose channels alone
        nodes.append(helper.make_node("Add", ["r2", "r"], ["sum"], name="residual"))
        last = "sum"
    nodes += [helper.make_node("Flatten", [last], ["f"], name="flatten"),
              helper.make_node("Gemm", ["f", "wf", "bf"], ["y"], name="fc", transB=1)]
    graph = helper.make_graph(nodes, "cnn", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 10])], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def mlp(k=16, hidden=32) -> onnx.ModelProto:
    """x[4,k] -> MatMul(W1) -> Add(b1) -> Relu -> MatMul(W2) -> y[4,8]."""
    inits = [numpy_helper.from_array(a, n) for n, a in [
        ("w1", he(k, hidden)), ("b1", RNG.uniform(-0.1, 0.1, hidden).astype(np.float32)), ("w2", he(hidden, 8))]]
    nodes = [helper.make_node("MatMul", ["x", "w1"], ["h"], name="fc1"),
             helper.make_node("Add", ["h", "b1"], ["hb"], name="bias1"),
             helper.make_node("Relu", ["hb"], ["r"], name="relu"),
             helper.make_node("MatMul", ["r", "w2"], ["y"], name="fc2")]
    graph = helper.make_graph(nodes, "mlp", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [4, k])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [4, 8])], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def transformed(model, pipeline: str):
    g = nvmc.load(model)
    t = g.copy()
    result = run_pipeline(t, pipeline, verify_each=True)
    return g, t, result.records


def codes_of(graph, value):
    """The integer codes and DequantizeLinear behind the decoded value ``value``."""
    dq = graph.producer(value)
    assert dq.op == "DequantizeLinear"
    return graph.consts[dq.inputs[0]], dq


# -------------------------------------------------------------- acceptance 5: options
@pytest.mark.parametrize("pipeline, message", [
    ("quantize{bits=0}", "option 'bits' of 'quantize' takes an integer in [2, 8], not 0"),
    ("quantize{bits=16}", "takes an integer in [2, 8], not 16"),
    ("quantize{granularity=row}", "takes one of channel, tensor, not 'row'"),
    ("prune{sparsity=1.5}", "option 'sparsity' of 'prune' takes a number in [0.0, 0.99], not 1.5"),
    ("prune{pattern=blocks}", "one of unstructured, n:m, channel"),
    ("share-weights{clusters=1}", "option 'clusters' of 'share-weights' takes an integer in [2, 256], not 1"),
    ("share-weights{clusters=512}", "in [2, 256], not 512"),
])
def test_bad_options_are_clear_errors(pipeline, message):
    with pytest.raises(NvmcError) as e:
        parse_pipeline(pipeline)
    assert message in str(e.value)


def test_cross_option_and_layer_map_errors():
    with pytest.raises(OptionError, match=r"n must be less than m \(n=4, m=4\)"):
        make_pass("prune", pattern="n:m", n=4, m=4)
    with pytest.raises(OptionError, match="entry 'conv1' is not LAYER=VALUE"):
        make_pass("prune", layers="conv1")
    with pytest.raises(OptionError, match=r"entry 'conv1=2' .* in \[0, 0.99\]"):
        make_pass("prune", layers="conv1=2")
    g = nvmc.load(cnn())
    with pytest.raises(PassError, match="layer pattern 'cnv1' matches no Conv/Gemm/MatMul node — did you mean 'conv1'"):
        run_pipeline(g, 'prune{layers="cnv1=0.5"}')


def test_bad_option_on_the_command_line(tmp_path):
    path = tmp_path / "m.onnx"
    onnx.save(cnn(), path)
    proc = run_nvmc("opt", str(path), "-p", "quantize{bits=0}")
    assert proc.returncode == 2
    assert "option 'bits' of 'quantize' takes an integer in [2, 8], not 0" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_bad_calibration_file_is_a_clear_error(tmp_path):
    bad = tmp_path / "calib.npz"
    np.savez(bad, image=np.zeros((1, 3, 8, 8), np.float32))
    with pytest.raises(PassError, match="array 'image' is not an input of the model"):
        run_pipeline(nvmc.load(cnn()), f'quantize{{inputs="{bad}"}}')
    np.savez(bad, x=np.zeros((5, 3, 7, 7), np.float32))
    with pytest.raises(PassError, match=r"array 'x' has shape \[5, 3, 7, 7\]; the input is f32\[1,3,8,8\]"):
        run_pipeline(nvmc.load(cnn()), f'quantize{{inputs="{bad}"}}')


# -------------------------------------------------------------------------- quantize
def test_quantize_writes_qdq_with_annotations():
    g, t, records = transformed(cnn(), "quantize{bits=4}")
    conv1 = t.node("conv1")
    codes, dq = codes_of(t, conv1.inputs[1])
    assert codes.dtype == np.int8 and codes.min() >= -7 and codes.max() <= 7
    assert dq.attrs == {"axis": 0}
    ann = t.type_of(dq.inputs[0]).annotation("quant")
    assert dict(ann.params) == {"axis": 0, "bits": 4, "granularity": "channel", "scale": dq.inputs[1],
                                "scheme": "symmetric", "zero_point": dq.inputs[2]}
    w1 = g.consts["w1"]
    np.testing.assert_allclose(t.consts[dq.inputs[1]], np.abs(w1).reshape(8, -1).max(axis=1) / 7, rtol=1e-6)
    # the activation: QuantizeLinear -> Clip (4 bits in u8) -> DequantizeLinear, per tensor, asymmetric
    x_dq = t.producer(conv1.inputs[0])
    clip = t.producer(x_dq.inputs[0])
    q = t.producer(clip.inputs[0])
    assert (q.op, clip.op, x_dq.op, q.inputs[0]) == ("QuantizeLinear", "Clip", "DequantizeLinear", "x")
    act = t.type_of(x_dq.outputs[0]).annotation("quant")
    assert act.get("bits") == 4 and act.get("scheme") == "asymmetric" and act.get("granularity") == "tensor"
    assert [int(t.consts[v]) for v in clip.inputs[1:]] == [0, 15]
    assert t.type_of(q.outputs[0]).dtype == "u8"
    # biases: int32 codes at scale s_x * s_w, so onnxruntime can fuse the QDQ group
    b_codes, b_dq = codes_of(t, conv1.inputs[2])
    assert b_codes.dtype == np.int32
    np.testing.assert_allclose(t.consts[b_dq.inputs[1]], act.get("scale") * t.consts[dq.inputs[1]], rtol=1e-6)
    stats = records[0].result.stats
    assert stats["weights_quantized"] == 3 and stats["activations_quantized"] == 3 and stats["biases_quantized"] == 2


def test_quantize_8_bit_needs_no_clip_and_keeps_the_numbers():
    g, t, records = transformed(cnn(), "quantize{bits=8}")
    assert not any(n.op == "Clip" for n in t.nodes)
    report = compare(g, t, samples=4)
    assert report.sqnr_db > 30 and report.top1_agreement == 1.0
    error = records[0].result.error  # measured by the pass, on its own calibration draws
    assert error["sqnr_db"] > 30 and error["cosine"] > 0.999 and "max_abs_err" in error


def test_quantize_asymmetric_weights_and_tensor_granularity():
    _, t, _ = transformed(cnn(), "quantize{scheme=asymmetric,granularity=tensor,activations=false}")
    codes, dq = codes_of(t, t.node("conv2").inputs[1])
    assert codes.dtype == np.uint8 and "axis" not in dq.attrs
    ann = t.type_of(dq.inputs[0]).annotation("quant")
    assert isinstance(ann.get("scale"), float) and ann.get("zero_point") == int(t.consts[dq.inputs[2]])
    assert not any(n.op == "QuantizeLinear" for n in t.nodes)


@pytest.mark.parametrize("calibration", ["percentile", "entropy"])
def test_histogram_calibrations_narrow_the_range(calibration):
    _, t_minmax, _ = transformed(mlp(), "quantize{samples=16,measure=false}")
    _, t_hist, _ = transformed(mlp(), f"quantize{{samples=16,measure=false,calibration={calibration},percentile=99}}")

    def scale(t):
        return float(t.consts[t.producer(t.node("fc2").inputs[0]).inputs[1]])

    assert 0 < scale(t_hist) <= scale(t_minmax)


def test_calibration_from_an_npz(tmp_path):
    inputs = tmp_path / "calib.npz"
    np.savez(inputs, x=np.full((3, 4, 16), 0.25, np.float32))  # 3 samples on a new leading axis
    _, t, _ = transformed(mlp(), f'quantize{{inputs="{inputs}",activations=true,measure=false}}')
    x_dq = t.producer(t.node("fc1").inputs[0])
    assert t.type_of(x_dq.outputs[0]).annotation("quant").get("scale") == pytest.approx(0.25 / 255, rel=1e-6)


@pytest.mark.parametrize("pipeline, shown", [
    ("quantize{bits=4},prune{sparsity=0.5}", ("#quant<axis=0, bits=4", "#sparsity<density=0.5")),
    ("prune{sparsity=0.5},share-weights{clusters=4}", ("#codebook<axis=0, clusters=4, format=", "values=[")),
])
def test_compressed_ir_prints_and_parses_back(pipeline, shown):
    _, t, _ = transformed(cnn(), pipeline)
    text = t.to_text(inline_limit=1 << 20)
    assert all(s in text for s in shown)
    assert parse_text(text).to_text(inline_limit=1 << 20) == text


def test_quantize_leaves_shared_codebooks_alone():
    _, t, records = transformed(mlp(), "share-weights,quantize{activations=false}")
    assert ("fc1", "the weight '%w1' is shared through a codebook (share-weights)") in records[1].result.why_not
    assert not records[1].changed


# ----------------------------------------------------------- workload: cost effects
def test_workload_counts_quantized_bytes_and_folds_qdq():
    g, t, _ = transformed(mlp(k=16, hidden=32), "quantize{bits=4}")
    before, after = nvmc.analyze(g), nvmc.analyze(t)
    rows = {r["name"]: r for r in after.to_dict()["nodes"]}
    fc1 = rows["fc1"]
    # codes at 4 bits + one f32 scale and one i8 zero point per output channel
    assert fc1["params"] == 16 * 32 and fc1["weight_bytes"] == 16 * 32 / 2 + 32 * 4 + 32
    assert fc1["input_bytes"] == 4 * 16 * 0.5  # the activation arrives at 4 bits
    assert fc1["macs"] == before.row(0)["macs"] == 4 * 16 * 32
    for name, row in rows.items():
        if row["op"] in ("QuantizeLinear", "DequantizeLinear", "Clip"):
            assert row["folded"] and row["nonmac_ops"] == {} and row["output_bytes"] == row["weight_bytes"] == 0
    assert rows["relu"]["output_bytes"] == 4 * 32 * 0.5  # written at fc2's input precision
    assert after.totals["macs"] == before.totals["macs"]


def test_workload_density_of_pruned_codes_counts_the_zero_point():
    _, t, _ = transformed(mlp(), "quantize{scheme=asymmetric,activations=false},prune{sparsity=0.75}")
    row = next(r for r in nvmc.analyze(t).to_dict()["nodes"] if r["name"] == "fc1")
    assert row["weight_density"] == pytest.approx(0.25, abs=1 / 512)


def test_csc_entries_by_hand():
    # 2 outputs x 3 inputs; column-major runs with 1 relative-index bit: a gap of 2+ zeros pads
    w = np.array([[0, 0, 5], [3, 0, 0]], np.float32)  # columns: [0,3] [0,0] [5,0]
    assert csc_entries(w, axis=0, rel_bits=1) == (2, 3)  # 1 zero before 3 (fits in 1 bit), 5 first
    tall = np.zeros((40, 1), np.float32)
    tall[35, 0] = 1.0  # 35 zeros before the only non-zero: 2 padding entries with 4-bit indices
    assert csc_entries(tall, axis=0, rel_bits=4) == (3, 1)


# ----------------------------------------------------------------------------- prune
def test_prune_unstructured_zeroes_the_smallest_per_layer():
    g, t, records = transformed(cnn(), "prune{sparsity=0.75}")
    for name in ("w1", "w2", "wf"):
        w, before = t.consts[name], g.consts[name]
        assert np.count_nonzero(w) == round(0.25 * w.size)
        kept = np.abs(before[w != 0])
        assert kept.min() >= np.abs(before[w == 0]).max()
        assert t.type_of(name).annotation("sparsity").get("density") == pytest.approx(0.25, abs=1e-3)
    rows = nvmc.analyze(t).to_dict()["nodes"]
    assert next(r for r in rows if r["name"] == "fc")["weight_density"] == pytest.approx(0.25, abs=1e-3)
    assert records[0].result.error["cosine"] < 1.0


def test_prune_n_m_keeps_n_in_every_group_along_the_input_channels():
    _, t, records = transformed(cnn(c1=8), 'prune{pattern="n:m",n=2,m=4}')
    w2 = t.consts["w2"]  # [4, 8, 3, 3]: groups of 4 input channels at each kernel position
    groups = np.moveaxis(w2, 1, -1).reshape(-1, 4)
    assert (np.count_nonzero(groups, axis=1) == 2).all()
    ann = t.type_of("w2").annotation("sparsity")
    assert (ann.get("pattern"), ann.get("n"), ann.get("m"), ann.get("density")) == ("n:m", 2, 4, 0.5)
    assert ("conv1", "its 3 input channels are not a multiple of m=4") in records[0].result.why_not


def test_prune_channels_halves_convs_and_macs():
    """Acceptance 2: conv1 8 -> 4 and conv2 4 -> 2 output channels; readers shrink too."""
    g, t, records = transformed(cnn(c1=8, c2=4), "prune{pattern=channel,sparsity=0.5}")
    assert t.consts[t.node("conv1").inputs[1]].shape == (4, 3, 3, 3)
    assert t.consts[t.node("conv1").inputs[2]].shape == (4,)
    assert all(t.consts[v].shape == (4,) for v in t.node("bn").inputs[1:])
    assert t.consts[t.node("conv2").inputs[1]].shape == (2, 4, 3, 3)
    assert t.consts[t.node("fc").inputs[1]].shape == (10, 2 * 64)
    assert t.type_of("r2").shape == (1, 2, 8, 8) and t.type_of("f").shape == (1, 128)
    # MACs, by hand: conv1 64 px x 4 x 27, conv2 64 px x 2 x (4 x 9), fc 10 x 128
    macs = {r["name"]: r["macs"] for r in nvmc.analyze(t).to_dict()["nodes"]}
    assert macs == {"conv1": 64 * 4 * 27, "bn": 0, "relu1": 0, "conv2": 64 * 2 * 36, "relu2": 0, "flatten": 0,
                    "fc": 10 * 128}
    assert nvmc.analyze(g).totals["macs"] == 64 * 8 * 27 + 64 * 4 * 72 + 10 * 256
    stats = records[0].result.stats
    assert stats["channels_removed"] == 4 + 2 and stats["macs_saved"] == (13824 + 18432 + 2560) - (6912 + 4608 + 1280)
    report = compare(g, t, samples=2)  # runs in onnxruntime; the error is real (no retraining)
    assert report.outputs[0].shape == (2, 10) and 0 < report.cosine < 1


def test_prune_channels_keeps_the_channels_with_the_largest_l1_norm():
    g, t, _ = transformed(mlp(hidden=8), 'prune{pattern=channel,sparsity=0.5,layers="fc2=0"}')
    w1 = g.consts["w1"]
    keep = np.sort(np.argsort(-np.abs(w1).sum(axis=0))[:4])
    np.testing.assert_array_equal(t.consts["w1"], w1[:, keep])
    np.testing.assert_array_equal(t.consts["b1"], g.consts["b1"][keep])
    np.testing.assert_array_equal(t.consts["w2"], g.consts["w2"][keep])
    out = compare(g, t, samples=2)
    assert out.cosine > 0.5


def test_prune_channels_says_why_not():
    _, t, records = transformed(cnn(c1=8, c2=8, residual=True), "prune{pattern=channel}")
    why = dict(records[0].result.why_not)
    assert why["conv1"] == "its channels meet '%r2' in Add 'residual', which would need the same channels"
    assert why["fc"] == "its channels reach the graph output '%y'"
    assert not records[0].changed


def test_prune_channels_of_a_quantized_model_slices_the_scales():
    g, t, _ = transformed(cnn(), "quantize{bits=8},prune{pattern=channel,sparsity=0.5}")
    codes, dq = codes_of(t, t.node("conv1").inputs[1])
    assert codes.shape == (4, 3, 3, 3) and t.consts[dq.inputs[1]].shape == (4,) and t.consts[dq.inputs[2]].shape == (4,)
    assert compare(g, t).outputs[0].shape == (1, 10)


# ---------------------------------------------------------------------- share-weights
def test_kmeans_1d_finds_separated_clusters():
    values = np.concatenate([RNG.normal(c, 0.01, 200) for c in (-1.0, 0.0, 2.0)])
    np.testing.assert_allclose(kmeans_1d(values, 3, 50), [-1.0, 0.0, 2.0], atol=0.01)


def test_share_weights_uses_a_codebook_per_layer():
    g, t, records = transformed(mlp(k=16, hidden=32), "share-weights{clusters=16}")
    ann = t.type_of("w1").annotation("codebook")
    assert ann.get("clusters") == 16 and ann.get("index_bits") == 4 and ann.get("format") == "dense"
    assert set(np.unique(t.consts["w1"]).tolist()) <= set(np.float32(v) for v in ann.get("values"))
    row = next(r for r in nvmc.analyze(t).to_dict()["nodes"] if r["name"] == "fc1")
    assert row["weight_bytes"] == 16 * 32 * 4 / 8 + 16 * 4 and row["codebook_bytes"] == 16 * 4
    assert records[0].result.stats["weight_bytes_saved"] > 0 and records[0].result.error["sqnr_db"] > 10


def test_share_weights_after_prune_keeps_zeros_and_stores_csc():
    g, t, _ = transformed(mlp(k=64, hidden=64), "prune{sparsity=0.9},share-weights{clusters=16}")
    w1 = t.consts["w1"]
    assert np.count_nonzero(w1) == round(0.1 * w1.size)
    ann = t.type_of("w1").annotation("codebook")
    assert ann.get("format") == "csc" and 0.0 in ann.get("values") and len(np.unique(w1)) <= 16
    entries, columns = csc_entries(w1, ann.get("axis"), 4)
    row = next(r for r in nvmc.analyze(t).to_dict()["nodes"] if r["name"] == "fc1")
    # 16-bit column pointers (EIE-N, nvmc/ir/csc.py); 32-bit ((columns + 1) * 4) before the CSC format was
    # defined once at EIE's cited pointer width
    assert row["weight_bytes"] == entries * (4 + 4) / 8 + (columns + 1) * 2 + 16 * 4
    assert row["weight_bytes"] < 64 * 64 * 4 / 8  # smaller than dense 4-bit indices


def test_share_weights_after_quantize_says_why_not():
    _, _, records = transformed(mlp(), "quantize,share-weights")
    assert ("fc1", "the weight '%w1_q' is quantised; share weights before quantize") in records[1].result.why_not


def test_non_finite_calibration_is_a_clear_error():
    w = numpy_helper.from_array(he(4, 4), "w")
    nodes = [helper.make_node("Log", ["x"], ["l"], name="log"), helper.make_node("MatMul", ["l", "w"], ["y"], name="mm")]
    model = helper.make_model(helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 4])], [w]), opset_imports=[helper.make_opsetid("", 17)])
    with pytest.raises(PassError, match="calibration: '%l' takes non-finite values .* on the calibration inputs"):
        run_pipeline(nvmc.load(model), "quantize")
