"""Message <-> array conversions (ENU/FLU, SI units) for the nodes.

nav_msgs/Odometry: header.frame_id odom (world ENU), child_frame_id base_link (body FLU); pose = position (m)
and attitude body->world; twist = linear velocity (m/s) and body rates (rad/s), both in the child frame.
geometry_msgs/TwistStamped CTBR: twist.angular = body rates FLU (rad/s), twist.linear.z = mass-normalised
collective thrust (m/s^2), twist.linear.x/y = 0, frame_id base_link.
"""
from __future__ import annotations

import numpy as np
from geometry_msgs.msg import TwistStamped
from nav_msgs.msg import Odometry

from ssm_mbrl_ros.sim.vec3 import rotate

WORLD_FRAME, BODY_FRAME = "odom", "base_link"  # REP-105; a vehicle in a namespace prefixes both (frame_prefix)


def resolve_frame_prefix(frame_prefix: str, namespace: str) -> str:
    """The prefix of every frame id a node writes: 'auto' = the node's namespace ('/drone1' -> 'drone1/', root ->
    ''), '' = none, anything else as given (with a trailing '/')."""
    if frame_prefix == "auto":
        frame_prefix = "/".join(t for t in namespace.split("/") if t)
    frame_prefix = frame_prefix.strip("/")
    return f"{frame_prefix}/" if frame_prefix else ""


def frame_ids(prefix: str = "") -> tuple[str, str]:
    """(world frame, body frame) with a prefix from resolve_frame_prefix: ('drone1/odom', 'drone1/base_link')."""
    return f"{prefix}{WORLD_FRAME}", f"{prefix}{BODY_FRAME}"


def odom_to_state17(msg: Odometry, out: np.ndarray) -> np.ndarray:
    """Fill out (17,) in the simulator layout: pos m ENU, quat wxyz body->world, world velocity m/s, rates FLU."""
    p, q, v, w = msg.pose.pose.position, msg.pose.pose.orientation, msg.twist.twist.linear, msg.twist.twist.angular
    quat = (q.w, q.x, q.y, q.z)
    vel = rotate(quat, (v.x, v.y, v.z))  # body FLU -> world ENU, scalar floats (hot path: no numpy temporaries)
    out[:] = (p.x, p.y, p.z, *quat, *vel, w.x, w.y, w.z, 0.0, 0.0, 0.0, 0.0)  # rotor speeds are not observed
    return out


def state17_to_odom(state: np.ndarray, msg: Odometry, stamp, frames=(WORLD_FRAME, BODY_FRAME)) -> Odometry:
    """Fill an Odometry from a simulator-layout state (world velocity rotated into the body frame); frames =
    (header frame, child frame)."""
    msg.header.stamp = stamp
    msg.header.frame_id, msg.child_frame_id = frames
    x, y, z, qw, qx, qy, qz, vx, vy, vz, wx, wy, wz = (float(c) for c in state[0:13])
    msg.pose.pose.position.x, msg.pose.pose.position.y, msg.pose.pose.position.z = x, y, z
    o = msg.pose.pose.orientation
    o.w, o.x, o.y, o.z = qw, qx, qy, qz
    t = msg.twist.twist
    t.linear.x, t.linear.y, t.linear.z = rotate((qw, -qx, -qy, -qz), (vx, vy, vz))  # world -> body: conjugate
    t.angular.x, t.angular.y, t.angular.z = wx, wy, wz
    return msg


def ctbr_to_twist(ctbr: np.ndarray, msg: TwistStamped, stamp, body_frame: str = BODY_FRAME) -> TwistStamped:
    """Fill a CTBR TwistStamped from (thrust m/s^2, roll, pitch, yaw rate rad/s FLU)."""
    msg.header.stamp = stamp
    msg.header.frame_id = body_frame
    msg.twist.linear.x = msg.twist.linear.y = 0.0
    msg.twist.linear.z = float(ctbr[0])
    msg.twist.angular.x, msg.twist.angular.y, msg.twist.angular.z = (float(x) for x in ctbr[1:4])
    return msg


def twist_to_ctbr(msg: TwistStamped, out: np.ndarray) -> np.ndarray:
    """(4,) CTBR from a TwistStamped (see module doc)."""
    out[0] = msg.twist.linear.z
    out[1:4] = (msg.twist.angular.x, msg.twist.angular.y, msg.twist.angular.z)
    return out
