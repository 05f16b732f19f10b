"""Analytic periodic reference trajectories (world ENU): position, velocity, acceleration, jerk.

Circle: p = c + r (cos th, sin th, 0), th = w t, w = speed / r (constant speed).
Figure-8 (lemniscate of Gerono): p = c + (A sin th, B sin th cos th, 0) = c + (A sin th, B/2 sin 2th, 0),
th = w t; the speed peaks at the crossing point th = 0 with |v| = w sqrt(A^2 + B^2), and w is
chosen so that this peak equals speed_mps. Derivatives are exact, so a controller gets
consistent feed-forward terms. `dim` picks the axis of the xyz components in the outputs
(-1: t.shape + (3,); 0: (3,) + t.shape, the struct-of-arrays layout of the env's hot path).
Every method works on torch tensors (the simulator) and on numpy arrays or floats (the flight side, without torch).
"""
from __future__ import annotations

import math

import numpy as np


def array_module(x):
    """numpy for numpy arrays and Python or numpy scalars, else torch (x is then a tensor, so torch is loaded)."""
    if isinstance(x, np.ndarray) or np.isscalar(x):
        return np
    import torch

    return torch


class Trajectory:
    """A periodic trajectory; evaluate(t) returns (pos, vel, acc, jerk), each t.shape + (3,) by default."""

    period_s: float
    omega_radps: float

    def evaluate(self, t_s, dim: int = -1) -> tuple:
        """Position m, velocity m/s, acceleration m/s^2 and jerk m/s^3 at times t_s (any shape)."""
        raise NotImplementedError

    def _pos_sc(self, s, c, dim: int):
        """Position from sin/cos of the phase angle th."""
        raise NotImplementedError

    def _vel_sc(self, s, c, dim: int):
        """Velocity from sin/cos of the phase angle th."""
        raise NotImplementedError

    def position(self, t_s, dim: int = -1):
        """Position only, t.shape + (3,) m (xyz on axis dim; cheaper than evaluate)."""
        xp = array_module(t_s)
        th = self.omega_radps * t_s
        return self._pos_sc(xp.sin(th), xp.cos(th), dim)

    def lookahead(self, t_s, offsets_s) -> tuple:
        """Positions (K, 3, M) m at t_s (M,) + offsets_s (K,) and velocity (3, M) m/s at t_s.

        One sin/cos per env; the K shifted phases come from the angle-addition formulas.
        """
        xp = array_module(t_s)
        th = self.omega_radps * t_s
        s, c = xp.sin(th), xp.cos(th)
        shift = (self.omega_radps * offsets_s)[:, None]  # (K, 1) rad
        sa, ca = xp.sin(shift), xp.cos(shift)
        return self._pos_sc(s * ca + c * sa, c * ca - s * sa, 1), self._vel_sc(s, c, 0)

    def path(self, num: int = 400) -> np.ndarray:
        """One period sampled at num points, (num, 3) m."""
        return self.position(np.linspace(0.0, self.period_s, num))


class CircleTrajectory(Trajectory):
    """Horizontal circle of radius_m around center_m flown counter-clockwise at speed_mps."""

    def __init__(self, center_m, radius_m: float, speed_mps: float):
        if radius_m <= 0 or speed_mps <= 0:
            raise ValueError(f"circle needs radius_m > 0 and speed_mps > 0, got {radius_m}, {speed_mps}")
        self.center_m = tuple(float(x) for x in center_m)
        self.radius_m = float(radius_m)
        self.omega_radps = speed_mps / radius_m
        self.period_s = 2.0 * math.pi / self.omega_radps

    def _pos_sc(self, s, c, dim):
        cx, cy, cz = self.center_m
        xp = array_module(s)
        return xp.stack([self.radius_m * c + cx, self.radius_m * s + cy, xp.full_like(s, cz)], dim)

    def _vel_sc(self, s, c, dim):
        rw = self.radius_m * self.omega_radps
        xp = array_module(s)
        return xp.stack([-rw * s, rw * c, xp.zeros_like(s)], dim)

    def evaluate(self, t_s, dim=-1):
        w, r = self.omega_radps, self.radius_m
        xp = array_module(t_s)
        th = w * t_s
        c, s = xp.cos(th), xp.sin(th)
        z = xp.zeros_like(t_s)
        acc = xp.stack([-r * w * w * c, -r * w * w * s, z], dim)
        jerk = xp.stack([r * w**3 * s, -r * w**3 * c, z], dim)
        return self._pos_sc(s, c, dim), self._vel_sc(s, c, dim), acc, jerk


class Figure8Trajectory(Trajectory):
    """Horizontal figure-8 with half-widths (half_width_x_m, half_width_y_m), peak speed speed_mps."""

    def __init__(self, center_m, half_width_x_m: float, half_width_y_m: float, speed_mps: float):
        if min(half_width_x_m, half_width_y_m, speed_mps) <= 0:
            raise ValueError("figure-8 needs positive half widths and speed_mps, got "
                             f"{half_width_x_m}, {half_width_y_m}, {speed_mps}")
        self.center_m = tuple(float(x) for x in center_m)
        self.a_m = float(half_width_x_m)
        self.b_m = 2.0 * float(half_width_y_m)  # B/2 sin 2th spans +- half_width_y
        self.omega_radps = speed_mps / math.hypot(self.a_m, self.b_m)
        self.period_s = 2.0 * math.pi / self.omega_radps

    def _pos_sc(self, s, c, dim):
        cx, cy, cz = self.center_m
        xp = array_module(s)
        return xp.stack([self.a_m * s + cx, self.b_m * s * c + cy, xp.full_like(s, cz)], dim)

    def _vel_sc(self, s, c, dim):
        w = self.omega_radps
        xp = array_module(s)
        return xp.stack([self.a_m * w * c, self.b_m * w * (c * c - s * s), xp.zeros_like(s)], dim)

    def evaluate(self, t_s, dim=-1):
        w, a, b = self.omega_radps, self.a_m, self.b_m
        xp = array_module(t_s)
        th = w * t_s
        s1, c1 = xp.sin(th), xp.cos(th)
        s2 = xp.sin(2.0 * th)
        z = xp.zeros_like(t_s)
        acc = xp.stack([-a * w * w * s1, -2.0 * b * w * w * s2, z], dim)
        jerk = xp.stack([-a * w**3 * c1, -4.0 * b * w**3 * xp.cos(2.0 * th), z], dim)
        return self._pos_sc(s1, c1, dim), self._vel_sc(s1, c1, dim), acc, jerk
