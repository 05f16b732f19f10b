"""Closed-loop evaluation: run each env for exactly one episode and aggregate task metrics."""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np
import torch
from tqdm import tqdm

from ssm_mbrl_ros.sim.state import POS

# the env's termination flags besides "crash" (sim/env.py), each reported as "<name>_rate"
TERMINATIONS = ("tilt", "out_of_bounds", "nonfinite_action")


@dataclass
class EvalResult:
    """Per-episode outcomes (one row per episode) and a few recorded trajectories."""

    task: str
    episodes: int
    success: np.ndarray          # (E,) bool
    crash: np.ndarray            # (E,) bool, ground contact or a gate-frame collision
    episode_return: np.ndarray   # (E,)
    episode_length_s: np.ndarray  # (E,) s
    pos_rmse_m: np.ndarray       # (E,) m
    final_pos_err_m: np.ndarray  # (E,) m, distance to the reference at the episode's last step
    lap_time_s: np.ndarray       # (E,) s, nan where no lap was completed
    trajectories: list[dict] = field(default_factory=list)  # each: t_s (T,), pos (T,3), ref (T,3)
    # (E,) bool per termination reason other than crash (TERMINATIONS); an episode may end for several at once
    terminations: dict = field(default_factory=dict)
    wall_s: float = 0.0
    env_steps: int = 0

    @property
    def terminated(self) -> np.ndarray:
        """(E,) bool: the episode ended early, for any reason."""
        out = self.crash.copy()
        for v in self.terminations.values():
            out |= v
        return out

    def metrics(self) -> dict:
        """Summary metrics as plain JSON-ready numbers (nan -> None)."""
        laps = self.lap_time_s[np.isfinite(self.lap_time_s)]

        def num(x):
            x = float(x)
            return None if not math.isfinite(x) else round(x, 6)

        return {
            "task": self.task,
            "episodes": int(self.episodes),
            "success_rate": num(self.success.mean()),
            "crash_rate": num(self.crash.mean()),
            **{f"{k}_rate": num(v.mean()) for k, v in self.terminations.items()},
            "terminated_rate": num(self.terminated.mean()) if self.terminations else None,
            "pos_rmse_m": num(self.pos_rmse_m.mean()),
            "pos_rmse_m_median": num(np.median(self.pos_rmse_m)),
            "final_pos_err_m": num(self.final_pos_err_m.mean()),
            "mean_return": num(self.episode_return.mean()),
            "mean_episode_length_s": num(self.episode_length_s.mean()),
            "lap_time_s": num(laps.mean()) if laps.size else None,
            "best_lap_time_s": num(laps.min()) if laps.size else None,
            "laps_completed": int(laps.size),
            "env_steps": int(self.env_steps),
            "wall_s": num(self.wall_s),
        }


def _flag(info: dict, key: str, like: torch.Tensor) -> torch.Tensor:
    value = info.get(key)
    return torch.zeros_like(like, dtype=torch.bool) if value is None else value.bool()


def _value(info: dict, key: str, like: torch.Tensor) -> torch.Tensor:
    value = info.get(key)
    return torch.full_like(like, float("nan"), dtype=torch.float64) if value is None else value.double()


@torch.no_grad()
def run_episodes(env, agent, *, seed: int = 0, record: int = 3, progress: bool = True,
                 max_steps: int | None = None) -> EvalResult:
    """Run every env of `env` until its first episode ends; record the first `record` trajectories."""
    n = env.num_envs
    obs, info = env.reset(seed=seed)
    agent.reset(None)
    done_once = torch.zeros(n, dtype=torch.bool, device=obs.device)
    rows = {k: torch.zeros(n, dtype=torch.float64, device=obs.device)
            for k in ("success", "crash", *TERMINATIONS, "episode_return", "episode_length_s", "pos_rmse_m", "lap_time_s",
                      "final_pos_err_m")}
    record = min(record, n)
    paths = [[] for _ in range(record)]
    refs = [[] for _ in range(record)]
    dt = env.sim.control_dt_s
    limit = max_steps or int(math.ceil(env.max_episode_steps * 1.05)) + 2
    start, steps = time.perf_counter(), 0
    bar = tqdm(total=n, desc=f"evaluate {env.task_name}", unit="ep", disable=not progress, leave=False)
    for _ in range(limit):
        if record:
            pos = env.sim.state[:record, POS].double().cpu().numpy()
            ref = env.task.reference()["pos"][:record].double().cpu().numpy()
            open_rows = (~done_once[:record]).cpu().numpy()
            for i in np.flatnonzero(open_rows):
                paths[i].append(pos[i])
                refs[i].append(ref[i])
        action = agent.act(obs, env)
        if getattr(agent, "physical", False):
            obs, _, terminated, truncated, info = env.step_physical(action)
        else:
            obs, _, terminated, truncated, info = env.step(action)
        steps += n
        done = terminated | truncated
        new = done & ~done_once
        if bool(new.any()):
            ids = new.nonzero().squeeze(-1)
            rows["success"][ids] = _flag(info, "success", done)[ids].double()
            for key in ("crash", *TERMINATIONS):
                rows[key][ids] = _flag(info, key, done)[ids].double()
            for key in ("episode_return", "pos_rmse_m", "lap_time_s"):
                rows[key][ids] = _value(info, key, done)[ids]
            rows["final_pos_err_m"][ids] = _value(info, "pos_err_m", done)[ids]
            rows["episode_length_s"][ids] = _value(info, "episode_length", done)[ids] * dt
            done_once |= new
            bar.update(int(new.sum()))
            agent.reset(ids)
        if bool(done_once.all()):
            break
    bar.close()
    r = {k: v.cpu().numpy() for k, v in rows.items()}
    mask = done_once.cpu().numpy()
    trajectories = [
        {"t_s": np.arange(len(p)) * dt, "pos": np.asarray(p), "ref": np.asarray(q)}
        for p, q in zip(paths, refs) if p
    ]
    return EvalResult(
        task=env.task_name, episodes=int(mask.sum()), success=r["success"][mask] > 0.5,
        crash=r["crash"][mask] > 0.5, episode_return=r["episode_return"][mask],
        episode_length_s=r["episode_length_s"][mask], pos_rmse_m=r["pos_rmse_m"][mask],
        final_pos_err_m=r["final_pos_err_m"][mask],
        lap_time_s=r["lap_time_s"][mask], trajectories=trajectories,
        wall_s=time.perf_counter() - start, env_steps=steps,
        terminations={k: r[k][mask] > 0.5 for k in TERMINATIONS},
    )
