"""``segrt batch``: many recordings through the run loop, locally or across a Ray cluster."""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path

import click

from segrt.app.cli_batch_checks import WRITTEN_BY
from segrt.app.options import MODEL
from segrt.checks import check_paths
from segrt.errors import SegrtError
from segrt.files import shown, write_text_atomic


@click.command("batch")
@click.argument("patterns", nargs=-1, required=True, metavar="FILES...")
@click.option("--output", "-o", "out_dir", type=click.Path(path_type=Path), required=True,
              help="Folder for STEM.mp4 + STEM.json per file, and summary.json (created if missing).")
@click.option("--model", "-m", type=MODEL, default=None,
              help="Model file, shipped name or triton://HOST:PORT/NAME [default: the shipped CPU default].")
@click.option("--ray", "ray_address", default=None, metavar="ADDRESS",
              help="Run the files as Ray tasks: a cluster address (HOST:6379, ray://HOST:10001, auto), checked "
                   "within seconds, or 'local' to start Ray here [default: a local process pool].")
@click.option("--workers", type=click.IntRange(min=1), default=None,
              help="Local pool: files at once [default: 1 per 2 cores].")
@click.option("--cpus-per-job", type=click.IntRange(min=1), default=1, show_default=True,
              help="Ray: CPUs each file's task asks for (also its inference threads).")
@click.option("--num-cpus", type=click.IntRange(min=1), default=None,
              help="--ray local: CPUs the local Ray instance may use [default: all cores].")
def batch(patterns: tuple[str, ...], out_dir: Path, model: Path | None, ray_address: str | None,
          workers: int | None, cpus_per_job: int, num_cpus: int | None) -> None:
    """Segment many video files: FILES are paths or quoted patterns ('videos/*.mp4'; '**' matches
    folders at any depth, following folder links but entering each real folder once).

    Each file gets OUT/STEM.mp4 (the overlay) and OUT/STEM.json (its run report); a re-run skips
    files an earlier run finished and replaces what earlier batches wrote, but a file in OUT that
    segrt batch did not write is never replaced: the command stops before any work, naming it.
    A file that fails is listed and the others go on; the exit code is then 2. With --ray, the
    address must answer within seconds, and OUT must be a folder every Ray node can write.

    \b
    segrt batch 'recordings/*.mp4' -o overlays/
    segrt batch 'recordings/**/*.mp4' -o /shared/overlays --ray auto --cpus-per-job 4
    """
    from segrt.app.cli_batch_checks import check_ray_address, foreign_outputs, refuse_foreign
    from segrt.app.fleet import expand, plan, ray_cluster, summary_table
    from segrt.engines.zoo import default_for

    model = model or default_for("cpu")
    files = expand(patterns)
    if out_dir.exists() and not out_dir.is_dir():
        raise SegrtError(f"--output {shown(out_dir)} is a file; give a folder")
    jobs = plan(files, out_dir)
    summary = out_dir / "summary.json"
    check_paths({"FILES": files, "--model": model},
                {"--output": [p for j in jobs for p in (j["output"], j["report"])] + [summary]})
    todo = [j for j in jobs if not j["done"]]
    refuse_foreign(foreign_outputs(todo, summary), out_dir)
    skipped = [{"source": j["source"], "output": j["output"], "report": j["report"], "status": "skipped",
                "class_shares": earlier_shares(j["report"])} for j in jobs if j["done"]]
    with contextlib.ExitStack() as stack:
        if ray_address and todo:  # nothing to run: no cluster needed
            check_ray_address(ray_address)
            stack.enter_context(ray_cluster(ray_address, cpus_per_job, num_cpus))
        out_dir.mkdir(parents=True, exist_ok=True)
        click.echo(f"{len(files)} files: {len(todo)} to run, {len(skipped)} finished earlier (skipped)")
        rows, where = _run(todo, str(model), ray_address, workers, cpus_per_job)
    rows += skipped
    click.echo(summary_table(rows))
    failed = [r for r in rows if r["status"] == "failed"]
    doc = {"written_by": WRITTEN_BY, "model": str(model), "where": where, "files": len(files),
           "done": sum(r["status"] == "done" for r in rows), "skipped": len(skipped),
           "failed": [{"source": r["source"], "error": r.get("error")} for r in failed],
           "results": sorted(rows, key=lambda r: r["source"])}
    write_text_atomic(summary, json.dumps(doc, indent=2) + "\n", "summary")
    click.echo(f"wrote {summary}")
    if failed:
        names = ", ".join(Path(r["source"]).name for r in failed)
        raise SegrtError(f"{len(failed)} of {len(files)} files failed ({names}); the others are in {shown(out_dir)}; "
                         "see summary.json")


def _run(todo: list[dict], model: str, ray_address: str | None, workers: int | None,
         cpus_per_job: int) -> tuple[list[dict], str]:
    """The jobs' result rows, and where they ran (for summary.json)."""
    from segrt.app.fleet import run_local, run_ray

    if ray_address:
        return (run_ray(todo, model, cpus_per_job, cpus_per_job, click.echo) if todo else []), f"Ray ({ray_address})"
    cores = os.cpu_count() or 1
    workers = workers or max(1, cores // 2)
    rows = run_local(todo, model, workers, max(1, cores // workers), click.echo) if todo else []
    return rows, f"{workers} local workers"


def earlier_shares(report: str) -> dict | None:
    """The class shares an earlier batch's report of a finished file holds (None before they were
    recorded)."""
    try:
        return json.loads(Path(report).read_text()).get("class_shares")
    except (OSError, ValueError, AttributeError):
        return None
