"""QuadrotorSim physics against analytic references and an independent per-drone numpy reference."""
import dataclasses
import math

import numpy as np
import pytest
import torch

from ssm_mbrl_ros.sim.dynamics import QuadrotorSim
from ssm_mbrl_ros.sim.state import GRAVITY_MPS2
from ssm_mbrl_ros.sim.vehicle import load_vehicle

F64 = torch.float64


def _sim(vehicle, n, **kw):
    kw.setdefault("dtype", F64)
    return QuadrotorSim(vehicle, n, **kw)


def _no_drag(v, **changes):
    return dataclasses.replace(v, body_drag_npmps=[0.0, 0.0, 0.0], rotor_drag_coeff=0.0, **changes)


@pytest.mark.parametrize("name", ["agile5", "x500", "crazyflie"])
def test_hover_equilibrium_holds(name):
    v = load_vehicle(name)
    sim = _sim(v, 2)
    start = sim.hover_state(torch.tensor([[0.0, 0.0, 1.0], [3.0, -2.0, 5.0]]))
    sim.reset_envs(torch.arange(2), start)
    # rotor thrust at hover speed carries the weight exactly
    assert float(4 * sim.thrust_coeff[0] * start[0, 13] ** 2) == pytest.approx(v.mass_kg * GRAVITY_MPS2, rel=1e-12)
    cmd = torch.tensor([[GRAVITY_MPS2, 0.0, 0.0, 0.0]] * 2, dtype=F64)
    for _ in range(200):  # 2 s
        state = sim.step(cmd)
    torch.testing.assert_close(state, start, atol=1e-9, rtol=0)
    assert not sim.ground_contact.any()


def test_free_fall_matches_ballistics_then_stops_at_ground():
    v = _no_drag(load_vehicle("crazyflie"))  # idle speed 0: zero thrust, no drag
    sim = _sim(v, 1)
    z0 = 2.0
    sim.reset_envs([0], torch.tensor([[0, 0, z0, 1, 0, 0, 0] + [0.0] * 10], dtype=F64))
    cmd = torch.zeros(1, 4, dtype=F64)
    t_ground = math.sqrt(2 * z0 / GRAVITY_MPS2)
    for k in range(1, int(t_ground / sim.control_dt_s) + 1):
        state = sim.step(cmd)
        t = k * sim.control_dt_s
        assert float(state[0, 2]) == pytest.approx(z0 - 0.5 * GRAVITY_MPS2 * t * t, abs=1e-10)
        assert float(state[0, 9]) == pytest.approx(-GRAVITY_MPS2 * t, abs=1e-10)
        assert not bool(sim.ground_contact[0])
    for _ in range(10):
        state = sim.step(cmd)
    assert bool(sim.ground_contact[0]) and float(state[0, 2]) == 0.0 and float(state[0, 9]) == 0.0


def _coasting_sim(v, omega0):
    """A sim whose rotors stay (numerically) stopped: no rotor force or torque acts on the body."""
    v = _no_drag(v, rotor_speed_min_radps=0.0)
    sim = _sim(v, 1)
    sim.set_param_scales([0], motor_tau=torch.tensor([1e15]))
    sim.reset_envs([0], torch.tensor([[0, 0, 100.0, 1, 0, 0, 0, 0, 0, 0, *omega0, 0, 0, 0, 0]], dtype=F64))
    return sim


def test_spin_about_principal_axis_is_constant():
    sim = _coasting_sim(load_vehicle("x500"), [0.0, 0.0, 5.0])  # diagonal inertia: z is principal
    cmd = torch.zeros(1, 4, dtype=F64)
    for _ in range(100):
        state = sim.step(cmd)
    torch.testing.assert_close(state[0, 10:13], torch.tensor([0.0, 0.0, 5.0], dtype=F64), atol=1e-9, rtol=0)
    # attitude turned by 5 rad about z
    assert float(state[0, 6]) == pytest.approx(math.sin(2.5), abs=1e-9)


