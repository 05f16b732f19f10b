"""Simulator throughput: env-steps/s of the full vector env (physics + task) over batch sizes."""
from __future__ import annotations

import platform
import time

import torch
from tqdm import tqdm

DEFAULT_BATCHES = (256, 1024, 4096, 16384, 65536, 131072, 262144)


def _time_env(task: str, num_envs: int, steps: int, warmup: int, device: str, compile_sim: bool,
              overrides=()) -> dict:
    from ssm_mbrl_ros.sim.env import make_env

    env = make_env(task, num_envs, device=device, dtype=torch.float32, seed=0, compile_physics=compile_sim,
                   overrides=list(overrides))
    env.reset(seed=0)
    # Hover-ish normalised action with small noise, drawn once (action generation is not the sim's cost).
    spec = env.action_spec
    hover = torch.zeros(num_envs, 4, device=env.sim.device)
    hover[:, 0] = float(spec.to_normalized(torch.tensor([[9.81, 0.0, 0.0, 0.0]]))[0, 0])
    action = (hover + 0.05 * torch.randn(num_envs, 4, device=env.sim.device)).clamp(-1, 1)
    for _ in range(warmup):
        env.step(action)
    sync = torch.cuda.synchronize if env.sim.device.type == "cuda" else (lambda: None)
    sync()
    t0 = time.perf_counter()
    for _ in range(steps):
        env.step(action)
    sync()
    wall = time.perf_counter() - t0
    env.close()
    return {"env_steps_per_s": num_envs * steps / wall, "wall_s": wall, "steps": steps}


def bench_sim(task: str = "hover", batches=DEFAULT_BATCHES, min_env_steps: int = 2_000_000,
              device: str = "cpu", compile_sim: bool = False, progress: bool = True, overrides=()) -> dict:
    """Measure env-steps/s for each batch size; returns the JSON-ready result dict."""
    by_envs = {}
    for n in tqdm(list(batches), desc="bench sim", unit="batch", disable=not progress):
        steps = max(20, min_env_steps // n)
        by_envs[str(n)] = _time_env(task, n, steps, warmup=max(3, steps // 10), device=device, compile_sim=compile_sim,
                                    overrides=overrides)
    best_n = max(by_envs, key=lambda k: by_envs[k]["env_steps_per_s"])
    from ssm_mbrl_ros.sim.env import make_env

    probe = make_env(task, 1, device=device, overrides=list(overrides))
    result = {
        "env_steps_per_s": by_envs[best_n]["env_steps_per_s"],
        "best_num_envs": int(best_n),
        "by_envs": {k: v["env_steps_per_s"] for k, v in by_envs.items()},
        "details": by_envs,
        "task": task,
        "physics_hz": 1.0 / probe.sim.physics_dt_s,
        "control_hz": 1.0 / probe.sim.control_dt_s,
        "integrator": "RK4",
        "dtype": "float32",
        "device": device,
        "compiled": compile_sim,
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "cpu": platform.processor() or platform.machine(),
    }
    probe.close()
    return result
