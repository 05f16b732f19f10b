"""Frame and quaternion conventions, stated once for the whole stack.

ROS side (REP-103/105): world frame ENU (x east, y north, z up), body frame FLU (x forward,
y left, z up). PX4 side: world NED (x north, y east, z down), body FRD (x forward, y right,
z down).

Quaternions are arrays ordered (w, x, y, z), Hamilton product, unit norm, and rotate body
vectors into the world frame: v_world = q * v_body * q^-1. ROS messages store (x, y, z, w) as
named fields and PX4/MAVLink store (w, x, y, z) arrays; convert at the message boundary with
`quat_wxyz_to_xyzw` / `quat_xyzw_to_wxyz`.

All functions take numpy arrays with the vector/quaternion on the last axis and any leading
batch shape.
"""
from __future__ import annotations

import numpy as np

_S = np.sqrt(0.5)
# Rotation taking ENU-world coordinates to NED-world coordinates (180 deg about (1, 1, 0)/sqrt 2).
Q_NED_FROM_ENU = np.array([0.0, _S, _S, 0.0])
# Rotation taking FRD-body coordinates to FLU-body coordinates (180 deg about x); self-inverse.
Q_FLU_FROM_FRD = np.array([0.0, 1.0, 0.0, 0.0])


def quat_product_entries(a, b) -> tuple:
    """The 4 components (w, x, y, z) of the Hamilton product a * b from the components of a and b (scalars, numpy
    arrays or torch tensors: the one definition behind the numpy and torch quat_multiply)."""
    w1, x1, y1, z1 = a
    w2, x2, y2, z2 = b
    return (w1 * w2 - x1 * x2 - y1 * y2 - z1 * z2,
            w1 * x2 + x1 * w2 + y1 * z2 - z1 * y2,
            w1 * y2 - x1 * z2 + y1 * w2 + z1 * x2,
            w1 * z2 + x1 * y2 - y1 * x2 + z1 * w2)


def quat_multiply(q1: np.ndarray, q2: np.ndarray) -> np.ndarray:
    """Hamilton product q1 * q2 of (w, x, y, z) quaternions."""
    a = np.moveaxis(np.asarray(q1, dtype=float), -1, 0)
    b = np.moveaxis(np.asarray(q2, dtype=float), -1, 0)
    return np.stack(quat_product_entries(a, b), axis=-1)


def quat_conjugate(q: np.ndarray) -> np.ndarray:
    """Conjugate (= inverse for unit quaternions) of (w, x, y, z) quaternions."""
    q = np.asarray(q, dtype=float)
    return q * np.array([1.0, -1.0, -1.0, -1.0])


def quat_normalize(q: np.ndarray) -> np.ndarray:
    """Unit-normalise quaternions and pick the w >= 0 hemisphere (a unique representative)."""
    q = np.asarray(q, dtype=float)
    q = q / np.linalg.norm(q, axis=-1, keepdims=True)
    return np.where(q[..., :1] < 0.0, -q, q)


