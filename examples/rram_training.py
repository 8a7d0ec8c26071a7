"""Training on an RRAM crossbar chip: backpropagation vs direct feedback alignment (DFA).

    python examples/rram_training.py

Paper 7 of shared/reference/seeds.md (DFA on neuromorphic compute-in-memory, DNN+NeuroSim)
reports DFA ~N-fold faster than backprop for N layers. nvmc does not take that number: it
costs one training step of ReLU MLPs of 2..16 layers (256 hidden units, batch 1) on
``rram-pim --set run.mode=train`` and shows where the speed-up comes from:

* BP sends the error back layer by layer: a transposed read of every layer's arrays, in
  sequence (the backward phase grows with N);
* DFA projects the output error to every layer through fixed random matrices held in their
  own arrays, all at once (the backward phase stays one projection).

The whole step also has the forward pass and the weight update (every weight's cells
written: 50 ns pulses, row by row), which both algorithms pay, so the step ratio grows
more slowly than the backward-phase ratio and saturates. Costs DFA pays for it: the
feedback arrays (area) and, per paper 7, accuracy (not modelled here).
"""

from __future__ import annotations



from nvmc.validate import nets  # the reference networks, defined once in the package

import nvmc  # noqa: E402


def study(depths=(2, 4, 8, 16), width=256, batch=1, target="rram-pim") -> list[dict]:
    rows = []
    for layers in depths:
        model = nets.mlp(layers, width=width, batch=batch)
        est = {a: nvmc.compile(model, target, sets=["run.mode=train", f"training.algorithm={a}"]).estimate
               for a in ("bp", "dfa")}
        bp, dfa = est["bp"].info["training"], est["dfa"].info["training"]
        rows.append({"layers": layers, "bp_step_s": bp["step_latency_s"], "dfa_step_s": dfa["step_latency_s"],
                     "bp_backward_s": bp["backward_s"], "dfa_backward_s": dfa["backward_s"],
                     "step_speedup": bp["step_latency_s"] / dfa["step_latency_s"],
                     "backward_speedup": bp["backward_s"] / dfa["backward_s"],
                     "bp_energy_j": est["bp"].totals["energy_j"], "dfa_energy_j": est["dfa"].totals["energy_j"],
                     "dfa_area_overhead": est["dfa"].totals["area_mm2"] / est["bp"].totals["area_mm2"] - 1,
                     "write_energy_share": est["bp"].energy_of("write") / est["bp"].totals["energy_j"],
                     "lifetime_steps": bp["lifetime_steps"]})
    return rows


def main() -> None:
    rows = study()
    print("One training step (batch 1) of an N-layer MLP on rram-pim: backprop (BP) vs direct feedback alignment")
    print(f"{'N':>3}{'BP step':>11}{'DFA step':>11}{'speed-up':>10}{'BP bwd':>11}{'DFA bwd':>11}{'bwd speed-up':>14}"
          f"{'DFA area +':>12}")
    for r in rows:
        print(f"{r['layers']:>3}{r['bp_step_s'] * 1e6:>9.2f}us{r['dfa_step_s'] * 1e6:>9.2f}us"
              f"{r['step_speedup']:>9.2f}x{r['bp_backward_s'] * 1e6:>9.2f}us{r['dfa_backward_s'] * 1e6:>9.3f}us"
              f"{r['backward_speedup']:>13.1f}x{100 * r['dfa_area_overhead']:>11.1f}%")
    last = rows[-1]
    print(f"\npaper 7 (its own figure): DFA ~N-fold faster for N layers.  nvmc: the backward phase is "
          f"{last['backward_speedup']:.0f}x faster at N = {last['layers']} and grows linearly with N (BP reads each "
          f"layer's arrays in turn, over 4 weight slices; DFA one 1-bit projection); the whole step is "
          f"{last['step_speedup']:.2f}x faster, because the forward pass and the weight writes "
          f"({100 * last['write_energy_share']:.0f} % of a step's energy) are the same for both.")
    print(f"endurance: every step writes every cell once; at 1e6 cycles (assumed) a chip lasts "
          f"{last['lifetime_steps']:.3g} steps")


if __name__ == "__main__":
    main()
