"""Domain randomisation ranges, wind process statistics, and their use by the env."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from ssm_mbrl_ros.core.config import ConfigError, from_dict
from ssm_mbrl_ros.sim.env import make_env
from ssm_mbrl_ros.sim.randomization import (PARAM_NAMES, RandomizationConfig, WindConfig, WindProcess,
                                            sample_param_scales)

F64 = torch.float64


def test_param_scales_respect_ranges_and_generator():
    cfg = RandomizationConfig(mass_scale=(0.7, 1.3), drag_scale=(1.0, 1.0))
    gen = torch.Generator().manual_seed(0)
    s = sample_param_scales(cfg, 20000, gen, "cpu", F64)
    for i, (lo, hi) in enumerate(cfg.ranges()):
        assert s[:, i].min().item() >= lo and s[:, i].max().item() <= hi
        if hi > lo:  # spread over the whole range (uniform)
            assert s[:, i].min().item() < lo + 0.01 * (hi - lo) and s[:, i].max().item() > hi - 0.01 * (hi - lo)
            assert s[:, i].mean().item() == pytest.approx(0.5 * (lo + hi), abs=0.01 * (hi - lo) + 1e-3)
    assert torch.equal(s, sample_param_scales(cfg, 20000, torch.Generator().manual_seed(0), "cpu", F64))
    off = sample_param_scales(RandomizationConfig(enabled=False), 5, gen, "cpu", F64)
    assert torch.equal(off, torch.ones(5, len(PARAM_NAMES), dtype=F64))


@pytest.mark.parametrize("data, field", [
    ({"mass_scale": [1.1, 0.9]}, "mass_scale"),
    ({"drag_scale": [0.0, 1.0]}, "drag_scale"),
    ({"wind": {"gust_tau_s": 0.0}}, "gust_tau_s"),
    ({"wind": {"gust_std_mps": -1.0}}, "gust_std_mps"),
])
def test_bad_ranges_raise_config_error(data, field):
    with pytest.raises(ConfigError, match=field):
        from_dict(RandomizationConfig, data, "racing.yaml.randomization")


def test_wind_gusts_have_configured_std_and_correlation_time():
    cfg = WindConfig(mean_speed_max_mps=0.0, gust_std_mps=0.8, gust_vertical_ratio=0.5, gust_tau_s=0.5)
    dt, n = 0.01, 4000
    wind = WindProcess(cfg, n, dt, "cpu", F64)
    gen = torch.Generator().manual_seed(1)
    wind.reset(torch.arange(n), gen)
    start = wind.step(gen).clone()
    lag = int(round(cfg.gust_tau_s / dt))
    for _ in range(lag):
        w = wind.step(gen)
    std = w.std(0)
    np.testing.assert_allclose(std.numpy(), [0.8, 0.8, 0.4], rtol=0.06)  # stationary, independent of dt
    corr = ((start * w).mean(0) / (start.std(0) * w.std(0))).numpy()
    np.testing.assert_allclose(corr, math.exp(-1.0), atol=0.05)  # OU autocorrelation exp(-lag / tau)


def test_wind_mean_within_limits_and_inactive_is_none():
    cfg = WindConfig(mean_speed_max_mps=2.0, mean_vertical_max_mps=0.5, gust_std_mps=0.0)
    wind = WindProcess(cfg, 5000, 0.01, "cpu", F64)
    gen = torch.Generator().manual_seed(2)
    wind.reset(torch.arange(5000), gen)
    w = wind.step(gen)
    horiz = w[:, :2].norm(dim=1)
    assert horiz.max().item() <= 2.0 and horiz.max().item() > 1.95
    assert w[:, 2].abs().max().item() <= 0.5
    assert torch.equal(w, wind.mean_mps)  # no gusts
    assert WindProcess(WindConfig(enabled=False), 3, 0.01, "cpu", F64).step(gen) is None


def test_env_applies_scales_to_sim_and_privileged_vector():
    env = make_env("hover", 512, seed=4, overrides=("randomization.mass_scale=[0.5, 0.6]",))
    _, info = env.reset()
    scales = info["privileged"][:, 17:22]
    assert torch.equal(scales, env.param_scales)
    mass = scales[:, PARAM_NAMES.index("mass")]
    assert mass.min().item() >= 0.5 and mass.max().item() <= 0.6
    np.testing.assert_allclose(env.sim.scales["mass"], mass)
    np.testing.assert_allclose(env.sim.mass, env.vehicle.mass_kg * mass, rtol=1e-6)
    np.testing.assert_allclose(info["privileged"][:, 22:25], env.wind.wind_mps)
    assert env.wind.wind_mps.abs().sum().item() > 0
    # disabled: nominal vehicle, still air
    env = make_env("hover", 16, seed=4, overrides=("randomization.enabled=false", "randomization.wind.enabled=false"))
    _, info = env.reset()
    assert torch.equal(info["privileged"][:, 17:22], torch.ones(16, 5))
    assert (info["privileged"][:, 22:25] == 0).all()


def test_wind_pushes_drone_downwind():
    env = make_env("hover", 2, dtype=F64, seed=0,
                   overrides=("randomization.enabled=false", "randomization.wind.gust_std_mps=0.0",
                              "randomization.wind.mean_speed_max_mps=8.0", "start_vel_std_mps=0.0",
                              "start_tilt_deg=0.0"))
    env.reset()
    wind = env.wind.mean_mps.clone()
    start = env.sim.state[:, 0:3].clone()
    ctbr = torch.zeros(2, 4, dtype=F64)
    ctbr[:, 0] = 9.81
    for _ in range(50):
        _, _, term, _, info = env.step_physical(ctbr)
    assert not term.any()
    drift = info["privileged"][:, 0:3] - start
    cos = (drift[:, :2] * wind[:, :2]).sum(1) / (drift[:, :2].norm(dim=1) * wind[:, :2].norm(dim=1))
    assert (cos > 0.9).all()
