"""Fuzzing the configuration surfaces (issue 15): pipeline strings and pass options, target
TOML files, ``--set`` values, the other ``nvmc compile`` options and sweep specs.

Every case must end in a valid result (exit 0; 1 = does not fit, 3 = a --budget exceeded) or
one clean error (exit 2, one ``error:`` line, no traceback, no "internal error"), within its
timeout, leaving its input files byte-identical. In-process checks add: a pipeline that
parses prints back to itself, and a target that loads gives finite estimates (a NaN, inf,
negative or absurd number is rejected at load with the key and the file named).

The bulk runs in-process (``nvmc.cli.main`` through tests/fuzz/harness.py, or the loader
functions directly); generation is seeded (hypothesis with ``derandomize=True``, and
``random.Random(seed)`` corpora), so a failure names its seed or example and reproduces.
The crashers found are kept in tests/data/fuzz_crashers/config_* and replayed by
``test_config_crashers``.
"""

from __future__ import annotations

import collections
import contextlib
import json
import math
import random
import re
import shutil
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import nvmc
from fuzz.harness import Checksums, classify, memory_limit, run_cli, time_limit
from nvmc.ir.errors import NvmcError

pytestmark = pytest.mark.fuzz

REPO = Path(__file__).resolve().parents[1]
MODELS = [REPO / "examples" / "models" / "tiny_cnn.onnx", REPO / "examples" / "models" / "tiny_transformer.onnx"]
TARGETS_DIR = REPO / "backends" / "targets"
CRASHERS = REPO / "tests" / "data" / "fuzz_crashers"
CASE_TIMEOUT_S = 20.0
HYPOTHESIS = settings(derandomize=True, deadline=None, database=None, print_blob=True,
                      suppress_health_check=list(HealthCheck))

TALLY: collections.Counter = collections.Counter()
SURFACES: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)


def _count(surface: str | None, outcome: str) -> None:
    if surface is None:  # a later step of a case already counted
        return
    TALLY[outcome] += 1
    SURFACES[surface][outcome] += 1


@pytest.fixture(scope="module", autouse=True)
def _report_tally(request):
    """The case count and outcome tally, printed when the module's tests are done."""
    start = time.perf_counter()
    sums = Checksums(TARGETS_DIR, *MODELS)
    yield
    sums.assert_unchanged("shipped targets and example models")
    writer = request.config.pluginmanager.getplugin("terminalreporter")
    capture = request.config.pluginmanager.getplugin("capturemanager")
    if writer is None or not TALLY:
        return
    lines = [f"fuzz (config surfaces): {sum(TALLY.values())} cases in {time.perf_counter() - start:.1f} s: "
             + ", ".join(f"{k} {v}" for k, v in sorted(TALLY.items()))]
    lines += [f"  {surface:<14} " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))
              for surface, counts in sorted(SURFACES.items())]
    with capture.global_and_fixture_disabled() if capture else contextlib.nullcontext():
        writer.write_line("")
        for line in lines:
            writer.write_line(line)


@pytest.fixture(scope="module")
def graphs():
    return {p.name: nvmc.load(p) for p in MODELS}


@pytest.fixture(scope="module")
def shipped():
    from nvmc.backends import load_target, shipped_targets

    return {name: load_target(path) for name, path in shipped_targets().items()}


# ------------------------------------------------------------------ shared checks
_TOTALS = ("latency_s", "energy_j", "edp_js", "energy_per_inference_j", "area_mm2")


def assert_finite(estimates, what: str) -> None:
    for e in estimates:
        if not e.ok:
            continue
        totals = e.totals
        bad = {k: totals[k] for k in _TOTALS  # None: not modelled (area on some families), never 0
               if totals[k] is not None and (not math.isfinite(totals[k]) or totals[k] < 0)}
        assert not bad, f"{what}: target '{e.target}' gives {bad}"


def expect_clean(fn, what: str, surface: str | None):
    """Run ``fn()`` in-process: a value or an NvmcError with a one-line message; anything else fails.

    ``surface`` names the tally the outcome counts in (None: a later step of a counted case)."""
    try:
        with time_limit(CASE_TIMEOUT_S):
            value = fn()
    except NvmcError as e:
        first = e.render().splitlines()[0]
        assert first.startswith("error: ") and "Traceback" not in e.render(), f"{what}: {e.render()}"
        _count(surface, "error")
        return None
    except Exception as e:  # noqa: BLE001 - the point: nothing but NvmcError may escape
        raise AssertionError(f"{what}: {type(e).__name__}: {e}") from e
    _count(surface, "ok")
    return value


def cli_case(argv: list[str], what: str, surface: str, inputs=(), ok_codes=(0,)) -> tuple[int, str]:
    sums = Checksums(*inputs) if inputs else None
    code, stderr = run_cli([str(a) for a in argv], timeout=CASE_TIMEOUT_S)
    outcome = classify(code, stderr, what=f"{what}: nvmc {' '.join(map(str, argv))}", ok_codes=ok_codes)
    if sums is not None:
        sums.assert_unchanged(what)
    _count(surface, outcome)
    return code, stderr


# ------------------------------------------------------------------ value atoms
NUMBER_ATOMS = ["0", "-1", "1", "2", "8", "0.5", "1.5", "-0.0", "nan", "inf", "-inf", "+inf", "1e308", "5e-324",
                "1e400", "1e30", "1e-30", "1e31", "1e-31", "99999999999999999999999", "1048577", "9" * 5000,
                "1_000", "0x10", "0o17", "0b11", "1979-05-27"]
STRING_ATOMS = ['"x"', '""', "x", "é", '"é"', '"\\u0000"', "[1,2]", "{a=1}", "[]", "true", "false", "sot-mram",
                "unknown-tech", '"../../etc/passwd"', "128x128", "0x0", "1x", "x1", "-4x4", "99999x99999", "ws",
                "25Gbit/s", '"4 MiB"', "4mib", "4.5B", "0.5KiB", "-1MiB", "0B", "8MiB", "1e9B", "99999999999999TiB",
                "18446744073709551616B", "1TiB", '" 8MiB "', "NaNMiB", "infKiB", "a" * 300]
ATOMS = NUMBER_ATOMS + STRING_ATOMS


