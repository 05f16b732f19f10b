"""The fast single-drone path (sim/single_drone.py) equals the batched torch QuadrotorSim (float64) step by step."""
import time

import numpy as np
import pytest
import torch

from ssm_mbrl_ros.sim.dynamics import QuadrotorSim
from ssm_mbrl_ros.sim.single_drone import SingleDroneSim
from ssm_mbrl_ros.sim.vehicle import load_vehicle


def _commands(vehicle, steps, rng):
    """Three command sequences: random CTBR beyond every limit (saturating), a ground take-off, NaN rows."""
    hi = vehicle.action_spec().high
    wild = rng.uniform(-1.5, 1.5, (steps, 4)) * hi  # thrust below 0 and above max, rates up to 1.5x the limits
    wild[::37] = [hi[0] * 2.0, 40.0, -40.0, 30.0]  # full saturation now and then
    takeoff = np.tile([0.0, 0.0, 0.0, 0.0], (steps, 1))
    takeoff[20:] = [12.0, 0.3, -0.2, 0.5]
    takeoff[150:] = [9.0, -1.0, 1.0, -2.0]
    nan = rng.uniform(-1.0, 1.0, (steps, 4)) * hi * 0.5 + [hi[0] * 0.5, 0, 0, 0]
    nan[50:55] = np.nan
    return np.stack([wild, takeoff, nan], 1)  # (T, 3, 4)


@pytest.mark.parametrize("vehicle_name,physics_hz", [("agile5", 200.0), ("x500", 500.0), ("crazyflie", 500.0)])
def test_single_drone_matches_batched_sim(vehicle_name, physics_hz):
    vehicle = load_vehicle(vehicle_name)
    steps = 300  # 3 s at 100 Hz
    rng = np.random.default_rng(7)
    cmds = _commands(vehicle, steps, rng)
    wind = np.array([[3.0, -2.0, 0.5], [1.0, 0.0, 0.0], [0.0, 4.0, -1.0]])
    force = np.array([0.0, 0.1, 0.0])
    batched = QuadrotorSim(vehicle, 3, physics_hz=physics_hz, control_hz=100.0, dtype=torch.float64)
    start = batched.hover_state(torch.tensor([[0.0, 0.0, 50.0], [1.0, 2.0, 0.0], [0.0, 0.0, 30.0]]))
    start[0, 3:7] = torch.tensor([0.9, 0.1, -0.2, 0.3]) / torch.tensor([0.9, 0.1, -0.2, 0.3]).norm()
    start[0, 7:13] = torch.tensor([1.0, -2.0, 0.5, 2.0, -1.0, 0.5])
    start[1, 13:17] = 0.0  # on the ground, rotors stopped
    batched.reset_envs(torch.arange(3), start)
    singles = [SingleDroneSim(vehicle, physics_hz=physics_hz, control_hz=100.0) for _ in range(3)]
    for i, s in enumerate(singles):
        s.reset(start[i].numpy())
    worst, peak_rate = 0.0, 0.0
    for k in range(steps):
        ref = batched.step(torch.from_numpy(cmds[k]), wind_mps=torch.from_numpy(wind),
                           force_n=torch.from_numpy(force).expand(3, 3)).numpy()
        for i, s in enumerate(singles):
            out = s.step(cmds[k, i], wind_mps=wind[i], force_n=force)
            scale = np.maximum(1.0, np.abs(ref[i]))
            worst = max(worst, float(np.max(np.abs(out - ref[i]) / scale)))
            assert s.ground_contact == bool(batched.ground_contact[i]), (k, i)
            assert s.invalid_action == bool(batched.invalid_action[i]), (k, i)
        peak_rate = max(peak_rate, float(np.abs(ref[0, 10:12]).max()))
    assert worst < 1e-8, worst  # float64 round-off (operation order); the stiff crazyflie rate loop reaches ~2e-9
    assert singles[1].s[2] > 1.0  # the take-off really left the ground
    assert peak_rate > 0.5 * vehicle.max_rate_radps[0]  # and the wild drone really flew fast rates


def test_hover_state_and_bad_input():
    vehicle = load_vehicle("agile5")
    sim = SingleDroneSim(vehicle, physics_hz=200.0, control_hz=100.0)
    sim.reset(sim.hover_state([0.0, 0.0, 1.0]))
    for _ in range(100):
        s = sim.step([9.81, 0.0, 0.0, 0.0])
    np.testing.assert_allclose(s[0:3], [0.0, 0.0, 1.0], atol=1e-6)
    with pytest.raises(ValueError, match="multiple"):
        SingleDroneSim(vehicle, physics_hz=250.0, control_hz=100.0)
    with pytest.raises(ValueError, match=r"\(17,\)"):
        sim.reset(np.zeros(13))
    with pytest.raises(ValueError, match="4 entries"):
        sim.step([1.0, 2.0])


def test_single_drone_is_much_faster_than_eager_torch_at_n1():
    vehicle = load_vehicle("agile5")
    torch.set_num_threads(1)
    fast = SingleDroneSim(vehicle, physics_hz=200.0, control_hz=100.0)
    fast.reset(fast.hover_state([0, 0, 1.0]))
    slow = QuadrotorSim(vehicle, 1, physics_hz=200.0, control_hz=100.0, dtype=torch.float64)
    cmd_t = torch.tensor([[9.81, 0.1, 0.0, 0.0]], dtype=torch.float64)

    def per_step_s(fn, n):
        fn()
        t0 = time.perf_counter()
        for _ in range(n):
            fn()
        return (time.perf_counter() - t0) / n

    t_fast = min(per_step_s(lambda: fast.step([9.81, 0.1, 0.0, 0.0]), 200) for _ in range(3))
    t_slow = min(per_step_s(lambda: slow.step(cmd_t), 50) for _ in range(3))
    print(f"single drone step {1e3 * t_fast:.3f} ms, eager torch N=1 {1e3 * t_slow:.3f} ms")
    assert t_fast < 0.25 * t_slow  # measured ~25x; 4x leaves room for a loaded CI machine
