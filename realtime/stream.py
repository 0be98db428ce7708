"""The parts of a run: a stream per source, and the one inference stage they share.

A :class:`Stream` is one source with its capture thread (decode + preprocess, the drop policy
of a live source), its overlay and its sinks, and its own counts. The
:class:`InferenceStage` gathers the frames that are ready across every stream, up to the
model's batch limit and waiting at most ``wait_s`` for more once it has one, runs the backend
once on the batch and hands each label map back, tagged with its stream, to the render stage
(the main thread of :func:`segrt.realtime.loop.run_loop`); with several workers, several
batches at once, handed back in the order they were taken.
"""

from __future__ import annotations

import os
import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from segrt.engines.manifest import check_labels
from segrt.errors import SegrtError
from segrt.realtime.capture import Captured, CaptureThread
from segrt.realtime.overlay import Overlay
from segrt.realtime.steady import StreamFilter
from segrt.realtime.timing import StageTimer


@dataclass
class Stream:
    index: int
    name: str                   # what reports and the progress bar call it (the source's stem)
    source: Any                 # an entered source
    sinks: list                 # entered sinks: files, window, browser view, or a null sink
    overlay: Overlay            # per stream (its buffers fit its frame size); the controls are shared
    capture: CaptureThread | None = None
    timer: StageTimer | None = None
    taken: int = 0              # frames that entered inference
    frames_out: int = 0         # frames written to every sink of this stream
    ages_ms: list[float] = field(default_factory=list)
    prev_index: int = -1
    ended: bool = False         # no more frames will be taken: end of source, max_frames, a failure
    stopped_by: str | None = None
    write_error: str | None = None
    labels: bool = False        # --mode labels: the sinks get the label map at the frame's size, not a picture
    share_sum: np.ndarray | None = None  # per class, the sum over written frames of its share of the frame
    steady: StreamFilter | None = None  # --steady: this stream's filter (it holds one frame back)

    def fps(self) -> float:
        wall = self.timer.wall_seconds if self.timer else 0.0
        return self.frames_out / wall if wall > 0 else 0.0


@dataclass
class Inferred:
    stream: Stream
    captured: Captured
    labels: np.ndarray
    infer_s: float              # the model call that produced it (shared by a batch)
    batch: int
    steady_s: float = 0.0       # --steady: the time its filter took (counted as postprocess)


@dataclass
class BatchStats:
    batches: int = 0
    frames: int = 0
    busy_s: float = 0.0         # time inside the model: frames / busy_s is the model's rate
    largest: int = 0

    def as_dict(self, limit: int) -> dict:
        return {"max_batch": limit, "batches": self.batches, "largest": self.largest,
                "mean": round(self.frames / self.batches, 3) if self.batches else 0.0}


