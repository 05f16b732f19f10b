"""Trajectory tracking: follow a circle or figure-8 (trajectories.py) at a configurable speed.

Reset: a random phase (uniform over one period) per env; the drone starts at the reference
point plus N(0, start_pos_std_m^2) per axis, with the reference velocity (start_with_ref_velocity)
or at rest, and a small random tilt/yaw.

Observation block:
    ref_pos_rel (3 K): p_ref(tau + k * ref_spacing_s) - position, k = 0..K-1 (world ENU, m;
                       measured position in the partial variant), tau = time + phase
    ref_vel (3):       reference velocity now (world ENU, m/s)

Task reward per step (plus the common terms of tasks/base.py):
    track_weight * exp(-|e| / track_scale_m)    e = p_ref(tau) - true position, m
  + precision_weight * exp(-|e| / precision_scale_m)   a sharp peak on the reference (0 by default)
  - vel_err_weight * |v_ref - v|^2               (m/s)^2
Success: the episode reached its full length with position RMSE below success_rmse_m.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch

from ...core.config import ConfigError, doc, require_positive
from ...core.spaces import ObsField
from .base import RewardConfig, Task, TaskConfig, TaskStep, norm3, precision_reward, random_attitude
from .trajectories import CircleTrajectory, Figure8Trajectory, Trajectory


@dataclass
class TrackingReward(RewardConfig):
    """Tracking reward weights."""

    track_weight: float = doc("weight of exp(-tracking error / track_scale_m)", default=1.0)
    track_scale_m: float = doc("distance scale of the tracking reward, m", default=0.5)
    vel_err_weight: float = doc("penalty per (m/s)^2 of velocity error", default=0.01)
    precision_weight: float = doc("weight of exp(-tracking error / precision_scale_m): a sharp peak that pays for "
                                  "centimetres rather than decimetres (as hover's precision term)", default=0.0)
    precision_scale_m: float = doc("distance scale of the precision term, m", default=0.1)


@dataclass
class TrackingConfig(TaskConfig):
    """Tracking task: follow an analytic circle or figure-8."""

    trajectory: Literal["circle", "figure8"] = doc("reference shape", default="figure8")
    center_m: tuple[float, float, float] = doc("trajectory centre, world ENU, m", default=(0.0, 0.0, 2.0))
    radius_m: float = doc("circle radius, m", default=2.0)
    half_width_x_m: float = doc("figure-8 half extent along x, m", default=3.0)
    half_width_y_m: float = doc("figure-8 half extent along y, m", default=1.5)
    speed_mps: float = doc("circle speed / figure-8 peak speed, m/s", default=2.0)
    num_ref_points: int = doc("K reference points in the observation", default=5)
    ref_spacing_s: float = doc("time between observed reference points, s", default=0.1)
    start_pos_std_m: float = doc("start position std around the reference, m", default=0.1)
    start_with_ref_velocity: bool = doc("start with the reference velocity (else at rest)", default=True)
    start_tilt_deg: float = doc("max start tilt, deg", default=5.0)
    start_yaw_range_deg: float = doc("start yaw uniform in +- this, deg", default=10.0)
    success_rmse_m: float = doc("success: full episode with position RMSE below this, m", default=0.3)
    reward: TrackingReward = doc("reward weights", default_factory=TrackingReward)

    def validate(self, source: str) -> None:
        """Common checks plus positive sizes, speed, spacing and K >= 1."""
        super().validate(source)
        require_positive(self, source, "radius_m", "half_width_x_m", "half_width_y_m", "speed_mps",
                         "ref_spacing_s", "success_rmse_m", "reward.track_scale_m",
                         "reward.precision_scale_m")
        if self.num_ref_points < 1:
            raise ConfigError(f"{source}.num_ref_points: must be >= 1, got {self.num_ref_points}")

    def make_trajectory(self) -> Trajectory:
        """The configured analytic trajectory."""
        if self.trajectory == "circle":
            return CircleTrajectory(self.center_m, self.radius_m, self.speed_mps)
        return Figure8Trajectory(self.center_m, self.half_width_x_m, self.half_width_y_m, self.speed_mps)


class TrackingTask(Task):
    """Batched tracking of one analytic trajectory with a random phase per env."""

    name = "tracking"

    def __init__(self, cfg: TrackingConfig, num_envs: int, device="cpu", dtype=torch.float32):
        super().__init__(cfg, num_envs, device, dtype)
        self.name = cfg.trajectory
        self.trajectory = cfg.make_trajectory()
        self.phase_s = torch.zeros(num_envs, device=self.device, dtype=dtype)
        self._offsets_s = torch.arange(cfg.num_ref_points, device=self.device, dtype=dtype) * cfg.ref_spacing_s
        self._zeros1 = torch.zeros(num_envs, device=self.device, dtype=dtype)

    def obs_fields(self) -> tuple[ObsField, ...]:
        """ref_pos_rel (3K) and ref_vel (3)."""
        c = self.cfg
        src = "measured (noisy, delayed) position" if self.partial else "true position"
        return (
            ObsField("ref_pos_rel", 3 * c.num_ref_points, "m", "world ENU",
                     f"reference at now + k*{c.ref_spacing_s}s (k=0..{c.num_ref_points - 1}) - {src}, k-major"),
            ObsField("ref_vel", 3, "m/s", "world ENU", "reference velocity now"),
        )

    def tau_s(self, env_ids=None) -> torch.Tensor:
        """Trajectory time (elapsed + phase) of all envs or env_ids, s."""
        if env_ids is None:
            return self.time_s + self.phase_s
        return self.time_s[env_ids] + self.phase_s[env_ids]

    def reset(self, env_ids, generator):
        """Random phase; start near the reference point with its velocity."""
        c, n, kw = self.cfg, env_ids.shape[0], dict(device=self.device, dtype=self.dtype)
        self._reset_time(env_ids)
        phase = self.trajectory.period_s * torch.rand(n, generator=generator, **kw)
        self.phase_s[env_ids] = phase
        pos, vel, _, _ = self.trajectory.evaluate(phase)
        pos = pos + c.start_pos_std_m * torch.randn(n, 3, generator=generator, **kw)
        vel = vel if c.start_with_ref_velocity else torch.zeros_like(vel)
        quat = random_attitude(n, c.start_tilt_deg, math.radians(c.start_yaw_range_deg), generator, **kw)
        return pos, vel, quat

    def observe(self, pos_m, env_ids=None):
        """K relative reference points then the reference velocity, (3K + 3, M)."""
        points, vel = self.trajectory.lookahead(self.tau_s(env_ids), self._offsets_s)  # (K, 3, M), (3, M)
        rel = (points - pos_m).flatten(0, 1)  # (K, 3, M) -> (3K, M), k-major
        return torch.cat([rel, vel], 0)

    def step(self, x):
        """exp tracking reward minus velocity error penalty."""
        r = self.cfg.reward
        tau = self.time_s + self.phase_s
        pos = self.trajectory.position(tau, dim=0)
        err = norm3(pos - x[0:3])
        reward = r.track_weight * torch.exp(err * (-1.0 / r.track_scale_m)) + precision_reward(r, err)
        if r.vel_err_weight:
            dv = self.trajectory.evaluate(tau, dim=0)[1] - x[7:10]
            reward = reward - r.vel_err_weight * (dv * dv).sum(0)
        return TaskStep(reward, err, None)

    def success(self, truncated, pos_err_m, pos_rmse_m):
        """Full-length episode with RMSE below success_rmse_m."""
        return truncated & (pos_rmse_m < self.cfg.success_rmse_m)

    def reference(self):
        """Analytic pos/vel/acc/jerk (N, 3) at the current trajectory time, zero yaw."""
        pos, vel, acc, jerk = self.trajectory.evaluate(self.time_s + self.phase_s)
        return {"pos": pos, "vel": vel, "acc": acc, "jerk": jerk, "yaw": self._zeros1}

    def reference_path(self) -> np.ndarray:
        """One period of the trajectory (400, 3) m."""
        return self.trajectory.path(400)
