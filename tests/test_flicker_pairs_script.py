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
