"""Per-stage timing of the loop: samples, statistics, an end-of-run table, a live line."""

from __future__ import annotations

import time
from array import array
from contextlib import contextmanager

import numpy as np

STAGES = ("read", "preprocess", "infer", "postprocess", "render", "write")


class StageTimer:
    """Collects one duration per stage per frame, in seconds.

    Samples go into ``array('d')`` (amortised appends, no per-frame objects). ``parallel``:
    how many model calls run at once (inference workers), so the model's rate is ``parallel``
    calls per call time. ``keep``: only the last ``keep`` frames' samples are kept (a live
    view's window, bounded for a run of weeks); None keeps every one (the run's statistics).
    """

    def __init__(self, stages: tuple[str, ...] = STAGES, parallel: int = 1, keep: int | None = None) -> None:
        self.stages = stages
        self.parallel = max(1, parallel)
        self.keep = keep
        self.frames = 0  # frames ended, whatever ``keep`` dropped
        self.samples = {s: array("d") for s in stages}
        self.frame_total = array("d")  # sum of the stages of each frame: its latency
        self.frame_done = array("d")   # perf_counter when each frame was finished
        self._current = 0.0
        self.started = time.perf_counter()
        self.ended: float | None = None

    @contextmanager
    def stage(self, name: str):
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.add(name, time.perf_counter() - t0)

    def add(self, name: str, seconds: float) -> None:
        self.samples[name].append(seconds)
        self._current += seconds

    def end_frame(self) -> float:
        """Closes the current frame; returns its latency in seconds."""
        latency, self._current = self._current, 0.0
        self.frame_total.append(latency)
        self.frame_done.append(time.perf_counter())
        self.frames += 1
        if self.keep and len(self.frame_done) >= 2 * self.keep:  # trimmed in halves: amortised O(1)
            for values in (*self.samples.values(), self.frame_total, self.frame_done):
                del values[: len(values) - self.keep]
        return latency

    def recent_fps(self, last: int) -> float:
        """Frames finished per second over the last ``last`` frames (the pipeline's real
        output rate, which overlapping stages make higher than 1 / per-frame work)."""
        done = self.frame_done[-last:]
        if len(done) < 2 or done[-1] <= done[0]:
            return 0.0
        return (len(done) - 1) / (done[-1] - done[0])

    def stop(self) -> None:
        self.ended = time.perf_counter()

    @property
    def wall_seconds(self) -> float:
        return (self.ended or time.perf_counter()) - self.started

    def mean_ms(self, name: str, last: int = 0) -> float:
        s = self.samples[name] if name != "frame" else self.frame_total
        s = s[-last:] if last else s
        return 1000.0 * sum(s) / len(s) if len(s) else 0.0

    def model_fps(self, last: int = 0) -> float:
        """Frames a second the model can take in this run: ``parallel`` calls per mean call time."""
        infer = self.mean_ms("infer", last)
        return 1000.0 * self.parallel / infer if infer else 0.0

    def summary(self) -> dict:
        """Stage → {count, mean_ms, p50_ms, p95_ms, p99_ms, max_ms}; 'frame' is the sum."""
        out = {}
        for name, values in [*self.samples.items(), ("frame", self.frame_total)]:
            if not len(values):
                continue
            ms = np.frombuffer(values, np.float64) * 1000.0
            p50, p95, p99 = np.percentile(ms, [50, 95, 99])
            out[name] = {"count": int(ms.size), "mean_ms": round(float(ms.mean()), 3),
                         "p50_ms": round(float(p50), 3), "p95_ms": round(float(p95), 3),
                         "p99_ms": round(float(p99), 3), "max_ms": round(float(ms.max()), 3)}
        return out


def format_table(summary: dict, frames: int, wall_seconds: float, parallel: int = 1) -> str:
    """The end-of-run table: one row per stage, then the per-frame total and FPS (the model's
    rate counts ``parallel`` calls at once)."""
    head = f"{'stage':<12}{'mean':>9}{'p50':>9}{'p95':>9}{'p99':>9}   ms"
    rows = [head, "-" * len(head)]
    for name, s in summary.items():
        if name == "frame":
            rows.append("-" * len(head))
        rows.append(f"{name:<12}{s['mean_ms']:>9.2f}{s['p50_ms']:>9.2f}{s['p95_ms']:>9.2f}{s['p99_ms']:>9.2f}")
    fps = frames / wall_seconds if wall_seconds > 0 else 0.0
    line = f"{frames} frames in {wall_seconds:.2f} s: {fps:.1f} FPS end to end"
    if "infer" in summary and summary["infer"]["mean_ms"] > 0:
        model_fps = 1000.0 * parallel / summary["infer"]["mean_ms"]
        line += f", model {model_fps:.1f} FPS inside this run ({fps / model_fps:.2f}x)"
        if parallel > 1:
            line += f", {parallel} model calls at a time"
    rows.append(line)
    return "\n".join(rows)
