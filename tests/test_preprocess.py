import numpy as np
import pytest

from segrt.preprocess import IMAGENET_MEAN, IMAGENET_STD, Preprocess, Preprocessor, normalize_rgb

SPEC = Preprocess(64, 32)


def test_shape_dtype_and_in_place_output(frame):
    prep = Preprocessor(SPEC)
    out = np.empty((3, 32, 64), np.float32)
    result = prep(frame, out=out)
    assert result is out and out.dtype == np.float32


def test_channels_are_rgb_and_normalised_with_mean_std():
    bgr = np.zeros((100, 200, 3), np.uint8)
    bgr[..., 0], bgr[..., 1], bgr[..., 2] = 10, 100, 250  # B, G, R
    out = Preprocessor(SPEC)(bgr)
    for channel, value in enumerate((250, 100, 10)):  # R, G, B
        expected = (value / 255 - IMAGENET_MEAN[channel]) / IMAGENET_STD[channel]
        np.testing.assert_allclose(out[channel], expected, rtol=1e-5)


def test_training_normalisation_matches_the_runtime_one():
    rng = np.random.default_rng(1)
    rgb = rng.integers(0, 256, (32, 64, 3), dtype=np.uint8)  # already network-sized
    runtime = Preprocessor(SPEC)(np.ascontiguousarray(rgb[..., ::-1]))
    np.testing.assert_allclose(normalize_rgb(rgb, SPEC), runtime, rtol=1e-5, atol=1e-5)


def test_resizes_any_frame_size_to_the_network_size(frame):
    out = Preprocessor(Preprocess(384, 288))(frame)
    assert out.shape == (3, 288, 384)


def test_rejects_non_bgr_uint8_frames():
    with pytest.raises(ValueError, match="uint8 HxWx3"):
        Preprocessor(SPEC)(np.zeros((10, 10), np.uint8))


def test_spec_round_trips_through_its_dict():
    assert Preprocess.from_dict(SPEC.to_dict()) == SPEC
    with pytest.raises(ValueError):
        Preprocess(0, 10)


@pytest.mark.parametrize("size", [(352, 256), (480, 352), (64, 32)])
def test_a_large_shrink_stays_within_a_grey_level_of_exact_inter_area(dashcam, size):
    import cv2

    cap = cv2.VideoCapture(str(dashcam))
    frames = [cap.read()[1] for _ in range(30)][::10]
    cap.release()
    for frame in (*frames, cv2.resize(frames[0], (1920, 1080))):
        prep = Preprocessor(Preprocess(*size))
        prep(frame)
        exact = cv2.resize(frame, size, interpolation=cv2.INTER_AREA).astype(int)
        diff = np.abs(prep._resized.astype(int) - exact)
        assert diff.mean() < 0.35 and np.percentile(diff, 99) <= 1, (frame.shape, size)
        assert diff.max() <= 12  # (a bug, e.g. a wrong intermediate size, shifts whole edges)
