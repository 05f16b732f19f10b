"""Physics-only throughput of QuadrotorSim (env-steps per second); `python -m ssm_mbrl_ros.bench.physics`.
(`ssm-mbrl bench sim` measures the whole vector env: physics + task + autoreset.)"""
from __future__ import annotations

import time

import torch

from ssm_mbrl_ros.sim.dynamics import QuadrotorSim
from ssm_mbrl_ros.sim.vehicle import VehicleParams, load_vehicle


def measure_sim_throughput(vehicle: VehicleParams | str = "agile5", num_envs: int = 16384, *,
                           steps: int = 50, warmup: int = 5, physics_hz: float = 500.0,
                           control_hz: float = 100.0, compile: bool = False, device="cpu",
                           dtype=torch.float32, threads: int | None = None) -> float:
    """Env-steps/s of `steps` control steps of N hovering drones under a mildly varying CTBR command.

    threads: torch intra-op CPU threads for the measurement (restored afterwards); on a shared,
    busy machine 1 thread is often fastest because OpenMP barriers stall on descheduled threads.
    """
    if threads is not None:
        previous = torch.get_num_threads()
        torch.set_num_threads(threads)
        try:
            return measure_sim_throughput(vehicle, num_envs, steps=steps, warmup=warmup, physics_hz=physics_hz,
                                          control_hz=control_hz, compile=compile, device=device, dtype=dtype)
        finally:
            torch.set_num_threads(previous)
    if isinstance(vehicle, str):
        vehicle = load_vehicle(vehicle)
    sim = QuadrotorSim(vehicle, num_envs, physics_hz=physics_hz, control_hz=control_hz,
                       device=device, dtype=dtype, compile=compile)
    ids = torch.arange(num_envs, device=sim.device)
    pos = torch.zeros(num_envs, 3, device=sim.device, dtype=dtype)
    pos[:, 2] = 2.0
    sim.reset_envs(ids, sim.hover_state(pos))
    cmd = torch.zeros(num_envs, 4, device=sim.device, dtype=dtype)
    cmd[:, 0] = 9.81
    cmd[:, 1] = 0.2 * torch.sin(ids.to(dtype))
    for _ in range(warmup):
        sim.step(cmd)
    if sim.device.type == "cuda":
        torch.cuda.synchronize(sim.device)
    start = time.perf_counter()
    for _ in range(steps):
        sim.step(cmd)
    if sim.device.type == "cuda":
        torch.cuda.synchronize(sim.device)
    return num_envs * steps / (time.perf_counter() - start)


def main() -> None:
    """Print eager (and compiled with --compile) throughput over batch sizes."""
    import argparse

    ap = argparse.ArgumentParser(description=main.__doc__)
    ap.add_argument("--vehicle", default="agile5")
    ap.add_argument("--envs", type=int, nargs="+", default=[1024, 4096, 16384, 65536, 262144])
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--compile", action="store_true")
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    args = ap.parse_args()
    for n in args.envs:
        sps = measure_sim_throughput(args.vehicle, n, steps=args.steps, compile=args.compile, threads=args.threads)
        print(f"envs={n:7d} compile={args.compile} threads={torch.get_num_threads() if args.threads is None else args.threads}"
              f" env_steps_per_s={sps:,.0f}", flush=True)


if __name__ == "__main__":
    main()
