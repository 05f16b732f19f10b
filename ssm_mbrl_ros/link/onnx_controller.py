"""An exported hover policy as a `state17 -> ctbr` controller for the offboard loop (link/offboard_loop.py).

Builds the hover observation from the link's state estimate exactly as the simulator does
(setpoint - position in world ENU m, world velocity m/s, body->world rotation matrix row-major,
body FLU rates rad/s, previous normalised action), steps the ONNX graph through the torch-free
runtime, and keeps the world model's surprise of the last step for the safety supervisor.
"""
from __future__ import annotations

import numpy as np

from ssm_mbrl_ros.core.frames import quat_to_rotmat
from ssm_mbrl_ros.runtime.policy import OnnxPolicy

HOVER_FIELDS = ["pos_err", "vel", "rotmat", "omega", "last_action"]


class OnnxHoverController:
    """Hold target_pos_m (ENU) with an exported hover policy; callable(state17, t_s) -> ctbr (4,)."""

    def __init__(self, onnx_path, target_pos_m, carrot_m: float = 1.0):
        self.policy = OnnxPolicy(onnx_path)
        names = [f.name for f in self.policy.obs_layout.fields]
        if names != HOVER_FIELDS:
            raise ValueError(f"{onnx_path}: observation fields {names} are not the hover layout {HOVER_FIELDS}; "
                             f"only hover policies can hold a position through the link")
        self.target = np.asarray(target_pos_m, float)
        self.carrot_m = carrot_m
        self.last_action = np.zeros(4, np.float32)
        self.last_surprise: float | None = None
        self._obs = np.zeros(self.policy.obs_dim, np.float32)  # reused every step
        self.policy.reset(1)

    def reset(self) -> None:
        """Forget the recurrent state (a new flight or a mode change)."""
        self.policy.reset(1)
        self.last_action[:] = 0.0

    def observation(self, state17: np.ndarray) -> np.ndarray:
        """The hover observation (22,) for a simulator-layout state (ENU/FLU), as the simulator builds it."""
        s = np.asarray(state17, float)
        err = self.target - s[0:3]
        dist = float(np.linalg.norm(err))
        if dist > self.carrot_m:  # the policy was trained on setpoints within a few metres: approach via a carrot
            err = err * (self.carrot_m / dist)
        o = self._obs
        o[0:3], o[3:6], o[6:15], o[15:18], o[18:22] = (err, s[7:10], quat_to_rotmat(s[3:7]).reshape(9), s[10:13],
                                                       self.last_action)
        return o

    def __call__(self, state17: np.ndarray, t_s: float) -> np.ndarray:
        """CTBR (4,): thrust m/s^2, body rates FLU rad/s (a view valid until the next call)."""
        action, ctbr, surprise = self.policy.step(self.observation(state17), copy=False)
        self.last_action[:] = action
        self.last_surprise = float(surprise)
        return ctbr
