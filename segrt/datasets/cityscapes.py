"""Cityscapes (fine annotations) in its own layout, label ids mapped to the 19 train ids.

``ROOT/leftImg8bit/{split}/{city}/{name}_leftImg8bit.png`` and
``ROOT/gtFine/{split}/{city}/{name}_gtFine_labelIds.png``. Cityscapes needs a login to
download, so there is no downloader: unpack the two official zips into ROOT.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from segrt.datasets.base import ImageListDataset
from segrt.errors import DataError
from segrt.images import read_image

CLASSES = ("road", "sidewalk", "building", "wall", "fence", "pole", "traffic light", "traffic sign",
           "vegetation", "terrain", "sky", "person", "rider", "car", "truck", "bus", "train",
           "motorcycle", "bicycle")
PALETTE = ((128, 64, 128), (244, 35, 232), (70, 70, 70), (102, 102, 156), (190, 153, 153),
           (153, 153, 153), (250, 170, 30), (220, 220, 0), (107, 142, 35), (152, 251, 152),
           (70, 130, 180), (220, 20, 60), (255, 0, 0), (0, 0, 142), (0, 0, 70), (0, 60, 100),
           (0, 80, 100), (0, 0, 230), (119, 11, 32))
IGNORE = 255
# label id → train id, from the official cityscapesScripts label table; all others ignored.
TRAIN_IDS = {7: 0, 8: 1, 11: 2, 12: 3, 13: 4, 17: 5, 19: 6, 20: 7, 21: 8, 22: 9, 23: 10, 24: 11,
             25: 12, 26: 13, 27: 14, 28: 15, 31: 16, 32: 17, 33: 18}
SPLITS = ("train", "val", "test")


def id_to_train_id_lut() -> np.ndarray:
    lut = np.full(256, IGNORE, np.uint8)
    for label_id, train_id in TRAIN_IDS.items():
        lut[label_id] = train_id
    return lut


class Cityscapes(ImageListDataset):
    classes, palette, ignore_index = CLASSES, PALETTE, IGNORE

    def __init__(self, root: str | Path, split: str) -> None:
        if split not in SPLITS:
            raise DataError(f"unknown Cityscapes split {split!r}; valid splits: {', '.join(SPLITS)}")
        self.root, self.split = Path(root), split
        image_dir = self.root / "leftImg8bit" / split
        if not image_dir.is_dir():
            raise DataError(f"{image_dir}: Cityscapes split '{split}' not found; unpack leftImg8bit_trainvaltest.zip "
                            f"and gtFine_trainvaltest.zip into {self.root}")
        self.images = sorted(image_dir.glob("*/*_leftImg8bit.png"))
        if not self.images:
            raise DataError(f"{image_dir}: no *_leftImg8bit.png frames in its city folders")
        self.labels = [self.root / "gtFine" / split / p.parent.name /
                       p.name.replace("_leftImg8bit.png", "_gtFine_labelIds.png") for p in self.images]
        self._lut = id_to_train_id_lut()

    def label_file(self, i: int) -> Path:
        return self.labels[i]

    def read_label(self, i: int) -> np.ndarray:
        """uint8 (H, W) train ids 0..18, 255 = ignore."""
        raw = read_image(self.labels[i], cv2.IMREAD_UNCHANGED)
        if raw is None or raw.ndim != 2:
            raise DataError(f"{self.labels[i]}: missing or not a single-channel labelIds PNG")
        return self._lut[raw]
