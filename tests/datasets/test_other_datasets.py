import cv2
import numpy as np
import pytest

from segrt.datasets import open_dataset
from segrt.errors import ConfigError, DataError

DATASET_YAML = """classes:
  - {name: background, color: [0, 0, 0]}
  - {name: blob, color: [255, 0, 0]}
ignore_index: 255
"""


def make_folder_dataset(root, n=6, size=(64, 64)):
    """Bright squares on dark noise: 'blob' where the square is, 255 on a 2-pixel border."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "dataset.yaml").write_text(DATASET_YAML)
    rng = np.random.default_rng(0)
    for split in ("train", "val"):
        (root / "images" / split).mkdir(parents=True)
        (root / "masks" / split).mkdir(parents=True)
        for i in range(n):
            img = rng.integers(0, 60, (*size, 3), dtype=np.uint8)
            mask = np.zeros(size, np.uint8)
            y, x = rng.integers(4, size[0] - 28, 2)
            img[y:y + 24, x:x + 24] = 220
            mask[y:y + 24, x:x + 24] = 1
            mask[:2] = 255
            cv2.imwrite(str(root / "images" / split / f"f{i}.jpg"), img)
            cv2.imwrite(str(root / "masks" / split / f"f{i}.png"), mask)
    return root


def test_cityscapes_layout_and_train_id_mapping(tmp_path):
    city = "aachen"
    for split in ("train",):
        (tmp_path / "leftImg8bit" / split / city).mkdir(parents=True)
        (tmp_path / "gtFine" / split / city).mkdir(parents=True)
        cv2.imwrite(str(tmp_path / "leftImg8bit" / split / city / "aachen_000000_000019_leftImg8bit.png"),
                    np.zeros((2, 4, 3), np.uint8))
        # road, car, unlabeled, bicycle / sky, person, parking, vegetation
        ids = np.array([[7, 26, 0, 33], [23, 24, 9, 21]], np.uint8)
        cv2.imwrite(str(tmp_path / "gtFine" / split / city / "aachen_000000_000019_gtFine_labelIds.png"), ids)
    ds = open_dataset("cityscapes", tmp_path, "train")
    assert len(ds) == 1 and len(ds.classes) == 19 and ds.ignore_index == 255
    np.testing.assert_array_equal(ds.read_label(0), [[0, 13, 255, 18], [10, 11, 255, 8]])
    with pytest.raises(DataError, match="gtFine_trainvaltest.zip"):
        open_dataset("cityscapes", tmp_path, "val")


def test_folder_dataset_reads_pairs_with_classes_from_yaml(tmp_path):
    ds = open_dataset("folder", make_folder_dataset(tmp_path), "train")
    assert len(ds) == 6 and ds.classes == ("background", "blob") and ds.palette[1] == (255, 0, 0)
    image, label = ds.read(0)
    assert image.shape == (64, 64, 3) and set(np.unique(label)) == {0, 1, 255}


def test_folder_dataset_errors_name_the_file(tmp_path):
    root = make_folder_dataset(tmp_path)
    cv2.imwrite(str(root / "masks" / "train" / "f0.png"), np.full((64, 64), 7, np.uint8))
    with pytest.raises(DataError, match=r"f0\.png: values \[7\]"):
        open_dataset("folder", root, "train").read_label(0)
    (root / "masks" / "val" / "f1.png").unlink()
    with pytest.raises(DataError, match="1 of 6 have none"):
        open_dataset("folder", root, "val")
    (root / "dataset.yaml").write_text(DATASET_YAML + "colour_space: rgb\n")
    with pytest.raises(ConfigError, match="unknown key 'colour_space'"):
        open_dataset("folder", root, "train")


def test_train_and_eval_on_a_folder_dataset(tmp_path, capsys):
    pytest.importorskip("torch")
    from segrt.app.cli import main

    root = make_folder_dataset(tmp_path / "data", n=8)
    cfg = tmp_path / "t.yaml"
    cfg.write_text("model: fastscnn\ndataset: folder\ninput_width: 64\ninput_height: 64\nepochs: 40\n"
                   "batch_size: 4\nwarmup_epochs: 1\neval_every: 10\nthreads: 2\nlr: 0.01\nscale_range: [1.0, 1.0]\n")
    main(["train", "--config", str(cfg), "--data-root", str(root), "--out", str(tmp_path / "run")])
    main(["eval", str(tmp_path / "run" / "best.pt"), "--dataset", "folder", "--data-root", str(root)])
    out = capsys.readouterr().out
    assert "blob" in out
    miou = float(out.split("mIoU ")[-1].split()[0])
    assert miou > 50  # the blobs are easy: a model that learned nothing scores ~45 (all background)


def test_eval_refuses_a_dataset_with_other_classes(tmp_path, capsys):
    from segrt.app.cli import main
    from segrt.engines.zoo import base_model

    root = make_folder_dataset(tmp_path)
    with pytest.raises(SystemExit) as exit_info:
        main(["eval", str(base_model()), "--dataset", "folder", "--data-root", str(root)])
    assert exit_info.value.code == 2
    assert "not the dataset's" in capsys.readouterr().err
