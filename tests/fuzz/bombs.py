"""Deeply nested inputs and resource bombs for tests/test_fuzz_surfaces.py: small files that
ask for a great deal (of stack, memory or time) once read.

Nesting (depth 10 to 200,000): .nvir attribute lists, constant payloads, annotations and
dense<> values; target TOML arrays, inline tables and dotted keys; sweep specs; ``--set``
values and pipeline strings; ONNX subgraphs (If inside If ...).

Bombs: .npz zip bombs (deflated zeros whose honest sizes give them away; a directory that
lies about the unpacked size; many members; an .npy header declaring a huge shape),
ConstantOfShape / Expand / Tile / Range of huge declared size, protobuf with huge repeated
fields, and sweep specs whose grids or points expand past the limits.

Everything is built cheaply: a 2 GiB bomb is the same deflate block repeated, its CRC
computed from the affine structure of CRC-32 over zeros (no 2 GiB buffer exists here).
"""

from __future__ import annotations

import io
import math
import random
import struct
import zlib

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

DEPTHS = [10, 100, 500, 1000, 5000, 20_000, 100_000, 200_000]
MAX_ARG = 120_000  # the kernel takes at most 128 KiB in one command-line argument

NVIR_HEAD = "// nvmc.ir 1  opset=17\n"


def brackets(depth: int, open_: str = "[", close: str = "]", core: str = "1") -> str:
    return open_ * depth + core + close * depth


# ------------------------------------------------------------------ nesting
def nested_nvir(rnd: random.Random, depth: int) -> tuple[str, str]:
    """A .nvir program with one construct nested ``depth`` deep."""
    where = rnd.choice(["attr", "attr-mixed", "const", "annotation", "dense", "attr-open"])
    if where == "attr":
        body = "  %y = Relu(%x) {a=" + brackets(depth) + "} : f32[1]\n"
    elif where == "attr-mixed":
        body = "  %y = Relu(%x) {a=" + "[1, " * depth + "2" + "]" * depth + "} : f32[1]\n"
    elif where == "attr-open":  # never closed
        body = "  %y = Relu(%x) {a=" + "[" * depth + "} : f32[1]\n"
    elif where == "const":
        body = "  %c = const f32[1] " + brackets(depth, core="1.0") + "\n  %y = Add(%x, %c) : f32[1]\n"
    elif where == "annotation":
        body = "  %y = Relu(%x) : f32[1] #codebook<values=" + brackets(depth, core="0.5") + ">\n"
    else:
        inner = "dense<f32[1] [1.0]>"
        for _ in range(min(depth, 50_000)):
            inner = f"dense<f32[1] [{inner}]>"
        body = "  %y = Relu(%x) {a=" + inner + "} : f32[1]\n"
    return where, NVIR_HEAD + "graph @g(%x: f32[1]) -> (%y: f32[1]) {\n" + body + "  return %y\n}\n"


def nested_toml_value(rnd: random.Random, depth: int) -> str:
    kind = rnd.choice(["array", "inline", "mixed", "unclosed"])
    if kind == "array":
        return brackets(depth)
    if kind == "inline":
        return "{a=" * depth + "1" + "}" * depth
    if kind == "mixed":
        return "[{a=" * depth + "1" + "}]" * depth
    return "[" * depth


def nested_target(rnd: random.Random, template: str, depth: int, max_dotted: int = 60_000) -> tuple[str, str]:
    """A target TOML with a deep value, or a deep table made of dotted keys (at most
    ``max_dotted`` parts: tomllib's time is quadratic in them)."""
    where = rnd.choice(["llc", "top", "dotted", "header", "inline-dotted"])
    if where == "dotted":
        return where, template + "\n[x]\n" + ".".join(["a"] * min(depth, max_dotted)) + " = 1\n"
    if where == "header":
        return where, template + "\n[" + ".".join(["t"] * min(depth, max_dotted)) + "]\nk = 1\n"
    if where == "inline-dotted":
        return where, "x = {" + ".".join(["a"] * min(depth, max_dotted)) + " = 1}\n" + template
    value = nested_toml_value(rnd, depth)
    if where == "llc" and "[llc]" in template:
        return where, template.replace("[llc]", "[llc]\ncapacity = " + value, 1)
    return where, "x = " + value + "\n" + template


