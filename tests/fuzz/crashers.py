"""Builds the regression files in tests/data/fuzz_crashers/: the crashers the model fuzzer
(tests/test_fuzz_models.py) found, each reduced to a small file named for what it is.

    /work/venv/bin/python tests/fuzz/crashers.py     # rewrites tests/data/fuzz_crashers/

``CASES`` says how each is run and what it must print; test_fuzz_models.py runs them.
"""

from __future__ import annotations

import io
import sys
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

REPO = Path(__file__).resolve().parents[2]
FOLDER = REPO / "tests" / "data" / "fuzz_crashers"
TINY_CNN = REPO / "examples" / "models" / "tiny_cnn.onnx"

# (file, nvmc arguments ({} = the file, {out} = a scratch folder), exit code, text in the message,
#  what crashed before and where it is fixed)
CASES = [
    ("conv_group_zero.onnx", ["analyze", "{}"], 2, "group=0; it must be a positive integer",
     "ZeroDivisionError in the Conv MAC rule: fixed in passes/workload.py (_group)"),
    ("conv_channels_mismatch.onnx", ["verify", "{}"], 2, "the input has 1000 channels but the weight takes 333",
     "verify said ok (ONNX inference does not check Conv channels); `compile -t eie` then failed in onnxruntime: "
     "fixed in ir/verify.py (_conv_channels)"),
    ("op_type_not_utf8.onnx", ["verify", "{}"], 2, "not UTF-8 text",
     "TypeError from onnx.defs.get_schema(bytes): fixed in frontend/onnx_import.py (_check_ops_known)"),
    ("input_dim_2pow62.onnx", ["compile", "{}", "-t", "sot-mram"], 2, "more than the 2**40 nvmc handles",
     "OverflowError filling int64 workload columns: fixed in ir/verify.py (MAX_ELEMENTS)"),
    ("external_data_nul_byte/model.onnx", ["verify", "{}"], 2, "which is not a file name",
     "ValueError (embedded null byte) resolving the location: fixed in frontend/onnx_import.py"),
    ("constant_of_shape_2pow62.onnx", ["verify", "{}"], 2, "more than 2**40 elements",
     "ValueError (iterator is too large) in np.broadcast_to: fixed in frontend/onnx_import.py (_fold_constant)"),
    ("constant_of_shape_2pow40.onnx", ["ir", "{}", "-o", "{out}/x.nvir"], 2, "would take 4096 GiB written out",
     "a hang writing a 4 TiB filled constant: fixed in nvmc/api.py (save)"),
    ("constant_of_shape_2pow40.onnx", ["export", "{}", "-o", "{out}/x.onnx"], 2, "would take 4096 GiB written out",
     "the same, through export"),
    ("sidecar_truncated_zip/model.nvir", ["verify", "{}"], 2, "File is not a zip file",
     "zipfile.BadZipFile reading the .npz: fixed in ir/parser.py (_fetch)"),
    ("sidecar_not_zip/model.nvir", ["verify", "{}"], 2, "not an .npz archive",
     "not a crash: np.load's message suggested loading it as a pickle; ir/parser.py checks the zip magic"),
    ("const_string_in_f32.nvir", ["verify", "{}"], 2, "do not fit f32",
     "ValueError building the array: fixed in ir/parser.py (_payload)"),
    ("const_nan_in_i64.nvir", ["verify", "{}"], 2, "do not fit i64", "the same, NaN into an integer"),
    ("const_overflow_u8.nvir", ["verify", "{}"], 2, "do not fit u8", "OverflowError, the same place"),
    ("const_overflow_f16.nvir", ["verify", "{}"], 2, "do not fit f16",
     "a RuntimeWarning on stderr (overflow in cast), the same place"),
    ("attr_int_beyond_int64.nvir", ["verify", "{}"], 2, "outside the 64-bit integer range",
     "ValueError (Value out of range) writing the attribute to ONNX: fixed in ir/verify.py (_attr_problem)"),
    ("attr_string_lone_surrogate.nvir", ["verify", "{}"], 2, "a lone surrogate",
     "UnicodeEncodeError writing the attribute to ONNX: fixed in ir/verify.py (_attr_problem)"),
    ("attr_list_text_and_numbers.nvir", ["verify", "{}"], 2, "holds a list ONNX cannot store",
     "ValueError (could not convert string to float) writing the attribute: fixed in ir/verify.py"),
    ("attr_list_bool_and_int.nvir", ["verify", "{}"], 2, "holds true/false in a list",
     "TypeError (AttributeProto.ints: expected an int, got a boolean) writing the attribute: fixed in "
     "ir/verify.py"),
    ("opset_version_2pow40.onnx", ["verify", "{}"], 2, "which is no opset version",
     "TypeError from onnx.defs.get_schema (a C int): fixed in frontend/onnx_import.py (_check_ops_known)"),
    ("checker_text_not_utf8.onnx", ["verify", "{}"], 2, "holds text that is not UTF-8",
     "UnicodeDecodeError raised by onnx.checker itself (squeezenet, splice seed 22): fixed in "
     "frontend/onnx_import.py"),
    ("attr_empty_list_for_scalar.nvir", ["verify", "{}"], 2, "attribute 'alpha' is an empty list",
     "AssertionError inside onnx.helper.make_attribute: fixed in frontend/typecheck.py (_check_empty_lists)"),
    ("codebook_bits_not_a_number.nvir", ["compile", "{}", "-t", "sot-mram"], 2, "#codebook index_bits='dense'",
     "ValueError (float('dense')) in the workload's weight storage: fixed in ir/verify.py (_ANNOTATION_NUMBERS)"),
    ("value_name_with_nul.onnx", ["verify", "{}"], 2, "holds a NUL character",
     "`nvmc ir -o` wrote a sidecar key the .npz cut at the NUL, so its .nvir did not read back: ir/verify.py"),
    ("graph_text_not_utf8.onnx", ["verify", "{}"], 2, "holds text that is not UTF-8",
     "UnicodeDecodeError reading a damaged string field (tiny_cnn, flip_bits seed 153): fixed in "
     "frontend/onnx_import.py (import_model)"),
    ("output_dtype_contradicts_inference.onnx", ["verify", "{}"], 2, "ONNX shape inference failed",
     "verify said ok, then its own .nvir did not read back: import now infers strictly "
     "(frontend/onnx_import.py)"),
    ("nvir_conv_rank_mismatch.nvir", ["compile", "{}", "-t", "systolic-sot-7nm"], 2,
     "is typed f32[] but ONNX infers f32[1,2,4,4]",
     "IndexError in the Conv MAC rule on a .nvir whose types were not checked: nvmc.load verifies "
     "types (nvmc/api.py)"),
    # found by the surface fuzzer (tests/test_fuzz_surfaces.py, issue 21)
    ("surface_conv.onnx", ["ir", "{}", "-o", "{out}/a:b.nvir"], 2, "which a .nvir cannot hold",
     "`ir -o` / `opt -o` named ':smile:.nvir', 'o<>.nvir' or 'o\\t.nvir' wrote a .nvir whose '@file:key' sidecar "
     "reference does not parse back: fixed in nvmc/api.py (save)"),
    ("surface_conv.onnx", ["results", "{}", "--html", "-"], 2, "--html writes a file, not stdout",
     "exit 0, having written a file named '-' (compile --html - was refused): fixed in nvmc/cli_sweep.py (results)"),
    ("surface_conv.onnx", ["sweep", "{}", "--workers", "0", "--db", "-"], 2, "--db is a database file, not stdout",
     "exit 0, having made a database named '-': fixed in nvmc/cli_sweep.py (sweep)"),
    ("surface_conv.onnx", ["analyze", "{out}/missing\rname\n\u2028.onnx"], 2, "missing\\rname\\n\\u2028.onnx",
     "the error line was split in three: print_error split it at the CR and U+2028 of a file name (splitlines) "
     "and the newline went out raw: fixed in nvmc/render.py (print_error) and ir/errors.py (render)"),
    ("range_2pow28_data_propagation.onnx", ["verify", "{}"], 2, "ONNX shape inference computes at most",
     "a 300-byte model took every byte of memory (the OOM killer ended it at 23 GB): ONNX data propagation "
     "computes Range(0, 2**28)'s values one protobuf dimension each; fixed in frontend/typecheck.py "
     "(check_propagation), called before inference in frontend/onnx_import.py (_infer)"),
    ("range_2pow28_data_propagation.nvir", ["verify", "{}"], 2, "ONNX shape inference computes at most",
     "the same through a .nvir (frontend/typecheck.py verify_types)"),
    ("nvir_nested_5000.nvir", ["verify", "{}"], 2, "nested more than 64 deep",
     "slow, then a RecursionError: the grammar read a statement nested 200,000 deep for 3 to 8 s (twice: fast "
     "path, then fallback) before its tree was too deep to build: fixed in ir/parser.py (_check_nesting)"),
    ("open_target_dotted_key_3000.toml", ["explain", "-t", "{}"], 2, "dotted key",
     "tomllib takes time quadratic in the parts of a dotted key (a 120 kB target: about 90 s): fixed in "
     "backends/target.py (parse_target calls ir/limits.py toml_key_problem first)"),
    ("surface_conv.onnx", ["explain", "-t", "sram", "--set", "llc.capacity={{" + ".".join(["a"] * 3000) + "=1}}"],
     2, "dotted key", "the same through a --set value: fixed in backends/target.py (_parse_value)"),
]

