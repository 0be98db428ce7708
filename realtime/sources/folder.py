"""A folder of images, read in name order."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from segrt.datasets.camvid import read_image
from segrt.errors import DataError
from segrt.images import IMAGE_SUFFIXES


class FolderSource:
    live = False

    def __init__(self, uri: str, fps: float = 10.0, paths: list[Path] | None = None, **_: object) -> None:
        self.name = uri
        self.fps: float | None = fps
        self.paths = paths if paths is not None else self._list(Path(uri))
        self.frame_count: int | None = len(self.paths)
        self._next = 0

    @staticmethod
    def _list(folder: Path) -> list[Path]:
        if not folder.is_dir():
            raise DataError(f"{folder}: not a folder of images")
        paths = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not paths:
            raise DataError(f"{folder}: no images ({', '.join(IMAGE_SUFFIXES)}) in this folder")
        return paths

    def __enter__(self) -> "FolderSource":
        self._next = 0
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def rewind(self) -> None:
        self._next = 0

    def read(self) -> np.ndarray | None:
        if self._next >= len(self.paths):
            return None
        self._next += 1
        return read_image(self.paths[self._next - 1])
