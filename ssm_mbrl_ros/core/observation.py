"""The part of the observation every task shares after its own block, defined once for the simulator
(sim/env.py), the bag dataset (bags/dataset.py) and the flight-side controllers (link/onnx_controller.py).

Layout: task block | velocity (world ENU m/s; left out under partial observation) | rotation matrix (body -> world,
row-major) | body rates (FLU rad/s) | previous normalised action. Works on scalars, numpy arrays or torch tensors
alike: every entry is one channel, and the caller stacks them (or writes them into a buffer).
"""
from __future__ import annotations

from .frames import rotmat_entries
from .spaces import ObsField

VEL_FIELD = ObsField("vel", 3, "m/s", "world ENU", "velocity")
COMMON_FIELDS = (
    ObsField("rotmat", 9, "", "body->world", "attitude rotation matrix, row-major"),
    ObsField("omega", 3, "rad/s", "body FLU", "body rates"),
    ObsField("last_action", 4, "", "normalised", "previous normalised CTBR action"),
)


def observation_blocks(task_block, vel, quat_wxyz, omega, last_action, stack=tuple) -> list:
    """The observation's blocks in order: task block, velocity (vel=None: partial observation, left out), the 9
    rotation-matrix entries of quat_wxyz combined by `stack` (e.g. torch.stack over dim 0), body rates, previous
    normalised action. Each block iterates over its channels."""
    w, x, y, z = quat_wxyz
    blocks = [task_block] + ([vel] if vel is not None else [])
    return blocks + [stack(rotmat_entries(w, x, y, z)), omega, last_action]


def observation_entries(task_entries, vel, quat_wxyz, omega, last_action) -> list:
    """The observation as a flat list of channels (scalars, or same-shaped arrays: the caller stacks them)."""
    return [e for block in observation_blocks(task_entries, vel, quat_wxyz, omega, last_action) for e in block]
