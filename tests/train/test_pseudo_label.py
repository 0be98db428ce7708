"""Self-training: a teacher labels frames of a clip (flip-averaged, unsure pixels void), and a
recipe trains on them beside CamVid with extra_data."""

import dataclasses

import cv2
import numpy as np
import pytest

torch = pytest.importorskip("torch")

from segrt.datasets import open_dataset  # noqa: E402
from segrt.engines.zoo import resolve_model  # noqa: E402
from segrt.errors import ConfigError  # noqa: E402
from segrt.preprocess import Preprocess, Preprocessor  # noqa: E402
from segrt.train import checkpoint  # noqa: E402
from segrt.train.pseudo_label import class_thresholds, pseudo_label, teacher_probabilities  # noqa: E402
from segrt.train.trainer import fit  # noqa: E402
from tests.train.test_trainer import TINY  # noqa: E402


def test_class_thresholds_keep_at_least_min_keep_of_each_class():
    conf = [np.array([[250, 240, 100, 90]], np.uint8), np.array([[60, 80, 255, 30]], np.uint8)]
    labels = [np.array([[0, 0, 1, 1]], np.uint8), np.array([[1, 1, 0, 2]], np.uint8)]
    t = class_thresholds(conf, labels, 4, threshold=0.9, min_keep=0.5)
    assert t[0] == pytest.approx(0.9 * 255)  # class 0: 240, 250, 255 all reach 0.9 already
    assert t[1] <= 85 and (np.array([100, 90, 60, 80]) >= t[1]).mean() >= 0.5  # lowered for class 1
    assert t[2] <= 30  # its one pixel kept
    assert t[3] == pytest.approx(0.9 * 255)  # never predicted: untouched


@pytest.fixture(scope="module")
def clip(camvid_root, tmp_path_factory):
    """Six real CamVid val frames as an mp4 clip."""
    path = tmp_path_factory.mktemp("clip") / "drive.mp4"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 10, (480, 360))
    for p in sorted((camvid_root / "val").glob("*.png"))[:60:10]:
        writer.write(cv2.imread(str(p)))
    writer.release()
    return path


def test_pseudo_labels_are_the_teachers_confident_labels(clip, tmp_path):
    teacher = resolve_model("fastscnn_camvid", prefer=(".pt",))
    out = tmp_path / "pseudo"
    summary = pseudo_label(teacher, [("drive", clip, (0, 0, 480, 360))], out, frames=4, threshold=0.95, min_keep=0.6)
    ds = open_dataset("folder", out, "train")
    assert len(ds) == summary["frames"] == 4 and ds.ignore_index == 11 and ds.classes[3] == "Road"
    assert 0.6 <= summary["kept_share"] < 1.0  # unsure pixels voided, yet each class keeps >= 60 %
    # the kept labels are the teacher's own flip-averaged argmax on the stored frame
    ckpt = checkpoint.load(teacher)
    net = checkpoint.build_from_checkpoint(ckpt)
    prep = Preprocessor(Preprocess.from_dict(ckpt["preprocess"]))
    image, label = ds.read(1)
    assert image.shape[1] == 480
    ours = teacher_probabilities(net, prep, image).argmax(0).numpy()
    kept = label != 11
    assert kept.mean() > 0.5 and (ours[kept] == label[kept]).mean() > 0.97  # up to the stored JPEG's rounding
    with pytest.raises(Exception, match="already|exists"):
        pseudo_label(teacher, [("drive", clip, None)], out, frames=2)


def test_extra_data_adds_the_pseudo_labelled_frames_to_training(clip, tiny_camvid, tmp_path):
    teacher = resolve_model("fastscnn_camvid", prefer=(".pt",))
    pseudo_label(teacher, [("drive", clip, None)], tmp_path / "pseudo", frames=4)
    fit(dataclasses.replace(TINY, epochs=1, extra_data=(str(tmp_path / "pseudo"),)), tiny_camvid, tmp_path / "run")
    assert checkpoint.load(tmp_path / "run" / "last.pt")["trained_on"] == "camvid train+train (12 frames)"
    from tests.datasets.test_other_datasets import make_folder_dataset

    other = make_folder_dataset(tmp_path / "blobs")
    with pytest.raises(ConfigError, match="key 'extra_data': .*blobs has classes background, blob"):
        fit(dataclasses.replace(TINY, epochs=1, extra_data=(str(other),)), tiny_camvid, tmp_path / "run2")


def test_pseudo_labels_make_missing_parents_and_refuse_an_unwritable_out_before_labelling(clip, tmp_path):
    from segrt.errors import SegrtError

    teacher = resolve_model("fastscnn_camvid", prefer=(".pt",))
    nested = tmp_path / "runs" / "pseudo" / "round1"  # neither runs/ nor runs/pseudo exists yet
    assert pseudo_label(teacher, [("drive", clip, None)], nested, frames=2)["frames"] == 2
    assert len(open_dataset("folder", nested, "train")) == 2
    (tmp_path / "a_file").write_text("mine\n")
    # under a regular file: refused at once, before the (missing) clip is even opened
    with pytest.raises(SegrtError, match="a_file"):
        pseudo_label(teacher, [("gone", tmp_path / "no_such_clip.mp4", None)], tmp_path / "a_file" / "out", frames=2)
    assert (tmp_path / "a_file").read_text() == "mine\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a_file", "runs"]
