"""Triton: the repository `segrt export-triton` writes (checked with Triton's own protobuf), and
a round trip through a real Triton server started here on the CPU (tests/triton_server.py):
run, eval and bench with --model triton://…, and Triton's dynamic batcher merging the
requests of two concurrent runs. Everything runs as subprocesses, as a user runs it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import cv2
import pytest

from segrt.engines.triton_repo import validate_config
from segrt.errors import ModelError
from tests.conftest import run_segrt

from .triton_server import stub_python_path, triton_server

REPO = Path(__file__).resolve().parents[2]
ZOO = REPO / "segrt" / "zoo"


def segrt(*args, **kw) -> subprocess.CompletedProcess:
    return run_segrt(*args, **kw)


@pytest.fixture(scope="module")
def served(tmp_path_factory, camvid_root):
    """A repository with the shipped FCN-8s (fixed batch 1) and a --dynamic export of it, both on
    Triton's Python backend, and a server for it."""
    pytest.importorskip("torch", reason="exporting the dynamic-batch model needs torch (the dev install has it)")
    work = tmp_path_factory.mktemp("triton")
    dynamic = work / "fcn8s_dynamic.onnx"
    r = segrt("export", ZOO / "fcn8s_camvid.pt", "-o", dynamic, "--dynamic", "--data-root", camvid_root)
    assert r.returncode == 0, r.stderr
    for model in (ZOO / "fcn8s_camvid.onnx", dynamic):
        r = segrt("export-triton", model, "-o", work / "repo", "--backend", "python", "--delay-us", "20000",
                  "--python-path", stub_python_path())
        assert r.returncode == 0, r.stderr
    with triton_server(work / "repo", work) as ports:
        yield {"url": f"triton://127.0.0.1:{ports['http']}", "repo": work / "repo", "log": ports["log"]}


def test_export_triton_writes_a_repository_tritons_protobuf_accepts(served):
    fixed = validate_config((served["repo"] / "fcn8s_camvid" / "config.pbtxt").read_text(), "fixed")
    assert fixed.get("max_batch_size", 0) == 0  # protobuf leaves a zero out
    assert fixed["input"][0]["dims"] == ["1", "3", "288", "384"] and fixed["output"][0]["data_type"] == "TYPE_UINT8"
    assert "dynamic_batching" not in fixed
    dyn = validate_config((served["repo"] / "fcn8s_dynamic" / "config.pbtxt").read_text(), "dynamic")
    assert dyn["max_batch_size"] == 8 and dyn["input"][0]["dims"] == ["3", "288", "384"]
    assert dyn["dynamic_batching"]["max_queue_delay_microseconds"] == "20000"
    manifest = json.loads(dyn["parameters"]["segrt_manifest"]["string_value"])
    assert manifest["classes"][3] == "Road" and manifest["preprocess"]["width"] == 384
    assert sorted(p.name for p in (served["repo"] / "fcn8s_dynamic" / "1").iterdir() if p.name != "__pycache__") == [
        "model.json", "model.onnx", "model.py"]
    with pytest.raises(ModelError, match="not a valid Triton model config"):
        validate_config('name: "x"\nmax_batch_size: "eight"\n', "bad")


