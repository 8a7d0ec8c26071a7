"""Synthetic DNN+NeuroSim V1.3 traces for VGG8 (CIFAR-10 layer shapes of NetWork_VGG8.csv),
the input of the peer run recorded in neurosim_v13_vgg8.out.

How the reference was made (not run by tests or CI: it needs the NeuroSim C++ sources):

    python3.11 -m venv /tmp/peer && /tmp/peer/bin/pip install --no-deps --ignore-requires-python \
        hwcomponents-neurosim==1.0.43      # ships DNN_NeuroSim_V1.3/Inference_pytorch/NeuroSIM/*.cpp
    cp -r .../hwcomponents_neurosim/DNN_NeuroSim_V1.3/Inference_pytorch/NeuroSIM . && (cd NeuroSIM && make)
    mkdir run && cd run && python neurosim_traces.py && bash cmd.sh > neurosim_v13_vgg8.out   # 140 s

NeuroSim's Param.cpp is left at its defaults (22 nm LSTP, 128x128 1T1R RRAM 6 kOhm / x150,
2-bit cells, 5-bit MLSA ADC per 8 columns, novel mapping, layer by layer, 1 GHz, g++ 12.2 -O3).
Traces as its hook.py writes them: weights ~ U(-1, 1) quantised to 8 bits (WAGE Q); inputs
ReLU(N(0, 0.25)) (layer 1: N(0, 0.5), signed), clipped to [-1, 1), 8-bit dec2bin.
"""
import numpy as np
rng = np.random.default_rng(0)
net = np.loadtxt("../NeuroSIM/NetWork_VGG8.csv", delimiter=",", dtype=int)
bits = 8
def dec2bin(x, n):
    y = x.copy(); out = []; delta = 1.0/(2**(n-1)); x_int = x/delta; base = 2**(n-1)
    y[x_int>=0] = 0; y[x_int<0] = 1; rest = x_int + base*y; out.append(y.copy())
    for i in range(n-1):
        base = base/2; y[rest>=base] = 1; y[rest<base] = 0; rest = rest - base*y; out.append(y.copy())
    return out
cmd = ["../NeuroSIM/main", "../NeuroSIM/NetWork_VGG8.csv", "8", "8"]
for i, (h, w, cin, kh, kw, cout, pool, stride) in enumerate(net):
    K = cin*kh*kw
    wq = np.round(rng.uniform(-1, 1, (K, cout)) * 128) / 128
    np.savetxt(f"weight{i}.csv", wq, delimiter=",", fmt="%10.5f")
    pixels = h*w if kh > 1 else 1   # padding 1 keeps HxW (VGG8 convs), FC: one vector
    x = rng.normal(0, 0.5 if i == 0 else 0.25, (K, pixels))
    if i > 0: x = np.maximum(x, 0)
    x = np.clip(x, -1, 1 - 2**-7)
    planes = dec2bin(x, bits)
    m = np.zeros((K, pixels*bits), dtype=np.int8)
    for b, p in enumerate(planes):
        m[:, b::bits] = p
    np.savetxt(f"input{i}.csv", m, delimiter=",", fmt="%d")
    cmd += [f"weight{i}.csv", f"input{i}.csv"]
open("cmd.sh", "w").write(" ".join(cmd) + "\n")
print(" ".join(cmd))
