"""A tiny MJPEG-over-HTTP camera for tests: serves real dashcam frames, can be cut and resumed."""

from __future__ import annotations

import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import cv2


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Camera:
    """``fps=None`` pushes frames as fast as the socket takes them."""

    def __init__(self, clip, frames: int = 30, fps: float | None = 25.0, port: int | None = None) -> None:
        cap = cv2.VideoCapture(str(clip))
        self.jpegs = []
        while len(self.jpegs) < frames:
            ok, f = cap.read()
            if not ok:
                break
            self.jpegs.append(cv2.imencode(".jpg", f, [cv2.IMWRITE_JPEG_QUALITY, 85])[1].tobytes())
        cap.release()
        self.fps, self.port = fps, port or free_port()
        self.sent = 0
        self._server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/stream.mjpg"

    def start(self) -> "Camera":
        cam = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_GET(self):
                self.send_response(200)
                self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=f")
                self.end_headers()
                i = 0
                try:
                    while cam._server is server:
                        b = cam.jpegs[i % len(cam.jpegs)]
                        self.wfile.write(b"--f\r\nContent-Type: image/jpeg\r\nContent-Length: %d\r\n\r\n" % len(b)
                                         + b + b"\r\n")
                        i += 1
                        cam.sent += 1
                        if cam.fps:
                            time.sleep(1.0 / cam.fps)
                except OSError:
                    pass

        server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        server.daemon_threads = True
        server.allow_reuse_address = True
        self._server = server
        threading.Thread(target=server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        """The camera goes away: connections close, the port refuses."""
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
