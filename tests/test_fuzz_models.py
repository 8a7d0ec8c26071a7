"""Fuzzing the model surfaces: ONNX files and .nvir text (+ .npz sidecar), through the CLI
(in-process, tests/fuzz/harness.py) and the Python API (issue 15).

Every case must end in exit 0 (a valid result; `compile` also 1: does not fit) or exit 2
with one clean ``error:`` line, within the per-case timeout, under an address-space cap
(a 2**40-element tensor must never be allocated), and leave every input byte-identical.

Cases are seeded: a failure names (base model, mutator, seed), and the same case comes
back on every run. Crashers found here are kept in tests/data/fuzz_crashers/ and run by
``test_crasher_regressions``.
"""

from __future__ import annotations

import os
import time
from collections import Counter
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, numpy_helper

import nvmc
from nvmc.ir.errors import NvmcError
from conftest import REPO, run_nvmc, zoo_path
from fuzz import crashers
from fuzz.harness import Checksums, classify, memory_limit, reproducible_hypothesis, run_cli, time_limit
from fuzz import nvir_mutators as nvirm
from fuzz import onnx_mutators as onnxm

CRASHERS = REPO / "tests" / "data" / "fuzz_crashers"
TIMEOUT_S = 10.0
COMPILE_OK = (0, 1)  # 1: the model does not fit the target (a result, not an error)
BASES = {
    "tiny_cnn": REPO / "examples" / "models" / "tiny_cnn.onnx",
    "tiny_transformer": REPO / "examples" / "models" / "tiny_transformer.onnx",
    "squeezenet": zoo_path("light_squeezenet"),
    "shufflenet": zoo_path("light_shufflenet"),
}


def calibration_safe(model: Path) -> bool:
    """Whether `compile -t eie` may run the model in onnxruntime here (nvmc/calibrate.py
    materialises every tensor: see test_calibration_of_a_huge_input / _of_an_empty_weight)."""
    try:
        sizes = [v.type.numel() or 0 for v in nvmc.load(model).values.values()]
    except NvmcError:
        return False
    return max(sizes, default=0) <= 2**20 and min(sizes, default=1) > 0


