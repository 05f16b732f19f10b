"""An exported hover policy as a `state17 -> ctbr` controller for the offboard loop (link/offboard_loop.py).

Builds the hover observation from the link's state estimate exactly as the simulator does
(setpoint - position in world ENU m, world velocity m/s, body->world rotation matrix row-major,
body FLU rates rad/s, previous normalised action), steps the ONNX graph through the torch-free
runtime, and keeps the world model's surprise of the last step for the safety supervisor.

The policy runs at the control rate it was trained at (the sidecar's control_hz), whatever rate the loop calls it:
between two policy steps the last command is held (action repeat), as in the simulator the policy learned in.
"""
from __future__ import annotations

import math

import numpy as np

from ssm_mbrl_ros.core.observation import observation_entries
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
        self.period_s = 1.0 / self.policy.control_hz
        self._next_step_s: float | None = None  # loop time of the next policy step
        self._ctbr = np.zeros(4, np.float32)
        self._obs = np.zeros(self.policy.obs_dim, np.float32)  # reused every step
        self.policy.reset(1)

    def reset(self) -> None:
        """Forget the recurrent state (a new flight or a mode change)."""
        self.policy.reset(1)
        self.last_action[:] = 0.0
        self._next_step_s = None

    def observation(self, state17: np.ndarray) -> np.ndarray:
        """The hover observation (22,) for a simulator-layout state (ENU/FLU), as the simulator builds it."""
        s = state17
        ex, ey, ez = self.target[0] - s[0], self.target[1] - s[1], self.target[2] - s[2]
        dist = math.sqrt(ex * ex + ey * ey + ez * ez)
        if dist > self.carrot_m:  # the policy was trained on setpoints within a few metres: approach via a carrot
            k = self.carrot_m / dist
            ex, ey, ez = ex * k, ey * k, ez * k
        self._obs[:] = observation_entries((ex, ey, ez), s[7:10], s[3:7], s[10:13], self.last_action)
        return self._obs

    def __call__(self, state17: np.ndarray, t_s: float) -> np.ndarray:
        """CTBR (4,): thrust m/s^2, body rates FLU rad/s (a view valid until the next call); a new policy step once
        per policy period (t_s: loop time, s), the held command in between."""
        # a 5 % tolerance keeps a loop at exactly the policy rate from skipping steps on timer jitter
        if self._next_step_s is None or t_s >= self._next_step_s - 0.05 * self.period_s:
            action, ctbr, surprise = self.policy.step(self.observation(state17), copy=False)
            self.last_action[:] = action
            self.last_surprise = float(surprise)
            self._ctbr[:] = ctbr
            late = self._next_step_s is None or t_s - self._next_step_s > self.period_s
            self._next_step_s = (t_s if late else self._next_step_s) + self.period_s
        return self._ctbr
