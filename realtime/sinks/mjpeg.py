"""A live view in any browser: MJPEG over HTTP plus a small page with live stats.

``--serve 0.0.0.0:8080`` and open ``http://<this machine>:8080/`` from a phone on the same
network. Endpoints: ``/`` the page, ``/stream.mjpg`` the stream (multipart/x-mixed-replace,
which every browser shows in an ``<img>``), ``/stats.json`` the live numbers, ``/snapshot.jpg``
the latest frame. JPEG encoding happens only while someone watches, at most ``max_fps``.
"""

from __future__ import annotations

import json
import threading
import time
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import cv2
import numpy as np

from segrt.errors import SegrtError
from segrt.realtime.sinks import SinkBase

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>segrt live</title>
<style>
 body { margin: 0; background: #111; color: #eee; font: 14px system-ui, sans-serif; }
 header { padding: 8px 12px; display: flex; gap: 16px; flex-wrap: wrap; align-items: baseline; }
 header b { font-size: 18px; }
 img { display: block; width: 100%; max-width: 100vw; height: auto; }
 .k { color: #999; }
</style></head>
<body>
<header><b>segrt</b>
 <span><span class="k">FPS</span> <span id="fps">–</span></span>
 <span><span class="k">model</span> <span id="model_fps">–</span></span>
 <span><span class="k">frames</span> <span id="frames">0</span></span>
 <span><span class="k">dropped</span> <span id="dropped">0</span></span>
 <span><span class="k">infer</span> <span id="infer">–</span> ms</span>
 <span id="name" class="k"></span>
</header>
<img id="view" src="stream.mjpg" alt="live segmentation">
<script>
async function poll() {
  try {
    const s = await (await fetch("stats.json", {cache: "no-store"})).json();
    for (const k of ["fps", "model_fps", "dropped"]) document.getElementById(k).textContent = s[k];
    document.getElementById("frames").textContent = s.frames_out;
    document.getElementById("infer").textContent = (s.stages_ms || {}).infer ?? "–";
    document.getElementById("name").textContent = s.model + " · " + s.backend + " · viewers " + s.viewers;
    document.body.dataset.framesSent = s.frames_sent;
  } catch (e) { /* the run ended; keep the last numbers */ }
}
setInterval(poll, 1000); poll();
</script>
</body></html>
"""


def parse_address(value: str) -> tuple[str, int]:
    """'HOST:PORT', ':PORT' or 'PORT' → (host, port); an empty host listens on all interfaces."""
    host, _, port = value.rpartition(":")
    if not (port.isascii() and port.isdigit()) or not 0 <= int(port) <= 65535:
        raise SegrtError(f"--serve {value!r}: expected HOST:PORT such as 0.0.0.0:8080 or 127.0.0.1:8080")
    return host or "0.0.0.0", int(port)


class MjpegSink(SinkBase):
    def __init__(self, target: str | None = None, max_fps: float = 30.0, quality: int = 80, **_: object) -> None:
        self.address = parse_address(target or ":8080")
        self.max_fps, self.quality = max_fps, quality
        self.frames_written = 0
        self.frames_sent = 0
        self.stop_requested = False
        self._jpeg: bytes | None = None
        self._seq = 0
        self._last_encode = 0.0
        self._cond = threading.Condition()
        self._viewers = 0
        self._closing = False
        self._snapshot_wanted = False
        self._stats = lambda: {}
        self.finished = False  # the source ended: the last frame is all there will be
        self._server: ThreadingHTTPServer | None = None

    def attach(self, controls, stats) -> None:
        self._stats = stats

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2] if self._server else self.address
        return f"http://{'127.0.0.1' if host in ('0.0.0.0', '') else host}:{port}/"

    def __enter__(self) -> "MjpegSink":
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:  # no access log on the terminal
                pass

            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                path = self.path.split("?")[0]
                if path in ("/", "/index.html"):
                    self._send(PAGE.encode(), "text/html; charset=utf-8")
                elif path == "/stats.json":
                    doc = {**sink._stats(), "viewers": sink._viewers, "frames_sent": sink.frames_sent}
                    self._send(json.dumps(doc).encode(), "application/json")
                elif path == "/snapshot.jpg":
                    sink._snapshot_wanted = True  # encode the next frame even with no stream viewer
                    jpeg = sink._jpeg if sink.finished else (sink._wait_frame(sink._seq, timeout=5.0)[1] or sink._jpeg)
                    if jpeg is None:
                        self.send_error(HTTPStatus.SERVICE_UNAVAILABLE, "no frame yet")
                    else:
                        self._send(jpeg, "image/jpeg")
                elif path == "/stream.mjpg":
                    self._stream()
                else:
                    self.send_error(HTTPStatus.NOT_FOUND)

            def _send(self, body: bytes, ctype: str) -> None:
                self.send_response(HTTPStatus.OK)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Cache-Control", "no-store")
                self.end_headers()
                self.wfile.write(body)

            def _stream(self) -> None:
                self.send_response(HTTPStatus.OK)
                self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=segrtframe")
                self.send_header("Cache-Control", "no-store")
                self.end_headers()
                with sink._cond:
                    sink._viewers += 1
                seq = 0
                try:
                    while not sink._closing:
                        seq, jpeg = sink._wait_frame(seq, timeout=1.0)
                        if jpeg is None:
                            continue
                        self.wfile.write(b"--segrtframe\r\nContent-Type: image/jpeg\r\nContent-Length: "
                                         + str(len(jpeg)).encode() + b"\r\n\r\n" + jpeg + b"\r\n")
                        sink.frames_sent += 1
                except (BrokenPipeError, ConnectionResetError, TimeoutError):
                    pass  # the viewer went away
                finally:
                    with sink._cond:
                        sink._viewers -= 1

        try:
            self._server = ThreadingHTTPServer(self.address, Handler)
        except OSError as exc:
            raise SegrtError(f"--serve {self.address[0]}:{self.address[1]}: cannot listen ({exc.strerror}); "
                             "choose another port") from None
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, name="segrt-mjpeg", daemon=True).start()
        return self

    def _wait_frame(self, after: int, timeout: float) -> tuple[int, bytes | None]:
        """The newest JPEG with a sequence number above ``after`` (waits up to ``timeout``)."""
        with self._cond:
            self._cond.wait_for(lambda: self._seq > after or self._closing, timeout)
            return (self._seq, self._jpeg) if self._seq > after else (after, None)

    def write(self, frame: np.ndarray) -> None:
        self.frames_written += 1
        now = time.perf_counter()
        idle = self._viewers == 0 and self._jpeg is not None and not self._snapshot_wanted
        if idle or now - self._last_encode < 1.0 / self.max_fps:
            return  # nobody watching (after the first frame), or faster than viewers need
        self._snapshot_wanted = False
        ok, buf = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, self.quality])
        if ok:
            with self._cond:
                self._jpeg, self._seq = buf.tobytes(), self._seq + 1
                self._last_encode = now
                self._cond.notify_all()

    def __exit__(self, *exc: object) -> None:
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
