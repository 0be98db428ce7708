import numpy as np
import pytest

from segrt.datasets.camvid import CLASSES, PALETTE, VOID, CamVid, palette_array, sequence_of
from segrt.errors import DataError


def test_splits_have_the_published_frame_counts(camvid_root):
    assert len(CamVid(camvid_root, "train")) == 367
    assert len(CamVid(camvid_root, "val")) == 101


def test_sequences_are_grouped_by_prefix_and_time_ordered(camvid_root):
    seqs = CamVid(camvid_root, "train").sequences()
    assert {k: len(v) for k, v in seqs.items()} == {"0001TP": 62, "0006R0": 101, "0016E5": 204}
    for samples in seqs.values():
        names = [s.name for s in samples]
        assert names == sorted(names)
        assert all(sequence_of(n) == samples[0].sequence for n in names)


def test_one_sequence_can_be_selected(camvid_root):
    ds = CamVid(camvid_root, "train", sequence="0001TP")
    assert len(ds) == 62 and {s.sequence for s in ds.samples} == {"0001TP"}


def test_unknown_sequence_lists_the_valid_ones(camvid_root):
    with pytest.raises(DataError, match="0001TP, 0006R0, 0016E5"):
        CamVid(camvid_root, "train", sequence="9999XX")


def test_read_gives_bgr_frame_and_label_map_with_void(camvid_root):
    ds = CamVid(camvid_root, "val")
    image, label = ds.read(0)
    assert image.shape == (360, 480, 3) and image.dtype == np.uint8
    assert label.shape == (360, 480) and label.dtype == np.uint8
    assert label.max() <= VOID
    assert (label == VOID).any()  # void pixels exist and are kept for the loss to ignore


def test_classes_and_palette_match_the_dataset_readme():
    assert len(CLASSES) == len(PALETTE) == 11
    assert CLASSES[3] == "Road" and PALETTE[3] == (128, 64, 128)
    assert CLASSES[8] == "Car" and PALETTE[8] == (64, 0, 128)
    lut = palette_array()
    assert lut.shape == (12, 3) and tuple(lut[VOID]) == (0, 0, 0)


def test_unknown_split_and_missing_folder_say_what_to_do(tmp_path):
    with pytest.raises(DataError, match="valid splits: train, val, test"):
        CamVid(tmp_path, "training")
    with pytest.raises(DataError, match="segrt data camvid"):
        CamVid(tmp_path, "val")