class InferenceStage:
    """The thread(s) running the model for every stream. With one stream it takes frames one
    by one; with several it batches across them (at most one frame per stream per batch, so
    each stream's frames stay in order).

    ``workers`` threads each take the next frame (or batch) and run the model on it at the
    same time, for a backend that allows concurrent calls (ONNX Runtime on CPU): two calls
    on one thread each do more work per second than one call on two threads, which spend
    time waiting on each other at every layer (OpenVINO's throughput streams; 2 cores: 170.4
    against 114.3 calls a second, ``benchmarks/results/workers_throughput_cpu.json``). Results
    are handed on in the order the frames were taken, whatever order the calls finish in.
    """

    def __init__(self, streams: Sequence[Stream], backend, emit: Callable[[Inferred | None], None],
                 stop: threading.Event, ready: threading.Event, max_frames: int | None = None,
                 max_batch: int = 1, wait_s: float = 0.004, workers: int = 1) -> None:
        self.streams, self.backend, self.emit, self.stop = list(streams), backend, emit, stop
        self.ready, self.max_frames = ready, max_frames
        self.max_batch, self.wait_s = max(1, max_batch), wait_s
        self.workers = max(1, workers)
        self.stats = BatchStats()
        self.error: BaseException | None = None
        self._turn = 0
        self._gathering = threading.Lock()   # one worker at a time takes frames: sequence order
        self._order = threading.Condition()  # results leave in sequence order
        self._taken_batches = 0              # sequence number of the next batch taken
        self._emitted_batches = 0            # sequence number of the next batch to hand on
        self._running = self.workers
        self._local = threading.local()      # each worker's own input buffer
        self.threads = [threading.Thread(target=self._run, daemon=True,
                                         name="segrt-infer" if self.workers == 1 else f"segrt-infer-{i}")
                        for i in range(self.workers)]

    def start(self) -> None:
        for t in self.threads:
            t.start()

    def join(self, timeout: float) -> None:
        deadline = time.perf_counter() + timeout
        for t in self.threads:
            t.join(max(0.0, deadline - time.perf_counter()))

    def _run(self) -> None:
        try:
            while not self.stop.is_set() and self.error is None:
                with self._gathering:
                    batch = self._gather()
                    seq = self._taken_batches
                    self._taken_batches += bool(batch)
                if not batch:
                    break
                self._infer(seq, batch)
        except BaseException as exc:  # noqa: BLE001  re-raised on the main thread
            with self._order:
                self.error = self.error or exc
                self._order.notify_all()  # a worker waiting for this batch's turn gives up
        finally:
            with self._order:
                self._running -= 1
                last = self._running == 0
            if last:  # every result is out: the end marker comes after all of them
                self.emit(None)

    def _take(self, s: Stream, item: Captured | None) -> Captured | None:
        """Counts a frame taken from ``s``; the stream ends at its ``max_frames``-th."""
        if item is not None:
            s.taken += 1
            if self.max_frames is not None and s.taken >= self.max_frames:
                s.ended, s.stopped_by = True, "max_frames"
        return item

    def _gather(self) -> list[tuple[Stream, Captured]]:
        batch: list[tuple[Stream, Captured]] = []
        deadline = None
        order = self.streams[self._turn:] + self.streams[:self._turn]  # round robin: no stream starves
        self._turn = (self._turn + 1) % len(self.streams)
        while not self.stop.is_set():
            self.ready.clear()  # before polling: a frame that lands after the poll sets it again
            for s in order:
                if len(batch) >= self.max_batch:
                    break
                if s.ended or any(t is s for t, _ in batch):
                    continue
                assert s.capture is not None
                polled = s.capture.poll()
                if polled is False:  # the source ended
                    s.ended = True
                elif self._take(s, polled) is not None:
                    batch.append((s, polled))
            waiting = [s for s in order if not s.ended and not any(t is s for t, _ in batch)]
            if len(batch) >= self.max_batch or not waiting:
                break
            now = time.perf_counter()
            if batch:
                deadline = deadline or now + self.wait_s
                if now >= deadline:
                    break
                self.ready.wait(deadline - now)
            else:
                self.ready.wait(0.1)
        return batch

    def _infer(self, seq: int, batch: list[tuple[Stream, Captured]]) -> None:
        b = self.backend
        t0 = time.perf_counter()
        if len(batch) == 1:
            labels = b.infer(batch[0][1].tensor[None])
        else:
            x = self._batch_buffer(len(batch))
            for i, (_, item) in enumerate(batch):
                x[i] = item.tensor
            labels = b.infer(x)
        dt = time.perf_counter() - t0
        results = []
        for i, (s, item) in enumerate(batch):
            out = labels[i].copy()  # the backend reuses its output buffer
            check_labels(out, b.manifest, getattr(b, "path", b.manifest.name))
            results.append(Inferred(s, item, out, dt, len(batch)))
        with self._order:
            while self._emitted_batches != seq and self.error is None and not self.stop.is_set():
                self._order.wait(0.1)
            if self._emitted_batches != seq:
                return  # another worker failed, or the run is stopping
            st = self.stats
            st.batches, st.frames, st.busy_s = st.batches + 1, st.frames + len(batch), st.busy_s + dt
            st.largest = max(st.largest, len(batch))
            for r in results:
                self.emit(r)
            self._emitted_batches += 1
            self._order.notify_all()

    def _batch_buffer(self, n: int) -> np.ndarray:
        """The backend's input buffer with one worker; each worker's own with several."""
        if self.workers == 1:
            return self.backend.input_buffer(n)
        x = getattr(self._local, "x", None)
        if x is None or x.shape[0] < n:
            x = self._local.x = np.empty(self.backend.manifest.preprocess.input_shape(n), np.float32)
        return x[:n]


def model_batch_limit(backend, requested: int) -> tuple[int, str]:
    """The largest batch to run: ``requested``, or less where the model's input fixes its batch
    (a fixed batch of 1 runs the streams one by one), and why."""
    fixed = backend.fixed_batch
    if fixed is not None and fixed < requested:
        return fixed, (f"the model's batch is fixed at {fixed}: streams run one by one; export it with "
                       "--dynamic to batch them")
    most = backend.max_batch  # a served model's max_batch_size
    if most and most < requested:
        return most, f"up to {most} frames per model call (the served model's max_batch_size)"
    return requested, f"up to {requested} frames per model call"


def plan_workers(requested: int, threads: int, model, device: str, cores: int | None = None) -> tuple[int, int]:
    """(model calls at once, ONNX Runtime threads per call) for a run of ``model`` on ``device``
    with ``cores`` CPUs (default: this machine's).

    ``requested`` 0 is automatic: two calls at once for an ONNX file on CPU where there are
    two or more cores (on 2 cores, 1.5x the calls a second of one call on both), one elsewhere;
    ``threads`` 0 then splits the cores between them. Only ONNX Runtime on CPU runs calls at
    once; asking for more elsewhere is an error."""
    concurrent = str(model).lower().endswith(".onnx") and device == "cpu"
    if not concurrent:
        if requested > 1:
            raise SegrtError(f"--workers {requested}: only ONNX models on --device cpu (ONNX Runtime) run several "
                             "model calls at once; use --workers 1 or leave it at 0")
        return 1, threads
    cores = cores or os.cpu_count() or 1
    workers = requested or min(2, cores)
    if threads == 0 and workers > 1:
        threads = max(1, cores // workers)
    return workers, threads


def put(q: queue.Queue, item, stop: threading.Event) -> None:
    while True:
        try:
            q.put(item, timeout=0.1)
            return
        except queue.Full:
            if stop.is_set():
                return
