"""The numpy single-drone geometric controller equals the batched torch controller (float64)."""
import numpy as np
import pytest
import torch

from ssm_mbrl_ros.control.geometric import GeometricController, GeometricGains
from ssm_mbrl_ros.control.geometric_single import SingleGeometricController
from ssm_mbrl_ros.core.frames import quat_normalize
from ssm_mbrl_ros.sim.single_drone import SingleDroneSim
from ssm_mbrl_ros.sim.vehicle import load_vehicle


@pytest.mark.parametrize("gains", [None, GeometricGains(kp_pos=(5.0, 5.0, 6.0), k_att=(6.0, 6.0, 3.0))])
def test_matches_torch_controller_on_random_states(gains):
    vehicle = load_vehicle("agile5")
    rng = np.random.default_rng(0)
    ref = GeometricController(vehicle, 1, gains, control_dt_s=0.01, dtype=torch.float64)
    fast = SingleGeometricController(vehicle, gains, control_dt_s=0.01)
    for k in range(400):
        s = np.zeros(17)
        # mostly near the reference (the integral runs), sometimes far (tilt limit, clamps), sometimes upside down
        spread = 0.05 if k % 3 else 3.0
        s[0:3] = rng.normal(0, spread, 3) + [0, 0, 1.5]
        s[3:7] = quat_normalize(np.r_[1.0, rng.normal(0, 0.2 if k % 5 else 3.0, 3)])
        s[7:10] = rng.normal(0, spread, 3)
        s[10:13] = rng.normal(0, 1.0, 3)
        pos, vel, acc = np.array([0, 0, 1.5]), rng.normal(0, 0.1, 3), rng.normal(0, 0.5, 3)
        yaw = rng.uniform(-3, 3)
        want = ref.compute(torch.from_numpy(s[None]), torch.from_numpy(pos[None]), torch.from_numpy(vel[None]),
                           torch.from_numpy(acc[None]), torch.tensor([yaw], dtype=torch.float64))[0].numpy()
        got = fast.compute(s, pos, vel, acc, yaw)
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12, err_msg=f"step {k}")
    assert np.any(fast.integral != 0.0)  # the conditional integral was exercised


def test_closed_loop_hover_from_the_ground():
    vehicle = load_vehicle("agile5")
    sim = SingleDroneSim(vehicle, physics_hz=200.0, control_hz=100.0)
    ctrl = SingleGeometricController(vehicle)
    s = sim.state
    for _ in range(1000):  # 10 s: take off, then the integral removes the wind's offset
        s = sim.step(ctrl.compute(s, [1.0, -1.0, 2.0]), wind_mps=[2.0, 0.0, 0.0])
    np.testing.assert_allclose(s[0:3], [1.0, -1.0, 2.0], atol=0.02)
    ctrl.reset()
    assert not ctrl.integral.any()