class Fuzzer:
    """Runs cases, tallies outcomes per section, and collects failures (all, not the first)."""

    def __init__(self, work: Path):
        self.work = work
        self.out = work / "out"
        self.out.mkdir(parents=True, exist_ok=True)
        self.tally: dict[str, Counter] = {}
        self.failures: list[str] = []
        self.messages: list[str] = []  # the clean errors' text, for review (NVMC_FUZZ_DUMP)
        self.slowest: tuple[float, str] = (0.0, "")

    def count(self, section: str, outcome: str) -> None:
        self.tally.setdefault(section, Counter())[outcome] += 1

    def cli(self, section: str, what: str, argv: list[str], ok_codes=(0,)) -> str | None:
        try:
            t0 = time.perf_counter()
            code, stderr = run_cli(argv, timeout=TIMEOUT_S)
            self.slowest = max(self.slowest, (time.perf_counter() - t0, f"{what}: nvmc {' '.join(argv)}"))
            outcome = classify(code, stderr, what=f"{what}: nvmc {' '.join(argv)}", ok_codes=ok_codes)
            if outcome == "error":
                self.messages.append(stderr)
        except AssertionError as e:
            self.failures.append(str(e))
            self.count(section, "FAIL")
            return None
        self.count(section, outcome)
        return outcome

    def commands(self, model: Path) -> list[tuple[list[str], tuple[int, ...]]]:
        o = self.out
        m = str(model)
        return [
            (["ir", m], (0,)),
            (["ir", m, "-o", str(o / "x.nvir")], (0,)),
            (["analyze", m, "--json", str(o / "a.json")], (0,)),
            (["export", m, "-o", str(o / "x.onnx")], (0,)),
            (["compile", m, "-t", "sot-mram", "-q"], COMPILE_OK),
            (["compile", m, "-t", "systolic-sot-7nm", "-q"], COMPILE_OK),
            (["compile", m, "-t", "rram-pim", "-q", "--json", str(o / "c.json")], COMPILE_OK),
            (["compile", m, "-t", "sot-mram", "-q", "--passes", "canonicalize"], COMPILE_OK),
            # outputs onto the input: refused (the checksums would catch an overwrite)
            (["ir" if model.suffix == ".nvir" else "export", m, "-o", m], ()),
            (["analyze", m, "--json", m], ()),
        ]

    def model_case(self, section: str, what: str, model: Path, rng: np.random.Generator, inputs=(),
                   per_model: int = 4) -> None:
        """verify first; a model that loads then goes through `ir -o` (whose .nvir must read
        back) and ``per_model`` other commands drawn by the seed, one that does not through
        one other command, which must fail alike."""
        sums = Checksums(model, *inputs)
        verdict = self.cli(section, what, ["verify", str(model)])
        commands = self.commands(model)
        if verdict == "ok":
            if self.cli(section, what, *commands[1]) == "ok":
                self.roundtrip(section, what)
            others = [commands[i] for i in range(len(commands)) if i != 1]
            for i in sorted(rng.choice(len(others), min(per_model, len(others)), replace=False)):
                self.cli(section, what, *others[int(i)])
            if rng.integers(3) == 0 and calibration_safe(model):
                self.cli(section, what, ["compile", str(model), "-t", "eie", "-q"], COMPILE_OK)
        elif verdict == "error":
            argv, ok = commands[int(rng.integers(len(commands)))]
            self.cli(section, what, argv, ok)
        try:
            sums.assert_unchanged(what)
        except AssertionError as e:
            self.failures.append(str(e))

    def roundtrip(self, section: str, what: str) -> None:
        """What `nvmc ir -o` wrote must load again: the printer and parser agree."""
        try:
            code, stderr = run_cli(["verify", str(self.out / "x.nvir")], timeout=TIMEOUT_S)
        except AssertionError as e:  # a timeout, an exception escaping main()
            code, stderr = -1, str(e)
        if code != 0:
            self.failures.append(f"{what}: `nvmc ir -o` output does not read back (exit {code}):\n{stderr}")
            self.count(section, "FAIL")
        else:
            self.count(section, "ok")

    def api(self, section: str, what: str, source) -> None:
        """The Python API raises NvmcError or returns; nothing else escapes."""
        try:
            with time_limit(TIMEOUT_S):
                try:
                    g = nvmc.load(source)
                    nvmc.verify(g)
                    nvmc.analyze(g)
                    nvmc.compile(g, "sot-mram")
                    nvmc.save(g, self.out / "api.nvir")
                    nvmc.load(self.out / "api.nvir")
                    outcome = "ok"
                except NvmcError as e:
                    outcome = "error"
                    if "\n" in e.message:
                        raise AssertionError(f"message spans lines: {e.message!r}")
        except BaseException as e:  # noqa: BLE001 - a crasher, whatever it is
            if isinstance(e, KeyboardInterrupt):
                raise
            self.failures.append(f"{what}: nvmc API raised {type(e).__name__}: {e}")
            outcome = "FAIL"
        self.count(section, outcome)


# ------------------------------------------------------------------------ sections


def onnx_bytes_cases(f: Fuzzer, seeds: int = 10) -> None:
    folder = f.work / "bytes"
    folder.mkdir()
    for base, path in BASES.items():
        data = path.read_bytes()
        for name, mutator in onnxm.BYTE_MUTATORS.items():
            for seed in range(seeds):
                rng = np.random.default_rng([seed, len(base), len(name)])
                model = folder / f"{base}.{name}.{seed}.onnx"
                model.write_bytes(mutator(data, rng))
                f.model_case("onnx-bytes", f"{base} {name} seed={seed}", model, rng)


