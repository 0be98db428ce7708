"""benchmarks/steady_cost.py: times the --steady filter and each of its parts on a clip."""

import json
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"


def test_the_script_times_the_filter_and_its_parts(short_clip, tmp_path):
    out = tmp_path / "cost.json"
    r = subprocess.run([sys.executable, str(BENCH / "steady_cost.py"), str(short_clip), "--frames", "12",
                        "--blocks", "2", "--out", str(out)], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    doc = json.loads(out.read_text())
    ms = doc["ms_per_frame"]
    assert set(ms) == {"filter", "grey_frame", "flow", "move_neighbours", "median", "filter_blocks"}
    assert all(ms[k] > 0 for k in ms if k != "filter_blocks") and len(ms["filter_blocks"]) == 2
    assert doc["frames"] == 12 and doc["labels_wh"][0] > 0 and doc["command"]


def test_a_file_that_is_not_a_clip_is_refused_in_one_line(tmp_path):
    bad = tmp_path / "notes.mp4"
    bad.write_text("not a video")
    r = subprocess.run([sys.executable, str(BENCH / "steady_cost.py"), str(bad)], capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 2 and "notes.mp4" in r.stderr and "pass a video clip" in r.stderr
