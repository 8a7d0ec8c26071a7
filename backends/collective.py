"""Collective communication for data-parallel training: all-reduce cost formulas, networks
as cited data (``data/interconnects.toml``), gradient bucketing and overlap with the
backward pass.

The alpha-beta model (Hockney): a step of a collective costs ``alpha`` (the link's per-step
latency) plus its bytes over ``B`` (the per-device, per-direction bandwidth). For an
all-reduce of ``S`` bytes over ``N`` devices (Thakur, Rabenseifner and Gropp, "Optimization
of collective communication operations in MPICH", IJHPCA 2005; NCCL's tuning model,
src/graph/tuning.cc, counts the same 2(N-1) ring steps and nccl-tests' PERFORMANCE.md the
same 2(N-1)/N bus-bandwidth factor):

* ``ring`` (reduce-scatter, then all-gather):  2(N-1) alpha + 2(N-1)/N x S / B
* ``tree`` (recursive halving and doubling, the bound a pipelined double binary tree
  approaches):                                  2 ceil(log2 N) alpha + 2(N-1)/N x S / B
* ``hierarchical`` (G devices per node on an ``intra`` link, M = ceil(N/G) nodes on an
  ``inter`` network, one network port per node shared by its G devices): a ring
  reduce-scatter inside the node, a ring all-reduce of each device's S/G between the
  nodes (the G flows share the port: 2(M-1)/M x S / B_inter), a ring all-gather inside:
  2(G-1) alpha_i + 2(G-1)/G x S / B_i + 2(M-1) alpha_e + 2(M-1)/M x S / B_e

Energy: the bits each device sends (ring and tree: 2(N-1)/N x S; hierarchical: its intra
and inter shares) times the link's energy per bit.

Bucketing and overlap (as PyTorch DDP): gradients become ready in reverse graph order as
the backward pass walks back; they are packed into buckets of ``bucket_bytes`` and a
bucket is all-reduced as soon as its last gradient is ready, one bucket at a time. The
all-reduces hide behind the rest of the backward pass; what runs past its end is
*exposed*. Without overlap the same buckets run one after another after the backward pass.
"""

from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path
from typing import Iterable

import numpy as np

from nvmc.ir.errors import did_you_mean
from nvmc.ir.files import read_input

from .errors import TargetError
from .techlib import Param
from nvmc.ir.units import parse_capacity, parse_quantity, prefixed

DATA = Path(__file__).resolve().parent / "data" / "interconnects.toml"
ALGORITHMS = ("ring", "tree", "hierarchical")


# ------------------------------------------------------------------ the formulas
def ring_allreduce_s(nbytes: float, n: int, bandwidth: float, latency: float) -> float:
    """2(N-1) alpha + 2(N-1)/N x S / B; 0 for one device."""
    if n <= 1:
        return 0.0
    return 2.0 * (n - 1) * latency + 2.0 * (n - 1) / n * nbytes / bandwidth


def tree_allreduce_s(nbytes: float, n: int, bandwidth: float, latency: float) -> float:
    """2 ceil(log2 N) alpha + 2(N-1)/N x S / B; 0 for one device."""
    if n <= 1:
        return 0.0
    return 2.0 * math.ceil(math.log2(n)) * latency + 2.0 * (n - 1) / n * nbytes / bandwidth


def hierarchical_allreduce_s(nbytes: float, n: int, per_node: int, intra: "Link", inter: "Link") -> float:
    """Reduce-scatter inside the node, all-reduce between nodes, all-gather inside (module doc)."""
    g = min(per_node, n)
    m = math.ceil(n / g)
    inside = ring_allreduce_s(nbytes, g, intra.bandwidth, intra.latency)
    between = ring_allreduce_s(nbytes, m, inter.bandwidth, inter.latency)
    return inside + between


# ------------------------------------------------------------------ networks as data
@dataclass(frozen=True)
class Link:
    name: str
    description: str
    bandwidth: float          # B/s per device and direction
    latency: float            # s per step
    energy_per_bit: float     # J/bit


