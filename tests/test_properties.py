"""Property tests (hypothesis): the config loader, the preprocessing and the metrics hold their
contracts on inputs nobody wrote by hand."""

import math

import cv2
import numpy as np
import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from hypothesis.extra.numpy import arrays  # noqa: E402

from segrt.config import from_dict  # noqa: E402
from segrt.errors import ConfigError  # noqa: E402
from segrt.metrics import ConfusionMatrix  # noqa: E402
from segrt.preprocess import Preprocess, Preprocessor  # noqa: E402
from segrt.realtime.config import RunConfig  # noqa: E402

FAST = settings(max_examples=60, deadline=None)

valid_run = st.fixed_dictionaries({}, optional={
    "alpha": st.floats(0, 1), "legend": st.booleans(), "hud": st.booleans(), "threads": st.integers(0, 64),
    "mode": st.sampled_from(["overlay", "mask", "side"]), "realtime": st.booleans(), "loop": st.booleans(),
    "reconnect_attempts": st.integers(0, 100), "classes": st.lists(st.sampled_from(["Road", "Car", "Sky"]),
                                                                   max_size=3)})


@FAST
@given(valid_run)
def test_valid_run_configs_load_exactly(d):
    cfg = from_dict(RunConfig, d)
    for k, v in d.items():
        assert getattr(cfg, k) == (tuple(v) if isinstance(v, list) else v)


@FAST
@given(st.dictionaries(st.text(min_size=1, max_size=12).filter(lambda k: k not in RunConfig.__dataclass_fields__),
                       st.integers() | st.text() | st.booleans(), min_size=1, max_size=3))
def test_unknown_keys_are_config_errors_naming_them(d):
    with pytest.raises(ConfigError) as e:
        from_dict(RunConfig, d)
    assert any(repr(k) in str(e.value) or k in str(e.value) for k in d)


@FAST
@given(st.sampled_from(["alpha", "threads", "legend", "mode", "reconnect_max_wait"]),
       st.one_of(st.text(min_size=1, max_size=5), st.lists(st.integers(), max_size=2), st.none(),
                 st.floats(-1e9, -0.01)))
def test_wrong_types_and_values_are_config_errors_not_crashes(key, value):
    try:
        cfg = from_dict(RunConfig, {key: value})
    except ConfigError as e:
        assert key in str(e)
    else:  # accepted only when the value really is of the key's type and range
        assert getattr(cfg, key) == value


@FAST
@given(st.integers(1, 96), st.integers(1, 96), st.integers(0, 2**32 - 1),
       st.tuples(*[st.floats(0.0, 1.0)] * 3), st.tuples(*[st.floats(0.05, 1.0)] * 3))
def test_preprocessing_is_resize_then_normalise(h, w, seed, mean, std):
    frame = np.random.default_rng(seed).integers(0, 256, (h, w, 3), np.uint8)
    spec = Preprocess(64, 32, mean, std)
    out = Preprocessor(spec)(frame)
    assert out.shape == (3, 32, 64) and out.dtype == np.float32 and np.isfinite(out).all()
    rgb = cv2.resize(frame, (64, 32), interpolation=cv2.INTER_AREA)[:, :, ::-1].astype(np.float64) / 255
    expected = ((rgb - np.array(mean)) / np.array(std)).transpose(2, 0, 1)
    np.testing.assert_allclose(out, expected, atol=1e-4 / min(std))


labels = st.integers(1, 300).flatmap(lambda n: st.tuples(
    arrays(np.uint8, n, elements=st.integers(0, 12)), arrays(np.uint8, n, elements=st.integers(0, 10))))


@FAST
@given(labels, st.integers(1, 5))
def test_confusion_counts_every_labelled_pixel_once_in_any_chunking(pair, chunks):
    target, pred = pair
    whole = ConfusionMatrix(11)
    whole.update(target, pred)
    parts = ConfusionMatrix(11)
    for t, p in zip(np.array_split(target, chunks), np.array_split(pred, chunks), strict=True):
        parts.update(t, p)
    assert (whole.mat == parts.mat).all()
    assert whole.mat.sum() == int((target < 11).sum())  # 11, 12: void / out of range, ignored
    m = whole.compute()
    for v in (m["miou"], m["pixel_accuracy"], m["mean_class_accuracy"]):
        assert math.isnan(v) or 0.0 <= v <= 1.0


@FAST
@given(arrays(np.uint8, st.integers(1, 200), elements=st.integers(0, 10)))
def test_perfect_prediction_scores_one_and_order_does_not_matter(target):
    cm = ConfusionMatrix(11)
    cm.update(target, target)
    m = cm.compute()
    assert m["miou"] == 1.0 and m["pixel_accuracy"] == 1.0
    perm = np.random.default_rng(0).permutation(target.size)
    shuffled = ConfusionMatrix(11)
    shuffled.update(target[perm], target[perm])
    assert (shuffled.mat == cm.mat).all()
