"""Accuracy of an exported model as it runs: backend label maps scored against CamVid labels.

Torch-free. Predictions at network resolution are resized nearest-neighbour to the label
resolution, exactly as the overlay shows them, so the score is that of what users see.
"""

from __future__ import annotations

import cv2
from tqdm import tqdm

from segrt.errors import SegrtError
from segrt.metrics import ConfusionMatrix
from segrt.preprocess import Preprocessor


def evaluate_backend(backend, ds, progress: bool | None = None) -> dict:
    """mIoU, per-class IoU, pixel accuracy, mean class accuracy of an open backend on ``ds``
    (any dataset reader; its classes must be the model's)."""
    m = backend.manifest
    if tuple(ds.classes) != tuple(m.classes):
        raise SegrtError(f"the model's classes ({len(m.classes)}: {', '.join(m.classes[:3])}, …) are not the "
                         f"dataset's ({len(ds.classes)}: {', '.join(ds.classes[:3])}, …); evaluate on the dataset "
                         "it was trained for")
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


def format_metrics(m: dict) -> str:
    """A per-class IoU table followed by mIoU and accuracies, in percent."""
    rows = [f"{'class':<14}{'IoU %':>8}"]
    rows += [f"{c:<14}{100 * v:>8.1f}" for c, v in zip(m["classes"], m["per_class_iou"], strict=True)]
    rows.append(f"mIoU {100 * m['miou']:.2f}  pixel accuracy {100 * m['pixel_accuracy']:.2f}  "
                f"mean class accuracy {100 * m['mean_class_accuracy']:.2f}  ({m['frames']} {m['split']} frames)")
    return "\n".join(rows)
