"""Video files, network streams (rtsp://, http(s)://) and GStreamer pipelines through
OpenCV's VideoCapture.

Network streams are live: they get open/read time-outs (a dead server must not hang the
loop) and can be reopened after an outage. A GStreamer pipeline string (it contains ``!``)
needs an OpenCV built with GStreamer, as JetPack's is; on a Jetson, a CSI camera is::

    nvarguscamerasrc ! video/x-raw(memory:NVMM),width=1280,height=720,framerate=30/1 !
    nvvidconv ! video/x-raw,format=BGRx ! videoconvert ! video/x-raw,format=BGR ! appsink drop=1
"""

from __future__ import annotations

import os

import cv2
import numpy as np

from segrt.errors import DataError
from segrt.files import shown
from segrt.images import check_size

NETWORK_SCHEMES = ("rtsp://", "rtsps://", "rtmp://", "http://", "https://", "udp://", "tcp://", "srt://")
TIMEOUT_MS = 5000


def is_network(uri: str) -> bool:
    return uri.lower().startswith(NETWORK_SCHEMES) and not _is_path(uri)


def is_gstreamer(uri: str) -> bool:
    return "!" in uri and not _is_path(uri)


def _is_path(uri: str) -> bool:
    """An existing file is read as a file, whatever characters its name has (``wow!.mp4``)."""
    try:
        return os.path.exists(uri)
    except (OSError, ValueError):
        return False


def has_gstreamer() -> bool:
    return any(ln.strip().startswith("GStreamer:") and "YES" in ln for ln in cv2.getBuildInformation().splitlines())


def decode_threads() -> list[int]:
    """FFmpeg's decoder threads, as VideoCapture parameters: one on machines of up to 4 cores,
    where FFmpeg's own choice (a thread per core, frame-threaded) competes with the model for
    them (the 2-core dashcam demo: 79.5-83.2 FPS against 73.5-78.3, the read stage 4.5 against
    2.4 ms a frame, off the critical path); FFmpeg's choice above that."""
    return [cv2.CAP_PROP_N_THREADS, 1] if (os.cpu_count() or 1) <= 4 else []


class VideoSource:
    live = False

    def __init__(self, uri: str, **_: object) -> None:
        self.uri = uri
        self.name = uri
        self.live = is_network(uri) or is_gstreamer(uri)
        self.fps: float | None = None
        self.frame_count: int | None = None
        self._cap: cv2.VideoCapture | None = None
        self._frame: np.ndarray | None = None

    def _open_capture(self) -> cv2.VideoCapture:
        if is_gstreamer(self.uri):
            if not has_gstreamer():
                raise DataError("a GStreamer pipeline needs OpenCV built with GStreamer (JetPack's system "
                                "OpenCV is; the pip wheels are not); see docs/tensorrt.md (Jetson)")
            return cv2.VideoCapture(self.uri, cv2.CAP_GSTREAMER)
        if is_network(self.uri):
            return cv2.VideoCapture(self.uri, cv2.CAP_FFMPEG, [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, TIMEOUT_MS,
                                                               cv2.CAP_PROP_READ_TIMEOUT_MSEC, TIMEOUT_MS,
                                                               *decode_threads()])
        # an absolute path: FFmpeg would read "dashcam:2024.mp4" as the protocol "dashcam"
        uri = os.path.abspath(self.uri) if _is_path(self.uri) else self.uri
        if threads := decode_threads():
            cap = cv2.VideoCapture(uri, cv2.CAP_FFMPEG, threads)
            if cap.isOpened():
                return cap
            cap.release()  # not FFmpeg's: let OpenCV pick the backend
        return cv2.VideoCapture(uri)

    def _what(self) -> str:
        if is_network(self.uri):
            return "stream; check the URL, that the server is up and reachable from here"
        return "video; check the path and that it is a video OpenCV can decode (mp4/H.264, avi, mkv, …)"

    def reopen(self) -> bool:
        """After a live stream stopped: a fresh capture; True if it opened."""
        if self._cap is not None:
            self._cap.release()
        self._cap = self._open_capture()
        return self._cap.isOpened()

    def rewind(self) -> None:
        """Back to the first frame (``--loop``)."""
        if self._cap is not None and not self.live:
            self._cap.set(cv2.CAP_PROP_POS_FRAMES, 0)

    def __enter__(self) -> "VideoSource":
        self._cap = self._open_capture()
        if not self._cap.isOpened():
            self._cap.release()
            raise DataError(f"{shown(self.uri)}: cannot open as {self._what()}")
        width, height = (int(self._cap.get(p)) for p in (cv2.CAP_PROP_FRAME_WIDTH, cv2.CAP_PROP_FRAME_HEIGHT))
        try:
            check_size(width, height, shown(self.uri))  # from the container header, before decoding
        except DataError:
            self._cap.release()
            raise
        fps = self._cap.get(cv2.CAP_PROP_FPS)
        self.fps = fps if fps and fps > 0 else None
        count = int(self._cap.get(cv2.CAP_PROP_FRAME_COUNT))
        self.frame_count = count if count > 0 and not self.live else None
        return self

    def __exit__(self, *exc: object) -> None:
        if self._cap is not None:
            self._cap.release()
            self._cap = None

    def read(self) -> np.ndarray | None:
        if self._cap is None:
            raise RuntimeError("source is not open; use it as a context manager")
        ok, frame = self._cap.read(self._frame)  # decodes into the same buffer each time
        if not ok:
            return None
        self._frame = frame
        return frame
