"""benchmarks/soup.py: checkpoints of one recipe averaged into one, as the GPU default is made;
run as a user runs it (a subprocess), on the shipped Fast-SCNN checkpoint."""

import subprocess
import sys
from pathlib import Path

import torch

from segrt.train import checkpoint

REPO = Path(__file__).resolve().parents[2]
ZOO = REPO / "segrt" / "zoo"


def soup(*args):
    return subprocess.run([sys.executable, str(REPO / "benchmarks" / "soup.py"), *map(str, args)],
                          capture_output=True, text=True, timeout=120)


def shifted(tmp_path):
    """The shipped Fast-SCNN checkpoint, its loaded form, and a copy with every weight + 1."""
    a = ZOO / "fastscnn_camvid.pt"
    ckpt = checkpoint.load(a)
    plus_one = {k: v.float() + 1 if v.is_floating_point() else v for k, v in ckpt["state_dict"].items()}
    b = tmp_path / "b.pt"
    checkpoint.save(b, {k: v for k, v in {**ckpt, "state_dict": plus_one}.items() if k != "format"})
    return a, ckpt, b


def test_the_soup_is_the_mean_of_its_checkpoints(tmp_path):
    a, ckpt, b = shifted(tmp_path)
    out = tmp_path / "soup" / "s.pt"
    result = soup(a, b, "-o", out)
    assert result.returncode == 0, result.stderr
    mixed = checkpoint.load(out)
    assert mixed["soup_of"] == [str(a), str(b)] and mixed["preprocess"] == ckpt["preprocess"]
    for k, v in ckpt["state_dict"].items():
        if v.is_floating_point():
            assert torch.allclose(mixed["state_dict"][k].float(), v.float() + 0.5, atol=2e-2), k  # FP16-stored
    checkpoint.build_from_checkpoint(mixed)  # loads strictly into the network


def test_weights_lean_the_soup_and_bad_weights_are_refused(tmp_path):
    a, ckpt, b = shifted(tmp_path)
    out = tmp_path / "s.pt"
    result = soup(a, b, "--weights", 1, 3, "-o", out)
    assert result.returncode == 0, result.stderr
    mixed = checkpoint.load(out)
    assert mixed["soup_weights"] == [0.25, 0.75]
    for k, v in ckpt["state_dict"].items():
        if v.is_floating_point():
            assert torch.allclose(mixed["state_dict"][k].float(), v.float() + 0.75, atol=2e-2), k  # FP16-stored
    for bad in (["1"], ["1", "-1"], ["0", "0"], ["inf", "1"], ["nan", "1"]):
        result = soup(a, b, "--weights", *bad, "-o", tmp_path / "t.pt")
        assert result.returncode == 2 and "--weights" in result.stderr, bad
        assert result.stderr.strip().count("\n") == 0 and not (tmp_path / "t.pt").exists()


def test_a_soup_of_two_recipes_or_over_a_file_is_refused(tmp_path):
    out = tmp_path / "s.pt"
    result = soup(ZOO / "fastscnn_camvid.pt", ZOO / "fcn8s_camvid.pt", "-o", out)
    assert result.returncode == 2 and "differs from" in result.stderr and not out.exists()
    out.write_bytes(b"mine")
    result = soup(ZOO / "fastscnn_camvid.pt", ZOO / "fastscnn_camvid.pt", "-o", out)
    assert result.returncode == 2 and "exists" in result.stderr and out.read_bytes() == b"mine"


def test_a_file_that_is_no_checkpoint_is_one_line_and_exit_2(tmp_path):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint at all")
    out = tmp_path / "s.pt"
    result = soup(ZOO / "fastscnn_camvid.pt", bad, "-o", out)
    assert result.returncode == 2 and "Traceback" not in result.stderr and str(bad) in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and not out.exists()



def test_an_eval_only_teacher_is_no_ingredient(tmp_path):
    ckpt = checkpoint.load(ZOO / "fastscnn_camvid.pt")
    checkpoint.save(tmp_path / "folded.pt", {**ckpt, "eval_only": "BatchNorm folded"})
    result = soup(ZOO / "fastscnn_camvid.pt", tmp_path / "folded.pt", "-o", tmp_path / "s.pt")
    assert result.returncode == 2 and "eval-only" in result.stderr and not (tmp_path / "s.pt").exists()
    assert result.stderr.strip().count("\n") == 0
