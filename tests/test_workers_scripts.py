"""benchmarks/workers_throughput.py and benchmarks/demo_ab.py: they run, measure what they say
and write their JSON."""

import importlib.util
import json
import subprocess
import sys
import threading
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"
spec = importlib.util.spec_from_file_location("workers_throughput", BENCH / "workers_throughput.py")
workers_throughput = importlib.util.module_from_spec(spec)
spec.loader.exec_module(workers_throughput)


class OneAtATime:
    """A backend whose calls take 10 ms each and cannot overlap (a lock): running two at once
    must not look faster."""

    def __init__(self, overlap: bool) -> None:
        self.lock = threading.Lock() if not overlap else None

    def infer(self, x):
        if self.lock is None:
            time.sleep(0.01)
            return
        with self.lock:
            time.sleep(0.01)


def test_calls_per_second_counts_overlapping_calls_and_only_those():
    serial = workers_throughput.calls_per_second(OneAtATime(False), [None], 20, 2)
    overlapping = workers_throughput.calls_per_second(OneAtATime(True), [None], 20, 2)
    assert serial <= 101 and overlapping > 1.6 * serial  # 10 ms calls: at most 100 a second one at a time


def test_demo_ab_alternates_settings_and_records_each_run(short_clip, tmp_path):
    out = tmp_path / "ab.json"
    r = subprocess.run([sys.executable, str(BENCH / "demo_ab.py"), str(short_clip), "--setting", "one=--workers 1",
                        "--setting", "two=--workers 2", "--runs", "1", "--out", str(out)],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    doc = json.loads(out.read_text())
    assert [x["workers"] for x in (doc["runs"]["one"]["save"] + doc["runs"]["two"]["save"])] == [1, 2]
    assert doc["median_fps"]["two"]["save"] > 0 and doc["machine"]["cores"] >= 1
