"""Several model calls at once (``--workers``): frames leave in the order they were taken
whatever order the calls finish in, a failing call ends the run, ONNX Runtime's CPU backend
gives each thread its own buffers, and the automatic choice."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time

import cv2
import numpy as np
import pytest

from segrt.engines.base import open_backend
from segrt.engines.manifest import load_manifest
from segrt.engines.zoo import base_model
from segrt.errors import SegrtError
from segrt.preprocess import Preprocessor
from segrt.realtime.capture import CaptureThread
from segrt.realtime.stream import InferenceStage, Stream, plan_workers


class Frames:
    """A file-like source of ``n`` small frames whose pixels hold their index."""

    live, fps = False, 25.0

    def __init__(self, n: int) -> None:
        self.n, self.i = n, 0
        self.frame_count = n

    def read(self):
        if self.i >= self.n:
            return None
        self.i += 1
        return np.full((4, 4, 3), self.i - 1, np.uint8)


class UnevenModel:
    """Answers frame k with label k mod 11 after a delay that makes frames k ≡ 0 (mod 3) slow,
    so calls running at once finish out of order; records how many ran at once."""

    concurrent = True

    def __init__(self, fail_at: int | None = None) -> None:
        self.manifest = load_manifest(base_model())
        self.fail_at = fail_at
        self.running = self.most = 0
        self._lock = threading.Lock()

    def infer(self, x):
        k = int(x[0, 0, 0, 0])
        with self._lock:
            self.running += 1
            self.most = max(self.most, self.running)
        try:
            time.sleep(0.03 if k % 3 == 0 else 0.002)
            if k == self.fail_at:
                raise RuntimeError(f"model call failed on frame {k}")
            return np.full((1, 2, 2), k % 11, np.uint8)
        finally:
            with self._lock:
                self.running -= 1


def run_stage(model: UnevenModel, workers: int, n: int = 30):
    source = Frames(n)
    s = Stream(0, "s", source, [], None)
    s.capture = CaptureThread(source, live=False, prepare=lambda f: f.transpose(2, 0, 1).astype(np.float32))
    out: list = []
    stage = InferenceStage([s], model, out.append, threading.Event(), threading.Event(), workers=workers)
    s.capture.start()
    stage.start()
    stage.join(timeout=20)
    s.capture.stop()
    assert not any(t.is_alive() for t in stage.threads), "an inference worker hung"
    return stage, out


@pytest.mark.parametrize("workers", [1, 2, 3])
def test_frames_leave_in_the_order_taken_whatever_order_the_calls_finish(workers):
    model = UnevenModel()
    stage, out = run_stage(model, workers)
    assert out[-1] is None and len(out) == 31  # every frame once, then the end marker
    assert [r.captured.index for r in out[:-1]] == list(range(30))
    assert [int(r.labels[0, 0]) for r in out[:-1]] == [k % 11 for k in range(30)]
    assert model.most == workers  # the calls did overlap, as many as asked
    assert stage.stats.frames == 30 and stage.error is None


def test_a_failing_call_ends_the_run_with_its_error_and_nothing_after_it():
    stage, out = run_stage(UnevenModel(fail_at=7), workers=2)
    assert isinstance(stage.error, RuntimeError) and "frame 7" in str(stage.error)
    assert out[-1] is None
    assert [r.captured.index for r in out[:-1]] == list(range(len(out) - 1))  # in order, and
    assert len(out) - 1 <= 7  # nothing from frame 7 on


def test_onnxruntime_calls_from_two_threads_match_one_at_a_time(dashcam):
    """Each thread its own I/O binding and output buffer: with one shared, a call's labels are
    overwritten by the other thread's before the caller copies them."""
    cap = cv2.VideoCapture(str(dashcam))
    frames = [cap.read()[1] for _ in range(60)][::10]
    with open_backend(base_model(), threads=1) as net:
        assert net.concurrent
        prep = Preprocessor(net.manifest.preprocess)
        inputs = [prep(f)[None] for f in frames[:3]] + [prep(f[:, ::-1].copy())[None] for f in frames[3:]]
        expected = [net.infer(x).copy() for x in inputs]
        assert all((a != b).any() for i, a in enumerate(expected) for b in expected[i + 1:])
        got: dict[tuple[int, int], np.ndarray] = {}

        def work(t: int) -> None:
            for rep in range(4):
                for i in range(t, len(inputs), 2):
                    labels = net.infer(inputs[i])
                    time.sleep(0.005)  # the other thread's call lands meanwhile
                    got[(i, rep)] = labels.copy()

        threads = [threading.Thread(target=work, args=(t,)) for t in (0, 1)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        # each thread's result stays its own until that thread calls again
        held = {}
        for t, i in ((0, 0), (1, 3)):
            th = threading.Thread(target=lambda t=t, i=i: held.__setitem__(t, net.infer(inputs[i])))
            th.start()
            th.join()
        np.testing.assert_array_equal(held[0], expected[0])
        np.testing.assert_array_equal(held[1], expected[3])
    for (i, _), labels in got.items():
        np.testing.assert_array_equal(labels, expected[i])
    assert len(got) == 24


def test_the_automatic_choice():
    cores = os.cpu_count() or 1
    assert plan_workers(0, 0, "m.onnx", "cpu") == (min(2, cores), max(1, cores // 2) if cores > 1 else 0)
    assert plan_workers(0, 3, "m.onnx", "cpu") == (min(2, cores), 3)  # threads given: kept
    assert plan_workers(1, 0, "m.onnx", "cpu") == (1, 0)
    assert plan_workers(0, 0, "m.onnx", "cuda") == (1, 0)
    assert plan_workers(0, 0, "m.pt", "cpu") == (1, 0)
    with pytest.raises(SegrtError, match="--workers 2"):
        plan_workers(2, 0, "m.engine", "tensorrt")


def _overlay(tmp_path, clip, workers: int):
    out, report = tmp_path / f"w{workers}.mp4", tmp_path / f"w{workers}.json"
    subprocess.run([sys.executable, "-m", "segrt", "run", str(clip), "-o", str(out), "--workers", str(workers),
                    "--no-hud", "--no-progress", "--report", str(report)], check=True, capture_output=True)
    return out.read_bytes(), json.loads(report.read_text())


def test_two_workers_write_the_same_video_as_one(short_clip, tmp_path):
    one, doc1 = _overlay(tmp_path, short_clip, 1)
    two, doc2 = _overlay(tmp_path, short_clip, 2)
    assert doc1["backend"]["workers"] == 1 and doc2["backend"]["workers"] == 2
    assert doc2["frames_out"] == 12 and doc2["model_fps"] > 0
    assert one == two  # same frames, same order, byte for byte (H.264 on one thread is deterministic)
    cap = cv2.VideoCapture(str(tmp_path / "w2.mp4"))
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 12


def test_workers_with_a_backend_that_cannot_is_a_one_line_error(tmp_path, short_clip):
    pt = base_model().parent / "fcn8s_camvid.pt"
    r = subprocess.run([sys.executable, "-m", "segrt", "run", str(short_clip), "-m", str(pt), "--workers", "2",
                        "-o", str(tmp_path / "o.mp4")], capture_output=True, text=True)
    assert r.returncode == 2, r.stderr
    assert r.stderr.strip().count("\n") == 0 and "--workers 2" in r.stderr and "--workers 1" in r.stderr
    assert not (tmp_path / "o.mp4").exists()


def test_the_models_rate_counts_calls_at_once():
    from types import SimpleNamespace

    from segrt.realtime.loop import hud_lines
    from segrt.realtime.timing import StageTimer, format_table

    timer = StageTimer(parallel=2)
    for _ in range(4):
        timer.add("infer", 0.020)
        timer.end_frame()
    assert timer.model_fps() == pytest.approx(100.0)  # two 20 ms calls at a time
    backend = SimpleNamespace(manifest=load_manifest(base_model()), name="onnxruntime")
    assert "model 100.0 FPS" in hud_lines(timer, backend)[0] and "20.0 ms x2" in hud_lines(timer, backend)[1]
    assert "model 100.0 FPS" in format_table(timer.summary(), 4, 1.0, 2)
