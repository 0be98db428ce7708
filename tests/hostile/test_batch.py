"""Hostile cases of `segrt batch` (issue 26), each a ``python -m segrt`` subprocess as in
tests/hostile/test_inputs.py: refused cases exit 2 within 15 s with one ``error:`` line on stderr and
leave every file in the case folder byte-identical (no output folder made); the cases that must
work (re-runs over its own outputs, a loop of folder links, ``kill -9``) are checked for what
they did."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.conftest import start_segrt
from tests.hostile.kit import segrt, sha, snapshot

UNRESOLVABLE = "bogus-host-xyz.invalid"  # .invalid never resolves (RFC 6761)


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def videos(folder: Path, clip: Path, *names: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        shutil.copyfile(clip, folder / name)
    return folder


def own_files(folder: Path, *names: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        (folder / name).write_bytes(f"the user's own {name}\n".encode())


def _users_outputs(t: Path, c: Path) -> tuple[list[str], str]:
    videos(t / "in", c, "good.mp4")
    own_files(t / "out", "good.mp4", "good.json", "summary.json")
    return ["batch", "in/*.mp4", "-o", "out/"], "3 files in out exist that segrt batch did not write (good.mp4"


def _recording_named_like_an_overlay(t: Path, c: Path) -> tuple[list[str], str]:
    videos(t / "cam", c, "drive.avi")
    own_files(t / "cam", "drive.mp4")
    return ["batch", "cam/*.avi", "-o", "cam/"], "cam/drive.mp4 exists and segrt batch did not write it"


def _overlay_is_a_link(t: Path, c: Path) -> tuple[list[str], str]:
    videos(t / "in", c, "a.mp4")
    own_files(t, "precious.mp4")
    (t / "out").mkdir()
    (t / "out" / "a.mp4").symlink_to(t / "precious.mp4")
    return ["batch", "in/a.mp4", "-o", "out"], "out/a.mp4 exists and segrt batch did not write it"


def _ray(address: str, expect: str) -> object:
    """A --ray case: refused before Ray is imported (without Ray installed: for that)."""
    def case(t: Path, c: Path) -> tuple[list[str], str]:
        videos(t / "in", c, "a.mp4")
        why = expect if importlib.util.find_spec("ray") else "--ray needs Ray"
        return ["batch", "in/*.mp4", "-o", "out", "--ray", address.format(port=closed_port())], why
    return case


CASES = {
    "users_own_overlay_report_and_summary": _users_outputs,  # item 1
    "users_recording_named_like_an_overlay": _recording_named_like_an_overlay,  # item 2
    "overlay_is_a_link_to_a_users_file": _overlay_is_a_link,
    "ray_closed_port": _ray("127.0.0.1:{port}", "cannot connect to 127.0.0.1:"),  # item 5
    "ray_unresolvable_host": _ray(f"{UNRESOLVABLE}:6379", f"cannot resolve host {UNRESOLVABLE}"),
    "ray_client_closed_port": _ray("ray://127.0.0.1:{port}", "cannot connect to 127.0.0.1:"),  # item 6
    "ray_client_unresolvable_host": _ray(f"ray://{UNRESOLVABLE}:10001", f"cannot resolve host {UNRESOLVABLE}"),
    "ray_not_an_address": _ray("nowhere", "not an address"),
}


def in_session(sid: int) -> list[int]:
    """The processes still alive in session ``sid`` (what a command started and left behind)."""
    left = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[3]) == sid:  # after the name: state, ppid, pgrp, session
            left.append(int(stat.parent.name))
    return left


def assert_refused(t: Path, args: list[str], expect: str) -> None:
    """Exit 2 with one line naming the problem, within 15 s, nothing changed in ``t``, and no
    process of the run (Ray's included: each runs in a session of its own) left alive."""
    before = snapshot(t)
    t0 = time.monotonic()
    proc = start_segrt(*args, cwd=t)
    _, err = proc.communicate(timeout=60)
    elapsed = time.monotonic() - t0
    lines = err.splitlines()
    assert proc.returncode == 2 and len(lines) == 1 and lines[0].startswith("error:"), err
    assert expect in lines[0], lines[0]
    assert elapsed < 15, f"{elapsed:.1f} s"
    assert snapshot(t) == before
    assert in_session(proc.pid) == [], "processes of the run outlived it"


@pytest.mark.parametrize("case", sorted(CASES))
def test_batch_refuses(case, tmp_path, short_clip):
    args, expect = CASES[case](tmp_path, short_clip)
    assert_refused(tmp_path, args, expect)


def test_a_port_that_answers_but_is_not_ray_is_refused_quickly(tmp_path, short_clip):
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]

    def answer() -> None:  # an HTTP/1 server's refusal, then the connection closes
        with server:
            conn, _ = server.accept()
            with conn:
                conn.sendall(b"HTTP/1.1 400 Bad Request\r\n\r\n")

    threading.Thread(target=answer, daemon=True).start()
    videos(tmp_path / "in", short_clip, "a.mp4")
    assert_refused(tmp_path, ["batch", "in/*.mp4", "-o", "out", "--ray", f"127.0.0.1:{port}"],
                   "answers but not as a Ray cluster")