def nested_spec(rnd: random.Random, depth: int, model: str = "m.onnx") -> tuple[str, str]:
    value = nested_toml_value(rnd, depth)
    where = rnd.choice(["set", "grid", "models", "points", "batch", "pipelines", "dotted", "header"])
    head = 'schema = "nvmc.sweep/1"\nname = "deep"\n'
    if where == "dotted":
        return where, (head + f'models = ["{model}"]\ntargets = ["sram"]\n[grid]\n'
                       + ".".join(["a"] * depth) + " = [1]\n")
    if where == "header":
        return where, head + f'models = ["{model}"]\ntargets = ["sram"]\n[[' + ".".join(["p"] * depth) + "]]\nk = 1\n"
    if where == "points":
        return where, head + f'[[points]]\nmodel = "{model}"\ntarget = "sram"\nset = {value}\n'
    base = {"models": f'["{model}"]', "targets": '["sram"]'}
    if where in ("models", "batch", "pipelines", "set"):
        base[where] = value
    text = head + "".join(f"{k} = {v}\n" for k, v in base.items())
    if where == "grid":
        text += '[grid]\n"llc.capacity" = ' + value + "\n"
    return where, text


def nested_set(rnd: random.Random, depth: int, max_dotted: int = MAX_ARG) -> tuple[str, str]:
    """A --set value nested ``depth`` deep (an inline table's dotted key: at most ``max_dotted`` parts)."""
    depth = max(4, min(depth, MAX_ARG // 2 - 20))
    return rnd.choice([("array", "llc.capacity=" + brackets(depth)),
                       ("inline", "llc.capacity=" + "{a=" * (depth // 3) + "1" + "}" * (depth // 3)),
                       ("key", ".".join(["llc"] * (depth // 4)) + "=1"),
                       ("dims", "array=" + "x".join(["1"] * (depth // 2))),
                       ("unclosed", "llc.capacity=" + "[" * depth),
                       ("inline-dotted", "llc.capacity={" + ".".join(["a"] * min(depth // 2, max_dotted)) + "=1}")])


def nested_pipeline(rnd: random.Random, depth: int) -> tuple[str, str]:
    depth = min(depth, MAX_ARG // 8)
    return rnd.choice([("list", "quantize{bits=" + brackets(depth) + "}"),
                       ("braces", "quantize{bits=" + "{" * depth + "}" * depth + "}"),
                       ("nested", "a{" * depth + "}" * depth),
                       ("unclosed", "dce{" * depth),
                       ("long", ",".join(["dce"] * min(depth, 2000))),  # not nesting: 1.5 ms a pass in `opt`
                       ("escapes", 'quantize{inputs="' + "\\\\" * depth + '"}'),
                       ("parens", "(" * depth + "dce" + ")" * depth)])


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b, n = n & 0x7F, n >> 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _field(number: int, payload: bytes) -> bytes:
    """A length-delimited protobuf field."""
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def nested_if_model(depth: int) -> bytes:
    """x -> If(c) { If(c) { ... Relu(x) ... } else Relu } -> y, ``depth`` subgraphs deep.

    Encoded field by field (protobuf's own builders refuse to nest past 100), from inside out:
    GraphProto.node = 1, NodeProto.{input 1, output 2, name 3, op_type 4, attribute 5},
    AttributeProto.{name 1, g 6, type 20 (GRAPH = 5)}, GraphProto.output = 12."""
    f32 = TensorProto.FLOAT

    def out_info(name: str) -> bytes:
        return helper.make_tensor_value_info(name, f32, [1]).SerializeToString()

    def relu_graph(out: str, name: str) -> bytes:
        node = helper.make_node("Relu", ["x"], [out]).SerializeToString()
        return _field(1, node) + _field(2, name.encode()) + _field(12, out_info(out))

    def graph_attr(name: str, graph: bytes) -> bytes:
        return _field(1, name.encode()) + _field(6, graph) + _varint(20 << 3) + _varint(5)

    inner = relu_graph("r0", "leaf")
    for i in range(1, depth + 1):
        out = f"r{i}"
        node = (_field(1, b"c") + _field(2, out.encode()) + _field(3, f"if{i}".encode()) + _field(4, b"If")
                + _field(5, graph_attr("then_branch", inner))
                + _field(5, graph_attr("else_branch", relu_graph(out, f"e{i}"))))
        inner = _field(1, node) + _field(2, f"g{i}".encode()) + _field(12, out_info(out))
    top = inner + b"".join(_field(11, helper.make_tensor_value_info(n, t, s).SerializeToString())
                           for n, t, s in (("x", f32, [1]), ("c", TensorProto.BOOL, [])))
    head = helper.make_model(helper.make_graph([], "h", [], []), opset_imports=[helper.make_opsetid("", 17)])
    head.ir_version = 8
    head.ClearField("graph")
    return head.SerializeToString() + _field(7, top)


# ------------------------------------------------------------------ zip bombs
def _crc_of_zeros(prefix_crc: int, chunk: int, n: int) -> int:
    """crc32(prefix + n * chunk zero bytes) given crc32(prefix), without the zeros."""
    f0 = zlib.crc32(bytes(chunk))
    cols = [zlib.crc32(bytes(chunk), 1 << i) ^ f0 for i in range(32)]  # crc32(zeros, v) is affine in v
    crc = prefix_crc
    for _ in range(n):
        acc = f0
        for i in range(32):
            if crc >> i & 1:
                acc ^= cols[i]
        crc = acc
    return crc


def _zip(members: list[tuple[str, bytes, int, int, int]]) -> bytes:
    """A zip of (name, compressed data, method, crc, declared size) members."""
    local, central, offset = [], [], 0
    for name, data, method, crc, size in members:
        raw = name.encode()
        local += [struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, 0, method, 0, 0, crc, len(data), size, len(raw), 0),
                  raw, data]
        central += [struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 20, 20, 0, method, 0, 0, crc, len(data), size,
                                len(raw), 0, 0, 0, 0, 0, offset), raw]
        offset += 30 + len(raw) + len(data)
    central_bytes = b"".join(central)
    count = min(len(members), 0xFFFF)
    end = struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, count, count, len(central_bytes), offset, 0)
    return b"".join(local) + central_bytes + end


def npy_header(shape: tuple[int, ...], descr: str = "<f4") -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": descr, "fortran_order": False, "shape": shape})
    return buf.getvalue()


def zip_bomb(member: str, shape: tuple[int, ...], *, lie: bool = False, chunk: int = 1 << 20) -> bytes:
    """An .npz whose f32 zeros ``member`` of ``shape`` is deflated as identical full-flush
    blocks: MBs on disk, GBs unpacked. Honest sizes and CRC, or (``lie``) a directory that
    declares the member to be 64 bytes."""
    header = npy_header(shape)
    n = max(1, math.prod(shape) * 4 // chunk)
    co = zlib.compressobj(9, zlib.DEFLATED, -15)
    data = co.compress(header) + co.flush(zlib.Z_FULL_FLUSH)
    block = co.compress(bytes(chunk)) + co.flush(zlib.Z_FULL_FLUSH)
    data += block * n + co.flush()
    size = len(header) + n * chunk
    crc = _crc_of_zeros(zlib.crc32(header), chunk, n) if not lie else 0
    return _zip([(member + ".npy", data, 8, crc, 64 if lie else size & 0xFFFFFFFF)])


def many_members(count: int) -> bytes:
    """An .npz of ``count`` tiny stored arrays (a directory, not a payload, that is large)."""
    one = npy_header((1,)) + b"\x00" * 4
    crc = zlib.crc32(one)
    return _zip([(f"a{i}.npy", one, 0, crc, len(one)) for i in range(count)])


def huge_header_npz(member: str, shape: tuple[int, ...]) -> bytes:
    """A stored member whose .npy header declares ``shape`` but which holds 16 bytes."""
    data = npy_header(shape) + b"\x00" * 16
    return _zip([(member + ".npy", data, 0, zlib.crc32(data), len(data))])


def bomb_npz(rnd: random.Random, member: str) -> tuple[str, bytes]:
    kind = rnd.choice(["honest", "wrapped", "lying", "many", "header"])
    if kind == "honest":
        return kind, zip_bomb(member, rnd.choice([(24576, 24576), (2, 3, 32, 32 << 14)]))
    if kind == "wrapped":  # 4 GiB + the header: the 32-bit size field wraps to the header's size
        return kind, zip_bomb(member, (1 << 30,))
    if kind == "lying":
        return kind, zip_bomb(member, rnd.choice([(24576, 24576), (16384, 16384)]), lie=True)
    if kind == "many":
        return kind, many_members(rnd.choice([1000, 20_000]))
    return kind, huge_header_npz(member, rnd.choice([(1 << 40,), (2, 3, 1 << 30, 1 << 10), (1 << 62, 2)]))


# ------------------------------------------------------------------ huge tensors
def _model(nodes, inputs, outputs, inits=(), opset: int = 17) -> bytes:
    graph = helper.make_graph(nodes, "bomb", inputs, outputs, list(inits))
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    return model.SerializeToString()


def vi(name, shape, dtype=TensorProto.FLOAT):
    return helper.make_tensor_value_info(name, dtype, shape)


def huge_fill_model(rnd: random.Random) -> tuple[str, bytes]:
    """A few hundred bytes whose weights or activations, computed, would take GiBs to TiBs."""
    kind = rnd.choice(["cos-matmul", "cos-conv", "cos-gemm", "expand", "tile", "range", "cos-add"])
    n = rnd.choice([1 << 14, 1 << 16, 1 << 18, 1 << 20])
    fill = helper.make_tensor("v", TensorProto.FLOAT, [1], [0.5])
    i64 = lambda name, vals: numpy_helper.from_array(np.array(vals, np.int64), name)  # noqa: E731
    if kind == "cos-matmul":
        return kind, _model([helper.make_node("ConstantOfShape", ["s"], ["w"], value=fill, name="cos"),
                             helper.make_node("MatMul", ["x", "w"], ["y"], name="mm")],
                            [vi("x", [1, n])], [vi("y", [1, n])], [i64("s", [n, n])])
    if kind == "cos-gemm":
        return kind, _model([helper.make_node("ConstantOfShape", ["s"], ["w"], value=fill, name="cos"),
                             helper.make_node("Gemm", ["x", "w"], ["y"], name="gemm", transB=1)],
                            [vi("x", [1, n])], [vi("y", [1, n])], [i64("s", [n, n])])
    if kind == "cos-conv":
        c = rnd.choice([64, 1024, 8192])
        k = max(1, (n * n) // (c * 9) // 64)
        return kind, _model([helper.make_node("ConstantOfShape", ["s"], ["w"], value=fill, name="cos"),
                             helper.make_node("Conv", ["x", "w"], ["y"], name="conv", pads=[1, 1, 1, 1])],
                            [vi("x", [1, c, 8, 8])], [vi("y", [1, k, 8, 8])], [i64("s", [k, c, 3, 3])])
    if kind == "cos-add":
        return kind, _model([helper.make_node("ConstantOfShape", ["s"], ["w"], value=fill, name="cos"),
                             helper.make_node("Add", ["w", "w"], ["a"], name="add"),
                             helper.make_node("ReduceSum", ["a"], ["y"], name="sum", keepdims=0)],
                            [], [vi("y", [])], [i64("s", [n, n])])
    if kind == "expand":
        return kind, _model([helper.make_node("Expand", ["one", "s"], ["e"], name="expand"),
                             helper.make_node("MatMul", ["x", "e"], ["y"], name="mm")],
                            [vi("x", [1, n])], [vi("y", [1, n])],
                            [numpy_helper.from_array(np.ones((1, 1), np.float32), "one"), i64("s", [n, n])])
    if kind == "tile":
        return kind, _model([helper.make_node("Tile", ["one", "r"], ["t"], name="tile"),
                             helper.make_node("MatMul", ["x", "t"], ["y"], name="mm")],
                            [vi("x", [1, n])], [vi("y", [1, n])],
                            [numpy_helper.from_array(np.ones((1, 1), np.float32), "one"), i64("r", [n, n])])
    total = n * n
    return kind, _model([helper.make_node("Range", ["a", "b", "d"], ["r"], name="range"),
                         helper.make_node("Cast", ["r"], ["rf"], name="cast", to=TensorProto.FLOAT),
                         helper.make_node("ReduceSum", ["rf"], ["y"], name="sum", keepdims=0)],
                        [], [vi("y", [])], [numpy_helper.from_array(np.array(0, np.int64), "a"),
                                             numpy_helper.from_array(np.array(total, np.int64), "b"),
                                             numpy_helper.from_array(np.array(1, np.int64), "d")])


def huge_repeated_model(rnd: random.Random) -> tuple[str, bytes]:
    """A protobuf with one repeated field of 10^5 to 10^6 entries."""
    kind = rnd.choice(["rank", "ints-attr", "inputs", "nodes", "opsets", "dims-huge", "value-info"])
    n = rnd.choice([10_000, 50_000, 1_000_000 if kind in ("ints-attr", "dims-huge", "rank") else 100_000])
    if kind == "nodes":  # costed at about 50 us a node: 10**5 is 5 s of honest work, not a bomb
        n = min(n, 20_000)
    if kind == "rank":
        shape = [1] * n
        return kind, _model([helper.make_node("Relu", ["x"], ["y"])], [vi("x", shape)], [vi("y", shape)])
    if kind == "dims-huge":  # float_data that does not match dims of 2**20 x 2**20
        t = TensorProto(name="w", data_type=TensorProto.FLOAT, dims=[1 << 20, 1 << 20])
        t.float_data.extend([0.5] * n)
        return kind, _model([helper.make_node("MatMul", ["x", "w"], ["y"])], [vi("x", [1, 1 << 20])],
                            [vi("y", [1, 1 << 20])], [t])
    if kind == "ints-attr":
        return kind, _model([helper.make_node("Transpose", ["x"], ["y"], perm=list(range(n)))], [vi("x", [2, 3])],
                            [vi("y", [3, 2])])
    if kind == "inputs":
        names = [f"x{i}" for i in range(n)]
        return kind, _model([helper.make_node("Sum", names, ["y"])], [vi(v, [1]) for v in names], [vi("y", [1])])
    if kind == "nodes":
        nodes = [helper.make_node("Relu", [f"v{i}"], [f"v{i + 1}"]) for i in range(n)]
        nodes[-1].output[0] = "y"
        nodes[0].input[0] = "x"
        return kind, _model(nodes, [vi("x", [1])], [vi("y", [1])])
    if kind == "opsets":
        data = _model([helper.make_node("Relu", ["x"], ["y"])], [vi("x", [1])], [vi("y", [1])])
        m = onnx.load_from_string(data)
        m.opset_import.extend(helper.make_opsetid(f"d{i}", 1) for i in range(n))
        return kind, m.SerializeToString()
    m = onnx.load_from_string(_model([helper.make_node("Relu", ["x"], ["y"])], [vi("x", [1])], [vi("y", [1])]))
    m.graph.value_info.extend(vi(f"u{i}", [1]) for i in range(n))
    return kind, m.SerializeToString()


# ------------------------------------------------------------------ sweep specs
def exploding_spec(rnd: random.Random, model: str = "m.onnx") -> tuple[str, str]:
    """A sweep spec whose grid or points expand past nvmc's limits (100,000 points, 10,000
    values a range) by multiplication."""
    kind = rnd.choice(["grid-product", "ranges", "points-star", "batch-list", "pipelines", "points-many"])
    head = 'schema = "nvmc.sweep/1"\nname = "boom"\n'
    if kind == "grid-product":
        keys = ['"llc.capacity"', '"llc.iso"', '"gpu.utilization"']
        lines = [f'{k} = [{", ".join(v)}]' for k, v in zip(keys, (
            [f'"{i + 1}MiB"' for i in range(rnd.choice([500, 1000]))], ['"capacity"', '"area"'],
            [str(round(0.01 * (i + 1), 2)) for i in range(99)]))]
        return kind, head + f'models = ["{model}"]\ntargets = ["sram", "sot-mram"]\n[grid]\n' + "\n".join(lines) + "\n"
    if kind == "ranges":
        return kind, head + f'models = ["{model}"]\ntargets = ["sram"]\n[grid]\n' + \
            rnd.choice(['"llc.capacity" = {from=1048576, to=1e12, step=1048576}\n',
                        '"llc.capacity" = {from=1048576, to=1e15, factor=1.0001}\n',
                        '"llc.capacity" = {from=1048576, to=1e9, num=10000}\n'
                        '"gpu.utilization" = {from=0.0001, to=1, num=10000}\n'])
    if kind == "points-star":
        return kind, head + "".join(f'[[points]]\nmodel = "{model}"\ntarget = "*"\nbatch = {b}\n'
                                    for b in range(1, rnd.choice([4100, 8000])))
    if kind == "batch-list":
        return kind, head + f'models = ["{model}"]\ntargets = "*"\nbatch = [{", ".join(map(str, range(1, 5000)))}]\n'
    if kind == "pipelines":
        return kind, head + f'models = ["{model}"]\ntargets = "*"\n' + \
            "pipelines = [" + ", ".join(f'"{"dce," * (i % 50)}{"canonicalize," * (i // 50)}fold-constants"'
                                        for i in range(5000)) + "]\n"
    return kind, head + "".join(f'[[points]]\nmodel = "{model}"\ntarget = "sram"\nset = ["llc.capacity={i + 1}KiB"]\n'
                                for i in range(rnd.choice([100_001, 150_000])))