def _schema_keys(family: str):
    from nvmc.backends import family_module

    module = family_module(family)
    keys = [(f"{s}.{k}", f) for s, fields in module.SCHEMA.items() for k, f in fields.items()]
    return keys, list(getattr(module, "SET_ALIASES", {}))


def _technologies() -> list[str]:
    from nvmc.backends.techlib import library

    lib = library()
    return sorted(lib.techs) + sorted(lib.devices)


def value_for(field, rnd: random.Random) -> str:
    """A --set value for a schema field: mostly near its type and range, sometimes anything."""
    if rnd.random() < 0.12:
        return rnd.choice(ATOMS)
    if field.kind == "choice":
        c = rnd.choice(field.choices)
        return rnd.choice([c, c, c, c, f'"{c}"', c.upper(), c + "x"])
    if field.kind == "str":
        return rnd.choice(_technologies() + ["nope", "sram ", "SRAM", '""', "128x128", "2000000x2000000", "4x0",
                                             "99999999999999999999999x2", "9" * 5000 + "x2"])
    if field.kind == "capacity":
        number = rnd.choice(["1", "4", "2816", "0.5", "1.25", "0", "-4", "1e3", "99999999", ".5", "3."])
        unit = rnd.choice(["", "B", "KiB", "MiB", "GiB", "TiB", "kB", "MB", "GB", "mib", "Mb", "MiB/s", " MiB"])
        return number + unit
    lo = field.minimum if field.minimum is not None else 0
    hi = field.maximum if field.maximum is not None else max(lo, 1) * 1e4
    if field.kind == "int":
        inside = rnd.randint(max(int(lo), 1), max(int(hi), 1))
        return str(rnd.choice([inside, inside, inside, int(lo), int(hi), int(lo) - 1, int(hi) + 1, 1 << 24,
                               (1 << 24) + 1, 2**63, -(2**63)]))
    inside = rnd.uniform(lo, hi)
    return repr(rnd.choice([inside, inside, inside, lo, hi, hi * 1.0000001, -hi, 1e-30, 1e30, 1e-29 * (1 + lo)]))


# ------------------------------------------------------------------ pipelines
def _passes():
    from nvmc.passes import options_of, registered_passes

    # passes other test modules register at import (test-crash, a deliberate bug: exit 70) are not nvmc's
    return {name: options_of(cls) for name, cls in registered_passes().items() if not name.startswith("test-")}


PIPE_JUNK = list("{}=,\"\\ \t\n;:#%&*()[]<>|!?é\x00") + ["{{", "}}", "==", ",,", '"unterminated', "\u202e", "\ufeff"]


def _option_value(spec, data) -> str:
    """A pipeline option value: in range four times in five, else out of range or of another kind."""
    wild = _one_in(data, 8)
    if wild and data.draw(st.booleans()):
        return data.draw(st.sampled_from(ATOMS))
    if spec.choices:
        return data.draw(st.sampled_from([*spec.choices, "nope", spec.choices[0].upper()] if wild else spec.choices))
    if spec.type is bool:
        return data.draw(st.sampled_from(["True", "1", "yes"] if wild else ["true", "false"]))
    if spec.type is int:
        lo = int(spec.min) if spec.min is not None else -3
        hi = int(spec.max) if spec.max is not None else lo + 64
        if wild:
            return str(data.draw(st.one_of(st.sampled_from([lo - 1, hi + 1]), st.integers(-(10**30), 10**30))))
        return str(data.draw(st.integers(lo, hi)))
    if spec.type is float:
        lo = spec.min if spec.min is not None else -1.0
        hi = spec.max if spec.max is not None else lo + 1e3
        if wild:
            return repr(data.draw(st.floats(allow_nan=True, allow_infinity=True)))
        return repr(data.draw(st.floats(lo, hi)))
    if wild:
        return data.draw(st.text(max_size=6)).replace("\\", "").replace('"', "")
    return data.draw(st.sampled_from(["", "x", "a=0.5", "/nonexistent.npz", "Exp,Erf", "all"]))


def _one_in(data, n: int) -> bool:
    return data.draw(st.integers(0, n - 1)) == 1  # not 0: hypothesis draws its simplest value often


def _pipeline_text(data, passes) -> str:
    """A pipeline of registered passes and typed options, with a wrong name, option or value, or a
    character-level mutation, in some of them."""
    names = list(passes)
    parts = []
    for _ in range(data.draw(st.integers(0, 4))):
        bad_names = ["nope", "fuse-conv-bm", "Dce", "dce-", "-dce", "a--b"]
        name = data.draw(st.sampled_from(bad_names if _one_in(data, 12) else names))
        specs = passes.get(name, [])
        text = name
        if specs and not _one_in(data, 3):
            chosen = data.draw(st.lists(st.sampled_from(specs), max_size=3, unique_by=lambda o: o.name))
            opts = []
            for spec in chosen:
                value = _option_value(spec, data)
                if any(c in value for c in ' ,{}="') or not value:
                    value = json.dumps(value)
                opts.append(f"{spec.name}={value}")
            if _one_in(data, 12):
                opts.append(f"{data.draw(st.sampled_from(['nope', 'bits', 'max_iterations', 'x']))}="
                            f"{data.draw(st.sampled_from(ATOMS))}")
            text += "{" + data.draw(st.sampled_from([",", " ", ", "])).join(opts) + "}"
        parts.append(text)
    text = data.draw(st.sampled_from([",", ", ", " , "])).join(parts)
    for _ in range(data.draw(st.sampled_from([0] * 7 + [1, 1, 2]))):  # a few character-level mutations
        i = data.draw(st.integers(0, len(text)))
        op = data.draw(st.integers(0, 2))
        junk = data.draw(st.sampled_from(PIPE_JUNK))
        text = text[:i] + junk + text[i:] if op == 0 else text[:i] + text[i + 1:] if op == 1 else \
            text[:i] + junk + text[i + 1:]
    return text


@given(st.data())
@settings(HYPOTHESIS, max_examples=600)
def test_fuzz_pipeline_strings(data):
    """Pipeline strings parse to a Pipeline that prints back to itself, or fail with a located ParseError."""
    from nvmc.passes import parse_pipeline

    passes = _passes()
    text = _pipeline_text(data, passes)
    pipeline = expect_clean(lambda: parse_pipeline(text), f"pipeline {text!r}", "pipeline")
    if pipeline is not None:
        again = parse_pipeline(str(pipeline))
        assert again == pipeline, f"{text!r} -> {str(pipeline)!r} -> {str(again)!r}"
        expect_clean(lambda: pipeline.build(), f"build {text!r}", None)


