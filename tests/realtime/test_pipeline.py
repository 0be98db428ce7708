"""The pipelined loop with every source kind that runs here, live drop policy, stream faults,
per-frame CSV, overlay modes and clean stops."""

import csv
import json
import signal
import subprocess
import sys
import threading
import time

import cv2
import numpy as np
import pytest

from segrt.app.cli import main
from segrt.engines.zoo import base_model
from segrt.realtime.controls import Controls
from segrt.realtime.overlay import Overlay

from .mjpeg_server import Camera, free_port


def run_json(tmp_path, *args):
    report = tmp_path / "r.json"
    main(["run", *map(str, args), "--report", str(report), "--no-progress"])
    return json.loads(report.read_text())


def test_file_run_processes_every_frame_in_order_and_logs_each(short_clip, tmp_path):
    csv_path = tmp_path / "frames.csv"
    doc = run_json(tmp_path, short_clip, "--frames-csv", csv_path)
    assert doc["frames_in"] == doc["frames_out"] == 12 and doc["dropped"] == 0
    assert doc["model_fps"] > 0 and doc["fps_ratio"] > 0 and doc["frame_age_ms"]["max"] > 0
    rows = list(csv.DictReader(open(csv_path)))
    assert [int(r["source_index"]) for r in rows] == list(range(12))  # in order, none missing
    assert all(float(r["age_ms"]) >= float(r["infer_ms"]) for r in rows)
    assert not list(tmp_path.glob("*.partial"))


def test_folder_source_and_several_outputs_at_once(tiny_camvid, tmp_path):
    out_mp4, out_dir = tmp_path / "o.mp4", tmp_path / "frames/"
    doc = run_json(tmp_path, tiny_camvid / "val", "-o", out_mp4, "-o", out_dir)
    assert doc["frames_out"] == 4 and len(list(out_dir.iterdir())) == 4
    cap = cv2.VideoCapture(str(out_mp4))
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 4


def test_http_mjpeg_stream(short_clip, tmp_path):
    cam = Camera(short_clip, fps=50).start()
    try:
        doc = run_json(tmp_path, cam.url, "--max-frames", "15")
    finally:
        cam.stop()
    assert doc["frames_out"] == 15 and doc["source"]["live"] is True and doc["stopped_by"] == "max_frames"


def test_stream_cut_mid_run_is_reopened_and_the_outage_recorded(short_clip, tmp_path):
    cam = Camera(short_clip, fps=30).start()

    def cut_and_resume():
        time.sleep(1.5)
        cam.stop()
        time.sleep(1.5)
        cam.start()

    t = threading.Thread(target=cut_and_resume)
    t.start()
    try:
        doc = run_json(tmp_path, cam.url, "--max-frames", "90", "--config", write_config(
            tmp_path, "reconnect_attempts: 8\nreconnect_max_wait: 1.0\n"))
    finally:
        t.join()
        cam.stop()
    assert doc["frames_out"] == 90, doc
    assert len(doc["outages"]) >= 1 and doc["outages"][0]["recovered"] is True
    assert doc["outages"][0]["seconds"] >= 0.5 and doc["outages"][0]["attempts"] >= 1


def test_stream_that_never_comes_back_ends_the_run_with_what_was_written(short_clip, tmp_path, capsys):
    cam = Camera(short_clip, fps=30).start()
    threading.Timer(1.0, cam.stop).start()
    out = tmp_path / "o.mp4"
    with pytest.raises(SystemExit) as exit_info:  # a failure, exit 2, with what was kept stated
        run_json(tmp_path, cam.url, "-o", out, "--config",
                 write_config(tmp_path, "reconnect_attempts: 2\nreconnect_max_wait: 0.5\n"))
    assert exit_info.value.code == 2 and "stayed dead after 2 reconnect attempts" in capsys.readouterr().err
    doc = json.loads((tmp_path / "r.json").read_text())
    assert doc["stopped_by"] == "end" and doc["outages"][-1]["recovered"] is False
    cap = cv2.VideoCapture(str(out))
    assert doc["frames_out"] > 0 and int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == doc["frames_out"]


def test_live_source_faster_than_the_model_drops_frames_and_age_stays_bounded(short_clip, tmp_path):
    cam = Camera(short_clip, fps=None).start()  # as fast as the socket goes: hundreds of FPS
    try:
        doc = run_json(tmp_path, cam.url, "--max-frames", "40")
    finally:
        cam.stop()
    assert doc["frames_in"] == doc["frames_out"] == 40 and doc["dropped"] > 0
    assert doc["captured"] >= doc["frames_out"] + doc["dropped"]
    # newest frame wins: a frame waits at most for the frame in flight, not for a backlog
    assert doc["frame_age_ms"]["p95"] < 20 * doc["stages"]["frame"]["p50_ms"] + 200


def test_realtime_replays_a_file_at_its_own_rate(short_clip, tmp_path):
    doc = run_json(tmp_path, short_clip, "--realtime")
    assert doc["wall_s"] >= (12 - 1) / 25 * 0.9  # the clip is 25 FPS
    assert doc["frames_out"] + doc["dropped"] == 12


