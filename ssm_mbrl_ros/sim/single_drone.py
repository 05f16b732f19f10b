"""One quadrotor, fast: the QuadrotorSim dynamics (sim/dynamics.py) in plain Python float64 scalars.

Eager torch spends ~5 ms per 10 ms control step on one drone (dispatch overhead of hundreds of tiny
tensor ops); the stand-in flight controller (fcsim/) flies exactly one drone in real time
or lockstep, so it uses this module instead. Same model, same operation order as the batched
simulator: the PX4-like rate loop + quad-X mixer with saturation priorities (sim/rate_controller.py,
same MixerConstants), exact first-order motor lag, linear body drag plus rotor drag on the airspeed,
gyroscopic term with full inertia, wind, gravity, solid ground at z = 0, classical RK4 under a
zero-order-hold command. Nominal vehicle parameters only (no domain-randomisation scales).
test/sim/test_single_drone.py checks it against QuadrotorSim(float64) step by step.

State: numpy (17,) in the layout of sim/state.py (ENU/FLU, SI units); command: CTBR (4,)
[mass-normalised thrust m/s^2, body rates FLU rad/s], clamped to the vehicle's action spec.
"""
from __future__ import annotations

import math

import numpy as np

from .rate_controller import mixer_constants
from .state import GRAVITY_MPS2, STATE_DIM
from .vec3 import cross, rotate
from .vehicle import VehicleParams


def _rotate_inv(q, v):
    """Rotate v by the inverse of q, world -> body."""
    u = q[1:]
    t = [2.0 * c for c in cross(v, u)]
    tu = cross(t, u)
    return (v[0] + q[0] * t[0] + tu[0], v[1] + q[0] * t[1] + tu[1], v[2] + q[0] * t[2] + tu[2])


def _sym_matvec(m, v):
    xx, yy, zz, xy, xz, yz = m
    return (xx * v[0] + xy * v[1] + xz * v[2], xy * v[0] + yy * v[1] + yz * v[2], xz * v[0] + yz * v[1] + zz * v[2])


