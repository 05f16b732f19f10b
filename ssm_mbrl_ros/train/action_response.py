"""Action-response probe: does the world model's imagination answer an action step the way the simulator does?

From the same start states, every probe action (hover, roll, pitch, yaw, thrust up, thrust down) is held for a short
horizon twice: in the simulator and in imagination (the prior, started from the posterior the filter reached on the
real observations). The probe compares the *change* each action causes over the horizon, per channel group:

    omega   body rates, rad/s (body FLU)         att      attitude (rotation-matrix entries: rates integrated)
    vel     world velocity, m/s (full obs only)  pos      position error to the reference, m
    reward  summed reward over the horizon

and scores each group with R^2 = 1 - SSE / SST over (start, probe) pairs, where SST is the spread of the simulator's
changes around their mean: 1 means imagination reproduces every response, 0 means it is no better than predicting the
average response (an action-blind model scores ~0). The trainer runs it to decide when the actor may start (the
`actor_gate_r2` option), and tests run it on a briefly trained model.

Replicas: the simulator side uses one vector env per probe, all reset with the same seed, so every env starts from
the same states, parameters and wind and stays identical through the warm-up (the same deterministic actions); only
the probe action differs afterwards.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

# normalised CTBR probes relative to hover: (name, thrust delta, roll, pitch, yaw) in [-1, 1] units
PROBES = (
    ("hover", 0.0, 0.0, 0.0, 0.0),
    ("roll", 0.0, 0.5, 0.0, 0.0),
    ("pitch", 0.0, 0.0, -0.5, 0.0),
    ("yaw", 0.0, 0.0, 0.0, 0.5),
    ("thrust_up", 0.5, 0.0, 0.0, 0.0),
    ("thrust_down", -0.5, 0.0, 0.0, 0.0),
)
GROUPS = ("omega", "att", "vel", "pos", "reward")


@dataclass
class ProbeConfig:
    """Sizes of the probe (defaults: ~2 s on one CPU core for the trainer's world model)."""

    starts: int = 16  # start states (drones per env)
    warmup_s: float = 0.3  # seconds of hover-thrust flight filtered before the probe starts
    horizon_s: float = 0.2  # seconds each probe action is held
    seed: int = 12345


def _r2(pred: np.ndarray, true: np.ndarray) -> float:
    """1 - SSE / SST over all rows (true: (M, k)); SST around the mean of true; NaN without rows (nothing to pass)."""
    if true.size == 0:
        return float("nan")
    sst = float(np.square(true - true.mean(0, keepdims=True)).sum())
    sse = float(np.square(pred - true).sum())
    return 1.0 - sse / max(sst, 1e-12)


@torch.no_grad()
def probe_action_response(wm, make_env, hover_action, cfg: ProbeConfig | None = None) -> dict:
    """Run every probe in the simulator and in imagination; returns {"r2": {group: R^2}, "per_probe": {...},
    "horizon_steps": H}.

    wm: a WorldModel; make_env(num_envs, seed) -> QuadVecEnv of the training task; hover_action: normalised (4,)
    action that hovers the nominal vehicle.
    """
    cfg = cfg or ProbeConfig()
    envs = [make_env(cfg.starts, cfg.seed) for _ in PROBES]
    env0 = envs[0]
    dt = env0.dt_s
    warm, horizon = max(1, round(cfg.warmup_s / dt)), max(1, round(cfg.horizon_s / dt))
    device = next(wm.parameters()).device
    sl = env0.obs_layout.slices()
    task_key = next(iter(sl))  # the task block comes first (hover: pos_err)
    n = cfg.starts
    hover = torch.as_tensor(hover_action, dtype=torch.float32).reshape(1, 4).expand(n, 4)
    obs = [e.reset(seed=cfg.seed)[0] for e in envs]
    carry, prev, first = wm.initial(n), torch.zeros(n, 4, device=device), torch.ones(n, dtype=torch.bool, device=device)
    alive = torch.ones(n, dtype=torch.bool)
    for _ in range(warm):  # identical replicas: filter on env 0 and step them all with hover thrust
        carry, _, _, _ = wm.filter_step(carry, obs[0].to(device, torch.float32), prev, first, sample=False)
        for i, e in enumerate(envs):
            o, _, term, trunc, _ = e.step(hover)
            obs[i] = o
            if i == 0:
                alive &= ~(term | trunc).cpu()
        prev, first = hover.to(device), torch.zeros_like(first)
    carry, feat, _, _ = wm.filter_step(carry, obs[0].to(device, torch.float32), prev, first, sample=False)
    start_obs = obs[0].cpu().numpy()
    start_pred = wm.heads.decode(feat).cpu().numpy()

    sim_rows, img_rows, names = {g: [] for g in GROUPS}, {g: [] for g in GROUPS}, []
    for (name, *delta), e in zip(PROBES, envs):
        action = (hover + torch.tensor(delta, dtype=torch.float32)).clamp(-1.0, 1.0)
        reward_sum = torch.zeros(n)
        ok = alive.clone()
        for _ in range(horizon):
            o, r, term, trunc, _ = e.step(action)
            reward_sum += r.cpu()
            ok &= ~(term | trunc).cpu()
        end_obs = o.cpu().numpy()
        c, f = dict(carry), feat
        img_reward = torch.zeros(n, device=device)
        for _ in range(horizon):
            c, f = wm.img_step(c, action.to(device), sample=False)
            img_reward += wm.heads.reward(f)
        end_pred = wm.heads.decode(f).cpu().numpy()
        keep = ok.numpy()
        for g, key in (("omega", "omega"), ("att", "rotmat"), ("vel", "vel"), ("pos", task_key)):
            if key not in sl:
                continue
            s = sl[key]
            sim_rows[g].append((end_obs[:, s] - start_obs[:, s])[keep])
            img_rows[g].append((end_pred[:, s] - start_pred[:, s])[keep])
        sim_rows["reward"].append(reward_sum.numpy()[keep, None])
        img_rows["reward"].append(img_reward.cpu().numpy()[keep, None])
        names.append(name)
    r2 = {g: _r2(np.concatenate(img_rows[g]), np.concatenate(sim_rows[g])) for g in GROUPS if sim_rows[g]}
    per_probe = {}
    for i, name in enumerate(names):
        per_probe[name] = {g: {"sim": np.round(sim_rows[g][i].mean(0), 4).tolist(),
                               "imagined": np.round(img_rows[g][i].mean(0), 4).tolist()} for g in r2}
    return {"r2": r2, "per_probe": per_probe, "horizon_steps": horizon, "starts_used": int(alive.sum())}