@pytest.mark.parametrize("value", [10**5000, -(10**5000), 2**63, float("inf"), float("nan"), "x" * 10_000, True],
                         ids=["10**5000", "-10**5000", "2**63", "inf", "nan", "long-str", "bool"])
def test_pass_option_extremes(value):
    """nvmc.make_pass with values a pipeline string cannot spell: an OptionError (a ValueError from
    str() of a 5000-digit int before), with a short message."""
    from nvmc.passes import OptionError, make_pass

    for name, option in (("crossbar-noise", "seed"), ("canonicalize", "max_iterations")):
        with pytest.raises(OptionError) as e:
            make_pass(name, **{option: value})
        assert len(e.value.render()) < 200, e.value.render()
    _count("pass-api", "error")


def _cheap_pipeline(rnd: random.Random, passes) -> str:
    """A pipeline a tiny model runs in milliseconds: option values in or just outside their ranges."""
    heavy = {"neon", "share-weights", "crossbar-noise", "prune", "quantize", "hdc-recognize"}
    parts = []
    for _ in range(rnd.randint(1, 3)):
        name = rnd.choice([n for n in passes if n not in heavy] * 3 + sorted(heavy))
        opts = []
        for spec in rnd.sample(passes[name], min(len(passes[name]), rnd.randint(0, 2))):
            if spec.name in ("samples", "iterations", "hidden", "clusters", "inputs") or spec.name == "measure":
                continue
            if spec.choices:
                value = rnd.choice(spec.choices)
            elif spec.type is bool:
                value = rnd.choice(["true", "false"])
            elif spec.type is int:
                lo = int(spec.min) if spec.min is not None else 0
                hi = int(spec.max) if spec.max is not None else lo + 8
                value = str(rnd.choice([lo, hi, lo - 1, hi + 1, rnd.randint(lo, hi)]))
            elif spec.type is float:
                lo = spec.min if spec.min is not None else 0.0
                hi = spec.max if spec.max is not None else lo + 10.0
                value = repr(rnd.choice([lo, hi, rnd.uniform(lo, hi), hi + 1]))
            else:
                value = json.dumps(rnd.choice(["", "x"]))
            opts.append(f"{spec.name}={value}")
        if name in heavy and any(s.name == "samples" for s in passes[name]):
            opts.append("samples=1")
        parts.append(name + ("{" + ",".join(opts) + "}" if opts else ""))
    return ",".join(parts)


def test_fuzz_pipeline_runs(graphs, tmp_path):
    """`nvmc opt` and `nvmc compile --passes` with seeded pipelines, through the CLI in-process."""
    passes = _passes()
    rnd = random.Random(20261123)
    models = []
    for m in MODELS:
        shutil.copy(m, tmp_path / m.name)
        models.append(tmp_path / m.name)
    with memory_limit():
        for i in range(40):
            text = _cheap_pipeline(rnd, passes)
            model = models[i % 2]
            if i % 2:
                argv = ["opt", model, "--passes", text, "-o", tmp_path / f"out{i}.onnx"]
            else:
                argv = ["compile", model, "-t", rnd.choice(["sram", "systolic-sot-7nm", "upmem"]), "--passes", text,
                        "-q"]
            cli_case(argv, f"seed 20261123 case {i}", "pipeline-cli", inputs=models, ok_codes=(0, 1))
            if i % 4 == 0:  # the Python API too: nvmc.run_passes on a copy
                graph = graphs[MODELS[i % 2].name].copy()
                expect_clean(lambda: nvmc.run_passes(graph, text), f"nvmc.run_passes(g, {text!r})", "pipeline-api")


# ------------------------------------------------------------------ --set values
def test_fuzz_set_values(graphs, shipped, tmp_path):
    """``--set KEY=VALUE`` on every shipped target: every key of its family, seeded values.

    In-process: the override loads and the estimates are finite, or a TargetError names the
    key. One case in eight also runs through `nvmc explain` / `nvmc compile` (CLI)."""
    from nvmc.backends import family_module, load_target

    rnd = random.Random(15)
    names = sorted(shipped)
    with memory_limit():
        for i in range(700):
            name = names[i % len(names)]
            base = shipped[name]
            keys, aliases = _schema_keys(base.family)
            sets = []
            for _ in range(rnd.choice([1, 1, 1, 2, 3])):
                r = rnd.random()
                if r < 0.85:
                    key, field = rnd.choice(keys)
                    sets.append(f"{key}={value_for(field, rnd)}")
                elif r < 0.92 and aliases:
                    value = rnd.choice(["128x128", "16x16", "1x1", "ws", "os", "1048576x1", "99999999999999999999999x2",
                                        *ATOMS])
                    sets.append(f"{rnd.choice(aliases)}={value}")
                else:
                    sets.append(rnd.choice(["nope=1", "=1", "llc.capacity", "gpu.nope=1", "gpu=1", " = ",
                                            "a.b.c=1", "é.é=1", f"{rnd.choice(keys)[0]}="]))
            what = f"seed 15 case {i}: {name} --set {' --set '.join(sets)}"

            def run():
                t = load_target(base, sets)
                family_module(t.family).parameters(t)
                return t

            target = expect_clean(run, what, "set")
            if target is not None:
                for g in graphs.values():
                    compiled = expect_clean(lambda: nvmc.compile(g, [target]), what, None)
                    if compiled is not None:
                        assert_finite(compiled.estimates, what)
            if i % 8 == 0:
                argv = ["explain", "-t", name] if i % 16 == 0 else ["compile", MODELS[i % 2], "-t", name, "-q"]
                for s in sets:
                    argv += ["--set", s]
                cli_case(argv, what, "set-cli", ok_codes=(0, 1))


def _all_fields():
    from nvmc.backends import families, family_module

    return [(f, key, field) for f in families()
            for key, field in ((f"{s}.{k}", fl) for s, fs in family_module(f).SCHEMA.items() for k, fl in fs.items())]


