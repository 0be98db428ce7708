"""The frame loop: read → preprocess → infer → postprocess → render → write, each timed.

Everything that allocates (backend buffers, overlay buffers, the input array) is made before
the first frame or on the first frame; the loop itself reuses them.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

from tqdm import tqdm

from segrt.preprocess import Preprocessor
from segrt.realtime.overlay import Overlay
from segrt.realtime.timing import StageTimer

HUD_WINDOW = 30  # frames averaged for the on-screen FPS: steady, yet follows changes in ~1 s


@dataclass
class LoopResult:
    frames_in: int
    frames_out: int
    timer: StageTimer
    stopped_by: str  # "end", "max_frames", "window", "interrupt"


def run_loop(source, backend, sinks: Sequence, overlay: Overlay, max_frames: int | None = None,
             progress: bool | None = None) -> LoopResult:
    """Runs until the source ends, ``max_frames`` are done, a window asks to stop, or Ctrl-C.

    ``source``, ``backend`` and ``sinks`` must already be entered. ``progress=None`` shows
    the live line only on a terminal.
    """
    timer = StageTimer()
    prep = Preprocessor(backend.manifest.preprocess)
    x = backend.input_buffer(1)
    total = source.frame_count if max_frames is None else min(max_frames, source.frame_count or max_frames)
    bar = tqdm(total=total, unit="frame", desc=backend.manifest.name, dynamic_ncols=True, mininterval=0.5,
               disable=None if progress is None else not progress)
    frames_in = frames_out = 0
    stopped_by = "end"
    try:
        while max_frames is None or frames_in < max_frames:
            t0 = time.perf_counter()
            frame = source.read()
            if frame is None:  # the end-of-stream read is not a frame: not a sample either
                break
            timer.add("read", time.perf_counter() - t0)
            frames_in += 1
            with timer.stage("preprocess"):
                prep(frame, out=x[0])
            with timer.stage("infer"):
                labels = backend.infer(x)
            with timer.stage("postprocess"):
                color = overlay.colorize_to(labels[0], (frame.shape[1], frame.shape[0]))
            with timer.stage("render"):
                out = overlay.compose(frame, color, hud_lines(timer, backend) if overlay.hud else ())
            with timer.stage("write"):
                for sink in sinks:
                    sink.write(out)
            frames_out += 1
            timer.end_frame()
            bar.update(1)
            if bar.n % 10 == 0:
                bar.set_postfix_str(live_line(timer), refresh=False)
            if any(s.stop_requested for s in sinks):
                stopped_by = "window"
                break
        else:
            stopped_by = "max_frames"
    except KeyboardInterrupt:
        stopped_by = "interrupt"  # keep what was written: sinks close normally after this
    finally:
        timer.stop()
        bar.close()
    return LoopResult(frames_in, frames_out, timer, stopped_by)


def hud_lines(timer: StageTimer, backend) -> list[str]:
    latency = timer.mean_ms("frame", HUD_WINDOW)
    fps = 1000.0 / latency if latency else 0.0
    m = backend.manifest
    return [f"{fps:5.1f} FPS  {latency:5.1f} ms/frame",
            f"infer {timer.mean_ms('infer', HUD_WINDOW):5.1f} ms  {m.architecture} {m.precision} {backend.name}"]


def live_line(timer: StageTimer) -> str:
    latency = timer.mean_ms("frame", HUD_WINDOW)
    parts = [f"{1000.0 / latency:.1f} FPS" if latency else "- FPS"]
    parts += [f"{s} {timer.mean_ms(s, HUD_WINDOW):.1f}" for s in timer.stages]
    return " | ".join(parts) + " ms"
