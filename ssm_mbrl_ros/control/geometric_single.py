"""The geometric controller (control/geometric.py) for one drone in numpy float64, without torch dispatch.

Same law, gains and clamps as GeometricController (conditional position integral, tilt limit,
thrust along the current body z, attitude error on SO(3) -> body rates); the reference is
position, velocity, acceleration and yaw (no jerk / yaw-rate feed-forward). Used where one drone
is controlled every 10 ms in a Python loop: fc-sim's HOLD/LAND modes and the link's GeometricPolicy
(~0.05 ms per call here instead of ~0.5 ms for the batched torch controller at N = 1).
test/control/test_geometric_single.py checks it against the torch controller.
"""
from __future__ import annotations

import math

import numpy as np

from ..core.frames import quat_to_rotmat
from ..sim.state import GRAVITY_MPS2
from ..sim.vehicle import VehicleParams
from .geometric import GeometricGains


class SingleGeometricController:
    """Geometric position controller for one drone: state (17,) + reference -> CTBR (4,) [m/s^2, rad/s FLU]."""

    def __init__(self, vehicle: VehicleParams, gains: GeometricGains | None = None, *, control_dt_s: float = 0.01):
        self.gains = g = gains or GeometricGains()
        self.control_dt_s = control_dt_s
        spec = vehicle.action_spec()
        self.low, self.high = spec.low, spec.high  # (4,) m/s^2, rad/s
        self._kp, self._kv, self._ki = (np.asarray(x, float) for x in (g.kp_pos, g.kv_pos, g.ki_pos))
        self._k_att = np.asarray(g.k_att, float)
        self._i_max = g.i_limit_mps2 / np.maximum(self._ki, 1e-9)  # (3,) m s
        self._tan_tilt = math.tan(g.max_tilt_rad)
        self.integral = np.zeros(3)  # m s

    def reset(self) -> None:
        """Zero the position-error integral."""
        self.integral[:] = 0.0

    def compute(self, state, ref_pos, ref_vel=None, ref_acc=None, ref_yaw: float = 0.0) -> np.ndarray:
        """CTBR (4,) for state (17,) (sim/state.py layout) and references (3,) ENU m, m/s, m/s^2, yaw rad."""
        s = np.asarray(state, dtype=float)
        g = self.gains
        err_p = np.asarray(ref_pos, float) - s[0:3]
        err_v = (np.zeros(3) if ref_vel is None else np.asarray(ref_vel, float)) - s[7:10]
        near = float(np.linalg.norm(err_p) < g.i_zone_m and np.linalg.norm(err_v) < g.i_zone_mps)
        self.integral = np.maximum(np.minimum(self.integral + near * err_p * self.control_dt_s, self._i_max),
                                   -self._i_max)
        acc = self._kp * err_p + self._kv * err_v + self._ki * self.integral
        if ref_acc is not None:
            acc = acc + np.asarray(ref_acc, float)
        acc = acc + np.array([0.0, 0.0, GRAVITY_MPS2])
        # tilt limit: vertical part >= min_thrust, horizontal part within max_tilt of vertical
        az = max(acc[2], g.min_thrust_mps2)
        h_norm = math.hypot(acc[0], acc[1])
        h_max = az * self._tan_tilt
        scale = h_max / max(h_norm, 1e-9) if h_norm > h_max else 1.0
        acc = np.array([acc[0] * scale, acc[1] * scale, az])
        rot = quat_to_rotmat(s[3:7])  # body -> world, columns b1 b2 b3
        thrust = float(acc @ rot[:, 2])
        b3_d = acc / np.linalg.norm(acc)
        b1_c = np.array([math.cos(ref_yaw), math.sin(ref_yaw), 0.0])
        b2_d = np.cross(b3_d, b1_c)
        b2_d = b2_d / max(np.linalg.norm(b2_d), 1e-6)
        b1_d = np.cross(b2_d, b3_d)
        rot_d = np.stack([b1_d, b2_d, b3_d], axis=-1)
        e_mat = rot_d.T @ rot - rot.T @ rot_d
        e_rot = 0.5 * np.array([e_mat[2, 1], e_mat[0, 2], e_mat[1, 0]])  # vee map
        ctbr = np.concatenate([[thrust], -self._k_att * e_rot])
        return np.minimum(np.maximum(ctbr, self.low), self.high)