_ANY_VALUE = st.one_of(
    st.integers(), st.integers(-(2**70), 2**70), st.floats(allow_nan=True, allow_infinity=True),
    st.floats(min_value=-1e40, max_value=1e40), st.booleans(), st.text(max_size=12),
    st.sampled_from(["8MiB", "2816KiB", "0B", "-1MiB", "1e3MiB", "99999999999999999999TiB", "4 MiB", "sram", "os"]),
    st.lists(st.integers(), max_size=2))


@given(st.data())
@settings(HYPOTHESIS, max_examples=500)
def test_fuzz_field_values(data):
    """Any value for any key of any family (as a TOML or Python value): a TargetError, or a value
    of the field's type inside nvmc's range (finite, positive unless allowed, within maximum)."""
    from nvmc.backends.errors import TargetError
    from nvmc.backends.target import MAX_CAPACITY, MAX_COUNT, MAX_MAGNITUDE

    family, key, field = data.draw(st.sampled_from(_all_fields()))
    value = data.draw(_ANY_VALUE)
    try:
        checked = field.check(value)
    except ValueError:
        _count("field", "error")
        return
    except Exception as e:  # noqa: BLE001
        raise AssertionError(f"{family} {key} = {value!r}: {type(e).__name__}: {e}") from e
    _count("field", "ok")
    if field.kind in ("int", "float", "capacity"):
        assert not isinstance(checked, bool) and isinstance(checked, (int, float)), (key, value, checked)
        assert math.isfinite(checked) and abs(checked) <= max(MAX_MAGNITUDE, MAX_CAPACITY), (key, value, checked)
        assert checked >= (field.minimum if field.minimum is not None else 0), (key, value, checked)
        assert field.minimum is not None or checked > 0, (key, value, checked)
        if field.maximum is not None:
            assert checked <= field.maximum, (key, value, checked)
        if field.kind == "int" and field.maximum is None:
            assert checked <= MAX_COUNT
    else:
        assert isinstance(checked, str) and checked, (key, value, checked)
    assert TargetError  # (with_overrides turns the ValueError into a TargetError naming the key)


def _extreme(field, rnd: random.Random) -> str | None:
    """A value at an edge of what the loader accepts (range bounds, 1e-30, 1e30, 1 EiB, 2**20)."""
    from nvmc.backends.target import MAX_CAPACITY, MAX_COUNT, MAX_MAGNITUDE, MIN_MAGNITUDE

    if field.kind == "int":
        lo = int(field.minimum) if field.minimum is not None else 1
        hi = int(field.maximum) if field.maximum is not None else MAX_COUNT
        return str(rnd.choice([lo, hi, max(lo, 1), 2, 3]))
    if field.kind == "float":
        lo = field.minimum if field.minimum is not None else MIN_MAGNITUDE
        if lo == 0:
            lo = rnd.choice([0.0, MIN_MAGNITUDE])
        return repr(rnd.choice([lo, field.maximum if field.maximum is not None else MAX_MAGNITUDE]))
    if field.kind == "capacity":
        return rnd.choice(["1", "1B", str(MAX_CAPACITY), "1KiB", "1TiB"])
    return rnd.choice(field.choices) if field.kind == "choice" else None


def test_fuzz_extreme_targets(graphs, shipped):
    """Up to eight keys of a shipped target at the edges of their accepted range at once: the
    estimates stay finite (or the family refuses the combination with an NvmcError)."""
    from nvmc.backends import family_module, load_target

    rnd = random.Random(30)
    names = sorted(shipped)
    for i in range(300):
        base = shipped[names[i % len(names)]]
        keys, _ = _schema_keys(base.family)
        sets = [f"{k}={v}" for k, f in rnd.sample(keys, min(len(keys), rnd.randint(1, 8)))
                if (v := _extreme(f, rnd)) is not None]
        what = f"seed 30 case {i}: {base.name} --set {' --set '.join(sets)}"

        def run():
            t = load_target(base, sets)
            family_module(t.family).parameters(t)
            return [nvmc.compile(g, [t]) for g in graphs.values()]

        for compiled in expect_clean(run, what, "set-extreme") or []:
            assert_finite(compiled.estimates, what)


# ------------------------------------------------------------------ target TOML files
_KV = re.compile(r'^\s*([A-Za-z_"][^=]*?)\s*=')


def mutate_target(text: str, rnd: random.Random, others: list[str]) -> bytes:
    """1-3 mutations of a target file: values, keys, sections, family, truncation, bit flips, unicode."""
    from nvmc.backends import families

    lines = text.splitlines()
    for _ in range(rnd.choice([1, 1, 1, 2, 3])):
        kv = [i for i, ln in enumerate(lines) if _KV.match(ln)]
        r = rnd.random()
        if r < 0.4:                                          # a key of the schema, a value near its type
            lines = _schema_line(lines, rnd)
        elif r < 0.55 and kv:                                # a key's value: anything
            i = rnd.choice(kv)
            lines[i] = f"{_KV.match(lines[i]).group(1)} = {rnd.choice(NUMBER_ATOMS + STRING_ATOMS)}"
            if rnd.random() < 0.5 and not lines[i].rstrip().endswith('"'):
                value = lines[i].split("=", 1)[1].strip()
                if not value.startswith(('"', "[", "{")) and not re.fullmatch(r"[-+0-9.e_xobnaif]+", value):
                    lines[i] = f'{_KV.match(lines[i]).group(1)} = "{value}"'
        elif r < 0.62 and kv:                                # a missing key
            del lines[rnd.choice(kv)]
        elif r < 0.68 and kv:                                # a misspelt key
            i = rnd.choice(kv)
            key, value = lines[i].split("=", 1)
            key = key.strip()
            j = rnd.randrange(len(key))
            lines[i] = f"{key[:j]}{rnd.choice('abxz_é')}{key[j + 1:]} ={value}"
        elif r < 0.73:                                       # another family, or none known
            fam = rnd.choice([*families(), "nope", "gpu_llc", "", "GPU-LLC"])
            lines = [f'family = "{fam}"' if ln.startswith("family") else ln for ln in lines]
        elif r < 0.78:                                       # a section of another target
            other = rnd.choice(others).splitlines()
            heads = [i for i, ln in enumerate(other) if ln.startswith("[")]
            if heads:
                i = rnd.choice(heads)
                lines += other[i:i + rnd.randint(1, 6)]
        elif r < 0.82 and lines:                             # a duplicated line
            lines.insert(rnd.randrange(len(lines)), rnd.choice(lines))
        elif r < 0.86:                                       # truncated
            joined = "\n".join(lines)
            lines = joined[:rnd.randrange(len(joined) + 1)].splitlines()
        elif r < 0.91:                                       # a bit flip
            raw = bytearray("\n".join(lines).encode())
            if raw:
                raw[rnd.randrange(len(raw))] ^= 1 << rnd.randrange(8)
            try:
                lines = raw.decode("utf-8").splitlines()
            except UnicodeDecodeError:
                return bytes(raw)
        elif r < 0.95:                                       # a missing top-level key
            top = rnd.choice(["schema", "name", "family", "description"])
            lines = [ln for ln in lines if not ln.startswith(top)]
        else:                                                # odd lines
            lines.insert(rnd.randrange(len(lines) + 1), rnd.choice([
                "\ufeff", "é = 1", "[é]", "\x00", "'''", "a.b.c = 1", "name = 1", 'schema = "nvmc.target/2"',
                "[extra]", "[[memory]]", "[gpu.sub]", "x = [", 'name = "a"', "assumed = \"why\"",
                f"[{rnd.choice(['llc', 'array', 'chip'])}]\n{rnd.choice(['rows', 'capacity', 'clock_hz'])} = "
                f"{rnd.choice(ATOMS)}"]))
    return "\n".join(lines).encode()


