"""Hostile cases, round three (issue 26): odd models, bombs, bad numbers and URLs, signals at
every stage, killed processes and silent streams. Each case is a ``python -m segrt``
subprocess; inputs are checked byte for byte, and a refused case ends with exit code 2 and
exactly one ``error:`` line on stderr.
"""

from __future__ import annotations

import hashlib
import json
import signal
import socket
import subprocess
import sys
import threading
import time
import zipfile
from pathlib import Path

import cv2
import numpy as np
import onnx
import pytest

from tests.conftest import run_segrt, start_segrt
from tests.hostile.kit import model_copy, one_error_line, sha, snapshot, yaml_file


def zip_bomb_checkpoint(path: Path, inflated: int = 200 << 20) -> Path:
    """A torch-style zip whose pickle inflates to ``inflated`` bytes (zeros deflate ~1000:1)."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as z:
        with z.open("archive/data.pkl", "w", force_zip64=True) as f:
            block = bytes(1 << 20)
            for _ in range(inflated >> 20):
                f.write(block)
        z.writestr("archive/version", "3\n")
    return path


def fixed_batch_model(folder: Path, batch: int) -> Path:
    """The CPU default with its batch axis fixed at ``batch`` (input and output)."""
    model = model_copy(folder, f"batch{batch}")
    g = onnx.load(str(model))
    g.graph.input[0].type.tensor_type.shape.dim[0].dim_value = batch
    g.graph.output[0].type.tensor_type.shape.dim[0].dim_value = batch
    del g.graph.value_info[:]
    onnx.save(g, str(model))
    doc = json.loads(model.with_suffix(".json").read_text())
    doc["model_sha256"] = hashlib.sha256(model.read_bytes()).hexdigest()
    model.with_suffix(".json").write_text(json.dumps(doc))
    return model


def with_input_size(model: Path, width: int, height: int) -> Path:
    doc = json.loads(model.with_suffix(".json").read_text())
    doc["preprocess"]["width"], doc["preprocess"]["height"] = width, height
    model.with_suffix(".json").write_text(json.dumps(doc))
    return model


# Each case: (folder, clip) → (argv, extra environment, text the error line must contain).
REFUSED = {
    "checkpoint_zip_bomb": lambda t, c: (
        ["export", str(zip_bomb_checkpoint(t / "bomb.pt")), "-o", str(t / "b.onnx"), "--no-check"], {}, "zip bomb"),
    "fixed_batch_2": lambda t, c: (["run", c, "-m", str(fixed_batch_model(t, 2)), "-o", str(t / "o.mp4")], {},
                                   "fixes its batch at 2"),
    "fixed_batch_100000": lambda t, c: (["run", c, c, "-m", str(fixed_batch_model(t, 100000)), "-o",
                                         str(t / "o_{stream}.mp4")], {}, "fixes its batch at 100000"),
    "input_over_the_memory_budget": lambda t, c: (
        ["run", c, "-m", str(with_input_size(model_copy(t), 4096, 4096)), "-o", str(t / "o.mp4")],
        {"SEGRT_MEMORY_LIMIT": "1G"}, "GiB"),
    # two model calls at once (--workers 2) need twice one frame's memory: checked before the first frame
    "two_calls_over_the_memory_budget": lambda t, c: (
        ["run", c, "--workers", "2", "-o", str(t / "o.mp4")], {"SEGRT_MEMORY_LIMIT": "30M"}, "x 2 frames at once"),
    "triton_port_out_of_range": lambda t, c: (["run", c, "-m", "triton://127.0.0.1:99999/m"], {}, "Port out of range"),
    "triton_unclosed_bracket": lambda t, c: (["run", c, "-m", "triton://[::1:8000/m"], {}, "Invalid IPv6 URL"),
    "model_without_suffix": lambda t, c: (["run", c, "-m", "/etc/passwd"], {}, "/etc/passwd: not a model file"),
    "image_fps_nan": lambda t, c: (["run", c, "--config", yaml_file(t, "image_fps: .nan\n")], {}, "'image_fps'"),
    "image_fps_1e308": lambda t, c: (["run", c, "--config", yaml_file(t, "image_fps: 1.0e+308\n")], {},
                                     "'image_fps'"),
    "realtime_fps_nan": lambda t, c: (["run", c, "--config", yaml_file(t, "realtime_fps: .nan\n")], {},
                                      "'realtime_fps'"),
    "realtime_fps_1e-300": lambda t, c: (["run", c, "--realtime-fps", "1e-300", "-o", str(t / "o.mp4")], {},
                                         "'realtime_fps'"),
    "threads_1025_in_yaml": lambda t, c: (["run", c, "--config", yaml_file(t, "threads: 1025\n")], {}, "'threads'"),
    "memory_limit_garbage": lambda t, c: (["run", c, "-o", str(t / "o.mp4")], {"SEGRT_MEMORY_LIMIT": "lots"},
                                          "SEGRT_MEMORY_LIMIT"),
    "offline_download_is_a_network_error": lambda t, c: (
        ["demo", "-o", str(t / "demo.mp4")],
        {"SEGRT_DEMO_VIDEO": "", "SEGRT_CACHE": str(t.parent / f"{t.name}_cache"),
         "https_proxy": "http://127.0.0.1:9", "HTTPS_PROXY": "http://127.0.0.1:9"},
        "check the network connection"),
}




@pytest.mark.parametrize("name", list(REFUSED))
def test_refused_in_one_line_and_nothing_changes(name, tmp_path, clip):
    argv, env, expected = REFUSED[name](tmp_path, str(clip))
    before, clip_sha = snapshot(tmp_path), sha(clip)
    err = one_error_line(run_segrt(*argv, cwd=tmp_path, env=env))
    assert expected in err, err
    assert snapshot(tmp_path) == before and sha(clip) == clip_sha


def test_the_network_error_names_no_disk_problem(tmp_path):
    env = {"SEGRT_DEMO_VIDEO": "", "SEGRT_CACHE": str(tmp_path / "cache"), "https_proxy": "http://127.0.0.1:9",
           "HTTPS_PROXY": "http://127.0.0.1:9"}
    err = one_error_line(run_segrt("demo", "-o", str(tmp_path / "d.mp4"), cwd=tmp_path, env=env))
    assert "free space" not in err and "permissions" not in err, err


def test_a_240_byte_output_name_is_written(tmp_path, clip):
    name = "v" * 236 + ".mp4"  # 240 bytes: legal; its temporary's name must fit in 255 too
    result = run_segrt("run", str(clip), "-o", str(tmp_path / name), "--max-frames", "3", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    assert [p.name for p in tmp_path.iterdir()] == [name]
    cap = cv2.VideoCapture(str(tmp_path / name))
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 3
    cap.release()


def wait_for(predicate, timeout: float, what: str) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def temporaries(folder: Path) -> list[Path]:
    return [p for p in folder.iterdir() if ".segrt-tmp-" in p.name]


def test_kill_9_leftovers_are_removed_by_the_next_write_there(tmp_path, clip):
    proc = start_segrt("run", str(clip), "-o", str(tmp_path / "a.mp4"), "--realtime-fps", "5", cwd=tmp_path)
    try:
        wait_for(lambda: temporaries(tmp_path), 120, "the run's temporary video")
        time.sleep(1.0)
    finally:
        proc.kill()
        proc.communicate(timeout=30)
    left = temporaries(tmp_path)
    assert left and not (tmp_path / "a.mp4").exists()
    result = run_segrt("run", str(clip), "-o", str(tmp_path / "b.mp4"), "--max-frames", "2", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b.mp4"]


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGHUP, signal.SIGTERM])
def test_a_signal_during_export_ends_it_with_one_line_and_no_output(sig, tmp_path):
    from segrt.engines.zoo import zoo_dir

    proc = start_segrt("export", str(zoo_dir() / "fpn_lite0_camvid.pt"), "-o", str(tmp_path / "e.onnx"),
                       "--no-check", cwd=tmp_path)
    # once torch's library is loaded, the rest of the imports, the checkpoint and the start of the
    # exporter take a few seconds: the signal lands inside torch.onnx.export (its C++ and Python)
    wait_for(lambda: proc.poll() is not None or "libtorch_cpu" in Path(f"/proc/{proc.pid}/maps").read_text(),
             120, "torch to load")
    time.sleep(5.0)
    assert proc.poll() is None, "the export ended before the signal"
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=120)
    one_error_line((proc.returncode, err), 128 + sig)
    assert list(tmp_path.iterdir()) == []


def test_kill_term_of_a_pytest_run_that_called_segrt_ends_it(tmp_path):
    """segrt's CLI entry point, called in-process (as tests do), leaves no signal handler behind."""
    (tmp_path / "test_host.py").write_text(
        "import time\nfrom segrt.app.cli import main\n\n\ndef test_host():\n"
        "    try:\n        main(['--version'])\n    except SystemExit:\n        pass\n"
        "    print('READY', flush=True)\n    time.sleep(120)\n")
    proc = subprocess.Popen([sys.executable, "-m", "pytest", "-q", "-s", "-p", "no:cacheprovider", "test_host.py"],
                            cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        for line in proc.stdout:
            if "READY" in line:
                break
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == -signal.SIGTERM, proc.returncode


def test_a_read_only_cache_costs_only_time(tmp_path, monkeypatch):
    from segrt.calibration.cache import calibration_tensor
    from segrt.preprocess import Preprocess

    blocker = tmp_path / "cache-is-a-file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("SEGRT_CACHE", str(blocker))
    frames = [np.full((36, 48, 3), v, np.uint8) for v in (10, 200)]
    spec = Preprocess(width=32, height=32)
    data, _, cached = calibration_tensor(frames, spec, progress=False)
    assert data.shape == (2, 3, 32, 32) and not cached and blocker.read_text() == "not a folder"


class SilentAfter:
    """An MJPEG camera that sends ``frames`` frames, then holds every socket open and silent
    (a hung camera: connected, nothing more), new connections included."""

    def __init__(self, clip: Path, frames: int = 10) -> None:
        cap = cv2.VideoCapture(str(clip))
        self.jpegs = [cv2.imencode(".jpg", cap.read()[1])[1].tobytes() for _ in range(frames)]
        cap.release()
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.held: list[socket.socket] = []
        self.first = True
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.held.append(conn)
            if self.first:
                self.first = False
                threading.Thread(target=self._stream, args=(conn,), daemon=True).start()

    def _stream(self, conn: socket.socket) -> None:
        conn.recv(65536)
        conn.sendall(b"HTTP/1.0 200 OK\r\nContent-Type: multipart/x-mixed-replace; boundary=frame\r\n\r\n")
        for jpg in self.jpegs:
            conn.sendall(b"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: " + str(len(jpg)).encode()
                         + b"\r\n\r\n" + jpg + b"\r\n")
            time.sleep(0.04)

    def close(self) -> None:
        self.sock.close()
        for c in self.held:
            c.close()


def test_a_silent_stream_ends_the_run_within_30_seconds(tmp_path, clip):
    cam = SilentAfter(clip)
    try:
        t0 = time.monotonic()
        result = run_segrt("run", f"http://127.0.0.1:{cam.port}/stream.mjpg", "-o", str(tmp_path / "o.mp4"),
                           "--report", str(tmp_path / "r.json"), cwd=tmp_path, timeout=180)
        elapsed = time.monotonic() - t0
    finally:
        cam.close()
    doc = json.loads((tmp_path / "r.json").read_text())
    outage = doc["outages"][-1]
    assert outage["recovered"] is False and outage["seconds"] <= 30, outage
    assert elapsed < 60, elapsed  # 30 s of outage at most, the rest is start-up
    assert result.returncode == 2 and "stayed dead" in result.stderr, result.stderr[-2000:]
    assert doc["output_frames"][str(tmp_path / "o.mp4")] >= 1


def start_run(tmp_path: Path, clip: Path) -> subprocess.Popen:
    """A run that goes on until stopped (the clip looped at 10 FPS), once its video is open."""
    proc = start_segrt("run", str(clip), "-o", str(tmp_path / "out.mp4"), "--report", str(tmp_path / "r.json"),
                       "--frames-csv", str(tmp_path / "f.csv"), "--loop", "--realtime-fps", "10", cwd=tmp_path)
    wait_for(lambda: proc.poll() is not None or any(".out.segrt-tmp-" in p.name for p in tmp_path.iterdir()),
             120, "the run's temporary video")
    time.sleep(1.0)
    return proc


def test_sighup_during_a_run_commits_nothing(tmp_path, clip):
    proc = start_run(tmp_path, clip)
    proc.send_signal(signal.SIGHUP)
    _, err = proc.communicate(timeout=60)
    assert "SIGHUP" in one_error_line((proc.returncode, err), 129)
    assert list(tmp_path.iterdir()) == []  # no video, report, frame log or temporary


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_ctrl_c_or_sigterm_keeps_what_was_written_and_says_it_was_interrupted(sig, tmp_path, clip):
    proc = start_run(tmp_path, clip)
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 128 + sig, (proc.returncode, err[-2000:])
    assert err.strip().splitlines()[-1].startswith("interrupted by "), err[-2000:]
    doc = json.loads((tmp_path / "r.json").read_text())
    assert doc["interrupted"] == signal.Signals(sig).name and doc["stopped_by"] == "interrupt"
    frames = doc["output_frames"][str(tmp_path / "out.mp4")]
    cap = cv2.VideoCapture(str(tmp_path / "out.mp4"))
    assert frames >= 1 and int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == frames
    cap.release()
    assert len((tmp_path / "f.csv").read_text().splitlines()) == frames + 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.csv", "out.mp4", "r.json"]


def test_an_unwritable_report_is_found_before_the_first_frame(tmp_path, clip):
    t0 = time.monotonic()
    result = run_segrt("run", str(clip), "-o", str(tmp_path / "o.mp4"), "--report", "/proc/segrt-report.json",
                       cwd=tmp_path)
    assert "/proc" in one_error_line(result)
    assert list(tmp_path.iterdir()) == [] and time.monotonic() - t0 < 60


def test_signals_are_held_while_the_exporter_runs_then_end_the_command():
    """What export relies on (signals.deferred_signals): a signal inside the block waits for the
    block's end (C++ below it never sees the exception), then ends the command as it would."""
    code = ("import os, signal, time\nfrom segrt.errors import Stopped\nfrom segrt.signals import deferred_signals\n"
            "try:\n    with deferred_signals():\n        os.kill(os.getpid(), signal.SIGTERM)\n"
            "        time.sleep(0.3)\n        print('block finished', flush=True)\n"
            "except Stopped as exc:\n    print('stopped', exc.code, flush=True)\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.stdout.split("\n")[:2] == ["block finished", "stopped 143"], (done.stdout, done.stderr)