def onnx_structured_cases(f: Fuzzer, seeds: dict[str, int] | None = None) -> None:
    folder = f.work / "structured"
    folder.mkdir()
    seeds = seeds or {"tiny_cnn": 2, "tiny_transformer": 2, "squeezenet": 1}  # squeezenet: 5x the time
    bases = {b: onnx.load(BASES[b]) for b in seeds}
    for name in onnxm.STRUCTURED:
        for base, proto in bases.items():
            for seed in range(seeds[base]):
                model = folder / f"{base}.{name}.{seed}.onnx"
                data = onnxm.mutate(proto, name, seed)
                model.write_bytes(data)
                f.model_case("onnx-structured", f"{base} {name} seed={seed}", model, np.random.default_rng(seed))
                if seed == 0:  # the API, from the path and from the ModelProto
                    f.api("api", f"{base} {name} seed={seed}", model)
                    f.api("api", f"{base} {name} seed={seed} (ModelProto)", onnx.load_from_string(data))


def external_data_models(folder: Path) -> dict[str, tuple[Path, list[Path]]]:
    """Models whose weights live in external data, pointing at good and bad places."""
    proto = onnx.load(BASES["tiny_cnn"])
    secret = folder / "secret.bin"
    secret.write_bytes(np.arange(1000, dtype=np.float32).tobytes())
    cases = {}

    def make(label: str, location: str, length: int | None = None, offset: int | None = None,
             data: bytes | None = None, data_name: str | None = "w.bin"):
        d = folder / label
        d.mkdir()
        m = onnx.ModelProto()
        m.CopyFrom(proto)
        t = next(t for t in m.graph.initializer if t.name == "conv2.w")
        raw = numpy_helper.to_array(t).tobytes()
        t.ClearField("raw_data")
        t.ClearField("float_data")
        t.data_location = TensorProto.EXTERNAL
        entries = {"location": location}
        if offset is not None:
            entries["offset"] = str(offset)
        if length is not None:
            entries["length"] = str(length)
        for k, v in entries.items():
            t.external_data.add(key=k, value=v)
        inputs = []
        if data_name is not None:
            (d / data_name).write_bytes(raw if data is None else data)
            inputs.append(d / data_name)
        path = d / "model.onnx"
        path.write_bytes(m.SerializeToString())
        cases[label] = (path, inputs)
        return d

    make("ok", "w.bin")
    make("parent_escape", "../secret.bin", data_name=None)
    make("absolute", str(secret), data_name=None)
    make("missing", "nothere.bin", data_name=None)
    make("short", "w.bin", data=b"\x00" * 17)
    make("offset_past_end", "w.bin", offset=10**9)
    make("length_huge", "w.bin", length=2**40)
    make("negative_offset", "w.bin", offset=-4)
    make("directory", "sub", data_name=None)
    (folder / "directory" / "sub").mkdir()
    make("empty_location", "", data_name=None)
    make("dev_zero", "/dev/zero", data_name=None)
    d = make("symlink_out", "link.bin", data_name=None)
    (d / "link.bin").symlink_to(secret)
    d = make("symlink_in", "link.bin")
    (d / "link.bin").symlink_to(d / "w.bin")
    make("dot_dot_inside", "sub/../w.bin")
    make("nul_in_name", "w.bin\x00../../secret.bin")
    return cases


def external_data_cases(f: Fuzzer) -> None:
    folder = f.work / "external"
    folder.mkdir()
    for label, (model, inputs) in external_data_models(folder).items():
        f.model_case("onnx-external", f"external {label}", model, np.random.default_rng(0),
                     inputs=[*inputs, folder / "secret.bin"])
        f.api("api", f"external {label}", model)


# .nvir bases: the examples as imported, and after passes that write nvmc ops and annotations
PRINTED = {"tiny_cnn": ("tiny_cnn", ""), "tiny_transformer": ("tiny_transformer", ""),
           "cnn_winograd": ("tiny_cnn", "winograd"), "cnn_compressed": ("tiny_cnn", "prune,share-weights,quantize"),
           "tf_codebook": ("tiny_transformer", "share-weights")}


