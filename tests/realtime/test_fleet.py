"""`segrt batch`: many files, one overlay and report each, failures listed, finished files
skipped on a re-run; locally and as tasks of a real (local) Ray instance."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

from tests.conftest import run_segrt


def segrt(*args) -> subprocess.CompletedProcess:
    return run_segrt(*args, timeout=900)


def fleet(short_clip: Path, folder: Path) -> Path:
    folder.mkdir()
    for name in ("a.mp4", "b.mp4"):
        shutil.copyfile(short_clip, folder / name)
    (folder / "broken.mp4").write_bytes(b"\x00\x00\x00\x18ftypisom" + b"\x17" * 4000)  # an mp4 that is not
    return folder


def test_batch_runs_every_file_lists_failures_and_skips_finished_ones(short_clip, tmp_path):
    videos = fleet(short_clip, tmp_path / "videos")
    out = tmp_path / "out"
    r = segrt("batch", f"{videos}/*.mp4", "-o", out, "--workers", "2")
    assert r.returncode == 2 and "1 of 3 files failed (broken.mp4)" in r.stderr
    assert r.stderr.count("\n") == 1
    doc = json.loads((out / "summary.json").read_text())
    assert (doc["files"], doc["done"], [Path(f["source"]).name for f in doc["failed"]]) == (3, 2, ["broken.mp4"])
    for stem in ("a", "b"):
        report = json.loads((out / f"{stem}.json").read_text())
        assert report["frames_out"] == 12 and (out / f"{stem}.mp4").stat().st_size > 0
    assert not (out / "broken.mp4").exists()
    # each file's mean class shares (drivable area over a drive, without code): a dashcam sees road
    shares = {Path(f["source"]).name: f["class_shares"] for f in doc["results"] if f["status"] == "done"}
    assert set(shares) == {"a.mp4", "b.mp4"} and all(0.1 < s["Road"] < 1 for s in shares.values())
    assert all(abs(sum(s.values()) - 1) < 1e-3 for s in shares.values())
    r = segrt("batch", f"{videos}/*.mp4", "-o", out)  # a re-run: only the failed file again
    assert "3 files: 1 to run, 2 finished earlier (skipped)" in r.stdout
    (videos / "broken.mp4").unlink()
    shutil.copyfile(short_clip, videos / "a.mp4")  # a changed source runs again
    r = segrt("batch", f"{videos}/*.mp4", "-o", out)
    assert r.returncode == 0, r.stderr
    assert "2 files: 1 to run, 1 finished earlier (skipped)" in r.stdout
    cores = os.cpu_count() or 1
    used = json.loads((out / "a.json").read_text())["backend"]  # the job's CPUs, as calls x threads
    assert used["threads"] * used["workers"] == cores // max(1, cores // 2) and used["workers"] == min(2, cores)


def test_batch_on_a_local_ray_instance(short_clip, tmp_path):
    videos = fleet(short_clip, tmp_path / "videos")
    (videos / "broken.mp4").unlink()
    out = tmp_path / "out"
    r = segrt("batch", videos / "a.mp4", videos / "b.mp4", "-o", out, "--ray", "local", "--num-cpus", "2",
              "--cpus-per-job", "1")
    assert r.returncode == 0, r.stderr
    doc = json.loads((out / "summary.json").read_text())
    assert doc["where"] == "Ray (local)" and doc["done"] == 2
    assert all(row["frames"] == 12 and row["host"] for row in doc["results"])


def test_batch_refuses_what_it_cannot_do(short_clip, tmp_path):
    r = segrt("batch", f"{tmp_path}/none/*.mp4", "-o", tmp_path / "out")
    assert r.returncode == 2 and "matches no file" in r.stderr and not (tmp_path / "out").exists()
    (tmp_path / "x").mkdir()
    (tmp_path / "y").mkdir()
    shutil.copyfile(short_clip, tmp_path / "x" / "clip.mp4")
    shutil.copyfile(short_clip, tmp_path / "y" / "clip.mp4")
    r = segrt("batch", f"{tmp_path}/*/clip.mp4", "-o", tmp_path / "out")
    assert r.returncode == 2 and "would both write clip.mp4" in r.stderr
    r = segrt("batch", tmp_path / "x" / "clip.mp4", "-o", tmp_path / "x")  # x/clip.mp4 would overwrite the input
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "would destroy the input" in r.stderr
    assert not (tmp_path / "x" / "summary.json").exists()
    r = segrt("batch", tmp_path / "x" / "clip.mp4", "-o", tmp_path / "out", "--ray", "local", "--num-cpus", "1",
              "--cpus-per-job", "2")
    assert r.returncode == 2 and "the Ray cluster has 1 CPUs" in r.stderr
