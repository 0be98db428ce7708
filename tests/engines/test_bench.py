"""segrt bench and eval: statistics, report formats and comparison maths, then one real run."""

import csv
import json

import numpy as np
import pytest

from segrt.app.cli import main
from segrt.engines.zoo import base_model
from segrt.evaluation.bench import flat, markdown, sort_rows, speedups
from segrt.evaluation.evaluate import compare, flicker, frame_miou
from segrt.evaluation.latency import latency_stats


def test_latency_statistics():
    s = latency_stats(np.arange(1, 101) / 1000.0)  # 1 … 100 ms
    assert s["mean_ms"] == 50.5 and s["p50_ms"] == 50.5 and s["runs"] == 100
    assert s["p95_ms"] == pytest.approx(95.05) and s["p99_ms"] == pytest.approx(99.01)


def row(name, p50, miou, fps=None, error=None):
    if error:
        return {"model": name, "error": error}
    return {"model": name, "p50_ms": p50, "miou": miou, "pipeline_fps": fps}


def test_sorting_puts_failures_and_missing_values_last():
    rows = [row("slow", 20.0, 60.0, 40.0), row("bad", 0, 0, error="boom"), row("fast", 5.0, 59.0, None),
            row("mid", 10.0, 61.0, 70.0)]
    assert [r["model"] for r in sort_rows(rows, "latency")] == ["fast", "mid", "slow", "bad"]
    assert [r["model"] for r in sort_rows(rows, "fps")] == ["mid", "slow", "fast", "bad"]
    assert [r["model"] for r in sort_rows(rows, "miou")] == ["mid", "slow", "fast", "bad"]


def test_speedups_are_relative_to_the_baseline_p50():
    rows = [row("a.pt", 30.0, 60), row("b.onnx", 10.0, 60), row("c.onnx", 0, 0, error="x")]
    assert speedups(rows, "a.pt") == {"a.pt": 1.0, "b.onnx": 3.0}
    assert speedups(rows, None) == {}
    md = markdown([{**r, "backend": "x", "precision": "fp32"} if "error" not in r else r for r in rows], 4, "a.pt")
    assert "| speedup |" in md and "3.0x" in md and "failed: x" in md


def test_compare_and_frame_metrics_maths():
    a = {"classes": ["a", "b"], "miou": 0.5, "pixel_accuracy": 0.9, "per_class_iou": [0.4, 0.6]}
    b = {"classes": ["a", "b"], "miou": 0.45, "pixel_accuracy": 0.91, "per_class_iou": [0.3, 0.6]}
    d = compare(a, b)
    assert d["miou_delta"] == -5.0 and d["per_class_delta"] == {"a": -10.0, "b": 0.0}
    assert d["pixel_accuracy_delta"] == pytest.approx(1.0)
    label = np.array([[0, 0], [1, 1]])
    assert frame_miou(label, label, 3) == 1.0
    assert frame_miou(label, np.array([[0, 1], [1, 1]]), 3) == pytest.approx((0.5 + 2 / 3) / 2)


def test_flicker_is_zero_on_a_still_scene_and_counts_changed_pixels(frame):
    from segrt.engines.base import open_backend

    with open_backend(base_model()) as net:
        still = flicker(net, [frame] * 4)
        assert still["pairs"] == 3 and still["mean"] == 0.0
        moving = flicker(net, [frame, np.ascontiguousarray(frame[:, ::-1])])
        assert 0.0 < moving["mean"] <= 1.0


def test_bench_command_writes_every_format(tmp_path, camvid_root, short_clip, capsys):
    out = tmp_path / "bench"
    onnx = onnx_path = base_model()
    main(["bench", str(onnx), str(onnx.with_suffix(".pt")), "--runs", "5", "--warmup", "1", "--batch", "2",
          "--eval-frames", "3", "--data-root", str(camvid_root), "--video", str(short_clip),
          "--pipeline-frames", "10", "--baseline", onnx.with_suffix(".pt").name, "--out-dir", str(out)])
    printed = capsys.readouterr().out
    assert "| model |" in printed and "speedup" in printed
    doc = json.loads((out / "bench.json").read_text())
    assert doc["machine"]["cores"] >= 1 and "onnxruntime" in doc["versions"]
    by_backend = {r["backend"]: r for r in doc["results"]}
    assert set(by_backend) == {"onnxruntime", "torch"}
    for r in doc["results"]:
        assert r["latency_b1"]["runs"] == 5 and r["pipeline"]["frames"] == 10 and 0 < r["miou"] <= 1
        assert r["peak_rss_mb"] > 0 and r["load_s"] > 0 and r["file_mb"] > 0
    import onnx

    dim0 = onnx.load(str(onnx_path)).graph.input[0].type.tensor_type.shape.dim[0]
    b2 = by_backend["onnxruntime"]["latency_b2"]
    if dim0.dim_param:  # a free batch axis is timed; a fixed one is reported as impossible, not faked
        assert b2["batch"] == 2 and b2["images_per_s"] > 0
    else:
        assert "error" in b2
    assert by_backend["torch"]["latency_b2"]["batch"] == 2
    assert list(csv.DictReader(open(out / "bench.csv")))[0]["model"]
    assert (out / "bench.md").read_text().startswith("| model |")
    assert (out / "bench.png").stat().st_size > 1000
    assert flat(doc["results"][0], 2)["p50_ms"] > 0


def test_eval_compare_plots_and_flicker(tmp_path, tiny_camvid, capsys):
    onnx = base_model().parent / "fcn8s_camvid.onnx"  # ONNX and checkpoint at the same input size
    report = tmp_path / "r.json"
    main(["eval", str(onnx), "--compare", str(onnx.with_suffix(".pt")), "--data-root", str(tiny_camvid),
          "--plots", str(tmp_path / "plots"), "--report", str(report), "--flicker", str(tiny_camvid / "val"),
          "--flicker-frames", "4"])
    doc = json.loads(report.read_text())
    assert {"miou", "pixel_accuracy", "per_class_iou", "compare", "flicker"} <= set(doc)
    # the same network through ONNX Runtime and torch: deltas within rounding noise
    assert abs(doc["compare"]["miou_delta"]) < 0.5
    for name in ("worst_frames.png", "confusion.png", "flicker.png"):
        assert (tmp_path / "plots" / name).stat().st_size > 1000
    assert "Δ IoU" in capsys.readouterr().out


def test_bench_times_models_without_a_dataset_and_says_miou_was_not_measured(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    main(["bench", "--runs", "5", "--warmup", "1", "--batch", "1", "--data-root", str(tmp_path / "empty"),
          "--out-dir", str(tmp_path / "out")])  # no MODELS: the shipped CPU default
    printed = capsys.readouterr().out
    assert "mIoU not measured" in printed and "the timings stand" in printed
    doc = json.loads((tmp_path / "out" / "bench.json").read_text())
    (row,) = doc["results"]
    assert row["miou"] is None and row["latency_b1"]["p50_ms"] > 0 and "not_measured" in row["eval"]