def _schema_line(lines: list[str], rnd: random.Random) -> list[str]:
    """The lines with ``key = value`` of the file's family set (value from ``value_for``) in its section."""
    import tomllib

    family = next((ln.split("=", 1)[1].strip().strip('"') for ln in lines if ln.startswith("family")), "")
    try:
        keys, _ = _schema_keys(family)
    except NvmcError:
        return lines
    key, field = rnd.choice(keys)
    section, name = key.split(".")
    value = value_for(field, rnd)
    try:
        tomllib.loads(f"v = {value}")
    except ValueError:
        value = json.dumps(value)
    head = next((i for i, ln in enumerate(lines) if ln.strip() == f"[{section}]"), None)
    if head is None:
        return [*lines, f"[{section}]", f"{name} = {value}"]
    end = next((i for i in range(head + 1, len(lines)) if lines[i].lstrip().startswith("[")), len(lines))
    body = [ln for ln in lines[head + 1:end] if not re.match(rf"\s*{re.escape(name)}\s*=", ln)]
    return [*lines[:head + 1], f"{name} = {value}", *body, *lines[end:]]


def test_fuzz_target_files(graphs, tmp_path):
    """Mutated shipped target files: loaded in-process (finite estimates or a TargetError naming
    the file) and one in six through `nvmc compile --target FILE` (checksummed)."""
    from nvmc.backends import family_module
    from nvmc.backends.target import parse_target, shipped_targets

    texts = {name: p.read_text() for name, p in sorted(shipped_targets().items())}
    others = list(texts.values())
    rnd = random.Random(2026)
    names = list(texts)
    with memory_limit():
        for i in range(600):
            name = names[i % len(names)]
            data = mutate_target(texts[name], rnd, others)
            path = tmp_path / f"{name}-{i}.toml"
            path.write_bytes(data)
            what = f"seed 2026 case {i} (mutated {name}.toml)"

            target = expect_clean(lambda: parse_target(path.read_bytes(), path), what, "target-toml")
            if target is None:  # the loader's errors name the file (and the line of the key)
                with pytest.raises(NvmcError) as e:
                    parse_target(path.read_bytes(), path)
                assert str(path) in e.value.render(), f"{what}: the error does not name the file: {e.value.render()}"
            elif expect_clean(lambda: family_module(target.family).parameters(target), what, None):
                for g in graphs.values():
                    compiled = expect_clean(lambda: nvmc.compile(g, [target]), what, None)
                    if compiled is not None:
                        assert_finite(compiled.estimates, what)
            if i % 6 == 0:
                cli_case(["compile", MODELS[i % 2], "-t", path, "-q", "--json", tmp_path / "r.json"], what,
                         "target-cli", inputs=[path], ok_codes=(0, 1))
            assert path.read_bytes() == data, f"{what}: the target file changed"


@pytest.mark.parametrize("key,value", [("clock_hz", "nan"), ("clock_hz", "inf"), ("clock_hz", "-inf"),
                                       ("clock_hz", "-2.5e9"), ("clock_hz", "0"), ("clock_hz", "1e400"),
                                       ("clock_hz", "5e-324"), ("utilization", "nan")])
def test_nonfinite_target_numbers_are_rejected(tmp_path, key, value):
    """NaN, inf, negative, zero or denormal numbers in a target name the key and the file."""
    path = tmp_path / "bad.toml"
    path.write_text('schema = "nvmc.target/1"\nname = "bad"\nfamily = "gpu-llc"\n\n[gpu]\n'
                    f'{key} = {value}\n\n[llc]\ntechnology = "sram"\n')
    code, stderr = cli_case(["explain", "-t", path], f"{key} = {value}", "target-nonfinite", inputs=[path])
    assert code == 2
    assert f"{path}:6" in stderr and f"[gpu] {key} = " in stderr, stderr


_DATA_VALUE = re.compile(r"(value\s*=\s*)([^,}]+)")


