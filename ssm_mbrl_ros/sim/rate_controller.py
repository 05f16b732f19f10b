"""PX4-like body-rate controller and quad-X mixer with saturation, batched in torch.

Runs at the physics rate inside the simulator. Everything is written per component on (N,)
tensors (struct of arrays: a body-rate vector is a tuple (wx, wy, wz)), with gains and mixer
entries as Python floats, so eager torch runs long vector ops and torch.compile fuses the whole
controller into the simulator kernel.

Rate loop (per axis, on angular acceleration):
    alpha = kp * e + ki * integral(e) - kd * d(omega)/dt + kff * omega_sp,   e = omega_sp - omega
with the integral clamped so |ki * integral| <= integrator_limit (anti-windup) and D on the
measured rate (no derivative kick). Torque = J_nominal @ alpha. Mixer: collective thrust
T = m_nominal * a_cmd and torques -> per-rotor thrusts with priorities roll/pitch > collective
thrust > yaw (air-mode-like: thrust is shifted to keep roll/pitch authority at low and high
throttle), then rotor speed commands sqrt(F / k_f) clamped to [rotor_speed_min, rotor_speed_max].
The controller uses NOMINAL vehicle parameters, so domain-randomised physics sees a model mismatch.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from .vehicle import VehicleParams

Vec3 = tuple  # (x, y, z) of (N,) tensors


@dataclass(frozen=True)
class MixerConstants:
    """Rate-loop gains, nominal inertia and inverse allocation as Python floats."""

    kp: tuple[float, float, float]  # (rad/s^2)/(rad/s)
    ki: tuple[float, float, float]  # (rad/s^2)/rad
    kd: tuple[float, float, float]  # (rad/s^2)/(rad/s^2)
    kff: tuple[float, float, float]  # (rad/s^2)/(rad/s)
    i_limit: tuple[float, float, float]  # rad: clamp on the integral itself (= limit / ki)
    inertia: tuple[tuple[float, ...], ...]  # nominal J (3x3), kg m^2
    col_thrust: tuple[float, ...]  # (4,) rotor thrust per N of collective thrust
    col_roll: tuple[float, ...]  # (4,) rotor thrust per N m roll torque
    col_pitch: tuple[float, ...]  # (4,) rotor thrust per N m pitch torque
    col_yaw: tuple[float, ...]  # (4,) rotor thrust per N m yaw torque
    mass_kg: float
    thrust_coeff: float  # N/(rad/s)^2
    force_min_n: float  # per-rotor thrust at idle, N
    force_max_n: float  # per-rotor thrust at max speed, N
    speed_min_radps: float
    speed_max_radps: float


def mixer_constants(vehicle: VehicleParams) -> MixerConstants:
    """Precompute gains, nominal inertia and the inverse allocation matrix (once per vehicle)."""
    g = vehicle.rate_gains
    ki = np.asarray(g.ki, dtype=np.float64)
    i_limit = np.where(ki > 0, np.asarray(g.integrator_limit_radps2) / np.maximum(ki, 1e-12), 0.0)
    mix_m = np.linalg.inv(vehicle.allocation_matrix())  # (4 rotors, 4 [T, tx, ty, tz])
    kf = vehicle.thrust_coeff

    def t(values):
        return tuple(float(v) for v in values)

    return MixerConstants(
        kp=t(g.kp), ki=t(g.ki), kd=t(g.kd), kff=t(g.kff), i_limit=t(i_limit),
        inertia=tuple(t(row) for row in vehicle.inertia),
        col_thrust=t(mix_m[:, 0]), col_roll=t(mix_m[:, 1]), col_pitch=t(mix_m[:, 2]), col_yaw=t(mix_m[:, 3]),
        mass_kg=float(vehicle.mass_kg), thrust_coeff=float(kf),
        force_min_n=float(kf * vehicle.rotor_speed_min_radps**2),
        force_max_n=float(kf * vehicle.rotor_speed_max_radps**2),
        speed_min_radps=float(vehicle.rotor_speed_min_radps),
        speed_max_radps=float(vehicle.rotor_speed_max_radps),
    )


def rate_pid(c: MixerConstants, rate_sp: Vec3, omega: Vec3, omega_prev: Vec3, integral: Vec3,
             dt_s: float) -> tuple[Vec3, Vec3]:
    """Angular-acceleration command (rad/s^2) and updated rate-error integral (rad), per axis."""
    alpha, new_int = [], []
    for i in range(3):
        err = rate_sp[i] - omega[i]
        integ = (integral[i] + err * dt_s).clamp(-c.i_limit[i], c.i_limit[i])
        a = c.kp[i] * err + c.ki[i] * integ - (c.kd[i] / dt_s) * (omega[i] - omega_prev[i])
        if c.kff[i] != 0.0:
            a = a + c.kff[i] * rate_sp[i]
        alpha.append(a)
        new_int.append(integ)
    return tuple(alpha), tuple(new_int)


def _max4(a):
    return torch.maximum(torch.maximum(a[0], a[1]), torch.maximum(a[2], a[3]))


def _min4(a):
    return torch.minimum(torch.minimum(a[0], a[1]), torch.minimum(a[2], a[3]))


def mix(c: MixerConstants, thrust_mps2: torch.Tensor, alpha: Vec3) -> tuple:
    """Rotor speed commands (4 tensors (N,), rad/s) from collective thrust (N,) m/s^2 and alpha (rad/s^2).

    Priorities: roll/pitch torque first (scaled down only if the rotor thrust range cannot hold
    it), then collective thrust (shifted as little as possible to fit), then yaw (scaled into the
    remaining headroom).
    """
    J = c.inertia
    tx, ty, tz = (J[i][0] * alpha[0] + J[i][1] * alpha[1] + J[i][2] * alpha[2] for i in range(3))  # N m
    f_rp = [c.col_roll[i] * tx + c.col_pitch[i] * ty for i in range(4)]  # N per rotor
    span = c.force_max_n - c.force_min_n
    shrink = span / (_max4(f_rp) - _min4(f_rp)).clamp(min=span)
    f_rp = [f * shrink for f in f_rp]
    # collective thrust (N): as close to the command as the roll/pitch demand allows
    lo = _max4([(c.force_min_n - f_rp[i]) * (1.0 / c.col_thrust[i]) for i in range(4)])
    hi = _min4([(c.force_max_n - f_rp[i]) * (1.0 / c.col_thrust[i]) for i in range(4)])
    total = torch.minimum(torch.maximum(thrust_mps2 * c.mass_kg, lo), hi)
    f = [f_rp[i] + c.col_thrust[i] * total for i in range(4)]
    # yaw: largest scale in [0, 1] that keeps every rotor within its thrust range
    heads = []
    for i in range(4):
        cy = c.col_yaw[i]
        head = (c.force_max_n - f[i]) if cy >= 0 else (f[i] - c.force_min_n)  # headroom for +tz
        head_neg = (f[i] - c.force_min_n) if cy >= 0 else (c.force_max_n - f[i])  # for -tz
        room = torch.where(tz >= 0, head, head_neg).clamp(min=0.0)
        heads.append(room * (1.0 / abs(cy)))
    tz_ok = torch.minimum(tz.abs(), _min4(heads))
    tz = torch.where(tz >= 0, tz_ok, -tz_ok)
    inv_kf = 1.0 / c.thrust_coeff
    return tuple(
        torch.sqrt((f[i] + c.col_yaw[i] * tz).clamp(c.force_min_n, c.force_max_n) * inv_kf)
        .clamp(c.speed_min_radps, c.speed_max_radps)
        for i in range(4)
    )


class RateController:
    """Batched PX4-like rate controller + mixer with per-env integrator state, (N, k) interface."""

    def __init__(self, vehicle: VehicleParams, num_envs: int, device=None, dtype=torch.float32):
        self.consts = mixer_constants(vehicle)
        self.integral = torch.zeros(3, num_envs, device=device, dtype=dtype)  # rad
        self.omega_prev = torch.zeros(3, num_envs, device=device, dtype=dtype)  # rad/s

    def reset(self, env_ids: torch.Tensor | None = None, omega: torch.Tensor | None = None) -> None:
        """Zero the integrators of env_ids (all if None); omega (M, 3) rad/s seeds the D-term memory."""
        idx = slice(None) if env_ids is None else env_ids
        self.integral[:, idx] = 0.0
        self.omega_prev[:, idx] = 0.0 if omega is None else omega.t().to(self.omega_prev)

    def compute(self, thrust_mps2: torch.Tensor, rate_sp: torch.Tensor, omega: torch.Tensor,
                dt_s: float) -> torch.Tensor:
        """Rotor speed commands (N, 4) rad/s; thrust (N,) m/s^2, rate_sp and omega (N, 3) rad/s FLU."""
        w = tuple(omega.t())
        alpha, integral = rate_pid(self.consts, tuple(rate_sp.t()), w, tuple(self.omega_prev), tuple(self.integral), dt_s)
        self.integral = torch.stack(integral)
        self.omega_prev = omega.t().clone()
        return torch.stack(mix(self.consts, thrust_mps2, alpha), dim=1)
