"""Shared fixtures: the real CamVid copy and dashcam clip from ../shared, and tiny data."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
# `segrt run` without -o saves under runs/: in tests, under a temporary folder (subprocesses too)
os.environ.setdefault("SEGRT_RUNS_DIR", str(Path(__import__("tempfile").mkdtemp(prefix="segrt-test-runs-"))))


def segrt_env(env: dict | None = None) -> dict:
    """The environment a ``segrt`` subprocess of the tests gets: this one, without the OPENCV_*
    settings this pytest process may hold (segrt must quiet OpenCV itself), a wide terminal
    for help texts, and ``env`` on top."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("OPENCV_")}
    return {**base, "COLUMNS": "200", **(env or {})}


def run_segrt(*args, cwd: Path | str | None = None, env: dict | None = None, timeout: float = 600,
              **popen) -> subprocess.CompletedProcess:
    """``python -m segrt ARGS`` as a user runs it: a subprocess, stdout and stderr captured, so
    whatever C++ libraries print is seen too. The one helper the test files share."""
    return subprocess.run([sys.executable, "-m", "segrt", *map(str, args)], cwd=cwd, capture_output=True,
                          text=True, timeout=timeout, env=segrt_env(env), **popen)


def start_segrt(*args, cwd: Path | str | None = None, env: dict | None = None) -> subprocess.Popen:
    """``python -m segrt ARGS`` started in a session of its own (for signals), pipes open."""
    return subprocess.Popen([sys.executable, "-m", "segrt", *map(str, args)], cwd=cwd, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=segrt_env(env), start_new_session=True)


def _camvid_dir() -> Path:
    """CamVid for the tests, never skipped for: $SEGRT_CAMVID (a local copy, as CI sets), else
    the copy `segrt data camvid` made, else ../shared beside a development checkout."""
    from segrt.datasets import default_data_root

    env = os.environ.get("SEGRT_CAMVID")
    for candidate in ([Path(env).expanduser()] if env else []) + [default_data_root() / "camvid",
                                                                   REPO.parent / "shared" / "datasets" / "camvid"]:
        if (candidate / "train").is_dir() and (candidate / "valannot").is_dir():
            return candidate
    return default_data_root() / "camvid"


def _dashcam_path() -> Path:
    env = os.environ.get("SEGRT_DEMO_VIDEO")
    if env:
        return Path(env).expanduser()
    shared = REPO.parent / "shared" / "videos" / "highway_dashcam_960x540.mp4"
    if shared.is_file():
        return shared
    from segrt.files import cache_root

    return cache_root() / "videos" / "solidWhiteRight.mp4"


CAMVID = _camvid_dir()
DASHCAM = _dashcam_path()


@pytest.fixture(scope="session")
def camvid_root() -> Path:
    """CamVid (train and val). Missing here means `segrt data camvid` downloads it once (the
    README's test command does that first); a failure is an error, never a skip."""
    if not (CAMVID / "train").is_dir():
        from segrt.app.cli import main

        try:
            main(["data", "camvid", "--root", str(CAMVID)])
        except SystemExit as exc:
            if exc.code:
                raise RuntimeError(f"CamVid is not at {CAMVID} and could not be fetched; set SEGRT_CAMVID to a "
                                   "local copy") from None
    return CAMVID


@pytest.fixture(scope="session")
def dashcam() -> Path:
    """The demo clip (downloaded once and checked by SHA-256 if not given by SEGRT_DEMO_VIDEO)."""
    if not DASHCAM.is_file():
        from segrt.datasets.fetch import demo_video

        assert demo_video() == DASHCAM
    return DASHCAM


def first_frames(video: Path, out: Path, frames: int, fps: float) -> Path:
    """The first ``frames`` frames of ``video`` as an mp4 (mp4v) that claims ``fps``."""
    cap = cv2.VideoCapture(str(video))
    size = (int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)))
    writer = cv2.VideoWriter(str(out), cv2.VideoWriter_fourcc(*"mp4v"), fps, size)
    for _ in range(frames):
        ok, frame = cap.read()
        assert ok
        writer.write(frame)
    writer.release()
    cap.release()
    return out


def frames_in(video: Path) -> int:
    """Frames a video file decodes to (read one by one, not its header's count)."""
    cap = cv2.VideoCapture(str(video))
    n = 0
    while cap.read()[0]:
        n += 1
    cap.release()
    return n


@pytest.fixture(scope="session")
def short_clip(dashcam: Path, tmp_path_factory) -> Path:
    """The first 12 frames of the real dashcam clip, as an mp4."""
    return first_frames(dashcam, tmp_path_factory.mktemp("clip") / "short.mp4", 12, 25)


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
