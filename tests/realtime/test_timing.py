import pytest

from segrt.realtime.timing import StageTimer, format_table


def test_summary_statistics_from_known_samples():
    t = StageTimer(("a", "b"))
    for i in range(1, 101):  # a: 1..100 ms, b: 2 ms
        t.add("a", i / 1000)
        t.add("b", 0.002)
        t.end_frame()
    s = t.summary()
    assert s["a"]["count"] == 100
    assert s["a"]["mean_ms"] == 50.5
    assert s["a"]["p50_ms"] == 50.5
    assert abs(s["a"]["p95_ms"] - 95.05) < 1e-6
    assert abs(s["a"]["p99_ms"] - 99.01) < 1e-6
    assert s["b"]["max_ms"] == 2.0
    assert s["frame"]["mean_ms"] == 52.5  # per-frame latency is the sum of its stages
    assert t.mean_ms("a", last=10) == pytest.approx(95.5)


def test_table_lists_every_stage_and_fps():
    t = StageTimer(("read", "infer"))
    t.add("read", 0.001)
    t.add("infer", 0.01)
    t.end_frame()
    table = format_table(t.summary(), frames=50, wall_seconds=2.0)
    assert "read" in table and "infer" in table and "frame" in table
    assert "25.0 FPS" in table


def test_a_kept_window_bounds_the_samples_and_still_counts_every_frame():
    from segrt.realtime.timing import StageTimer

    t = StageTimer(keep=10)
    for i in range(1000):
        t.add("infer", 0.001 * (i % 7))
        t.end_frame()
    assert t.frames == 1000 and 10 <= len(t.frame_total) < 20 and len(t.samples["infer"]) == len(t.frame_total)
    assert abs(t.mean_ms("infer", 7) - 3.0) < 1e-9  # the last 7 frames: one of each of 0..6 ms
    full = StageTimer()
    for _ in range(50):
        full.end_frame()
    assert len(full.frame_total) == 50 == full.frames
