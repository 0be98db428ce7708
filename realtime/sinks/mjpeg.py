"""A live view in any browser: MJPEG over HTTP plus a small page with live stats.

``--serve 8080`` shows it on this machine only (``http://127.0.0.1:8080/``). ``--serve
0.0.0.0:8080`` shares it with the network (a phone on the same Wi-Fi): then every request needs
the access token printed in the URL (the Jupyter convention); the first one sets a cookie, so
the page's own stream and stats requests carry it. Every request's Host header must name this
server (an IP address, localhost, this machine's name), so a web page elsewhere cannot reach
the view by pointing its DNS name at 127.0.0.1 (DNS rebinding). Endpoints: ``/`` the page,
``/stream.mjpg`` the stream (multipart/x-mixed-replace, which every browser shows in an
``<img>``), ``/stats.json`` the live numbers, ``/snapshot.jpg`` the latest frame; any other
path is a 404, and nothing a client sends reaches segrt's terminal. JPEG encoding happens only
while someone watches, at most ``max_fps``.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import cv2
import numpy as np

from segrt.errors import SegrtError
from segrt.realtime.sinks import SinkBase
from segrt.realtime.sinks.access import Access, check_token, parse_address

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


GRID_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>segrt live: STREAMS streams</title>
<style>
 body { margin: 0; background: #111; color: #eee; font: 14px system-ui, sans-serif; }
 main { display: grid; grid-template-columns: repeat(auto-fit, minmax(420px, 1fr)); gap: 4px; }
 figure { margin: 0; } figcaption { padding: 4px 8px; } .k { color: #999; }
 img { display: block; width: 100%; height: auto; }
</style></head>
<body><main>TILES</main>
<script>
async function poll(i) {
  try {
    const s = await (await fetch(`stats/${i}.json`, {cache: "no-store"})).json();
    document.getElementById(`s${i}`).textContent =
      `${s.fps} FPS · model ${s.model_fps} FPS · ${s.frames_out} frames · ${s.dropped} dropped · viewers ${s.viewers}`;
  } catch (e) { /* the run ended; keep the last numbers */ }
}
setInterval(() => { for (let i = 0; i < STREAMS; i++) poll(i); }, 1000);
for (let i = 0; i < STREAMS; i++) poll(i);
</script></body></html>
"""
TILE = ('<figure><figcaption><b>{index}</b> {name} <span class="k" id="s{index}"></span></figcaption>'
        '<img src="stream/{index}.mjpg" alt="stream {index}"></figure>')


def grid_page(names: list[str]) -> str:
    import html

    tiles = "".join(TILE.format(index=i, name=html.escape(n)) for i, n in enumerate(names))
    return GRID_PAGE.replace("TILES", tiles).replace("STREAMS", str(len(names)))


class Channel(SinkBase):
    """One stream's frames on the server: the newest JPEG (encoded only while someone watches,
    at most ``max_fps``), its sequence number, its viewers and its live numbers. The sink a
    stream writes to."""

    def __init__(self, index: int, max_fps: float, quality: int) -> None:
        self.index, self.max_fps, self.quality = index, max_fps, quality
        self.frames_written = 0
        self.frames_sent = 0
        self._jpeg: bytes | None = None
        self._seq = 0
        self._last_encode = 0.0
        self._cond = threading.Condition()
        self._viewers = 0
        self._closing = False
        self._snapshot_wanted = False
        self._stats = lambda: {}
        self.finished = False  # the source ended: the last frame is all there will be

    def attach(self, controls, stats) -> None:
        self._stats = stats

    def __enter__(self) -> "Channel":
        return self

    def __exit__(self, *exc: object) -> None:
        pass  # the server closes its channels

    def stats(self) -> dict:
        return {**self._stats(), "viewers": self._viewers, "frames_sent": self.frames_sent}

    def _wait_frame(self, after: int, timeout: float) -> tuple[int, bytes | None]:
        """The newest JPEG with a sequence number above ``after`` (waits up to ``timeout``)."""
        with self._cond:
            self._cond.wait_for(lambda: self._seq > after or self._closing, timeout)
            return (self._seq, self._jpeg) if self._seq > after else (after, None)

    def frames(self, poll_s: float = 1.0) -> Iterator[bytes]:
        """Each new JPEG as it is encoded, until the channel closes; counted as a viewer (so
        frames are encoded) while iterated, and as sent once the caller asks for the next."""
        with self._cond:
            self._viewers += 1
        seq = 0
        try:
            while not self._closing:
                seq, jpeg = self._wait_frame(seq, timeout=poll_s)
                if jpeg is not None:
                    yield jpeg
                    self.frames_sent += 1
        finally:
            with self._cond:
                self._viewers -= 1

    def snapshot(self) -> bytes | None:
        self._snapshot_wanted = True  # encode the next frame even with no stream viewer
        return self._jpeg if self.finished else (self._wait_frame(self._seq, timeout=5.0)[1] or self._jpeg)

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

    def close(self) -> None:
        with self._cond:
            self._closing = True
            self._cond.notify_all()


SUFFIXES = {"stats": "json", "snapshot": "jpg", "stream": "mjpg"}


