"""A small random replay batch shared by the learner tests."""
import numpy as np

from ssm_mbrl_ros.train.sequence_buffer import SequenceBuffer


def replay_batch(obs_dim=22, priv=25, B=4, T=16):
    """A (B, T) batch sampled from 40 steps of 4 envs of random observations, actions and rewards."""
    buf = SequenceBuffer(4, obs_dim, 4, priv, 1000, seed=0)
    rng = np.random.default_rng(0)
    for t in range(40):
        buf.add(np.arange(4), obs=rng.standard_normal((4, obs_dim)), action=rng.uniform(-1, 1, (4, 4)),
                reward=rng.random(4), cont=np.ones(4), is_first=np.full(4, t == 0),
                privileged=rng.standard_normal((4, priv)))
    return buf.sample(B, T)
