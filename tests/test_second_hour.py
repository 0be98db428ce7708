"""A user's second hour (issue 27): data found the same way by every command, every model name
the docs give resolves, outputs outside the source tree, honest messages. Commands run as
subprocesses, the way a user runs them."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from segrt.engines.zoo import CPU_DEFAULT, resolve_model, zoo_dir
from tests.conftest import run_segrt

REPO = Path(__file__).resolve().parents[1]
# a model name as the docs write one: FAMILY_camvid, an input size, a precision; not a file name
NAME = re.compile(r"(?<![\w/.-])([a-z0-9]+(?:_[a-z0-9]+)*_camvid(?:_\d+x\d+)?(?:\.int8|\.fp16)?)(?![\w/-]|\.[a-z])")
NOT_MODELS = {"cityscapes19_to_camvid", "cityscapes34_to_camvid"}  # class maps (segrt eval --class-map)




def doc_model_names() -> dict[str, str]:
    found: dict[str, str] = {}
    for doc in [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]:
        text = doc.read_text()
        for m in NAME.finditer(text):
            if m.group(1) not in NOT_MODELS and not text[m.end():].startswith(" (not shipped)"):
                found.setdefault(m.group(1), doc.name)
    return found


def test_the_docs_name_models():
    names = doc_model_names()
    assert {"fpn_lite0_camvid", "unet_lite0_camvid", "fcn8s_camvid"} <= set(names), names


@pytest.mark.parametrize("name", sorted(doc_model_names()))
def test_every_model_name_in_the_docs_resolves_to_a_shipped_file(name):
    path = resolve_model(name)
    assert path.parent == zoo_dir() and path.is_file() and path.name.startswith(name)


def test_a_family_name_gets_the_shipped_int8_file(tmp_path, short_clip):
    result = run_segrt("run", str(short_clip), "-m", "unet_lite0_camvid", "-o", str(tmp_path / "o.mp4"),
                       "--max-frames", "2", "--report", str(tmp_path / "r.json"), cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    assert json.loads((tmp_path / "r.json").read_text())["model"]["name"].startswith("unet_lite0_camvid")


@pytest.mark.parametrize("name", ["fpn_lite0_camvid_352x256.int8", "unet_camvid"])
def test_export_of_an_onnx_only_model_says_so(name, tmp_path):
    result = run_segrt("export", name, "-o", str(tmp_path / "e.onnx"), cwd=tmp_path)
    err = result.stderr.strip()
    assert result.returncode == 2 and len(err.splitlines()) == 1, err
    assert "ships as ONNX only" in err and "not a shipped model" not in err, err
    assert list(tmp_path.iterdir()) == []


def test_segrt_camvid_is_where_every_command_looks(tmp_path, tiny_camvid):
    """With only $SEGRT_CAMVID set (and an empty cache), eval finds the data."""
    env = {"SEGRT_CAMVID": str(tiny_camvid), "SEGRT_DATA": str(tmp_path / "empty-cache")}
    result = run_segrt("eval", CPU_DEFAULT.removesuffix(".onnx"), "--threads", "1", "--report",
                       str(tmp_path / "e.json"), cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr[-2000:]
    assert json.loads((tmp_path / "e.json").read_text())["frames"] > 0
    missing = run_segrt("eval", CPU_DEFAULT.removesuffix(".onnx"), cwd=tmp_path,
                        env={"SEGRT_CAMVID": str(tmp_path / "nowhere"), "SEGRT_DATA": str(tmp_path / "empty")})
    assert missing.returncode == 2 and "nowhere" in missing.stderr and "SEGRT_CAMVID" in missing.stderr


def test_bench_writes_under_runs_and_takes_model_names_for_baseline(tmp_path, tiny_camvid):
    env = {"SEGRT_CAMVID": str(tiny_camvid), "SEGRT_RUNS_DIR": str(tmp_path / "runs")}
    args = ("bench", "fcn8s_camvid", "fastscnn_camvid", "--runs", "5", "--warmup", "1", "--eval-frames", "2",
            "--baseline", "fcn8s_camvid")
    result = run_segrt(*args, cwd=tmp_path, env=env, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    doc = json.loads((tmp_path / "runs" / "bench" / "bench.json").read_text())
    assert doc["speedup_vs"] == "fcn8s_camvid.onnx" and doc["speedups"]["fcn8s_camvid.onnx"] == pytest.approx(1.0)
    again = run_segrt(*args, cwd=tmp_path, env=env, timeout=600)  # a second bench never writes over the first
    assert again.returncode == 0 and (tmp_path / "runs" / "bench2" / "bench.json").is_file()


def test_models_lists_at_once_and_times_on_request(tmp_path):
    listed = run_segrt("models", "--json", cwd=tmp_path)
    assert listed.returncode == 0
    assert all(r["cpu_ms"] is None for r in json.loads(listed.stdout)["models"])


def test_demo_help_names_the_clip_it_writes(tmp_path):
    text = run_segrt("demo", "--help", cwd=tmp_path).stdout
    assert "CLIP.mp4" in text and "SEGRT_DEMO_VIDEO" in text


def test_mode_labels_writes_the_label_maps_segmenter_returns(tmp_path, short_clip):
    import cv2
    import numpy as np

    from segrt.realtime.api import Segmenter

    result = run_segrt("run", str(short_clip), "-o", str(tmp_path / "labels") + "/", "--mode", "labels",
                       "--max-frames", "5", "--frames-csv", str(tmp_path / "f.csv"), "--report",
                       str(tmp_path / "r.json"), "--threads", "1", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    pngs = sorted((tmp_path / "labels").glob("*.png"))
    assert len(pngs) == 5
    classes = json.loads((tmp_path / "labels" / "classes.json").read_text())["classes"]
    cap = cv2.VideoCapture(str(short_clip))
    with Segmenter(threads=1) as seg:
        assert [c["name"] for c in classes] == list(seg.backend.manifest.classes)
        for png in pngs:
            frame = cap.read()[1]
            written = cv2.imread(str(png), cv2.IMREAD_UNCHANGED)
            assert written.dtype == np.uint8 and written.shape == frame.shape[:2]
            assert np.array_equal(written, seg(frame)), png.name
    cap.release()
    # class shares: one column per class in the frame log, each row summing to 1; their means in the report
    import csv

    rows = list(csv.DictReader((tmp_path / "f.csv").open()))
    share_cols = [f"share_{c['name']}" for c in classes]
    assert len(rows) == 5 and all(abs(sum(float(r[k]) for k in share_cols) - 1) < 1e-3 for r in rows)
    means = json.loads((tmp_path / "r.json").read_text())["class_shares"]
    assert means["Road"] == pytest.approx(sum(float(r["share_Road"]) for r in rows) / 5, abs=1e-4)
    assert means["Road"] > 0.1  # a dashcam sees road


@pytest.mark.parametrize("extra", [["-o", "x.mp4"], ["-o", "x.avi"], ["-o", "l/", "--show"], ["--no-save"]])
def test_mode_labels_refuses_what_cannot_hold_class_indices(extra, tmp_path, short_clip):
    result = run_segrt("run", str(short_clip), "--mode", "labels", *extra, cwd=tmp_path)
    err = result.stderr.strip()
    assert result.returncode == 2 and len(err.splitlines()) == 1 and "--mode labels" in err, err
    assert list(tmp_path.iterdir()) == []


def test_segmenter_says_it_got_none():
    from segrt.realtime.api import Segmenter

    with Segmenter(threads=1) as seg, pytest.raises(ValueError, match="got None"):
        seg(None)
