"""SequenceBuffer: windows are consecutive rows of one env, never cross the write position, survive a save."""
import numpy as np
import pytest

from ssm_mbrl_ros.train.sequence_buffer import SequenceBuffer


def fill(buf, steps, n=3):
    for t in range(steps):
        # obs[0] = global row counter of that env, obs[1] = env id: lets a test check contiguity
        obs = np.stack([np.full(n, t, float), np.arange(n, dtype=float)], 1)
        buf.add(np.arange(n), obs=obs, action=np.zeros((n, 1)), reward=np.full(n, t, float),
                is_first=np.full(n, t % 7 == 0))


def test_windows_are_contiguous_and_from_one_env_after_wrapping():
    buf = SequenceBuffer(3, 2, 1, 1, capacity_steps=3 * 20, seed=0)
    fill(buf, 53)  # each ring (20 rows) wrapped twice
    assert buf.num_steps == 60
    b = buf.sample(256, 8)
    assert b["obs"].shape == (256, 8, 2)
    t = b["obs"][..., 0]
    assert (np.diff(t, axis=1) == 1).all(), "rows of a window must be consecutive in time"
    assert (t.min() >= 53 - 20) and t.max() == 52, "only the newest 20 rows of each env are sampled"
    assert (b["obs"][..., 1] == b["obs"][:, :1, 1]).all(), "a window never mixes envs"
    assert b["is_first"][:, 0].all()
    np.testing.assert_array_equal(b["is_first"][:, 1:], (t[:, 1:] % 7) == 0)


def test_sampling_before_enough_rows_raises_and_state_round_trips():
    buf = SequenceBuffer(2, 2, 1, 1, capacity_steps=100)
    fill(buf, 3, n=2)
    with pytest.raises(ValueError, match="no window of 8"):
        buf.sample(4, 8)
    fill(buf, 30, n=2)
    state = buf.state_dict()
    other = SequenceBuffer(2, 2, 1, 1, capacity_steps=100, seed=5)
    other.load_state_dict(state)
    np.testing.assert_array_equal(other.ptr, buf.ptr)
    for k in buf.data:
        np.testing.assert_array_equal(other.data[k], buf.data[k])
    with pytest.raises(ValueError, match="num_envs / replay_capacity changed"):
        SequenceBuffer(3, 2, 1, 1, capacity_steps=100).load_state_dict(state)
