"""Batched quadrotor rigid-body simulator (torch, RK4) with motors, drag, rate loop and ground.

One `step(ctbr)` advances one control period (physics_hz / control_hz RK4 substeps). Per
substep: the PX4-like rate controller + mixer (rate_controller.py) turns the held CTBR command
into rotor speed commands (zero-order hold over the substep); rotor speeds follow a first-order
lag, integrated exactly; the rigid body (position, quaternion, velocity, body rates) is
integrated with classical RK4 using:
    m dv/dt    = R(q) F_B - m g e_z + f_ext,   F_B = (0, 0, k_f sum w_i^2) - D(w) v_B^air
    J dw/dt    = tau(w_i^2) - w x J w,           tau = k_f (sum y_i w_i^2, -sum x_i w_i^2), -k_q sum s_i w_i^2
    dq/dt      = q (x) (0, w) / 2
D(w) = diag(d_x + k_rd sum w_i, d_y + k_rd sum w_i, d_z): linear body drag plus rotor drag that
grows with rotor speed and acts on the in-plane airspeed v_B^air = R^T (v - wind).
Ground: z = 0 is solid; touching it sets `ground_contact` for that env during the step.

Internally the state is struct-of-arrays (17 tensors of shape (N,)) so every op is a long vector op;
the public API is the (N, 17) layout of sim/state.py.

Speed: `compile=True` compiles one substep with inductor into a single fused CPU loop (the first
step per batch size takes ~20-45 s to compile; results match eager to float32 round-off). See
bench/physics.py; on a busy 2-core machine one torch thread is fastest (OpenMP barriers stall).
"""
from __future__ import annotations

import logging

import torch

from .rate_controller import MixerConstants, mix, mixer_constants, rate_pid
from .state import GRAVITY_MPS2, STATE_DIM
from .vehicle import VehicleParams
from .vec3 import cross, rotate


def _rotate_inv(q, v):
    """Rotate vector v by the inverse of unit quaternion q (world -> body), component tuples."""
    u = q[1:]
    t = [2.0 * c for c in cross(v, u)]
    tu = cross(t, u)
    return tuple(v[i] + q[0] * t[i] + tu[i] for i in range(3))


def _sym_matvec(m, v):
    """Symmetric 3x3 (xx, yy, zz, xy, xz, yz) times vector, component tuples."""
    xx, yy, zz, xy, xz, yz = m
    return (xx * v[0] + xy * v[1] + xz * v[2], xy * v[0] + yy * v[1] + yz * v[2], xz * v[0] + yz * v[1] + zz * v[2])


def _rotor_terms(rotor, p):
    """Rotor-speed dependent terms: thrust accel (N,) m/s^2, in-plane drag coeff (N,) 1/s, alpha (3-tuple) rad/s^2."""
    u = [r * r for r in rotor]  # (rad/s)^2
    thrust = p["kf_per_m"] * (u[0] + u[1] + u[2] + u[3])
    drag = p["rotor_drag_per_m"] * (rotor[0] + rotor[1] + rotor[2] + rotor[3])
    a = p["alloc"]  # 12 tensors (N,), row-major (3 axes x 4 rotors): J^-1 diag(kf, kf, kq) G
    alpha = tuple(a[4 * i] * u[0] + a[4 * i + 1] * u[1] + a[4 * i + 2] * u[2] + a[4 * i + 3] * u[3] for i in range(3))
    return thrust, drag, alpha


def _derivative(s, terms, ext_acc, wind, p):
    """Time derivative (13-tuple) of the rigid-body state [p, q, v, omega] as (N,) components."""
    thrust, rotor_drag, alpha = terms
    q, v, w = s[3:7], s[7:10], s[10:13]
    v_air = v if wind is None else tuple(v[i] - wind[i] for i in range(3))
    vb = _rotate_inv(q, v_air)
    force_b = (-(p["drag_x"] + rotor_drag) * vb[0], -(p["drag_y"] + rotor_drag) * vb[1], thrust - p["drag_z"] * vb[2])
    acc = rotate(q, force_b)
    acc = tuple(acc[i] + ext_acc[i] for i in range(3))
    gyro = _sym_matvec(p["inertia_inv"], cross(w, _sym_matvec(p["inertia"], w)))
    w_dot = tuple(alpha[i] - gyro[i] for i in range(3))
    qw, qx, qy, qz = q
    wx, wy, wz = w
    q_dot = (-0.5 * (qx * wx + qy * wy + qz * wz), 0.5 * (qw * wx + qy * wz - qz * wy),
             0.5 * (qw * wy - qx * wz + qz * wx), 0.5 * (qw * wz + qx * wy - qy * wx))
    return (*v, *q_dot, *acc, *w_dot)