def printed_bases(folder: Path, names=PRINTED) -> dict[str, tuple[str, dict[str, np.ndarray]]]:
    out = {}
    for base in names:
        model, passes = PRINTED[base]
        g = nvmc.load(BASES[model])
        if passes:
            nvmc.run_passes(g, passes)
        out[base] = nvmc.ir.print_graph(g, sidecar=f"{base}.npz")
    return out


def nvir_text_cases(f: Fuzzer, seeds: dict[str, int] | None = None) -> None:
    folder = f.work / "nvir"
    folder.mkdir()
    seeds = seeds or {"tiny_cnn": 4, "tiny_transformer": 4, "cnn_winograd": 2, "cnn_compressed": 2, "tf_codebook": 2}
    for base, (text, arrays) in printed_bases(folder).items():
        np.savez(folder / f"{base}.npz", **arrays)
        for name in nvirm.TEXT_MUTATORS:
            for seed in range(seeds[base]):
                model = folder / f"{base}.{name}.{seed}.nvir"
                mutated = nvirm.mutate_text(text, name, seed)
                if seed == 3:  # and some invalid UTF-8 for good measure
                    model.write_bytes(mutated.encode("utf-8", "surrogatepass")[:-3] + b"\xff\xfe" + b"\n}\n")
                else:
                    model.write_text(mutated, encoding="utf-8", errors="surrogatepass")
                f.model_case("nvir-text", f"{base} {name} seed={seed}", model, np.random.default_rng(seed),
                             inputs=[folder / f"{base}.npz"])
                if seed == 0:
                    f.api("api", f"nvir {base} {name} seed={seed}", model)


def nvir_sidecar_cases(f: Fuzzer, seeds: int = 3) -> None:
    folder = f.work / "sidecar"
    folder.mkdir()
    for base, (text, arrays) in printed_bases(folder, ["tiny_cnn", "tf_codebook"]).items():
        for name in nvirm.SIDECAR_MUTATORS:
            for seed in range(seeds):
                d = folder / f"{base}.{name}.{seed}"
                d.mkdir()
                (d / f"{base}.nvir").write_text(text)
                (d / f"{base}.npz").write_bytes(nvirm.mutate_sidecar(arrays, name, seed))
                f.model_case("nvir-sidecar", f"{base} sidecar {name} seed={seed}", d / f"{base}.nvir",
                             np.random.default_rng(seed), inputs=[d / f"{base}.npz"])


