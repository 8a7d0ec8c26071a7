"""The --html report without a browser: structure, escaping, CSP, figures, edge cases.

(tests/test_html_browser.py opens the same pages in headless Chromium.)
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import re
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import nvmc
from conftest import REPO, run_nvmc, zoo_path
from nvmc.report import build_report, parameters_of, render_html
from nvmc.report.html import MAX_LAYERS, latency_stack

TINY_CNN = REPO / "examples" / "models" / "tiny_cnn.onnx"
PAYLOADS = [
    "<script>alert(1)</script>",
    '<img src=x onerror="window.__nvmc_pwned=1;alert(2)">',
    '"><svg onload="window.__nvmc_pwned=2">',
    "</script><script>window.__nvmc_pwned=3;alert(3)</script>",
    "<a href=\"javascript:alert(4)\">x</a>",
]
EVIL_GRAPH_NAME = "<b>evil</b><script>window.__nvmc_pwned=9</script>"


def hostile_model(path: Path) -> Path:
    """A small CNN whose node names (and graph name, doc strings) are script-injection payloads."""
    rng = np.random.default_rng(0)
    w1 = numpy_helper.from_array(rng.standard_normal((8, 3, 3, 3)).astype(np.float32), "w1")
    w2 = numpy_helper.from_array(rng.standard_normal((10, 8)).astype(np.float32), "w2")
    nodes = [
        helper.make_node("Conv", ["x", "w1"], ["c"], PAYLOADS[0], pads=[1, 1, 1, 1], doc_string=PAYLOADS[1]),
        helper.make_node("Relu", ["c"], ["r"], PAYLOADS[1]),
        helper.make_node("GlobalAveragePool", ["r"], ["g"], PAYLOADS[2]),
        helper.make_node("Flatten", ["g"], ["f"], "flatten"),
        helper.make_node("Gemm", ["f", "w2"], ["y"], PAYLOADS[3], transB=1),
        helper.make_node("Softmax", ["y"], ["p"], PAYLOADS[4]),
    ]
    graph = helper.make_graph(nodes, EVIL_GRAPH_NAME,
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 16, 16])],
                              [helper.make_tensor_value_info("p", TensorProto.FLOAT, [1, 10])], [w1, w2],
                              doc_string=PAYLOADS[0])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], doc_string=PAYLOADS[3])
    onnx.save(model, path)
    return path


class Page(HTMLParser):
    """Every element with its attributes, and the text of every <script>."""

    def __init__(self, text: str):
        super().__init__(convert_charrefs=True)
        self.elements: list[tuple[str, dict]] = []
        self.scripts: list[tuple[dict, str]] = []
        self._in_script: dict | None = None
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        self.elements.append((tag, dict(attrs)))
        if tag == "script":
            self._in_script = dict(attrs)
            self.scripts.append((self._in_script, ""))

    def handle_data(self, data):
        if self._in_script is not None:
            attrs, text = self.scripts[-1]
            self.scripts[-1] = (attrs, text + data)

    def handle_endtag(self, tag):
        if tag == "script":
            self._in_script = None


@pytest.fixture(scope="module")
def hostile_page(tmp_path_factory) -> tuple[str, dict]:
    folder = tmp_path_factory.mktemp("hostile")
    model = hostile_model(folder / "evil.onnx")
    out = nvmc.compile(model, ["sram", "stt-mram", "sot-mram"])
    report = build_report(model, out.graph, out.estimates)
    text = render_html(report, {t.name: parameters_of(t) for t in out.targets})
    return text, report


def figures_of(page: str) -> list[dict]:
    data = next(text for attrs, text in Page(page).scripts if attrs.get("id") == "nvmc-data")
    return json.loads(data)["figures"]


def strings(value):
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from strings(v)


def test_page_has_only_its_own_scripts_and_a_strict_csp(hostile_page):
    text, _ = hostile_page
    page = Page(text)
    assert [a.get("type") for a, _ in page.scripts] == ["application/json", None, None]
    csp = next(a["content"] for tag, a in page.elements if tag == "meta" and a.get("http-equiv") ==
               "Content-Security-Policy")
    assert "default-src 'none'" in csp and "connect-src 'none'" in csp and "unsafe-inline'" not in \
        csp.split("script-src")[1].split(";")[0]
    for _, body in page.scripts[1:]:      # each script is allowed by its hash, nothing else is
        digest = base64.b64encode(hashlib.sha256(body.encode()).digest()).decode()
        assert f"'sha256-{digest}'" in csp
    assert not [(tag, k) for tag, attrs in page.elements for k in attrs if k.startswith("on")]
    links = [a.get("href") or a.get("src") for tag, a in page.elements if a.get("href") or a.get("src")]
    assert links and all(link.startswith("#") for link in links), links     # no external resource at all
    assert "plotly.js v" in page.scripts[1][1][:2000]         # plotly.js itself, inline


def test_model_strings_are_escaped_everywhere(hostile_page):
    text, report = hostile_page
    for payload in [*PAYLOADS, EVIL_GRAPH_NAME]:
        assert payload not in text                            # never raw, in markup or in the data block
    assert html.escape(PAYLOADS[0]) in text                  # shown as text in the tables
    assert report["layers"][0]["name"] == PAYLOADS[0]         # the JSON report keeps the real name
    for fig in figures_of(text):
        for s in strings(fig):
            assert not re.search(r"<\s*(script|img|svg|a)\b", s, re.I), s
    hover = [s for fig in figures_of(text) for s in strings(fig) if "alert(1)" in s]
    assert hover and all("&lt;script&gt;" in s for s in hover)   # plotly decodes the entities: shown as text


def test_figures_are_valid_plotly(hostile_page):
    go = pytest.importorskip("plotly.graph_objects")
    figures = figures_of(hostile_page[0])
    assert [f["id"] for f in figures] == ["fig-ratios", "fig-energy-j", "fig-layer-latency", "fig-layer-energy",
                                          "fig-utilization", "fig-area-mm2"]
    for f in figures:
        go.Figure(data=f["data"], layout=f["layout"])     # raises on an unknown or mistyped property
        assert f["data"]


def test_compare_ratios_and_parameters_in_page(hostile_page):
    text, report = hostile_page
    assert "stt-mram ÷ sram" in text and "sot-mram ÷ sram" in text
    assert "Parameters and their sources" in text and "assumed" in text and "GTX: vortez.net" in text
    ratio = report["ratios"]["sot-mram"]["energy_j"]
    fig = next(f for f in figures_of(text) if f["id"] == "fig-ratios")
    sot = next(t for t in fig["data"] if t["name"].startswith("sot-mram"))
    assert sot["customdata"][2] == pytest.approx(ratio)      # the energy bar is the JSON's ratio


def layer(latency, **parts):
    return {"name": "n", "op": "Conv", "macs": 1, "latency_s": latency, "energy_j": 1.0,
            "latency_by_component_s": parts, "energy_by_component_j": {"compute": 1.0}}


def test_latency_stack_modes():
    additive = [layer(3.0, compute=1.0, dram=2.0), layer(1.0, compute=0.5, dram=0.5)]
    assert latency_stack(additive, [0, 1]) == ("additive", {"compute": [1.0, 0.5], "dram": [2.0, 0.5]})
    bound = [layer(7.0, compute=2.0, dram=4.0, overhead=3.0), layer(6.0, compute=3.0, dram=1.0, overhead=3.0)]
    mode, stack = latency_stack(bound, [0, 1])
    assert mode == "bound" and stack == {"compute": [0.0, 3.0], "dram": [4.0, 0.0], "overhead": [3.0, 3.0]}
    assert [sum(v[i] for v in stack.values()) for i in range(2)] == [7.0, 6.0]   # the bars add up to the latency
    busy = [layer(5.0, compute=2.0, dram=4.0)]
    assert latency_stack(busy, [0])[0] == "busy"


def test_many_layers_are_capped_in_graph_order():
    n = 3 * MAX_LAYERS
    rng = np.random.default_rng(0)
    lat = rng.uniform(1e-6, 1e-5, n)
    layers = [dict(layer(float(t), compute=float(t)), name=f"L{i}") for i, t in enumerate(lat)]
    est = {"target": {"name": "t", "family": "f", "file": "", "hash": "0" * 64}, "ok": True, "reason": "",
           "batch": 1, "pipeline": "", "totals": {"latency_s": float(lat.sum()), "energy_j": float(n)},
           "breakdown": {"energy_j": {"compute": float(n)}, "latency_s": {"compute": float(lat.sum())},
                         "area_mm2": {}, "events": {}},
           "layers": layers, "notes": [], "assumptions": []}
    report = {"schema": "nvmc.report/1", "model": {"path": "m.onnx", "name": "m", "nodes": n, "batch": 1}, **est}
    text = render_html(report, {})
    fig = next(f for f in figures_of(text) if f["id"] == "fig-layer-latency")
    drawn = fig["data"][0]["customdata"]
    assert len(drawn) == MAX_LAYERS and f"The {MAX_LAYERS} of {n} layers" in text
    idx = [int(s.split()[0][1:]) for s in drawn]
    assert idx == sorted(idx)                                               # graph order
    assert set(idx) == set(np.argsort(-lat, kind="stable")[:MAX_LAYERS].tolist())   # the costliest


def test_a_target_that_does_not_fit_still_renders():
    sets = ["llc.iso=area", "llc.capacity=30MiB"]
    out = nvmc.compile(zoo_path("light_squeezenet"), ["sram"])
    bad = nvmc.compile(out.graph, ["stt-mram"], sets=sets)
    estimates = [out.estimate, bad.estimate]
    assert not bad.estimate.ok
    report = build_report("squeezenet.onnx", out.graph, estimates)
    params = {"sram": parameters_of(out.targets[0]), "stt-mram": parameters_of(bad.targets[0])}
    assert params["stt-mram"][0]["kind"] == "error"
    text = render_html(report, params)
    assert "stt-mram does not fit" in text and html.escape(bad.estimate.reason) in text


def test_cli_html_flag(tmp_path):
    out = tmp_path / "r.html"
    proc = run_nvmc("compile", str(TINY_CNN), "-t", "sram", "--compare", "sot-mram", "--html", str(out), check=True)
    assert f"wrote {out}" in proc.stderr and "energy by component" in proc.stdout
    text = out.read_text()
    assert text.startswith("<!DOCTYPE html>") and "tiny_cnn.onnx on sram, sot-mram" in text
    assert not list(tmp_path.glob(".*.tmp"))


def test_cli_html_to_stdout_is_refused(capsys):
    from nvmc.cli import main

    with pytest.raises(SystemExit) as info:
        main(["compile", str(TINY_CNN), "-t", "sram", "--html", "-"])
    assert info.value.code == 2 and "--html writes a file, not stdout" in capsys.readouterr().err


def test_python_api_writes_the_same_page(tmp_path):
    out = nvmc.compile(TINY_CNN, ["sram", "stt-mram"])
    path = out.write_html(tmp_path / "api.html")
    text = path.read_text()
    assert "tiny_cnn.onnx on sram, stt-mram" in text and "Parameters and their sources" in text
    assert out.to_dict()["model"]["path"] == str(TINY_CNN)