def physics_substep(s: tuple, integral: tuple, omega_prev: tuple, cmd: tuple, ext: tuple, wind, p: dict,
                    c: MixerConstants, dt_s: float):
    """One RK4 substep of dt_s; pure and compilable. All arguments are tuples of (N,) tensors.

    s: 17 state components (sim/state.py order); integral, omega_prev: 3 rate-loop memories;
    cmd: CTBR (thrust m/s^2, p, q, r rad/s); ext: gravity + external force / mass (m/s^2, world);
    wind: None or 3 world components (m/s). The rate controller + mixer run once (zero-order hold
    over the substep). Returns (s, integral, omega_prev, contact (N,) bool), all tuples of tensors
    except contact; returning components (not a stacked tensor) lets inductor fuse one loop.
    """
    body, rotor = s[:13], s[13:]
    omega = body[10:13]
    alpha_cmd, integ = rate_pid(c, cmd[1:4], omega, omega_prev, integral, dt_s)
    rotor_cmd = mix(c, cmd[0], alpha_cmd)
    # exact first-order motor response under the held command
    diff = [rotor[i] - rotor_cmd[i] for i in range(4)]
    rotor_mid = [rotor_cmd[i] + diff[i] * p["motor_decay_half"] for i in range(4)]
    rotor_end = [rotor_cmd[i] + diff[i] * p["motor_decay_full"] for i in range(4)]
    t_mid = _rotor_terms(rotor_mid, p)
    h2, h6 = 0.5 * dt_s, dt_s / 6.0
    k1 = _derivative(body, _rotor_terms(rotor, p), ext, wind, p)
    k2 = _derivative([b + h2 * k for b, k in zip(body, k1)], t_mid, ext, wind, p)
    k3 = _derivative([b + h2 * k for b, k in zip(body, k2)], t_mid, ext, wind, p)
    k4 = _derivative([b + dt_s * k for b, k in zip(body, k3)], _rotor_terms(rotor_end, p), ext, wind, p)
    body = [b + h6 * (a + 2.0 * (b2 + b3) + b4) for b, a, b2, b3, b4 in zip(body, k1, k2, k3, k4)]
    inv_norm = torch.rsqrt(body[3] * body[3] + body[4] * body[4] + body[5] * body[5] + body[6] * body[6])
    # ground plane z = 0: no penetration; touching it stops horizontal motion and rotation
    on_ground = body[2] <= 0.0
    free = (~on_ground).to(body[0].dtype)
    out = (body[0], body[1], body[2].clamp(min=0.0),
           body[3] * inv_norm, body[4] * inv_norm, body[5] * inv_norm, body[6] * inv_norm,
           body[7] * free, body[8] * free, torch.where(on_ground, body[9].clamp(min=0.0), body[9]),
           body[10] * free, body[11] * free, body[12] * free, *rotor_end)
    return out, integ, omega, on_ground


class CompiledSubstep:
    """physics_substep under torch.compile (inductor), falling back to eager for good (with a warning) when
    compilation fails, e.g. on a machine without a C++ compiler: the results are the same, only slower."""

    def __init__(self):
        self._fn = torch.compile(physics_substep, dynamic=False)
        self.failed: str | None = None

    def __call__(self, *args):
        if self.failed is None:
            try:
                return self._fn(*args)
            except Exception as exc:  # noqa: BLE001 - any compiler failure; eager below re-raises a real error
                self.failed = f"{type(exc).__name__}: {str(exc)[:300]}"
                logging.getLogger(__name__).warning("compiled physics unavailable, running eager: %s", self.failed)
        return physics_substep(*args)


