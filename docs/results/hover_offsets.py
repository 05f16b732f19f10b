"""Where a hover policy settles: per-episode offset over the last second, for the README's diagnosis.

Usage: python docs/results/hover_offsets.py POLICY.onnx [--episodes 100] [--seed 0]
Prints the success rate, percentiles of the final error, the mean and across-episode standard
deviation of the final-second offset (position - setpoint, world ENU, m) and the mean
within-episode standard deviation (a steady offset has a small one).
"""
import argparse

import numpy as np

from ssm_mbrl_ros.evaluation.agents import OnnxPolicyAgent
from ssm_mbrl_ros.evaluation.rollout import run_episodes
from ssm_mbrl_ros.sim.env import make_env


def main() -> None:
    """Fly the policy on `hover` (randomisation and wind on) and print the offset statistics."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("policy", help="exported ONNX policy (with its .json sidecar)")
    p.add_argument("--episodes", type=int, default=100, help="episodes, one per simulated drone")
    p.add_argument("--seed", type=int, default=0, help="simulator seed")
    args = p.parse_args()
    env = make_env("hover", args.episodes, seed=args.seed)
    res = run_episodes(env, OnnxPolicyAgent(env, args.policy), seed=args.seed, record=args.episodes, progress=False)
    steps = int(round(1.0 / env.sim.control_dt_s))
    last = [t["pos"][-steps:] - t["ref"][-steps:] for t in res.trajectories]
    offset = np.array([x.mean(0) for x in last])
    print(f"success {res.success.mean():.2f}; final error m p10/p25/p50/p75/p90 "
          f"{np.percentile(res.final_pos_err_m, [10, 25, 50, 75, 90]).round(3)}")
    print(f"final-second offset xyz m: mean {offset.mean(0).round(3)}, std across episodes {offset.std(0).round(3)}")
    print(f"within-episode std xyz m: {np.array([x.std(0) for x in last]).mean(0).round(3)}")


if __name__ == "__main__":
    main()
