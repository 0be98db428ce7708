"""torch Dataset over any torch-free dataset reader (CamVid, Cityscapes, folder), with augmentation."""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import Dataset
from tqdm import tqdm

from segrt.preprocess import Preprocess, normalize_rgb
from segrt.train import augment
from segrt.train.config import oversampled


class SegTrain(Dataset):
    """Augmented training crops. All frames are decoded once into memory (CamVid's 367 frames
    of 480x360 are ~250 MB), so each step costs only augmentation, not image decoding."""

    def __init__(self, ds, spec: Preprocess, scale_range: tuple[float, float], seed: int,
                 crop: tuple[int, int] | None = None, colour_cast: float = 0.0, degrade: float = 0.0,
                 aspect_range: tuple[float, float] = (1.0, 1.0), oversample: float = 1.0,
                 haze: float = 0.0) -> None:
        self.spec = spec
        names = [c.lower() for c in getattr(ds, "classes", ())]  # CamVid's "Sky", Cityscapes' "sky"
        self.haze, self.sky = haze, names.index("sky") if "sky" in names else None
        self.aspect_range = tuple(aspect_range)
        self.colour_cast, self.degrade = colour_cast, degrade
        # frames are scaled to the network's input size (times a random scale), then cropped
        self.crop = crop or (spec.width, spec.height)
        # oversample > 1: crops cut at that many times the resolution (a teacher's view;
        # the trainer shrinks them to ``crop`` for the student), rounded to multiples of 32
        self.oversample = oversample
        self.crop = tuple(oversampled(side, oversample) for side in self.crop)
        self.ignore_index = ds.ignore_index
        self.scale_range = scale_range
        self.rng = np.random.default_rng(seed)
        self.items = []
        for i in tqdm(range(len(ds)), desc=f"loading {ds.split}", unit="frame", leave=False, disable=None):
            image, label = ds.read(i)
            self.items.append((np.ascontiguousarray(image[:, :, ::-1]), label))

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        image, label = self.items[i]
        if self.haze:  # weather is over the whole frame: its top is the farthest, not a crop's
            image = augment.haze(image, label, self.rng, self.haze, self.sky)
        # each frame's own width maps to the network's (pseudo-labelled clips may differ from CamVid's)
        # drawn only when asked: older recipes keep their random streams
        aspect = augment.random_aspect(self.rng, self.aspect_range) if self.aspect_range != (1.0, 1.0) else 1.0
        image, label = augment.random_scale_crop(
            image, label, *self.crop, self.spec.width * self.oversample / label.shape[1],
            self.scale_range, self.ignore_index, self.rng, aspect)
        image, label = augment.random_hflip(image, label, self.rng)
        image = augment.photometric(image, self.rng)
        if self.colour_cast:  # drawn only when asked: older recipes keep their random streams
            image = augment.colour_cast(image, self.rng, self.colour_cast)
        if self.degrade:
            image = augment.degrade(image, self.rng, self.degrade)
        x = normalize_rgb(np.ascontiguousarray(image), self.spec)
        return torch.from_numpy(x), torch.from_numpy(np.ascontiguousarray(label).astype(np.int64))

    def class_frequencies(self, num_classes: int) -> np.ndarray:
        """Share of each class among the labelled (not ignored) training pixels."""
        counts = np.zeros(num_classes, np.int64)
        for _, label in self.items:
            counts += np.bincount(label.reshape(-1), minlength=256)[:num_classes]
        return counts / counts.sum()


def enet_weights(freq: np.ndarray, c: float = 1.02) -> np.ndarray:
    """ENet class weights 1/ln(c + p): 1.0/ln(1.02) ≈ 50 at most, ~2-3 for dominant classes."""
    return (1.0 / np.log(c + freq)).astype(np.float32)
