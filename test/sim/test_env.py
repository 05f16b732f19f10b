"""QuadVecEnv: layouts, terminations, truncation, same-step autoreset, seeding, partial obs, CTBR path."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from gymnasium.vector import AutoresetMode

from ssm_mbrl_ros.core.config import ConfigError
from ssm_mbrl_ros.sim.env import make_env
from ssm_mbrl_ros.sim.state import GRAVITY_MPS2, quat_to_rotmat
from ssm_mbrl_ros.sim.tasks import list_tasks

F64 = torch.float64
CALM = ("randomization.enabled=false", "randomization.wind.enabled=false")


def _hover_ctbr(n, dtype=F64):
    c = torch.zeros(n, 4, dtype=dtype)
    c[:, 0] = GRAVITY_MPS2
    return c


def _place(env, env_id, pos=None, vel=None, quat=None):
    """Teleport one env (keeps the rest of its state)."""
    row = env.sim.state[env_id:env_id + 1].clone()
    for sl, val in ((slice(0, 3), pos), (slice(7, 10), vel), (slice(3, 7), quat)):
        if val is not None:
            row[0, sl] = torch.as_tensor(val, dtype=row.dtype)
    env.sim.reset_envs(torch.tensor([env_id]), row)


@pytest.mark.parametrize("task", list_tasks())
def test_layout_matches_obs_and_spaces(task):
    env = make_env(task, 4, seed=1, overrides=CALM)
    obs, info = env.reset()
    assert obs.shape == (4, env.obs_layout.dim) == env.observation_space.shape
    assert env.single_observation_space.shape == (env.obs_layout.dim,)
    assert env.action_space.shape == (4, 4) and env.single_action_space.shape == (4,)
    assert info["privileged"].shape == (4, env.privileged_layout.dim)
    assert env.metadata["autoreset_mode"] == AutoresetMode.SAME_STEP
    names = [f.name for f in env.obs_layout.fields]
    assert ("vel" in names) == (not task.endswith("_partial"))
    obs, reward, term, trunc, info = env.step(torch.zeros(4, 4))
    assert obs.shape[1] == env.obs_layout.dim and reward.shape == (4,) and term.dtype == torch.bool
    assert torch.isfinite(obs).all() and torch.isfinite(reward).all()
    # rotmat block is the true attitude
    sl = env.obs_layout.slices()["rotmat"]
    np.testing.assert_allclose(obs[:, sl], quat_to_rotmat(info["privileged"][:, 3:7]).reshape(4, 9), atol=1e-5)


def test_bad_task_name():
    with pytest.raises(ConfigError, match="valid tasks"):
        make_env("loop", 2)


def test_nonfinite_action_terminates_only_that_env():
    env = make_env("hover", 4, dtype=F64, seed=0, overrides=CALM)
    env.reset()
    a = torch.zeros(4, 4, dtype=F64)
    a[1, 2] = float("nan")
    a[3, 0] = float("inf")
    obs, reward, term, trunc, info = env.step(a)
    assert term.tolist() == [False, True, False, True]
    assert info["nonfinite_action"].tolist() == [False, True, False, True]
    assert torch.isfinite(obs).all() and torch.isfinite(reward).all()
    assert torch.isfinite(info["privileged"]).all() and torch.isfinite(info["final_obs"]).all()
    assert not info["crash"].any()
    # the unaffected envs saw a normal step; the bad ones were reset (fresh episode, zero last action)
    assert env.episode_steps.tolist() == [1, 0, 1, 0]
    assert reward[1].item() < -5.0 and reward[0].item() > -5.0  # crash penalty 10 on termination
    ctbr = _hover_ctbr(4)
    ctbr[2, 1] = float("nan")
    _, _, term, _, info = env.step_physical(ctbr)
    assert term.tolist() == [False, False, True, False] and info["nonfinite_action"][2]


def test_crash_out_of_bounds_and_tilt_flags():
    env = make_env("hover", 4, dtype=F64, seed=0, overrides=CALM)
    env.reset()
    for i in range(4):
        _place(env, i, pos=[0.0, 0.0, 2.0], vel=[0.0, 0.0, 0.0], quat=[1.0, 0.0, 0.0, 0.0])
    _place(env, 0, pos=[0.0, 0.0, 0.005], vel=[0.0, 0.0, -3.0])  # hits the ground
    _place(env, 1, pos=[9.99, 0.0, 2.0], vel=[5.0, 0.0, 0.0])  # leaves the box at x = 10 m
    half = math.radians(100.0) / 2  # tilted 100 deg about x (limit 90)
    _place(env, 2, quat=[math.cos(half), math.sin(half), 0.0, 0.0])
    obs, reward, term, trunc, info = env.step_physical(_hover_ctbr(4))
    assert info["crash"].tolist() == [True, False, False, False]
    assert info["out_of_bounds"].tolist() == [False, True, False, False]
    assert info["tilt"].tolist() == [False, False, True, False]
    assert term.tolist() == [True, True, True, False] and not trunc.any()
    assert (reward[:3] < reward[3] - 9.0).all()
    assert info["episode_length"].tolist() == [1, 1, 1, -1]
    assert torch.isnan(info["episode_return"][3]) and torch.isfinite(info["episode_return"][:3]).all()
    np.testing.assert_allclose(info["episode_return"][:3], reward[:3])


def test_truncation_autoreset_and_final_obs():
    env = make_env("hover", 3, dtype=F64, seed=0, overrides=CALM + ("episode_length_s=0.05", "control_hz=100"))
    obs0, _ = env.reset()
    for k in range(5):
        obs, reward, term, trunc, info = env.step_physical(_hover_ctbr(3))
        if k < 4:
            assert not trunc.any() and not info["_final_obs"].any()
    assert trunc.all() and not term.any()
    assert info["episode_length"].tolist() == [5, 5, 5] and info["_final_obs"].all()
    assert (env.episode_steps == 0).all() and (env.elapsed_s == 0).all()
    sl = env.obs_layout.slices()
    # final obs: the old episode's last step (last action = hover), obs: the new episode (zero last action)
    np.testing.assert_allclose(info["final_obs"][:, sl["last_action"]],
                               env.action_spec.to_normalized(_hover_ctbr(3)), atol=1e-12)
    assert (obs[:, sl["last_action"]] == 0).all()
    # new episode's pos_err matches the new setpoint and new start position
    state = info["privileged"][:, 0:17]
    np.testing.assert_allclose(obs[:, sl["pos_err"]], env.task.setpoint_m - state[:, 0:3], atol=1e-12)
    assert not torch.allclose(info["final_obs"], obs)
    final_state = info["final_privileged"][:, 0:17]
    np.testing.assert_allclose(info["final_obs"][:, sl["vel"]], final_state[:, 7:10], atol=1e-12)


def test_hover_success_and_rmse_at_setpoint():
    env = make_env("hover", 2, dtype=F64, seed=0, overrides=CALM + ("episode_length_s=0.2", "control_hz=100"))
    env.reset()
    for i in range(2):
        _place(env, i, pos=env.task.setpoint_m[i] + torch.tensor([0.0, 0.0, 0.0 if i == 0 else 0.5], dtype=F64),
               vel=[0.0, 0.0, 0.0], quat=[1.0, 0.0, 0.0, 0.0])
    for _ in range(20):
        obs, reward, term, trunc, info = env.step_physical(_hover_ctbr(2))
    assert trunc.all()
    assert info["success"].tolist() == [True, False]
    assert info["pos_rmse_m"][0].item() < 0.02 and info["pos_rmse_m"][1].item() == pytest.approx(0.5, abs=0.05)
    assert torch.isnan(info["lap_time_s"]).all()


def test_step_physical_matches_normalised_step():
    a = torch.tensor([[0.1, 0.2, -0.3, 0.05], [-0.4, 0.0, 0.1, -0.2]], dtype=F64)
    outs = []
    for physical in (False, True):
        env = make_env("circle", 2, dtype=F64, seed=3)
        env.reset()
        step = (lambda x: env.step_physical(env.action_spec.to_physical(x))) if physical else env.step
        outs.append([step(a)[0] for _ in range(3)])
    for x, y in zip(*outs):
        np.testing.assert_allclose(x, y, atol=1e-9)


def test_same_seed_same_trajectories_different_seed_differs():
    def rollout(seed):
        env = make_env("figure8_partial", 8, seed=seed, overrides=("episode_length_s=0.1",))
        obs, _ = env.reset()
        gen = torch.Generator().manual_seed(123)
        out = [obs]
        for _ in range(25):  # crosses two autoresets
            obs, r, *_ = env.step(0.3 * torch.randn(8, 4, generator=gen))
            out += [obs, r.unsqueeze(1)]
        return torch.cat(out, 1)

    a, b, c = rollout(7), rollout(7), rollout(8)
    assert torch.equal(a, b)
    assert not torch.allclose(a, c)
    env = make_env("hover", 4)
    env.reset(seed=5)
    x = env.reset(seed=5)[0]
    assert torch.equal(x, env.reset(seed=5)[0])


def test_partial_obs_is_delayed_by_configured_steps():
    delay = 3
    env = make_env("hover_partial", 2, dtype=F64, seed=0,
                   overrides=CALM + ("sensors.pos_noise_std_m=0.0", f"sensors.pos_delay_steps={delay}"))
    _, info = env.reset()
    sl = env.obs_layout.slices()["pos_err"]
    true_pos = [info["privileged"][:, 0:3]]
    measured = []
    gen = torch.Generator().manual_seed(0)
    for _ in range(10):
        obs, _, _, _, info = env.step(0.2 * torch.randn(2, 4, generator=gen, dtype=F64))
        true_pos.append(info["privileged"][:, 0:3])
        measured.append(env.task.setpoint_m - obs[:, sl])
    for k in range(1, 11):
        np.testing.assert_allclose(measured[k - 1], true_pos[max(0, k - delay)], atol=1e-12)
    assert not torch.allclose(true_pos[-1], true_pos[-1 - delay])


def test_partial_obs_noise_std():
    env = make_env("hover_partial", 4096, seed=0, overrides=CALM + ("sensors.pos_noise_std_m=0.05", "sensors.pos_delay_steps=0"))
    _, _ = env.reset()
    obs, _, _, _, info = env.step_physical(_hover_ctbr(4096, torch.float32))
    sl = env.obs_layout.slices()["pos_err"]
    err = (env.task.setpoint_m - obs[:, sl]) - info["privileged"][:, 0:3]
    assert err.std().item() == pytest.approx(0.05, rel=0.05) and abs(err.mean().item()) < 0.005


def test_geometric_controller_completes_a_racing_lap_on_the_reference():
    from ssm_mbrl_ros.control.geometric import GeometricController

    env = make_env("racing", 2, seed=0, overrides=("episode_length_s=7.0", "ref_speed_mps=4.0"))
    ctrl = GeometricController(env.vehicle, 2, control_dt_s=env.dt_s)
    _, info = env.reset()
    for _ in range(env.max_episode_steps):
        ref = env.reference()
        ctbr = ctrl.compute(info["privileged"][:, :17], ref["pos"], ref["vel"], ref["acc"], ref["yaw"])
        _, _, term, trunc, info = env.step_physical(ctbr)
        assert not term.any()
    assert trunc.all() and info["success"].all()
    lap = info["lap_time_s"]
    # first lap: from the start to the last gate along the path at 4 m/s, + 1 s lost in the ramp from rest
    expected = (env.task.path.gate_s_m[-1] - env.task.start_s_m) / 4.0 + 1.0
    assert torch.isfinite(lap).all() and (lap - expected).abs().max().item() < 0.3
    assert info["pos_rmse_m"].max().item() < 0.4
