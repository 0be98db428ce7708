"""benchmarks/steady_objects.py: things cut by their labels are pasted whole where they were,
moved as asked, and --steady leaves their pixels as the model labels them."""

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import numpy as np

from segrt.datasets import open_dataset
from segrt.datasets.camvid import CLASSES

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"
spec = importlib.util.spec_from_file_location("steady_objects", BENCH / "steady_objects.py")
steady_objects = importlib.util.module_from_spec(spec)
sys.modules["steady_objects"] = steady_objects  # its dataclass looks itself up there
spec.loader.exec_module(steady_objects)


def test_a_thing_is_cut_whole_and_pasted_where_asked(tiny_camvid):
    ds = open_dataset("camvid", tiny_camvid, "val")
    things = steady_objects.things_of(ds, CLASSES)
    assert things and all(t.mask.sum() >= steady_objects.MIN_AREA for t in things)
    thing = max(things, key=lambda t: t.mask.sum())
    image, label = ds.read(0)
    xs = steady_objects.positions(thing, label.shape[1], 24)
    assert xs[1] - xs[0] == xs[2] - xs[1] == 24 and xs[0] >= 0 and xs[2] + thing.box[2] <= label.shape[1]
    pasted = steady_objects.paste(image, None, thing, xs[1])
    truth = steady_objects.paste(image, label, thing, xs[1])
    at = steady_objects.footprint(thing, label.shape, xs[1])
    assert at.sum() == thing.mask.sum() and (truth[at] == thing.cls).all() and (truth[~at] == label[~at]).all()
    assert np.array_equal(pasted[at], thing.pixels[thing.mask]) and np.array_equal(pasted[~at], image[~at])


def test_the_script_scores_every_speed_and_the_filter_leaves_movers_alone(tiny_camvid, tmp_path):
    out = tmp_path / "objects.json"
    model = Path(__file__).resolve().parents[1] / "segrt" / "zoo" / "fpn_lite0_student_camvid_416x224.int8.onnx"
    r = subprocess.run([sys.executable, str(BENCH / "steady_objects.py"), str(model), "--camvid", str(tiny_camvid),
                        "--threads", "1", "--out", str(out)], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    row = json.loads(out.read_text())["models"][0]
    assert list(row["speeds"]) == ["4 px", "12 px", "24 px"]
    for m in row["speeds"].values():
        assert set(m) == {"raw", "steady", "steady_all_classes", "no_flow"}
        assert m["steady"]["recall"] == m["raw"]["recall"] and m["steady"]["ghost"] == m["raw"]["ghost"]
        assert all(0 <= m[w]["recall"] <= 100 and 0 <= m[w]["miou"] <= 100 for w in m)
        assert sum(c["pixels"] for c in m["raw"]["per_class"].values()) > 0