def test_loop_restarts_the_file(short_clip, tmp_path):
    doc = run_json(tmp_path, short_clip, "--loop", "--max-frames", "30")
    assert doc["frames_out"] == 30 and doc["dropped"] == 0


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_signal_mid_run_leaves_a_playable_video_and_a_report(short_clip, tmp_path, sig):
    out, report = tmp_path / "o.mp4", tmp_path / "r.json"
    proc = subprocess.Popen([sys.executable, "-m", "segrt", "run", str(short_clip), "--loop", "--realtime",
                             "-o", str(out), "--report", str(report), "--no-progress"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(4.0)
    proc.send_signal(sig)
    stdout, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 128 + sig, stderr  # whole outputs, and still the exit status of a stopped command
    doc = json.loads(report.read_text())
    assert doc["stopped_by"] == "interrupt" and doc["frames_out"] > 5 and doc["interrupted"] == sig.name
    cap = cv2.VideoCapture(str(out))
    n = 0
    while cap.read()[0]:
        n += 1
    assert n == doc["frames_out"]
    assert "stopped by interrupt" in stdout


def test_unreachable_url_and_absent_camera_are_one_line_errors(capsys):
    for source, fix in ((f"http://127.0.0.1:{free_port()}/none.mjpg", "check the URL"),
                        ("/dev/video57", "no camera at that index")):
        with pytest.raises(SystemExit) as e:
            main(["run", source, "--no-progress"])
        err = capsys.readouterr().err.strip()
        assert e.value.code == 2 and fix in err and "\n" not in err


def write_config(tmp_path, text):
    path = tmp_path / "run.yaml"
    path.write_text(text)
    return path


def overlay(**kw):
    from segrt.engines.manifest import load_manifest

    m = load_manifest(base_model())
    return Overlay(m.classes, m.palette, legend=False, hud=False, **kw), m


def test_overlay_modes_and_class_filter():
    frame = np.full((60, 80, 3), 100, np.uint8)
    labels = np.zeros((30, 40), np.uint8)
    labels[:, 20:] = 3  # Sky | Road
    ov, m = overlay(mode="side")
    out = ov.compose(frame, ov.colorize_to(labels, (80, 60)))
    assert out.shape == (60, 160, 3) and (out[:, :80] == 100).all()
    assert tuple(out[0, 80 + 79]) == tuple(m.palette[3][::-1])
    ov, m = overlay(mode="mask", only=("Road",))
    out = ov.compose(frame, ov.colorize_to(labels, (80, 60)))
    assert (out[:, :40] == 0).all() and tuple(out[0, 79]) == tuple(m.palette[3][::-1])
    ov, _ = overlay(mode="overlay", alpha=0.5, only=("Road",))
    out = ov.compose(frame, ov.colorize_to(labels, (80, 60)))
    assert (out[:, :40] == 100).all() and not (out[:, 40:] == 100).all()
    with pytest.raises(ValueError, match="not the model's"):
        overlay(only=("Unicorn",))


def test_window_keys_change_the_controls():
    c = Controls()
    for key in "mm++-s":
        c.key(ord(key))
    assert c.mode == "side" and c.alpha == 0.6 and c.snapshot and not c.paused
    c.key(ord(" "))
    assert c.paused
    c.key(27)
    assert c.quit


def test_snapshot_endpoint_serves_a_fresh_frame(short_clip, tmp_path):
    import urllib.request

    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "segrt", "run", str(short_clip), "--loop", "--realtime",
                             "--serve", f"127.0.0.1:{port}", "--no-progress"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        jpegs = []
        for _ in range(100):
            try:
                for _ in range(2):
                    with urllib.request.urlopen(f"http://127.0.0.1:{port}/snapshot.jpg", timeout=10) as r:
                        jpegs.append(r.read())
                    time.sleep(0.5)
                break
            except OSError:
                time.sleep(0.1)
    finally:
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=30)
    frames = [cv2.imdecode(np.frombuffer(j, np.uint8), cv2.IMREAD_COLOR) for j in jpegs]
    assert len(frames) == 2 and frames[0].shape == (540, 960, 3)
    assert not np.array_equal(frames[0], frames[1])  # the second one is newer, not the first frame again


def test_frames_csv_marks_where_a_live_run_dropped(short_clip, tmp_path):
    cam = Camera(short_clip, fps=None).start()
    csv_path = tmp_path / "f.csv"
    try:
        doc = run_json(tmp_path, cam.url, "--max-frames", "30", "--frames-csv", csv_path)
    finally:
        cam.stop()
    rows = list(csv.DictReader(open(csv_path)))
    assert len(rows) == 30
    assert sum(int(r["dropped_before"]) for r in rows) <= doc["dropped"]
    assert int(rows[-1]["dropped_so_far"]) > 0 and any(int(r["dropped_before"]) > 0 for r in rows)
