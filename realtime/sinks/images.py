"""A folder of numbered JPEG (or PNG) frames: frame_000001.jpg, …"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from segrt.errors import DataError


class ImageFolderSink:
    stop_requested = False

    def __init__(self, target: str | None, image_format: str = "jpg", **_: object) -> None:
        if image_format not in ("jpg", "png"):
            raise DataError(f"image format must be jpg or png, got {image_format!r}")
        self.folder = Path(str(target))
        self.image_format = image_format
        self.frames_written = 0

    def __enter__(self) -> "ImageFolderSink":
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise DataError(f"--output {self.folder}: cannot create folder ({exc.strerror})") from None
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def write(self, frame: np.ndarray) -> None:
        path = self.folder / f"frame_{self.frames_written + 1:06d}.{self.image_format}"
        if not cv2.imwrite(str(path), frame):
            raise DataError(f"{path}: cannot write image; check the folder is writable and the disk is not full")
        self.frames_written += 1
