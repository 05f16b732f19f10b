"""Throughput of the decoupled training loop's two halves, without ROS: the ONNX collector and the store trainer.

    python -m ssm_mbrl_ros.bench.store_loop collector --envs 16,64 [--model hover] [--seconds 30] [--json PATH]
    python -m ssm_mbrl_ros.bench.store_loop trainer --store DIR [--preset flight] [--seconds 120] [--json PATH]

collector: env steps/s of OnnxCollector (vector env + ONNX policy at batch N + recording every episode to an MCAP
store), after a warm-up, per batch size. trainer: ingest rate (steps/s of Replay reading the store's chunks into
training arrays) and learner updates/min on that store, world-model-only (the first actor_warmup_updates) and
full (world model + actor-critic in imagination), 16 x 64 batches by default.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import tempfile
import time
from pathlib import Path

from ssm_mbrl_ros.control.experts import EXPERTS
from ssm_mbrl_ros.core.config import finite_float


def bench_collector(envs: list[int], model: str = "hover", seconds: float = 30.0, warmup_s: float = 3.0,
                    expert: str = "none", compile_physics: bool = False, store: str | None = None) -> dict:
    """Env steps/s of the ONNX collector (recording to a store) at each batch size in envs."""
    from ssm_mbrl_ros.train.onnx_collector import CollectorConfig, OnnxCollector

    out = {}
    for n in envs:
        root = Path(store) / f"envs{n}" if store else Path(tempfile.mkdtemp(prefix="bench_collector_"))
        col = OnnxCollector(CollectorConfig(store=str(root), num_envs=n, model=model, expert=expert,
                                            compile=compile_physics))
        col.run_for(warmup_s)
        steps0, t0 = col.env_steps, time.perf_counter()
        col.run_for(seconds)
        dt = time.perf_counter() - t0
        col.close()
        out[str(n)] = {"env_steps_per_s": round((col.env_steps - steps0) / dt, 1), "env_steps": col.env_steps,
                       "chunks": len(col.recorder.chunks_written), "vector_steps_per_s": round(
                           (col.env_steps - steps0) / n / dt, 1)}
        if not store:
            shutil.rmtree(root, ignore_errors=True)
    return {"collector": out, "model": model, "expert": expert, "compile": compile_physics, "seconds": seconds}


def bench_trainer(store: str, preset: str = "flight", seconds: float = 120.0, extra: list[str] | None = None) -> dict:
    """Ingest steps/s of the store and learner updates/min with the given world-model preset."""
    from ssm_mbrl_ros.train.store_trainer import StoreTrainer, StoreTrainerConfig

    logdir = tempfile.mkdtemp(prefix="bench_trainer_")
    try:
        t0 = time.perf_counter()
        tr = StoreTrainer(StoreTrainerConfig(store=store, logdir=logdir, export_every_s=1e9,
                                             set=[f"preset={preset}", "device=auto", "prefill_steps=0",
                                                  "train_ratio=1000000000.0", *(extra or [])]), log=lambda s: None)
        build_s = time.perf_counter() - t0
        t_ing = time.perf_counter()
        from ssm_mbrl_ros.bags.replay import Replay

        rp = Replay(store, delete_evicted=False)  # a fresh read of the whole store, timed on its own
        ingest_s = time.perf_counter() - t_ing
        tr.update()  # first update (allocations, lazy init) outside the timing
        rates = {}
        for phase, warmup in (("world_model_only", 10**9), ("full", 0)):  # before / after actor_warmup_updates
            tr.cfg.actor_warmup_updates = warmup  # the learner reads it at every update
            tr.update()
            t1, u0 = time.perf_counter(), tr.learner.updates
            while time.perf_counter() - t1 < seconds / 2:
                tr.update()
            dt = time.perf_counter() - t1
            rates[phase] = {"updates": tr.learner.updates - u0,
                            "updates_per_min": round((tr.learner.updates - u0) / dt * 60.0, 1),
                            "s_per_update": round(dt / (tr.learner.updates - u0), 3)}
        t2 = time.perf_counter()
        tr.export_snapshot()
        export_s = time.perf_counter() - t2
        return {"preset": preset, "device": str(tr.device), "store_steps": rp.num_steps, "chunks": len(rp.chunk_names),
                "ingest_steps_per_s": round(rp.num_steps / ingest_s, 1), "ingest_s": round(ingest_s, 2),
                "startup_s": round(build_s, 2), **rates, "batch": [tr.cfg.batch_size, tr.cfg.seq_len],
                "imag_starts": tr.cfg.imag_starts, "horizon": tr.cfg.horizon, "export_s": round(export_s, 2),
                "torch_threads": __import__("torch").get_num_threads()}
    finally:
        shutil.rmtree(logdir, ignore_errors=True)


def main(argv=None) -> int:
    """Command line (see module docstring)."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("what", choices=["collector", "trainer"])
    p.add_argument("--envs", default="16,64", help="collector batch sizes, comma separated")
    p.add_argument("--model", default="hover", help="collector policy (.onnx path or shipped name)")
    p.add_argument("--expert", default="none", choices=["none", *EXPERTS])
    p.add_argument("--compile", action="store_true", help="compile the collector's physics (torch inductor)")
    p.add_argument("--store", default=None, help="trainer: store to read; collector: keep the chunks here")
    p.add_argument("--preset", default="flight")
    p.add_argument("--set", dest="overrides", action="append", default=[], help="trainer TrainConfig overrides")
    p.add_argument("--seconds", type=finite_float, default=None)
    p.add_argument("--json", default=None)
    a = p.parse_args(argv)
    if a.what == "collector":
        r = bench_collector([int(x) for x in a.envs.split(",")], a.model, a.seconds or 30.0, expert=a.expert,
                            compile_physics=a.compile, store=a.store)
    else:
        if not a.store:
            p.error("trainer needs --store DIR (e.g. the chunks written by `collector --store DIR`)")
        r = bench_trainer(a.store, a.preset, a.seconds or 120.0, a.overrides)
    r.update(machine=platform.processor() or platform.machine(), cpus=os.cpu_count(),
             load_avg_1min=round(os.getloadavg()[0], 2))
    text = json.dumps(r, indent=2)
    print(text)
    if a.json:
        Path(a.json).write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
