"""Seeded mutations of .nvir text and of its .npz sidecar, and a hypothesis strategy that
writes .nvir text from the grammar's pieces (ir/nvir.lark).

Text mutators take (text, rng) and return text; sidecar mutators take (dict of arrays,
rng) and return what to write into the .npz (a dict, or raw bytes for a corrupt file).
"""

from __future__ import annotations

import io
import re

import numpy as np

TOKEN = re.compile(r"%[\w.$/\-]+|@[^\s(),<>]+|[A-Za-z_][\w.]*|-?\d+(?:\.\d*)?(?:[eE][+-]?\d+)?|\S")
DTYPES = ["f32", "f16", "f64", "bf16", "i8", "i32", "i64", "u8", "bool", "str", "c64", "i4", "f8e4m3fn", "q7", "F32"]
ODD_NUMBERS = ["99999999999999999999999999", "-1", "0", "1e309", "-0", "nan", "inf", "-inf", str(2**63), str(2**40),
               "1.5", "0x10", "1_000", "٣"]
UNICODE = ["\u00e9", "\u2603", "\u202e", "\ufeff", "\u0000", "\U0001f600", "\u3000", "\r", "\t", "\\", '"', "'",
           "\u00a0", "\x0b", "\x85", "\u2028"]
BRACKETS = "()[]{}<>"


def _tokens(text: str) -> list[re.Match]:
    return list(TOKEN.finditer(text))


def _replace_span(text: str, m: re.Match, new: str) -> str:
    return text[:m.start()] + new + text[m.end():]


def _pick(rng, seq):
    return seq[int(rng.integers(len(seq)))]


def delete_token(text, rng):
    return _replace_span(text, _pick(rng, _tokens(text)), "")


def duplicate_token(text, rng):
    m = _pick(rng, _tokens(text))
    return _replace_span(text, m, m.group() + " " + m.group())


def swap_tokens(text, rng):
    toks = _tokens(text)
    a, b = sorted(rng.choice(len(toks), 2, replace=False))
    ta, tb = toks[int(a)], toks[int(b)]
    return text[:ta.start()] + tb.group() + text[ta.end():tb.start()] + ta.group() + text[tb.end():]


def insert_unicode(text, rng):
    i = int(rng.integers(len(text) + 1))
    return text[:i] + _pick(rng, UNICODE) * int(rng.integers(1, 4)) + text[i:]


def huge_number(text, rng):
    numbers = [m for m in _tokens(text) if re.fullmatch(r"-?\d+(\.\d*)?", m.group())]
    if not numbers:
        return insert_unicode(text, rng)
    return _replace_span(text, _pick(rng, numbers), _pick(rng, ODD_NUMBERS))


def unbalance(text, rng):
    spots = [i for i, c in enumerate(text) if c in BRACKETS]
    i = _pick(rng, spots)
    if rng.integers(2):
        return text[:i] + text[i + 1:]
    return text[:i] + _pick(rng, BRACKETS) + text[i:]


def wrong_dtype(text, rng):
    spots = [m for m in _tokens(text) if m.group() in DTYPES]
    return _replace_span(text, _pick(rng, spots), _pick(rng, DTYPES)) if spots else text


def wrong_shape(text, rng):
    shapes = list(re.finditer(r"\[[0-9?,a-z_ ]*\]", text))
    if not shapes:
        return text
    m = _pick(rng, shapes)
    new = _pick(rng, ["[]", "[1]", "[*]", "[?]", "[0]", "[-3]", f"[{2**40},{2**40}]", "[1,1,1,1,1,1,1,1,1]",
                      "[batch]", "[1,2]"])
    return _replace_span(text, m, new)


def undefined_value(text, rng):
    uses = [m for m in _tokens(text) if m.group().startswith("%")]
    return _replace_span(text, _pick(rng, uses), _pick(rng, ["%undefined", "%", "%x" * 200, '%"a b"', "%é"]))


def sidecar_ref(text, rng):
    refs = [m for m in _tokens(text) if m.group().startswith("@") and ":" in m.group()]
    if not refs:
        return wrong_shape(text, rng)
    m = _pick(rng, refs)
    file, _, key = m.group()[1:].partition(":")
    new = _pick(rng, [f"@{file}:missing_key", f"@../{file}:{key}", f"@/etc/passwd:{key}", f"@{file}:",
                      f"@nope.npz:{key}", f"@{file}:{key}{key}", f"@{file}/x:{key}", f"@.:{key}",
                      f"@/proc/self/environ:{key}", f'@{file}:"{key}"', "@/dev/zero:x"])
    return _replace_span(text, m, new)