# Crashers whose outcome is a result, not an error, replayed by tests/test_fuzz_surfaces.py
# (test_surface_crashers): (file, the name it is copied to in a scratch folder (None: kept),
# nvmc arguments, exit code, text that must be in stdout or stderr, what was wrong before).
# Their hostile file names (ESC, BEL) are made at replay time, not kept in the repository.
SURFACE_CASES = [
    ("surface_conv.onnx", "m\x1b[2J\x07.onnx", ["ir", "{}"], 0, "@weights.npz:",
     "`nvmc ir MODEL` printed the model's file name raw in the sidecar references (@m<ESC>[2J<BEL>.npz:...): "
     "fixed in ir/printer.py (sidecar_for), used by nvmc/cli.py (ir) and nvmc/cli_passes.py (opt)"),
    ("surface_conv.onnx", "m\x1b]0;x\x07.onnx", ["opt", "{}", "-p", "dce"], 0, "@weights.npz:", "the same, `nvmc opt`"),
    ("sweep_failed_point_long_name.toml", None, ["sweep", "{}", "--workers", "0", "-q", "--db", "{out}/s.sqlite"], 1,
     "failed: ", "a failed point's stored message (a 20,000-character node name) went to stderr as one "
                 "20,110-character line: fixed in nvmc/cli_sweep.py (_print_counts through print_error; results "
                 "shortens it too)"),
    ("explain_pass_long_names.onnx", None, ["opt", "{}", "-p", "fuse-activation", "--explain-pass", "fuse-activation",
                                            "-o", "{out}/o.onnx"], 0, "1 place(s) left alone",
     "`opt --explain-pass` printed each place left alone in full: a 5,000-character node name made a 10,000-"
     "character stderr line: fixed in nvmc/cli_passes.py (_explain: one_line)"),
    ("identity_no_macs.onnx", None, ["compile", "{}", "-t", "rram-pim"], 0, "rram-pim",
     "exit 70, ValueError: invalid literal for int() with base 10: 'one': a model without MACs on a crossbar "
     "target (backends/family.py precision() called _bits_of('none')); found here, fixed in backends/ by its owner "
     "(3170fa5)"),
    ("node_name_paragraph_separator.onnx", None, ["analyze", "{}"], 0, "conv\\u2029relu",
     "a node named 'conv<U+2029>relu' was split over two table rows (rich breaks lines at U+2028/U+2029): "
     "fixed in nvmc/render.py (one_line, visible escape them)"),
]

