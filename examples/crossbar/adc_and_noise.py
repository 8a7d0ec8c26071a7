"""ADC resolution and device variation on an RRAM crossbar chip: what they cost and what
they do to the outputs.

    python examples/crossbar/adc_and_noise.py

1. Cost: ResNet-18 (224x224) and VGG8 (CIFAR-10) on ``rram-pim`` with 4..10-bit ADCs
   (NeuroSim's SAR model and ISAAC's ADC table): energy, latency, area and the ADC's share.
   "cells" is the array's share: with NeuroSim's SAR a column's current flows while that
   column is converted; with ISAAC's scheme every column conducts for the whole 10 ns read
   pulse (sample-and-hold), which on these 100 kOhm cells costs more than the ADCs.
2. Numbers: the ``crossbar-noise`` pass writes variation, DAC and ADC precision into the
   model and onnxruntime measures agreement with the clean model: tiny_cnn (random inputs)
   and, when the compression examples' digits CNN is present, accuracy on its 360 held-out
   digits (real labels).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent

from nvmc.validate import nets  # the reference networks, defined once in the package

import nvmc  # noqa: E402
from nvmc.harness import compare  # noqa: E402
from nvmc.passes import run_pipeline  # noqa: E402

MODELS = HERE.parent / "models"
DIGITS = HERE.parent / "compression"


def adc_cost(model, label: str) -> None:
    print(f"\n{label}: ADC resolution sweep on rram-pim (32 nm, 2-bit cells, 8 columns per ADC)")
    print(f"{'ADC':>14}{'energy':>11}{'ADC energy':>12}{'cells':>9}{'latency':>11}{'area':>10}{'ADC area':>10}")
    for adc in ("neurosim-sar", "isaac"):
        for bits in (4, 5, 6, 8, 10):
            est = nvmc.compile(model, "rram-pim", sets=[f"periphery.adc={adc}", f"periphery.adc_bits={bits}"]).estimate
            t = est.totals
            e_adc = est.energy_of("adc") / t["energy_j"]
            e_col = est.energy_of("crossbar") / t["energy_j"]
            print(f"{adc + ' ' + str(bits) + 'b':>14}{t['energy_j'] * 1e6:>8.1f} uJ{100 * e_adc:>11.1f}%"
                  f"{100 * e_col:>8.1f}%{t['latency_s'] * 1e3:>8.2f} ms{t['area_mm2']:>7.1f} mm2"
                  f"{100 * est.info['adc_area_share']:>9.1f}%")


def agreement(graph, options: str, inputs=None, labels=None):
    g = graph.copy()
    run_pipeline(g, f"crossbar-noise{{{options}}}")
    if inputs is None:
        r = compare(graph, g, samples=16, seed=1)
        return r.sqnr_db, r.cosine, r.top1_agreement
    from nvmc.frontend.runtime import Session  # nvmc's onnxruntime session

    ref, out = Session(graph, "clean model"), Session(g, "noisy model")
    a = ref.run({ref.inputs[0].name: inputs})[ref.output_names[0]]
    b = out.run({out.inputs[0].name: inputs})[out.output_names[0]]
    return float(np.mean(np.argmax(a, 1) == labels)), float(np.mean(np.argmax(b, 1) == labels)), None


def noise_study() -> None:
    tiny = nvmc.load(MODELS / "tiny_cnn.onnx")
    print("\ntiny_cnn: agreement with the clean model (16 seeded random inputs), 8-bit weights/inputs, 2-bit cells")
    print(f"{'setting':<34}{'SQNR dB':>9}{'cosine':>9}{'top-1 agr.':>11}")
    for opts in ("sigma=0,adc-bits=0", "sigma=0,adc-bits=8", "sigma=0,adc-bits=6", "sigma=0,adc-bits=5",
                 "sigma=0,adc-bits=4", "sigma=0.02", "sigma=0.05", "sigma=0.1", "sigma=0.2",
                 "sigma=0.1,on-off=10", "sigma=0.1,on-off=1000"):
        s, c, t1 = agreement(tiny, opts + ",samples=2,measure=false")
        print(f"{opts:<34}{s:>9.1f}{c:>9.4f}{100 * (t1 or 0):>10.1f}%")
    model = DIGITS / "digits_cnn.onnx"
    if not model.exists():
        print("\n(digits_cnn.onnx not found: run examples/compression/train_digits.py for the accuracy study)")
        return
    data = np.load(DIGITS / "digits.npz")
    x = (data["x_test"].astype(np.float32) / 16.0)[:, None]
    y = data["y_test"]
    g = nvmc.load(model, input_shapes={"image": list(x.shape)})
    print(f"\ndigits CNN: accuracy on {len(y)} held-out digits (real labels)")
    print(f"{'setting':<34}{'clean':>8}{'crossbar':>10}")
    for opts in ("sigma=0,adc-bits=5", "sigma=0,adc-bits=4", "sigma=0.05", "sigma=0.1", "sigma=0.2", "sigma=0.4",
                 "sigma=0.1,adc-bits=3", "sigma=0.1,on-off=10"):
        clean, noisy, _ = agreement(g, opts + ",samples=1,measure=false", x, y)
        print(f"{opts:<34}{100 * clean:>7.1f}%{100 * noisy:>9.1f}%")


if __name__ == "__main__":
    adc_cost(nets.resnet18(), "ResNet-18 (ImageNet, 224x224)")
    adc_cost(nets.vgg8(), "VGG8 (CIFAR-10)")
    noise_study()
