"""``segrt run`` end to end through the CLI entry point, on a real clip and real CamVid frames."""

import json

import cv2
import numpy as np
import pytest

from segrt.app.cli import main
from segrt.engines.manifest import load_manifest
from segrt.engines.zoo import base_model


def frame_count(path) -> int:
    cap = cv2.VideoCapture(str(path))
    n = 0
    while cap.read()[0]:
        n += 1
    return n


def test_output_video_has_every_input_frame_and_report_has_the_names(short_clip, tmp_path, capsys):
    out, report = tmp_path / "overlay.mp4", tmp_path / "run.json"
    main(["run", str(short_clip), "--output", str(out), "--report", str(report), "--no-progress"])
    assert (frame_count(out), frame_count(short_clip)) == (12, 12)
    doc = json.loads(report.read_text())
    assert doc["frames_in"] == doc["frames_out"] == 12
    assert doc["fps"] > 0 and doc["stopped_by"] == "end"
    for stage in ("read", "preprocess", "infer", "postprocess", "render", "write", "frame"):
        assert {"mean_ms", "p50_ms", "p95_ms", "p99_ms"} <= set(doc["stages"][stage])
        assert doc["stages"][stage]["count"] == 12
    assert doc["machine"]["cores"] >= 1 and "onnxruntime" in doc["versions"]
    table = capsys.readouterr().out
    assert "p99" in table and "FPS end to end" in table


def test_overlay_frames_are_the_blend_not_the_input(short_clip, tmp_path):
    main(["run", str(short_clip), "-o", str(tmp_path / "f/"), "--max-frames", "2", "--no-progress",
          "--no-hud", "--no-legend", "--alpha", "1"])
    written = sorted((tmp_path / "f").iterdir())
    assert len(written) == 2
    img = cv2.imread(str(written[0])).reshape(-1, 1, 3).astype(int)
    palette_bgr = np.array(load_manifest(base_model()).palette)[None, :, ::-1]
    nearest = np.abs(img - palette_bgr).max(axis=2).min(axis=1)  # to the closest palette colour
    assert (nearest <= 24).mean() > 0.97  # alpha 1: palette colours only, up to JPEG noise


def test_camvid_sequence_source_runs(camvid_root, tmp_path):
    report = tmp_path / "r.json"
    main(["run", "camvid:val/0016E5", "--data-root", str(camvid_root), "--max-frames", "3",
          "--report", str(report), "--no-progress"])
    doc = json.loads(report.read_text())
    assert doc["frames_out"] == 3 and doc["stopped_by"] == "max_frames"


@pytest.mark.parametrize("args, message", [
    (["run", "no_such.mp4"], "source 'no_such.mp4': no such file or folder"),
    (["run", "{clip}", "--model", "missing.onnx"], "missing.onnx: no such file, and not a shipped model"),
    (["run", "{clip}", "--output", "{clip}"], "is the input SOURCE"),
    (["run", "{clip}", "--alpha", "2"], "alpha' must be >= 0.0 and <= 1.0"),
    (["run", "{clip}", "--report", "/no/such/dir/r.json"], "does not exist"),
    (["run", "{clip}", "--output", "x.mov"], "suffix must be one of"),
])
def test_bad_input_is_one_line_and_exit_code_2(short_clip, tmp_path, capsys, args, message):
    args = [a.replace("{clip}", str(short_clip)) for a in args]
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and message in err and "\n" not in err


def test_failed_run_keeps_an_existing_output(short_clip, tmp_path):
    out = tmp_path / "keep.mp4"
    out.write_bytes(b"earlier result")
    with pytest.raises(SystemExit):
        main(["run", str(short_clip), "--output", str(out), "--model", str(tmp_path / "none.onnx")])
    assert out.read_bytes() == b"earlier result"
