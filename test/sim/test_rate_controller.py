"""Rate PID and prioritised mixer: allocation, saturation priorities, anti-windup, D on measurement."""
import math

import numpy as np
import pytest
import torch

from ssm_mbrl_ros.sim.rate_controller import RateController, mix, mixer_constants, rate_pid
from ssm_mbrl_ros.sim.state import GRAVITY_MPS2
from ssm_mbrl_ros.sim.vehicle import load_vehicle

F64 = torch.float64


def _wrench(v, speeds):
    """[collective thrust N, torque x, y, z N m] produced by rotor speeds (N, 4) with nominal params."""
    forces = v.thrust_coeff * speeds.numpy() ** 2
    return forces @ v.allocation_matrix().T


def _torque_cmd(v, alpha):
    return v.inertia @ np.asarray(alpha, dtype=float)


def _run_mix(v, thrust, alpha):
    c = mixer_constants(v)
    alpha = torch.as_tensor(alpha, dtype=F64).reshape(-1, 3)
    out = mix(c, torch.as_tensor(thrust, dtype=F64).reshape(-1), tuple(alpha.t()))
    return torch.stack(out, dim=1)


@pytest.mark.parametrize("name", ["agile5", "x500", "crazyflie"])
def test_unsaturated_mix_reproduces_thrust_and_torque(name):
    v = load_vehicle(name)
    alpha = [[0.0, 0.0, 0.0], [20.0, -10.0, 1.0], [-5.0, 8.0, -2.0]]
    speeds = _run_mix(v, [GRAVITY_MPS2] * 3, alpha)
    for i, a in enumerate(alpha):
        expect = np.concatenate([[v.mass_kg * GRAVITY_MPS2], _torque_cmd(v, a)])
        np.testing.assert_allclose(_wrench(v, speeds[i : i + 1])[0], expect, rtol=1e-9, atol=1e-12)
    # hover: all rotors at hover speed
    torch.testing.assert_close(speeds[0], torch.full((4,), v.hover_rotor_speed_radps, dtype=F64))


def test_yaw_is_sacrificed_before_roll_pitch_and_thrust():
    v = load_vehicle("agile5")
    alpha = [10.0, -5.0, 1e4]  # absurd yaw demand
    speeds = _run_mix(v, [GRAVITY_MPS2], [alpha])
    w = _wrench(v, speeds)[0]
    want = _torque_cmd(v, alpha)
    assert w[0] == pytest.approx(v.mass_kg * GRAVITY_MPS2, rel=1e-9)  # collective kept
    np.testing.assert_allclose(w[1:3], want[:2], rtol=1e-9, atol=1e-12)  # roll/pitch kept
    assert 0 < w[3] < want[2]  # yaw reduced, same sign
    assert (speeds <= v.rotor_speed_max_radps + 1e-9).all() and (speeds >= v.rotor_speed_min_radps - 1e-9).all()
    limits = torch.tensor([v.rotor_speed_min_radps, v.rotor_speed_max_radps], dtype=F64)
    assert bool(torch.isclose(speeds.reshape(-1, 1), limits).any())  # yaw used all the headroom there was


def test_air_mode_shifts_thrust_to_keep_roll_authority_at_zero_throttle():
    v = load_vehicle("agile5")
    alpha = [30.0, 0.0, 0.0]
    speeds = _run_mix(v, [0.0], [alpha])
    w = _wrench(v, speeds)[0]
    assert w[1] == pytest.approx(_torque_cmd(v, alpha)[0], rel=1e-9)
    assert w[0] > 4 * v.thrust_coeff * v.rotor_speed_min_radps**2  # thrust raised above idle to do it


def test_huge_roll_demand_is_scaled_to_available_span_not_nan():
    v = load_vehicle("x500")
    speeds = _run_mix(v, [GRAVITY_MPS2, 1e9], [[1e9, -1e9, 1e9], [-1e9, 0.0, 0.0]])
    assert torch.isfinite(speeds).all()
    w = _wrench(v, speeds)
    assert w[0, 1] > 0 and w[0, 2] < 0 and w[1, 1] < 0  # torque direction preserved
    span_torque = 2 * 0.174 * v.thrust_coeff * (v.rotor_speed_max_radps**2 - v.rotor_speed_min_radps**2)
    assert abs(w[1, 1]) == pytest.approx(span_torque, rel=1e-9)  # full roll authority


def test_integrator_is_clamped_and_d_acts_on_measurement():
    v = load_vehicle("agile5")
    c = mixer_constants(v)
    g = v.rate_gains
    z = torch.zeros(1, dtype=F64)
    omega, integral = (z, z, z), (z, z, z)
    sp = tuple(torch.full((1,), s, dtype=F64) for s in (2.0, -1.0, 0.5))
    # first step after a set-point jump: no derivative kick (omega did not move)
    alpha, integral = rate_pid(c, sp, omega, omega, integral, 0.002)
    for i, s in enumerate((2.0, -1.0, 0.5)):
        assert float(alpha[i]) == pytest.approx(g.kp[i] * s + g.ki[i] * s * 0.002, rel=1e-12)
    for _ in range(10000):  # 20 s of persistent error
        alpha, integral = rate_pid(c, sp, omega, omega, integral, 0.002)
    for i, s in enumerate((2.0, -1.0, 0.5)):
        assert abs(g.ki[i] * float(integral[i])) == pytest.approx(g.integrator_limit_radps2[i], rel=1e-12)
    # D term opposes measured angular acceleration
    moved = (torch.full((1,), 0.01, dtype=F64), z, z)
    alpha_d, _ = rate_pid(c, (z, z, z), moved, omega, (z, z, z), 0.002)
    assert float(alpha_d[0]) == pytest.approx(-g.kp[0] * 0.01 - g.ki[0] * 0.01 * 0.002 - g.kd[0] * 0.01 / 0.002, rel=1e-12)


def test_rate_controller_class_reset_and_shapes():
    v = load_vehicle("crazyflie")
    rc = RateController(v, 3, dtype=F64)
    omega = torch.zeros(3, 3, dtype=F64)
    thrust = torch.full((3,), GRAVITY_MPS2, dtype=F64)
    sp = torch.tensor([[1.0, 0, 0], [0, 1.0, 0], [0, 0, 1.0]], dtype=F64)
    for _ in range(5):
        out = rc.compute(thrust, sp, omega, 0.002)
    assert out.shape == (3, 4) and torch.isfinite(out).all()
    assert (rc.integral.abs() > 0).any()
    rc.reset(torch.tensor([1]))
    assert rc.integral[:, 1].abs().sum() == 0 and rc.integral[:, 0].abs().sum() > 0
    assert math.isfinite(float(out.sum()))
