"""Shared behaviour of readers that keep a list of image paths and read labels their own way."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from segrt.datasets.camvid import check_pair, read_image


class ImageListDataset:
    """Subclasses set ``images`` (paths) and implement ``read_label(i)``."""

    images: list[Path]

    def __len__(self) -> int:
        return len(self.images)

    def read_image(self, i: int) -> np.ndarray:
        """uint8 (H, W, 3) BGR."""
        return read_image(self.images[i])

    def read_label(self, i: int) -> np.ndarray:
        raise NotImplementedError

    def label_file(self, i: int) -> Path:
        return self.images[i]

    def read(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        return check_pair(self.read_image(i), self.read_label(i), self.label_file(i))
