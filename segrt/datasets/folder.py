"""Users' own data: ``ROOT/images/{split}/*``, ``ROOT/masks/{split}/*.png`` and ``ROOT/dataset.yaml``.

``dataset.yaml`` names the classes, in label order, with their RGB colours, and the label
value to ignore::

    classes:
      - {name: road, color: [128, 64, 128]}
      - {name: car, color: [0, 0, 142]}
    ignore_index: 255

Masks are single-channel PNGs of class indices, matched to images by file stem.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from segrt.config import load_config
from segrt.datasets.base import ImageListDataset
from segrt.errors import DataError
from segrt.images import IMAGE_SUFFIXES, read_image


@dataclass(frozen=True)
class ClassSpec:
    name: str
    color: tuple[int, int, int]


@dataclass(frozen=True)
class FolderSpec:
    classes: tuple[ClassSpec, ...]
    ignore_index: int = 255

    def __post_init__(self) -> None:
        if not self.classes:
            raise ValueError("key 'classes' must list at least one class")
        if not 0 <= self.ignore_index <= 255 or self.ignore_index < len(self.classes):
            raise ValueError(f"key 'ignore_index' must be in {len(self.classes)}..255, got {self.ignore_index}")


def write_spec(folder: Path, names, palette, ignore_index: int, comment: str) -> Path:
    """Writes ``folder/dataset.yaml`` for classes ``names`` with RGB ``palette``: what
    :class:`FolderDataset` reads. ``comment`` becomes its first lines."""
    import yaml

    meta = {"classes": [{"name": n, "color": list(c)} for n, c in zip(names, palette, strict=True)],
            "ignore_index": ignore_index}
    path = folder / "dataset.yaml"
    path.write_text("".join(f"# {line}\n" for line in comment.splitlines()) + yaml.safe_dump(meta, sort_keys=False))
    return path


class FolderDataset(ImageListDataset):
    def __init__(self, root: str | Path, split: str) -> None:
        self.root, self.split = Path(root), split
        spec = load_config(self.root / "dataset.yaml", FolderSpec)
        self.classes = tuple(c.name for c in spec.classes)
        self.palette = tuple(c.color for c in spec.classes)
        self.ignore_index = spec.ignore_index
        image_dir, mask_dir = self.root / "images" / split, self.root / "masks" / split
        if not image_dir.is_dir():
            raise DataError(f"{image_dir}: no such folder; put split '{split}' images there")
        self.images = sorted(p for p in image_dir.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        masks = {p.stem: p for p in mask_dir.glob("*.png")} if mask_dir.is_dir() else {}
        unmatched = [p.name for p in self.images if p.stem not in masks]
        if not self.images or unmatched:
            raise DataError(f"{mask_dir}: every image in {image_dir} needs a mask PNG of the same stem; "
                            f"{len(unmatched)} of {len(self.images)} have none (e.g. {unmatched[:1]})")
        self.masks = [masks[p.stem] for p in self.images]

    def label_file(self, i: int) -> Path:
        return self.masks[i]

    def read_label(self, i: int) -> np.ndarray:
        mask = read_image(self.masks[i], cv2.IMREAD_UNCHANGED)
        if mask is None or mask.ndim != 2:
            raise DataError(f"{self.masks[i]}: not a single-channel PNG of class indices")
        bad = (mask >= len(self.classes)) & (mask != self.ignore_index)
        if bad.any():
            raise DataError(f"{self.masks[i]}: values {sorted(set(mask[bad].tolist()))[:5]} are neither classes "
                            f"0..{len(self.classes) - 1} nor ignore_index {self.ignore_index}")
        return mask
