"""Geometric (Lee / Mellinger-style) position controller producing CTBR commands, batched in torch.

    a_des  = kp (p_ref - p) + kv (v_ref - v) + ki int(p_ref - p) + a_ref + g e_z      (world, m/s^2)
             (the integral runs only within i_zone_m of the reference and is clamped)
    thrust = a_des . b3                       (mass-normalised, along the current body z)
    R_des  = [b1_des, b3_des x b1_des ... ]   from b3_des = a_des / |a_des| and the reference yaw
    omega  = -k_att vee(R_des^T R - R^T R_des) / 2 + omega_ff(jerk, yaw rate)    (body FLU, rad/s)
Gains are in accelerations and rates, so they do not depend on the vehicle; the output is clamped
to the vehicle's action spec (thrust 0..max m/s^2, rates within max_rate_radps).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ..core.config import doc
from ..sim.state import GRAVITY_MPS2, POS, QUAT, VEL, quat_to_rotmat
from ..sim.vehicle import VehicleParams


@dataclass
class GeometricGains:
    """Gains of the geometric controller (vehicle independent: acceleration and rate units)."""

    kp_pos: tuple[float, float, float] = doc("position gain x, y, z, (m/s^2)/m", default=(9.0, 9.0, 12.0))
    kv_pos: tuple[float, float, float] = doc("velocity gain x, y, z, (m/s^2)/(m/s)", default=(5.0, 5.0, 6.0))
    ki_pos: tuple[float, float, float] = doc("position-error integral gain, (m/s^2)/(m s)", default=(2.0, 2.0, 4.0))
    i_limit_mps2: float = doc("clamp on the integral's acceleration contribution, m/s^2", default=3.0)
    # 0.5 m: a 20 % mass/thrust mismatch makes the PD loop droop ~0.16 m, so a smaller zone never
    # lets the integral start (measured: hover success 0.87 with 0.1 m vs 1.0 with 0.5 m under DR).
    i_zone_m: float = doc("integrate only while the position error is below this, m (no transient wind-up)",
                          default=0.5)
    i_zone_mps: float = doc("integrate only while the velocity error is below this, m/s", default=0.3)
    k_att: tuple[float, float, float] = doc("attitude error -> body rate gain roll, pitch, yaw, 1/s",
                                            default=(10.0, 10.0, 4.0))
    max_tilt_rad: float = doc("maximum commanded tilt of the thrust axis from vertical, rad", default=math.radians(60.0))
    min_thrust_mps2: float = doc("minimum vertical component of the desired acceleration, m/s^2", default=1.0)


class GeometricController:
    """Batched geometric position controller: reference position/velocity/acceleration/yaw -> CTBR (N, 4)."""

    def __init__(self, vehicle: VehicleParams, num_envs: int, gains: GeometricGains | None = None, *,
                 control_dt_s: float = 0.01, device="cpu", dtype=torch.float32):
        self.gains = gains or GeometricGains()
        self.num_envs = num_envs
        self.control_dt_s = control_dt_s
        self.device, self.dtype = torch.device(device), dtype
        kw = dict(device=self.device, dtype=dtype)
        spec = vehicle.action_spec()
        self.low = torch.as_tensor(spec.low, **kw)  # (4,) m/s^2, rad/s
        self.high = torch.as_tensor(spec.high, **kw)
        g = self.gains
        self._kp = torch.tensor(g.kp_pos, **kw)
        self._kv = torch.tensor(g.kv_pos, **kw)
        self._ki = torch.tensor(g.ki_pos, **kw)
        self._k_att = torch.tensor(g.k_att, **kw)
        self._i_max = g.i_limit_mps2 / self._ki.clamp(min=1e-9)  # (3,) m s
        self._ez = torch.tensor([0.0, 0.0, 1.0], **kw)
        self.integral = torch.zeros(num_envs, 3, **kw)  # m s

    def reset(self, env_ids=None) -> None:
        """Zero the position-error integral of env_ids (all if None)."""
        if env_ids is None:
            self.integral.zero_()
        else:
            self.integral[env_ids] = 0.0

    def compute(self, state: torch.Tensor, ref_pos: torch.Tensor, ref_vel: torch.Tensor | None = None,
                ref_acc: torch.Tensor | None = None, ref_yaw: torch.Tensor | None = None,
                ref_jerk: torch.Tensor | None = None, ref_yaw_rate: torch.Tensor | None = None) -> torch.Tensor:
        """CTBR (N, 4) [thrust m/s^2, p, q, r rad/s FLU] for states (N, 17) and references (N, 3) / (N,)."""
        assert state.shape == (self.num_envs, 17), f"state must be ({self.num_envs}, 17), got {tuple(state.shape)}"
        n = self.num_envs
        zeros3 = torch.zeros(n, 3, device=state.device, dtype=state.dtype)
        ref_vel = zeros3 if ref_vel is None else ref_vel
        ref_acc = zeros3 if ref_acc is None else ref_acc
        ref_yaw = torch.zeros(n, device=state.device, dtype=state.dtype) if ref_yaw is None else ref_yaw
        err_p = ref_pos - state[:, POS]
        err_v = ref_vel - state[:, VEL]
        # conditional integration: only near the reference and not mid-transient (no wind-up overshoot)
        near = ((err_p.norm(dim=-1, keepdim=True) < self.gains.i_zone_m)
                & (err_v.norm(dim=-1, keepdim=True) < self.gains.i_zone_mps)).to(err_p.dtype)
        self.integral = torch.maximum(torch.minimum(self.integral + near * err_p * self.control_dt_s, self._i_max),
                                      -self._i_max)
        acc = self._kp * err_p + self._kv * err_v + self._ki * self.integral + ref_acc
        acc = acc + GRAVITY_MPS2 * self._ez
        acc = self._limit_tilt(acc)
        rot = quat_to_rotmat(state[:, QUAT])  # (N, 3, 3) body -> world, columns b1 b2 b3
        b3 = rot[:, :, 2]
        thrust = (acc * b3).sum(-1)
        # desired attitude from the thrust direction and heading
        b3_d = acc / acc.norm(dim=-1, keepdim=True)
        b1_c = torch.stack([torch.cos(ref_yaw), torch.sin(ref_yaw), torch.zeros_like(ref_yaw)], -1)
        b2_d = torch.linalg.cross(b3_d, b1_c, dim=-1)
        b2_d = b2_d / b2_d.norm(dim=-1, keepdim=True).clamp(min=1e-6)
        b1_d = torch.linalg.cross(b2_d, b3_d, dim=-1)
        rot_d = torch.stack([b1_d, b2_d, b3_d], dim=-1)  # (N, 3, 3), columns
        e_mat = rot_d.transpose(1, 2) @ rot - rot.transpose(1, 2) @ rot_d
        e_rot = 0.5 * torch.stack([e_mat[:, 2, 1], e_mat[:, 0, 2], e_mat[:, 1, 0]], -1)  # vee map
        rates = -self._k_att * e_rot
        # feed-forward body rates of the desired attitude (Mellinger & Kumar 2011), expressed in body axes
        ff_w = torch.zeros_like(acc)
        if ref_jerk is not None:
            h = (ref_jerk - (ref_jerk * b3_d).sum(-1, keepdim=True) * b3_d) / acc.norm(dim=-1, keepdim=True)
            ff_w = ff_w - (h * b2_d).sum(-1, keepdim=True) * b1_d + (h * b1_d).sum(-1, keepdim=True) * b2_d
        if ref_yaw_rate is not None:
            ff_w = ff_w + ref_yaw_rate.unsqueeze(-1) * b3_d * b3_d[:, 2:3]
        rates = rates + (rot.transpose(1, 2) @ ff_w.unsqueeze(-1)).squeeze(-1)
        ctbr = torch.cat([thrust.unsqueeze(-1), rates], -1)
        return torch.minimum(torch.maximum(ctbr, self.low), self.high)

    def _limit_tilt(self, acc: torch.Tensor) -> torch.Tensor:
        """Keep the desired thrust axis within max_tilt_rad of vertical and its z part >= min_thrust."""
        az = acc[:, 2].clamp(min=self.gains.min_thrust_mps2)
        horiz = acc[:, :2]
        h_norm = horiz.norm(dim=-1)
        h_max = az * math.tan(self.gains.max_tilt_rad)
        scale = torch.where(h_norm > h_max, h_max / h_norm.clamp(min=1e-9), torch.ones_like(h_norm))
        return torch.cat([horiz * scale.unsqueeze(-1), az.unsqueeze(-1)], -1)
