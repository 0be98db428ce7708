"""Calibration tensors cached on disk, keyed by what went into them.

The key is a SHA-256 over the raw bytes of every frame, the preprocessing definition and the
input size, so a different frame set, a changed mean/std or another input size never reuses
a stale cache. The cache is one ``.npz`` holding the tensor and its key; it is written to a
temporary name and renamed, and a file that does not load or whose key or shape disagree is
rebuilt, not trusted.
"""

from __future__ import annotations

import hashlib
import json
import zipfile
from collections.abc import Iterable
from pathlib import Path

import numpy as np
from tqdm import tqdm

from segrt.errors import DataError, SegrtError
from segrt.files import atomic_output, cache_root
from segrt.preprocess import Preprocess, Preprocessor


def default_cache_dir() -> Path:
    return cache_root() / "calibration"


def read_frames(source: str, count: int, data_root: str | Path | None = None) -> list[np.ndarray]:
    """``count`` BGR frames spread evenly over ``source``: ``DATASET:SPLIT`` (camvid:train,
    cityscapes:train; at ``data_root``, else where the dataset lives), an image folder or a
    video file."""
    from segrt.calibration.frames import dataset_frames, folder_frames, video_frames
    from segrt.datasets import DATASETS

    name, _, split = source.partition(":")
    if split and name in DATASETS.names():
        frames = list(dataset_frames(name, data_root, split, count))
    elif Path(source).is_dir():
        frames = list(folder_frames(source, count))
    elif Path(source).is_file():
        frames = list(video_frames(source, count))
    else:
        raise DataError(f"calibration source {source!r} not found; pass camvid:train, an image folder "
                        "or a video file")
    if not frames:
        inner = sorted(p.name for p in Path(source).iterdir() if p.is_dir() and not p.name.startswith(".")) \
            if Path(source).is_dir() else []
        if inner:
            raise DataError(f"calibration source {source!r} gave no frames: it holds only folders "
                            f"({', '.join(inner[:5])}); pass one, e.g. {Path(source) / inner[0]}")
        raise DataError(f"calibration source {source!r} gave no frames; point it at images or a video")
    return frames


def cache_key(frames: Iterable[np.ndarray], spec: Preprocess) -> str:
    h = hashlib.sha256()
    h.update(json.dumps(spec.to_dict(), sort_keys=True).encode())
    for f in frames:
        h.update(repr((f.shape, str(f.dtype))).encode())
        h.update(np.ascontiguousarray(f).tobytes())
    return h.hexdigest()


def _load(path: Path, key: str, shape: tuple[int, ...]) -> np.ndarray | None:
    """The cached tensor, or None when the file is missing, corrupt, stale or misshapen."""
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as z:
            if str(z["key"]) != key:
                return None
            data = z["data"]
    except (OSError, ValueError, KeyError, zipfile.BadZipFile, EOFError):
        return None
    return data if data.shape == shape and data.dtype == np.float32 else None


def calibration_tensor(frames: list[np.ndarray], spec: Preprocess, cache_dir: str | Path | None = None,
                       progress: bool | None = None) -> tuple[np.ndarray, str, bool]:
    """float32 (N, 3, h, w) from ``frames`` through the run-time preprocessing.

    Returns ``(tensor, key, from_cache)``. ``cache_dir=None`` uses ``$SEGRT_CACHE`` or
    ``~/.cache/segrt``; the cache is rebuilt when it is stale or corrupt.
    """
    key = cache_key(frames, spec)
    path = Path(cache_dir or default_cache_dir()) / f"{key[:20]}.npz"
    shape = spec.input_shape(len(frames))
    cached = _load(path, key, shape)
    if cached is not None:
        return cached, key, True
    prep = Preprocessor(spec)
    data = np.empty(shape, np.float32)
    for i, frame in enumerate(tqdm(frames, desc="calibration frames", unit="frame", leave=False,
                                   disable=None if progress is None else not progress)):
        prep(frame, out=data[i])
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_output(path, "calibration cache") as tmp, open(tmp, "wb") as f:
            np.savez(f, data=data, key=np.array(key))
    except (SegrtError, OSError):  # a read-only, full or misplaced cache costs speed next time, not this run
        pass
    return data, key, False