def test_fuzz_technology_data(tmp_path):
    """Mutated technology and device data files (backends/data/{tech,devices}/*.toml): a DataFile
    whose every number is finite, or a TechLibError naming the file."""
    from nvmc.backends.techlib import DATA_DIR, load_data_file

    files = sorted([*(DATA_DIR / "tech").glob("*.toml"), *(DATA_DIR / "devices").glob("*.toml")])
    texts = {p.stem: p.read_text() for p in files}
    rnd = random.Random(44)
    for i in range(200):
        stem = rnd.choice(sorted(texts))
        lines = texts[stem].splitlines()
        for _ in range(rnd.choice([1, 1, 2])):
            numbered = [j for j, ln in enumerate(lines) if _DATA_VALUE.search(ln)]
            r = rnd.random()
            if r < 0.55 and numbered:                        # a number of the library
                j = rnd.choice(numbered)
                lines[j] = _DATA_VALUE.sub(lambda m: m.group(1) + rnd.choice(NUMBER_ATOMS + ['"1"', "[1]", "{}"]),
                                           lines[j], count=1)
            elif r < 0.65 and numbered:                      # its provenance
                j = rnd.choice(numbered)
                lines[j] = re.sub(r",\s*(source|assumed|derived)\s*=\s*\"[^\"]*\"", rnd.choice(["", ', assumed = ""',
                                  ', source = "x", assumed = "y"', ", formula = \"1/0\"", ", formula = \"9.9e307*10\"",
                                  ", formula = \"nope.key\""]), lines[j], count=1)
            else:
                mutated = mutate_target("\n".join(lines), rnd, list(texts.values()))
                lines = mutated.decode("utf-8", "replace").splitlines()
        path = tmp_path / f"{stem}.toml"
        path.write_text("\n".join(lines))
        what = f"seed 44 case {i} (mutated {stem}.toml)"
        data = expect_clean(lambda: load_data_file(path), what, "tech-data")
        if data is not None:
            bad = {k: p.value for k, p in data.params.items() if not math.isfinite(p.value)}
            assert not bad, f"{what}: non-finite numbers accepted: {bad}"
        else:
            with pytest.raises(NvmcError) as e:
                load_data_file(path)
            assert path.name in e.value.render(), f"{what}: the error does not name the file: {e.value.render()}"


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "1e400", "9" * 400])
def test_nonfinite_library_numbers_are_rejected(tmp_path, value):
    """A technology file's NaN or inf (accepted before) names the key and the file."""
    from nvmc.backends.errors import TechLibError
    from nvmc.backends.techlib import load_data_file

    path = tmp_path / "odd.toml"
    path.write_text(f'schema = "nvmc.tech/1"\nname = "odd"\n[cell]\nr_on_ohm = {{ value = {value}, source = "x" }}\n')
    with pytest.raises(TechLibError, match=r"cell.r_on_ohm: 'value' must be a finite number") as e:
        load_data_file(path)
    assert "odd.toml" in e.value.render()
    _count("tech-nonfinite", "error")


# ------------------------------------------------------------------ other CLI options
def _cli_options(rnd: random.Random) -> list[str]:
    """A `nvmc compile` command line: each option drawn from good values, one time in four from bad ones."""
    def pick(good, bad, p_bad=0.25):
        return rnd.choice(bad if rnd.random() < p_bad else good)

    targets = ["sram", "sot-mram", "upmem", "mensa", "simdram", "cpu", "systolic-sot-7nm", "rram-neurosim",
               "racetrack-hdc", "eie", "edge-tpu", "fpga", "rram-pim"]
    bad_nums = ["0", "-1", "nan", "inf", "-inf", "1e308", "1e-308", "1e400", "x", "", "99999999999999999999999",
                "0x10", "1_0", "é", "1e30", "9" * 5000]
    model = rnd.randrange(2)
    argv = ["compile", MODELS[model], "-t", pick(targets, ["nope", "", "/nonexistent.toml", "sram,sot-mram"], 0.08)]
    if rnd.random() < 0.3:
        name = pick(["x", "tokens"][model:model + 1], ["input", "", "é", "x=y"])
        dims = pick(["1x3x32x32", "1x16x64"][model:model + 1],
                    ["0x3", "1", "x", "-1x3x32x32", "1x3x32x32x1", "99999999999x3x32x32", "1xx3", "1x3x32x32.0", "nan",
                     "1e3x3x32x32", "2x3x32x32", "1x16x65", "1x" + "9" * 5000])
        argv += ["--input-shape", f"{name}={dims}" if rnd.random() < 0.95 else rnd.choice(["", "=", "=1x2"])]
    if rnd.random() < 0.3:
        parts = []
        for _ in range(rnd.randint(1, 3)):
            metric, units = rnd.choice([("latency", ["ms", "s", "us", "µs", "ns"]), ("energy", ["mJ", "J", "uJ"]),
                                        ("area", ["mm2", "um2", "cm^2", "mm²"]), ("edp", ["Js", "uJs"]),
                                        ("throughput", ["/s", "k/s", ""]), ("energy_per_inference", ["uJ"]),
                                        ("energy-per-inference", ["nJ"])])
            metric = pick([metric], ["lat", "", "LATENCY", "latency<", "power"], 0.1)
            value = pick(["1", "5", "0.5", "100", "1e-3", "2.5e3"], bad_nums, 0.15)
            parts.append(f"{metric}={value}{pick(units, ['', 'kg', 'xx', ' ms'], 0.1)}")
        argv += ["--budget", ",".join(parts)]
    if rnd.random() < 0.2:
        extra = [rnd.choice(["nope", ""])] if rnd.random() < 0.2 else []
        argv += ["--compare", ",".join(rnd.sample(targets, rnd.randint(1, 3)) + extra)]
    if rnd.random() < 0.15:
        argv += ["--grid", pick(["world", "usa", "europe", "coal", "EUROPE", "300", "0", "12.5"], bad_nums + ["mars"])]
    if rnd.random() < 0.15:
        argv += ["--lifetime", pick(["1", "3", "0.5", "10", "1e-6"], bad_nums)]
    if rnd.random() < 0.15:
        argv += ["--utilisation", pick(["1", "0.5", "0.01", "1e-9"], bad_nums + ["1.5"])]
    if rnd.random() < 0.1:
        argv += ["--iso", pick(["area", "capacity"], ["x", ""])]
    if rnd.random() < 0.25:
        argv += ["--mode", pick(["train", "train", "inference"], ["x"], 0.1)]
        if rnd.random() < 0.5:
            argv += ["--devices", pick(["1", "2", "8", "64", "65536"], bad_nums + ["65537"])]
        if rnd.random() < 0.5:
            argv += ["--batch", pick(["1", "16", "64", "65536"], bad_nums + ["65537"])]
        if rnd.random() < 0.5:
            argv += ["--interconnect", pick(["nvlink2", "pcie4", "25gbe", "ib-edr", "aws-p3-16xlarge", "nvlink2,pcie4"],
                                            ["nope", ",", ""])]
        good = {"bandwidth": ["25Gbit/s", "25Gb/s", "25Gbps", "12.5GB/s", "1e-30Gbit/s", "1e30GB/s"],
                "latency": ["5us", "0.5ms", "2e-6s", "1e30s", "0s"], "energy_per_bit": ["1pJ", "100pJ", "1e30J"],
                "algorithm": ["ring", "tree", "hierarchical"], "bucket": ["4MiB", "1B", "25MiB"],
                "devices_per_node": ["1", "8"], "intra": ["nvlink2"], "inter": ["25gbe", "ib-edr"],
                "idle_power_fraction": ["0", "0.5", "1"]}
        for _ in range(rnd.randint(0, 3)):
            key = pick(list(good), ["nope", ""], 0.1)
            value = pick(good.get(key, ["1"]), bad_nums + ["25Gbit", "Gbit/s", "-25Gbit/s", "1e-300Gbit/s",
                                                           "1e300Gbit/s", "5 us", "-5us", "1e300s", "1e300J",
                                                           "nvlink2", "ring"])
            argv += ["--set", f"net.{key}={value}"]
    if rnd.random() < 0.15:
        argv += ["--set", pick(["llc.capacity=8MiB", "array=128x128", "dataflow=ws", "gpu.utilization=0.5"],
                               ["array=0x0", "array=99999x99999", "x=1", "=1", "llc.capacity", "gpu.utilization=2"])]
    if rnd.random() < 0.1:
        argv += ["--passes", pick(["dce", "canonicalize", "fold-constants", "fuse-conv-bn,dce"],
                                  ["nope", "{", "quantize{bits=1}"])]
    if rnd.random() < 0.2:
        argv += ["--top", pick(["0", "3", "99999999999"], ["-1", "x"])]
    if rnd.random() < 0.7:
        argv.append("-q")
    return argv


