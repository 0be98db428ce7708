import numpy as np
import pytest

from segrt.calibration.cache import cache_key, calibration_tensor, read_frames
from segrt.errors import DataError
from segrt.preprocess import Preprocess, Preprocessor

SPEC = Preprocess(128, 96)


@pytest.fixture()
def frames(camvid_root):
    return read_frames("camvid:val", 3, camvid_root)


def test_tensor_is_the_runtime_preprocessing_and_the_second_call_hits_the_cache(frames, tmp_path):
    data, key, cached = calibration_tensor(frames, SPEC, tmp_path, progress=False)
    assert not cached and data.shape == (3, 3, 96, 128)
    np.testing.assert_array_equal(data[1], Preprocessor(SPEC)(frames[1]))
    again, key2, cached2 = calibration_tensor(frames, SPEC, tmp_path, progress=False)
    assert cached2 and key2 == key
    np.testing.assert_array_equal(again, data)


def test_key_changes_with_a_frame_the_preprocessing_or_the_size(frames):
    key = cache_key(frames, SPEC)
    changed = [f.copy() for f in frames]
    changed[2][0, 0, 0] ^= 1
    assert cache_key(changed, SPEC) != key
    assert cache_key(frames, Preprocess(160, 96)) != key
    assert cache_key(frames, Preprocess(128, 96, mean=(0.5, 0.5, 0.5))) != key


@pytest.mark.parametrize("damage", [b"", b"not a zip at all", None])
def test_a_corrupt_or_stale_cache_is_rebuilt(frames, tmp_path, damage):
    data, key, _ = calibration_tensor(frames, SPEC, tmp_path, progress=False)
    [path] = tmp_path.glob("*.npz")
    if damage is None:  # right file name, another key inside: stale
        np.savez(path, data=data, key=np.array("0" * 64))
    else:
        path.write_bytes(damage)
    rebuilt, _, cached = calibration_tensor(frames, SPEC, tmp_path, progress=False)
    assert not cached
    np.testing.assert_array_equal(rebuilt, data)
    assert calibration_tensor(frames, SPEC, tmp_path, progress=False)[2]  # and the cache is good again


def test_sources_folder_and_video_and_missing(tmp_path, short_clip, frame):
    import cv2

    for i in range(3):
        cv2.imwrite(str(tmp_path / f"{i}.png"), frame)
    assert len(read_frames(str(tmp_path), 2)) == 2
    assert len(read_frames(str(short_clip), 4)) == 4
    with pytest.raises(DataError, match="not found"):
        read_frames(str(tmp_path / "nope"), 4)
    nested = tmp_path / "pool" / "images"  # a dataset folder one level too high
    (nested / "train").mkdir(parents=True)
    cv2.imwrite(str(nested / "train" / "0.png"), frame)
    with pytest.raises(DataError, match=r"only folders \(train\); pass one, e\.g\. .*train"):
        read_frames(str(nested), 4)