class MjpegSink(SinkBase):
    """The HTTP server. One stream: ``/`` (page), ``/stream.mjpg``, ``/stats.json``,
    ``/snapshot.jpg``, and the server is itself that stream's sink. Several (``streams`` > 1,
    ``segrt run A B --serve``): ``/`` is a grid of every stream, each at ``/stream/I.mjpg``,
    ``/stats/I.json`` and ``/snapshot/I.jpg`` (I from 0), and ``channels[I]`` is stream I's sink.
    ``token`` (--serve-token): what every request must carry; off loopback one is made if not
    given (see :class:`Access`)."""

    def __init__(self, target: str | None = None, max_fps: float = 30.0, quality: int = 80, streams: int = 1,
                 names: list[str] | None = None, token: str | None = None, **_: object) -> None:
        self.address = parse_address(target or "8080")
        self.token_given = None if token is None else check_token(token)
        self.channels = [Channel(i, max_fps, quality) for i in range(streams)]
        self.names = names or [str(i) for i in range(streams)]
        self.access = Access()  # set once it listens
        self.client_errors = 0  # requests that failed (a viewer hung up mid-frame, nonsense)
        self._server: _Server | None = None

    # the one-stream sink interface: channel 0
    def attach(self, controls, stats) -> None:
        self.channels[0].attach(controls, stats)

    def write(self, frame: np.ndarray) -> None:
        self.channels[0].write(frame)

    @property
    def frames_written(self) -> int:
        return self.channels[0].frames_written

    @property
    def frames_sent(self) -> int:
        return sum(c.frames_sent for c in self.channels)

    @property
    def finished(self) -> bool:
        return all(c.finished for c in self.channels)

    @finished.setter
    def finished(self, value: bool) -> None:
        for c in self.channels:
            c.finished = value

    @property
    def url(self) -> str:
        """The first address it listens on, without the token."""
        return f"http://{self.access.hosts[0]}:{self.access.port}/"

    def banner(self) -> str:
        return self.access.banner()

    def route(self, path: str) -> tuple[str, Channel | None]:
        """('page'|'stats'|'snapshot'|'stream', channel) for a request path; channel None: a 404."""
        one = {"/stats.json": "stats", "/snapshot.jpg": "snapshot", "/stream.mjpg": "stream"}
        if path in ("/", "/index.html"):
            return "page", self.channels[0]
        if path in one:
            return one[path], self.channels[0]
        kind, _, name = path.strip("/").partition("/")
        index, _, suffix = name.partition(".")
        # ASCII digits only ('²'.isdigit() is True), and few: int() refuses 4300+ digits
        if SUFFIXES.get(kind) == suffix and index.isascii() and index.isdigit() and len(index) <= 6:
            i = int(index)
            return kind, self.channels[i] if i < len(self.channels) else None
        return "", None

    def __enter__(self) -> "MjpegSink":
        try:
            self._server = _Server(self.address, self)
        except OSError as exc:
            raise SegrtError(f"--serve {self.address[0]}:{self.address[1]}: cannot listen "
                             f"({exc.strerror or exc}); choose another port") from None
        ip, port = self._server.server_address[:2]
        self.access = Access.listening(ip, port, asked=self.address[0], token=self.token_given)
        threading.Thread(target=self._server.serve_forever, name="segrt-mjpeg", daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        for c in self.channels:
            c.close()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], sink: MjpegSink) -> None:
        self.sink = sink
        super().__init__(address, _Handler)

    def handle_error(self, request, client_address) -> None:
        # socketserver would print the traceback on segrt's terminal: a client that hangs up
        # mid-frame or sends nonsense is counted, never shown
        self.sink.client_errors += 1


class _Handler(BaseHTTPRequestHandler):
    """One request: 403 without the right Host (and token, where one is needed), 404 for a path
    that is not an endpoint."""

    server: _Server
    _set_cookie = False

    def log_message(self, *args: object) -> None:  # no access log, nor a client's bytes, on the terminal
        pass

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        sink = self.server.sink
        path, _, query = self.path.partition("?")
        why, self._set_cookie = sink.access.check(self.headers.get("Host"), query, self.headers.get("Cookie"))
        if why is not None:
            self.send_error(HTTPStatus.FORBIDDEN, why)
            return
        kind, channel = sink.route(path)
        if channel is None:
            self.send_error(HTTPStatus.NOT_FOUND)
        elif kind == "page":
            page = PAGE if len(sink.channels) == 1 else grid_page(sink.names)
            self._send(page.encode(), "text/html; charset=utf-8")
        elif kind == "stats":
            self._send(json.dumps(channel.stats()).encode(), "application/json")
        elif kind == "snapshot":
            jpeg = channel.snapshot()
            if jpeg is None:
                self.send_error(HTTPStatus.SERVICE_UNAVAILABLE, "no frame yet")
            else:
                self._send(jpeg, "image/jpeg")
        else:
            self._stream(channel)

    def _start(self, ctype: str) -> None:
        self.send_response(HTTPStatus.OK)
        self.send_header("Content-Type", ctype)
        self.send_header("Cache-Control", "no-store")
        self.send_header("Referrer-Policy", "no-referrer")  # the page's URL may hold the token
        if self._set_cookie:
            access = self.server.sink.access
            self.send_header("Set-Cookie", f"{access.cookie}={access.token}; Path=/; HttpOnly; SameSite=Strict")

    def _send(self, body: bytes, ctype: str) -> None:
        self._start(ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _stream(self, channel: Channel) -> None:
        self._start("multipart/x-mixed-replace; boundary=segrtframe")
        self.end_headers()
        frames = channel.frames()
        try:
            for jpeg in frames:
                self.wfile.write(b"--segrtframe\r\nContent-Type: image/jpeg\r\nContent-Length: "
                                 + str(len(jpeg)).encode() + b"\r\n\r\n" + jpeg + b"\r\n")
        except (BrokenPipeError, ConnectionResetError, TimeoutError):
            pass  # the viewer went away
        finally:
            frames.close()  # no longer a viewer
