"""The privileged expert's disturbance model matches the simulator, and experts are named like controllers."""
import pytest
import torch

from ssm_mbrl_ros.core.config import ConfigError
from ssm_mbrl_ros.control.experts import PrivilegedGeometricAgent, make_expert, wind_drag_acc
from ssm_mbrl_ros.sim.env import make_env
from ssm_mbrl_ros.sim.state import VEL


def test_wind_drag_acc_matches_the_simulated_velocity_change():
    """One control step from the same tilted, moving state with and without wind: dv / dt is the predicted drag."""
    env = make_env("hover", 4, seed=3, dtype=torch.float64)
    env.reset(seed=3)
    start = env.sim.state.clone()
    ctbr = torch.tensor([[9.81, 0.3, -0.2, 0.1]] * 4, dtype=torch.float64)
    wind = torch.tensor([[3.0, -2.0, 0.5], [0.0, 4.0, 0.0], [-1.0, 0.0, 0.0], [2.0, 2.0, -1.0]], dtype=torch.float64)
    predicted = wind_drag_acc(env.sim, start, wind)
    env.sim.reset_envs(torch.arange(4), start)
    calm = env.sim.step(ctbr, wind_mps=torch.zeros_like(wind))[:, VEL].clone()
    env.sim.reset_envs(torch.arange(4), start)
    windy = env.sim.step(ctbr, wind_mps=wind)[:, VEL].clone()
    measured = (windy - calm) / env.sim.control_dt_s
    assert predicted.abs().max() > 0.3  # the wind matters at these speeds
    torch.testing.assert_close(measured, predicted, rtol=0.05, atol=0.02)


def test_make_expert_names_the_valid_ones():
    env = make_env("hover", 2, seed=0)
    assert make_expert("none", env) is None
    assert isinstance(make_expert("geometric_priv", env), PrivilegedGeometricAgent)
    with pytest.raises(ConfigError, match="geometric_priv"):
        make_expert("geometric_pd", env)
