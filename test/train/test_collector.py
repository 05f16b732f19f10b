"""Collector: rows follow the batch convention; expert labels are the geometric controller's actions."""
import numpy as np
import torch

from ssm_mbrl_ros.control.experts import GeometricAgent
from ssm_mbrl_ros.sim.env import make_env
from ssm_mbrl_ros.train.collector import Collector
from ssm_mbrl_ros.train.config import TrainConfig
from ssm_mbrl_ros.train.learner import Learner
from ssm_mbrl_ros.train.sequence_buffer import SequenceBuffer


def setup(n=4, length_s=0.1):
    env = make_env("hover", n, seed=1, overrides=[f"episode_length_s={length_s}", "control_hz=100"])
    buf = SequenceBuffer(n, env.obs_layout.dim, 4, env.privileged_layout.dim, 4000)
    learner = Learner(TrainConfig(preset="tiny", actor_warmup_updates=0), env.obs_layout.dim,
                      env.privileged_layout.dim)
    return env, buf, Collector(env, buf, seed=1), learner


def test_episode_end_stores_the_final_observation_then_a_first_row():
    env, buf, col, learner = setup()
    for _ in range(12):  # episodes are 10 steps long
        col.step(learner.wm, learner.actor)
    rows = buf.data
    first = rows["is_first"][0, :int(buf.ptr[0])]
    assert first[0] and first.sum() == 2
    k = int(np.flatnonzero(first)[1])  # the new episode's first row ...
    assert k == 11  # ... follows 10 acting rows and the final-observation row of episode 1
    assert rows["reward"][0, k] == 0.0 and (rows["action"][0, k - 1] == 0).all()  # the final row is never acted on
    assert len(col.drain()) == 4 and col.env_steps == 48


def test_expert_labels_every_row_and_flies_only_masked_envs():
    env, buf, col, learner = setup(length_s=1.0)
    expert = GeometricAgent(env)
    flies = torch.tensor([True, True, False, False])
    scale, offset = (torch.as_tensor(x, dtype=torch.float32) for x in env.action_spec.scale_offset())
    want = ((expert.act(col.obs, env) - offset) / scale).clamp(-1, 1)
    expert.reset(None)
    col.step(learner.wm, learner.actor, expert=expert, expert_flies=flies, expert_noise=0.0)
    assert buf.data["expert"][:, 0].all()
    np.testing.assert_allclose(buf.data["expert_action"][:, 0], want.numpy(), atol=1e-5)
    np.testing.assert_allclose(buf.data["action"][:2, 0], want[:2].numpy(), atol=1e-5)  # expert flew envs 0, 1
    assert not np.allclose(buf.data["action"][2:, 0], want[2:].numpy(), atol=1e-3)  # the policy flew 2, 3


def test_behaviour_cloning_pulls_the_actor_to_the_labels():
    env, buf, col, learner = setup(length_s=1.0)
    learner = Learner(TrainConfig(preset="tiny", expert="geometric", actor_warmup_updates=10_000, actor_lr=3e-3,
                                  batch_size=8, seq_len=16), env.obs_layout.dim, env.privileged_layout.dim)
    expert = GeometricAgent(env)
    for _ in range(40):
        col.step(learner.wm, learner.actor, expert=expert, expert_flies=True, expert_noise=0.1)
    losses = [learner.update(buf.sample(8, 16))["bc_loss"] for _ in range(60)]
    assert np.mean(losses[-10:]) < 0.5 * np.mean(losses[:5]), losses
