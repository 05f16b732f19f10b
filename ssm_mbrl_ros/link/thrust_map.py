"""Mass-normalised collective thrust (m/s^2) <-> PX4 normalised thrust [0, 1].

PX4's body-rate setpoint carries thrust as a fraction of full throttle. We use the linear map
through the hover point that PX4 itself assumes (MPC_THR_HOVER):

    thrust_norm = hover_throttle * thrust_mps2 / g,      thrust_mps2 = thrust_norm * g / hover_throttle

so `hover_throttle` is the normalised thrust that holds the vehicle's weight (PX4 parameter
MPC_THR_HOVER; typically 0.2-0.5). The map is exact at hover and first-order around it; with PX4's
THR_MDL_FAC = 0 (thrust linear in throttle) it holds over the whole range. Calibrate it from logged
hover data with `estimate_hover_throttle` before trusting aggressive thrust commands.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

GRAVITY_MPS2 = 9.81


@dataclass(frozen=True)
class ThrustMap:
    """Linear thrust map through hover: hover_throttle in (0, 1) is PX4's MPC_THR_HOVER."""

    hover_throttle: float

    def __post_init__(self):
        if not 0.0 < self.hover_throttle < 1.0:
            raise ValueError(f"hover_throttle must be in (0, 1), got {self.hover_throttle}")

    @classmethod
    def for_vehicle(cls, vehicle) -> "ThrustMap":
        """Map in which throttle 1 is the vehicle's maximum collective thrust (hover = g / max)."""
        return cls(GRAVITY_MPS2 / vehicle.max_collective_thrust_mps2)

    @property
    def max_thrust_mps2(self) -> float:
        """Mass-normalised thrust at throttle 1, m/s^2."""
        return GRAVITY_MPS2 / self.hover_throttle

    def to_normalized(self, thrust_mps2):
        """Thrust m/s^2 -> PX4 normalised thrust, clipped to [0, 1] (non-finite input -> 0)."""
        t = np.asarray(thrust_mps2, dtype=float) * (self.hover_throttle / GRAVITY_MPS2)
        t = np.where(np.isfinite(t), t, 0.0)
        out = np.clip(t, 0.0, 1.0)
        return float(out) if out.ndim == 0 else out

    def to_mps2(self, thrust_norm):
        """PX4 normalised thrust (clipped to [0, 1]) -> mass-normalised thrust m/s^2."""
        t = np.clip(np.asarray(thrust_norm, dtype=float), 0.0, 1.0) * (GRAVITY_MPS2 / self.hover_throttle)
        return float(t) if t.ndim == 0 else t


def estimate_hover_throttle(thrust_norm, acc_up_mps2, tilt_cos=None) -> float:
    """Hover throttle from logged flight data by least squares.

    thrust_norm (N,): commanded PX4 normalised thrust; acc_up_mps2 (N,): measured world vertical
    (up) acceleration, m/s^2, at the same instants (e.g. differentiated velocity); tilt_cos (N,):
    cosine of the tilt (1 = level; default level). The thrust acceleration along body z is
    (acc_up + g) / tilt_cos = thrust_norm * g / hover_throttle; fit k = g / hover_throttle.
    """
    x = np.asarray(thrust_norm, dtype=float).ravel()
    a = np.asarray(acc_up_mps2, dtype=float).ravel()
    c = np.ones_like(x) if tilt_cos is None else np.asarray(tilt_cos, dtype=float).ravel()
    if not (x.shape == a.shape == c.shape):
        raise ValueError(f"thrust_norm, acc_up_mps2, tilt_cos must have the same length: {x.shape} {a.shape} {c.shape}")
    ok = np.isfinite(x) & np.isfinite(a) & np.isfinite(c) & (c > 0.5) & (x > 0.0)
    if ok.sum() < 10:
        raise ValueError(f"need at least 10 valid hover samples, got {int(ok.sum())}")
    y = (a[ok] + GRAVITY_MPS2) / c[ok]
    k = float(np.dot(x[ok], y) / np.dot(x[ok], x[ok]))
    return GRAVITY_MPS2 / k


def hover_throttle_from_log(thrust_map: ThrustMap, t_s, thrust_mps2, vel_enu_mps, quat_wxyz,
                            after_s: float = 0.0) -> float:
    """Calibrate the hover throttle from a flight log: the thrust commands as sent (m/s^2 through
    `thrust_map`), ENU velocities (differentiated to vertical acceleration) and attitudes."""
    t = np.asarray(t_s, dtype=float)
    sel = t >= t[0] + after_s
    thrust_norm = thrust_map.to_normalized(np.asarray(thrust_mps2, dtype=float))
    acc_up = np.gradient(np.asarray(vel_enu_mps, dtype=float)[:, 2], t)
    q = np.asarray(quat_wxyz, dtype=float)
    tilt_cos = 1.0 - 2.0 * (q[:, 1] ** 2 + q[:, 2] ** 2)
    return estimate_hover_throttle(thrust_norm[sel], acc_up[sel], tilt_cos[sel])