def nvir_hypothesis_cases(f: Fuzzer, examples: int = 100) -> None:
    from hypothesis import HealthCheck, given, settings

    folder = f.work / "hyp"
    folder.mkdir()
    counter = iter(range(10**9))

    @settings(max_examples=examples, derandomize=True, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(nvirm.nvir_programs())
    def case(text):
        i = next(counter)
        model = folder / f"h{i}.nvir"
        model.write_text(text)
        f.model_case("nvir-hypothesis", f"hypothesis #{i}:\n{text}", model, np.random.default_rng(i))
        if i % 3 == 0:
            f.api("api", f"hypothesis #{i}:\n{text}", model)

    case()


ALL_FAMILIES = ["sot-mram", "systolic-sot-7nm", "rram-pim", "upmem", "simdram", "eie", "mensa", "cpu",
                "racetrack-hdc"]  # one target of each cost-model family


def onnx_generated_cases(f: Fuzzer, examples: int = 90) -> None:
    """Small generated models (tests/fuzz/onnx_gen.py): those that load are costed by every family."""
    from hypothesis import HealthCheck, given, settings

    from fuzz.onnx_gen import onnx_models

    folder = f.work / "gen"
    folder.mkdir()
    counter = iter(range(10**9))

    @settings(max_examples=examples, derandomize=True, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(onnx_models())
    def case(data):
        i = next(counter)
        model = folder / f"g{i}.onnx"
        model.write_bytes(data)
        what = f"generated #{i}:\n{onnx.printer.to_text(onnx.load_from_string(data).graph)}"
        sums = Checksums(model)
        if f.cli("onnx-generated", what, ["analyze", str(model), "--json", str(f.out / "a.json")]) == "ok":
            safe = calibration_safe(model)
            for target in [t for t in ALL_FAMILIES if safe or t != "eie"]:
                f.cli("onnx-generated", what, ["compile", str(model), "-t", target, "-q"], COMPILE_OK)
            f.cli("onnx-generated", what, ["compile", str(model), "-t", "systolic-sot-7nm", "-q", "--passes",
                                           "canonicalize"], COMPILE_OK)
            if f.cli("onnx-generated", what, ["ir", str(model), "-o", str(f.out / "x.nvir")]) == "ok":
                f.roundtrip("onnx-generated", what)
        sums.assert_unchanged(what)

    case()


def input_shape_cases(f: Fuzzer, seeds: int = 40) -> None:
    """--input-shape values, odd and huge, on a model with a dynamic batch and one without."""
    dims = ["1", "2", "0", "-1", "16", "17", "64", str(2**20), str(2**40), str(2**63), str(10**30), "x", "", "1.5"]
    for seed in range(seeds):
        rng = np.random.default_rng([seed, 7])
        base = "tiny_transformer" if seed % 2 else "tiny_cnn"
        name = ["tokens", "x", "nope", ""][int(rng.integers(4))] if seed % 5 == 0 else ("tokens" if seed % 2 else "x")
        good = ["1", "16", "64"] if seed % 2 else ["1", "3", "32", "32"]
        rank = len(good) if seed % 7 else int(rng.integers(1, 6))
        shape = "x".join(dims[int(rng.integers(len(dims)))] if rng.integers(3) == 0 or i >= len(good) else good[i]
                         for i in range(rank))
        argv_shape = ["--input-shape", f"{name}={shape}"]
        model = str(BASES[base])
        what = f"{base} --input-shape {name}={shape}"
        f.cli("input-shape", what, ["verify", model, *argv_shape])
        f.cli("input-shape", what, ["compile", model, "-t", "sot-mram", "-q", *argv_shape], COMPILE_OK)
        try:  # the Python API takes the same values unparsed
            values = tuple(int(d) for d in shape.split("x"))
        except ValueError:
            continue
        try:
            with time_limit(TIMEOUT_S):
                nvmc.analyze(nvmc.load(model, input_shapes={name: values}))
            f.count("input-shape", "ok")
        except NvmcError:
            f.count("input-shape", "error")
        except Exception as e:  # noqa: BLE001 - a crasher
            f.failures.append(f"{what}: nvmc.load(input_shapes=...) raised {type(e).__name__}: {e}")
            f.count("input-shape", "FAIL")


@pytest.mark.fuzz
def test_fuzz_models(tmp_path, capsys, record_property):
    originals = Checksums(*BASES.values())
    f = Fuzzer(tmp_path)
    start = time.perf_counter()
    seconds = {}
    with memory_limit(4 << 30), reproducible_hypothesis():
        for section in (onnx_bytes_cases, onnx_structured_cases, external_data_cases, nvir_text_cases,
                        nvir_sidecar_cases, nvir_hypothesis_cases, input_shape_cases, onnx_generated_cases):
            t0 = time.perf_counter()
            section(f)
            seconds[section.__name__] = time.perf_counter() - t0
    elapsed = time.perf_counter() - start
    originals.assert_unchanged("the base models")
    total = Counter()
    for c in f.tally.values():
        total.update(c)
    with capsys.disabled():
        print(f"\nfuzz (models): {sum(total.values())} cases in {elapsed:.1f} s: "
              f"{total['ok']} ok, {total['error']} clean errors, {total['FAIL']} failures")
        print(f"  slowest case {f.slowest[0] * 1000:.0f} ms ({f.slowest[1][:160]})")
        print("  seconds: " + ", ".join(f"{k.removesuffix('_cases')} {v:.1f}" for k, v in seconds.items()))
        for section, c in f.tally.items():
            print(f"  {section:16s} {sum(c.values()):5d} cases: {c['ok']} ok, {c['error']} clean errors"
                  + (f", {c['FAIL']} FAILURES" if c["FAIL"] else ""))
    record_property("fuzz_cases", sum(total.values()))
    record_property("fuzz_tally", dict(total))
    if os.environ.get("NVMC_FUZZ_DUMP"):  # every failure, for triage
        Path(os.environ["NVMC_FUZZ_DUMP"]).write_text("\n\n".join(f.failures))
        Path(os.environ["NVMC_FUZZ_DUMP"] + ".messages").write_text("\n".join(f.messages))
    assert not f.failures, f"{len(f.failures)} failing cases; first ones:\n\n" + "\n\n".join(f.failures[:15])
    assert sum(total.values()) >= 1200


# ------------------------------------------------------------- regressions, explicit


@pytest.mark.parametrize("case", crashers.CASES, ids=[f"{c[0]}-{c[1][0]}" for c in crashers.CASES])
def test_crasher_regressions(case, tmp_path):
    """Each crasher the fuzzer found (tests/data/fuzz_crashers/) now ends in one clean error."""
    name, args, want_code, fragment, _why = case
    model = CRASHERS / name
    assert model.exists(), f"{model} missing: run tests/fuzz/crashers.py"
    sums = Checksums(model.parent)
    argv = [a.format(str(model), out=tmp_path) for a in args]
    code, stderr = run_cli(argv, timeout=TIMEOUT_S)
    assert classify(code, stderr, what=name) == "error" and code == want_code, stderr
    assert fragment in stderr, stderr
    sums.assert_unchanged(name)


def test_crashers_in_a_real_process(tmp_path):
    """The real entry point prints the same single line (no traceback) for a few of them."""
    for name, args, code, fragment, _ in crashers.CASES[1:3] + crashers.CASES[5:6]:
        proc = run_nvmc(*[a.format(str(CRASHERS / name), out=tmp_path) for a in args])
        assert proc.returncode == code and fragment in proc.stderr, proc.stderr
        assert "Traceback" not in proc.stderr and "internal error" not in proc.stderr


@pytest.mark.parametrize("label", ["parent_escape", "absolute", "symlink_out", "dev_zero", "nul_in_name",
                                   "empty_location", "missing"])
def test_external_data_stays_in_the_model_folder(label, tmp_path):
    model, inputs = external_data_models(tmp_path)[label]
    sums = Checksums(tmp_path)
    code, stderr = run_cli(["verify", str(model)])
    assert classify(code, stderr) == "error", stderr
    assert "secret" not in stderr or "outside" in stderr or "not a file name" in stderr, stderr
    with pytest.raises(NvmcError):
        nvmc.load(model)
    sums.assert_unchanged(label)


@pytest.mark.parametrize("ref", ["@../outside.npz:w", "@/etc/passwd:w", "@sub:w", "@fifo.npz:w"])
def test_nvir_sidecar_stays_in_the_model_folder(ref, tmp_path):
    inner = tmp_path / "inner"
    inner.mkdir()
    (inner / "sub").mkdir()
    os.mkfifo(inner / "fifo.npz")  # opening it would block: it must be refused before
    np.savez(tmp_path / "outside.npz", w=np.ones(4, np.float32))
    model = inner / "m.nvir"
    model.write_text("// nvmc.ir 1  opset=17\ngraph @g(%x: f32[4]) -> (%y: f32[4]) {\n"
                     f"  %w = const f32[4] {ref}\n  %y = Add(%x, %w) : f32[4]\n  return %y\n}}\n")
    code, stderr = run_cli(["verify", str(model)], timeout=TIMEOUT_S)
    assert classify(code, stderr) == "error" and "cannot read tensor 'w'" in stderr, stderr


def test_the_fuzz_inputs_are_deterministic():
    """Same seed, same bytes: a failure report (model, mutator, seed) reproduces."""
    proto = onnx.load(BASES["tiny_cnn"])
    for name in ("stacked", "odd_attribute_values", "huge_constant_of_shape"):
        assert onnxm.mutate(proto, name, 5) == onnxm.mutate(proto, name, 5)
    text = BASES["tiny_cnn"].read_bytes()
    rng = lambda: np.random.default_rng([3, 1])  # noqa: E731
    assert onnxm.flip_bits(text, rng()) == onnxm.flip_bits(text, rng())
    printed, _ = nvmc.ir.print_graph(nvmc.load(BASES["tiny_cnn"]), sidecar="m.npz")
    assert nvirm.mutate_text(printed, "swap_tokens", 9) == nvirm.mutate_text(printed, "swap_tokens", 9)


@pytest.mark.parametrize("shape", [(10**23, 16, 64), (2**63, 16, 64), (-2, 16, 64), (1.5, 16, 64)])
def test_input_shape_out_of_range(shape):
    """Crasher: a batch of 10**23 reached protobuf's int64 field (ValueError: Value out of
    range); now frontend/onnx_import.py checks --input-shape values first."""
    text = "x".join(map(str, shape))
    code, stderr = run_cli(["verify", str(BASES["tiny_transformer"]), "--input-shape", f"tokens={text}"])
    assert classify(code, stderr) == "error", stderr
    with pytest.raises(NvmcError, match="from 0 .* to 2"):
        nvmc.load(BASES["tiny_transformer"], input_shapes={"tokens": shape})


def test_a_zero_dimension_is_an_empty_tensor_but_batch_zero_computes_nothing():
    """A 0 dimension is legal (an empty KV cache before the first token); a batch of 0 is
    refused where the batch is needed, not costed as batch 1 (issue 21)."""
    g = nvmc.load(BASES["tiny_transformer"], input_shapes={"tokens": (0, 16, 64)})
    assert g.values["tokens"].type.shape == (0, 16, 64)
    with pytest.raises(NvmcError, match="batch dimension is 0"):
        nvmc.compile(g, "sram")


def test_calibration_of_a_huge_input(tmp_path):
    """Found by the generated models: `compile -t eie` of a model with a 2**29-element input."""
    graph = onnx.helper.make_graph([onnx.helper.make_node("Relu", ["x"], ["y"])], "g",
                                   [onnx.helper.make_tensor_value_info("x", TensorProto.FLOAT, [64, 1000, 2, 64, 64])],
                                   [onnx.helper.make_tensor_value_info("y", TensorProto.FLOAT, [64, 1000, 2, 64, 64])])
    model = tmp_path / "big_input.onnx"
    onnx.save(onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", 18)]), model)
    with memory_limit(1 << 30):
        code, stderr = run_cli(["compile", str(model), "-t", "eie", "-q"], timeout=TIMEOUT_S)
    assert classify(code, stderr, ok_codes=COMPILE_OK) in ("ok", "error")


def test_calibration_of_an_empty_weight(tmp_path):
    """Found by the generated models: `compile -t eie` of a MatMul with a [64, 0] weight."""
    fill = onnx.helper.make_tensor("value", TensorProto.FLOAT, [1], [0.5])
    graph = onnx.helper.make_graph(
        [onnx.helper.make_node("ConstantOfShape", ["s"], ["w"], value=fill), onnx.helper.make_node("MatMul", ["x", "w"], ["y"])],
        "g", [onnx.helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 64])],
        [onnx.helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 0])],
        [numpy_helper.from_array(np.array([64, 0], np.int64), "s")])
    model = tmp_path / "empty_weight.onnx"
    onnx.save(onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", 18)]), model)
    code, stderr = run_cli(["compile", str(model), "-t", "eie", "-q"], timeout=TIMEOUT_S)
    assert classify(code, stderr, ok_codes=COMPILE_OK) in ("ok", "error")
