"""The --html report in a real browser: headless Chromium (Debian package `chromium`).

The page must load with no console error, no uncaught exception and no network request;
its plots must render (SVG bars in every plot, a non-blank screenshot); and a model whose
node names are script-injection payloads must not run any of them (no dialog, no marker
set by a payload, no script element but the page's own three).

Chromium is driven through the DevTools protocol over a websocket on 127.0.0.1, with a
small client below (stdlib only). The first test checks that the checker itself catches
a console error, an exception, an alert and a network request on a deliberately bad page,
so a green run means something.

Marked `browser`: it runs by default and in CI (`.ci/run` installs Chromium); without a
Chromium it skips with the reason. Set NVMC_REQUIRE_BROWSER=1 to make a missing Chromium
a failure instead.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import socket
import struct
import subprocess
import tempfile
import time
import zlib
from pathlib import Path

import numpy as np
import pytest

from conftest import REPO, run_nvmc
from test_html_report import hostile_model

pytestmark = pytest.mark.browser

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--disable-default-apps", "--disable-extensions", "--mute-audio", "--hide-scrollbars",
                  "--remote-debugging-port=0", "--remote-allow-origins=*"]


def find_chromium() -> str | None:
    for name in (os.environ.get("NVMC_CHROMIUM"), "chromium", "chromium-browser", "google-chrome", "chrome"):
        if name and shutil.which(name):
            return shutil.which(name)
    return None


@pytest.fixture(scope="module")
def chromium() -> str:
    path = find_chromium()
    if path is None:
        message = ("headless Chromium not found: install the Debian package 'chromium' "
                   "(apt-get install chromium; .ci/run does it) or set NVMC_CHROMIUM to a Chromium binary")
        if os.environ.get("NVMC_REQUIRE_BROWSER") == "1":
            pytest.fail(message)
        pytest.skip(message)
    return path


# ------------------------------------------------------------------ a tiny DevTools client
class DevTools:
    """One websocket to the browser; page commands go to a flat session (Target.attachToTarget)."""

    def __init__(self, port: int, path: str, timeout: float = 30.0):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall((f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
                           f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
                           ).encode())
        self.buf = b""
        while b"\r\n\r\n" not in self.buf:
            chunk = self.sock.recv(4096)
            if not chunk:
                raise ConnectionError("DevTools closed the connection during the handshake")
            self.buf += chunk
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        if b" 101 " not in head.split(b"\r\n")[0]:
            raise ConnectionError(f"DevTools refused the websocket: {head[:200]!r}")
        self.next_id = 0
        self.events: list[dict] = []

    def _read(self, n: int) -> bytes:
        while len(self.buf) < n:
            chunk = self.sock.recv(1 << 20)
            if not chunk:
                raise ConnectionError("DevTools closed the connection")
            self.buf += chunk
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def _send_frame(self, opcode: int, payload: bytes) -> None:
        mask = os.urandom(4)
        n = len(payload)
        if n < 126:
            header = struct.pack("!BB", 0x80 | opcode, 0x80 | n)
        elif n < 1 << 16:
            header = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, n)
        else:
            header = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, n)
        masked = (np.frombuffer(payload, np.uint8) ^ np.resize(np.frombuffer(mask, np.uint8), n)).tobytes()
        self.sock.sendall(header + mask + masked)

    def _message(self) -> dict:
        parts = []
        while True:
            b0, b1 = self._read(2)
            n = b1 & 0x7F
            if n == 126:
                n = struct.unpack("!H", self._read(2))[0]
            elif n == 127:
                n = struct.unpack("!Q", self._read(8))[0]
            mask = self._read(4) if b1 & 0x80 else None
            data = self._read(n)
            if mask:
                data = (np.frombuffer(data, np.uint8) ^ np.resize(np.frombuffer(mask, np.uint8), n)).tobytes()
            opcode = b0 & 0x0F
            if opcode == 0x9:            # ping
                self._send_frame(0xA, data)
                continue
            if opcode == 0x8:
                raise ConnectionError("DevTools closed the websocket")
            parts.append(data)
            if b0 & 0x80:                # FIN
                return json.loads(b"".join(parts))

    def call(self, method: str, params: dict | None = None, session: str | None = None) -> dict:
        self.next_id += 1
        msg = {"id": self.next_id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        self._send_frame(0x1, json.dumps(msg).encode())
        while True:
            reply = self._message()
            if reply.get("id") == self.next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            self._event(reply, session)

    def _event(self, event: dict, session: str | None) -> None:
        self.events.append(event)
        if event.get("method") == "Page.javascriptDialogOpening":  # a dialog blocks the page: record, dismiss
            self._send_frame(0x1, json.dumps({"id": 0, "method": "Page.handleJavaScriptDialog",
                                              "params": {"accept": True}, "sessionId": event.get("sessionId")}
                                             ).encode())

    def wait_for(self, method: str, timeout: float, session: str | None = None, since: int = 0) -> bool:
        """Wait for an event ``method`` (one already received after index ``since`` counts)."""
        end = time.monotonic() + timeout
        if any(e.get("method") == method for e in self.events[since:]):
            return True
        while time.monotonic() < end:
            self.sock.settimeout(max(0.1, end - time.monotonic()))
            try:
                event = self._message()
            except socket.timeout:
                break
            self._event(event, session)
            if event.get("method") == method:
                return True
        return False


class Page:
    """A headless Chromium with one page, closed on exit."""

    def __init__(self, chromium: str, width: int = 1280, height: int = 900):
        self.home = tempfile.mkdtemp(prefix="nvmc-chromium-")
        self.proc = subprocess.Popen([chromium, *CHROMIUM_FLAGS, f"--user-data-dir={self.home}",
                                      f"--window-size={width},{height}", "about:blank"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        port_file = Path(self.home) / "DevToolsActivePort"
        end = time.monotonic() + 60
        while not (port_file.exists() and len(port_file.read_text().splitlines()) >= 2):
            if self.proc.poll() is not None or time.monotonic() > end:
                self.close()
                raise RuntimeError(f"Chromium did not start (exit {self.proc.returncode})")
            time.sleep(0.05)
        port, path = port_file.read_text().splitlines()[:2]
        self.cdp = DevTools(int(port), path)
        target = self.cdp.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        self.session = self.cdp.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        for domain in ("Page", "Runtime", "Log", "Network"):
            self.call(f"{domain}.enable")
        self.call("Emulation.setDeviceMetricsOverride",
                  {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False})

    def call(self, method: str, params: dict | None = None) -> dict:
        return self.cdp.call(method, params, self.session)

    def open(self, url: str, timeout: float = 60) -> None:
        since = len(self.cdp.events)
        self.call("Page.navigate", {"url": url})
        assert self.cdp.wait_for("Page.loadEventFired", timeout, self.session, since), f"{url} did not load"

    def eval(self, expression: str):
        result = self.call("Runtime.evaluate", {"expression": expression, "returnByValue": True})
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def wait_for_plots(self, timeout: float = 60) -> str:
        """The page's plot state once its script has drawn them (``data-plots-ready``: how many;
        ``data-plots-error``: why not), or "" after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            state = self.eval("document.body.getAttribute('data-plots-ready') || "
                              "document.body.getAttribute('data-plots-error') || ''")
            if state or time.monotonic() > deadline:
                return state
            self.settle(0.1)

    def settle(self, seconds: float) -> None:
        self.cdp.wait_for("(none)", seconds, self.session)

    def problems(self, page_url: str) -> list[str]:
        """Console errors, uncaught exceptions, dialogs and network requests seen so far."""
        out = []
        for e in self.cdp.events:
            method, p = e.get("method"), e.get("params", {})
            if method == "Runtime.exceptionThrown":
                details = p.get("exceptionDetails", {})
                out.append(f"exception: {details.get('exception', {}).get('description') or details.get('text')}")
            elif method == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
                out.append("console.error: " + " ".join(str(a.get("value", a.get("description")))
                                                         for a in p.get("args", [])))
            elif method == "Log.entryAdded" and p.get("entry", {}).get("level") == "error":
                out.append(f"log error: {p['entry'].get('text')} ({p['entry'].get('url', '')})")
            elif method == "Page.javascriptDialogOpening":
                out.append(f"dialog: {p.get('type')} {p.get('message')!r}")
            elif method == "Network.requestWillBeSent":
                url = p.get("request", {}).get("url", "")
                if url != page_url and not url.startswith(("data:", "blob:", "about:")):
                    out.append(f"network request: {url}")
        return out

    def screenshot(self, selector: str) -> bytes:
        box = self.eval(f"(() => {{ const r = document.querySelector({json.dumps(selector)}).getBoundingClientRect();"
                        " return [r.left + window.scrollX, r.top + window.scrollY, r.width, r.height]; })()")
        clip = dict(zip(("x", "y", "width", "height"), box), scale=1)
        data = self.call("Page.captureScreenshot", {"format": "png", "clip": clip, "captureBeyondViewport": True})
        return base64.b64decode(data["data"])

    def close(self) -> None:
        try:
            if getattr(self, "cdp", None):
                self.cdp.sock.close()
        finally:
            if self.proc.poll() is None:
                self.proc.terminate()
                try:
                    self.proc.wait(10)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait(10)
            shutil.rmtree(self.home, ignore_errors=True)

    def __enter__(self) -> "Page":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


