"""Training iterations on any family, alone or data-parallel over N devices.

One device's training step (per-device batch ``B``) comes from the family:

* a family with a training mode of its own (a ``run.mode`` choice with ``"train"`` in its
  schema, e.g. crossbar) costs the step itself; its ``info["training"]`` gives the forward,
  backward and update times, which are spread over the nodes in proportion to each node's
  share of the step;
* any other family gives its forward (inference) estimate, and the step is derived from it
  under stated assumptions (:func:`generic_step`): the backward pass of a node with MACs
  costs twice its forward pass (the input gradient and the weight gradient are each a
  product of the forward's size), a node without MACs once (its derivative is as many
  element operations); the first layer's input gradient is not skipped (an overestimate of
  at most one forward of that layer). The weight update (SGD: read the weight and its
  gradient, write the weight) moves 3 x the node's weight bytes, costed at the rate the
  node's forward run moves its bytes (weights, inputs and outputs): time and energy are the
  node's forward figures x 3 w / (w + in + out).

The family's estimate is for the graph's own batch b0; a per-device batch B scales forward
and backward by B / b0 (as B / b0 runs of the graph; run the model at batch B with
``--input-shape`` for batching effects); the update happens once per iteration.

Data-parallel iteration (N devices, :func:`data_parallel`): every device runs the step on
its B samples; the gradients (every node's weight bytes at the model's precision; dense
after pruning) are all-reduced over the network (:mod:`collective`) in
buckets that overlap with the backward pass; the update waits for the last all-reduce::

    overlapped:     T = F + max(backward, last all-reduce end) + U
    not overlapped: T = F + backward + sum of all-reduces + U

Energy per iteration: N x the step's energy + the bits sent x energy per bit + the devices'
idle power (``idle_power_fraction`` x their average compute power) while they wait on the
network. Samples per iteration N x B; scaling efficiency = one device's step time / T (weak
scaling: the per-device batch stays B).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .collective import Network, overlap
from .errors import TargetError
from .estimate import Estimate

ASSUMPTIONS = (
    "training (generic): backward = 2 x forward for nodes with MACs, 1 x for the others",
    "training (generic): SGD update moves 3 x weight bytes at the node's forward byte rate",
)


@dataclass
class Step:
    """One device's training step, per node in graph order (s, J)."""

    forward: np.ndarray
    backward: np.ndarray
    update: np.ndarray
    energy: dict[str, np.ndarray]
    latency: dict[str, np.ndarray]
    macs: np.ndarray
    source: str                 # "family" (its own training mode) or "generic"

    @property
    def time_s(self) -> float:
        return float(self.forward.sum() + self.backward.sum() + self.update.sum())

    @property
    def energy_j(self) -> float:
        return float(sum(v.sum() for v in self.energy.values()))


def train_sets(target) -> list[str]:
    """The ``--set`` that switches a family to its own training mode, if it has one."""
    from .registry import family_module

    run = family_module(target.family).SCHEMA.get("run", {})
    mode = run.get("mode")
    return ["run.mode=train"] if mode is not None and "train" in getattr(mode, "choices", ()) else []


def generic_step(est: Estimate, workload, batch: int) -> Step:
    """A training step derived from a forward estimate (module doc)."""
    c = workload.columns
    f = np.float64
    k = batch / max(est.batch, 1)
    fwd = np.nan_to_num(est.node_latency.astype(f)) * k
    factor = np.where(c["macs"].astype(f) > 0, 2.0, 1.0)
    w = c["weight_bytes"].astype(f)
    moved = w + c["input_bytes"].astype(f) + c["output_bytes"].astype(f)
    upd_ratio = np.where(w > 0, 3.0 * w / np.maximum(moved, 1.0), 0.0)
    scale = k * (1.0 + factor) + upd_ratio
    return Step(fwd, fwd * factor, est.node_latency * upd_ratio,
                {name: v * scale for name, v in est.energy.items()},
                {name: v * scale for name, v in est.latency.items()},
                est.macs.astype(f) * k * (1.0 + factor), "generic")


def family_step(est: Estimate, batch: int) -> Step:
    """The family's own training step, split into forward / backward / update (module doc)."""
    tr = est.info["training"]
    k = batch / max(est.batch, 1)
    lat = est.node_latency.astype(np.float64)
    total = float(lat.sum()) or 1.0
    f, b = tr["forward_s"], tr["backward_s"]
    u = max(0.0, tr.get("step_latency_s", total) - f - b)
    share = lat / total
    return Step(share * f * k, share * b * k, share * u, {name: v * k for name, v in est.energy.items()},
                {name: v * k for name, v in est.latency.items()}, est.macs.astype(np.float64) * 3.0 * k, "family")


def training_step(est: Estimate, workload, batch: int) -> Step:
    tr = est.info.get("training")
    if isinstance(tr, dict) and "forward_s" in tr:
        return family_step(est, batch)
    return generic_step(est, workload, batch)


def gradient_bytes(workload) -> np.ndarray:
    """Bytes of every node's weight gradients: its weights as stored, at the model's precision
    (smaller after quantisation or weight sharing). A pruned weight keeps its dense shape and
    a dense all-reduce sends its zeros too (as DDP does with a fixed mask); sparse all-reduces
    are not modelled."""
    return workload.columns["weight_bytes"].astype(np.float64)


