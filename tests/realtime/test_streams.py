"""Several sources in one `segrt run`: one stream each, one model, batched where the model
allows; per-stream outputs, counts and failures. Run as subprocesses, as a user runs them."""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
from pathlib import Path

import cv2
import pytest

from tests.conftest import frames_in, run_segrt

REPO = Path(__file__).resolve().parents[2]


def segrt(*args, cwd=None, env=None) -> subprocess.CompletedProcess:
    return run_segrt(*args, cwd=cwd, env=env)


def test_two_streams_write_two_complete_videos_and_report_each(short_clip, tmp_path):
    r = segrt("run", short_clip, short_clip, "-o", tmp_path / "out_{stream}.mp4", "--report", tmp_path / "r.json",
              "--frames-csv", tmp_path / "f.csv")
    assert r.returncode == 0, r.stderr
    assert "2 streams: short 12 frames" in r.stdout
    doc = json.loads((tmp_path / "r.json").read_text())
    assert [(s["index"], s["name"], s["frames_in"], s["frames_out"]) for s in doc["streams"]] == [
        (0, "short", 12, 12), (1, "short", 12, 12)]
    assert doc["frames_out"] == 24 and doc["stopped_by"] == "end" and not doc["truncated"]
    assert doc["streams"][1]["outputs"] == [str(tmp_path / "out_1.mp4")]
    # the shipped files fix batch 1: the streams take turns, and the report says so
    assert doc["batching"]["largest"] == 1 and "fixed at 1" in doc["batching"]["why"]
    for i in (0, 1):
        assert frames_in(tmp_path / f"out_{i}.mp4") == 12
    rows = list(csv.DictReader((tmp_path / "f.csv").open()))
    for i in ("0", "1"):  # each stream's frames written in order
        assert [int(r["source_index"]) for r in rows if r["stream"] == i] == list(range(12))


@pytest.fixture(scope="module")
def dynamic_fcn(tmp_path_factory, camvid_root) -> Path:
    pytest.importorskip("torch", reason="exporting needs torch (the dev install has it)")
    out = tmp_path_factory.mktemp("dyn") / "fcn8s_dynamic.onnx"
    r = segrt("export", REPO / "segrt" / "zoo" / "fcn8s_camvid.pt", "-o", out, "--dynamic", "--data-root", camvid_root)
    assert r.returncode == 0, r.stderr
    return out


def test_streams_share_model_calls_with_a_dynamic_batch_model(short_clip, dynamic_fcn, tmp_path):
    # --no-hud: the HUD prints each stream's own timings, which differ from run to run
    r = segrt("run", short_clip, short_clip, short_clip, "--model", dynamic_fcn, "--max-batch", "2", "--no-hud",
              "-o", tmp_path / "{stream}.mp4", "--report", tmp_path / "r.json")
    assert r.returncode == 0, r.stderr
    doc = json.loads((tmp_path / "r.json").read_text())
    b = doc["batching"]
    assert b["max_batch"] == 2 and b["largest"] == 2 and b["mean"] > 1.0, b
    assert b["batches"] < 36 and [s["frames_out"] for s in doc["streams"]] == [12, 12, 12]
    # batching changes nothing in what is drawn: every stream shows the same frames
    caps = [cv2.VideoCapture(str(tmp_path / f"{i}.mp4")) for i in range(3)]
    for _ in range(12):
        a, b_, c = (cap.read()[1].astype(int) for cap in caps)
        assert abs(a - b_).mean() < 1.0 and abs(a - c).mean() < 1.0


def test_a_stream_that_fails_does_not_stop_the_others(short_clip, frame, tmp_path):
    folder = tmp_path / "frames"
    folder.mkdir()
    for i in range(3):
        cv2.imwrite(str(folder / f"{i:03d}.png"), frame)
    (folder / "003.png").write_bytes(b"\x89PNG\r\n\x1a\n not really a png")
    r = segrt("run", folder, short_clip, "-o", tmp_path / "out_{stream}.mp4", "--report", tmp_path / "r.json")
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert r.stderr.count("\n") == 1 and "stream 0 (frames)" in r.stderr and "the other 1 streams finished" in r.stderr
    doc = json.loads((tmp_path / "r.json").read_text())
    assert doc["streams"][1]["frames_out"] == 12 and frames_in(tmp_path / "out_1.mp4") == 12
    assert doc["streams"][0]["frames_out"] == 3 and doc["streams"][0]["capture_error"]


def test_outputs_of_several_sources_need_a_stream_or_name_field(short_clip, tmp_path):
    r = segrt("run", short_clip, short_clip, "-o", tmp_path / "out.mp4")
    assert r.returncode == 2 and r.stderr.count("\n") == 1
    assert "{stream} or {name}" in r.stderr and not (tmp_path / "out.mp4").exists()
    r = segrt("run", short_clip, short_clip, "-o", tmp_path / "{name}.mp4")  # both are "short": one file
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "short.mp4" in r.stderr
    assert list(tmp_path.iterdir()) == []


def test_several_sources_without_o_save_side_by_side_under_runs(short_clip, tmp_path):
    other = tmp_path / "other.mp4"
    shutil.copyfile(short_clip, other)
    env = {**os.environ, "SEGRT_RUNS_DIR": str(tmp_path / "runs")}
    r = segrt("run", short_clip, other, "--max-frames", "3", env=env)
    assert r.returncode == 0, r.stderr
    assert sorted(p.name for p in (tmp_path / "runs" / "run").iterdir()) == ["other.mp4", "short.mp4"]
    r = segrt("run", short_clip, short_clip, "--max-frames", "3", env=env)
    assert r.returncode == 0, r.stderr
    assert sorted(p.name for p in (tmp_path / "runs" / "run2").iterdir()) == ["0_short.mp4", "1_short.mp4"]
    assert r.stdout.count("saved ") == 2


def test_show_with_two_sources_opens_a_window_per_stream(short_clip, tmp_path, monkeypatch):
    """No display here: OpenCV's window calls are recorded instead, to see what segrt asks of them."""
    from segrt.engines.zoo import default_for
    from segrt.realtime.run import RunRequest, run_app
    from segrt.realtime.sinks import window

    shown: dict[str, int] = {}
    opened: list[str] = []
    monkeypatch.setattr(window, "window_support", lambda: (True, "recorded"))
    monkeypatch.setattr(window.cv2, "namedWindow", lambda title, flags: opened.append(title))
    monkeypatch.setattr(window.cv2, "resizeWindow", lambda title, w, h: None)
    monkeypatch.setattr(window.cv2, "imshow", lambda title, frame: shown.__setitem__(title, shown.get(title, 0) + 1))
    monkeypatch.setattr(window.cv2, "waitKey", lambda delay: -1)
    monkeypatch.setattr(window.cv2, "destroyWindow", lambda title: None)
    other = tmp_path / "other.mp4"
    shutil.copy(short_clip, other)
    run_app(RunRequest.of([str(short_clip), str(other)], default_for("cpu"), show=True, report=tmp_path / "r.json",
                          progress=False))
    assert opened == ["segrt: 0 short", "segrt: 1 other"]
    assert shown == {"segrt: 0 short": 12, "segrt: 1 other": 12}
    assert [s["frames_out"] for s in json.loads((tmp_path / "r.json").read_text())["streams"]] == [12, 12]
