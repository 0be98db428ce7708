"""A folder of numbered JPEG (or PNG) frames: frame_000001.jpg, …

The frames go to a hidden temporary folder beside the target, renamed to the target when the
run ends with every frame written; the target must be new or empty, so no frame of an earlier
run (or any other file) is ever overwritten.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from segrt.errors import DataError, WriteFailed
from segrt.files import PendingOutput, shown
from segrt.realtime.sinks import SinkBase


class ImageFolderSink(SinkBase):

    def __init__(self, target: str | None, image_format: str = "jpg", sidecar: dict[str, bytes] | None = None,
                 **_: object) -> None:
        if image_format not in ("jpg", "png"):
            raise DataError(f"image format must be jpg or png, got {image_format!r}")
        self.folder = Path(str(target))
        if self.folder.exists() and not self.folder.is_dir():
            raise DataError(f"--output {shown(target)}: exists and is not a folder; name a new folder")
        if self.folder.is_dir() and any(self.folder.iterdir()):
            raise DataError(f"--output {shown(target)}: folder exists and is not empty; name a new folder "
                            "(segrt never writes over files it did not make)")
        self.image_format = image_format
        self.sidecar = dict(sidecar or {})  # files written beside the frames (classes.json of label maps)
        self.frames_written = 0
        self.frames_whole: int | None = None
        self.error: str | None = None
        self._pending: PendingOutput | None = None

    def __enter__(self) -> "ImageFolderSink":
        self._pending = PendingOutput(self.folder, "frame folder", directory=True, parents=True)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._pending is None:  # already finalized
            return
        pending, self._pending = self._pending, None
        if self.error is not None or exc[0] is not None:
            self.frames_whole = 0
            pending.discard()
            return
        self.frames_whole = self.frames_written
        for name, data in self.sidecar.items():
            try:
                (pending.tmp / name).write_bytes(data)
            except OSError as exc:
                self.error, self.frames_whole = f"cannot write {name} ({exc.strerror})", 0
                pending.discard()
                return
        pending.commit()

    def write(self, frame: np.ndarray) -> None:
        assert self._pending is not None
        path = self._pending.tmp / f"frame_{self.frames_written + 1:06d}.{self.image_format}"
        if not cv2.imwrite(str(path), frame):
            self.error = "cannot write an image"
            raise WriteFailed(f"--output {shown(self.folder)}: cannot write frame {self.frames_written + 1}; check "
                              "the folder is writable and the disk is not full")
        self.frames_written += 1