def delete_line(text, rng):
    lines = text.split("\n")
    del lines[int(rng.integers(len(lines)))]
    return "\n".join(lines)


def duplicate_line(text, rng):
    lines = text.split("\n")
    i = int(rng.integers(len(lines)))
    lines.insert(i, lines[i])
    return "\n".join(lines)


def swap_lines(text, rng):
    lines = text.split("\n")
    a, b = rng.choice(len(lines), 2, replace=False)
    lines[int(a)], lines[int(b)] = lines[int(b)], lines[int(a)]
    return "\n".join(lines)


def odd_op(text, rng):
    ops = [m for m in re.finditer(r"= ([A-Za-z_][\w.]*)\(", text)]
    if not ops:
        return text
    m = _pick(rng, ops)
    new = _pick(rng, ["Conv2", "nvmc.Nope", "com.evil.Op", "If", "Loop", "Relu", "MatMul", "Softmax",
                      "nvmc.WinogradConv", "nvmc.Quantize", "Identity", "Reshape", "ConstantOfShape", "a.b.c.d"])
    return text[:m.start(1)] + new + text[m.end(1):]


def odd_attribute(text, rng):
    attrs = list(re.finditer(r"\{([^}]*)\}", text))
    if not attrs:
        return text
    m = _pick(rng, attrs)
    new = _pick(rng, ["strides=[0, 0]", "group=0", "axis=99", "perm=[9, 9]", "kernel_shape=[]", "pads=[-5]",
                      "x=dense<f32[2] [1.0]>", 'alpha="s"', "axis=1.5", "group=-1", "transB=7", "",
                      "perm=[0, 0, 0, 0]", f"axis={2**70}", "epsilon=nan", "k=graph<@a.npz:g>"])
    return text[:m.start(1)] + new + text[m.end(1):]


def odd_header(text, rng):
    first, _, rest = text.partition("\n")
    new = _pick(rng, ["// nvmc.ir 1  opset=0", "// nvmc.ir 1  opset=999", "// nvmc.ir 1  opset=x",
                      "// nvmc.ir 1  opset=17,nvmc:abc", "// nvmc.ir 99", "// nvmc.ir 1  opset=,", "",
                      "// nvmc.ir 1  opset=17,com.evil:1", "// nvmc.ir 1  opset=-1"])
    return new + "\n" + rest


TEXT_MUTATORS = {f.__name__: f for f in [
    delete_token, duplicate_token, swap_tokens, insert_unicode, huge_number, unbalance, wrong_dtype, wrong_shape,
    undefined_value, sidecar_ref, delete_line, duplicate_line, swap_lines, odd_op, odd_attribute, odd_header,
]}


def mutate_text(text: str, name: str, seed: int) -> str:
    rng = np.random.default_rng(seed)
    return TEXT_MUTATORS[name](text, rng)


# --------------------------------------------------------------------------- sidecar


def _drop_key(arrays, rng):
    keys = sorted(arrays)
    return {k: v for k, v in arrays.items() if k != _pick(rng, keys)}


def _reshape_one(arrays, rng):
    out = dict(arrays)
    k = _pick(rng, sorted(arrays))
    out[k] = _pick(rng, [np.zeros(3, np.float32), np.zeros((), np.float32), np.zeros((0,), np.float32),
                         arrays[k].reshape(-1), arrays[k].T.copy()])
    return out


def _retype_one(arrays, rng):
    out = dict(arrays)
    k = _pick(rng, sorted(arrays))
    out[k] = arrays[k].astype(_pick(rng, [np.int8, np.float64, np.bool_, np.complex64, "U3", np.uint64]))
    return out


def _garbage(arrays, rng):
    return bytes(rng.bytes(int(rng.integers(0, 200))))


def _truncated(arrays, rng):
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    data = buf.getvalue()
    return data[: int(rng.integers(0, len(data)))]


def _pickled(arrays, rng):
    buf = io.BytesIO()
    np.savez(buf, **{k: np.array([{"a": 1}], dtype=object) for k in arrays})
    return buf.getvalue()


def _empty(arrays, rng):
    return {}


SIDECAR_MUTATORS = {f.__name__.lstrip("_"): f for f in [_drop_key, _reshape_one, _retype_one, _garbage, _truncated,
                                                         _pickled, _empty]}


