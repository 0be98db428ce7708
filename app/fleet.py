"""Many recordings, one command: ``segrt batch 'videos/*.mp4' -o OUT/`` (fleet mode).

Each file becomes ``OUT/STEM.mp4`` (the overlay) and ``OUT/STEM.json`` (its ``segrt run``
report). Jobs run in a local process pool, or as Ray tasks on a cluster (``--ray ADDRESS``;
``--ray local`` starts a Ray instance here). A re-run skips files whose report says they
finished; a file that fails is listed at the end and does not stop the others. The summary goes
to ``OUT/summary.json`` and as a table to the terminal.
"""

from __future__ import annotations

import contextlib
import glob
import json
import os
import signal
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from segrt.app.cli_batch_checks import fingerprint, glob_once, stamp_report
from segrt.errors import SegrtError, first_line
from segrt.files import shown


def expand(patterns: Sequence[str]) -> list[Path]:
    """Files matching the patterns (quoted globs, or plain paths), sorted, each once. ``**``
    enters each real folder once (see :func:`segrt.app.cli_batch_checks.glob_once`)."""
    files: dict[str, Path] = {}
    for pattern in patterns:
        hits = glob_once(os.path.expanduser(pattern)) if glob.has_magic(pattern) else [pattern]
        if not hits:
            raise SegrtError(f"{pattern}: matches no file; quote the pattern so segrt expands it ('videos/*.mp4')")
        for h in hits:
            p = Path(h)
            if not p.is_file():
                raise SegrtError(f"{shown(p)}: not a file; give video files or a pattern that matches them")
            files.setdefault(os.path.realpath(p), p)
    return list(files.values())


def plan(files: list[Path], out_dir: Path) -> list[dict]:
    """One job per file: where its overlay and report go, and whether an earlier run finished it."""
    stems: dict[str, Path] = {}
    jobs = []
    for f in files:
        if f.stem in stems:
            raise SegrtError(f"{shown(f)} and {shown(stems[f.stem])} would both write {f.stem}.mp4 in "
                             f"{shown(out_dir)}; batch them into different folders")
        stems[f.stem] = f
        video, report = out_dir / f"{f.stem}.mp4", out_dir / f"{f.stem}.json"
        jobs.append({"source": str(f), "output": str(video), "report": str(report),
                     "done": finished(f, video, report)})
    return jobs


def finished(source: Path, video: Path, report: Path) -> bool:
    """An earlier run wrote this file's overlay whole: its report names this source, says nothing
    was cut short, and the overlay is newer than the source (a replaced source runs again)."""
    try:
        doc = json.loads(report.read_text())
    except (OSError, ValueError):
        return False
    return (video.is_file() and isinstance(doc, dict) and doc.get("truncated") is False
            and doc.get("stopped_by") == "end" and (doc.get("source") or {}).get("uri") == str(source)
            and video.stat().st_mtime_ns >= source.stat().st_mtime_ns)


def run_job(job: dict, model: str, threads: int) -> dict:
    """One file, as ``segrt run SOURCE -o OUT/STEM.mp4 --report OUT/STEM.json``; a result row.
    ``threads``: the job's CPUs, as two model calls at once of half as many threads each where
    there are two or more (ONNX on CPU; see :func:`segrt.realtime.stream.plan_workers`). A
    report this run wrote (a failed run's too) gets the batch record, which marks the pair as
    segrt's for later batches."""
    from segrt.engines.zoo import resolve_model
    from segrt.realtime.run import RunRequest, run_app

    t0 = time.perf_counter()
    row = {"source": job["source"], "output": job["output"], "report": job["report"]}
    video, report = Path(job["output"]), Path(job["report"])
    before = fingerprint(report)
    try:
        summary = run_app(RunRequest.of(job["source"], resolve_model(model), job["output"], report=report,
                                        progress=False, overrides=job_threads(model, threads)))
        if summary.signum is not None:  # Ctrl-C reached the worker too: the file was not finished
            raise SegrtError(f"interrupted by {signal.Signals(summary.signum).name} before the end of the file")
    except SegrtError as exc:
        failed = {**row, "status": "failed", "error": str(exc)}
    except Exception as exc:  # a crash in one file is that file's result  # noqa: BLE001
        failed = {**row, "status": "failed", "error": f"{type(exc).__name__}: {exc}"}
    else:
        failed = None
    if fingerprint(report) not in (None, before):
        try:
            stamp_report(report, video)
        except SegrtError as exc:
            failed = failed or {**row, "status": "failed", "error": str(exc)}
    if failed:
        return {**failed, "seconds": round(time.perf_counter() - t0, 2)}
    doc = json.loads(report.read_text())
    return {**row, "status": "done", "frames": doc["frames_out"], "fps": doc["fps"],
            "seconds": round(time.perf_counter() - t0, 2), "host": os.uname().nodename,
            "class_shares": doc.get("class_shares")}  # each class's mean share of the file's frames


def job_threads(model: str, cpus: int) -> dict:
    """``segrt run`` overrides that keep a job within ``cpus`` CPUs (as calls x threads)."""
    from segrt.realtime.stream import plan_workers

    workers, threads = plan_workers(0, 0, model, "cpu", cores=cpus)
    return {"threads": threads or cpus, "workers": workers}