def test_fuzz_cli_options(tmp_path):
    """`nvmc compile` with seeded combinations of --input-shape, --budget, --compare, --grid,
    --lifetime, --utilisation, --iso, --mode train (--devices, --batch, --interconnect,
    --set net.*), --set, --passes, --top; half of them write --json (no NaN may reach it)."""
    rnd = random.Random(7)
    with memory_limit():
        for i in range(500):
            argv = _cli_options(rnd)
            if i % 2:
                argv += ["--json", tmp_path / "r.json"]
            cli_case(argv, f"seed 7 case {i}", "cli-options", ok_codes=(0, 1, 3))


# ------------------------------------------------------------------ sweep specs
_SPEC_VALUES = ['0', '-1', '1', 'nan', 'inf', '1e308', 'true', '"x"', '""', '[]', '[1]', '["a"]', '{}', '{a=1}',
                '"8MiB"', '99999999999999999999', '"*"', '"family:gpu-llc"', '"family:"', '"family:nope"', '"sram"',
                '"nope"', '"mine.toml"', '"../mine.toml"', '"models/nope.onnx"', '[1, 8]', '[0]', '[true]',
                '[65537]', '["llc.capacity=8MiB"]', '["llc.capacity"]', '["x=1"]', '["gpu.utilization=0.6"]',
                '{"llc.capacity"="8MiB"}', '{llc={capacity="8MiB"}}', '{nope=1}', '["", "canonicalize"]',
                '["quantize{bits=9}"]', '["{"]', '[{path="models/tiny_cnn.onnx", input_shapes={x=[1,3,32,32]}}]',
                '[{path="models/tiny_cnn.onnx", input_shapes={x=[0]}}]', '[{path=1}]']
_RANGES = ['{from="1MiB", to="16MiB", factor=2}', '{from=1, to=10, step=1}', '{from=1, to=1e300, step=1e-300}',
           '{from=1.0, to=2.0, num=5}', '{from=1, to=2, num=99999999999}', '{from=1, to=1e300, factor=1.0000000001}',
           '{from=0, to=10, factor=2}', '{from=1, to=inf, step=1}', '{from=nan, to=2, step=1}',
           '{from=1, to=2, step=nan}', '{from=1, to=2, num=3, scale="log"}', '{from=-1, to=2, num=3, scale="log"}',
           '{from=1, to=2}', '{from=1, to=2, step=1, num=2}', '{from="1MiB", to="1TiB", step=1}',
           '{from=true, to=2, step=1}', '{from=1, to=2, step=1, x=3}', '{from=5e-324, to=1e308, num=3, scale="log"}',
           '{from=1, to=1e308, factor=1e308}', '["capacity","area"]', '["1MiB", "2MiB"]', '[]', '[1, "x", 2.5]',
           '[nan]', '[inf]', '1', '{from=64, to=256, step=64}', '{from=1e9, to=2e9, num=5}',
           '{from=1, to=99999, step=1}', '{from=1, to=1e15, step=1}']
_GRID_KEYS = ['"llc.capacity"', '"llc.iso"', '"tiling.block_m"', '"gpu.clock_hz"', '"gpu.utilization"',
              '"array.rows"', '"nope.key"', '"llc"', '"array.size"']


