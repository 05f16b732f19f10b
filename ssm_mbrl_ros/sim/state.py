"""Layout of the batched simulator state tensor and torch quaternion helpers.

State tensor: shape (N, 17), world frame ENU, body frame FLU (see core/frames.py):
    [0:3]   position p_W            m
    [3:7]   attitude q (w, x, y, z) body -> world, unit norm
    [7:10]  velocity v_W            m/s
    [10:13] body rates omega_B      rad/s (FLU: roll, pitch, yaw rates)
    [13:17] rotor speeds            rad/s (rotor order as in the vehicle file)
"""
from __future__ import annotations

import torch

from ..core.frames import quat_product_entries

STATE_DIM = 17
POS = slice(0, 3)
QUAT = slice(3, 7)
VEL = slice(7, 10)
OMEGA = slice(10, 13)
ROTOR = slice(13, 17)
STATE_NAMES = (
    ["px", "py", "pz", "qw", "qx", "qy", "qz", "vx", "vy", "vz", "wx", "wy", "wz"]
    + [f"rotor{i}" for i in range(4)]
)
GRAVITY_MPS2 = 9.81


def quat_rotate(q: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Rotate vectors v (..., 3) by unit quaternions q (..., 4) (body -> world for attitudes)."""
    u = q[..., 1:]
    t = 2.0 * torch.linalg.cross(u, v, dim=-1)
    return v + q[..., :1] * t + torch.linalg.cross(u, t, dim=-1)


def quat_rotate_inverse(q: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Rotate vectors v by the inverse of q (world -> body for attitudes)."""
    u = -q[..., 1:]
    t = 2.0 * torch.linalg.cross(u, v, dim=-1)
    return v + q[..., :1] * t + torch.linalg.cross(u, t, dim=-1)


def quat_multiply(q1: torch.Tensor, q2: torch.Tensor) -> torch.Tensor:
    """Hamilton product of (w, x, y, z) quaternions."""
    return torch.stack(quat_product_entries(q1.unbind(-1), q2.unbind(-1)), dim=-1)


def quat_to_rotmat(q: torch.Tensor) -> torch.Tensor:
    """Rotation matrices (..., 3, 3) from unit (w, x, y, z) quaternions."""
    w, x, y, z = q.unbind(-1)
    return torch.stack(
        (
            1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y),
            2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x),
            2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y),
        ),
        dim=-1,
    ).reshape(q.shape[:-1] + (3, 3))


def quat_from_yaw(yaw_rad: torch.Tensor) -> torch.Tensor:
    """Quaternion (..., 4) of a pure rotation about world z by yaw_rad."""
    half = 0.5 * yaw_rad
    zero = torch.zeros_like(half)
    return torch.stack((torch.cos(half), zero, zero, torch.sin(half)), dim=-1)


def yaw_of(q: torch.Tensor) -> torch.Tensor:
    """Heading (rad) of attitude quaternions: atan2 of the body x-axis in the world xy-plane."""
    w, x, y, z = q.unbind(-1)
    return torch.atan2(2 * (w * z + x * y), 1 - 2 * (y * y + z * z))


def tilt_cos(q: torch.Tensor) -> torch.Tensor:
    """Cosine of the angle between body z and world z (1 = level, 0 = on its side)."""
    x, y = q[..., 1], q[..., 2]
    return 1 - 2 * (x * x + y * y)