def newer(src: Path, than: Path) -> None:
    """A re-recorded source: its mtime a second past ``than``'s (file times can share a clock tick)."""
    ns = max(time.time_ns(), than.stat().st_mtime_ns + 1_000_000_000)
    os.utime(src, ns=(ns, ns))


def test_reruns_replace_only_what_batch_wrote(tmp_path, short_clip):
    src = videos(tmp_path / "in", short_clip, "good.mp4") / "good.mp4"
    out = tmp_path / "out"
    r = segrt("batch", "in/*.mp4", "-o", "out", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert json.loads((out / "good.json").read_text())["batch"]["overlay"]["name"] == "good.mp4"
    r = segrt("batch", "in/*.mp4", "-o", "out", cwd=tmp_path)
    assert r.returncode == 0 and "1 files: 0 to run, 1 finished earlier" in r.stdout, r.stderr
    newer(src, out / "good.mp4")  # a newer recording runs again, over the outputs batch wrote
    first = sha(out / "good.json")
    r = segrt("batch", "in/*.mp4", "-o", "out", cwd=tmp_path)
    assert r.returncode == 0 and "1 files: 1 to run" in r.stdout, r.stderr
    assert sha(out / "good.json") != first
    report = json.loads((out / "good.json").read_text())  # a report written before the record
    del report["batch"]
    (out / "good.json").write_text(json.dumps(report))
    newer(src, out / "good.mp4")
    r = segrt("batch", "in/*.mp4", "-o", "out", cwd=tmp_path)
    assert r.returncode == 0 and "1 files: 1 to run" in r.stdout, r.stderr
    (out / "good.mp4").write_bytes(b"the user's own overlay\n")  # put there by the user: never replaced
    newer(src, out / "good.mp4")
    assert_refused(tmp_path, ["batch", "in/*.mp4", "-o", "out"], "out/good.mp4 exists and segrt batch did not")


def test_double_star_walks_a_loop_of_folder_links_once(tmp_path, short_clip):
    rec = videos(tmp_path / "rec", short_clip, "a.mp4")
    (rec / "prev").symlink_to(".")
    (rec / "latest").symlink_to(".")
    r = segrt("batch", "rec/**/*.mp4", "-o", "out", cwd=tmp_path, timeout=180)  # item 7: never ended
    assert r.returncode == 0, r.stderr
    doc = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert [row["source"] for row in doc["results"]] == ["rec/a.mp4"]


def _descendants(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                ppid = int(Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry))
    found, todo = [], [root]
    while todo:
        kids = children.get(todo.pop(), [])
        found += kids
        todo += kids
    return found


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG and /proc are Linux's")
def test_kill_9_of_batch_ends_its_workers_and_resource_tracker(tmp_path, short_clip):
    videos(tmp_path / "in", short_clip, *(f"{n}.mp4" for n in "abcdef"))
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "segrt", "batch", "in/*.mp4", "-o", "out", "--workers", "1"],
                            cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)
    kids: list[int] = []
    try:
        assert proc.stdout is not None
        for line in proc.stdout:  # after the first file a worker is running, the next file under way
            if line.startswith("[1/6]"):
                break
        assert proc.poll() is None, "batch ended before the first file was done"
        kids = _descendants(proc.pid)
        assert kids, "no pool worker found"
        proc.kill()
        proc.wait()
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and any(_alive(k) for k in kids):
            time.sleep(0.1)
        assert not [k for k in kids if _alive(k)], "a worker or the resource tracker outlived kill -9"
        written = sorted(p.name for p in (tmp_path / "out").iterdir())
        time.sleep(2)
        assert sorted(p.name for p in (tmp_path / "out").iterdir()) == written  # nobody finishes the next file
    finally:
        if proc.poll() is None:
            proc.kill()
        for k in kids:
            if _alive(k):
                os.kill(k, signal.SIGKILL)