def test_run_eval_and_bench_through_triton_match_the_local_model(served, short_clip, camvid_root, tmp_path):
    model = f"{served['url']}/fcn8s_camvid"
    r = segrt("run", short_clip, "--model", model, "-o", tmp_path / "remote.mp4", "--report", tmp_path / "r.json",
              "--no-hud")
    assert r.returncode == 0, r.stderr
    doc = json.loads((tmp_path / "r.json").read_text())
    assert doc["backend"]["name"] == "triton" and doc["frames_out"] == 12 and doc["model"]["path"] == model
    r = segrt("run", short_clip, "--model", "fcn8s_camvid", "-o", tmp_path / "local.mp4", "--no-hud")
    assert r.returncode == 0, r.stderr
    remote, local = cv2.VideoCapture(str(tmp_path / "remote.mp4")), cv2.VideoCapture(str(tmp_path / "local.mp4"))
    for _ in range(12):
        assert abs(remote.read()[1].astype(int) - local.read()[1]).mean() < 0.5  # the same labels, drawn alike
    r = segrt("eval", model, "--data-root", camvid_root, "--report", tmp_path / "e.json")
    assert r.returncode == 0, r.stderr
    miou = json.loads((tmp_path / "e.json").read_text())["results"]["fcn8s_camvid"]["miou"]
    r = segrt("eval", "fcn8s_camvid", "--data-root", camvid_root, "--report", tmp_path / "local.json")
    assert r.returncode == 0, r.stderr
    local_miou = json.loads((tmp_path / "local.json").read_text())["results"]["fcn8s_camvid.onnx"]["miou"]
    assert abs(miou - local_miou) < 5e-4, (miou, local_miou)  # the server's ONNX Runtime may be another version
    r = segrt("bench", model, "--runs", "5", "--warmup", "1", "--eval-frames", "4", "--data-root", camvid_root,
              "--out-dir", tmp_path / "bench")
    assert r.returncode == 0, r.stderr
    row = json.loads((tmp_path / "bench" / "bench.json").read_text())["results"][0]
    assert row["backend"] == "triton" and row["file_mb"] is None and row["latency_b1"]["mean_ms"] > 0


def test_tritons_dynamic_batcher_merges_concurrent_runs(served, short_clip, tmp_path):
    import tritonclient.http as client

    model = f"{served['url']}/fcn8s_dynamic"
    procs = [subprocess.Popen([sys.executable, "-m", "segrt", "run", str(short_clip), "--model", model, "-o",
                               str(tmp_path / f"{i}.mp4"), "--report", str(tmp_path / f"{i}.json")],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for i in range(3)]
    for p in procs:
        _, err = p.communicate(timeout=600)
        assert p.returncode == 0, err
    for i in range(3):
        assert json.loads((tmp_path / f"{i}.json").read_text())["frames_out"] == 12
    http = served["url"].removeprefix("triton://")
    stats = client.InferenceServerClient(http).get_inference_statistics("fcn8s_dynamic")["model_stats"][0]
    assert stats["inference_count"] >= 36
    # fewer model executions than requests: Triton merged requests of the concurrent runs
    assert stats["execution_count"] < stats["inference_count"], stats
    assert max(int(b["batch_size"]) for b in stats["batch_stats"]) >= 2


def test_several_streams_batch_on_the_client_within_max_batch_size(served, short_clip, tmp_path):
    r = segrt("run", short_clip, short_clip, "--model", f"{served['url']}/fcn8s_dynamic", "-o",
              tmp_path / "{stream}.mp4", "--report", tmp_path / "r.json")
    assert r.returncode == 0, r.stderr
    doc = json.loads((tmp_path / "r.json").read_text())
    assert doc["batching"]["largest"] == 2 and [s["frames_out"] for s in doc["streams"]] == [12, 12]


def test_unreachable_server_and_unknown_model_are_one_line_errors(served, short_clip, tmp_path):
    r = segrt("run", short_clip, "--model", "triton://127.0.0.1:9/fcn8s_camvid", "-o", tmp_path / "o.mp4")
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "no Triton server answers" in r.stderr
    r = segrt("run", short_clip, "--model", f"{served['url']}/nope", "-o", tmp_path / "o.mp4")
    assert r.returncode == 2 and r.stderr.count("\n") == 1
    assert "no ready model 'nope'" in r.stderr and "fcn8s_camvid" in r.stderr
    r = segrt("run", short_clip, "--model", "triton://127.0.0.1:8000", "-o", tmp_path / "o.mp4")
    assert r.returncode == 2 and "expected triton://HOST[:PORT]/MODEL" in r.stderr
    assert not (tmp_path / "o.mp4").exists()