def mutate_sidecar(arrays: dict[str, np.ndarray], name: str, seed: int) -> bytes:
    """The bytes of a mutated .npz file."""
    out = SIDECAR_MUTATORS[name](arrays, np.random.default_rng(seed))
    if isinstance(out, bytes):
        return out
    buf = io.BytesIO()
    np.savez(buf, **out)
    return buf.getvalue()


# ------------------------------------------------------------------ hypothesis text


def nvir_programs():
    """A hypothesis strategy for .nvir text assembled from the grammar's pieces.

    Mostly well-formed (so the builder, verifier and passes see it), with odd values:
    undefined operands, any op name, random types, shapes, attributes and payloads.
    """
    from hypothesis import strategies as st

    dims = st.one_of(st.integers(-3, 8), st.sampled_from(["?", "n", "batch", str(2**40), "0"]))
    dtype = st.sampled_from(["f32", "f16", "i64", "i8", "bool", "f64", "i32", "u8"])
    shape = st.one_of(st.just("*"), st.lists(dims, max_size=4).map(lambda d: ",".join(map(str, d))))
    ttype = st.builds(lambda d, s: f"{d}[{s}]", dtype, shape)
    scalar = st.one_of(st.integers(-2**65, 2**65), st.floats(allow_nan=True, allow_infinity=True).map(repr),
                       st.sampled_from(['"s"', "true", "false", "nan", "inf", "-inf"]))
    value = st.one_of(scalar.map(str), st.lists(scalar.map(str), max_size=4).map(lambda v: f"[{', '.join(v)}]"))
    attr_key = st.sampled_from(["axis", "perm", "strides", "group", "kernel_shape", "pads", "alpha", "transB",
                                "keepdims", "to", "epsilon", "dilations", "value"])
    attrs = st.dictionaries(attr_key, value, max_size=3).map(
        lambda d: (" {" + ", ".join(f"{k}={v}" for k, v in d.items()) + "}") if d else "")
    ops = st.sampled_from(["Relu", "Relu", "Add", "Add", "Neg", "Sigmoid", "MatMul", "Conv", "Gemm", "Softmax", "Reshape", "Transpose", "Concat",
                           "Identity", "Cast", "ReduceSum", "Split", "Gather", "Flatten", "MaxPool",
                           "GlobalAveragePool", "LayerNormalization", "ConstantOfShape", "Expand", "Where",
                           "nvmc.WinogradConv", "nvmc.Nope", "Nope", "If", "BatchNormalization"])

    @st.composite
    def program(draw):
        n_in = draw(st.integers(0, 2))
        types = {f"in{i}": draw(ttype) for i in range(n_in)}  # name -> its type, as written
        params = ", ".join(f"%{n}: {t}" for n, t in types.items())
        lines = []
        for c in range(draw(st.integers(0, 2))):
            t_dtype = draw(dtype)
            count = draw(st.integers(0, 4))
            items = ", ".join(draw(st.lists(scalar.map(str), min_size=count, max_size=count)))
            shape = draw(st.sampled_from([str(count), "", "1", "2,2"]))
            lines.append(f"  %c{c} = const {t_dtype}[{shape}] [{items}]")
            types[f"c{c}"] = f"{t_dtype}[{shape}]"
        for k in range(draw(st.integers(0, 5))):
            operands = draw(st.lists(st.sampled_from([*types, "ghost"]), max_size=3))
            holes = ", ".join("_" if draw(st.integers(0, 9)) == 0 else f"%{o}" for o in operands)
            # often the first operand's type (elementwise ops then check out), else any
            t = types.get(operands[0]) if operands and draw(st.booleans()) else draw(ttype)
            suffix = f" : {t}" if t and draw(st.integers(0, 5)) else ""
            comment = draw(st.sampled_from(["", "  // n", f"  // node{k}", '  // "q"']))
            lines.append(f"  %v{k} = {draw(ops)}({holes}){draw(attrs)}{suffix}{comment}")
            types[f"v{k}"] = t if suffix else "f32[*]"
        out = draw(st.sampled_from(list(types))) if types else "nothing"
        out_type = types[out] if out in types and draw(st.integers(0, 4)) else draw(ttype)
        header = draw(st.sampled_from(["// nvmc.ir 1  opset=17\n", "// nvmc.ir 1  opset=13\n", "",
                                       "// nvmc.ir 1  opset=0\n"]))
        body = "\n".join(lines)
        return (f"{header}graph @g({params}) -> (%{out}: {out_type}) {{\n"
                f"{body}{chr(10) if body else ''}  return %{out}\n}}\n")

    return program()