@dataclass(frozen=True)
class Network:
    """What a data-parallel iteration communicates over (``network()`` builds one)."""

    name: str
    algorithm: str
    link: Link | None                       # ring / tree
    intra: Link | None = None               # hierarchical
    inter: Link | None = None
    devices_per_node: int = 1
    bucket_bytes: int = 25 * 2**20
    idle_power_fraction: float = 0.0
    params: tuple[Param, ...] = field(default=(), compare=False)

    def allreduce_s(self, nbytes: float, n: int) -> float:
        if self.algorithm == "hierarchical":
            return hierarchical_allreduce_s(nbytes, n, self.devices_per_node, self.intra, self.inter)
        f = ring_allreduce_s if self.algorithm == "ring" else tree_allreduce_s
        return f(nbytes, n, self.link.bandwidth, self.link.latency)

    def allreduce_j(self, nbytes: float, n: int) -> float:
        """Energy of one all-reduce over all devices: bits sent x energy per bit."""
        if n <= 1:
            return 0.0
        if self.algorithm == "hierarchical":
            g = min(self.devices_per_node, n)
            m = math.ceil(n / g)
            inside = n * 2.0 * (g - 1) / g * nbytes * 8 * self.intra.energy_per_bit
            between = m * 2.0 * (m - 1) / m * nbytes * 8 * self.inter.energy_per_bit   # a port per node
            return inside + between
        return n * 2.0 * (n - 1) / n * nbytes * 8 * self.link.energy_per_bit

    def describe(self) -> str:
        if self.algorithm == "hierarchical":
            return (f"{self.name}: hierarchical, {self.devices_per_node} per node on {_link_text(self.intra)}, "
                    f"nodes on {_link_text(self.inter)}")
        return f"{self.name}: {self.algorithm} all-reduce on {_link_text(self.link)}"

    def info(self) -> dict:
        def link(lk: Link | None):
            return None if lk is None else {"name": lk.name, "bandwidth_bytes_per_s": lk.bandwidth,
                                            "latency_s": lk.latency, "energy_per_bit_j": lk.energy_per_bit}
        return {"name": self.name, "algorithm": self.algorithm, "link": link(self.link), "intra": link(self.intra),
                "inter": link(self.inter), "devices_per_node": self.devices_per_node,
                "bucket_bytes": self.bucket_bytes, "idle_power_fraction": self.idle_power_fraction}


def _link_text(lk: Link) -> str:
    return f"{lk.name} ({lk.bandwidth * 8 / 1e9:.4g} Gbit/s, {lk.latency * 1e6:.3g} us per step)"


@lru_cache(maxsize=1)
def _data() -> dict:
    try:
        doc = tomllib.loads(read_input(DATA, "interconnect data file", error=TargetError).decode("utf-8"))
    except tomllib.TOMLDecodeError as e:  # pragma: no cover - a data bug
        raise TargetError(f"not valid TOML: {e}", where=str(DATA)) from None
    if doc.get("schema") != "nvmc.interconnects/1":  # pragma: no cover
        raise TargetError("expected schema = 'nvmc.interconnects/1'", where=str(DATA))
    return doc


def _number(entry, key: str, params: list[Param]) -> float:
    """A cited number ``{ value, source | assumed }``; a bare number is a data error."""
    if not isinstance(entry, dict) or "value" not in entry or not ({"source", "assumed"} & set(entry)):
        raise TargetError(f"{key}: expected {{ value = ..., source = ... }} or {{ value = ..., assumed = ... }}",
                          where=str(DATA))
    kind = "source" if "source" in entry else "assumed"
    params.append(Param(key, entry["value"], kind, entry[kind], DATA.name))
    return float(entry["value"])


def _link(name: str, params: list[Param]) -> Link:
    links = _data()["link"]
    if name not in links:
        raise TargetError(f"unknown link '{name}'{did_you_mean(name, links)}", where="interconnect",
                          hint=f"links: {', '.join(links)}")
    d = links[name]
    return Link(name, d.get("description", ""), _number(d["bandwidth_bytes_per_s"], f"{name}.bandwidth_bytes_per_s",
                                                        params),
                _number(d["latency_s"], f"{name}.latency_s", params),
                _number(d["energy_per_bit_j"], f"{name}.energy_per_bit_j", params))


def interconnects() -> dict[str, str]:
    """Preset name -> description (links and cloud systems)."""
    d = _data()
    return {**{k: v.get("description", "") for k, v in d["link"].items()},
            **{k: v.get("description", "") for k, v in d["system"].items()}}


NET_KEYS = ("bandwidth", "latency", "energy_per_bit", "algorithm", "bucket", "devices_per_node", "intra", "inter",
            "idle_power_fraction")


