"""The side-by-side "image pairs" layout (Kaggle's cityscapes image pairs), on generated pairs."""

import dataclasses

import cv2
import numpy as np
import pytest

from segrt.datasets import open_dataset
from segrt.datasets.pairs import nearest_color_labels
from segrt.errors import ConfigError, DataError

YAML = """classes:
  - {name: road, color: [128, 64, 128]}
  - {name: car, color: [0, 0, 142]}
  - {name: sky, color: [70, 130, 180]}
void_colors: [[0, 0, 0]]
ignore_index: 255
"""
COLORS = {0: (128, 64, 128), 1: (0, 0, 142), 2: (70, 130, 180), 255: (0, 0, 0)}


def make_pairs(root, n=4, size=64, quality=75):
    """Sky on top, road below, a car box, a black (void) strip; photo = noisy class colours,
    label half = the class colours, both through JPEG (as the Kaggle files are)."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "dataset.yaml").write_text(YAML)
    rng = np.random.default_rng(0)
    truths = {}
    for split in ("train", "val"):
        (root / split).mkdir()
        for i in range(n):
            label = np.zeros((size, size), np.uint8)
            label[size // 2:] = 0
            label[: size // 2] = 2
            y, x = rng.integers(size // 2, size - 16), rng.integers(0, size - 20)
            label[y:y + 12, x:x + 20] = 1
            label[:, :4] = 255
            rgb = np.zeros((size, size, 3), np.uint8)
            for v, c in COLORS.items():
                rgb[label == v] = c
            photo = np.clip(rgb.astype(int) + rng.integers(-30, 30, rgb.shape), 0, 255).astype(np.uint8)
            pair = np.concatenate([photo, rgb], axis=1)[:, :, ::-1]  # BGR for OpenCV
            cv2.imwrite(str(root / split / f"{i}.jpg"), pair, [cv2.IMWRITE_JPEG_QUALITY, quality])
            truths[(split, i)] = label
    return root, truths


def test_pairs_split_photo_and_label_and_map_jpeg_colours_to_the_nearest_class(tmp_path):
    root, truths = make_pairs(tmp_path / "pairs")
    ds = open_dataset("pairs", root, "val")
    assert len(ds) == 4 and ds.classes == ("road", "car", "sky") and ds.palette[1] == (0, 0, 142)
    image, label = ds.read(0)
    assert image.shape == (64, 64, 3) and label.shape == (64, 64) and label.dtype == np.uint8
    truth = truths[("val", 0)]
    # JPEG smears colours at edges; away from them every pixel gets its class back
    inner = cv2.erode((truth == cv2.dilate(truth, np.ones((3, 3)))).astype(np.uint8), np.ones((5, 5))) > 0
    assert (label[inner] == truth[inner]).mean() > 0.99
    assert set(np.unique(label)) == {0, 1, 2, 255}
    np.testing.assert_array_equal(ds.read_label(0), label)
    np.testing.assert_array_equal(ds.read_image(0), image)


def test_nearest_colour_takes_the_closest_and_void_becomes_ignore():
    colors = np.array([[0, 0, 0], [255, 255, 255], [255, 0, 0]])
    values = np.array([255, 0, 1], np.uint8)
    rgb = np.array([[[10, 10, 10], [250, 240, 245], [200, 30, 20], [128, 128, 128]]], np.uint8)
    # (128,128,128) is nearer black (void) than white? |128|²·3 vs |127|²·3: white wins
    np.testing.assert_array_equal(nearest_color_labels(rgb, colors, values), [[255, 0, 1, 0]])


def test_pairs_train_and_eval_end_to_end(tmp_path):
    torch = pytest.importorskip("torch")
    from segrt.train.config import TrainConfig
    from segrt.train.trainer import fit

    root, _ = make_pairs(tmp_path / "pairs", n=4)
    torch.manual_seed(0)
    cfg = TrainConfig(model="fcn8s", model_args={"encoder": "resnet18", "width": 0.25, "head": 16},
                      dataset="pairs", input_width=64, input_height=64, epochs=2, batch_size=2,
                      eval_every=1, threads=1, device="cpu", amp="fp32")
    best = fit(cfg, root, tmp_path / "run")
    assert 0.0 <= best["miou"] <= 1.0 and (tmp_path / "run" / "best.pt").is_file()
    from segrt.train import checkpoint

    assert checkpoint.load(tmp_path / "run" / "best.pt")["classes"] == ["road", "car", "sky"]
    assert dataclasses.asdict(cfg)["dataset"] == "pairs"


@pytest.mark.parametrize("problem, match", [
    ("odd", "two equal halves"), ("no_yaml", "dataset.yaml"), ("bad_color", "colours must be"),
    ("no_split", "no such folder"),
])
def test_pairs_errors_name_the_file_and_the_fix(tmp_path, problem, match):
    root, _ = make_pairs(tmp_path / "pairs", n=1)
    if problem == "odd":
        cv2.imwrite(str(root / "val" / "0.jpg"), np.zeros((8, 9, 3), np.uint8))
    elif problem == "no_yaml":
        (root / "dataset.yaml").unlink()
    elif problem == "bad_color":
        (root / "dataset.yaml").write_text(YAML.replace("[0, 0, 142]", "[0, 0, 300]"))
    split = "test" if problem == "no_split" else "val"
    with pytest.raises((DataError, ConfigError), match=match):
        open_dataset("pairs", root, split).read(0)
