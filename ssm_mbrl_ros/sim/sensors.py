"""Partial-observation sensor model: noisy, delayed position (m, world ENU); no velocity.

Each control step the true position plus Gaussian noise (pos_noise_std_m, per axis) is written
into a per-env ring buffer of pos_delay_steps + 1 slots; the observation reads the slot written
pos_delay_steps control steps ago, so with zero noise the measurement at step k equals the true
position at step k - pos_delay_steps. At reset every slot of that env is filled with one noisy
sample of its start position. All envs step together, so one shared write index suffices.
Positions in the hot path are struct-of-arrays (3, N).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ..core.config import ConfigError, doc


@dataclass
class SensorConfig:
    """Noise and latency of the position measurement used by partially observable tasks."""

    pos_noise_std_m: float = doc("position measurement noise std per axis, m", default=0.02)
    pos_delay_steps: int = doc("position measurement latency, control steps (0 = current)", default=2)

    def validate(self, source: str) -> None:
        """Noise >= 0 and finite; delay >= 0."""
        if not (math.isfinite(self.pos_noise_std_m) and self.pos_noise_std_m >= 0.0):
            raise ConfigError(f"{source}.pos_noise_std_m: must be finite and >= 0, got {self.pos_noise_std_m}")
        if self.pos_delay_steps < 0:
            raise ConfigError(f"{source}.pos_delay_steps: must be >= 0, got {self.pos_delay_steps}")


class DelayedPositionSensor:
    """Ring buffer (delay + 1, 3, N) of noisy positions; `read` returns the delayed measurement, m."""

    def __init__(self, cfg: SensorConfig, num_envs: int, device, dtype):
        self.cfg = cfg
        self.delay = cfg.pos_delay_steps
        self._buf = torch.zeros(self.delay + 1, 3, num_envs, device=device, dtype=dtype)
        self._noise = torch.zeros(3, num_envs, device=device, dtype=dtype)
        self._head = 0  # slot written last

    def _read_slot(self) -> int:
        return (self._head - self.delay) % (self.delay + 1)

    def reset(self, env_ids: torch.Tensor, pos: torch.Tensor, generator: torch.Generator) -> None:
        """Fill all slots of env_ids with one noisy sample of their positions pos (n, 3) m (row-major)."""
        sample = pos
        if self.cfg.pos_noise_std_m > 0:
            noise = torch.randn(pos.shape, generator=generator, device=pos.device, dtype=pos.dtype)
            sample = pos + self.cfg.pos_noise_std_m * noise
        self._buf[:, :, env_ids] = sample.t().unsqueeze(0)

    def push(self, pos: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Record the true positions (3, N) m of this step; returns the delayed measurement (3, N)."""
        self._head = (self._head + 1) % (self.delay + 1)
        slot = self._buf[self._head]
        if self.cfg.pos_noise_std_m > 0:
            self._noise.normal_(generator=generator)
            torch.add(pos, self._noise, alpha=self.cfg.pos_noise_std_m, out=slot)
        else:
            slot.copy_(pos)
        return self._buf[self._read_slot()]

    def read(self, env_ids: torch.Tensor | None = None) -> torch.Tensor:
        """The delayed noisy position (3, N), or (3, n) for env_ids, m."""
        out = self._buf[self._read_slot()]
        return out if env_ids is None else out[:, env_ids]
