"""Policy runtime benchmark: per-step latency at batch 1 on one thread, throughput at a big batch.

Measures `OnnxPolicy.step` (the deployed path: IOBinding run + physical mapping + copies), not the
bare session. Returns {"latency_us": {"p50", "p99", "max", "mean"}, "batch4096_steps_per_s": ...};
the big-batch key is named after batch_big.
"""
from __future__ import annotations

import json
import platform
import time
from pathlib import Path

import numpy as np

from ssm_mbrl_ros.runtime.policy import OnnxPolicy


def bench_policy(onnx_path, steps: int = 10000, batch_big: int = 4096, big_iters: int = 20, warmup: int = 200,
                 threads: int = 1, json_path=None, seed: int = 0) -> dict:
    """Latency (us) of `steps` batch-1 steps and env-steps/s at batch_big; optionally write JSON to json_path."""
    rng = np.random.default_rng(seed)
    pol = OnnxPolicy(onnx_path, threads=threads)
    obs = rng.standard_normal((1, pol.obs_dim)).astype(np.float32)
    pol.reset(1)
    for _ in range(warmup):
        pol.step(obs)
    lat = np.empty(steps, np.float64)
    clock = time.perf_counter_ns
    for i in range(steps):
        t0 = clock()
        pol.step(obs)
        lat[i] = clock() - t0
    lat /= 1e3  # ns -> us
    big = rng.standard_normal((batch_big, pol.obs_dim)).astype(np.float32)
    pol.reset(batch_big)
    for _ in range(2):
        pol.step(big)
    t0 = time.perf_counter()
    for _ in range(big_iters):
        pol.step(big)
    dt = time.perf_counter() - t0
    result = {
        "latency_us": {"p50": float(np.percentile(lat, 50)), "p99": float(np.percentile(lat, 99)),
                       "max": float(lat.max()), "mean": float(lat.mean())},
        f"batch{batch_big}_steps_per_s": batch_big * big_iters / dt,
        "steps": steps, "threads": threads, "batch_big": batch_big, "obs_dim": pol.obs_dim,
        "state_size": pol.state_size, "model": str(onnx_path), "machine": platform.processor() or platform.machine(),
    }
    if json_path is not None:
        Path(json_path).write_text(json.dumps(result, indent=2) + "\n")
    return result
