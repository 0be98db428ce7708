"""What ``segrt run`` reports: the JSON report (aggregate figures, then each stream's), and the
end: the stage table, or a one-line error naming what failed and what was kept."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from segrt import envinfo
from segrt.errors import SegrtError
from segrt.files import shown
from segrt.realtime.loop import LoopResult
from segrt.realtime.stream import Stream
from segrt.realtime.timing import format_table


def _ages(values: list[float]) -> dict:
    ages = np.asarray(values) if values else np.zeros(1)
    return {"mean": round(float(ages.mean()), 3), "p50": round(float(np.percentile(ages, 50)), 3),
            "p95": round(float(np.percentile(ages, 95)), 3), "max": round(float(ages.max()), 3)}


def _stream_doc(s: Stream, info: dict, file_sinks: list) -> dict:
    st = s.capture.stats if s.capture else None
    return {"index": s.index, "name": s.name, "source": info, "frames_in": s.taken, "frames_out": s.frames_out,
            "captured": st.captured if st else 0, "dropped": st.dropped if st else 0, "fps": round(s.fps(), 3),
            "frame_age_ms": _ages(s.ages_ms), "outages": st.outages if st else [],
            "capture_error": st.error if st else None, "write_error": s.write_error, "stopped_by": s.stopped_by,
            "outputs": [o for i, o, _ in file_sinks if i == s.index]}


def mean_shares(streams: list[Stream], classes) -> dict[str, float] | None:
    """Each class's mean share of the frames ``streams`` wrote (road, car, … of the drive)."""
    total = sum(s.share_sum for s in streams if s.share_sum is not None)
    frames = sum(s.frames_out for s in streams if s.share_sum is not None)
    if not frames:
        return None
    return {c: round(float(v) / frames, 5) for c, v in zip(classes, total, strict=True)}


def run_report(result: LoopResult, infos: list[dict], file_sinks: list, backend, cfg, model: Path,
               serve: str | None, frames_csv: Path | None) -> dict:
    m = backend.manifest
    threads = getattr(backend, "threads", cfg.threads)  # what the run used: 0 where the backend chose
    summary = result.timer.summary()
    wall = result.timer.wall_seconds
    fps_out = result.frames_out / wall if wall > 0 else 0.0
    infer_ms = summary.get("infer", {}).get("mean_ms", 0.0)
    if result.model_busy_s > 0:  # per frame in: a batch's model time is shared by its frames
        infer_ms = 1000.0 * result.model_busy_s / max(1, result.frames_in)
    workers = result.timer.parallel
    infer_ms /= workers  # calls that overlap: per frame, the model's wall time is shared too
    write_error = result.write_error or next(  # a sink that found its file incomplete on closing
        (f"--output {shown(o)}: {sink.error}" for _, o, sink in file_sinks if getattr(sink, "error", None)), None)
    return {
        "frames_in": result.frames_in,
        "frames_out": result.frames_out,
        "captured": result.captured,
        "dropped": result.dropped,
        "fps": round(fps_out, 3),
        "model_fps": round(1000.0 / infer_ms, 3) if infer_ms else None,
        "fps_ratio": round(fps_out * infer_ms / 1000.0, 3) if infer_ms else None,
        "wall_s": round(wall, 3),
        "stopped_by": result.stopped_by,
        "frame_age_ms": _ages(result.ages_ms),
        "outages": result.outages,
        "capture_error": result.error,
        "stages": summary,
        "source": infos[0] if len(infos) == 1 else None,  # the run's source, where there is one
        "streams": [{**_stream_doc(s, info, file_sinks), "class_shares": mean_shares([s], m.classes)}
                    for s, info in zip(result.streams, infos, strict=True)],
        # each class's mean share of the written frames (of the model's label map)
        "class_shares": mean_shares(result.streams, m.classes),
        "outputs": [o for _, o, sink in file_sinks if (getattr(sink, "frames_whole", None) or 0) > 0
                    or o in ("null", "window")],
        "output_frames": {o: getattr(sink, "frames_whole", None) for _, o, sink in file_sinks},
        "output_codecs": {o: sink.codec for _, o, sink in file_sinks if getattr(sink, "codec", None)},
        "write_error": write_error, "serve": serve, "frames_csv": str(frames_csv) if frames_csv else None,
        "truncated": bool(write_error or any(_truncated(s, info, cfg.loop)
                                             for s, info in zip(result.streams, infos, strict=True))),
        "model": {"path": str(model), "name": m.name, "architecture": m.architecture,
                  "precision": m.precision, "sha256": m.model_sha256,
                  "input": [m.preprocess.width, m.preprocess.height]},
        "backend": {"name": backend.name, "threads": threads, "workers": workers, "device": cfg.device},
        "config": {"palette": cfg.palette, "alpha": cfg.alpha, "legend": cfg.legend, "hud": cfg.hud, "mode": cfg.mode,
                   "classes": list(cfg.classes), "realtime": cfg.realtime, "realtime_fps": cfg.realtime_fps,
                   "loop": cfg.loop, "steady": cfg.steady},
        **envinfo.provenance(),
    }


