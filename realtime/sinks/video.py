"""Video files through OpenCV's VideoWriter, written atomically.

Frames go to ``NAME.partial.mp4`` and the file is renamed to ``NAME.mp4`` when the writer
closes, on success and on Ctrl-C alike, so an earlier video of the same name is never
replaced by a truncated one while a run is in progress.
"""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np

from segrt.errors import DataError

FOURCC = {".mp4": "mp4v", ".avi": "MJPG"}  # codecs every OpenCV wheel can write


class VideoSink:
    stop_requested = False

    def __init__(self, target: str | None, fps: float = 25.0, **_: object) -> None:
        path = Path(str(target))
        if path.suffix.lower() not in FOURCC:
            raise DataError(f"--output {path}: video suffix must be one of {', '.join(FOURCC)} "
                            "(or end with / for a folder of images)")
        if not path.parent.is_dir():
            raise DataError(f"--output {path}: folder {path.parent} does not exist; create it first")
        self.path = path
        self.partial = path.with_name(f"{path.stem}.partial{path.suffix}")
        self.fps = fps
        self.frames_written = 0
        self._writer: cv2.VideoWriter | None = None

    def __enter__(self) -> "VideoSink":
        return self

    def _open(self, width: int, height: int) -> None:
        fourcc = cv2.VideoWriter_fourcc(*FOURCC[self.path.suffix.lower()])
        self._writer = cv2.VideoWriter(str(self.partial), fourcc, self.fps, (width, height))
        if not self._writer.isOpened():
            raise DataError(f"--output {self.path}: OpenCV cannot write this video; check the "
                            "folder is writable and the disk is not full")

    def write(self, frame: np.ndarray) -> None:
        if self._writer is None:
            self._open(frame.shape[1], frame.shape[0])
            self._size = (frame.shape[1], frame.shape[0])
        if (frame.shape[1], frame.shape[0]) != self._size:  # the viewer switched mode mid-run
            frame = cv2.resize(frame, self._size, interpolation=cv2.INTER_AREA)
        self._writer.write(frame)
        self.frames_written += 1

    def __exit__(self, *exc: object) -> None:
        if self._writer is None:
            return
        self._writer.release()
        self._writer = None
        if self.frames_written:
            os.replace(self.partial, self.path)
        else:
            self.partial.unlink(missing_ok=True)
