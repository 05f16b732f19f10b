"""state_bridge: the vehicle's state as `odom`, from the simulator, the flight controller or motion capture.

Parameter `source` (read once):
  sim    the simulator in real time, consuming cmd_ctbr (sim_bridge_node.SimSource)
  px4    flight-controller odometry (`fc/odom`, nav_msgs/Odometry in ENU/FLU, published by the fc_link node from
         MAVLink telemetry or px4_msgs) passed on with a covariance where the input has none
  mocap  a motion-capture pose (`mocap/pose`, geometry_msgs/PoseStamped, ENU world / FLU body) turned into
         odometry: velocity from a constant-velocity Kalman filter, body rates from attitude differences,
         covariance from the filter (estimation/pose_estimator.py)
Every source publishes
  odom       nav_msgs/Odometry, sensor-data QoS: pose in odom (ENU m), twist in base_link (FLU m/s, rad/s)
  /tf        odom -> base_link (where tf2_msgs is importable: a ROS 2 install; there is no PyPI wheel)
  trail      nav_msgs/Path of the last trail_s seconds (2 Hz)
  reference, markers   (sim) the episode's reference path and setpoint / gate markers, latched
px4 and mocap also publish `odom_stale` (std_msgs/Bool, latched, on every change): true while no input arrived
for stale_after_s; odometry is never republished from old data, so downstream staleness guards see the gap.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
from geometry_msgs.msg import PoseStamped
from nav_msgs.msg import Odometry, Path
from rcl_interfaces.msg import ParameterDescriptor
from rclpy.node import Node
from rclpy.qos import QoSDurabilityPolicy, QoSProfile, qos_profile_sensor_data
from std_msgs.msg import Bool
from visualization_msgs.msg import MarkerArray

from ssm_mbrl_ros.core.config import ConfigError, doc
from ssm_mbrl_ros.estimation.pose_estimator import EstimatorConfig, PoseVelocityEstimator, Staleness
from ssm_mbrl_ros.ros.conversions import frame_ids, odom_to_state17, resolve_frame_prefix, state17_to_odom
from ssm_mbrl_ros.ros.params import read_config, run_node
from ssm_mbrl_ros.ros.viz import Trail, odom_transform, tf_available

SOURCES = ("mocap", "px4", "sim")
LATCHED = QoSProfile(depth=1, durability=QoSDurabilityPolicy.TRANSIENT_LOCAL)


@dataclass
class OutputConfig:
    """Outputs every source shares."""

    odom_topic: str = doc("odometry output topic", default="odom")
    publish_tf: bool = doc("broadcast odom -> base_link on /tf (needs tf2_msgs)", default=True)
    trail_s: float = doc("length of the flown-path trail published on `trail` (s; 0 = off)", default=10.0,
                         range=(0.0, 3600.0))
    frame_prefix: str = doc("prefix of every frame id (odom, base_link): 'auto' = the node's namespace ('/drone1' -> "
                            "'drone1/odom'), '' = none", default="auto")


@dataclass
class MeasuredConfig:
    """Inputs and staleness of the px4 / mocap sources."""

    input_topic: str = doc("input topic; empty = fc/odom (px4) or mocap/pose (mocap)", default="")
    stale_after_s: float = doc("no input for this long sets odom_stale (s)", default=0.05, range=(0.001, 10.0))
    vel_std_mps: float = doc("px4: velocity sigma reported when the input has no covariance (m/s)", default=0.1,
                               range=(0.0, 100.0))


class StateOutputs:
    """odom, TF, trail, reference and markers publishers of the bridge node."""

    def __init__(self, node: Node, cfg: OutputConfig):
        self.node, self.cfg = node, cfg
        self.frames = frame_ids(resolve_frame_prefix(cfg.frame_prefix, node.get_namespace()))  # (world, body)
        self.odom = Odometry()
        self.pub_odom = node.create_publisher(Odometry, cfg.odom_topic, qos_profile_sensor_data)
        self.pub_reference = node.create_publisher(Path, "reference", LATCHED)
        self.pub_markers = node.create_publisher(MarkerArray, "markers", LATCHED)
        self.pub_tf = self.tf_broadcaster = None
        if cfg.publish_tf:
            try:  # tf2's own broadcaster where tf2_ros is installed (a ROS 2 install)
                from tf2_ros import TransformBroadcaster

                self.tf_broadcaster = TransformBroadcaster(node)
            except ImportError:
                if tf_available():  # tf2_msgs alone: the same /tf messages, published directly
                    from tf2_msgs.msg import TFMessage

                    self._tf_msg = TFMessage
                    self.pub_tf = node.create_publisher(TFMessage, "/tf", 100)
                else:
                    node.get_logger().warning("neither tf2_ros nor tf2_msgs is importable: no odom -> base_link TF")
        self.trail = Trail(cfg.trail_s, world_frame=self.frames[0]) if cfg.trail_s > 0 else None
        if self.trail is not None:
            self.pub_trail = node.create_publisher(Path, "trail", 1)
            node.create_timer(0.5, lambda: self.pub_trail.publish(self.trail.msg(node.get_clock().now().to_msg())))

    def publish_state(self, state17: np.ndarray, now, pose_cov=None, twist_cov=None) -> None:
        """odom (+ covariances, 6x6) and TF at ROS time `now`, and a trail point."""
        stamp = now.to_msg()
        msg = state17_to_odom(state17, self.odom, stamp, self.frames)
        if pose_cov is not None:
            msg.pose.covariance = np.ascontiguousarray(pose_cov, float).ravel()
        if twist_cov is not None:
            msg.twist.covariance = np.ascontiguousarray(twist_cov, float).ravel()
        self.pub_odom.publish(msg)
        self.publish_tf(state17, stamp)
        if self.trail is not None:
            self.trail.add(now.nanoseconds * 1e-9, state17[0:3])

    def publish_tf(self, state17: np.ndarray, stamp) -> None:
        """odom -> base_link, where TF is available."""
        if self.tf_broadcaster is not None:
            self.tf_broadcaster.sendTransform(odom_transform(state17, stamp, frames=self.frames))
        elif self.pub_tf is not None:
            self.pub_tf.publish(self._tf_msg(transforms=[odom_transform(state17, stamp, frames=self.frames)]))

    def publish_task(self, reference: Path, markers: MarkerArray) -> None:
        """The episode's reference path and markers (latched)."""
        self.pub_reference.publish(reference)
        self.pub_markers.publish(markers)


