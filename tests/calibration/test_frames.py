import numpy as np

from segrt.calibration.frames import calibration_batches, dataset_frames, save_npz, video_frames
from segrt.datasets import evenly_spaced
from segrt.preprocess import Preprocess, Preprocessor

SPEC = Preprocess(128, 96)


def test_evenly_spaced_covers_the_range():
    assert evenly_spaced(101, 5) == [0, 25, 50, 75, 100]
    assert evenly_spaced(3, 10) == [0, 1, 2]


def test_batches_are_the_runtime_preprocessing_of_real_frames(camvid_root):
    frames = list(dataset_frames("camvid", camvid_root, "val", count=5))
    batches = list(calibration_batches(frames, SPEC, "image", batch_size=2))
    assert [b["image"].shape[0] for b in batches] == [2, 2, 1]
    np.testing.assert_array_equal(batches[2]["image"][0], Preprocessor(SPEC)(frames[4]))


def test_video_frames_and_npz(short_clip, tmp_path):
    frames = list(video_frames(short_clip, count=4))
    assert len(frames) == 4 and frames[0].shape == (540, 960, 3)
    path = save_npz(calibration_batches(frames, SPEC, "image", 3), tmp_path / "calib.npz")
    assert np.load(path)["image"].shape == (4, 3, 96, 128)