# Crashers left open: their fix belongs to backends/ (being refactored by another engineer).
# test_fuzz_surfaces.py replays them as strict xfails (an XPASS says: move it to CASES) and
# counts the fuzz cases they explain as "known open" (KNOWN_OPEN there).
OPEN_CASES: list = []  # crashers left open for another layer: none now


def _tiny_cnn() -> onnx.ModelProto:
    return onnx.load(TINY_CNN)


def _set_attr(node: onnx.NodeProto, name: str, value) -> None:
    for i, a in enumerate(node.attribute):
        if a.name == name:
            del node.attribute[i]
            break
    node.attribute.append(helper.make_attribute(name, value))


def build(folder: Path = FOLDER) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    sys.path.insert(0, str(Path(__file__).resolve().parent))  # onnx_mutators, beside this file

    m = _tiny_cnn()
    _set_attr(next(n for n in m.graph.node if n.name == "dwconv"), "group", 0)
    (folder / "conv_group_zero.onnx").write_bytes(m.SerializeToString())

    fill = helper.make_tensor("value", TensorProto.FLOAT, [1], [0.5])
    graph = helper.make_graph(
        [helper.make_node("ConstantOfShape", ["s"], ["w"], value=fill), helper.make_node("Conv", ["x", "w"], ["y"],
                                                                                          group=3, name="op")],
        "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1000, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 6, 8, 8])],
        [numpy_helper.from_array(np.array([6, 333, 1, 1], np.int64), "s")])
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    m.ir_version = 8
    (folder / "conv_channels_mismatch.onnx").write_bytes(m.SerializeToString())

    data = _tiny_cnn().SerializeToString()  # protobuf will not write invalid UTF-8: patch the bytes
    assert data.count(b"MaxPool") == 1
    (folder / "op_type_not_utf8.onnx").write_bytes(data.replace(b"MaxPool", b"Max\xd0ool"))

    m = _tiny_cnn()
    m.graph.input[0].type.tensor_type.shape.dim[2].dim_value = 2**62
    (folder / "input_dim_2pow62.onnx").write_bytes(m.SerializeToString())

    sub = folder / "external_data_nul_byte"
    sub.mkdir(exist_ok=True)
    m = _tiny_cnn()
    t = next(t for t in m.graph.initializer if t.name == "conv2.w")
    (sub / "w.bin").write_bytes(numpy_helper.to_array(t).tobytes())
    t.ClearField("raw_data")
    t.ClearField("float_data")
    t.data_location = TensorProto.EXTERNAL
    t.external_data.add(key="location", value="w.bin\x00../../secret.bin")
    (sub / "model.onnx").write_bytes(m.SerializeToString())

    for label, dims in (("2pow62", [2**62, 4]), ("2pow40", [2**20, 2**20])):
        m = _tiny_cnn()
        m.graph.initializer.append(numpy_helper.from_array(np.array(dims, dtype=np.int64), "big_shape"))
        fill = helper.make_tensor("value", TensorProto.FLOAT, [1], [1.5])
        m.graph.node.insert(0, helper.make_node("ConstantOfShape", ["big_shape"], ["big"], value=fill, name="big"))
        m.graph.node.insert(1, helper.make_node("ReduceSum", ["big"], ["big_sum"], keepdims=0, name="big_sum"))
        m.graph.output.append(helper.make_tensor_value_info("big_sum", TensorProto.FLOAT, []))
        (folder / f"constant_of_shape_{label}.onnx").write_bytes(m.SerializeToString())

    buf = io.BytesIO()
    np.savez(buf, w=np.arange(4, dtype=np.float32))
    for label, npz in (("sidecar_not_zip", b"this is not a zip archive\n"), ("sidecar_truncated_zip", buf.getvalue()[:60])):
        sub = folder / label
        sub.mkdir(exist_ok=True)
        (sub / "model.nvir").write_text(
            "// nvmc.ir 1  opset=17\n"
            "graph @g(%x: f32[4]) -> (%y: f32[4]) {\n"
            "  %w = const f32[4] @model.npz:w\n"
            "  %y = Add(%x, %w) : f32[4]\n"
            "  return %y\n}\n")
        (sub / "model.npz").write_bytes(npz)

    def const_case(name: str, dtype: str, values: str) -> None:
        (folder / name).write_text(
            "// nvmc.ir 1  opset=17\n"
            f"graph @g(%x: {dtype}[2]) -> (%y: {dtype}[2]) {{\n"
            f"  %c = const {dtype}[2] [{values}]\n"
            f"  %y = Add(%x, %c) : {dtype}[2]\n"
            "  return %y\n}\n")

    const_case("const_string_in_f32.nvir", "f32", '1.0, "s"')
    const_case("const_nan_in_i64.nvir", "i64", "1, nan")
    const_case("const_overflow_u8.nvir", "u8", "1, -90490328")
    const_case("const_overflow_f16.nvir", "f16", "1.0, 1e300")

    for name, attrs in (("attr_int_beyond_int64.nvir", "{pads=[1, 9223372036854775808, 1, 1]}"),
                        ("attr_string_lone_surrogate.nvir", '{auto_pad="\\udcff"}'),
                        ("attr_list_text_and_numbers.nvir", '{dilations=["s", true, -323, 1.5]}'),
                        ("attr_list_bool_and_int.nvir", "{dilations=[1, true]}")):
        (folder / name).write_text(
            "// nvmc.ir 1  opset=17\n"
            "graph @g(%x: f32[1,2,4,4]) -> (%y: f32[1,2,4,4]) {\n"
            "  %w = const f32[2,2,1,1] [1.0, 0.0, 0.0, 1.0]\n"
            f"  %y = Conv(%x, %w) {attrs} : f32[1,2,4,4]  // conv\n"
            "  return %y\n}\n")

    (folder / "attr_empty_list_for_scalar.nvir").write_text(
        "// nvmc.ir 1  opset=17\n"
        "graph @g(%a: f32[2,3]) -> (%y: f32[2,2]) {\n"
        "  %b = const f32[3,2] [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]\n"
        "  %y = Gemm(%a, %b) {alpha=[]} : f32[2,2]  // gemm\n"
        "  return %y\n}\n")
    (folder / "codebook_bits_not_a_number.nvir").write_text(
        "// nvmc.ir 1  opset=17\n"
        "graph @g(%a: f32[2,2]) -> (%y: f32[2,2]) {\n"
        '  %w = const f32[2,2] #codebook<axis=1, clusters=2, format=4, index_bits="dense", rel_bits=4, '
        "values=[0.0, 1.0]> [0.0, 1.0, 1.0, 0.0]\n"
        "  %y = MatMul(%a, %w) : f32[2,2]  // mm\n"
        "  return %y\n}\n")

    m = _tiny_cnn()
    old = m.graph.node[0].output[0]
    for node in m.graph.node:
        node.input[:] = ["\x00nul" if v == old else v for v in node.input]
    m.graph.node[0].output[0] = "\x00nul"
    (folder / "value_name_with_nul.onnx").write_bytes(m.SerializeToString())

    from onnx_mutators import flip_bits

    (folder / "graph_text_not_utf8.onnx").write_bytes(
        flip_bits(TINY_CNN.read_bytes(), np.random.default_rng([153, len("tiny_cnn"), len("flip_bits")])))

    m = _tiny_cnn()
    m.opset_import[0].version = 2**40
    (folder / "opset_version_2pow40.onnx").write_bytes(m.SerializeToString())

    # found as squeezenet's bytes with 40 of them spliced out (fuzz seed 22): onnx.checker
    # cannot even decode the names it quotes; kept as found (15 kB) since it is rebuilt here
    from onnx_mutators import splice

    squeeze = (Path(onnx.__file__).parent / "backend/test/data/light/light_squeezenet.onnx").read_bytes()
    (folder / "checker_text_not_utf8.onnx").write_bytes(
        splice(squeeze, np.random.default_rng([22, len("squeezenet"), len("splice")])))

    m = _tiny_cnn()
    m.graph.output[0].type.tensor_type.elem_type = TensorProto.DOUBLE  # Softmax of f32 is f32
    (folder / "output_dtype_contradicts_inference.onnx").write_bytes(m.SerializeToString())

    (folder / "nvir_conv_rank_mismatch.nvir").write_text(
        "// nvmc.ir 1  opset=17\n"
        "graph @g(%x: f32[1,2,4,4]) -> (%y: f32[]) {\n"
        "  %w = const f32[2,2,1,1] [1.0, 0.0, 0.0, 1.0]\n"
        "  %y = Conv(%x, %w) : f32[]\n"
        "  return %y\n}\n")


