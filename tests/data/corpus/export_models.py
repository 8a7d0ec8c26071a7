"""Recreate the committed corpus models of tests/test_corpus.py (tests/data/corpus/*.onnx).

RUNS ONLY IN A THROWAWAY VENV THAT HAS torch, torchvision, transformers and skl2onnx
(none of them is an nvmc dependency), e.g.:

    python3 -m venv /tmp/corpus-venv
    /tmp/corpus-venv/bin/pip install torch torchvision onnx onnxscript transformers skl2onnx scikit-learn
    /tmp/corpus-venv/bin/python tests/data/corpus/export_models.py

Made with torch 2.14.1, torchvision 0.29.1, transformers 5.23.0, skl2onnx 1.20.0.

Every model has seeded random weights (no download: nothing here loads a pretrained
checkpoint). To keep each file under ~300 KB, an initializer of more than
``STRIP_ABOVE`` elements is replaced by ``ConstantOfShape(shape)`` filled with a small
constant: the convention of the onnx wheel's zoo models, which nvmc folds into a
zero-copy broadcast view. The graph, its shapes and its MAC counts stay those of the
real architecture; only the weight values are lost (nvmc costs shapes, not values).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import onnx
from onnx import helper, numpy_helper

HERE = Path(__file__).resolve().parent
STRIP_ABOVE = 2048  # elements; smaller tensors (biases, norms, shape constants) stay real


def strip_weights(model: onnx.ModelProto, limit: int = STRIP_ABOVE) -> onnx.ModelProto:
    """Replace every float initializer of more than ``limit`` elements by ConstantOfShape."""
    g = model.graph
    keep, nodes = [], []
    for t in g.initializer:
        n = int(np.prod(t.dims)) if t.dims else 1
        if n <= limit or t.data_type not in (onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16):
            keep.append(t)
            continue
        array = numpy_helper.to_array(t)
        fill = float(np.sqrt(np.mean(np.square(array.astype(np.float64))))) or 0.01
        shape_name = f"{t.name}__shape"
        keep.append(numpy_helper.from_array(np.array(t.dims, dtype=np.int64), shape_name))
        nodes.append(helper.make_node("ConstantOfShape", [shape_name], [t.name], name=f"{t.name}__fill",
                                      value=helper.make_tensor("value", t.data_type, [1], [fill])))
    del g.initializer[:]
    g.initializer.extend(keep)
    rest = list(g.node)
    del g.node[:]
    g.node.extend(nodes + rest)
    inits = {t.name for t in keep}
    filled = {n.output[0] for n in nodes}
    listed = [i for i in g.input if i.name not in filled or i.name in inits]
    del g.input[:]
    g.input.extend(listed)
    return model


def save(model: onnx.ModelProto, name: str, doc: str) -> None:
    model = strip_weights(model)
    model.doc_string = doc
    model.producer_name = model.producer_name or "nvmc corpus"
    onnx.checker.check_model(model)
    onnx.shape_inference.infer_shapes(model, strict_mode=True)
    path = HERE / f"{name}.onnx"
    path.write_bytes(model.SerializeToString())
    print(f"{path.name:32s} {path.stat().st_size / 1024:7.1f} KB  {len(model.graph.node):4d} nodes  {doc}")


def torch_export(module, args, name: str, doc: str, *, dynamo: bool = False, input_names=None, opset: int = 17):
    import io

    import torch

    torch.manual_seed(0)
    module.eval()
    buffer = io.BytesIO()
    if dynamo:
        program = torch.onnx.export(module, args, dynamo=True, external_data=False, optimize=True,
                                    input_names=input_names, opset_version=max(opset, 18))
        model = program.model_proto
    else:
        torch.onnx.export(module, args, buffer, dynamo=False, input_names=input_names, opset_version=opset,
                          do_constant_folding=True)
        model = onnx.load_from_string(buffer.getvalue())
    save(model, name, doc)


def export_torch() -> None:
    import torch
    import torchvision
    from torch import nn

    torch.manual_seed(0)
    image = torch.randn(1, 3, 96, 96)
    torch_export(torchvision.models.mobilenet_v3_small(num_classes=100), (image,), "mobilenet_v3_small",
                 "torchvision mobilenet_v3_small, random weights, 1x3x96x96, 100 classes", input_names=["image"])
    torch_export(torchvision.models.resnet18(num_classes=100), (torch.randn(1, 3, 64, 64),), "resnet18",
                 "torchvision resnet18, random weights, 1x3x64x64, 100 classes", input_names=["image"])
    torch_export(torchvision.models.squeezenet1_1(num_classes=10), (torch.randn(1, 3, 64, 64),),
                 "squeezenet1_1_dynamo", "torchvision squeezenet1_1 through the dynamo exporter (opset 18)",
                 dynamo=True, input_names=["image"])
    vit = torchvision.models.VisionTransformer(image_size=32, patch_size=8, num_layers=2, num_heads=4,
                                               hidden_dim=64, mlp_dim=128, num_classes=10)
    torch_export(vit, (torch.randn(1, 3, 32, 32),), "vit_tiny",
                 "torchvision VisionTransformer: 32x32 image, 8x8 patches, 2 layers, d=64, 4 heads",
                 input_names=["image"])

    encoder = nn.TransformerEncoder(nn.TransformerEncoderLayer(64, 4, 128, batch_first=True, dropout=0.0), 2,
                                    enable_nested_tensor=False)
    torch_export(encoder, (torch.randn(1, 16, 64),), "transformer_encoder",
                 "nn.TransformerEncoder: 2 layers, d_model 64, 4 heads, ffn 128, 16 tokens", input_names=["tokens"])
    torch_export(encoder, (torch.randn(1, 16, 64),), "transformer_encoder_dynamo",
                 "the same nn.TransformerEncoder through the dynamo exporter (opset 18)", dynamo=True,
                 input_names=["tokens"])

    class LstmTagger(nn.Module):
        def __init__(self):
            super().__init__()
            self.lstm = nn.LSTM(32, 64, num_layers=2, batch_first=True)
            self.head = nn.Linear(64, 8)

        def forward(self, x):
            y, _ = self.lstm(x)
            return self.head(y)

    torch_export(LstmTagger(), (torch.randn(1, 10, 32),), "lstm_tagger",
                 "2-layer LSTM (32 -> 64) + Linear head over 10 steps", input_names=["frames"])

    class GruClassifier(nn.Module):
        def __init__(self):
            super().__init__()
            self.embed = nn.Embedding(1000, 32)
            self.gru = nn.GRU(32, 48, batch_first=True, bidirectional=True)
            self.head = nn.Linear(96, 4)

        def forward(self, tokens):
            y, _ = self.gru(self.embed(tokens))
            return self.head(y.mean(dim=1))

    torch_export(GruClassifier(), (torch.randint(0, 1000, (1, 12)),), "gru_text_classifier",
                 "Embedding(1000, 32) + bidirectional GRU(48) + mean pool + Linear: a text classifier",
                 input_names=["tokens"])

    class KeywordSpotter(nn.Module):  # 1-D conv audio model (DS-CNN style), MFCC frames in
        def __init__(self):
            super().__init__()
            layers, c = [], 10
            for out in (32, 32, 64, 64):
                layers += [nn.Conv1d(c, out, 3, padding=1), nn.BatchNorm1d(out), nn.ReLU(), nn.MaxPool1d(2)]
                c = out
            self.body = nn.Sequential(*layers)
            self.head = nn.Linear(64, 12)

        def forward(self, mfcc):
            return self.head(self.body(mfcc).amax(dim=2))

    torch_export(KeywordSpotter(), (torch.randn(1, 10, 49),), "kws_conv1d",
                 "keyword spotter: 4 x (Conv1d, BatchNorm1d, ReLU, MaxPool1d) over 10x49 MFCCs, 12 words",
                 input_names=["mfcc"])

    class TinyUNet(nn.Module):  # encoder-decoder with skip, upsampling and transposed conv
        def __init__(self):
            super().__init__()
            self.e1 = nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.ReLU())
            self.e2 = nn.Sequential(nn.Conv2d(16, 32, 3, stride=2, padding=1), nn.ReLU())
            self.mid = nn.Sequential(nn.Conv2d(32, 32, 3, padding=1), nn.ReLU())
            self.up = nn.ConvTranspose2d(32, 16, 2, stride=2)
            self.up2 = nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False)
            self.d1 = nn.Conv2d(32, 2, 1)

        def forward(self, x):
            a = self.e1(x)
            b = self.mid(self.e2(a))
            return self.d1(torch.cat([a, self.up(b)], dim=1)) + self.up2(self.d1(torch.cat([a, a], 1))[:, :, ::2, ::2])

    torch_export(TinyUNet(), (torch.randn(1, 3, 64, 64),), "tiny_unet",
                 "U-Net-like segmenter: Conv, strided Conv, ConvTranspose, bilinear Upsample, skip Concat",
                 input_names=["image"])


def export_bert() -> None:
    import torch
    from transformers import BertConfig, BertModel

    torch.manual_seed(0)
    config = BertConfig(vocab_size=1000, hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
                        intermediate_size=128, max_position_embeddings=64)
    model = BertModel(config, add_pooling_layer=True)

    class Encoder(torch.nn.Module):  # keyword arguments: BertModel.forward takes many
        def __init__(self):
            super().__init__()
            self.bert = model

        def forward(self, input_ids, attention_mask):
            return self.bert(input_ids=input_ids, attention_mask=attention_mask, return_dict=False)[0]

    ids = torch.randint(0, 1000, (1, 16))
    mask = torch.ones(1, 16, dtype=torch.int64)
    torch_export(Encoder(), (ids, mask), "bert_tiny",
                 "transformers BertModel (random): vocab 1000, 2 layers, hidden 64, 4 heads, 16 tokens",
                 input_names=["input_ids", "attention_mask"])


def export_sklearn() -> None:
    from skl2onnx import to_onnx
    from sklearn.datasets import load_iris
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    x, y = load_iris(return_X_y=True)
    x = x.astype(np.float32)
    mlp = make_pipeline(StandardScaler(), MLPClassifier((32, 16), max_iter=300, random_state=0)).fit(x, y)
    save(to_onnx(mlp, x[:1], options={"zipmap": False}, target_opset={"": 17, "ai.onnx.ml": 3}),
         "sklearn_mlp_iris", "scikit-learn StandardScaler + MLPClassifier(32, 16) on iris, through skl2onnx")
    forest = RandomForestClassifier(n_estimators=4, max_depth=3, random_state=0).fit(x, y)
    save(to_onnx(forest, x[:1], options={"zipmap": False}, target_opset={"": 17, "ai.onnx.ml": 3}),
         "sklearn_forest_iris", "scikit-learn RandomForestClassifier (4 trees, depth 3) on iris: ai.onnx.ml ops")
    logreg = LogisticRegression(max_iter=300).fit(x, y)
    save(to_onnx(logreg, x[:1], options={"zipmap": False}, target_opset={"": 17, "ai.onnx.ml": 3}),
         "sklearn_logreg_iris", "scikit-learn LogisticRegression on iris: ai.onnx.ml LinearClassifier")


if __name__ == "__main__":
    which = set(sys.argv[1:]) or {"torch", "bert", "sklearn"}
    if "torch" in which:
        export_torch()
    if "bert" in which:
        export_bert()
    if "sklearn" in which:
        export_sklearn()
