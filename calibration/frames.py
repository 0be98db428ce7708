"""Real frames for INT8 calibration, preprocessed exactly as at run time."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path

import cv2
import numpy as np

from segrt.datasets import evenly_spaced, open_dataset
from segrt.errors import DataError
from segrt.images import IMAGE_SUFFIXES, read_image
from segrt.preprocess import Preprocess, Preprocessor


def dataset_frames(name: str, root: str | Path | None, split: str = "train", count: int = 64) -> Iterator[np.ndarray]:
    """BGR frames spread over a dataset's split (and so over CamVid's sequences)."""
    ds = open_dataset(name, root, split)
    for i in evenly_spaced(len(ds), count):
        yield ds.read_image(i)


def folder_frames(folder: str | Path, count: int = 64) -> Iterator[np.ndarray]:
    """BGR frames spread over an image folder (sorted by name)."""
    files = sorted(p for p in Path(folder).iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    for i in evenly_spaced(len(files), count) if files else []:
        frame = read_image(files[i], cv2.IMREAD_COLOR)
        if frame is None:
            raise DataError(f"{files[i]}: not a readable image; remove it from the calibration folder")
        yield frame


def video_frames(path: str | Path, count: int = 64) -> Iterator[np.ndarray]:
    """BGR frames spread over a video file."""
    cap = cv2.VideoCapture(str(path))
    try:
        total = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
        if not cap.isOpened() or total <= 0:
            raise DataError(f"{path}: cannot read as video for calibration frames")
        for i in evenly_spaced(total, count):
            cap.set(cv2.CAP_PROP_POS_FRAMES, i)
            ok, frame = cap.read()
            if ok:
                yield frame
    finally:
        cap.release()


def calibration_batches(frames: Iterable[np.ndarray], spec: Preprocess, input_name: str,
                        batch_size: int = 1) -> Iterator[dict[str, np.ndarray]]:
    """``{input_name: float32 (batch, 3, h, w)}`` per batch; the last batch may be smaller."""
    prep = Preprocessor(spec)
    batch = np.empty(spec.input_shape(batch_size), np.float32)
    n = 0
    for frame in frames:
        prep(frame, out=batch[n])
        n += 1
        if n == batch_size:
            yield {input_name: batch.copy()}
            n = 0
    if n:
        yield {input_name: batch[:n].copy()}


def save_npz(batches: Iterable[dict[str, np.ndarray]], path: str | Path) -> Path:
    """All batches stacked into one ``.npz`` keyed by input name (ModelOpt's
    ``--calibration_data_path`` format)."""
    stacked: dict[str, list[np.ndarray]] = {}
    for b in batches:
        for k, v in b.items():
            stacked.setdefault(k, []).append(v)
    if not stacked:
        raise DataError("no calibration frames were produced; check the frame source")
    path = Path(path)
    np.savez(path, **{k: np.concatenate(v) for k, v in stacked.items()})
    return path
