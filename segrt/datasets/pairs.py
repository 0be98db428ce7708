"""Side-by-side pairs, the layout of Kaggle's "cityscapes image pairs": one JPEG per sample,
the photo on the left half and its colour-coded label map on the right half.

``ROOT/{split}/*.jpg`` (or .png) and ``ROOT/dataset.yaml``, which names the classes in label
order with their label colours (RGB), optionally colours that mean "no class"::

    classes:
      - {name: road, color: [128, 64, 128]}
      - {name: car, color: [0, 0, 142]}
    void_colors: [[0, 0, 0]]
    ignore_index: 255

JPEG blurs the label half's colours, so each pixel takes the class of the *nearest* listed
colour (Euclidean in RGB); pixels nearest a void colour are ``ignore_index``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from segrt.config import load_config
from segrt.datasets.base import ImageListDataset
from segrt.datasets.camvid import read_image
from segrt.datasets.folder import IMAGE_SUFFIXES, FolderSpec
from segrt.errors import DataError


@dataclass(frozen=True)
class PairsSpec(FolderSpec):
    """The folder layout's classes and ignore_index, plus colours that mean "no class"."""

    void_colors: tuple[tuple[int, int, int], ...] = ()

    def __post_init__(self) -> None:
        super().__post_init__()
        for color in [c.color for c in self.classes] + list(self.void_colors):
            if len(color) != 3 or not all(0 <= v <= 255 for v in color):
                raise ValueError(f"colours must be three values 0..255, got {list(color)}")


def nearest_color_labels(rgb: np.ndarray, colors: np.ndarray, values: np.ndarray) -> np.ndarray:
    """rgb: uint8 (H, W, 3); colors: (K, 3); values: uint8 (K,) → uint8 (H, W), each pixel the
    value of its nearest colour (squared RGB distance; ties go to the first colour)."""
    flat = rgb.reshape(-1, 3).astype(np.int32)
    c = colors.astype(np.int32)
    # |p - c|^2 = |p|^2 - 2 p·c + |c|^2; |p|^2 is the same for every colour
    dist = (c * c).sum(1)[None, :] - 2 * flat @ c.T
    return values[dist.argmin(1)].reshape(rgb.shape[:2])


class PairsDataset(ImageListDataset):
    def __init__(self, root: str | Path, split: str) -> None:
        self.root, self.split = Path(root), split
        spec = load_config(self.root / "dataset.yaml", PairsSpec)
        self.classes = tuple(c.name for c in spec.classes)
        self.palette = tuple(c.color for c in spec.classes)
        self.ignore_index = spec.ignore_index
        self._colors = np.asarray([c.color for c in spec.classes] + list(spec.void_colors), np.int32)
        self._values = np.asarray(list(range(len(spec.classes))) + [spec.ignore_index] * len(spec.void_colors),
                                  np.uint8)
        folder = self.root / split
        if not folder.is_dir():
            raise DataError(f"{folder}: no such folder; put split '{split}' pairs (photo | label side by side) there")
        self.images = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not self.images:
            raise DataError(f"{folder}: no .jpg/.png pairs found")

    def _halves(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        pair = read_image(self.images[i])
        h, w = pair.shape[:2]
        if w % 2 or w < 2:
            raise DataError(f"{self.images[i]}: {w}x{h} is not two equal halves side by side (photo | label)")
        return pair[:, : w // 2], pair[:, w // 2:]

    def read_image(self, i: int) -> np.ndarray:
        """uint8 (H, W, 3) BGR: the left half."""
        return np.ascontiguousarray(self._halves(i)[0])

    def read_label(self, i: int) -> np.ndarray:
        """uint8 (H, W): the right half's colours mapped to the nearest class (or void) colour."""
        return self._label(self._halves(i)[1])

    def _label(self, label_bgr: np.ndarray) -> np.ndarray:
        rgb = cv2.cvtColor(np.ascontiguousarray(label_bgr), cv2.COLOR_BGR2RGB)
        return nearest_color_labels(rgb, self._colors, self._values)

    def read(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        image, label = self._halves(i)  # one decode for both halves
        return np.ascontiguousarray(image), self._label(label)
