"""Synthetic episodes for the replay tests (smooth, physically consistent kinematics)."""
from __future__ import annotations

import numpy as np

from ssm_mbrl_ros.core import frames
from ssm_mbrl_ros.core.spaces import ActionSpec

SPEC = ActionSpec(0.0, 45.0, (12.0, 12.0, 6.0))
REWARD = {"pos_weight": 1.0, "pos_scale_m": 0.5, "vel_weight": 0.01, "rate_weight": 0.002,
          "smooth_weight": 0.02, "crash_penalty": 10.0}


def make_episode(n: int = 50, seed: int = 0, hz: float = 100.0, terminated: bool = False, privileged: bool = True):
    """An EpisodeRecord with a smooth trajectory, a hover setpoint and a full self-description."""
    from ssm_mbrl_ros.bags.store import EpisodeRecord

    rng = np.random.default_rng(seed)
    t = np.arange(n) / hz
    a, w = rng.uniform(0.5, 2.0, 3), rng.uniform(0.5, 2.0, 3)
    pos = a * np.sin(w * t[:, None]) + np.array([0, 0, 2.0])
    vel = a * w * np.cos(w * t[:, None])
    eul = 0.3 * np.sin(w * t[:, None] + 1.0)
    quat = frames.quat_normalize(frames.quat_from_euler_zyx(eul[:, 0], eul[:, 1], eul[:, 2]))
    omega = rng.normal(size=(n, 3))
    state = np.concatenate([pos, quat, vel, omega, np.full((n, 4), 1000.0)], 1)
    ctbr = np.concatenate([rng.uniform(5, 15, (n, 1)), rng.uniform(-2, 2, (n, 3))], 1)
    priv = np.concatenate([state, np.ones((n, 5)), rng.normal(size=(n, 3))], 1) if privileged else None
    info = {"task": "hover", "vehicle": "agile5", "seed": seed, "control_hz": hz, "terminated": terminated,
            "setpoint_m": [0.5, -0.5, 2.0], "action_spec": SPEC.to_dict(), "reward": REWARD}
    return EpisodeRecord(state, ctbr, priv, info)
