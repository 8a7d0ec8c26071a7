"""An HDC language-recognition classifier bound to this folder's corpus.

The classic binary HDC recipe (Rahimi et al., ISLPED 2016; the use case of the racetrack
paper, shared/reference/seeds.md #8): training, its numpy reference and the ONNX graph (the one
nvmc validate costs) live in nvmc.validate.nets (``hdc_train``, ``hdc_reference``, ``hdc_query``),
shared with the tests. The corpus (``corpus/*.txt``) is original text written for nvmc, a few KB
per language.
"""

from __future__ import annotations

from pathlib import Path

import onnx

from nvmc.validate.nets import HDC_ALPHABET as ALPHABET  # noqa: F401  (re-exported for the scripts)
from nvmc.validate.nets import HDC_LANGUAGES as LANGUAGES  # noqa: F401
from nvmc.validate.nets import hdc_corpus, hdc_query
from nvmc.validate.nets import hdc_reference as reference  # noqa: F401
from nvmc.validate.nets import hdc_symbols as symbols  # noqa: F401
from nvmc.validate.nets import hdc_train as train  # noqa: F401
from nvmc.validate.nets import hdc_windows as windows  # noqa: F401

CORPUS = Path(__file__).resolve().parent / "corpus"
OPSET = 17


def load_corpus(train_fraction: float = 0.7) -> tuple[dict[str, str], dict[str, str]]:
    """(training text, held-out text) per language of ``CORPUS``."""
    return hdc_corpus(CORPUS, train_fraction)


def build_onnx(im, am, *, length: int, n: int = 4, batch: int = 1, name: str = "hdc_language") -> onnx.ModelProto:
    """The inference graph (nvmc.validate.nets.hdc_query, the one nvmc validate costs), checked."""
    model = hdc_query(im, am, length=length, n=n, batch=batch, name=name, opset=OPSET)
    onnx.checker.check_model(model)
    return model
