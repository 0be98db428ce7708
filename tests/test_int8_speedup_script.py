"""benchmarks/int8_speedup.py: the interleaved A/B timing and its refusal of a missing INT8 file."""

import importlib.util
import time
from pathlib import Path

import numpy as np

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "int8_speedup.py"
spec = importlib.util.spec_from_file_location("int8_speedup", SCRIPT)
int8_speedup = importlib.util.module_from_spec(spec)
spec.loader.exec_module(int8_speedup)


class Sleeper:
    """A backend whose every call takes ``seconds``: the timing has a known answer."""

    def __init__(self, seconds: float) -> None:
        self.seconds, self.calls = seconds, 0

    def input_buffer(self, batch: int = 1):
        return np.zeros((batch, 3, 4, 4), np.float32)

    def infer(self, x):
        self.calls += 1
        time.sleep(self.seconds)


def test_blocks_alternate_and_recover_the_true_ratio():
    slow, fast = Sleeper(0.004), Sleeper(0.002)
    med = int8_speedup.block_medians([slow, fast], blocks=3, per_block=4, warmup=2)
    assert [len(m) for m in med] == [3, 3] and slow.calls == fast.calls == 2 + 3 * 4
    assert 1.5 < np.median(med[0]) / np.median(med[1]) < 2.5
    assert all(m >= 4.0 for m in med[0]) and all(m >= 2.0 for m in med[1])


def test_a_model_without_its_int8_sibling_is_refused(tmp_path, capsys):
    fp32 = tmp_path / "m.onnx"
    fp32.write_bytes(b"")
    assert int8_speedup.main([str(fp32), "--out", str(tmp_path / "out.json")]) == 1
    assert "m.int8.onnx" in capsys.readouterr().err and not (tmp_path / "out.json").exists()
