"""Geometric controller flying QuadrotorSim: hover hold and figure-8 tracking at 2 and 4 m/s."""
import math

import pytest
import torch

from ssm_mbrl_ros.control.geometric import GeometricController
from ssm_mbrl_ros.sim.dynamics import QuadrotorSim
from ssm_mbrl_ros.sim.state import yaw_of
from ssm_mbrl_ros.sim.vehicle import load_vehicle

F64 = torch.float64


def figure8(t, amp, w, height):
    """Analytic figure-8 p = (A sin wt, A sin 2wt / 2, h) and its derivatives, each (N, 3); amp (N,)."""
    s, c, s2, c2 = math.sin(w * t), math.cos(w * t), math.sin(2 * w * t), math.cos(2 * w * t)
    a = amp.unsqueeze(1)
    pos = a * torch.tensor([s, 0.5 * s2, 0.0], dtype=F64) + torch.tensor([0.0, 0.0, height], dtype=F64)
    vel = a * w * torch.tensor([c, c2, 0.0], dtype=F64)
    acc = a * w * w * torch.tensor([-s, -2 * s2, 0.0], dtype=F64)
    jerk = a * w**3 * torch.tensor([-c, -4 * c2, 0.0], dtype=F64)
    return pos, vel, acc, jerk


@pytest.mark.parametrize("name", ["agile5", "x500", "crazyflie"])
def test_hover_reaches_and_holds_setpoint(name):
    v = load_vehicle(name)
    sim = QuadrotorSim(v, 1, dtype=F64)
    ctl = GeometricController(v, 1, control_dt_s=sim.control_dt_s, dtype=F64)
    sim.reset_envs([0], sim.hover_state([[0.5, -0.3, 1.0]]))
    target = torch.tensor([[0.0, 0.0, 1.5]], dtype=F64)
    yaw = torch.tensor([0.5], dtype=F64)
    state, errors = sim.state, []
    for k in range(250):  # 2.5 s
        state = sim.step(ctl.compute(state, target, ref_yaw=yaw))
        if k >= 200:
            errors.append(float((state[0, :3] - target[0]).norm()))
    assert max(errors) < 0.03  # within 3 cm over the last 0.5 s
    assert float(state[0, 7:10].norm()) < 0.05
    assert float(yaw_of(state[0, 3:7])) == pytest.approx(0.5, abs=0.02)
    assert not sim.ground_contact.any()


@pytest.mark.parametrize("name, max_rmse", [("agile5", 0.15)])
def test_figure8_tracking_at_2_and_4_mps(name, max_rmse):
    v = load_vehicle(name)
    sim = QuadrotorSim(v, 2, dtype=F64)
    ctl = GeometricController(v, 2, control_dt_s=sim.control_dt_s, dtype=F64)
    amp = torch.tensor([1.0, 2.0], dtype=F64)  # m; peak speeds w A sqrt(2) = 2 and 4 m/s
    w = 2.0 / (1.0 * math.sqrt(2.0))
    pos, vel, _, _ = figure8(0.0, amp, w, 1.5)
    start = sim.hover_state(pos)
    start[:, 7:10] = vel
    sim.reset_envs(torch.arange(2), start)
    period = 2 * math.pi / w
    state, sq_err, count = sim.state, torch.zeros(2, dtype=F64), 0
    for k in range(int(1.25 * period / sim.control_dt_s)):
        t = k * sim.control_dt_s
        pos, vel, acc, jerk = figure8(t, amp, w, 1.5)
        state = sim.step(ctl.compute(state, pos, vel, acc, torch.zeros(2, dtype=F64), ref_jerk=jerk))
        if t >= 0.25 * period:  # score after the first quarter period (start-up transient)
            ref_next = figure8(t + sim.control_dt_s, amp, w, 1.5)[0]
            sq_err += ((state[:, :3] - ref_next) ** 2).sum(1)
            count += 1
    rmse = torch.sqrt(sq_err / count)
    assert float(state[:, 7:10].norm(dim=1)[1]) > 1.0  # really moving
    assert (rmse < max_rmse).all(), f"{name} figure-8 RMSE {rmse.tolist()} m"
    assert not sim.ground_contact.any()


def test_output_is_clamped_to_action_spec():
    v = load_vehicle("agile5")
    ctl = GeometricController(v, 2, dtype=F64)
    sim = QuadrotorSim(v, 2, dtype=F64)
    state = sim.hover_state([[0.0, 0.0, 1.0], [0.0, 0.0, 1.0]])
    state[1, 3:7] = torch.tensor([0.0, 1.0, 0.0, 0.0], dtype=F64)  # upside down
    ref = torch.tensor([[100.0, -100.0, 100.0], [0.05, 0.0, 1.0]], dtype=F64)
    out = ctl.compute(state, ref)
    spec = v.action_spec()
    low, high = torch.as_tensor(spec.low, dtype=F64), torch.as_tensor(spec.high, dtype=F64)
    assert torch.isfinite(out).all() and (out >= low).all() and (out <= high).all()
    assert float(out[1, 0]) == 0.0  # inverted: no thrust pushes it into the ground
    # the integral only runs near the reference (no wind-up on the 170 m error) and resets per env
    assert float(ctl.integral[0].abs().sum()) == 0.0 and float(ctl.integral[1, 0]) > 0.0
    ctl.reset(torch.tensor([1]))
    assert float(ctl.integral.abs().sum()) == 0.0
