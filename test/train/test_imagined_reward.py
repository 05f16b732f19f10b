"""The task's reward on imagined observations: on real observations it pays exactly what the simulator paid."""
import numpy as np
import pytest
import torch

from ssm_mbrl_ros.sim.env import make_env
from ssm_mbrl_ros.train.config import TrainConfig
from ssm_mbrl_ros.train.imagined_reward import observation_reward
from ssm_mbrl_ros.train.learner import Learner


def test_hover_observation_reward_equals_the_simulators_reward():
    env = make_env("hover", 8, seed=0)
    fn = observation_reward(env, "task")
    assert fn is not None
    obs, _ = env.reset(seed=0)
    gen = torch.Generator().manual_seed(0)
    prev = fn.previous_action(obs)
    checked = 0
    for _ in range(40):
        action = (0.3 * torch.randn(8, 4, generator=gen)).clamp(-1, 1)
        nxt, reward, terminated, truncated, _ = env.step(action)
        alive = ~(terminated | truncated)
        cont = (~terminated).to(reward.dtype)
        got = fn(nxt[:, None], prev[:, None], action[:, None], cont[:, None])[:, 0]
        # terminated rows pay the crash penalty in both; rows that reset show the next episode's first observation
        torch.testing.assert_close(got[alive], reward[alive], atol=1e-5, rtol=1e-5)
        checked += int(alive.sum())
        prev = fn.previous_action(nxt)
    assert checked > 200


def test_observation_reward_only_where_the_task_defines_one():
    assert observation_reward(make_env("hover", 2, seed=0), "head") is None
    assert observation_reward(make_env("hover_partial", 2, seed=0), "task") is None  # no velocity observed
    assert observation_reward(make_env("figure8", 2, seed=0), "task") is None
    with pytest.raises(ValueError, match="imagined_reward"):
        observation_reward(make_env("hover", 2, seed=0), "oracle")


def test_learner_scores_imagination_with_the_task_reward():
    """The imagined reward is the reward function of the decoded observations, not the reward head."""
    torch.manual_seed(0)
    env = make_env("hover", 4, seed=0)
    fn = observation_reward(env, "task")
    cfg = TrainConfig(imag_starts=16, horizon=4, actor_warmup_updates=0, actor_gate_r2=0.0)
    learner = Learner(cfg, env.obs_layout.dim, env.privileged_layout.dim, reward_fn=fn)
    seen = {}
    orig = fn.__call__

    class Spy:
        previous_action = staticmethod(fn.previous_action)

        def __call__(self, obs, prev, action, cont):
            seen["shapes"] = (obs.shape, prev.shape, action.shape, cont.shape)
            seen["first_prev"] = prev[:, 0].detach().clone()
            return orig(obs, prev, action, cont)

    learner.reward_fn = Spy()
    rng = np.random.default_rng(0)
    B, T, D = 2, 16, env.obs_layout.dim
    obs = rng.normal(size=(B, T, D)).astype(np.float32)
    batch = {"obs": obs, "action": rng.uniform(-1, 1, (B, T, 4)).astype(np.float32),
             "reward": np.zeros((B, T), np.float32), "cont": np.ones((B, T), np.float32),
             "is_first": np.zeros((B, T), bool), "privileged": np.zeros((B, T, env.privileged_layout.dim), np.float32)}
    batch["is_first"][:, 0] = True
    metrics = learner.update(batch)
    assert np.isfinite(metrics["imag_reward"])
    assert seen["shapes"][0] == (16, 4, D) and seen["shapes"][1] == seen["shapes"][2] == (16, 4, 4)
    # the action before each start state is that observation's last_action block, taken from the batch itself
    flat = torch.as_tensor(obs.reshape(-1, D))[:, fn.last_action]
    assert all((flat == row).all(-1).any() for row in seen["first_prev"])


@pytest.mark.parametrize("sample", [True, False])
def test_imagine_sample_decides_whether_imagination_draws_latents(sample, monkeypatch):
    torch.manual_seed(0)
    cfg = TrainConfig(imag_starts=8, horizon=3, actor_warmup_updates=0, actor_gate_r2=0.0, imagine_sample=sample)
    learner = Learner(cfg, 22, 0)
    seen = []
    orig = learner.wm.imagine
    monkeypatch.setattr(learner.wm, "imagine", lambda *a, **kw: seen.append(kw.get("sample")) or orig(*a, **kw))
    rng = np.random.default_rng(0)
    batch = {"obs": rng.normal(size=(2, 8, 22)).astype(np.float32),
             "action": rng.uniform(-1, 1, (2, 8, 4)).astype(np.float32), "reward": np.zeros((2, 8), np.float32),
             "cont": np.ones((2, 8), np.float32), "is_first": np.zeros((2, 8), bool)}
    learner.update(batch)
    assert seen == [sample]
    with pytest.raises(Exception, match="imagined_reward"):
        TrainConfig(imagined_reward="oracle").validate()
