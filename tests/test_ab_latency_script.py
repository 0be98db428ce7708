"""benchmarks/ab_latency.py: the paired ratio compares blocks that ran back to back."""

import importlib.util
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "ab_latency.py"
spec = importlib.util.spec_from_file_location("ab_latency", SCRIPT)
ab_latency = importlib.util.module_from_spec(spec)
spec.loader.exec_module(ab_latency)


def test_paired_ratio_follows_the_blocks_through_a_drifting_machine():
    # the machine slows to 2.5x and back; the model is 1.05x the reference in every block,
    # but it drew the slow spell in more of its blocks, which the ratio of medians takes for itself
    reference = [10.0, 10.0, 10.0, 25.0, 10.0, 25.0, 10.0]
    model = [1.05 * r for r in reference]
    model[1] = 1.05 * 25.0  # the slow spell began between the reference's block and the model's
    model[2] = 1.05 * 25.0
    assert ab_latency.paired_ratio(reference, model) == pytest.approx(1.05)
    ratio_of_medians = sorted(model)[3] / sorted(reference)[3]
    assert ratio_of_medians > 1.5


def test_the_table_shows_each_ratio_it_was_given():
    rows = [{"model": "a.onnx", "median_ms": 10.0, "ratio_median": 1.0, "best_block_ms": 9.0, "ratio_best": 1.0,
             "ratio_paired": 1.0},
            {"model": "b.onnx", "median_ms": 11.2, "ratio_median": 1.12, "best_block_ms": 9.3, "ratio_best": 1.033,
             "ratio_paired": 1.043}]
    table = ab_latency.markdown(rows).splitlines()
    assert "× (paired)" in table[0] and len(table) == 4
    assert table[3].startswith("| b.onnx | 11.20 | **1.12x** | 9.30 | 1.03x | 1.043x |"), table[3]
