"""Gate racing: fly through a closed track of gates in order, as fast as possible.

Default track (5 gates, world ENU): a low straight (gates 0, 1), a climbing left turn (gate 2), a
high straight flown the other way (gates 3, 4), then a split-S-like descending half loop back to
gate 0. The drone starts start_offset_m before gate 0 on the reference path, at rest.

Gate passing: the segment between the drone's positions at consecutive control steps crosses the
target gate's plane in the direction of its normal, and the crossing point lies inside the
opening shrunk by drone_radius_m. Crossing any gate's plane within the frame (opening grown by
gate_frame_m + drone_radius_m, but not inside the shrunk opening) is a collision -> crash.
A lap completes on passing the last gate; lap time = time since the previous lap (or since the
episode start for the first lap).

Observation block: for the next two gates (target, then the one after): centre - position
(world ENU, m; measured position in the partial variant) and the gate normal (unit, world ENU).

Task reward per step (plus the common terms of tasks/base.py):
    progress_weight * (d_{t-1} - d_t)     d = distance to the target gate centre, m
  + gate_bonus                            on each gate passed
Success: at least success_laps laps completed in the episode.

Reference for classical controllers: the closed path of racing_track.py flown at ref_speed_mps,
ramped up from rest with time constant ref_ramp_s: s(t) = s0 + v (t - tau (1 - exp(-t / tau))).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ...core.config import ConfigError, doc, require_positive
from ...core.spaces import ObsField
from .base import RewardConfig, Task, TaskConfig, TaskStep, norm3, random_attitude
from .racing_track import ClosedPath, GateSet

DEFAULT_GATES = [
    [-1.0, -2.0, 1.2, 0.0],
    [4.0, -2.0, 1.5, 0.0],
    [7.0, 0.0, 2.5, 90.0],
    [3.0, 2.0, 3.8, 180.0],
    [-2.0, 2.0, 3.8, 180.0],
]


@dataclass
class RacingReward(RewardConfig):
    """Racing reward weights."""

    progress_weight: float = doc("reward per m of progress towards the target gate", default=1.0)
    gate_bonus: float = doc("reward per gate passed", default=5.0)


@dataclass
class RacingConfig(TaskConfig):
    """Gate racing task."""

    episode_length_s: float = doc("episode length before truncation, s", default=20.0)
    bounds_low_m: tuple[float, float, float] = doc("lower corner of the allowed box, world ENU, m",
                                                   default=(-12.0, -12.0, -1.0))
    bounds_high_m: tuple[float, float, float] = doc("upper corner of the allowed box, world ENU, m",
                                                    default=(12.0, 12.0, 8.0))
    max_tilt_deg: float = doc("terminate beyond this tilt, deg (180 = off: racing flies aggressive attitudes)",
                              default=180.0)
    gates: list[list[float]] = doc("gates in order, each [x m, y m, z m, yaw deg] (world ENU; yaw = flight direction)",
                                   default_factory=lambda: [list(g) for g in DEFAULT_GATES])
    gate_width_m: float = doc("inner opening width, m", default=1.5)
    gate_height_m: float = doc("inner opening height, m", default=1.5)
    gate_frame_m: float = doc("frame border width around the opening, m", default=0.2)
    drone_radius_m: float = doc("drone collision radius, m", default=0.15)
    approach_m: float = doc("reference path runs straight along the gate normal +- this, m", default=0.5)
    ref_speed_mps: float = doc("reference path speed, m/s", default=3.0)
    ref_ramp_s: float = doc("reference speed ramp-up time constant, s (0 = none)", default=1.0)
    start_offset_m: float = doc("start this far before gate 0 along the path, m", default=2.0)
    start_pos_std_m: float = doc("start position std per axis, m", default=0.1)
    start_tilt_deg: float = doc("max start tilt, deg", default=5.0)
    success_laps: int = doc("success: at least this many laps in the episode", default=1)
    reward: RacingReward = doc("reward weights", default_factory=RacingReward)

    def validate(self, source: str) -> None:
        """Common checks plus >= 2 gates of 4 numbers and positive sizes."""
        super().validate(source)
        if len(self.gates) < 2 or any(len(g) != 4 for g in self.gates):
            raise ConfigError(f"{source}.gates: need >= 2 gates of [x, y, z, yaw_deg], got {self.gates}")
        require_positive(self, source, "gate_width_m", "gate_height_m", "ref_speed_mps", "approach_m")
        if 2 * self.drone_radius_m >= min(self.gate_width_m, self.gate_height_m):
            raise ConfigError(f"{source}.drone_radius_m: the drone ({self.drone_radius_m} m) does not fit the gate")
        if self.gate_frame_m < 0 or self.ref_ramp_s < 0 or self.success_laps < 1:
            raise ConfigError(f"{source}: need gate_frame_m >= 0, ref_ramp_s >= 0, success_laps >= 1")


class RacingTask(Task):
    """Batched gate racing with per-env target gate, progress, lap counter and lap time."""

    name = "racing"

    def __init__(self, cfg: RacingConfig, num_envs: int, device="cpu", dtype=torch.float32):
        super().__init__(cfg, num_envs, device, dtype)
        kw = dict(device=self.device, dtype=dtype)
        self.gates = GateSet(cfg.gates, cfg.gate_width_m, cfg.gate_height_m, cfg.gate_frame_m, self.device, dtype)
        self.path = ClosedPath(self.gates, cfg.approach_m, self.device, dtype)
        self.start_s_m = float(self.path.gate_s_m[0] - cfg.start_offset_m)
        n, g = num_envs, self.gates.num
        self.target = torch.zeros(n, dtype=torch.long, device=self.device)  # index of the next gate
        self.laps = torch.zeros(n, dtype=torch.long, device=self.device)
        self.gates_passed = torch.zeros(n, dtype=torch.long, device=self.device)
        self.lap_time_s = torch.full((n,), float("nan"), **kw)  # last completed lap, nan if none
        self.lap_completed = torch.zeros(n, dtype=torch.bool, device=self.device)
        self.gate_passed = torch.zeros(n, dtype=torch.bool, device=self.device)
        self._lap_start_s = torch.zeros(n, **kw)
        self._prev = torch.zeros(3, g, n, **kw)  # plane coords (s, l, h) (G, N) at the previous step
        self._prev_dist = torch.zeros(n, **kw)
        half_in = torch.tensor([cfg.gate_width_m, cfg.gate_height_m], **kw) * 0.5 - cfg.drone_radius_m
        self._half_in, self._half_out = half_in, half_in + cfg.gate_frame_m + 2 * cfg.drone_radius_m

    def obs_fields(self) -> tuple[ObsField, ...]:
        """Relative position and normal of the next two gates."""
        src = "measured (noisy, delayed) position" if self.partial else "true position"
        return (
            ObsField("gate1_rel", 3, "m", "world ENU", f"target gate centre - {src}"),
            ObsField("gate1_normal", 3, "", "world ENU", "target gate normal (flight direction)"),
            ObsField("gate2_rel", 3, "m", "world ENU", f"gate after the target: centre - {src}"),
            ObsField("gate2_normal", 3, "", "world ENU", "gate after the target: normal"),
        )

    def _path_time(self, t_s: torch.Tensor):
        """Arc length s m, speed s' m/s and s'' m/s^2 of the reference at times t_s."""
        v, tau = self.cfg.ref_speed_mps, self.cfg.ref_ramp_s
        if tau <= 0:
            return self.start_s_m + v * t_s, torch.full_like(t_s, v), torch.zeros_like(t_s)
        e = torch.exp(-t_s / tau)
        return self.start_s_m + v * (t_s - tau * (1.0 - e)), v * (1.0 - e), (v / tau) * e

    def reset(self, env_ids, generator):
        """Start before gate 0 at rest; clear gate, lap and progress state."""
        c, n, kw = self.cfg, env_ids.shape[0], dict(device=self.device, dtype=self.dtype)
        self._reset_time(env_ids)
        s0 = torch.full((n,), self.start_s_m, **kw)
        pos, _, _, yaw = self.path.evaluate(s0, torch.zeros_like(s0), torch.zeros_like(s0))
        pos = pos + c.start_pos_std_m * torch.randn(n, 3, generator=generator, **kw)
        quat = random_attitude(n, c.start_tilt_deg, 0.0, generator, **kw, yaw_center_rad=yaw)
        self.target[env_ids] = 0
        self.laps[env_ids] = 0
        self.gates_passed[env_ids] = 0
        self.lap_time_s[env_ids] = float("nan")
        self.lap_completed[env_ids] = False
        self.gate_passed[env_ids] = False
        self._lap_start_s[env_ids] = 0.0
        self._prev[:, :, env_ids] = torch.stack(self.gates.plane_coords(pos.t()), 0)
        self._prev_dist[env_ids] = torch.linalg.vector_norm(self.gates.centers[0] - pos, dim=1)
        return pos, torch.zeros_like(pos), quat

    def observe(self, pos_m, env_ids=None):
        """(12, M): target gate rel + normal, next gate rel + normal."""
        target = self.target if env_ids is None else self.target[env_ids]
        following = torch.remainder(target + 1, self.gates.num)
        c, nrm = self.gates.centers_soa, self.gates.normals_soa
        return torch.cat([c[:, target] - pos_m, nrm[:, target], c[:, following] - pos_m, nrm[:, following]], 0)

    def step(self, x):
        """Gate passing/collision by plane crossing, progress + gate bonus, laps."""
        r = self.cfg.reward
        pos = x[0:3]
        s, lat, h = self.gates.plane_coords(pos)  # each (G, N)
        s0, l0, h0 = self._prev.unbind(0)
        crossed = (s0 < 0) != (s < 0)
        frac = s0 / torch.where(crossed, s0 - s, torch.ones_like(s))  # where the segment meets the plane
        lx = (l0 + frac * (lat - l0)).abs()
        hx = (h0 + frac * (h - h0)).abs()
        inside = crossed & (lx < self._half_in[0]) & (hx < self._half_in[1])
        in_frame = crossed & (lx < self._half_out[0]) & (hx < self._half_out[1]) & ~inside
        collision = in_frame.any(0)
        forward = s0 < 0
        passed = (inside & forward).gather(0, self.target.unsqueeze(0)).squeeze(0)
        self._prev[0], self._prev[1], self._prev[2] = s, lat, h

        centers = self.gates.centers_soa
        dist_old = norm3(centers[:, self.target] - pos)
        reward = r.progress_weight * (self._prev_dist - dist_old) + r.gate_bonus * passed.to(pos.dtype)
        last = passed & (self.target == self.gates.num - 1)
        self.target = torch.where(passed, torch.remainder(self.target + 1, self.gates.num), self.target)
        self.gates_passed += passed
        self._prev_dist = torch.where(
            passed, norm3(centers[:, self.target] - pos), dist_old)
        self.laps += last
        lap_time = self.time_s - self._lap_start_s
        self.lap_time_s = torch.where(last, lap_time, self.lap_time_s)
        self._lap_start_s = torch.where(last, self.time_s, self._lap_start_s)
        self.lap_completed, self.gate_passed = last, passed

        err = norm3(self.path.position_soa(self._path_time(self.time_s)[0]) - pos)
        return TaskStep(reward, err, collision)

    def success(self, truncated, pos_err_m, pos_rmse_m):
        """At least success_laps laps completed."""
        return self.laps >= self.cfg.success_laps

    def reference(self):
        """The closed path through the gates at the ramped reference speed."""
        s, sd, sdd = self._path_time(self.time_s)
        pos, vel, acc, yaw = self.path.evaluate(s, sd, sdd)
        return {"pos": pos, "vel": vel, "acc": acc, "yaw": yaw}

    def reference_path(self) -> np.ndarray:
        """The closed reference path through the gate centres (M, 3) m."""
        return self.path.points_np

    def step_info(self):
        """laps, gates_passed, gate_index (target), gate_passed / lap_completed (this step), lap_time_s (last lap, nan if none)."""
        return {"laps": self.laps, "gates_passed": self.gates_passed, "gate_index": self.target,
                "gate_passed": self.gate_passed, "lap_completed": self.lap_completed, "lap_time_s": self.lap_time_s}
