"""Offline world-model training from rosbag2 flight logs and its held-out open-loop evaluation.

Bags -> (bags/dataset.py) fixed-rate episodes -> episode-level train/held-out split -> world-model
updates on random (B, T) windows -> open-loop k-step prediction on held-out episodes: the model
filters `context` recorded steps, then predicts the next k observations from the recorded
commands alone (prior only, no observations), and the decoded position / velocity / attitude are
compared with the recording.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from ..world_models.factory import make_world_model
from .checkpoint import world_model_from_payload

# obs slices of the dataset layout (bags/dataset.py): task block (pos_err or pos), vel, rotmat
POS, VEL, ROT = slice(0, 3), slice(3, 6), slice(6, 15)


@dataclass
class OfflineResult:
    """Held-out open-loop prediction errors per horizon and a few predicted-vs-recorded traces."""

    horizons: list[int]
    pos_rmse_m: dict[int, float]
    vel_rmse_mps: dict[int, float]
    rot_rmse: dict[int, float]  # RMSE of rotation-matrix entries (dimensionless)
    windows: int
    traces: list[dict] = field(default_factory=list)  # each: t_s (H,), true (H, 3), pred (H, 3) positions

    def to_dict(self) -> dict:
        """JSON-ready report."""
        return {"horizons": self.horizons, "windows": self.windows,
                "pos_rmse_m": {str(k): v for k, v in self.pos_rmse_m.items()},
                "vel_rmse_mps": {str(k): v for k, v in self.vel_rmse_mps.items()},
                "rot_rmse": {str(k): v for k, v in self.rot_rmse.items()}}


def split_episodes(data: dict, holdout: float, seed: int = 0) -> tuple[dict, dict]:
    """Split a flat training dict into (train, held-out) by whole episodes (at least one each when possible)."""
    starts = np.flatnonzero(data["is_first"])
    bounds = list(zip(starts, list(starts[1:]) + [len(data["is_first"])]))
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(bounds))
    n_hold = min(len(bounds) - 1, max(1, int(round(holdout * len(bounds))))) if len(bounds) > 1 else 0
    hold_ids = set(order[:n_hold].tolist())

    def take(ids):
        idx = np.concatenate([np.arange(*bounds[i]) for i in sorted(ids)]) if ids else np.zeros(0, int)
        return {k: v[idx] for k, v in data.items()}

    return take(set(range(len(bounds))) - hold_ids), take(hold_ids)


def sample_windows(data: dict, rng: np.random.Generator, batch: int, length: int) -> dict:
    """B random windows of T consecutive steps from a flat dict (episode starts marked by is_first)."""
    n = len(data["is_first"])
    start = rng.integers(0, n - length + 1, size=batch)
    idx = start[:, None] + np.arange(length)[None]
    out = {k: v[idx] for k, v in data.items()}
    out["is_first"][:, 0] = True
    return out


def to_batch(win: dict, device, privileged: bool) -> dict:
    """Dataset windows -> world-model batch tensors (NaN rewards masked, privileged masked where absent)."""
    reward = win["reward"]
    b = {"obs": win["obs"], "action": win["action"], "reward": np.nan_to_num(reward), "cont": win["cont"],
         "is_first": win["is_first"], "reward_mask": np.isfinite(reward)}
    if privileged:
        b["privileged"], b["priv_mask"] = win["privileged"], win["privileged_valid"]
    return {k: torch.as_tensor(v, device=device) for k, v in b.items()}


def build_world_model(wm_cfg, init: str | None, obs_dim: int, priv_dim: int, device):
    """A fresh world model, or one loaded from a world_model.pt / training checkpoint.pt for fine-tuning."""
    if init is None:
        return make_world_model(wm_cfg, obs_dim, 4, priv_dim).to(device)
    from ssm_mbrl_ros.core.config import ConfigError
    from ssm_mbrl_ros.train.checkpoint import load_torch_file

    payload = load_torch_file(init, device, "--init")
    try:
        wm = world_model_from_payload(payload)
    except (KeyError, TypeError, RuntimeError, ValueError, ConfigError) as e:
        raise ConfigError(f"--init: {init} holds no world model this version can load ({type(e).__name__}: "
                          f"{str(e).splitlines()[0][:200] if str(e) else ''})") from None
    if wm.obs_dim != obs_dim:
        raise ValueError(f"{init}: the world model reads {wm.obs_dim} observation values, the bags give {obs_dim}")
    return wm.to(device)


@torch.no_grad()
def open_loop_eval(wm, data: dict, context: int, horizons: list[int], max_windows: int = 256,
                   control_hz: float = 100.0, traces: int = 3, seed: int = 0) -> OfflineResult:
    """Filter `context` steps, predict max(horizons) steps from recorded actions; RMSE at each horizon."""
    H = max(horizons)
    T = context + H
    starts = np.flatnonzero(data["is_first"])
    ends = list(starts[1:]) + [len(data["is_first"])]
    cands = [s for s0, e in zip(starts, ends) for s in range(s0, e - T + 1, max(1, H // 2))]
    if not cands:
        raise ValueError(f"no held-out episode is longer than context + horizon = {T} steps")
    rng = np.random.default_rng(seed)
    cands = sorted(rng.permutation(cands)[:max_windows])
    idx = np.asarray(cands)[:, None] + np.arange(T)[None]
    win = {k: torch.as_tensor(v[idx]) for k, v in data.items() if k in ("obs", "action", "reward", "cont", "is_first")}
    win["reward"] = torch.nan_to_num(win["reward"])
    win["is_first"][:, 0] = True
    dev = next(wm.parameters()).device
    ctx = {k: v[:, :context].to(dev) for k, v in win.items()}
    _, carry = wm.observe(ctx, sample=False)
    preds = []
    for t in range(H):  # action[:, context - 1 + t] leads from step context - 1 + t to context + t
        carry, feat = wm.img_step(carry, win["action"][:, context - 1 + t].to(dev), sample=False)
        preds.append(wm.heads.decode(feat).cpu())
    pred = torch.stack(preds, 1).numpy()  # (W, H, D)
    true = win["obs"][:, context:].numpy()
    sq = (pred - true) ** 2

    def rmse(sl):
        return {k: float(math.sqrt(sq[:, k - 1, sl].sum(-1).mean())) for k in horizons}

    tr = [{"t_s": np.arange(1, H + 1) / control_hz, "true": true[i, :, POS], "pred": pred[i, :, POS]}
          for i in range(min(traces, len(pred)))]
    return OfflineResult(horizons, rmse(POS), rmse(VEL), rmse(ROT), len(pred), tr)


def plot_predictions(result: OfflineResult, path, title: str = "") -> Path:
    """PNG: predicted vs recorded position-block traces (open loop) and RMSE vs horizon."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = len(result.traces)
    fig, ax = plt.subplots(1, n + 1, figsize=(4.5 * (n + 1), 3.8))
    ax = np.atleast_1d(ax)
    for a, tr in zip(ax, result.traces):
        for j, c in enumerate("xyz"):
            a.plot(tr["t_s"], tr["true"][:, j], color=f"C{j}", label=f"{c} recorded")
            a.plot(tr["t_s"], tr["pred"][:, j], "--", color=f"C{j}", label=f"{c} predicted")
        a.set(xlabel="time after context (s)", ylabel="position block (m)")
        a.grid(alpha=0.3)
    if n:
        ax[0].legend(fontsize=7)
    hs = result.horizons
    ax[-1].plot(hs, [result.pos_rmse_m[h] for h in hs], "o-", label="position (m)")
    ax[-1].plot(hs, [result.vel_rmse_mps[h] for h in hs], "s-", label="velocity (m/s)")
    ax[-1].set(xlabel="prediction horizon (steps)", ylabel="held-out RMSE", yscale="log")
    ax[-1].legend()
    ax[-1].grid(alpha=0.3)
    fig.suptitle(title)
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return Path(path)


def train_offline(wm, train: dict, *, updates: int, minutes: float, batch: int, seq_len: int, lr: float,
                  privileged: bool, seed: int = 0, progress: bool = True, log=None) -> dict:
    """World-model updates on random windows of `train` until `updates` or `minutes` runs out."""
    rng = np.random.default_rng(seed)
    dev = next(wm.parameters()).device
    opt = torch.optim.Adam(wm.parameters(), lr=lr, eps=1e-5)
    t0 = time.perf_counter()
    metrics: dict = {}
    bar = tqdm(total=updates or None, desc="train-offline", unit="upd", disable=not progress, leave=False)
    step = 0
    while (not updates or step < updates) and (not minutes or time.perf_counter() - t0 < minutes * 60.0):
        loss, metrics, _, _ = wm.loss(to_batch(sample_windows(train, rng, batch, seq_len), dev, privileged))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(wm.parameters(), 100.0)
        opt.step()
        step += 1
        bar.update(1)
        if log is not None and step % 20 == 0:
            log({"update": step, "wall_s": round(time.perf_counter() - t0, 2), **metrics})
            bar.set_postfix(loss=f"{metrics['loss']:.3f}")
    bar.close()
    return {"updates": step, "wall_s": time.perf_counter() - t0, **metrics}
