"""Visualisation messages for RViz: TF odom -> base_link, reference / trail as nav_msgs/Path, gates and setpoints
as visualization_msgs/MarkerArray. Builders only (no publishers), all in the `odom` frame (ENU, m).

tf2_msgs has no PyPI wheel, so TF is published only where tf2_msgs is importable (a ROS 2 install);
`tf_available()` says which.
"""
from __future__ import annotations

from collections import deque

import numpy as np
from geometry_msgs.msg import Point, PoseStamped, TransformStamped
from nav_msgs.msg import Path
from visualization_msgs.msg import Marker, MarkerArray

from .conversions import BODY_FRAME, WORLD_FRAME


def tf_available() -> bool:
    """True where tf2_msgs (TFMessage on /tf) can be imported."""
    try:
        import tf2_msgs.msg  # noqa: F401
    except ImportError:
        return False
    return True


def odom_transform(state17: np.ndarray, stamp, msg: TransformStamped | None = None,
                   frames=(WORLD_FRAME, BODY_FRAME)) -> TransformStamped:
    """odom -> base_link transform from a simulator-layout state (pos m ENU, quat wxyz body->world)."""
    msg = msg or TransformStamped()
    msg.header.stamp = stamp
    msg.header.frame_id, msg.child_frame_id = frames
    t, r = msg.transform.translation, msg.transform.rotation
    t.x, t.y, t.z = (float(x) for x in state17[0:3])
    r.w, r.x, r.y, r.z = (float(x) for x in state17[3:7])
    return msg


def path_msg(points_m: np.ndarray, stamp, quats_wxyz: np.ndarray | None = None, world_frame: str = WORLD_FRAME) -> Path:
    """nav_msgs/Path through points (M, 3) m in odom; orientations identity unless given (M, 4) wxyz."""
    msg = Path()
    msg.header.stamp = stamp
    msg.header.frame_id = world_frame
    for i, p in enumerate(np.asarray(points_m, float).reshape(-1, 3)):
        ps = PoseStamped()
        ps.header = msg.header
        ps.pose.position.x, ps.pose.position.y, ps.pose.position.z = (float(x) for x in p)
        q = quats_wxyz[i] if quats_wxyz is not None else (1.0, 0.0, 0.0, 0.0)
        o = ps.pose.orientation
        o.w, o.x, o.y, o.z = (float(x) for x in q)
        msg.poses.append(ps)
    return msg


def _marker(stamp, ns: str, mid: int, kind: int, rgba, scale, world_frame: str = WORLD_FRAME) -> Marker:
    m = Marker()
    m.header.stamp = stamp
    m.header.frame_id = world_frame
    m.ns, m.id, m.type, m.action = ns, mid, kind, Marker.ADD
    m.pose.orientation.w = 1.0
    m.scale.x, m.scale.y, m.scale.z = (float(s) for s in scale)
    m.color.r, m.color.g, m.color.b, m.color.a = (float(c) for c in rgba)
    return m


def task_markers(stamp, setpoint_m=None, gate_corners_m=None, reference_m=None,
                 world_frame: str = WORLD_FRAME) -> MarkerArray:
    """A DELETEALL then: setpoint sphere (0.1 m radius = the hover success radius), one LINE_STRIP per gate
    opening (corners (G, 5, 3) m), and the reference path as a thin LINE_STRIP."""
    out = MarkerArray()
    clear = Marker()
    clear.header.stamp, clear.header.frame_id, clear.action = stamp, world_frame, Marker.DELETEALL
    out.markers.append(clear)
    if setpoint_m is not None:
        m = _marker(stamp, "setpoint", 0, Marker.SPHERE, (0.1, 0.8, 0.1, 0.6), (0.2, 0.2, 0.2), world_frame)
        m.pose.position.x, m.pose.position.y, m.pose.position.z = (float(x) for x in np.ravel(setpoint_m)[:3])
        out.markers.append(m)
    if gate_corners_m is not None:
        for g, corners in enumerate(np.asarray(gate_corners_m, float)):
            m = _marker(stamp, "gates", g, Marker.LINE_STRIP, (1.0, 0.5, 0.0, 1.0), (0.05, 0.0, 0.0), world_frame)
            m.points = [Point(x=float(c[0]), y=float(c[1]), z=float(c[2])) for c in corners]
            out.markers.append(m)
    if reference_m is not None and len(reference_m) > 1:
        m = _marker(stamp, "reference", 0, Marker.LINE_STRIP, (0.2, 0.4, 1.0, 0.8), (0.02, 0.0, 0.0), world_frame)
        m.points = [Point(x=float(p[0]), y=float(p[1]), z=float(p[2])) for p in np.asarray(reference_m, float)]
        out.markers.append(m)
    return out


class Trail:
    """The recent flown path: positions kept at most every min_dt_s for window_s seconds."""

    def __init__(self, window_s: float = 10.0, min_dt_s: float = 0.1, world_frame: str = WORLD_FRAME):
        self.min_dt_s, self.world_frame = min_dt_s, world_frame
        self.points: deque = deque(maxlen=max(2, int(window_s / min_dt_s)))
        self._last_s = -np.inf

    def add(self, t_s: float, pos_m) -> None:
        """Keep pos_m (3,) if min_dt_s passed since the last kept point; a time going backwards clears the trail."""
        if t_s < self._last_s:
            self.points.clear()
            self._last_s = -np.inf
        if t_s - self._last_s >= self.min_dt_s:
            self.points.append(np.array(pos_m[:3], float))
            self._last_s = t_s

    def msg(self, stamp) -> Path:
        """The trail as nav_msgs/Path in odom."""
        return path_msg(np.array(self.points).reshape(-1, 3), stamp, world_frame=self.world_frame)