def test_torque_free_tumble_conserves_energy_and_momentum_with_full_inertia():
    v = load_vehicle("crazyflie")
    sim = _coasting_sim(v, [3.0, -2.0, 5.0])
    J = torch.as_tensor(v.inertia, dtype=F64)

    def invariants(s):
        w = s[0, 10:13]
        jw = J @ w
        qw, qx, qy, qz = s[0, 3:7].tolist()
        rot = torch.tensor([[1 - 2 * (qy * qy + qz * qz), 2 * (qx * qy - qw * qz), 2 * (qx * qz + qw * qy)],
                            [2 * (qx * qy + qw * qz), 1 - 2 * (qx * qx + qz * qz), 2 * (qy * qz - qw * qx)],
                            [2 * (qx * qz - qw * qy), 2 * (qy * qz + qw * qx), 1 - 2 * (qx * qx + qy * qy)]], dtype=F64)
        return 0.5 * float(w @ jw), rot @ jw  # energy, world-frame angular momentum

    e0, l0 = invariants(sim.state)
    cmd = torch.zeros(1, 4, dtype=F64)
    w_seen = []
    for _ in range(200):
        state = sim.step(cmd)
        w_seen.append(state[0, 10:13].clone())
    e1, l1 = invariants(state)
    assert e1 == pytest.approx(e0, rel=1e-8)
    torch.testing.assert_close(l1, l0, rtol=1e-7, atol=0)
    assert float(torch.stack(w_seen).std(0).max()) > 0.1  # body rates really change (non-principal axis)


def test_motor_lag_reaches_63_percent_at_time_constant():
    v = dataclasses.replace(load_vehicle("agile5"), motor_time_constant_s=0.02)
    sim = _sim(v, 1, physics_hz=1000.0, control_hz=1000.0)
    sim.reset_envs([0], sim.hover_state([[0.0, 0.0, 5.0]]))
    w0 = float(sim.state[0, 13])
    thrust = 2.0 * GRAVITY_MPS2
    w_cmd = math.sqrt(thrust * v.mass_kg / (4 * v.thrust_coeff))
    for _ in range(20):  # 20 ms = tau
        state = sim.step(torch.tensor([[thrust, 0.0, 0.0, 0.0]], dtype=F64))
    frac = (state[0, 13:17] - w0) / (w_cmd - w0)
    torch.testing.assert_close(frac, torch.full((4,), 1 - math.exp(-1), dtype=F64), atol=1e-9, rtol=0)


@pytest.mark.parametrize("axis, rate", [(0, 3.0), (1, -3.0), (2, 2.0)])
def test_rate_loop_step_response_settles(axis, rate):
    v = load_vehicle("agile5")
    sim = _sim(v, 1)
    sim.reset_envs([0], sim.hover_state([[0.0, 0.0, 50.0]]))
    cmd = torch.tensor([[GRAVITY_MPS2, 0.0, 0.0, 0.0]], dtype=F64)
    cmd[0, 1 + axis] = rate
    trace = []
    for _ in range(60):  # 0.6 s
        trace.append(float(sim.step(cmd)[0, 10 + axis]) / rate)
    trace = np.array(trace)
    assert np.all(np.isfinite(trace))
    assert np.argmax(trace > 0.9) * sim.control_dt_s <= 0.2  # rise to 90 % within 0.2 s
    assert trace.max() < 1.3  # overshoot below 30 %
    assert np.all(np.abs(trace[30:] - 1.0) < 0.05)  # settled within 5 % after 0.3 s


def test_ground_contact_flags_only_the_touching_env():
    v = load_vehicle("agile5")
    sim = _sim(v, 2)
    sim.reset_envs(torch.arange(2), sim.hover_state([[0.0, 0.0, 0.05], [0.0, 0.0, 1.0]]))
    cmd = torch.tensor([[0.0, 0.0, 0.0, 0.0], [GRAVITY_MPS2, 0.0, 0.0, 0.0]], dtype=F64)
    for _ in range(30):
        state = sim.step(cmd)
    assert sim.ground_contact.tolist() == [True, False]
    assert float(state[0, 2]) == 0.0 and torch.isfinite(state).all()
    assert float(state[1, 2]) == pytest.approx(1.0, abs=1e-9)


def test_saturation_and_nan_commands_stay_finite_and_isolated():
    v = load_vehicle("agile5")
    n = 4
    cmds = torch.tensor([[1e6, 1e6, -1e6, 1e6], [-1e6, -1e6, 1e6, -1e6],
                         [float("nan"), 0.0, float("inf"), 0.0], [GRAVITY_MPS2, 0.5, 0.0, 0.0]], dtype=F64)
    sims = [_sim(v, n), _sim(v, n)]
    for sim in sims:
        sim.reset_envs(torch.arange(n), sim.hover_state([[0.0, 0.0, 20.0]] * n))
    for _ in range(50):
        a = sims[0].step(cmds)
        b = sims[1].step(torch.where(torch.isfinite(cmds), cmds, torch.zeros_like(cmds)) * torch.tensor([[1.0], [1], [0], [1]], dtype=F64))
    assert torch.isfinite(a).all()
    assert sims[0].invalid_action.tolist() == [False, False, True, False]
    rotors = a[:, 13:17]
    assert (rotors >= v.rotor_speed_min_radps - 1e-9).all() and (rotors <= v.rotor_speed_max_radps + 1e-9).all()
    torch.testing.assert_close(a, b, rtol=0, atol=0)  # a NaN row acts as a zero command, other rows untouched


