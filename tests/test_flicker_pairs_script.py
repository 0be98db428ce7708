"""benchmarks/flicker_pairs.py: the flicker it splits by class pair adds up to the flicker
segrt measures, and a model steady because it is wrong the same way shows as such."""

import importlib.util
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from segrt.evaluation.evaluate import flicker
from segrt.preprocess import Preprocess

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"
spec = importlib.util.spec_from_file_location("flicker_pairs", BENCH / "flicker_pairs.py")
flicker_pairs = importlib.util.module_from_spec(spec)
spec.loader.exec_module(flicker_pairs)


class Scripted:
    """A backend that answers with the label maps it was given, in order."""

    def __init__(self, maps) -> None:
        self.maps = iter(maps)
        self.manifest = SimpleNamespace(classes=["Sky", "Building", "Road"], preprocess=Preprocess(4, 2))

    def input_buffer(self, n):
        return np.zeros((n, 3, 2, 4), np.float32)

    def infer(self, x):
        return next(self.maps)[None]


def test_pairs_add_up_to_the_flicker_and_name_the_classes_that_swap():
    rng = np.random.default_rng(0)
    maps = [rng.integers(0, 3, (2, 4)).astype(np.uint8) for _ in range(6)]
    frames = [np.zeros((2, 4, 3), np.uint8)] * 6

    row = flicker_pairs.pairs_on(Scripted(maps), frames, limit=6)
    expected = 100 * flicker(Scripted(maps), frames)["mean"]
    assert row["frames"] == 6
    assert abs(row["flicker_percent"] - expected) < 1e-2
    assert abs(sum(row["pairs_percent"].values()) - row["flicker_percent"]) < 0.05
    swaps = [((a == 0) & (b == 1) | (a == 1) & (b == 0)).mean() for a, b in zip(maps, maps[1:], strict=False)]
    sky_building = 100 * sum(swaps) / 5
    assert abs(row["pairs_percent"].get("Sky<->Building", 0.0) - sky_building) < 1e-2
    assert abs(sum(row["class_share_percent"].values()) - 100) < 0.5
    per_pair = [100 * (a != b).mean() for a, b in zip(maps, maps[1:], strict=False)]
    halves = flicker_pairs.pairs_on(Scripted(maps), frames, limit=6, window=3)["window_percent"]
    assert len(halves) == 2 and abs(halves[0] - np.mean(per_pair[:3])) < 1e-2
    assert abs(halves[1] - np.mean(per_pair[3:])) < 1e-2


class Thresholder:
    """A backend that labels each pixel by its brightness: its labels move with the scene."""

    def __init__(self, noisy: bool = False) -> None:
        self.manifest = SimpleNamespace(classes=["Sky", "Building", "Road"], preprocess=Preprocess(160, 96))
        self.rng = np.random.default_rng(1) if noisy else None

    def input_buffer(self, n):
        return np.zeros((n, 3, 96, 160), np.float32)

    def infer(self, x):
        grey = x[0].mean(0)
        labels = (grey > -0.3).astype(np.uint8) + (grey > 0.3)
        if self.rng is not None:  # a tenth of the pixels answer at random: flicker no motion explains
            flip = self.rng.random(labels.shape) < 0.1
            labels[flip] = self.rng.integers(0, 3, int(flip.sum()))
        return labels[None]


def panned_scene(frames: int, step: int = 4) -> list[np.ndarray]:
    """A blotchy scene (blurred noise) panned ``step`` pixels a frame to the side and down, as
    from a car turning over a crest."""
    import cv2

    rng = np.random.default_rng(0)
    world = rng.integers(0, 256, (192 + step * frames, 320 + step * frames)).astype(np.float32)
    world = cv2.normalize(cv2.GaussianBlur(world, (0, 0), 6), None, 0, 255, cv2.NORM_MINMAX).astype(np.uint8)
    return [np.ascontiguousarray(np.repeat(world[i * step:i * step + 192, i * step:i * step + 320, None], 3, axis=2))
            for i in range(frames)]


def test_motion_compensated_flicker_forgives_motion_and_not_noise():
    frames = panned_scene(8)
    steady = flicker(Thresholder(), frames, warp=True)
    assert steady["mean"] > 0.03  # edges that the pan moved count as raw flicker
    assert steady["warped_mean"] < steady["mean"] / 4  # and not once the motion is taken out
    noisy = flicker(Thresholder(noisy=True), frames, warp=True)
    assert noisy["warped_mean"] > 0.08  # a label flipping in place is still seen
    row = flicker_pairs.pairs_on(Thresholder(), frames, limit=8, warp=True)
    assert row["warped_flicker_percent"] < row["flicker_percent"] / 4
    assert abs(sum(row["warped_pairs_percent"].values()) - row["warped_flicker_percent"]) < 0.05


def test_bad_counts_are_one_line_errors_with_status_2():
    import subprocess
    import sys

    for args in (["--window", "0"], ["--frames", "1"]):
        done = subprocess.run([sys.executable, str(BENCH / "flicker_pairs.py"), "m.onnx", *args],
                              capture_output=True, text=True, timeout=120)
        err = done.stderr.strip()
        assert done.returncode == 2 and len(err.splitlines()) == 1 and args[0] in err, err
