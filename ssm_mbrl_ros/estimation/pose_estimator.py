"""State from measured poses (motion capture) or flight-controller odometry: velocity estimate, covariance, staleness.

Pure numpy (no rclpy): the state bridge node (source=mocap|px4) feeds it messages and publishes what it returns.

- Position and linear velocity: a constant-velocity Kalman filter per axis on the pose stamps
  (irregular sample times are fine), so the velocity comes with its own variance.
- Body rates: the attitude change between consecutive poses, omega_body = 2 log(q_prev^-1 q) / dt,
  through a first-order low-pass (cutoff rate_cutoff_hz).
- Stamps that do not advance are dropped; a gap longer than reset_after_s restarts the filter.
State layout: the simulator's 17-vector (pos m ENU, quat wxyz body->world, world velocity m/s ENU,
body rates rad/s FLU, 4 rotor speeds = 0: not observed).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ssm_mbrl_ros.core.config import ConfigError, doc
from ssm_mbrl_ros.core.frames import quat_conjugate, quat_multiply, quat_normalize


@dataclass
class EstimatorConfig:
    """Noise model and timing of the pose -> odometry estimator."""

    pos_std_m: float = doc("measurement noise of a position sample (1 sigma, m)", default=0.0005)
    att_std_rad: float = doc("attitude noise reported in the pose covariance (1 sigma, rad)", default=0.01)
    accel_psd_m2ps3: float = doc("process noise: white-acceleration spectral density (m^2/s^3)", default=10.0)
    rate_cutoff_hz: float = doc("low-pass cutoff of the body-rate estimate (Hz)", default=20.0)
    rate_std_radps: float = doc("body-rate noise reported in the twist covariance (1 sigma, rad/s)", default=0.2)
    reset_after_s: float = doc("a gap between samples longer than this restarts the filter (s)", default=0.5)

    def validate(self, source: str = "estimator") -> None:
        """Every field is a positive number."""
        for name in ("pos_std_m", "att_std_rad", "accel_psd_m2ps3", "rate_cutoff_hz", "rate_std_radps",
                     "reset_after_s"):
            if not getattr(self, name) > 0:
                raise ConfigError(f"{source}.{name}: must be > 0, got {getattr(self, name)}")


def quat_log_rotvec(q: np.ndarray) -> np.ndarray:
    """Rotation vector (rad) of a unit quaternion wxyz, taking the short way round."""
    q = q if q[0] >= 0 else -q
    s = float(np.linalg.norm(q[1:4]))
    if s < 1e-12:
        return 2.0 * q[1:4]
    return q[1:4] * (2.0 * math.atan2(s, float(q[0])) / s)


class PoseVelocityEstimator:
    """Constant-velocity Kalman filter on positions + filtered attitude differences for body rates."""

    def __init__(self, cfg: EstimatorConfig | None = None):
        self.cfg = cfg or EstimatorConfig()
        self.cfg.validate()
        self.resets = -1  # reset() below counts itself; only later restarts count
        self.reset()

    def reset(self) -> None:
        """Forget everything: the next sample starts the filter (velocity 0, wide variance)."""
        self.t_s: float | None = None
        self.x = np.zeros((3, 2))  # per axis [position m, velocity m/s]
        self.P = np.zeros((3, 2, 2))
        self.quat = np.array([1.0, 0.0, 0.0, 0.0])
        self.omega = np.zeros(3)
        self.samples = 0
        self.resets += 1

    @property
    def ready(self) -> bool:
        """At least two samples since the last reset (velocity and rates are defined)."""
        return self.samples >= 2

    def update(self, t_s: float, pos_m, quat_wxyz) -> bool:
        """Fuse one pose sample stamped t_s (s); False when it was dropped (stamp not advancing)."""
        pos = np.asarray(pos_m, float)
        q = quat_normalize(np.asarray(quat_wxyz, float))
        if not (np.all(np.isfinite(pos)) and np.all(np.isfinite(q))):
            return False
        if self.t_s is not None and t_s - self.t_s > self.cfg.reset_after_s:
            self.reset()
        if self.t_s is None:
            self.t_s, self.quat, self.samples = t_s, q, 1
            self.x[:, 0], self.x[:, 1] = pos, 0.0
            r = self.cfg.pos_std_m ** 2
            self.P[:] = np.array([[r, 0.0], [0.0, 25.0]])  # velocity unknown: 5 m/s sigma
            return True
        dt = t_s - self.t_s
        if dt <= 0:
            return False
        self._kalman(dt, pos)
        dq = quat_multiply(quat_conjugate(self.quat), q)  # body-frame increment
        alpha = 1.0 - math.exp(-2.0 * math.pi * self.cfg.rate_cutoff_hz * dt)
        self.omega += alpha * (quat_log_rotvec(dq) / dt - self.omega)
        self.t_s, self.quat = t_s, q
        self.samples += 1
        return True

    def _kalman(self, dt: float, pos: np.ndarray) -> None:
        F = np.array([[1.0, dt], [0.0, 1.0]])
        qd = self.cfg.accel_psd_m2ps3
        Q = qd * np.array([[dt ** 3 / 3.0, dt ** 2 / 2.0], [dt ** 2 / 2.0, dt]])
        r = self.cfg.pos_std_m ** 2
        x = self.x @ F.T  # (3, 2): predict every axis at once
        P = F @ self.P @ F.T + Q
        S = P[:, 0, 0] + r  # (3,)
        K = P[:, :, 0] / S[:, None]  # (3, 2)
        self.x = x + K * (pos - x[:, 0])[:, None]
        self.P = P - K[:, :, None] * P[:, 0, :][:, None, :]

    def state17(self, out: np.ndarray | None = None) -> np.ndarray:
        """The estimate in the simulator's layout (see module doc)."""
        out = np.zeros(17) if out is None else out
        out[0:3] = self.x[:, 0]
        out[3:7] = self.quat
        out[7:10] = self.x[:, 1]
        out[10:13] = self.omega
        out[13:17] = 0.0
        return out

    def pose_covariance(self) -> np.ndarray:
        """6x6 row-major covariance of (x, y, z, roll, pitch, yaw) as nav_msgs/Odometry wants it."""
        c = np.zeros((6, 6))
        c[0:3, 0:3] = np.diag(self.P[:, 0, 0])
        c[3:6, 3:6] = np.eye(3) * self.cfg.att_std_rad ** 2
        return c

    def twist_covariance(self) -> np.ndarray:
        """6x6 covariance of (vx, vy, vz, wx, wy, wz); the velocity variance is per world axis (isotropic bound)."""
        c = np.zeros((6, 6))
        c[0:3, 0:3] = np.eye(3) * float(self.P[:, 1, 1].max())  # body-frame velocity: rotation-invariant bound
        c[3:6, 3:6] = np.eye(3) * self.cfg.rate_std_radps ** 2
        return c


class Staleness:
    """Fresh/stale flag of an input stream on a receiver's clock: stale when no sample for max_age_s."""

    def __init__(self, max_age_s: float):
        if not max_age_s > 0:
            raise ConfigError(f"stale_after_s: must be > 0, got {max_age_s}")
        self.max_age_s = max_age_s
        self.last_s: float | None = None
        self.stale = True
        self.transitions = 0

    def seen(self, now_s: float) -> bool:
        """A sample arrived at now_s; True when this ends a stale period (the flag changed)."""
        self.last_s = now_s
        return self._set(False)

    def check(self, now_s: float) -> bool:
        """Re-evaluate at now_s; True when the flag changed."""
        return self._set(self.last_s is None or now_s - self.last_s > self.max_age_s)

    def _set(self, stale: bool) -> bool:
        changed = stale != self.stale
        if changed:
            self.stale = stale
            self.transitions += 1
        return changed