def _conv_relu(path: Path, conv: str = "conv", relu: str = "relu") -> None:
    w = numpy_helper.from_array(np.full((4, 3, 3, 3), 0.1, np.float32), "w")
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], name=conv, pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c"], ["y"], name=relu)]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4, 8, 8])], [w])
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    path.write_bytes(m.SerializeToString())


def build_surfaces(folder: Path = FOLDER) -> None:
    """The crashers of tests/test_fuzz_surfaces.py (issue 21)."""
    _conv_relu(folder / "surface_conv.onnx")
    _conv_relu(folder / "node_name_paragraph_separator.onnx", conv="conv\u2029relu", relu="relu\u2028")

    scalar = lambda name, v: numpy_helper.from_array(np.array(v, np.int64), name)  # noqa: E731
    nodes = [helper.make_node("Range", ["a", "b", "d"], ["r"], name="range"),
             helper.make_node("Cast", ["r"], ["rf"], name="cast", to=TensorProto.FLOAT),
             helper.make_node("ReduceSum", ["rf"], ["y"], name="sum", keepdims=0)]
    graph = helper.make_graph(nodes, "g", [], [helper.make_tensor_value_info("y", TensorProto.FLOAT, [])],
                              [scalar("a", 0), scalar("b", 1 << 28), scalar("d", 1)])
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    (folder / "range_2pow28_data_propagation.onnx").write_bytes(m.SerializeToString())
    (folder / "range_2pow28_data_propagation.nvir").write_text(
        "// nvmc.ir 1  opset=17\n"
        "graph @g(%x: f32[1]) -> (%y: f32[]) {\n"
        "  %a = const i64[] [0]\n  %b = const i64[] [268435456]\n  %d = const i64[] [1]\n"
        "  %r = Range(%a, %b, %d) : i64[268435456]  // range\n"
        "  %rf = Cast(%r) {to=1} : f32[268435456]  // cast\n"
        "  %y = ReduceSum(%rf) {keepdims=0} : f32[]  // sum\n"
        "  return %y\n}\n")

    graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"], name="id")], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 3])])
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    (folder / "identity_no_macs.onnx").write_bytes(m.SerializeToString())

    w = numpy_helper.from_array(np.full((4, 3, 3, 3), 0.1, np.float32), "w")
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], name="c" * 5000, pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c"], ["y"], name="r" * 5000),
             helper.make_node("Sigmoid", ["c"], ["z"], name="s")]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
                              [helper.make_tensor_value_info(v, TensorProto.FLOAT, [1, 4, 8, 8]) for v in "yz"], [w])
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    (folder / "explain_pass_long_names.onnx").write_bytes(m.SerializeToString())

    graph = helper.make_graph([helper.make_node("Fancy", ["x"], ["y"], name="n" * 20_000)], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])])
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    (folder / "sweep_failed_point_long_name.onnx").write_bytes(m.SerializeToString())
    (folder / "sweep_failed_point_long_name.toml").write_text(
        'schema = "nvmc.sweep/1"\nname = "long"\nmodels = ["sweep_failed_point_long_name.onnx"]\ntargets = ["sram"]\n')

    (folder / "nvir_nested_5000.nvir").write_text(
        "// nvmc.ir 1  opset=17\ngraph @g(%x: f32[1]) -> (%y: f32[1]) {\n  %y = Relu(%x) {a=" + "[1, " * 5000 + "2"
        + "]" * 5000 + "} : f32[1]\n  return %y\n}\n")

    sram = (REPO / "backends" / "targets" / "sram.toml").read_text()
    (folder / "open_target_dotted_key_3000.toml").write_text(sram + "\n[x]\n" + ".".join(["a"] * 3000) + " = 1\n")
    (folder / "config_sweep_dotted_key.toml").write_text(
        "# expect: a dotted key of more than 32 parts\n"
        "# Before: tomllib's time is quadratic in the parts of a dotted key: 60,000 (120 kB) took minutes, a\n"
        "# million (a 2 MB spec, under the 16 MiB limit) hours. Fixed in nvmc/sweep/spec.py (load_spec,\n"
        "# nvmc.ir.limits.toml_key_problem before tomllib).\n"
        'schema = "nvmc.sweep/1"\nname = "deep"\nmodels = ["models/tiny_cnn.onnx"]\ntargets = ["sram"]\n[grid]\n'
        + ".".join(["a"] * 2000) + " = [1]\n")
    (folder / "config_sweep_pipelines_counted_first.toml").write_text(
        "# expect: points, more than 100000\n"
        "# Before: every pipeline string was parsed (2 ms each) before the points were counted: a spec of\n"
        "# 5,000 pipelines x every target took 11 s to refuse. Fixed in nvmc/sweep/spec.py (_Builder.product).\n"
        'schema = "nvmc.sweep/1"\nname = "many"\nmodels = ["models/tiny_cnn.onnx"]\ntargets = "*"\n'
        "batch = [1, 2, 3]\npipelines = [" + ", ".join(['"dce"'] * 4001) + "]\n")


if __name__ == "__main__":
    build(Path(sys.argv[1]) if len(sys.argv) > 1 else FOLDER)
    build_surfaces(Path(sys.argv[1]) if len(sys.argv) > 1 else FOLDER)
    print(f"wrote {FOLDER}")