def test_mass_scale_changes_acceleration_under_nominal_command():
    v = _no_drag(load_vehicle("x500"))
    sim = _sim(v, 2)
    sim.set_param_scales(torch.tensor([1]), mass=torch.tensor([1.25]))
    sim.reset_envs(torch.arange(2), sim.hover_state([[0.0, 0.0, 10.0]] * 2, env_ids=torch.tensor([0, 0])))
    state = sim.step(torch.tensor([[GRAVITY_MPS2, 0, 0, 0]] * 2, dtype=F64))
    # heavier drone under the nominal hover thrust accelerates down at g (1 - 1/1.25)
    assert float(state[0, 9]) == pytest.approx(0.0, abs=1e-9)
    assert float(state[1, 9]) / sim.control_dt_s == pytest.approx(-GRAVITY_MPS2 * 0.2, rel=1e-6)


def test_float32_runs_and_tracks_float64():
    v = load_vehicle("agile5")
    out = []
    for dtype in (torch.float32, F64):
        sim = QuadrotorSim(v, 3, dtype=dtype)
        sim.reset_envs(torch.arange(3), sim.hover_state([[0, 0, 5.0]] * 3))
        cmd = torch.tensor([[12.0, 1.0, -0.5, 0.3]] * 3, dtype=dtype)
        for _ in range(50):
            state = sim.step(cmd)
        assert state.dtype == dtype
        out.append(state.double())
    torch.testing.assert_close(out[0], out[1], atol=2e-3, rtol=1e-3)