class SingleDroneSim:
    """One drone of `vehicle`, stepped one control period (physics_hz / control_hz RK4 substeps) per step()."""

    def __init__(self, vehicle: VehicleParams, *, physics_hz: float = 500.0, control_hz: float = 100.0):
        ratio = physics_hz / control_hz
        if abs(ratio - round(ratio)) > 1e-9 or round(ratio) < 1:
            raise ValueError(f"physics_hz must be a multiple of control_hz, got {physics_hz}, {control_hz}")
        self.vehicle = vehicle
        self.substeps = int(round(ratio))
        self.physics_dt_s = 1.0 / physics_hz
        self.control_dt_s = 1.0 / control_hz
        self.c = mixer_constants(vehicle)
        spec = vehicle.action_spec()
        self.ctbr_low, self.ctbr_high = spec.low.tolist(), spec.high.tolist()
        # the kernel constants of QuadrotorSim._update_params at nominal scales, as Python floats
        inertia = vehicle.inertia
        inertia_inv = np.linalg.inv(inertia)
        m = vehicle.mass_kg
        rp = vehicle.rotor_positions
        geometry = np.stack([rp[:, 1], -rp[:, 0], -np.asarray(vehicle.rotor_directions, float)])  # (3, 4)
        coeffs = np.array([vehicle.thrust_coeff, vehicle.thrust_coeff, vehicle.torque_coeff])
        alloc = (inertia_inv * coeffs[None, :]) @ geometry  # (3, 4): rotor speed^2 -> angular accel
        sym_idx = ((0, 0), (1, 1), (2, 2), (0, 1), (0, 2), (1, 2))
        inv_sym = 0.5 * (inertia_inv + inertia_inv.T)
        drag = np.asarray(vehicle.body_drag_npmps, float) / m
        tau, dt = vehicle.motor_time_constant_s, self.physics_dt_s
        self.p = dict(
            kf_per_m=vehicle.thrust_coeff / m, drag_x=float(drag[0]), drag_y=float(drag[1]), drag_z=float(drag[2]),
            rotor_drag_per_m=vehicle.rotor_drag_coeff / m, alloc=[float(x) for x in alloc.reshape(12)],
            inertia=tuple(float(inertia[i, j]) for i, j in sym_idx),
            inertia_inv=tuple(float(inv_sym[i, j]) for i, j in sym_idx),
            decay_half=math.exp(-0.5 * dt / tau), decay_full=math.exp(-dt / tau))
        self.hover_rotor_speed_radps = math.sqrt(m * GRAVITY_MPS2 / (4.0 * vehicle.thrust_coeff))
        self.s = [1.0 if i == 3 else 0.0 for i in range(STATE_DIM)]
        self.integral = [0.0, 0.0, 0.0]  # rad, rate-error integral
        self.omega_prev = [0.0, 0.0, 0.0]  # rad/s, D-term memory
        self.ground_contact = False
        self.invalid_action = False

    # ---- state ----
    @property
    def state(self) -> np.ndarray:
        """Current state (17,) float64 (a copy), layout of sim/state.py."""
        return np.array(self.s, dtype=np.float64)

    def hover_state(self, pos_m) -> np.ndarray:
        """State (17,) at pos_m (3,) m: level, at rest, rotors at hover speed."""
        s = np.zeros(STATE_DIM)
        s[0:3], s[3], s[13:17] = pos_m, 1.0, self.hover_rotor_speed_radps
        return s

    def reset(self, state) -> None:
        """Set the state (17,) and reset the rate-loop memory (integral 0, D memory = the state's rates)."""
        s = np.asarray(state, dtype=np.float64).reshape(-1)
        if s.shape != (STATE_DIM,):
            raise ValueError(f"state must be ({STATE_DIM},), got {s.shape}")
        self.s = [float(x) for x in s]
        self.integral = [0.0, 0.0, 0.0]
        self.omega_prev = self.s[10:13]
        self.ground_contact = self.invalid_action = False

    # ---- stepping ----
    def step(self, ctbr, wind_mps=None, force_n=None) -> np.ndarray:
        """Advance one control period under CTBR (4,) [m/s^2, rad/s FLU]; wind (3,) world m/s, force (3,) world N.

        A non-finite command is replaced by zeros and flagged in `invalid_action` (as QuadrotorSim does);
        commands are clamped to the action spec. Returns the new state (17,).
        """
        cmd = [float(x) for x in ctbr]
        if len(cmd) != 4:
            raise ValueError(f"ctbr must have 4 entries, got {len(cmd)}")
        self.invalid_action = not all(math.isfinite(x) for x in cmd)
        if self.invalid_action:
            cmd = [0.0, 0.0, 0.0, 0.0]
        cmd = [min(max(x, lo), hi) for x, lo, hi in zip(cmd, self.ctbr_low, self.ctbr_high)]
        ext = [0.0, 0.0, -GRAVITY_MPS2]
        if force_n is not None:
            ext = [e + float(f) / self.vehicle.mass_kg for e, f in zip(ext, force_n)]
        wind = None if wind_mps is None else [float(w) for w in wind_mps]
        contact = False
        for _ in range(self.substeps):
            contact |= self._substep(cmd, ext, wind, self.physics_dt_s)
        self.ground_contact = contact
        return self.state

    def _rate_pid(self, rate_sp, omega, dt):
        c, alpha, integ = self.c, [], []
        for i in range(3):
            err = rate_sp[i] - omega[i]
            it = min(max(self.integral[i] + err * dt, -c.i_limit[i]), c.i_limit[i])
            a = c.kp[i] * err + c.ki[i] * it - (c.kd[i] / dt) * (omega[i] - self.omega_prev[i])
            if c.kff[i] != 0.0:
                a = a + c.kff[i] * rate_sp[i]
            alpha.append(a)
            integ.append(it)
        return alpha, integ

    def _mix(self, thrust_mps2, alpha):
        """Rotor speed commands (4,) rad/s; same priorities as rate_controller.mix."""
        c, J = self.c, self.c.inertia
        tx, ty, tz = (J[i][0] * alpha[0] + J[i][1] * alpha[1] + J[i][2] * alpha[2] for i in range(3))
        f_rp = [c.col_roll[i] * tx + c.col_pitch[i] * ty for i in range(4)]
        span = c.force_max_n - c.force_min_n
        shrink = span / max(max(f_rp) - min(f_rp), span)
        f_rp = [f * shrink for f in f_rp]
        lo = max((c.force_min_n - f_rp[i]) * (1.0 / c.col_thrust[i]) for i in range(4))
        hi = min((c.force_max_n - f_rp[i]) * (1.0 / c.col_thrust[i]) for i in range(4))
        total = min(max(thrust_mps2 * c.mass_kg, lo), hi)
        f = [f_rp[i] + c.col_thrust[i] * total for i in range(4)]
        heads = []
        for i in range(4):
            cy = c.col_yaw[i]
            head = (c.force_max_n - f[i]) if cy >= 0 else (f[i] - c.force_min_n)
            head_neg = (f[i] - c.force_min_n) if cy >= 0 else (c.force_max_n - f[i])
            heads.append(max(head if tz >= 0 else head_neg, 0.0) * (1.0 / abs(cy)))
        tz_ok = min(abs(tz), min(heads))
        tz = tz_ok if tz >= 0 else -tz_ok
        inv_kf = 1.0 / c.thrust_coeff
        return [min(max(math.sqrt(min(max(f[i] + c.col_yaw[i] * tz, c.force_min_n), c.force_max_n) * inv_kf),
                        c.speed_min_radps), c.speed_max_radps) for i in range(4)]

    def _rotor_terms(self, rotor):
        p = self.p
        u = [r * r for r in rotor]
        thrust = p["kf_per_m"] * (u[0] + u[1] + u[2] + u[3])
        drag = p["rotor_drag_per_m"] * (rotor[0] + rotor[1] + rotor[2] + rotor[3])
        a = p["alloc"]
        alpha = tuple(a[4 * i] * u[0] + a[4 * i + 1] * u[1] + a[4 * i + 2] * u[2] + a[4 * i + 3] * u[3]
                      for i in range(3))
        return thrust, drag, alpha

    def _derivative(self, s, terms, ext, wind):
        p = self.p
        thrust, rotor_drag, alpha = terms
        q, v, w = s[3:7], s[7:10], s[10:13]
        v_air = v if wind is None else (v[0] - wind[0], v[1] - wind[1], v[2] - wind[2])
        vb = _rotate_inv(q, v_air)
        force_b = (-(p["drag_x"] + rotor_drag) * vb[0], -(p["drag_y"] + rotor_drag) * vb[1],
                   thrust - p["drag_z"] * vb[2])
        acc = rotate(q, force_b)
        gyro = _sym_matvec(p["inertia_inv"], cross(w, _sym_matvec(p["inertia"], w)))
        qw, qx, qy, qz = q
        wx, wy, wz = w
        return (v[0], v[1], v[2],
                -0.5 * (qx * wx + qy * wy + qz * wz), 0.5 * (qw * wx + qy * wz - qz * wy),
                0.5 * (qw * wy - qx * wz + qz * wx), 0.5 * (qw * wz + qx * wy - qy * wx),
                acc[0] + ext[0], acc[1] + ext[1], acc[2] + ext[2],
                alpha[0] - gyro[0], alpha[1] - gyro[1], alpha[2] - gyro[2])

    def _substep(self, cmd, ext, wind, dt) -> bool:
        """One RK4 substep (rate loop + mixer held over it); returns ground contact."""
        p = self.p
        body, rotor = self.s[:13], self.s[13:]
        omega = body[10:13]
        alpha_cmd, integ = self._rate_pid(cmd[1:4], omega, dt)
        rotor_cmd = self._mix(cmd[0], alpha_cmd)
        diff = [rotor[i] - rotor_cmd[i] for i in range(4)]
        rotor_mid = [rotor_cmd[i] + diff[i] * p["decay_half"] for i in range(4)]
        rotor_end = [rotor_cmd[i] + diff[i] * p["decay_full"] for i in range(4)]
        t_mid = self._rotor_terms(rotor_mid)
        h2, h6 = 0.5 * dt, dt / 6.0
        k1 = self._derivative(body, self._rotor_terms(rotor), ext, wind)
        k2 = self._derivative([b + h2 * k for b, k in zip(body, k1)], t_mid, ext, wind)
        k3 = self._derivative([b + h2 * k for b, k in zip(body, k2)], t_mid, ext, wind)
        k4 = self._derivative([b + dt * k for b, k in zip(body, k3)], self._rotor_terms(rotor_end), ext, wind)
        b = [x + h6 * (a + 2.0 * (b2 + b3) + b4) for x, a, b2, b3, b4 in zip(body, k1, k2, k3, k4)]
        inv_norm = 1.0 / math.sqrt(b[3] * b[3] + b[4] * b[4] + b[5] * b[5] + b[6] * b[6])
        on_ground = b[2] <= 0.0
        free = 0.0 if on_ground else 1.0
        self.s = [b[0], b[1], max(b[2], 0.0), b[3] * inv_norm, b[4] * inv_norm, b[5] * inv_norm, b[6] * inv_norm,
                  b[7] * free, b[8] * free, max(b[9], 0.0) if on_ground else b[9],
                  b[10] * free, b[11] * free, b[12] * free, *rotor_end]
        self.integral = integ
        self.omega_prev = omega
        return on_ground
