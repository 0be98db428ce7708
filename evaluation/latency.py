"""Inference latency of a backend alone (no decode, overlay or encode), torch-free."""

from __future__ import annotations

import time

import numpy as np


def latency_stats(times_s) -> dict:
    """mean/p50/p90/p95/p99 in ms of per-call durations in seconds."""
    ms = np.asarray(times_s, np.float64) * 1000.0
    p50, p90, p95, p99 = np.percentile(ms, [50, 90, 95, 99])
    return {"runs": int(ms.size), "mean_ms": round(float(ms.mean()), 3), "p50_ms": round(float(p50), 3),
            "p90_ms": round(float(p90), 3), "p95_ms": round(float(p95), 3), "p99_ms": round(float(p99), 3)}


def timing_input(backend, batch: int = 1) -> np.ndarray:
    """``backend``'s input buffer filled with fixed (seeded) random values: what it is timed on."""
    x = backend.input_buffer(batch)
    x[:] = np.random.default_rng(0).standard_normal(x.shape, dtype=np.float32)
    return x


def measure_latency(backend, runs: int = 50, warmup: int = 10, batch: int = 1) -> dict:
    """Times ``backend.infer`` on a fixed random input after ``warmup`` untimed calls (the
    first calls pay for allocation and kernel selection)."""
    x = timing_input(backend, batch)
    for _ in range(warmup):
        backend.infer(x)
    times = np.empty(runs)
    for i in range(runs):
        t0 = time.perf_counter()
        backend.infer(x)
        times[i] = time.perf_counter() - t0
    stats = latency_stats(times)
    stats.update(batch=batch, images_per_s=round(batch * 1000.0 / stats["mean_ms"], 2))
    return stats
