"""Video files and network streams through OpenCV's VideoCapture."""

from __future__ import annotations

import cv2
import numpy as np

from segrt.errors import DataError


class VideoSource:
    live = False

    def __init__(self, uri: str, **_: object) -> None:
        self.uri = uri
        self.name = uri
        self.fps: float | None = None
        self.frame_count: int | None = None
        self._cap: cv2.VideoCapture | None = None
        self._frame: np.ndarray | None = None

    def _open_capture(self) -> cv2.VideoCapture:
        return cv2.VideoCapture(self.uri)

    def __enter__(self) -> "VideoSource":
        self._cap = self._open_capture()
        if not self._cap.isOpened():
            self._cap.release()
            raise DataError(f"{self.uri}: cannot open as video; check the path and that it is "
                            "a video OpenCV can decode (mp4/H.264, avi, mkv, …)")
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