def network(interconnect: str | None, sets: Iterable[str] = ()) -> Network:
    """A preset (``--interconnect``) with ``net.KEY=VALUE`` overrides, or a link made of them.

    ``net.bandwidth`` and ``net.latency`` (with units: ``25Gbit/s``, ``5us``) replace the
    flat link's figures, or the inter-node network's of a hierarchical one."""
    d = _data()
    params: list[Param] = []
    defaults = d["defaults"]
    bucket = int(_number(defaults["bucket_bytes"], "defaults.bucket_bytes", params))
    idle = _number(defaults["idle_power_fraction"], "defaults.idle_power_fraction", params)
    algorithm, link, intra, inter, per_node = defaults.get("algorithm", "ring"), None, None, None, 1
    name = interconnect or "custom"
    if interconnect is not None:
        if interconnect in d["system"]:
            s = d["system"][interconnect]
            algorithm = "hierarchical"
            per_node = int(_number(s["devices_per_node"], f"{interconnect}.devices_per_node", params))
            intra, inter = _link(s["intra"], params), _link(s["inter"], params)
        elif interconnect in d["link"]:
            link = _link(interconnect, params)
        else:
            names = interconnects()
            raise TargetError(f"unknown interconnect '{interconnect}'{did_you_mean(interconnect, names)}",
                              where="--interconnect", hint=f"interconnects: {', '.join(names)} "
                                                           "(or --set net.bandwidth=25Gbit/s --set net.latency=5us)")
    over: dict[str, str] = {}
    for text in sets:
        key, sep, raw = text.partition("=")
        key, raw = key.strip(), raw.strip()
        short = key.removeprefix("net.")
        if not sep or not raw or short not in NET_KEYS:
            known = [f"net.{k}" for k in NET_KEYS]
            raise TargetError(f"unknown network setting '{key}'{did_you_mean(key, known)}" if sep and raw
                              else "expected net.KEY=VALUE, e.g. net.bandwidth=25Gbit/s", where=f"--set {text}",
                              hint=f"keys: {', '.join(known)}")
        over[short] = raw
        params.append(Param(f"net.{short}", raw, "--set", "set on the command line", "--set"))
    try:
        if "algorithm" in over:
            algorithm = over["algorithm"]
            if algorithm not in ALGORITHMS:
                raise ValueError(f"expected one of {', '.join(ALGORITHMS)}, got '{algorithm}'"
                                 f"{did_you_mean(algorithm, ALGORITHMS)}")
        if "bucket" in over:
            bucket = parse_capacity(over["bucket"])
        if "idle_power_fraction" in over:
            idle = float(over["idle_power_fraction"])
            if not 0 <= idle <= 1:
                raise ValueError(f"idle_power_fraction must be in [0, 1], got {idle}")
        if "devices_per_node" in over:
            per_node = int(over["devices_per_node"])
            if per_node < 1:
                raise ValueError(f"devices_per_node must be >= 1, got {per_node}")
        if "intra" in over:
            intra = _link(over["intra"], params)
        if "inter" in over:
            inter = _link(over["inter"], params)
        if algorithm == "hierarchical":
            if inter is None:
                inter, link = link, None
            inter = _override(inter, over, name)
            if intra is None or inter is None:
                raise ValueError("a hierarchical all-reduce needs net.intra=LINK (inside a node) and an inter-node "
                                 "network (--interconnect or net.inter=LINK or net.bandwidth/net.latency)")
            if "devices_per_node" not in over and per_node == 1:
                raise ValueError("a hierarchical all-reduce needs net.devices_per_node=G")
        else:
            if link is None and inter is not None:      # a system preset flattened to a ring or tree
                link, intra, inter = inter, None, None
            link = _override(link, over, name)
            if link is None:
                raise ValueError("no network: name --interconnect NAME or give net.bandwidth and net.latency")
    except ValueError as e:
        raise TargetError(str(e), where="--set net.*" if over else "--interconnect",
                          hint=f"interconnects: {', '.join(interconnects())}") from None
    return Network(name, algorithm, link, intra, inter, per_node, bucket, idle, tuple(params))


def _override(link: Link | None, over: dict[str, str], name: str) -> Link | None:
    if not {"bandwidth", "latency", "energy_per_bit"} & set(over):
        return link
    parsed = {"bandwidth": parse_bandwidth, "latency": parse_latency, "energy_per_bit": parse_energy_per_bit}
    values = {k: f(over[k]) for k, f in parsed.items() if k in over}     # unit errors first
    if link is None:
        missing = [k for k in ("bandwidth", "latency") if k not in over]
        if missing:
            raise ValueError(f"a custom network needs net.{' and net.'.join(missing)} "
                             "(e.g. net.bandwidth=25Gbit/s net.latency=5us)")
        link = Link(name, "set on the command line", 0.0, 0.0, 0.0)
    return replace(link, **values)


