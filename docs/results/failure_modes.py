"""How hover policies fail: each exported policy flies the same evaluation episodes, and every episode is put in one
class (success, out of bounds, crash or tilt, or full length but ended off the setpoint), with the start distance
per class and the offset held over the last 3 s of the full-length episodes (its mean vector over episodes and how
much it moves in time) (docs/learning.md section 17).

    python docs/results/failure_modes.py RUN/best.onnx RUN/policy.onnx ... [--episodes 200] [--seed 1] [--json F]
"""
from __future__ import annotations

import argparse
import json

import numpy as np

from ssm_mbrl_ros.evaluation.agents import OnnxPolicyAgent
from ssm_mbrl_ros.evaluation.rollout import run_episodes
from ssm_mbrl_ros.sim.env import make_env
from ssm_mbrl_ros.sim.state import POS


def classify(policy: str, episodes: int, seed: int) -> dict:
    """Fly one policy on `episodes` hover episodes; per-class counts, start distances (m) and held offsets (m)."""
    env = make_env("hover", episodes, device="cpu", seed=seed)
    env.reset(seed=seed)
    start_dist = (env.task.reference()["pos"] - env.sim.state[:, POS]).norm(dim=-1).numpy()
    r = run_episodes(env, OnnxPolicyAgent(env, policy), seed=seed, record=episodes, progress=False)
    oob = r.terminations.get("out_of_bounds", np.zeros(episodes, bool))
    full = ~r.terminated
    classes = {"success": r.success, "out_of_bounds": oob & ~r.success,
               "crash_or_tilt": r.terminated & ~oob, "off_setpoint": full & ~r.success}
    # the last 3 s of the full-length episodes: position minus setpoint (world ENU, m) per step
    last = [t["pos"][-75:] - t["ref"][-75:] for t, ok in zip(r.trajectories, full) if ok]
    dist = [np.linalg.norm(e, axis=1) for e in last]
    held = np.array([d.mean() for d in dist])  # held offset per episode
    wobble = np.array([d.std() for d in dist])  # its movement in time
    vec = np.array([e.mean(0) for e in last]).reshape(-1, 3)  # the offset vector per episode
    return {"policy": policy, "episodes": episodes, "seed": seed,
            **{f"{k}_rate": round(float(m.mean()), 3) for k, m in classes.items()},
            **{f"{k}_start_dist_m": round(float(start_dist[m].mean()), 2) if m.any() else None
               for k, m in classes.items()},
            "held_offset_mean_m": round(float(held.mean()), 3) if held.size else None,
            "held_offset_p90_m": round(float(np.percentile(held, 90)), 3) if held.size else None,
            # the same vector in every episode = a bias of the policy; a small std in time = held, not oscillating
            "held_offset_vector_mean_m": np.round(vec.mean(0), 3).tolist() if held.size else None,
            "held_offset_vector_std_m": np.round(vec.std(0), 3).tolist() if held.size else None,
            "held_offset_std_in_time_m": round(float(wobble.mean()), 4) if held.size else None}


def main() -> None:
    """Parse arguments, classify each policy, print a line per policy and optionally write JSON."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("policies", nargs="+", help="exported hover policies (.onnx with their .json sidecars)")
    ap.add_argument("--episodes", type=int, default=200, help="episodes per policy (default 200)")
    ap.add_argument("--seed", type=int, default=1, help="episode seed, the same for every policy (default 1)")
    ap.add_argument("--json", help="write the rows to this JSON file")
    args = ap.parse_args()
    rows = [classify(p, args.episodes, args.seed) for p in args.policies]
    for row in rows:
        print(json.dumps(row))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=2)
            f.write("\n")


if __name__ == "__main__":
    main()