class QuadrotorSim:
    """N quadrotors of one vehicle type with per-env parameter scales, stepped at the control rate."""

    def __init__(self, vehicle: VehicleParams, num_envs: int, *, physics_hz: float = 500.0,
                 control_hz: float = 100.0, device="cpu", dtype=torch.float32, compile: bool = False):
        ratio = physics_hz / control_hz
        if num_envs < 1 or abs(ratio - round(ratio)) > 1e-9 or round(ratio) < 1:
            raise ValueError(f"need num_envs >= 1 and physics_hz a multiple of control_hz, got "
                             f"{num_envs}, {physics_hz}, {control_hz}")
        self.vehicle = vehicle
        self.num_envs = num_envs
        self.device = torch.device(device)
        self.dtype = dtype
        self.substeps = int(round(ratio))
        self.physics_dt_s = 1.0 / physics_hz
        self.control_dt_s = 1.0 / control_hz
        kw = dict(device=self.device, dtype=dtype)
        n = num_envs
        self.mixer = mixer_constants(vehicle)
        spec = vehicle.action_spec()
        self.ctbr_low = torch.as_tensor(spec.low, **kw)
        self.ctbr_high = torch.as_tensor(spec.high, **kw)
        # nominal parameters and per-env scales (1.0 = nominal)
        self._nominal = dict(
            mass=torch.full((n,), vehicle.mass_kg, **kw),
            inertia=torch.as_tensor(vehicle.inertia, **kw).expand(n, 3, 3).clone(),
            thrust_coeff=torch.full((n,), vehicle.thrust_coeff, **kw),
            torque_coeff=torch.full((n,), vehicle.torque_coeff, **kw),
            motor_tau=torch.full((n,), vehicle.motor_time_constant_s, **kw),
            body_drag=torch.as_tensor(vehicle.body_drag_npmps, **kw).expand(n, 3).clone(),
            rotor_drag=torch.full((n,), vehicle.rotor_drag_coeff, **kw),
        )
        self.scales = {k: torch.ones(n, **kw) for k in ("mass", "inertia", "thrust_coeff", "motor_tau", "drag")}
        rp = torch.as_tensor(vehicle.rotor_positions, **kw)
        self._geometry = torch.stack([rp[:, 1], -rp[:, 0], -torch.as_tensor(vehicle.rotor_directions, **kw)])  # (3, 4)
        self._update_params()
        # struct of arrays: tuples of (N,) tensors
        self._s = tuple(torch.full((n,), 1.0 if i == 3 else 0.0, **kw) for i in range(STATE_DIM))
        self._integral = tuple(torch.zeros(n, **kw) for _ in range(3))  # rad
        self._omega_prev = tuple(torch.zeros(n, **kw) for _ in range(3))  # rad/s
        self.ground_contact = torch.zeros(n, dtype=torch.bool, device=self.device)
        self.invalid_action = torch.zeros(n, dtype=torch.bool, device=self.device)
        self._gravity = (torch.zeros(n, **kw), torch.zeros(n, **kw), torch.full((n,), -GRAVITY_MPS2, **kw))
        # compiling one substep (not the unrolled control period) keeps inductor from re-computing
        # inlined RK4 stages across substeps, and compiles in a fraction of the time
        self._substep_fn = CompiledSubstep() if compile else physics_substep

    # ---- parameters ----
    def set_param_scales(self, env_ids, mass=None, inertia=None, thrust_coeff=None, motor_tau=None, drag=None):
        """Scale parameters of env_ids by (len(env_ids),) factors (1.0 = nominal); thrust_coeff also
        scales the rotor torque coefficient, drag scales body and rotor drag."""
        for name, value in (("mass", mass), ("inertia", inertia), ("thrust_coeff", thrust_coeff),
                            ("motor_tau", motor_tau), ("drag", drag)):
            if value is not None:
                value = torch.as_tensor(value, device=self.device, dtype=self.dtype)
                if not bool((value > 0).all()):
                    raise ValueError(f"set_param_scales: {name} scales must be > 0")
                self.scales[name][env_ids] = value
        self._update_params()

    def _update_params(self):
        """Recompute per-env physical parameters and the SoA kernel constants from the scales."""
        s, nom = self.scales, self._nominal
        self.mass = nom["mass"] * s["mass"]  # (N,) kg
        self.inertia = nom["inertia"] * s["inertia"].view(-1, 1, 1)  # (N, 3, 3) kg m^2
        self.inertia_inv = torch.linalg.inv(self.inertia)
        self.thrust_coeff = nom["thrust_coeff"] * s["thrust_coeff"]  # (N,) N/(rad/s)^2
        self.torque_coeff = nom["torque_coeff"] * s["thrust_coeff"]  # (N,) N m/(rad/s)^2
        self.motor_tau = nom["motor_tau"] * s["motor_tau"]  # (N,) s
        self.body_drag = nom["body_drag"] * s["drag"].view(-1, 1)  # (N, 3) N/(m/s)
        self.rotor_drag = nom["rotor_drag"] * s["drag"]  # (N,) N/(m/s)/(rad/s)
        inv_m = 1.0 / self.mass
        coeffs = torch.stack([self.thrust_coeff, self.thrust_coeff, self.torque_coeff])  # (3, N)
        # alloc[i, j, n] = (J_n^-1 diag(k_f, k_f, k_q)_n G)[i, j]: rotor j speed^2 -> angular accel i
        alloc = torch.einsum("nik,kn,kj->ijn", self.inertia_inv, coeffs, self._geometry).reshape(12, -1)

        def sym(m):  # (N, 3, 3) -> (xx, yy, zz, xy, xz, yz) contiguous (N,) tensors
            return tuple(m[:, i, j].contiguous() for i, j in ((0, 0), (1, 1), (2, 2), (0, 1), (0, 2), (1, 2)))

        dt = self.physics_dt_s
        drag = self.body_drag * inv_m[:, None]  # (N, 3) 1/s
        self._p = {
            "kf_per_m": self.thrust_coeff * inv_m,
            "drag_x": drag[:, 0].contiguous(), "drag_y": drag[:, 1].contiguous(), "drag_z": drag[:, 2].contiguous(),
            "rotor_drag_per_m": self.rotor_drag * inv_m,
            "alloc": tuple(alloc.unbind(0)),
            "inertia": sym(self.inertia),
            "inertia_inv": sym(0.5 * (self.inertia_inv + self.inertia_inv.transpose(1, 2))),
            "motor_decay_half": torch.exp(-0.5 * dt / self.motor_tau),
            "motor_decay_full": torch.exp(-dt / self.motor_tau),
        }

    def hover_rotor_speed(self, env_ids=None) -> torch.Tensor:
        """Per-env rotor speed (M,) rad/s whose thrust carries the (scaled) weight."""
        idx = slice(None) if env_ids is None else env_ids
        return torch.sqrt(self.mass[idx] * GRAVITY_MPS2 / (4.0 * self.thrust_coeff[idx]))

    # ---- state ----
    @property
    def state(self) -> torch.Tensor:
        """Current state (N, 17) (a copy), layout of sim/state.py."""
        return torch.stack(self._s, dim=1)

    @property
    def state_soa(self) -> tuple:
        """Current state as 17 (N,) component tensors (no copy; do not modify, use reset_envs)."""
        return self._s

    def hover_state(self, pos, env_ids=None) -> torch.Tensor:
        """States (M, 17) at positions pos (M, 3) m, level, at rest, rotors at (per-env) hover speed."""
        pos = torch.as_tensor(pos, device=self.device, dtype=self.dtype).reshape(-1, 3)
        rows = torch.zeros(pos.shape[0], STATE_DIM, device=self.device, dtype=self.dtype)
        rows[:, 0:3] = pos
        rows[:, 3] = 1.0
        speed = self.hover_rotor_speed(env_ids) if env_ids is not None else self.hover_rotor_speed()[: pos.shape[0]]
        rows[:, 13:17] = speed.reshape(-1, 1)
        return rows

    def reset_envs(self, env_ids, state_rows: torch.Tensor) -> None:
        """Write state_rows (M, 17) into env_ids and reset their rate-controller memory and flags."""
        state_rows = torch.as_tensor(state_rows, device=self.device, dtype=self.dtype)
        assert state_rows.shape[-1] == STATE_DIM, f"state rows must be (M, {STATE_DIM}), got {tuple(state_rows.shape)}"
        rows = state_rows.reshape(-1, STATE_DIM)
        for i, comp in enumerate(self._s):
            comp[env_ids] = rows[:, i]
        for i in range(3):
            self._integral[i][env_ids] = 0.0
            self._omega_prev[i][env_ids] = rows[:, 10 + i]
        self.ground_contact[env_ids] = False
        self.invalid_action[env_ids] = False

    # ---- stepping ----
    def step(self, ctbr: torch.Tensor, wind_mps: torch.Tensor | None = None,
             force_n: torch.Tensor | None = None) -> torch.Tensor:
        """Advance one control period under CTBR commands (N, 4) [m/s^2, rad/s x3 FLU]; returns state (N, 17).

        Non-finite command rows are replaced by zero thrust/rates and flagged in `invalid_action`;
        commands are clamped to the vehicle's action spec. wind_mps (N, 3) or (3,) world m/s and
        force_n (N, 3) world N are held over the period.
        """
        assert ctbr.shape == (self.num_envs, 4), f"ctbr must be ({self.num_envs}, 4), got {tuple(ctbr.shape)}"
        ctbr = ctbr.to(self.dtype)
        self.invalid_action = ~torch.isfinite(ctbr).all(1)
        ctbr = torch.where(self.invalid_action.unsqueeze(1), torch.zeros_like(ctbr), ctbr)
        cmd = torch.minimum(torch.maximum(ctbr, self.ctbr_low), self.ctbr_high)
        cmd = tuple(cmd.t().contiguous())  # 4 x (N,)
        ext = self._gravity
        if force_n is not None:
            acc = force_n.to(self.dtype).expand(self.num_envs, 3) / self.mass.unsqueeze(1)
            ext = tuple(ext[i] + acc[:, i] for i in range(3))
        wind = None if wind_mps is None else tuple(wind_mps.to(self.dtype).expand(self.num_envs, 3).t().contiguous())
        contact = None
        for _ in range(self.substeps):
            self._s, self._integral, self._omega_prev, touch = self._substep_fn(
                self._s, self._integral, self._omega_prev, cmd, ext, wind, self._p, self.mixer, self.physics_dt_s)
            contact = touch if contact is None else contact | touch
        self.ground_contact = contact
        return self.state
