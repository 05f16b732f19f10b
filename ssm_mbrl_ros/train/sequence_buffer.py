"""In-memory sequence replay for online training: one ring per simulated env, (B, T) window sampling.

Each row is one observation step in the world-model batch convention (world_models/base.py):
obs_t, the action taken after it, reward_t and cont_t arriving with it, is_first_t, and the
privileged vector. An episode end adds the final observation as its own row (cont 0 when it
terminated), so the model sees crashes; the next row of that env starts the new episode with
is_first. Windows never cross a ring's write position; they may cross episode starts (is_first
marks them, as in DreamerV3). `state_dict`/`load_state_dict` save and restore the whole buffer
(resume after an interruption loses no experience).
"""
from __future__ import annotations

import numpy as np

FIELDS = ("obs", "action", "reward", "cont", "is_first", "privileged", "expert", "expert_action")


class SequenceBuffer:
    """Per-env ring buffers of capacity `capacity_steps // num_envs` rows each."""

    def __init__(self, num_envs: int, obs_dim: int, action_dim: int, priv_dim: int, capacity_steps: int,
                 seed: int = 0):
        self.num_envs = int(num_envs)
        self.rows = max(2, int(capacity_steps) // self.num_envs)
        n, c = self.num_envs, self.rows
        self.data = {
            "obs": np.zeros((n, c, obs_dim), np.float32), "action": np.zeros((n, c, action_dim), np.float32),
            "reward": np.zeros((n, c), np.float32), "cont": np.ones((n, c), np.float32),
            "is_first": np.zeros((n, c), bool), "privileged": np.zeros((n, c, max(priv_dim, 1)), np.float32),
            "expert": np.zeros((n, c), bool),  # expert_action holds a demonstrator's label for this row
            "expert_action": np.zeros((n, c, action_dim), np.float32),  # what the demonstrator would do here
        }
        self.ptr = np.zeros(n, np.int64)  # rows ever written per env (write position = ptr % rows)
        self.rng = np.random.default_rng(seed)

    def add(self, env_ids: np.ndarray, **row) -> None:
        """Write one row for each env in env_ids; each field is (len(env_ids), ...)."""
        env_ids = np.asarray(env_ids, np.int64)
        if env_ids.size == 0:
            return
        pos = self.ptr[env_ids] % self.rows
        for key in FIELDS:
            self.data[key][env_ids, pos] = row[key] if key in row else (True if key == "cont" else 0)
        self.ptr[env_ids] += 1

    @property
    def num_steps(self) -> int:
        """Rows currently held (all envs)."""
        return int(np.minimum(self.ptr, self.rows).sum())

    def sample(self, batch: int, length: int) -> dict[str, np.ndarray]:
        """B windows of T consecutive rows -> dict of (B, T, ...) arrays; is_first[:, 0] is set."""
        filled = np.minimum(self.ptr, self.rows)
        starts_per_env = np.maximum(filled - length + 1, 0)
        total = starts_per_env.sum()
        if total <= 0:
            raise ValueError(f"replay holds no window of {length} steps yet ({self.num_steps} rows in "
                             f"{self.num_envs} envs)")
        flat = self.rng.integers(0, total, size=batch)
        env = np.searchsorted(np.cumsum(starts_per_env), flat, side="right")
        offset = flat - (np.cumsum(starts_per_env) - starts_per_env)[env]
        oldest = np.where(self.ptr[env] > self.rows, self.ptr[env] % self.rows, 0)  # oldest row's slot
        idx = (oldest[:, None] + offset[:, None] + np.arange(length)[None, :]) % self.rows  # (B, T)
        out = {k: v[env[:, None], idx] for k, v in self.data.items()}
        out["is_first"][:, 0] = True
        return out

    def state_dict(self) -> dict:
        """Arrays to save (only the filled part when no ring has wrapped yet)."""
        used = int(min(self.ptr.max(initial=0), self.rows))
        return {"ptr": self.ptr.copy(), "rows": self.rows,
                **{f"data.{k}": v[:, :used].copy() for k, v in self.data.items()}}

    def load_state_dict(self, state: dict) -> None:
        """Restore from state_dict(); the env count and row widths must match."""
        if int(state["rows"]) != self.rows or len(state["ptr"]) != self.num_envs:
            raise ValueError(f"replay snapshot has {len(state['ptr'])} envs x {int(state['rows'])} rows, this run "
                             f"has {self.num_envs} x {self.rows} (num_envs / replay_capacity changed)")
        for k, v in self.data.items():
            if f"data.{k}" not in state:
                raise ValueError(f"replay snapshot lacks field {k}")
            saved = np.asarray(state[f"data.{k}"])
            if saved.shape[2:] != v.shape[2:]:
                raise ValueError(f"replay snapshot field {k} has shape {saved.shape[2:]} per row, expected "
                                 f"{v.shape[2:]}")
            v[:, :saved.shape[1]] = saved
        self.ptr[:] = np.asarray(state["ptr"], np.int64)