def make_spec(rnd: random.Random) -> bytes:
    """A sweep spec: a valid core (models, targets, grid or [[points]]) with a few keys off."""
    bad = lambda p: rnd.random() < p  # noqa: E731
    lines = ['schema = "nvmc.sweep/1"' if not bad(0.03) else rnd.choice(['schema = "nvmc.sweep/2"', "schema = 1", ""]),
             "name = " + (rnd.choice(['"s"', "1", '"é"', '""']) if bad(0.1) else '"fuzz"')]
    product = rnd.random() < 0.75
    if product:
        lines.append("models = " + (rnd.choice(_SPEC_VALUES) if bad(0.1) else
                                    rnd.choice(['["models/tiny_cnn.onnx"]', '"models/tiny_transformer.onnx"',
                                                '["models/tiny_cnn.onnx", "models/tiny_transformer.onnx"]'])))
        lines.append("targets = " + (rnd.choice(_SPEC_VALUES) if bad(0.1) else
                                     rnd.choice(['["sram"]', '["sram", "sot-mram"]', '["systolic-sot-7nm"]',
                                                 '["mine.toml"]', '["upmem", "sram"]', '"family:gpu-llc"', '"*"'])))
        if rnd.random() < 0.4:
            lines.append("pipelines = " + (rnd.choice(_SPEC_VALUES) if bad(0.3) else '["", "canonicalize"]'))
        if rnd.random() < 0.3:
            lines.append("batch = " + (rnd.choice(_SPEC_VALUES) if bad(0.5) else "[1, 8]"))
        if rnd.random() < 0.3:
            lines.append("set = " + (rnd.choice(_SPEC_VALUES) if bad(0.5) else '["llc.capacity=4MiB"]'))
        if rnd.random() < 0.7:
            lines.append("[grid]")
            for _ in range(rnd.randint(1, 3)):
                key = rnd.choice(_GRID_KEYS) if bad(0.5) else rnd.choice(['"llc.capacity"', '"llc.iso"'])
                value = rnd.choice(_RANGES) if bad(0.6) else rnd.choice(['["1MiB", "4MiB"]', '["capacity", "area"]'])
                lines.append(f"{key} = {value}")
    if not product or rnd.random() < 0.2:
        for _ in range(rnd.randint(1, 2)):
            lines.append("[[points]]")
            entry = {"model": '"models/tiny_cnn.onnx"', "target": '"sram"'}
            if rnd.random() < 0.5:
                entry["pipeline"] = '"canonicalize"'
            for key in rnd.sample(["model", "target", "pipeline", "batch", "set", "x"], rnd.randint(0, 2)):
                entry[key] = rnd.choice(_SPEC_VALUES)
            if bad(0.1):
                entry.pop(rnd.choice(list(entry)))
            lines += [f"{k} = {v}" for k, v in entry.items()]
    text = "\n".join(lines)
    if bad(0.08):
        raw = bytearray(text.encode())
        raw[rnd.randrange(len(raw))] ^= 1 << rnd.randrange(8)
        return bytes(raw)
    return text.encode()


@pytest.fixture(scope="module")
def sweep_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("sweep")
    (root / "models").mkdir()
    for m in MODELS:
        shutil.copy(m, root / "models" / m.name)
    shutil.copy(TARGETS_DIR / "sram.toml", root / "mine.toml")
    return root


def test_fuzz_sweep_specs(sweep_dir):
    """Sweep specs through the spec loader in-process (expansion, checks, limits on size)."""
    from nvmc.sweep import load_spec

    rnd = random.Random(11)
    sums = Checksums(sweep_dir)
    with memory_limit():
        for i in range(400):
            data = make_spec(rnd)
            path = sweep_dir / "spec.toml"
            path.write_bytes(data)
            spec = expect_clean(lambda: load_spec(path), f"seed 11 case {i}:\n{data.decode('utf-8', 'replace')}",
                                "sweep-spec")
            if spec is not None:
                assert spec.points and len({p.id for p in spec.points}) == len(spec.points)
    path.unlink()
    sums.assert_unchanged("sweep inputs")


def test_fuzz_sweep_cli(sweep_dir, tmp_path):
    """A few specs through `nvmc sweep --workers 0` (in this process: no worker processes)."""
    rnd = random.Random(12)
    ran = 0
    for i in range(60):
        data = make_spec(rnd)
        path = sweep_dir / f"cli{i}.toml"
        path.write_bytes(data)
        inputs = [path, sweep_dir / "models", sweep_dir / "mine.toml"]
        from nvmc.sweep import load_spec

        try:
            points = len(load_spec(path).points)
        except NvmcError:
            points = 0
        if points > 8 or (points and ran >= 6):
            continue  # keep the runs few and small
        ran += bool(points)
        cli_case(["sweep", path, "--workers", "0", "-q", "--db", tmp_path / f"db{i}.sqlite"], f"seed 12 case {i}",
                 "sweep-cli", inputs=inputs, ok_codes=(0, 1))  # 1: some points failed (stored, listed)
    assert ran >= 3


# ------------------------------------------------------------------ regression cases
def _crasher_cases():
    cases = []
    for p in sorted(CRASHERS.glob("config_*")):
        if p.suffix == ".json":
            for i, case in enumerate(json.loads(p.read_text())["cases"]):
                cases.append(pytest.param(p, case, id=f"{p.stem}-{i}"))
        else:
            cases.append(pytest.param(p, None, id=p.name))
    return cases


@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")  # the NaN network case
@pytest.mark.parametrize("path,case", _crasher_cases())
def test_config_crashers(path, case, tmp_path, sweep_dir):
    """Every crasher found here, replayed: now a clean error naming the thing (exit 2)."""
    if case is not None:  # {"argv": [...], "expect": "text in the error"}; MODEL -> tiny_cnn.onnx
        argv = [str(MODELS[0]) if a == "MODEL" else a for a in case["argv"]]
        code, stderr = cli_case(argv, path.name, "crashers", ok_codes=())
        assert case["expect"] in stderr, stderr
        return
    first = path.read_bytes().split(b"\n", 1)[0].decode("utf-8", "replace")
    expect = first.lstrip("# ").strip()  # the first line: '# expect: text of the error'
    assert expect.startswith("expect: "), f"{path.name}: first line must be '# expect: ...'"
    if path.name.startswith("config_sweep_"):
        copy = sweep_dir / path.name
        shutil.copy(path, copy)
        code, stderr = cli_case(["sweep", copy, "--workers", "0", "-q", "--db", tmp_path / "db.sqlite"], path.name,
                                "crashers", inputs=[copy], ok_codes=())
    else:
        code, stderr = cli_case(["explain", "-t", path], path.name, "crashers", inputs=[path], ok_codes=())
    assert expect.removeprefix("expect: ") in stderr, stderr


def test_config_crashers_subprocess(tmp_path):
    """The real entry point (a subprocess) prints the same one clean line for three crashers."""
    from conftest import run_nvmc

    target = CRASHERS / "config_target_huge_rows.toml"
    sums = Checksums(target)
    cases = [(("compile", str(MODELS[0]), "-t", str(target), "-q"), "must be <= 1048576"),
             (("explain", "-t", "sram", "--set", "gpu.clock_hz=" + "9" * 5000), "gpu.clock_hz: expected a number"),
             (("compile", str(MODELS[0]), "-t", "sram", "-q", "--budget", "energy=" + "9" * 400 + "mJ"),
              "the number is too large")]
    for argv, expect in cases:
        proc = run_nvmc(*argv)
        assert proc.returncode == 2 and expect in proc.stderr, proc.stderr
        assert classify(proc.returncode, proc.stderr) == "error"
    sums.assert_unchanged()
