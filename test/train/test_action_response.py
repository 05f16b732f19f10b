"""The action-response probe: an untrained world model is action-blind, a briefly trained one answers probe actions
(roll, pitch, yaw, thrust up/down) as the simulator does; the trainer holds the actor back until it does."""
import json

import numpy as np
import pytest
import torch

from ssm_mbrl_ros.sim.env import make_env
from ssm_mbrl_ros.sim.state import GRAVITY_MPS2
from ssm_mbrl_ros.train.action_response import PROBES, ProbeConfig, probe_action_response
from ssm_mbrl_ros.train.collector import Collector
from ssm_mbrl_ros.train.config import resolve_train_config
from ssm_mbrl_ros.train.learner import Learner
from ssm_mbrl_ros.train.sequence_buffer import SequenceBuffer

OVERRIDES = ["control_hz=25"]
PROBE = ProbeConfig(starts=8)


def _make(n, seed):
    return make_env("hover", n, seed=seed, overrides=OVERRIDES)


def _setup(updates: int, seed: int = 0):
    """A learner whose world model trained `updates` times on hover data of the initial (hover-thrust) actor."""
    torch.manual_seed(seed)
    cfg = resolve_train_config(None, ["task_overrides=[control_hz=25]", "wm_lr=0.001", "batch_size=16",
                                      "seq_len=64", f"seed={seed}"]).validate()
    env = _make(16, seed)
    hover = env.action_spec.to_normalized(np.array([GRAVITY_MPS2, 0.0, 0.0, 0.0])).tolist()
    learner = Learner(cfg, env.obs_layout.dim, env.privileged_layout.dim, "cpu", hover_action=hover)
    buf = SequenceBuffer(16, env.obs_layout.dim, 4, env.privileged_layout.dim, 100_000, seed)
    col = Collector(env, buf, seed=seed)
    while col.env_steps < 8000:
        col.step(learner.wm, learner.actor)
    for _ in range(updates):
        learner.update(buf.sample(cfg.batch_size, cfg.seq_len), train_actor=False)
        col.step(learner.wm, learner.actor)
    learner.wm.eval()
    return learner, hover


@pytest.fixture(scope="module")
def trained():
    learner, hover = _setup(updates=600)
    return probe_action_response(learner.wm, _make, hover, PROBE)


def test_untrained_world_model_is_action_blind():
    learner, hover = _setup(updates=0)
    result = probe_action_response(learner.wm, _make, hover, PROBE)
    assert result["r2"]["omega"] < 0.3, result["r2"]
    assert set(result["per_probe"]) == {p[0] for p in PROBES}


def test_trained_world_model_answers_action_steps_like_the_simulator(trained):
    """Tolerances, with what this budget measured (Gaussian-latent S5WM with the default prior-feature heads, 600
    updates): body-rate R^2 0.81; roll / pitch 3.10 / -3.46 vs 2.65 / -2.65 rad/s; thrust up / down vertical velocity
    0.22 / -0.34 vs 0.39 / -0.42 m/s; attitude entries of roll / pitch with the simulator's sign at about half its size;
    summed reward within 5 %. (At 300 updates the vertical-velocity response was borderline with or without the
    prior-feature heads: 0.16-0.25 m/s over two seeds.) Position is NOT imagined right at this budget."""
    r2 = trained["r2"]
    # imagination explains at least half the spread of body-rate changes across probes and starts
    assert r2["omega"] >= 0.5, json.dumps(r2)
    per = trained["per_probe"]
    for name, axis in (("roll", 0), ("pitch", 1)):
        sim, img = per[name]["omega"]["sim"][axis], per[name]["omega"]["imagined"][axis]
        # the commanded axis answers with the simulator's sign and within half of its magnitude
        assert np.sign(img) == np.sign(sim) and abs(img - sim) <= 0.5 * abs(sim), (name, sim, img)
        # and the other axes stay quiet (less than a quarter of the commanded response)
        others = [abs(v) for i, v in enumerate(per[name]["omega"]["imagined"]) if i != axis]
        assert max(others) < 0.25 * abs(sim), (name, per[name]["omega"])
    # attitude integrates the rates: the rotation-matrix entry a roll (R_zy, index 7) or pitch (R_zx, index 6) moves
    # most changes with the simulator's sign
    for name, entry in (("roll", 7), ("pitch", 6)):
        sim, img = per[name]["att"]["sim"][entry], per[name]["att"]["imagined"][entry]
        assert abs(sim) > 0.2 and np.sign(img) == np.sign(sim), (name, sim, img)
    # collective thrust: vertical velocity with the simulator's sign and within half of its magnitude
    for name in ("thrust_up", "thrust_down"):
        sim, img = per[name]["vel"]["sim"][2], per[name]["vel"]["imagined"][2]
        assert np.sign(img) == np.sign(sim) and abs(img - sim) <= 0.5 * abs(sim), (name, sim, img)
    # the reward summed over the probe horizon, within 35 % for every probe
    for name, rec in per.items():
        sim, img = rec["reward"]["sim"][0], rec["reward"]["imagined"][0]
        assert abs(img - sim) <= 0.35 * abs(sim), (name, sim, img)
    yaw_sim, yaw_img = per["yaw"]["omega"]["sim"][2], per["yaw"]["omega"]["imagined"][2]
    assert np.sign(yaw_img) == np.sign(yaw_sim), (yaw_sim, yaw_img)  # yaw: the sign only (0.09 vs 1.0 rad/s)


def test_probe_replicas_start_identical():
    envs = [_make(4, 3) for _ in range(2)]
    obs = [e.reset(seed=3)[0] for e in envs]
    torch.testing.assert_close(obs[0], obs[1])