# ------------------------------------------------------------------ a small PNG decoder
def decode_png(data: bytes) -> np.ndarray:
    """8-bit RGB/RGBA PNG -> uint8 array (height, width, channels); stdlib zlib + struct, numpy."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat, header = 8, [], None
    while pos < len(data):
        length, kind = struct.unpack("!I4s", data[pos:pos + 8])
        chunk = data[pos + 8:pos + 8 + length]
        pos += 12 + length
        if kind == b"IHDR":
            header = struct.unpack("!IIBBBBB", chunk)
        elif kind == b"IDAT":
            idat.append(chunk)
        elif kind == b"IEND":
            break
    width, height, depth, color, _, _, interlace = header
    assert depth == 8 and color in (2, 6) and interlace == 0, f"unsupported PNG {header}"
    bpp = 4 if color == 6 else 3
    raw = np.frombuffer(zlib.decompress(b"".join(idat)), np.uint8).reshape(height, 1 + width * bpp)
    out = np.zeros((height, width * bpp), np.uint8)
    prior = np.zeros(width * bpp, np.int32)
    for y in range(height):
        kind, line = raw[y, 0], raw[y, 1:].astype(np.int32)
        if kind == 0:
            row = line
        elif kind == 1:     # Sub: a running sum per channel
            row = np.cumsum(line.reshape(width, bpp), axis=0).reshape(-1) % 256
        elif kind == 2:     # Up
            row = (line + prior) % 256
        else:               # Average, Paeth: sequential along the row
            row = np.zeros_like(line)
            lst, pri, res = line.tolist(), prior.tolist(), [0] * len(line)
            for x in range(len(lst)):
                a = res[x - bpp] if x >= bpp else 0
                b = pri[x]
                if kind == 3:
                    res[x] = (lst[x] + (a + b) // 2) & 0xFF
                else:
                    c = pri[x - bpp] if x >= bpp else 0
                    p = a + b - c
                    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                    pred = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
                    res[x] = (lst[x] + pred) & 0xFF
            row = np.array(res, np.int32)
        out[y] = row
        prior = row.astype(np.int32)
    return out.reshape(height, width, bpp)


def test_png_decoder_roundtrip():
    """The decoder against a PNG written with every filter type by hand (zlib + struct)."""
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, size=(5, 4, 3), dtype=np.uint8)
    rows = []
    prev = np.zeros(12, np.int32)
    for y in range(5):
        kind = y % 5
        cur = img[y].reshape(-1).astype(np.int32)
        left = np.concatenate([np.zeros(3, np.int32), cur[:-3]])
        upleft = np.concatenate([np.zeros(3, np.int32), prev[:-3]])
        if kind == 0:
            f = cur
        elif kind == 1:
            f = cur - left
        elif kind == 2:
            f = cur - prev
        elif kind == 3:
            f = cur - (left + prev) // 2
        else:
            p = left + prev - upleft
            pa, pb, pc = abs(p - left), abs(p - prev), abs(p - upleft)
            f = cur - np.where((pa <= pb) & (pa <= pc), left, np.where(pb <= pc, prev, upleft))
        rows.append(bytes([kind]) + (f % 256).astype(np.uint8).tobytes())
        prev = cur

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack("!I", len(body)) + kind + body + struct.pack("!I", zlib.crc32(kind + body))

    png = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack("!IIBBBBB", 4, 5, 8, 2, 0, 0, 0))
           + chunk(b"IDAT", zlib.compress(b"".join(rows))) + chunk(b"IEND", b""))
    assert (decode_png(png) == img).all()


# ------------------------------------------------------------------ the tests
def test_the_checker_catches_a_bad_page(chromium, tmp_path):
    """Positive control: console.error, an exception, an alert and a network request are all seen."""
    bad = tmp_path / "bad.html"
    bad.write_text('<!DOCTYPE html><html><body><p>bad</p><img src="http://127.0.0.1:9/x.png">'
                   '<script>console.error("boom"); alert("hi"); document.body.dataset.after = "1";'
                   ' throw new Error("uncaught-thing");</script></body></html>')
    with Page(chromium) as page:
        page.open(bad.as_uri())
        page.settle(0.5)
        assert page.eval("document.body.dataset.after") == "1"   # the dialog was dismissed, the page went on
        found = "\n".join(page.problems(bad.as_uri()))
    for expected in ("console.error: boom", "uncaught-thing", "dialog: alert 'hi'", "network request: http://127"):
        assert expected in found, found


def test_html_report_in_chromium(chromium, tmp_path):
    model = hostile_model(tmp_path / "evil.onnx")
    report = tmp_path / "report.html"
    proc = run_nvmc("compile", str(model), "--target", "sram", "--compare", "stt-mram,sot-mram",
                    "--html", str(report), "--budget", "latency=1s", check=True)
    assert report.exists(), proc.stderr
    url = report.as_uri()
    with Page(chromium) as page:
        page.open(url)
        state = page.wait_for_plots()
        plots = page.eval("Array.from(document.querySelectorAll('div.plot')).map("
                          "d => [d.id, d.querySelectorAll('svg.main-svg').length, "
                          "d.querySelectorAll('.trace.bars .point path').length])")
        pwned = page.eval("window.__nvmc_pwned === undefined ? null : window.__nvmc_pwned")
        scripts = page.eval("Array.from(document.scripts).map(s => [s.type, s.textContent.length])")
        handlers = page.eval("Array.from(document.querySelectorAll('*')).flatMap(e => "
                             "Array.from(e.attributes).filter(a => a.name.startsWith('on')).map(a => a.name))")
        text = page.eval("document.body.innerText")
        problems = page.problems(url)
        shot = decode_png(page.screenshot("#fig-layer-energy"))
        ratio_shot = decode_png(page.screenshot("#fig-ratios"))
    (tmp_path / "shown.txt").write_text(text)

    assert state == "6", f"plots did not all render: {state!r}"
    assert problems == [], "\n".join(problems)
    assert [p[0] for p in plots] == ["fig-ratios", "fig-energy-j", "fig-layer-latency", "fig-layer-energy",
                                     "fig-utilization", "fig-area-mm2"]
    for fig_id, svgs, bars in plots:
        assert svgs >= 1 and bars >= 1, (fig_id, svgs, bars)
    # no payload ran, none became markup, and each is shown as the literal text it is
    assert pwned is None
    assert scripts == [["application/json", scripts[0][1]], ["", scripts[1][1]], ["", scripts[2][1]]]
    assert handlers == []
    assert "<script>alert(1)</script>" in text and "<b>evil</b>" in text
    # the plots drew something: many colours, and the stacked bars' colours among them
    for img in (shot, ratio_shot):
        rgb = img[..., :3].reshape(-1, 3)
        assert img.shape[0] > 200 and img.shape[1] > 400
        assert len(np.unique(rgb, axis=0)) > 20
        assert (rgb.min(axis=1) < 200).mean() > 0.01        # not (nearly) all white
    colours = {tuple(c) for c in np.unique(shot[..., :3].reshape(-1, 3), axis=0)}
    assert (0xFF, 0x66, 0x92) in colours or (0x63, 0x6E, 0xFA) in colours   # palette colours of the bars


def test_sweep_page_tells_targets_apart_without_hovering(chromium, tmp_path):
    """The sweep's Pareto page (nvmc results --html): a legend names every target and pipeline,
    each target's dots are drawn in its own colour, the log ticks carry units, and a point
    that breaks the accuracy gate is listed as rejected (issue 24)."""
    from nvmc.sweep.export import _styles

    targets = ["sram", "sot-mram", "systolic-sot-7nm", "rram-pim"]
    spec = tmp_path / "s.toml"
    spec.write_text('schema = "nvmc.sweep/1"\nname = "page"\n'
                    f'models = ["{(REPO / "examples" / "models" / "tiny_cnn.onnx").as_posix()}"]\n'
                    f"targets = {json.dumps(targets)}\n"
                    'pipelines = ["", "quantize{bits=8}", "prune{sparsity=0.9}"]\n[accuracy]\nmin_cosine = 0.99\n')
    db = tmp_path / "s.sqlite"
    assert run_nvmc("sweep", str(spec), "--db", str(db), "--workers", "0", "-q").returncode == 4
    page_path = tmp_path / "pareto.html"
    assert run_nvmc("results", str(db), "--min-cosine", "0.99", "--html", str(page_path)).returncode == 4
    url = page_path.as_uri()
    with Page(chromium) as page:
        page.open(url)
        page.wait_for_plots()
        legend = page.eval("Array.from(document.querySelectorAll('#fig-pareto-0 .legendtext')).map(t => t.textContent)")
        ticks = page.eval("Array.from(document.querySelectorAll('#fig-pareto-0 .xtick text, #fig-pareto-0 .ytick "
                          "text')).map(t => t.textContent)")
        text = page.eval("document.body.innerText")
        problems = page.problems(url)
        shot = decode_png(page.screenshot("#fig-pareto-0"))
    assert problems == [], "\n".join(problems)
    assert set(targets) <= set(legend), legend
    assert {"pipeline: (none)", "pipeline: quantize{bits=8}", "Pareto-optimal (ringed)"} <= set(legend), legend
    assert "pipeline: prune{sparsity=0.9}" not in legend      # rejected: not drawn among the finished points
    assert ticks and all(t.endswith(("s", "J")) for t in ticks), ticks
    assert "4 rejected by the accuracy gate" in text and "cosine 0.7457 is below the required 0.99" in text
    # every target's own colour is on the plot: told apart without hovering
    rgb = {tuple(int(v) for v in c) for c in np.unique(shot[..., :3].reshape(-1, 3), axis=0)}
    colours = _styles([{"target": t, "pipeline": ""} for t in targets])["colour"]
    for target, hex_colour in colours.items():
        want = tuple(int(hex_colour[i:i + 2], 16) for i in (1, 3, 5))
        assert any(max(abs(a - b) for a, b in zip(want, c)) <= 3 for c in rgb), (target, hex_colour)
