"""benchmarks/onnx_teacher.py: the shipped GPU default (BatchNorm folded, FP16-stored, flip
in the graph) back as a torch teacher that labels frames as the ONNX file does."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from segrt.train import checkpoint  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "benchmarks" / "onnx_teacher.py"
GPU_DEFAULT = REPO / "segrt" / "zoo" / "fpn_lite0_robust_camvid.onnx"
LIKE = REPO / "segrt" / "zoo" / "fpn_lite0_camvid.pt"


def run(*args):
    return subprocess.run([sys.executable, str(SCRIPT), *map(str, args)], capture_output=True, text=True, cwd=REPO)


def test_the_gpu_default_comes_back_as_a_teacher_that_labels_as_its_onnx_file(camvid_root, tmp_path):
    from segrt.datasets import open_dataset
    from segrt.preprocess import Preprocess, Preprocessor
    from segrt.realtime.api import Segmenter
    from segrt.train.distill import load_teacher

    out = tmp_path / "t" / "teacher.pt"
    done = run(GPU_DEFAULT, "--like", LIKE, "-o", out, "--frames", "2", "--data-root", camvid_root)
    assert done.returncode == 0, done.stderr
    assert "60 BatchNorms unfolded" in done.stdout
    ckpt = checkpoint.load(out)
    assert ckpt["eval_only"] and ckpt["weights_from"]["agreement_on_camvid_val"] >= 0.995

    spec = Preprocess.from_dict(ckpt["preprocess"])
    teacher = load_teacher(out, ckpt["classes"], spec, torch.device("cpu"), torch.contiguous_format, flip=True)
    image, _ = open_dataset("camvid", camvid_root, "val").read(50)  # a frame the check did not use
    x = Preprocessor(spec)(image)[None]
    with Segmenter(GPU_DEFAULT) as seg:
        theirs = seg.backend.infer(x)[0]
    ours = teacher.soft_targets(torch.from_numpy(x)).argmax(1)[0].numpy()
    assert (ours == theirs).mean() > 0.995


def test_a_wrong_architecture_or_an_existing_output_is_refused_in_one_line(tmp_path):
    keep = tmp_path / "mine.pt"
    keep.write_bytes(b"mine")
    done = run(GPU_DEFAULT, "--like", LIKE, "-o", keep)
    assert done.returncode == 2 and "exists" in done.stderr and keep.read_bytes() == b"mine"
    done = run(GPU_DEFAULT, "--like", REPO / "segrt" / "zoo" / "fcn8s_camvid.pt", "-o", tmp_path / "x.pt")
    assert done.returncode == 2 and not (tmp_path / "x.pt").exists()
    assert done.stderr.strip().count("\n") == 0 and "--like" in done.stderr, done.stderr
    assert not list(tmp_path.glob("x.pt*"))
    np.testing.assert_equal(sorted(p.name for p in tmp_path.iterdir()), ["mine.pt"])