def data_parallel(est: Estimate, workload, *, devices: int, batch: int | None = None,
                  net: Network | None = None, label: str | None = None) -> Estimate:
    """The data-parallel training iteration of ``est``'s model on ``devices`` devices (module doc).

    ``batch``: samples per device (default: the estimate's batch). Returns a new Estimate:
    latency = the iteration (communication overlapped), energy = the whole cluster's,
    batch = samples per iteration; ``info["distributed"]`` holds the breakdown."""
    if devices < 1:
        raise TargetError(f"need at least one device, got {devices}", where="--devices")
    if devices > 1 and net is None:
        raise TargetError(f"--devices {devices} needs a network", where="--interconnect",
                          hint="name --interconnect NAME or --set net.bandwidth=25Gbit/s --set net.latency=5us")
    batch = int(batch or est.batch)
    if batch < 1:
        raise TargetError(f"need at least one sample per device, got {batch}", where="--batch")
    if not est.ok:
        return est
    n = len(est.names)
    step = training_step(est, workload, batch)
    grads = gradient_bytes(workload)
    ov = overlap(step.backward, grads, net, devices) if net is not None else overlap(step.backward, grads, None, 1)
    fwd, bwd, upd = float(step.forward.sum()), float(step.backward.sum()), float(step.update.sum())
    compute = fwd + bwd + upd
    t_over = compute + ov.exposed_s
    t_serial = compute + ov.comm_s
    total_grad = float(grads.sum())
    comm_j = sum(net.allreduce_j(s, devices) for s in ov.bucket_bytes) if net is not None else 0.0
    power = step.energy_j / compute if compute > 0 else 0.0
    idle = net.idle_power_fraction if net is not None else 0.0
    idle_over = idle * power * ov.exposed_s * devices
    idle_serial = idle * power * ov.comm_s * devices
    e_compute = step.energy_j * devices
    share_g = grads / total_grad if total_grad > 0 else np.eye(1, n, n - 1)[0]

    energy = {k: v * devices for k, v in step.energy.items()}
    latency = dict(step.latency)
    if devices > 1:
        energy["network"] = share_g * comm_j
        energy["idle"] = share_g * idle_over
        latency["allreduce"] = share_g * ov.comm_s
    node_latency = step.forward + step.backward + step.update + share_g * ov.exposed_s
    samples = devices * batch
    dist = {
        "mode": "train", "parallel": "data", "devices": devices, "batch_per_device": batch,
        "samples_per_iteration": samples, "step": step.source,
        "network": net.info() if net is not None else None,
        "gradient_bytes": total_grad, "buckets": int(ov.bucket_bytes.size),
        "forward_s": fwd, "backward_s": bwd, "update_s": upd, "compute_s": compute,
        "comm_s": ov.comm_s, "comm_exposed_s": ov.exposed_s, "comm_overlapped_s": ov.hidden_s,
        "iteration_s": t_over, "iteration_s_no_overlap": t_serial,
        "comm_share": ov.exposed_s / t_over if t_over > 0 else 0.0,
        "comm_share_no_overlap": ov.comm_s / t_serial if t_serial > 0 else 0.0,
        "energy_j": e_compute + comm_j + idle_over, "energy_j_no_overlap": e_compute + comm_j + idle_serial,
        "energy_compute_j": e_compute, "energy_network_j": comm_j,
        "samples_per_s": samples / t_over if t_over > 0 else 0.0,
        "samples_per_s_no_overlap": samples / t_serial if t_serial > 0 else 0.0,
        "scaling_efficiency": compute / t_over if t_over > 0 else 1.0,
        "scaling_efficiency_no_overlap": compute / t_serial if t_serial > 0 else 1.0,
    }
    notes = list(est.notes)
    net_text = net.describe() if net is not None else "one device, no communication"
    notes.append(f"data-parallel training on {devices} device(s), batch {batch} per device ({net_text}): "
                 f"iteration {_si(t_over)}s overlapped = compute {_si(compute)}s (forward {_si(fwd)}s, backward "
                 f"{_si(bwd)}s, update {_si(upd)}s) + exposed communication {_si(ov.exposed_s)}s "
                 f"({_si(ov.hidden_s)}s hidden behind the backward pass); {_si(t_serial)}s without overlap")
    if devices > 1:
        notes.append(f"communication: {_si(total_grad)}B of gradients in {ov.bucket_bytes.size} bucket(s), "
                     f"all-reduce {_si(ov.comm_s)}s; share of the iteration {100 * dist['comm_share']:.1f}% "
                     f"overlapped, {100 * dist['comm_share_no_overlap']:.1f}% not; scaling efficiency "
                     f"{100 * dist['scaling_efficiency']:.1f}%; {dist['samples_per_s']:.4g} samples/s; energy "
                     f"{_si(dist['energy_j'])}J ({_si(dist['energy_j_no_overlap'])}J without overlap; network "
                     f"{_si(comm_j)}J)")
    if net is not None and devices > 1 and net.link is not None and net.link.energy_per_bit == 0:
        notes.append("network energy not modelled: set net.energy_per_bit=100pJ (or name an --interconnect)")
    assumptions = list(est.assumptions) + (list(ASSUMPTIONS) if step.source == "generic" else
                                           ["training: the family's own step, spread over nodes by their share"])
    info = dict(est.info)
    info["distributed"] = dist
    return Estimate(label or est.target, est.family, est.target_hash, list(est.names), list(est.ops),
                    step.macs * devices, node_latency, latency, energy, None if est.area is None else dict(est.area), {},
                    batch=samples, notes=notes, assumptions=assumptions, info=info, target_file=est.target_file,
                    pipeline=est.pipeline, scope=dict(est.scope), precision=dict(est.precision))


def _si(x: float) -> str:
    if abs(x) < 1e-15:
        return "0 "
    for scale, p in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k"), (1.0, ""), (1e-3, "m"), (1e-6, "u"),
                     (1e-9, "n")):
        if abs(x) >= scale:
            return f"{x / scale:.3g} {p}"
    return f"{x:.3g} "
