"""Fitting the tiny networks of the ``neon`` pass: one-hidden-layer ReLU MLPs y = f(x).

Each network maps a scalar to a scalar: ``y = w2 . relu(w1 x + b1) + b2`` with ``w1`` all
ones, so hidden unit j is ``relu(x - k_j)`` and the net is a piecewise-linear curve with
knots ``k_j``. Fitting is deterministic and needs no random start:

1. knots: the first at ``lo``, the others spread so each interval holds an equal share of
   sqrt(|f''|) (equidistributing the interpolation error, h^2 |f''| / 8), with a floor so
   straight parts still get some; for ``rel`` functions sqrt(|f''| / |f|);
2. output layer: weighted linear least squares on 1024 points of [lo, hi] plus 16 in every
   knot interval (rows weighted by 1 / |f| for ``rel`` functions), solved for the curve's
   values at the knots (hat functions: tridiagonal normal equations,
   ``scipy.linalg.solveh_banded``) and converted to ReLU weights (unit j's weight is the
   change of slope at knot j);
3. one more unit ``relu(x - hi)`` whose weight cancels the last slope, so the net is flat
   beyond ``hi`` (as erf, tanh, sigmoid are) instead of running off linearly; below ``lo``
   every unit is off and the net is the constant b2 ~ f(lo).

Errors are measured on 10001 points of [lo, hi] (not the fitting points): ``abs``
functions (bounded outputs) by |net - f| / max|f|, ``rel`` functions (reciprocal, rsqrt,
sqrt: their scale depends on the range) by |net - f| / |f|. ``fit_net`` tries hidden
sizes 8, 16, 32, ... up to ``hidden`` and keeps the first whose max error is at most
``error`` (else the largest).

Cache: fitted nets are kept by (function, range, hidden size, fit version) in memory and
as ``.npz`` files under ``$NVMC_CACHE_DIR/neon/`` (default ``~/.cache/nvmc/neon/``; set
``NVMC_CACHE_DIR=`` to the empty string to keep nothing on disk). Ranges are rounded
outwards to 2 significant digits first, so calibration runs that differ slightly share a
net. A fit takes a few milliseconds; the cache matters for pipelines over many models
and sweeps. A file that cannot be read or written is ignored (the net is fitted again).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np


def _erf(x):
    from scipy import special

    return special.erf(x)


def _expit(x):
    from scipy import special

    return special.expit(x)

FIT_VERSION = 2
FIT_POINTS = 1024
TEST_POINTS = 10001
SIZES = (8, 16, 32, 64, 128)


@dataclass(frozen=True)
class Function:
    """A scalar function NEON can approximate: what it computes, its default input range
    and how its error is measured (``abs`` relative to max |f| on the range, or ``rel``)."""

    name: str
    f: Callable[[np.ndarray], np.ndarray]
    default_range: tuple[float, float]
    error_kind: str  # "abs" or "rel"
    doc: str


def _gelu(x: np.ndarray) -> np.ndarray:
    return 0.5 * x * (1.0 + _erf(x / math.sqrt(2.0)))


FUNCTIONS: dict[str, Function] = {f.name: f for f in (
    Function("exp", np.exp, (-16.0, 0.0), "abs", "e^x on x <= 0 (softmax after subtracting the row max)"),
    Function("erf", _erf, (-4.0, 4.0), "abs", "error function (GELU's erf form)"),
    Function("gelu", _gelu, (-8.0, 8.0), "abs", "x/2 (1 + erf(x / sqrt 2))"),
    Function("tanh", np.tanh, (-4.0, 4.0), "abs", "hyperbolic tangent"),
    Function("sigmoid", _expit, (-8.0, 8.0), "abs", "1 / (1 + e^-x)"),
    Function("reciprocal", lambda x: 1.0 / x, (1.0, 64.0), "rel", "1 / x on x > 0 (softmax's 1 / sum)"),
    Function("rsqrt", lambda x: 1.0 / np.sqrt(x), (1e-2, 16.0), "rel", "1 / sqrt(x) on x > 0 (layer norm)"),
    Function("sqrt", np.sqrt, (1e-2, 16.0), "rel", "sqrt(x) on x > 0"),
)}


@dataclass(frozen=True)
class Net:
    """A fitted net and its measured error on [lo, hi]."""

    fn: str
    lo: float
    hi: float
    w1: np.ndarray  # [1, H] float32
    b1: np.ndarray  # [H]
    w2: np.ndarray  # [H, 1]
    b2: np.ndarray  # [1]
    max_err: float
    mean_err: float
    error_kind: str

    @property
    def hidden(self) -> int:
        return int(self.w1.shape[1])

    def __call__(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64)
        h = np.maximum(x[..., None] * self.w1[0].astype(np.float64) + self.b1.astype(np.float64), 0.0)
        return h @ self.w2[:, 0].astype(np.float64) + float(self.b2[0])


def round_range(fn: str, lo: float, hi: float) -> tuple[float, float]:
    """[lo, hi] rounded outwards to 2 significant digits (the cache key)."""
    def out(v: float, up: bool) -> float:
        if v == 0.0:
            return 0.0
        e = math.floor(math.log10(abs(v))) - 1
        q = v / 10.0 ** e
        return float(f"{math.ceil(q) if up else math.floor(q)}e{e}")  # the decimal, not q * 10^e's rounding

    lo, hi = out(lo, False), out(hi, True)
    if FUNCTIONS[fn].error_kind == "rel" and lo <= 0.0:
        raise ValueError(f"the range of '{fn}' must lie above 0, not [{lo}, {hi}]")
    if not hi > lo:
        raise ValueError(f"empty range [{lo}, {hi}] for '{fn}'")
    return lo, hi


def _knots(func: Function, lo: float, hi: float, count: int) -> np.ndarray:
    x = np.linspace(lo, hi, 8193)
    y = func.f(x)
    d2 = np.abs(np.gradient(np.gradient(y, x), x))
    if func.error_kind == "rel":
        d2 = d2 / np.abs(y)
    density = np.sqrt(d2)
    density = density + 0.05 * max(float(density.mean()), 1e-12)  # straight parts get knots too
    cdf = np.concatenate([[0.0], np.cumsum(0.5 * (density[1:] + density[:-1]) * np.diff(x))])
    cdf /= cdf[-1]
    return np.interp(np.arange(count) / count, cdf, x)  # the first at lo, none at hi


def _fit(func: Function, lo: float, hi: float, hidden: int) -> Net:
    nodes = np.concatenate([_knots(func, lo, hi, hidden - 1), [hi]])  # H nodes: the knots and hi
    between = nodes[:-1, None] + np.diff(nodes)[:, None] * np.linspace(0.0, 1.0, 16, endpoint=False)[None, :]
    x = np.unique(np.concatenate([np.linspace(lo, hi, FIT_POINTS), between.ravel()]))  # every interval sampled
    y = func.f(x)
    weight = 1.0 / np.abs(y) if func.error_kind == "rel" else np.ones_like(y)
    # least squares in the hat-function basis (the curve's values v at the nodes): its
    # normal matrix is tridiagonal and well conditioned, unlike the ReLU basis's
    j = np.clip(np.searchsorted(nodes, x, side="right") - 1, 0, hidden - 2)
    lam = (x - nodes[j]) / (nodes[j + 1] - nodes[j])
    a0, a1 = (1.0 - lam) * weight, lam * weight
    diag = np.bincount(j, a0 * a0, hidden) + np.bincount(j + 1, a1 * a1, hidden)
    off = np.bincount(j, a0 * a1, hidden - 1)
    rhs = np.bincount(j, a0 * y * weight, hidden) + np.bincount(j + 1, a1 * y * weight, hidden)
    from scipy import linalg  # on first fit only: listing the passes does not load scipy

    values = linalg.solveh_banded(np.vstack([np.concatenate([[0.0], off]), diag]), rhs)
    slopes = np.diff(values) / np.diff(nodes)
    # the same curve in the ReLU basis: unit j = relu(x - node_j) carries the change of slope
    # at node_j; the last unit (at hi) cancels the last slope, so the net is flat beyond hi
    out = np.concatenate([[slopes[0]], np.diff(slopes), [-slopes[-1]]])
    net = Net(func.name, lo, hi, np.ones((1, hidden), np.float32), (-nodes).astype(np.float32),
              out[:, None].astype(np.float32), np.array([values[0]], np.float32), 0.0, 0.0, func.error_kind)
    max_err, mean_err = measure(net)
    return Net(**{**net.__dict__, "max_err": max_err, "mean_err": mean_err})


def measure(net: Net, points: int = TEST_POINTS) -> tuple[float, float]:
    """(max, mean) error of ``net`` on its range, as the module doc defines it."""
    func = FUNCTIONS[net.fn]
    x = np.linspace(net.lo, net.hi, points)
    y = func.f(x)
    err = np.abs(net(x.astype(np.float32)) - y)
    err = err / np.abs(y) if func.error_kind == "rel" else err / max(float(np.max(np.abs(y))), 1e-30)
    return float(err.max()), float(err.mean())


# ------------------------------------------------------------------------- the cache
_MEMORY: dict[tuple, Net] = {}


def cache_dir() -> Path | None:
    """Where fitted nets are kept on disk (module doc), or None for nowhere."""
    root = os.environ.get("NVMC_CACHE_DIR")
    if root is None:
        root = str(Path.home() / ".cache" / "nvmc")
    return Path(root) / "neon" if root else None


def _cached(func: Function, lo: float, hi: float, hidden: int) -> Net:
    key = (func.name, lo, hi, hidden, FIT_VERSION)
    if key in _MEMORY:
        return _MEMORY[key]
    folder = cache_dir()
    path = folder / f"{func.name}_{lo:.6g}_{hi:.6g}_h{hidden}_v{FIT_VERSION}.npz" if folder else None
    net = None
    if path is not None and path.is_file():
        try:
            with np.load(path, allow_pickle=False) as d:
                net = Net(func.name, lo, hi, d["w1"], d["b1"], d["w2"], d["b2"], float(d["max_err"]),
                          float(d["mean_err"]), func.error_kind)
        except (OSError, ValueError, KeyError):
            net = None
    if net is None:
        net = _fit(func, lo, hi, hidden)
        if path is not None:
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                tmp = path.with_suffix(f".{os.getpid()}.tmp.npz")
                np.savez(tmp, w1=net.w1, b1=net.b1, w2=net.w2, b2=net.b2, max_err=net.max_err,
                         mean_err=net.mean_err)
                os.replace(tmp, path)
            except OSError:
                pass
    _MEMORY[key] = net
    return net


def fit_net(fn: str, lo: float | None = None, hi: float | None = None, *, hidden: int = 32,
            error: float = 1e-3) -> Net:
    """The smallest net (8, 16, ... up to ``hidden`` units) approximating ``fn`` on [lo, hi]
    (default: the function's default range) to ``error``; else the one with ``hidden`` units."""
    if fn not in FUNCTIONS:
        raise ValueError(f"no NEON function '{fn}' (known: {', '.join(FUNCTIONS)})")
    func = FUNCTIONS[fn]
    d_lo, d_hi = func.default_range
    lo, hi = round_range(fn, d_lo if lo is None else lo, d_hi if hi is None else hi)
    sizes = [s for s in SIZES if s < hidden] + [hidden]
    net = None
    for size in sizes:
        net = _cached(func, lo, hi, size)
        if net.max_err <= error:
            break
    assert net is not None
    return net