def run_local(jobs: list[dict], model: str, workers: int, threads: int, echo: Callable[[str], object]) -> list[dict]:
    """The jobs in a pool of ``workers`` processes, each of which dies with this one (even
    by ``kill -9``: see :func:`_die_with_parent`)."""
    import concurrent.futures
    import multiprocessing

    ctx = multiprocessing.get_context("spawn")
    rows = []
    pool = concurrent.futures.ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=_die_with_parent,
                                                  initargs=(os.getpid(),))
    try:
        futures = {pool.submit(run_job, job, model, threads): job for job in jobs}
        for fut in concurrent.futures.as_completed(futures):
            rows.append(fut.result())
            echo(_progress(rows[-1], len(rows), len(jobs)))
    except BaseException:  # Ctrl-C, SIGTERM, an error: no further file starts, the running ones stop now
        pool.shutdown(wait=False, cancel_futures=True)
        for proc in list(getattr(pool, "_processes", {}).values()):  # the executor has no public kill
            proc.terminate()  # each worker's unfinished outputs are temporaries a later write removes
        raise
    pool.shutdown()
    return rows


def _die_with_parent(parent: int) -> None:
    """Pool worker initializer: on Linux the kernel sends this worker SIGKILL when the process
    that started it ends, however it ends (``prctl(PR_SET_PDEATHSIG)``; the pool starts its
    workers from the main thread, whose end is the process's end). multiprocessing's
    resource tracker then sees its last writer gone and exits too. Elsewhere: nothing."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes
    import signal

    pr_set_pdeathsig = 1
    ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, int(signal.SIGKILL), 0, 0, 0)
    if os.getppid() != parent:  # the parent died before the line above
        os._exit(1)


@contextlib.contextmanager
def ray_cluster(address: str, cpus_per_job: int, num_cpus: int | None = None) -> Iterator[None]:
    """Ray joined (or, for ``address`` "local", started here with ``num_cpus`` CPUs: set it, as
    Ray otherwise counts every core, and tasks that ask for more CPUs than exist wait forever)
    while the block runs. Call :func:`segrt.app.cli_batch_checks.check_ray_address` first: an
    unreachable address makes ``ray.init`` retry for minutes."""
    try:
        import ray
    except ImportError:
        raise SegrtError("--ray needs Ray: pip install -e '.[ray]'") from None
    if address == "local":
        ray.init(address="local", num_cpus=num_cpus or os.cpu_count() or 1, include_dashboard=False,
                 log_to_driver=False, configure_logging=False)
    else:
        _join(ray, address)
    try:
        total = ray.cluster_resources().get("CPU", 0)
        if cpus_per_job > total:
            raise SegrtError(f"--cpus-per-job {cpus_per_job}: the Ray cluster has {total:g} CPUs; ask for fewer")
        yield
    finally:
        ray.shutdown()


def _join(ray, address: str) -> None:
    """``ray.init(address)`` with what Ray prints meanwhile (its C++ logs write to fd 2) held
    back: shown after a join, dropped after a failure, which is one line naming the cause."""
    import tempfile

    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as held:
        os.dup2(held.fileno(), 2)
        try:
            ray.init(address=address, log_to_driver=False, configure_logging=False)
        except Exception as exc:  # ConnectionError and Ray's own  # noqa: BLE001
            ray.shutdown()  # its retry threads would go on printing
            why = first_line(exc, 160)
            raise SegrtError(f"--ray {address}: cannot join the Ray cluster ({why}); start it with 'ray start "
                             "--head' or check the address") from None
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
        held.seek(0)
        sys.stderr.write(held.read().decode(errors="replace"))


def run_ray(jobs: list[dict], model: str, cpus_per_job: int, threads: int,
            echo: Callable[[str], object]) -> list[dict]:
    """Ray tasks, one per file, each asking for ``cpus_per_job`` CPUs, inside :func:`ray_cluster`."""
    import ray

    task = ray.remote(num_cpus=cpus_per_job, max_retries=0)(run_job)
    pending = {task.remote(job, model, threads): job for job in jobs}
    rows = []
    while pending:
        ready, _ = ray.wait(list(pending), num_returns=1)
        for ref in ready:
            job = pending.pop(ref)
            try:
                rows.append(ray.get(ref))
            except Exception as exc:  # a worker that died  # noqa: BLE001
                rows.append({"source": job["source"], "output": job["output"], "report": job["report"],
                             "status": "failed", "error": f"Ray task failed: {first_line(exc)}"})
            echo(_progress(rows[-1], len(rows), len(jobs)))
    return rows


def _progress(row: dict, n: int, total: int) -> str:
    what = (f"{row.get('frames')} frames, {row.get('fps', 0):.1f} FPS" if row["status"] == "done"
            else row.get("error", "failed"))
    return f"[{n}/{total}] {Path(row['source']).name}: {row['status']} ({what})"


def summary_table(rows: list[dict]) -> str:
    head = f"{'file':<32}{'status':<10}{'frames':>8}{'FPS':>8}{'s':>8}  host"
    lines = [head, "-" * len(head)]
    for r in sorted(rows, key=lambda r: r["source"]):
        lines.append(f"{Path(r['source']).name[:31]:<32}{r['status']:<10}{r.get('frames', ''):>8}"
                     f"{r.get('fps', '') if r.get('fps') is None else format(r['fps'], '.1f'):>8}"
                     f"{r.get('seconds', '') if r.get('seconds') is None else format(r['seconds'], '.1f'):>8}"
                     f"  {r.get('host', '')}")
    return "\n".join(lines)