# ---------------------------------------------------------------------------------------------
# Independent per-drone reference: numpy, explicit loops, rotation matrices, per-rotor torques.
# ---------------------------------------------------------------------------------------------
def _rotmat(q):
    w, x, y, z = q
    return np.array([[1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
                     [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
                     [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)]])


class _ScalarDrone:
    """One drone: PX4-like rate PID + prioritised mixer (nominal params) + true physics, RK4."""

    def __init__(self, v, scales, state, wind, force):
        self.v, self.wind, self.force = v, np.asarray(wind, float), np.asarray(force, float)
        sm, si, sk, st, sd = scales
        self.m, self.J = v.mass_kg * sm, v.inertia * si
        self.kf, self.kq, self.tau = v.thrust_coeff * sk, v.torque_coeff * sk, v.motor_time_constant_s * st
        self.d, self.krd = np.asarray(v.body_drag_npmps) * sd, v.rotor_drag_coeff * sd
        self.x = np.array(state, float)
        self.integral, self.w_prev = np.zeros(3), self.x[10:13].copy()
        self.mixinv = np.linalg.inv(v.allocation_matrix())

    def controller(self, cmd, dt):
        v, g = self.v, self.v.rate_gains
        w = self.x[10:13]
        alpha = np.zeros(3)
        for i in range(3):
            e = cmd[1 + i] - w[i]
            lim = g.integrator_limit_radps2[i] / g.ki[i] if g.ki[i] > 0 else 0.0
            self.integral[i] = min(max(self.integral[i] + e * dt, -lim), lim)
            alpha[i] = g.kp[i] * e + g.ki[i] * self.integral[i] - g.kd[i] * (w[i] - self.w_prev[i]) / dt + g.kff[i] * cmd[1 + i]
        self.w_prev = w.copy()
        tau = v.inertia @ alpha
        fmin, fmax = v.thrust_coeff * v.rotor_speed_min_radps**2, v.thrust_coeff * v.rotor_speed_max_radps**2
        f_rp = [self.mixinv[i, 1] * tau[0] + self.mixinv[i, 2] * tau[1] for i in range(4)]
        spread = max(f_rp) - min(f_rp)
        if spread > fmax - fmin:
            f_rp = [f * (fmax - fmin) / spread for f in f_rp]
        lo = max((fmin - f_rp[i]) / self.mixinv[i, 0] for i in range(4))
        hi = min((fmax - f_rp[i]) / self.mixinv[i, 0] for i in range(4))
        total = min(max(cmd[0] * v.mass_kg, lo), hi)
        f = [f_rp[i] + self.mixinv[i, 0] * total for i in range(4)]
        tz = abs(tau[2])
        for i in range(4):
            per_torque = self.mixinv[i, 3] * math.copysign(1.0, tau[2])  # rotor thrust change per unit |tz|
            room = (fmax - f[i]) if per_torque > 0 else (f[i] - fmin)
            tz = min(tz, max(room, 0.0) / abs(per_torque))
        tz = math.copysign(tz, tau[2])
        speeds = []
        for i in range(4):
            fi = min(max(f[i] + self.mixinv[i, 3] * tz, fmin), fmax)
            speeds.append(min(max(math.sqrt(fi / v.thrust_coeff), v.rotor_speed_min_radps), v.rotor_speed_max_radps))
        return np.array(speeds)

    def deriv(self, s, rotor):
        q, vel, w = s[3:7], s[7:10], s[10:13]
        R = _rotmat(q)
        vb = R.T @ (vel - self.wind)
        fb = np.array([-(self.d[0] + self.krd * rotor.sum()) * vb[0], -(self.d[1] + self.krd * rotor.sum()) * vb[1],
                       self.kf * (rotor**2).sum() - self.d[2] * vb[2]])
        acc = R @ fb / self.m + self.force / self.m - np.array([0, 0, GRAVITY_MPS2])
        torque = np.zeros(3)
        for i in range(4):
            torque += np.cross(self.v.rotor_positions[i], [0.0, 0.0, self.kf * rotor[i] ** 2])
            torque[2] -= self.v.rotor_directions[i] * self.kq * rotor[i] ** 2
        w_dot = np.linalg.solve(self.J, torque - np.cross(w, self.J @ w))
        qw, qx, qy, qz = q
        wx, wy, wz = w
        q_dot = 0.5 * np.array([-qx * wx - qy * wy - qz * wz, qw * wx + qy * wz - qz * wy,
                                qw * wy - qx * wz + qz * wx, qw * wz + qx * wy - qy * wx])
        return np.concatenate([vel, q_dot, acc, w_dot])

    def substep(self, cmd, dt):
        w_cmd = self.controller(cmd, dt)
        rotor0 = self.x[13:]
        at = lambda h: w_cmd + (rotor0 - w_cmd) * math.exp(-h / self.tau)  # exact motor lag
        s = self.x[:13]
        k1 = self.deriv(s, at(0.0))
        k2 = self.deriv(s + dt / 2 * k1, at(dt / 2))
        k3 = self.deriv(s + dt / 2 * k2, at(dt / 2))
        k4 = self.deriv(s + dt * k3, at(dt))
        s = s + dt / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
        s[3:7] /= np.linalg.norm(s[3:7])
        self.x = np.concatenate([s, at(dt)])


def test_batched_sim_matches_scalar_reference_per_drone():
    v = load_vehicle("crazyflie")  # full inertia tensor
    rng = np.random.default_rng(0)
    n = 5
    sim = _sim(v, n)
    scales = rng.uniform(0.8, 1.25, size=(5, n))
    sim.set_param_scales(torch.arange(n), *[torch.as_tensor(s) for s in scales])
    start = sim.hover_state(torch.tensor([[0.0, 0.0, 20.0]] * n))
    start[:, 3:7] = torch.nn.functional.normalize(torch.as_tensor(rng.normal([1, 0, 0, 0], 0.2, (n, 4))), dim=1)
    start[:, 7:13] = torch.as_tensor(rng.normal(0, 1.0, (n, 6)))
    sim.reset_envs(torch.arange(n), start)
    wind = torch.as_tensor(rng.normal(0, 3.0, (n, 3)))
    force = torch.as_tensor(rng.normal(0, 0.05, (n, 3)))
    drones = [_ScalarDrone(v, scales[:, i], start[i].numpy(), wind[i].numpy(), force[i].numpy()) for i in range(n)]
    for k in range(40):
        cmd = np.stack([[8.0 + 6 * math.sin(0.3 * k + i), 2 * math.sin(0.2 * k), -1.5 * math.cos(0.25 * k + i),
                         20.0 * (i % 2 - 0.5)] for i in range(n)])  # includes saturating yaw commands
        state = sim.step(torch.as_tensor(cmd), wind_mps=wind, force_n=force).numpy()
        for i, d in enumerate(drones):
            c = np.clip(cmd[i], v.action_spec().low, v.action_spec().high)
            for _ in range(sim.substeps):
                d.substep(c, sim.physics_dt_s)
            # 1e-6: a rotor pinned near idle thrust is a difference of large terms (round-off grows)
            np.testing.assert_allclose(state[i], d.x, rtol=1e-6, atol=1e-6, err_msg=f"drone {i} step {k}")
