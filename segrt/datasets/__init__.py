"""Datasets, torch-free: readers used by training, evaluation, calibration and the live loop."""

from __future__ import annotations

import os
from pathlib import Path

from segrt.registry import Registry

# Every dataset has: classes, palette (RGB), ignore_index, split, __len__, read(i) → (BGR
# uint8 image, uint8 label map), read_image(i), read_label(i).
DATASETS = Registry.table("dataset", "segrt.datasets", {
    "camvid": "camvid:CamVid", "cityscapes": "cityscapes:Cityscapes", "folder": "folder:FolderDataset",
    "pairs": "pairs:PairsDataset"})


def open_dataset(name: str, root: str | Path | None, split: str):
    """Dataset ``name`` at ``root`` (default: :func:`dataset_root`), one split."""
    return DATASETS.load(name)(root if root is not None else dataset_root(name), split)


# a dataset's own variable: a local copy that every command uses when --data-root is not given
ROOT_VARIABLES = {"camvid": "SEGRT_CAMVID"}


def dataset_root(name: str) -> Path:
    """Where every command looks for dataset ``name`` when no ``--data-root`` is given: its
    variable (``$SEGRT_CAMVID`` for CamVid, a local copy), else ``segrt data``'s cache."""
    env = os.environ.get(ROOT_VARIABLES.get(name, ""), "").strip()
    return Path(env).expanduser() if env else default_data_root() / name


def default_data_root() -> Path:
    """Where ``segrt data`` puts datasets: ``$SEGRT_DATA``, else ``datasets`` in segrt's cache
    (``~/.cache/segrt/datasets``; ``$SEGRT_CACHE/datasets``)."""
    from segrt.files import cache_root

    env = os.environ.get("SEGRT_DATA")
    return Path(env).expanduser() if env else cache_root() / "datasets"


def evenly_spaced(n_total: int, count: int) -> list[int]:
    """``count`` indices spread over ``range(n_total)`` (all of them if fewer)."""
    if count >= n_total:
        return list(range(n_total))
    return [round(i * (n_total - 1) / (count - 1)) for i in range(count)] if count > 1 else [0]


class Subset:
    """``count`` frames spread evenly over a dataset reader (for quick scoring)."""

    def __init__(self, ds, count: int) -> None:
        self.ds = ds
        self.index = evenly_spaced(len(ds), count)
        self.classes, self.split = ds.classes, ds.split
        self.ignore_index = getattr(ds, "ignore_index", 255)

    def __len__(self) -> int:
        return len(self.index)

    def read(self, i: int):
        return self.ds.read(self.index[i])

    def read_image(self, i: int):
        return self.ds.read_image(self.index[i])

    def read_label(self, i: int):
        return self.ds.read_label(self.index[i])


def subset(ds, count: int) -> Subset:
    return Subset(ds, count)


class Concat:
    """Two splits of one dataset read as one (CamVid's train+val protocol)."""

    def __init__(self, *parts) -> None:
        self.parts = parts
        self.classes, self.palette = parts[0].classes, parts[0].palette
        self.ignore_index = getattr(parts[0], "ignore_index", 255)
        self.split = "+".join(p.split for p in parts)
        self._index = [(k, i) for k, p in enumerate(parts) for i in range(len(p))]

    def __len__(self) -> int:
        return len(self._index)

    def read(self, i: int):
        k, j = self._index[i]
        return self.parts[k].read(j)

    def read_image(self, i: int):
        k, j = self._index[i]
        return self.parts[k].read_image(j)

    def read_label(self, i: int):
        k, j = self._index[i]
        return self.parts[k].read_label(j)
