"""Where a hover policy settles: per-episode offset over the last second, for the diagnosis in docs/training.md.

Usage: python docs/results/hover_offsets.py POLICY.onnx [--episodes 100] [--seed 0] [--labels EXPERT]
Prints the success rate, percentiles of the final error, the mean and across-episode standard
deviation of the final-second offset (position - setpoint, world ENU, m) and the mean
within-episode standard deviation (a steady offset has a small one). --labels geometric|geometric_pd|
geometric_priv also runs that expert on the policy's own states (labels only, as DAgger does) and
prints the mean squared difference of the normalised actions per 100-step slice of the episode.
"""
import argparse

import numpy as np

from ssm_mbrl_ros.control.experts import CONTROLLERS, make_agent
from ssm_mbrl_ros.evaluation.agents import OnnxPolicyAgent
from ssm_mbrl_ros.evaluation.rollout import run_episodes
from ssm_mbrl_ros.sim.env import make_env


class LabelledPolicy(OnnxPolicyAgent):
    """The policy flies; an expert labels every state it visits (squared action differences are kept)."""

    def __init__(self, env, policy, expert):
        super().__init__(env, policy)
        self.expert = make_agent(expert, env) if expert else None
        self.sq_err: list[np.ndarray] = []  # per step (N, 4)

    def reset(self, env_ids=None):
        """Reset the policy's and the expert's memory."""
        super().reset(env_ids)
        if self.expert:
            self.expert.reset(env_ids)

    def act(self, obs, env):
        """The policy's action; the expert's label is compared, not flown."""
        action = super().act(obs, env)
        if self.expert:
            label = env.action_spec.to_normalized(self.expert.act(obs, env)).to(action.dtype)
            self.sq_err.append(((action - label) ** 2).cpu().numpy())
        return action


def main() -> None:
    """Fly the policy on `hover` (randomisation and wind on) and print the offset statistics."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("policy", help="exported ONNX policy (with its .json sidecar)")
    p.add_argument("--episodes", type=int, default=100, help="episodes, one per simulated drone")
    p.add_argument("--seed", type=int, default=0, help="simulator seed")
    p.add_argument("--labels", default=None, choices=[c for c in CONTROLLERS if c != "hover"],
                   help="also compare the policy's actions with this expert's labels along the episode")
    args = p.parse_args()
    env = make_env("hover", args.episodes, seed=args.seed)
    agent = LabelledPolicy(env, args.policy, args.labels)
    res = run_episodes(env, agent, seed=args.seed, record=args.episodes, progress=False)
    steps = int(round(1.0 / env.sim.control_dt_s))
    last = [t["pos"][-steps:] - t["ref"][-steps:] for t in res.trajectories]
    offset = np.array([x.mean(0) for x in last])
    print(f"success {res.success.mean():.2f}; final error m p10/p25/p50/p75/p90 "
          f"{np.percentile(res.final_pos_err_m, [10, 25, 50, 75, 90]).round(3)}")
    print(f"final-second offset xyz m: mean {offset.mean(0).round(3)}, std across episodes {offset.std(0).round(3)}")
    print(f"within-episode std xyz m: {np.array([x.std(0) for x in last]).mean(0).round(3)}")
    if agent.sq_err:
        err = np.stack(agent.sq_err)  # (T, N, 4)
        print(f"squared difference to {args.labels} labels (normalised actions), per 100-step slice:")
        for start in range(0, err.shape[0], 100):
            m = err[start:start + 100].mean((0, 1))
            print(f"  steps {start:4d}-{start + 99:4d}: thrust {m[0]:.1e}, body rates (sum) {m[1:].sum():.1e}")


if __name__ == "__main__":
    main()
