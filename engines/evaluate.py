"""Accuracy of an exported model as it runs: backend label maps scored against CamVid labels.

Torch-free. Predictions at network resolution are resized nearest-neighbour to the label
resolution, exactly as the overlay shows them, so the score is that of what users see.
"""

from __future__ import annotations

import cv2
from tqdm import tqdm

from segrt.datasets.camvid import CamVid
from segrt.metrics import ConfusionMatrix
from segrt.preprocess import Preprocessor


def evaluate_backend(backend, ds: CamVid, progress: bool | None = None) -> dict:
    """mIoU, per-class IoU, pixel accuracy, mean class accuracy of an open backend on ``ds``."""
    m = backend.manifest
    prep = Preprocessor(m.preprocess)
    x = backend.input_buffer(1)
    cm = ConfusionMatrix(len(m.classes))
    for i in tqdm(range(len(ds)), desc=f"eval {ds.split}", unit="frame", leave=False,
                  disable=None if progress is None else not progress):
        image, label = ds.read(i)
        prep(image, out=x[0])
        pred = backend.infer(x)[0]
        cm.update(label, cv2.resize(pred, label.shape[::-1], interpolation=cv2.INTER_NEAREST))
    return {**cm.compute(), "classes": list(m.classes), "frames": len(ds), "split": ds.split}
