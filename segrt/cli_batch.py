"""``segrt batch``: many recordings through the run loop, locally or across a Ray cluster."""

from __future__ import annotations

import json
import os
from pathlib import Path

import click

from segrt.errors import SegrtError
from segrt.files import check_paths, shown, write_text_atomic
from segrt.options import MODEL


@click.command("batch")
@click.argument("patterns", nargs=-1, required=True, metavar="FILES...")
@click.option("--output", "-o", "out_dir", type=click.Path(path_type=Path), required=True,
              help="Folder for STEM.mp4 + STEM.json per file, and summary.json (created if missing).")
@click.option("--model", "-m", type=MODEL, default=None,
              help="Model file, shipped name or triton://HOST:PORT/NAME [default: the shipped CPU default].")
@click.option("--ray", "ray_address", default=None, metavar="ADDRESS",
              help="Run the files as Ray tasks: a cluster address (ray://HOST:10001, auto), or 'local' to start "
                   "Ray here [default: a local process pool].")
@click.option("--workers", type=click.IntRange(min=1), default=None,
              help="Local pool: files at once [default: 1 per 2 cores].")
@click.option("--cpus-per-job", type=click.IntRange(min=1), default=1, show_default=True,
              help="Ray: CPUs each file's task asks for (also its inference threads).")
@click.option("--num-cpus", type=click.IntRange(min=1), default=None,
              help="--ray local: CPUs the local Ray instance may use [default: all cores].")
def batch(patterns: tuple[str, ...], out_dir: Path, model: Path | None, ray_address: str | None,
          workers: int | None, cpus_per_job: int, num_cpus: int | None) -> None:
    """Segment many video files: FILES are paths or quoted patterns ('videos/*.mp4').

    Each file gets OUT/STEM.mp4 (the overlay) and OUT/STEM.json (its run report); a re-run skips
    files an earlier run finished. A file that fails is listed and the others go on; the exit
    code is then 2. With --ray, OUT must be a folder every Ray node can write (shared storage).

    \b
    segrt batch 'recordings/*.mp4' -o overlays/
    segrt batch 'recordings/**/*.mp4' -o /shared/overlays --ray auto --cpus-per-job 4
    """
    from segrt.fleet import expand, plan, run_local, run_ray, summary_table
    from segrt.zoo import default_for

    model = model or default_for("cpu")
    files = expand(patterns)
    if out_dir.exists() and not out_dir.is_dir():
        raise SegrtError(f"--output {shown(out_dir)} is a file; give a folder")
    jobs = plan(files, out_dir)
    check_paths({"FILES": files, "--model": model},
                {"--output": [p for j in jobs for p in (j["output"], j["report"])] + [out_dir / "summary.json"]})
    out_dir.mkdir(parents=True, exist_ok=True)
    todo = [j for j in jobs if not j["done"]]
    skipped = [{"source": j["source"], "output": j["output"], "report": j["report"], "status": "skipped"}
               for j in jobs if j["done"]]
    click.echo(f"{len(files)} files: {len(todo)} to run, {len(skipped)} finished earlier (skipped)")
    cores = os.cpu_count() or 1
    if ray_address:
        rows = run_ray(todo, str(model), ray_address, cpus_per_job, cpus_per_job, click.echo, num_cpus) if todo else []
        where = f"Ray ({ray_address})"
    else:
        workers = workers or max(1, cores // 2)
        rows = run_local(todo, str(model), workers, max(1, cores // workers), click.echo) if todo else []
        where = f"{workers} local workers"
    rows += skipped
    click.echo(summary_table(rows))
    failed = [r for r in rows if r["status"] == "failed"]
    doc = {"model": str(model), "where": where, "files": len(files), "done": sum(r["status"] == "done" for r in rows),
           "skipped": len(skipped), "failed": [{"source": r["source"], "error": r.get("error")} for r in failed],
           "results": sorted(rows, key=lambda r: r["source"])}
    write_text_atomic(out_dir / "summary.json", json.dumps(doc, indent=2) + "\n", "summary")
    click.echo(f"wrote {out_dir / 'summary.json'}")
    if failed:
        names = ", ".join(Path(r["source"]).name for r in failed)
        raise SegrtError(f"{len(failed)} of {len(files)} files failed ({names}); the others are in {shown(out_dir)}; "
                         "see summary.json")
