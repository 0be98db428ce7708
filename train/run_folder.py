"""A training run's folder: the files a run writes there, the check before a run starts, and
metrics.csv, one row per epoch (kept across a resume)."""

from __future__ import annotations

import csv
from pathlib import Path

from segrt.errors import SegrtError
from segrt.files import atomic_output, shown

RUN_FILES = ("last.pt", "best.pt", "metrics.csv", "curves.png", "confusion.png", "predictions.png")


def check_out_dir(out_dir: Path, resume: Path | None, overwrite: bool) -> None:
    if out_dir.exists() and not out_dir.is_dir():
        raise SegrtError(f"--out {shown(out_dir)}: exists and is not a folder; name a folder for the run")
    held = [n for n in RUN_FILES if (out_dir / n).exists()]
    if held and resume is None and not overwrite:
        raise SegrtError(f"--out {shown(out_dir)} already holds a training run ({', '.join(held)}); continue it with "
                         f"--resume {shown(out_dir / 'last.pt')}, replace it with --overwrite, or pick a new --out")


class EpochLog:
    """metrics.csv, one row per epoch. A resumed run keeps the rows of the epochs before
    ``start`` (a run killed after logging an epoch but before saving it logs it again); a new
    one (``overwrite``: everything was checked, the old run's files go now) starts afresh."""

    HEADER = ["epoch", "train_loss", "lr", "val_miou", "val_pixel_accuracy", "seconds"]

    def __init__(self, out_dir: Path, start: int, new: bool, overwrite: bool) -> None:
        if overwrite and new:
            for name in RUN_FILES:
                (out_dir / name).unlink(missing_ok=True)
        try:
            out_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise SegrtError(f"--out {shown(out_dir)}: cannot create the folder ({exc.strerror})") from None
        path = out_dir / "metrics.csv"
        new = new or not path.exists()
        if not new:
            with open(path, newline="") as f:
                rows = list(csv.reader(f))
            kept = rows[:1] + [r for r in rows[1:] if r and r[0].isdigit() and int(r[0]) < start]
            with atomic_output(path, "training log") as tmp, open(tmp, "w", newline="") as f:
                csv.writer(f).writerows(kept)
        self._file = open(path, "w" if new else "a", newline="")  # noqa: SIM115 (closed by close())
        self._writer = csv.writer(self._file)
        if new:
            self._writer.writerow(self.HEADER)

    def row(self, values: list) -> None:
        self._writer.writerow(values)
        self._file.flush()

    def close(self) -> None:
        self._file.close()
