"""Record vector-env rollouts into the episode store (one EpisodeRecord per finished episode).

Use:
    rec = EnvRecorder(store, env, seed=0, episodes_per_chunk=16)
    obs, info = env.reset(seed=0); rec.begin(info)
    loop: ctbr = ...; obs, r, term, trunc, info = env.step_physical(ctbr); rec.step(ctbr, term, trunc, info)
    rec.close()   # or flush(): close() also stores the episodes still running, as truncated
Each stored step t holds the state at observation t (from info["privileged"], true state) and the
physical CTBR issued there; the terminal/truncation state is the last step, with the previous
command repeated (it is never acted on). An optional demonstrator label per step (expert_ctbr,
physical CTBR) is stored beside it. `base_info` is merged into each episode's info when the
episode ends (a collector adds the name of the policy flying then).
"""
from __future__ import annotations

import dataclasses

import numpy as np

from .store import EpisodeRecord, EpisodeStore


def describe_env(env, seed) -> dict:
    """Self-description shared by every episode of env: task, vehicle, seed, rate, layouts, action spec, reward."""
    return {"task": env.task_name, "vehicle": env.vehicle.name, "seed": seed, "control_hz": 1.0 / env.dt_s,
            "observation": env.cfg.observation, "obs_layout": env.obs_layout.to_dict(),
            "privileged_layout": env.privileged_layout.to_dict(), "action_spec": env.action_spec.to_dict(),
            "reward": dataclasses.asdict(env.cfg.reward)}


def _np(x) -> np.ndarray:
    return x.detach().cpu().double().numpy() if hasattr(x, "detach") else np.asarray(x, float)


class EnvRecorder:
    """Buffers per-env steps and writes finished episodes to the store in chunks."""

    def __init__(self, store: EpisodeStore, env, seed=None, episodes_per_chunk: int = 16):
        self.store, self.env, self.per_chunk = store, env, int(episodes_per_chunk)
        self.base_info = describe_env(env, seed)
        n = env.num_envs
        self._priv = [[] for _ in range(n)]
        self._ctbr = [[] for _ in range(n)]
        self._expert = [[] for _ in range(n)]
        self._setpoint = [None] * n
        self.pending: list[EpisodeRecord] = []
        self.chunks_written: list = []

    def _setpoint_of(self, i: int):
        sp = getattr(self.env.task, "setpoint_m", None)
        return None if sp is None else _np(sp[i]).tolist()

    def begin(self, info: dict) -> None:
        """Start every env's episode from reset()'s info."""
        priv = _np(info["privileged"])
        for i in range(self.env.num_envs):
            self._priv[i], self._ctbr[i], self._expert[i] = [priv[i]], [], []
            self._setpoint[i] = self._setpoint_of(i)

    def _finish(self, i: int, terminated: bool, truncated: bool, **extra) -> None:
        """Queue env i's episode (states and commands already complete: one command per state)."""
        p = np.array(self._priv[i])
        ep_info = dict(self.base_info, terminated=terminated, truncated=truncated, env_index=i, **extra)
        if self._setpoint[i] is not None:
            ep_info["setpoint_m"] = self._setpoint[i]
        expert = np.array(self._expert[i]) if any(np.isfinite(e).all() for e in self._expert[i]) else None
        self.pending.append(EpisodeRecord(p[:, :17], np.array(self._ctbr[i]), p, ep_info, expert))

    def step(self, ctbr, terminated, truncated, info: dict, expert_ctbr=None) -> None:
        """Record the command just applied (and the demonstrator's label for the same state, physical CTBR, NaN
        rows = none) and the resulting states; finish episodes that ended."""
        ctbr, term, trunc = _np(ctbr), _np(terminated).astype(bool), _np(truncated).astype(bool)
        labels = _np(expert_ctbr) if expert_ctbr is not None else np.full(ctbr.shape, np.nan)
        priv = _np(info["privileged"])
        final = _np(info["final_privileged"]) if "final_privileged" in info else None
        for i in range(self.env.num_envs):
            self._ctbr[i].append(ctbr[i])
            self._expert[i].append(labels[i])
            if term[i] or trunc[i]:
                self._priv[i].append(final[i])
                self._ctbr[i].append(ctbr[i])
                self._expert[i].append(np.full(4, np.nan))  # the final state is never acted on
                self._finish(i, bool(term[i]), bool(trunc[i]))
                self._priv[i], self._ctbr[i], self._expert[i] = [priv[i]], [], []
                self._setpoint[i] = self._setpoint_of(i)
            else:
                self._priv[i].append(priv[i])
        if len(self.pending) >= self.per_chunk:
            self.flush()

    def close(self, min_steps: int = 2) -> None:
        """Store the episodes still running as truncated (info `interrupted`), then flush: nothing collected is lost."""
        for i in range(self.env.num_envs):
            if len(self._ctbr[i]) + 1 >= min_steps and self._ctbr[i]:
                self._ctbr[i].append(self._ctbr[i][-1])  # the last state is never acted on
                self._expert[i].append(np.full(4, np.nan))
                self._finish(i, False, True, interrupted=True)
            self._priv[i], self._ctbr[i], self._expert[i] = self._priv[i][-1:], [], []
        self.flush()

    def flush(self) -> None:
        """Write pending finished episodes as one chunk (nothing if none)."""
        if self.pending:
            self.chunks_written.append(self.store.write_chunk(self.pending))
            self.pending = []