def quat_rotate(q: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Rotate 3-vectors v by unit quaternions q (body -> world for an attitude quaternion)."""
    q = np.asarray(q, dtype=float)
    v = np.asarray(v, dtype=float)
    u = q[..., 1:]
    t = 2.0 * np.cross(u, v)
    return v + q[..., :1] * t + np.cross(u, t)


def rotmat_entries(w, x, y, z) -> tuple:
    """The 9 entries of the body->world rotation matrix of a unit (w, x, y, z) quaternion, row-major; the components
    may be floats, numpy arrays or torch tensors (elementwise arithmetic only): the one formula the simulator's
    observation, the flight-side observation and quat_to_rotmat share."""
    xx, yy, zz, xy, xz, yz = x * x, y * y, z * z, x * y, x * z, y * z
    wx, wy, wz = w * x, w * y, w * z
    return (1 - 2 * (yy + zz), 2 * (xy - wz), 2 * (xz + wy),
            2 * (xy + wz), 1 - 2 * (xx + zz), 2 * (yz - wx),
            2 * (xz - wy), 2 * (yz + wx), 1 - 2 * (xx + yy))


def quat_to_rotmat(q: np.ndarray) -> np.ndarray:
    """Rotation matrices (..., 3, 3) from unit (w, x, y, z) quaternions."""
    w, x, y, z = np.moveaxis(np.asarray(q, dtype=float), -1, 0)
    m = rotmat_entries(w, x, y, z)
    return np.stack([np.stack(m[0:3], -1), np.stack(m[3:6], -1), np.stack(m[6:9], -1)], axis=-2)


def quat_from_euler_zyx(roll_rad, pitch_rad, yaw_rad) -> np.ndarray:
    """(w, x, y, z) quaternion from intrinsic Z-Y-X (yaw, pitch, roll) Euler angles in radians."""
    cr, sr = np.cos(np.asarray(roll_rad) / 2), np.sin(np.asarray(roll_rad) / 2)
    cp, sp = np.cos(np.asarray(pitch_rad) / 2), np.sin(np.asarray(pitch_rad) / 2)
    cy, sy = np.cos(np.asarray(yaw_rad) / 2), np.sin(np.asarray(yaw_rad) / 2)
    return np.stack(
        [
            cr * cp * cy + sr * sp * sy,
            sr * cp * cy - cr * sp * sy,
            cr * sp * cy + sr * cp * sy,
            cr * cp * sy - sr * sp * cy,
        ],
        axis=-1,
    )


def quat_to_euler_zyx(q: np.ndarray) -> np.ndarray:
    """(roll, pitch, yaw) in radians from (w, x, y, z) quaternions (intrinsic Z-Y-X)."""
    w, x, y, z = np.moveaxis(np.asarray(q, dtype=float), -1, 0)
    roll = np.arctan2(2 * (w * x + y * z), 1 - 2 * (x * x + y * y))
    pitch = np.arcsin(np.clip(2 * (w * y - z * x), -1.0, 1.0))
    yaw = np.arctan2(2 * (w * z + x * y), 1 - 2 * (y * y + z * z))
    return np.stack([roll, pitch, yaw], axis=-1)


def quat_wxyz_to_xyzw(q: np.ndarray) -> np.ndarray:
    """Reorder (w, x, y, z) -> (x, y, z, w), the field order of ROS geometry_msgs/Quaternion."""
    return np.roll(np.asarray(q, dtype=float), -1, axis=-1)


def quat_xyzw_to_wxyz(q: np.ndarray) -> np.ndarray:
    """Reorder (x, y, z, w) -> (w, x, y, z)."""
    return np.roll(np.asarray(q, dtype=float), 1, axis=-1)


def enu_to_ned(v: np.ndarray) -> np.ndarray:
    """World vector (position m, velocity m/s, ...) from ENU to NED: (e, n, u) -> (n, e, -u)."""
    v = np.asarray(v, dtype=float)
    return np.stack([v[..., 1], v[..., 0], -v[..., 2]], axis=-1)


def ned_to_enu(v: np.ndarray) -> np.ndarray:
    """World vector from NED to ENU: (n, e, d) -> (e, n, -d). The map is its own inverse."""
    return enu_to_ned(v)


def flu_to_frd(v: np.ndarray) -> np.ndarray:
    """Body vector (body rates rad/s, forces, ...) from FLU to FRD: (x, y, z) -> (x, -y, -z)."""
    v = np.asarray(v, dtype=float)
    return v * np.array([1.0, -1.0, -1.0])


def frd_to_flu(v: np.ndarray) -> np.ndarray:
    """Body vector from FRD to FLU (the same sign flip, its own inverse)."""
    return flu_to_frd(v)


def attitude_enu_flu_to_ned_frd(q_enu_flu: np.ndarray) -> np.ndarray:
    """Attitude quaternion FLU->ENU (ROS) into FRD->NED (PX4): q_ned_frd = q_ned_enu q_enu_flu q_flu_frd."""
    q = quat_multiply(quat_multiply(Q_NED_FROM_ENU, q_enu_flu), Q_FLU_FROM_FRD)
    return quat_normalize(q)


def attitude_ned_frd_to_enu_flu(q_ned_frd: np.ndarray) -> np.ndarray:
    """Attitude quaternion FRD->NED (PX4) into FLU->ENU (ROS); inverse of the function above."""
    q_enu_ned = quat_conjugate(Q_NED_FROM_ENU)
    q = quat_multiply(quat_multiply(q_enu_ned, q_ned_frd), Q_FLU_FROM_FRD)
    return quat_normalize(q)
