"""Shared fixtures: the real CamVid copy and dashcam clip from ../shared, and tiny data."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
# `segrt run` without -o saves under runs/: in tests, under a temporary folder (subprocesses too)
os.environ.setdefault("SEGRT_RUNS_DIR", str(Path(__import__("tempfile").mkdtemp(prefix="segrt-test-runs-"))))
SHARED = Path(os.environ.get("SEGRT_SHARED", REPO.parent / "shared"))
CAMVID = SHARED / "datasets" / "camvid"
DASHCAM = SHARED / "videos" / "highway_dashcam_960x540.mp4"


@pytest.fixture(scope="session")
def camvid_root() -> Path:
    if not (CAMVID / "train").is_dir():
        pytest.skip(f"CamVid copy not found at {CAMVID} (set SEGRT_SHARED)")
    return CAMVID


@pytest.fixture(scope="session")
def dashcam() -> Path:
    if not DASHCAM.is_file():
        pytest.skip(f"dashcam clip not found at {DASHCAM} (set SEGRT_SHARED)")
    return DASHCAM


@pytest.fixture(scope="session")
def short_clip(dashcam: Path, tmp_path_factory) -> Path:
    """The first 12 frames of the real dashcam clip, as an mp4."""
    out = tmp_path_factory.mktemp("clip") / "short.mp4"
    cap = cv2.VideoCapture(str(dashcam))
    writer = cv2.VideoWriter(str(out), cv2.VideoWriter_fourcc(*"mp4v"), 25, (960, 540))
    for _ in range(12):
        ok, frame = cap.read()
        assert ok
        writer.write(frame)
    writer.release()
    cap.release()
    return out


@pytest.fixture(scope="session")
def tiny_camvid(camvid_root: Path, tmp_path_factory) -> Path:
    """A CamVid-layout folder with 8 real train frames and 4 real val frames."""
    root = tmp_path_factory.mktemp("tiny_camvid")
    for split, n in (("train", 8), ("val", 4)):
        for folder in (split, f"{split}annot"):
            (root / folder).mkdir()
            paths = sorted((camvid_root / folder).glob("*.png"))
            for p in paths[:: len(paths) // n][:n]:  # spread over the split's sequences
                shutil.copyfile(p, root / folder / p.name)
    return root


@pytest.fixture()
def frame() -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (540, 960, 3), dtype=np.uint8)
