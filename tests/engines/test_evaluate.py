import numpy as np
import pytest

from segrt.cli import default_model
from segrt.datasets.camvid import CamVid
from segrt.engines.base import open_backend
from segrt.engines.evaluate import evaluate_backend
from segrt.metrics import ConfusionMatrix


def test_confusion_matrix_metrics_on_a_known_case():
    cm = ConfusionMatrix(3)
    target = np.array([0, 0, 1, 1, 2, 9])  # 9: void, ignored
    pred = np.array([0, 1, 1, 1, 0, 2])
    cm.update(target, pred)
    r = cm.compute()
    assert r["per_class_iou"] == pytest.approx([1 / 3, 2 / 3, 0.0])
    assert r["miou"] == pytest.approx(1 / 3)
    assert r["pixel_accuracy"] == pytest.approx(3 / 5)


def test_shipped_model_scores_on_real_val_frames(tiny_camvid):
    with open_backend(default_model()) as net:
        r = evaluate_backend(net, CamVid(tiny_camvid, "val"), progress=False)
    assert r["frames"] == 4 and len(r["per_class_iou"]) == 11
    assert r["pixel_accuracy"] > 0.6  # a real road-scene model, not noise (chance is ~0.1)
