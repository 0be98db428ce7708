import numpy as np
import pytest

from segrt.datasets.camvid import CamVid
from segrt.engines.base import open_backend
from segrt.engines.zoo import base_model
from segrt.evaluation.evaluate import evaluate_backend
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
    with open_backend(base_model()) as net:
        r = evaluate_backend(net, CamVid(tiny_camvid, "val"), progress=False)
    assert r["frames"] == 4 and len(r["per_class_iou"]) == 11
    assert r["pixel_accuracy"] > 0.6  # a real road-scene model, not noise (chance is ~0.1)


def test_eval_command_scores_onnx_and_checkpoint_alike(tiny_camvid, tmp_path, capsys):
    import json

    from segrt.app.cli import main

    pytest.importorskip("torch")
    onnx_report, pt_report = tmp_path / "onnx.json", tmp_path / "pt.json"
    # a shipped model whose ONNX runs at its checkpoint's size (the FPN's ships at 608x448, above
    # the 480x352 its checkpoint runs at)
    onnx = base_model().parent / "fcn8s_camvid.onnx"
    main(["eval", str(onnx), "--data-root", str(tiny_camvid), "--report", str(onnx_report)])
    main(["eval", str(onnx.with_suffix(".pt")), "--data-root", str(tiny_camvid), "--report", str(pt_report)])
    out = capsys.readouterr().out
    assert "Road" in out and "mIoU" in out
    a, b = json.loads(onnx_report.read_text()), json.loads(pt_report.read_text())
    assert {"miou", "pixel_accuracy", "per_class_iou"} <= set(a)
    assert a["backend"] == "onnxruntime" and b["backend"] == "torch"
    assert abs(a["miou"] - b["miou"]) < 0.005  # the ONNX export scores as its checkpoint does


@pytest.mark.parametrize("ckpt", sorted((base_model().parent).glob("*.pt")), ids=lambda p: p.stem)
def test_every_shipped_checkpoint_segments_val_frames(ckpt, tiny_camvid):
    pytest.importorskip("torch")
    with open_backend(ckpt, threads=2) as net:
        r = evaluate_backend(net, CamVid(tiny_camvid, "val"), progress=False)
    assert r["pixel_accuracy"] > 0.6 and r["miou"] > 0.2  # trained weights, not noise (chance: ~0.1)


def test_eval_warns_when_a_model_trained_on_the_split_it_is_scored_on():
    from types import SimpleNamespace

    from segrt.app.cli_eval import trained_on_note
    from segrt.engines.manifest import load_manifest
    from segrt.engines.zoo import GPU_DEFAULT, zoo_dir

    shipped = load_manifest(zoo_dir() / GPU_DEFAULT)  # CamVid train+val; its val figure is its twin's
    note = trained_on_note(shipped, "camvid", "val")
    assert "frames it learned from" in note and "train-only twin scores" in note
    assert trained_on_note(shipped, "camvid", "test") is None and trained_on_note(shipped, "cityscapes", "val") is None
    train_only = SimpleNamespace(provenance={"trained_on": "camvid train (367 frames)"}, metrics={})
    assert trained_on_note(train_only, "camvid", "val") is None
    assert "twin" not in trained_on_note(train_only, "camvid", "train")
    assert trained_on_note(SimpleNamespace(provenance={}, metrics={}), "camvid", "val") is None
