"""Hold probe: fly a training run's actor (posterior mean, as exported) from the setpoint and read what its world
model and critic make of it.

Usage: python docs/results/hold_probe.py LOGDIR [--episodes 64] [--json out.json] [--set KEY=VALUE ...]
Starts every drone within 5 cm of its setpoint at rest (the hover task with near_start_fraction=1), flies 200 steps
and prints: the mean distance over time; how well the decoder reads the position error from the actor's feature
(RMSE per axis, m); the critic's value and the reward head against the real reward, by distance to the setpoint;
25-step imagination from two points of the real flight against what the simulator did; and the mean absolute
normalised command (thrust's deviation from hover, roll, pitch and yaw rates) over time, which shows a policy that
spins (a yaw-rate command near 1 is the full 2 rad/s).
"""
import argparse
import json

import numpy as np
import torch

from ssm_mbrl_ros.core.config import from_dict
from ssm_mbrl_ros.sim.env import make_env
from ssm_mbrl_ros.sim.state import GRAVITY_MPS2
from ssm_mbrl_ros.train.checkpoint import load_checkpoint
from ssm_mbrl_ros.train.config import TrainConfig
from ssm_mbrl_ros.train.imagined_reward import decoded_observation
from ssm_mbrl_ros.train.learner import Learner

BANDS_M = ((0.0, 0.1), (0.1, 0.3), (0.3, 0.6), (0.6, 1.2), (1.2, 5.0))


def fly(learner, env, steps: int) -> dict:
    """Closed-loop flight with the actor's mean action; per-step records stacked (N, T, ...)."""
    sl = env.obs_layout.slices()
    wm, actor, n = learner.wm, learner.actor, env.num_envs
    obs, _ = env.reset(seed=5)
    carry, prev, first = wm.initial(n), torch.zeros(n, 4), torch.ones(n, dtype=torch.bool)
    rec = {k: [] for k in ("pos_err", "decoded", "value", "reward_head", "reward", "action")}
    carries = []
    with torch.no_grad():
        for _ in range(steps):
            carry, feat, _, _ = wm.act_step(carry, obs.float(), prev, first, actor.latent)
            action = actor.mean_action(feat)
            rec["pos_err"].append(obs[:, sl["pos_err"]].float())
            rec["decoded"].append(decoded_observation(wm, feat)[:, sl["pos_err"]])
            rec["value"].append(learner.critic.value(feat, None))
            rec["reward_head"].append(wm.heads.reward(feat))
            rec["action"].append(action)
            carries.append({k: v.clone() for k, v in carry.items()})
            obs, reward, term, trunc, _ = env.step(action)
            rec["reward"].append(reward.float())
            prev, first = action, term | trunc
    out = {k: torch.stack(v, 1) for k, v in rec.items()}
    out["carries"] = carries
    return out


def imagine_from(learner, carry: dict, steps: int, sl) -> torch.Tensor:
    """Decoded position error (N, steps, 3) of a prior rollout (latent mode) with the actor's mean action."""
    wm, actor = learner.wm, learner.actor
    out = []
    with torch.no_grad(), wm.rollout_context():
        c, f = carry, wm.feat(carry)
        for _ in range(steps):
            c, f = wm.img_step(c, actor.mean_action(f), sample=False)
            out.append(decoded_observation(wm, f)[:, sl["pos_err"]])
    return torch.stack(out, 1)


def main() -> None:
    """Print (and optionally write) the hold probe of one run."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("logdir", help="a run directory with checkpoint.pt")
    ap.add_argument("--episodes", type=int, default=64, help="drones flown in parallel")
    ap.add_argument("--json", help="also write the numbers here")
    ap.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                    help="extra task overrides, e.g. randomization.enabled=false randomization.wind.enabled=false")
    a = ap.parse_args()
    payload, cfg, env, learner, hover = load_run(a.logdir, a.episodes, a.overrides)
    r = fly(learner, env, 200)
    dist = r["pos_err"].norm(dim=-1)
    dev = (r["action"] - torch.tensor(hover, dtype=r["action"].dtype)).abs().mean(0)  # (T, 4)
    res = {"run": a.logdir, "updates": payload.get("optim", {}).get("updates"),
           "distance_m": {t: float(dist[:, t].mean()) for t in (0, 10, 25, 50, 100, 199)},
           "task_overrides": a.overrides,
           "final_pos_err_mean_m": r["pos_err"][:, -1].mean(0).tolist(),  # a shared offset: the policy's own bias
           "final_pos_err_abs_mean_m": r["pos_err"][:, -1].abs().mean(0).tolist(),
           "final_decoded_pos_err_mean_m": r["decoded"][:, -1].mean(0).tolist(),  # what the model reads there
           "mean_abs_command_thrust_roll_pitch_yaw": {t: [round(float(v), 3) for v in dev[t]] for t in (0, 10, 50, 199)},
           "decoded_pos_err_rmse_m_first_2s": (r["decoded"] - r["pos_err"])[:, :50].square().mean((0, 1)).sqrt().tolist(),
           "by_distance": {}, "imagination": {}}
    d1 = dist[:, 1:]  # the reward of step t arrives at step t + 1's distance
    for lo, hi in BANDS_M:
        m, m1 = (dist >= lo) & (dist < hi), (d1 >= lo) & (d1 < hi)
        if m.any() and m1.any():
            res["by_distance"][f"{lo}-{hi} m"] = {
                "value": float(r["value"][m].mean()), "reward_head": float(r["reward_head"][:, 1:][m1].mean()),
                "reward": float(r["reward"][:, :-1][m1].mean()), "count": int(m.sum())}
    sl = env.obs_layout.slices()
    for t0 in (5, 30):
        im, real = imagine_from(learner, r["carries"][t0], 25, sl), r["pos_err"][:, t0 + 1:t0 + 26]
        res["imagination"][f"from step {t0}"] = {
            f"k={k}": {"real_m": float(real[:, k - 1].norm(dim=-1).mean()),
                       "imagined_m": float(im[:, k - 1].norm(dim=-1).mean()),
                       "error_m": float((im[:, k - 1] - real[:, k - 1]).norm(dim=-1).mean())} for k in (5, 15, 25)}
    emit(res, a.json)


def load_run(logdir, episodes: int, overrides: list) -> tuple:
    """(checkpoint payload, TrainConfig, env, learner in eval mode, hover action) of a run, its drones starting at
    rest within 5 cm of their setpoints (plus the task overrides given); one torch thread."""
    torch.set_num_threads(1)
    payload, _ = load_checkpoint(logdir)
    cfg = from_dict(TrainConfig, payload["config"])
    env = make_env(cfg.task, episodes, seed=5, vehicle=cfg.vehicle, overrides=list(cfg.task_overrides) + [
        "near_start_fraction=1", "near_start_radius_m=0.05", "start_vel_std_mps=0", *overrides])
    hover = env.action_spec.to_normalized(np.array([GRAVITY_MPS2, 0.0, 0.0, 0.0])).tolist()
    learner = Learner(cfg, env.obs_layout.dim, env.privileged_layout.dim, "cpu", hover_action=hover)
    learner.load_state_dict(payload["learner"])
    learner.eval()
    return payload, cfg, env, learner, hover


def emit(res: dict, path: str | None) -> None:
    """Print res as JSON and also write it to path when given."""
    print(json.dumps(res, indent=1))
    if path:
        with open(path, "w") as f:
            json.dump(res, f, indent=1)


if __name__ == "__main__":
    main()
