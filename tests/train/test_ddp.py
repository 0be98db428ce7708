"""torchrun DDP on CPU (gloo), 2 processes, through the real `segrt train` command."""

import csv
import subprocess
import sys

import pytest

torch = pytest.importorskip("torch")

from segrt.train import checkpoint  # noqa: E402

CONFIG = """model: fastscnn
input_width: 128
input_height: 96
epochs: 2
batch_size: 2
warmup_epochs: 1
eval_every: 1
threads: 1
"""


def test_two_process_ddp_shards_the_data_and_rank0_writes_once(tiny_camvid, tmp_path):
    cfg = tmp_path / "tiny.yaml"
    cfg.write_text(CONFIG)
    out = tmp_path / "out"
    proc = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
         "-m", "segrt", "train", "--config", str(cfg), "--data-root", str(tiny_camvid), "--out", str(out)],
        capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    last = checkpoint.load(out / "last.pt")
    assert last["world_size"] == 2 and last["epoch"] == 2
    # 8 frames, 2 ranks, batch 2: 2 steps per epoch on each rank (4 without sharding)
    assert last["scheduler"]["last_epoch"] == 2 * 2
    rows = list(csv.DictReader(open(out / "metrics.csv")))
    assert [r["epoch"] for r in rows] == ["1", "2"]  # one writer, not two
    assert (out / "best.pt").exists() and (out / "curves.png").exists()