# ------------------------------------------------------------------ units written by people
_BANDWIDTH = {**prefixed("B/s", ("Bps",)), **prefixed("bit/s", ("b/s", "bps", "bit/s"), scale=1 / 8)}
_TIME = prefixed("s")
_ENERGY_PER_BIT = prefixed("J", ("J/bit",))


def parse_bandwidth(text: str) -> float:
    """'25Gbit/s' / '25Gb/s' / '25Gbps' -> 3.125e9 B/s; '12.5GB/s' -> 1.25e10 B/s."""
    value = parse_quantity(text, _BANDWIDTH, "bandwidth", "25Gbit/s, 100Gbps or 12.5GB/s")
    return _bounded(value, text, "bandwidth", 1.0, 1e18, "B/s")


def parse_latency(text: str) -> float:
    """'5us' -> 5e-6 s."""
    return _bounded(parse_quantity(text, _TIME, "latency", "5us, 0.5ms or 2e-6s"), text, "latency", 0.0, 1e3, "s",
                    zero=True)


def parse_energy_per_bit(text: str) -> float:
    """'100pJ' (per bit) -> 1e-10 J."""
    value = parse_quantity(text, _ENERGY_PER_BIT, "energy per bit", "100pJ")
    return _bounded(value, text, "energy per bit", 0.0, 1.0, "J", zero=True)


def _bounded(value: float, text: str, what: str, lo: float, hi: float, unit: str, *, zero: bool = False) -> float:
    """Refuse what no network has (and what would turn an estimate into inf or NaN)."""
    if not math.isfinite(value) or not (lo <= value <= hi) or (value == 0 and not zero) or 0 < value < 1e-30:
        raise ValueError(f"{what} '{text}' is out of range: expected {lo:g} .. {hi:g} {unit}")
    return value


# ------------------------------------------------------------------ bucketing and overlap
@dataclass(frozen=True)
class Overlap:
    """One iteration's gradient all-reduces against its backward pass (times from its start)."""

    bucket_bytes: np.ndarray      # bytes per bucket, in the order they are sent
    bucket_ready_s: np.ndarray    # when its last gradient is ready
    bucket_comm_s: np.ndarray     # its all-reduce time
    bucket_end_s: np.ndarray      # when its all-reduce ends (overlapped)
    backward_s: float

    @property
    def comm_s(self) -> float:
        """All-reduce time, one bucket after another (what it takes without overlap)."""
        return float(self.bucket_comm_s.sum())

    @property
    def exposed_s(self) -> float:
        """All-reduce time that runs past the end of the backward pass."""
        end = float(self.bucket_end_s[-1]) if self.bucket_end_s.size else 0.0
        return max(0.0, end - self.backward_s)

    @property
    def hidden_s(self) -> float:
        return max(0.0, self.comm_s - self.exposed_s)


def buckets(grad_bytes: np.ndarray, cap: int) -> np.ndarray:
    """Bucket index of each gradient, in the order they become ready (PyTorch DDP packs them
    in reverse graph order; a gradient starts a new bucket once the current one holds ``cap``)."""
    start = np.cumsum(grad_bytes) - grad_bytes
    return (start // cap).astype(np.int64)


def overlap(backward_s: np.ndarray, grad_bytes: np.ndarray, net: Network, n: int) -> Overlap:
    """All-reduce the gradients in buckets as the backward pass makes them (module doc).

    ``backward_s`` and ``grad_bytes`` are per node in graph order; the backward pass runs in
    reverse."""
    bwd = np.asarray(backward_s, dtype=np.float64)[::-1]
    gb = np.asarray(grad_bytes, dtype=np.float64)[::-1]
    done = np.cumsum(bwd)
    has = gb > 0
    if n <= 1 or not has.any():
        z = np.zeros(0)
        return Overlap(z, z, z, z, float(done[-1]) if done.size else 0.0)
    idx = buckets(gb[has], net.bucket_bytes)
    ids, inverse = np.unique(idx, return_inverse=True)
    size = np.bincount(inverse, weights=gb[has])
    ready = np.zeros(len(ids))
    np.maximum.at(ready, inverse, done[has])
    comm = np.array([net.allreduce_s(s, n) for s in size])
    end = np.zeros(len(ids))
    t = 0.0
    for k in range(len(ids)):           # one bucket on the network at a time
        t = max(t, ready[k]) + comm[k]
        end[k] = t
    return Overlap(size, ready, comm, end, float(done[-1]))