class MeasuredSource:
    """px4 / mocap: measured state in, odom out, with a staleness flag."""

    def __init__(self, node: Node, outputs: StateOutputs, kind: str):
        self.node, self.out, self.kind = node, outputs, kind
        self.cfg = cfg = read_config(node, MeasuredConfig)
        self.est_cfg = read_config(node, EstimatorConfig)
        self.staleness = Staleness(cfg.stale_after_s)
        self.estimator = PoseVelocityEstimator(self.est_cfg)
        self._state = np.zeros(17)
        self.received = self.published = 0
        self.pub_stale = node.create_publisher(Bool, "odom_stale", LATCHED)
        self.pub_stale.publish(Bool(data=True))
        topic = cfg.input_topic or ("fc/odom" if kind == "px4" else "mocap/pose")
        msg_type, cb = (Odometry, self.on_fc_odom) if kind == "px4" else (PoseStamped, self.on_pose)
        node.create_subscription(msg_type, topic, cb, qos_profile_sensor_data)
        node.create_timer(min(0.01, cfg.stale_after_s / 2), self.check_stale)
        self._pose_cov = np.diag([self.est_cfg.pos_std_m ** 2] * 3 + [self.est_cfg.att_std_rad ** 2] * 3)
        self._twist_cov = np.diag([cfg.vel_std_mps ** 2] * 3 + [self.est_cfg.rate_std_radps ** 2] * 3)
        node.get_logger().info(f"state from {kind} on {topic} -> {outputs.cfg.odom_topic}")

    def _seen(self) -> None:
        self.received += 1
        if self.staleness.seen(time.monotonic()):
            self.pub_stale.publish(Bool(data=False))

    def check_stale(self) -> None:
        """Raise odom_stale when the input stopped (and log it once per gap)."""
        if self.staleness.check(time.monotonic()):
            self.pub_stale.publish(Bool(data=self.staleness.stale))
            if self.staleness.stale:
                self.node.get_logger().warning(f"{self.kind} input stale (> {self.cfg.stale_after_s} s)")

    def on_fc_odom(self, msg: Odometry) -> None:
        """Flight-controller odometry: pass on, filling a covariance where the input has none."""
        self._seen()
        state = odom_to_state17(msg, self._state)
        pose_cov, twist_cov = np.asarray(msg.pose.covariance), np.asarray(msg.twist.covariance)
        if not (pose_cov.any() or twist_cov.any()):
            pose_cov, twist_cov = self._pose_cov, self._twist_cov
        self.out.publish_state(state, rclpy_time(msg.header.stamp), pose_cov, twist_cov)
        self.published += 1

    def on_pose(self, msg: PoseStamped) -> None:
        """Motion-capture pose: estimator update, then odom stamped with the pose's stamp."""
        self._seen()
        p, q = msg.pose.position, msg.pose.orientation
        t_s = msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9
        if not self.estimator.update(t_s, (p.x, p.y, p.z), (q.w, q.x, q.y, q.z)) or not self.estimator.ready:
            return
        self.out.publish_state(self.estimator.state17(self._state), rclpy_time(msg.header.stamp),
                               self.estimator.pose_covariance(), self.estimator.twist_covariance())
        self.published += 1


def rclpy_time(stamp):
    """rclpy Time of a builtin_interfaces/Time stamp."""
    from rclpy.time import Time

    return Time.from_msg(stamp)


class StateBridgeNode(Node):
    """Chooses the source from the `source` parameter and wires it to the shared outputs."""

    def __init__(self, **kwargs):
        super().__init__("state_bridge", **kwargs)
        desc = ParameterDescriptor(description=f"where the state comes from: one of {list(SOURCES)}", read_only=True)
        source = self.declare_parameter("source", "sim", desc).value
        if source not in SOURCES:
            raise ConfigError(f"state_bridge parameters.source: expected one of {list(SOURCES)}, got {source!r}")
        self.outputs = StateOutputs(self, read_config(self, OutputConfig))
        if source == "sim":
            from ssm_mbrl_ros.ros.sim_bridge_node import SimSource  # imports torch: only for the simulator

            self.source = SimSource(self, self.outputs)
        else:
            self.source = MeasuredSource(self, self.outputs, source)


def main(args=None) -> int:
    """`python -m ssm_mbrl_ros.ros.state_bridge_node --ros-args -p source:=mocap`."""
    return run_node(StateBridgeNode, args)


if __name__ == "__main__":
    raise SystemExit(main())