def _truncated(s: Stream, info: dict, loop: bool) -> bool:
    """A file that ended well before its frame count: truncated or corrupt."""
    expected, captured = info["frame_count"], s.capture.stats.captured if s.capture else 0
    return bool(s.stopped_by == "end" and not info["live"] and not loop and expected
                and captured < expected - max(2, expected // 100))


def _problem(s: Stream, info: dict, doc: dict, loop: bool) -> str | None:
    """Why stream ``s`` did not end well (a one-line message that says what was kept), or None."""
    uri, st = info["uri"], s.capture.stats if s.capture else None
    if st is None:
        return None
    kept = [shown(o) for o in doc["streams"][s.index]["outputs"] if o in doc["outputs"] and o not in ("null", "window")]
    where = f" to {', '.join(kept)}" if kept else ""
    dead = [o for o in st.outages if not o["recovered"]]
    if dead and s.stopped_by == "end":
        return (f"{shown(uri)}: the stream stayed dead after {dead[-1]['attempts']} reconnect attempts "
                f"({dead[-1]['seconds']:.0f} s); the {s.frames_out} frames before the outage were "
                "written. Check the camera or server, or raise reconnect_attempts in the run config")
    if s.frames_out == 0 and s.stopped_by == "end" and st.exception is None:
        return (f"{shown(uri)}: the source gave no frames; nothing was written. Check that it "
                "plays (e.g. with ffplay) or re-copy it")
    if isinstance(st.exception, SegrtError):  # e.g. an unreadable image in a folder
        done = (f"after {s.frames_out} frames, which were written{where}" if s.frames_out and kept
                else f"after {s.frames_out} frames" if s.frames_out else "nothing was written")
        return f"{st.exception} ({done})"
    if st.exception is not None:
        return (f"{shown(uri)}: reading failed after {s.frames_out} frames ({st.error})"
                + (f"; those frames were written{where}" if kept else ""))
    if _truncated(s, info, loop):
        return (f"{shown(uri)}: the video ended after {st.captured} of its {info['frame_count']} frames "
                f"(truncated or corrupt); those frames were processed{' and written' + where if kept else ''}."
                " Re-copy the file")
    return None


def _unasked_drops(s: Stream, info: dict, cfg) -> str | None:
    """A file's frames are dropped only when asked (--realtime, --realtime-fps: a camera's
    policy, for load tests); any other drop fails the run instead of leaving a quiet gap."""
    st = s.capture.stats if s.capture else None
    if st is None or not st.dropped or info["live"] or cfg.realtime or cfg.realtime_fps:
        return None
    return (f"{shown(info['uri'])}: {st.dropped} of its {st.captured} frames were dropped although a file is "
            f"never dropped from without --realtime; {s.frames_out} were written. This is a bug: please report it")


def finish(result: LoopResult, doc: dict, infos: list[dict], file_sinks: list, cfg) -> str:
    """The end-of-run table, or a :class:`SegrtError` (exit 2) naming each stream that failed
    and what was kept. With several streams, the others' outputs are complete either way."""
    if doc["write_error"] and len(result.streams) <= 1:
        kept = ", ".join(f"{shown(o)} ({n or 0} frames)" for o, n in doc["output_frames"].items())
        raise SegrtError(f"{doc['write_error']}; the run stopped after {result.frames_out} frames and no "
                         f"incomplete output was kept ({kept})")
    problems = []
    for s, info in zip(result.streams, infos, strict=True):
        why = _problem(s, info, doc, cfg.loop) or _unasked_drops(s, info, cfg)
        sink_error = next((f"--output {shown(o)}: {sink.error}" for i, o, sink in file_sinks
                           if i == s.index and getattr(sink, "error", None)), None)
        why = s.write_error or sink_error or why
        if why:
            problems.append(why if len(result.streams) == 1 else f"stream {s.index} ({s.name}): {why}")
    if problems:
        if len(result.streams) > 1:
            good = [s for s in result.streams if not any(p.startswith(f"stream {s.index} ") for p in problems)]
            problems.append(f"the other {len(good)} streams finished" if good else "no stream finished")
        raise SegrtError("; ".join(problems))
    table = format_table(result.timer.summary(), result.frames_out, result.timer.wall_seconds,
                         result.timer.parallel)
    if len(result.streams) > 1:
        b = doc.get("batching") or {}
        table += (f"\n{len(result.streams)} streams: " + ", ".join(
            f"{s.name} {s.frames_out} frames {s.fps():.1f} FPS" for s in result.streams)
            + (f"; batches of {b['mean']:.2f} frames on average (largest {b['largest']}, limit {b['max_batch']})"
               if b.get("batches") else ""))
    if result.dropped or any(i["live"] for i in infos) or cfg.realtime:
        table += (f"\nlive: {result.captured} captured, {result.dropped} dropped, frame age p50 "
                  f"{doc['frame_age_ms']['p50']:.0f} ms, max {doc['frame_age_ms']['max']:.0f} ms")
    for o in result.outages:
        table += (f"\nstream outage at {o['start_s']:.1f} s: {o['seconds']:.1f} s, {o['attempts']} reconnect "
                  f"attempts, {'recovered' if o['recovered'] else 'gave up'}")
    if result.error:
        table += f"\nsource error: {result.error}"
    if result.stopped_by not in ("end", "max_frames"):
        table += f"\nstopped by {result.stopped_by}; everything up to that frame was written"
    return table
