"""The Python API (segrt.Segmenter) on real dashcam frames, and the default save of `segrt run`."""

from __future__ import annotations

import os
import subprocess
import sys

import cv2
import numpy as np
import pytest

import segrt
from segrt.realtime.overlay import CONTRAST, named_palette


@pytest.fixture(scope="module")
def frames(dashcam):
    cap = cv2.VideoCapture(str(dashcam))
    out = [cap.read()[1] for _ in range(3)]
    cap.release()
    return out


@pytest.mark.parametrize("name", ["fcn8s_camvid", "fpn_lite0_camvid_352x256.int8"])
def test_segmenter_by_name_sees_road_below_and_sky_above(name, frames):
    with segrt.Segmenter(name) as seg:
        labels = seg(frames[0])
        assert labels.shape == frames[0].shape[:2] and labels.dtype == np.uint8
        road, sky = seg.classes.index("Road"), seg.classes.index("Sky")
        assert (labels[-120:, 300:660] == road).mean() > 0.6  # the lane in front of the car
        assert (labels[:80] == sky).mean() > 0.5
        shown = seg.overlay(frames[0], labels)
        assert shown.shape == frames[0].shape and not np.array_equal(shown, frames[0])
        assert shown is not seg.overlay(frames[0], labels)  # a new array each call


def test_segmenter_stream_yields_every_frame(short_clip):
    seg = segrt.Segmenter()  # the shipped CPU default
    got = [(f.shape, lab.shape) for f, lab in seg.stream(str(short_clip))]
    seg.close()
    assert got == [((540, 960, 3), (540, 960))] * 12


def test_segmenter_refuses_what_is_not_a_frame():
    seg = segrt.Segmenter("fcn8s_camvid")
    with pytest.raises(ValueError, match="uint8"):
        seg(np.zeros((10, 10), np.float32))
    with pytest.raises(segrt.errors.ModelError, match="not a shipped model"):
        segrt.Segmenter("no_such_model")


def test_contrast_palette_keeps_road_car_and_sky_apart():
    classes = ("Sky", "Road", "Car", "Unknown")
    camvid = ((128, 128, 128), (128, 64, 128), (64, 0, 128), (1, 2, 3))
    assert named_palette("model", classes, camvid) == camvid
    pal = np.asarray(named_palette("contrast", classes, camvid), float)
    assert tuple(pal[1]) == CONTRAST["Road"]
    gaps = [np.abs(pal[i] - pal[j]).sum() for i in range(3) for j in range(i + 1, 3)]
    assert min(gaps) > 200  # in CamVid's own, Road and Car are 128 apart in sum
    with pytest.raises(ValueError, match="contrast"):
        named_palette("neon", classes, camvid)


def test_run_without_output_saves_under_numbered_runs_folders(short_clip, tmp_path):
    env = {**os.environ, "SEGRT_RUNS_DIR": str(tmp_path / "runs")}
    for _ in range(2):
        r = subprocess.run([sys.executable, "-m", "segrt", "run", str(short_clip), "--max-frames", "4"],
                           capture_output=True, text=True, env=env, timeout=300)
        assert r.returncode == 0, r.stderr
    assert sorted(p.relative_to(tmp_path).as_posix() for p in (tmp_path / "runs").rglob("*.mp4")) == [
        "runs/run/short.mp4", "runs/run2/short.mp4"]
    assert f"saved {tmp_path / 'runs' / 'run2' / 'short.mp4'}" in r.stdout
    r = subprocess.run([sys.executable, "-m", "segrt", "run", str(short_clip), "--max-frames", "4", "--no-save"],
                       capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 0 and "saved" not in r.stdout and not (tmp_path / "runs" / "run3").exists()


def test_segrt_run_draws_what_the_api_draws(short_clip, tmp_path):
    """The CLI is built on Segmenter: same model, preprocessing and overlay, so a frame
    `segrt run` writes equals `seg.overlay` of that frame."""
    r = subprocess.run([sys.executable, "-m", "segrt", "run", str(short_clip), "--model", "fcn8s_camvid",
                        "--max-frames", "3", "--no-legend", "--no-hud", "--palette", "contrast", "--alpha", "0.6",
                        "-o", str(tmp_path / "frames") + "/"], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    written = sorted((tmp_path / "frames").iterdir())
    assert len(written) == 3
    cap = cv2.VideoCapture(str(short_clip))
    with segrt.Segmenter("fcn8s_camvid", palette="contrast", alpha=0.6) as seg, \
            segrt.Segmenter("unet_camvid", palette="contrast", alpha=0.6) as other:
        for path in written:
            ok, frame = cap.read()
            assert ok
            got = cv2.imread(str(path)).astype(int)
            # JPEG frames: small errors everywhere, large ones only along colour edges
            same = (np.abs(got - seg.overlay(frame)).max(axis=2) > 40).mean()
            another = (np.abs(got - other.overlay(frame)).max(axis=2) > 40).mean()
            assert same < 0.02 and another > 5 * same
    cap.release()


def test_segmenter_takes_run_options_and_names_the_bad_one():
    with segrt.Segmenter("fcn8s_camvid", classes=("road", "CAR")) as seg:
        frame = np.full((360, 480, 3), 90, np.uint8)
        labels = np.zeros((360, 480), np.uint8)  # all Sky: left out, so the frame shows through
        assert np.array_equal(seg.overlay(frame, labels), frame)
    with pytest.raises(segrt.errors.SegrtError, match="^--classes: classes Lane are not the model's"):
        segrt.Segmenter("fcn8s_camvid", classes=("Lane",))
    with pytest.raises(segrt.errors.SegrtError, match="^--alpha: "):
        segrt.Segmenter("fcn8s_camvid", alpha=1.5)
