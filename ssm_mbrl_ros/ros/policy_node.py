"""policy node: odom -> observation -> exported ONNX policy -> cmd_ctbr, with hot model swaps.

Flies any policy whose task the flight side knows (link/onnx_controller.py): hover (holds the setpoint) and circle /
figure-8 tracking (the analytic reference of the policy's own task definition, its phase anchored to the drone's
position and velocity at the first odometry after every reset). Other tasks (racing, partial observation) are refused
at load with the reason.

Subscribes  odom (nav_msgs/Odometry, sensor-data QoS), setpoint (geometry_msgs/PointStamped, ENU m, hover policies;
            a new setpoint is a new episode: the recurrent state resets), reference (nav_msgs/Path, latched; tracking
            policies: a new message, e.g. the simulator's at every episode start, is a new episode: reset and
            re-anchor), policy/model (std_msgs/String: path of a new .onnx; loaded and validated off the control
            path, then swapped in atomically)
Publishes   cmd_ctbr (geometry_msgs/TwistStamped CTBR, header stamp = the odometry stamp it answers),
            diagnostics (diagnostic_msgs/DiagnosticArray, 1 Hz: step time p50/max, model, swaps, resets)
Runs the torch-free runtime (onnxruntime + numpy); the hot path reuses preallocated arrays.
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from geometry_msgs.msg import PointStamped, TwistStamped
from nav_msgs.msg import Odometry, Path
from rclpy.node import Node
from rclpy.qos import QoSDurabilityPolicy, QoSProfile, qos_profile_sensor_data
from std_msgs.msg import String

from ssm_mbrl_ros.core.config import ConfigError, doc
from ssm_mbrl_ros.link.onnx_controller import OnnxController, OnnxHoverController, controller_for
from ssm_mbrl_ros.runtime.models import find_model
from ssm_mbrl_ros.ros.conversions import ctbr_to_twist, frame_ids, odom_to_state17, resolve_frame_prefix
from ssm_mbrl_ros.ros.params import read_config, run_node
from ssm_mbrl_ros.ros.realtime import current_policy, set_fifo_priority


@dataclass
class PolicyNodeConfig:
    """Parameters of the policy node (read once at start)."""

    model: str = doc("exported policy: a .onnx path (sidecar beside it) or a shipped model name (hover, figure8, ...)",
                     default="hover")
    setpoint_m: list = doc("initial hover setpoint x, y, z (ENU m) until a setpoint message arrives",
                           default_factory=lambda: [0.0, 0.0, 1.5])
    odom_topic: str = doc("odometry input topic", default="odom")
    cmd_topic: str = doc("CTBR command output topic", default="cmd_ctbr")
    setpoint_topic: str = doc("setpoint input topic (PointStamped, ENU m; hover policies)", default="setpoint")
    reference_topic: str = doc("reference input topic (nav_msgs/Path; tracking policies reset and re-anchor their "
                               "phase on every message)", default="reference")
    model_topic: str = doc("topic announcing a new model path (std_msgs/String)", default="policy/model")
    odom_gap_reset_s: float = doc("reset the recurrent state when odometry resumes after a gap longer than this (s)",
                                  range=(0.001, 60.0),
                                  default=0.2)
    carrot_m: float = doc("hover setpoints farther than this are approached via a point this far ahead (m)",
                          range=(0.05, 100.0),
                          default=1.0)
    frame_prefix: str = doc("prefix of the cmd_ctbr frame id (base_link): 'auto' = the node's namespace, '' = none",
                            default="auto")
    realtime_priority: int = doc("SCHED_FIFO priority 1-99 for every thread of the node, so other processes cannot "
                                 "delay the control loop (needs CAP_SYS_NICE; without it the node warns and runs "
                                 "normally); 0 = the default scheduler", default=0, range=(0, 99))

    def validate(self, source: str = "policy") -> None:
        """setpoint_m has 3 numbers (times and distances are range-checked on their fields)."""
        if len(self.setpoint_m) != 3:
            raise ConfigError(f"{source}.setpoint_m: expected [x, y, z] in metres, got {self.setpoint_m!r}")


def load_controller(model: str, target, carrot_m: float) -> OnnxController:
    """Load and validate a policy and the controller of its task; ConfigError with the reason when it cannot fly."""
    try:
        return controller_for(find_model(model), target, carrot_m=carrot_m)
    except (OSError, ValueError) as exc:  # missing file, sidecar/checksum/graph mismatch, unknown task or layout
        raise ConfigError(f"model {model!r}: {exc}") from exc


class PolicyNode(Node):
    """The onnxruntime policy in the loop."""

    def __init__(self, **kwargs):
        super().__init__("policy", **kwargs)
        self.cfg = read_config(self, PolicyNodeConfig)
        self.body_frame = frame_ids(resolve_frame_prefix(self.cfg.frame_prefix, self.get_namespace()))[1]
        self.ctrl = load_controller(self.cfg.model, self.cfg.setpoint_m, self.cfg.carrot_m)
        self.model_path = str(self.ctrl.policy.path)
        self._target = np.asarray(self.cfg.setpoint_m, float)  # kept across swaps to a hover policy
        self._state = np.zeros(17)
        self._cmd = TwistStamped()
        self._times = np.zeros(1000)
        self._n = 0
        self.swaps = self.resets = self.rejected = 0
        self._last_odom_s: float | None = None
        self.pub = self.create_publisher(TwistStamped, self.cfg.cmd_topic, qos_profile_sensor_data)
        self.diag = self.create_publisher(DiagnosticArray, "/diagnostics", 10)  # absolute: the aggregator listens there
        self.create_subscription(Odometry, self.cfg.odom_topic, self.on_odom, qos_profile_sensor_data)
        latched = QoSProfile(depth=1, durability=QoSDurabilityPolicy.TRANSIENT_LOCAL)
        self.create_subscription(PointStamped, self.cfg.setpoint_topic, self.on_setpoint, latched)
        self.create_subscription(Path, self.cfg.reference_topic, self.on_reference, latched)
        self.create_subscription(String, self.cfg.model_topic, self.on_model, 10)
        self.create_timer(1.0, self.publish_diagnostics)
        self.get_logger().info(f"policy {self.model_path} on {self.cfg.odom_topic} -> {self.cfg.cmd_topic}")
        if self.cfg.realtime_priority:  # after the subscriptions: the DDS threads exist and get it too
            self.get_logger().info(set_fifo_priority(self.cfg.realtime_priority))

    def on_odom(self, msg: Odometry) -> None:
        """The hot path: state -> observation -> ONNX step -> CTBR, answering with the odometry's stamp."""
        t0 = time.perf_counter()
        if self._last_odom_s is not None and t0 - self._last_odom_s > self.cfg.odom_gap_reset_s:
            self.ctrl.reset()  # stale belief after a gap: start a new episode
            self.resets += 1
        self._last_odom_s = t0
        ctrl = self.ctrl  # one read: a concurrent swap replaces the reference, never mutates it
        stamp_s = msg.header.stamp.sec + 1e-9 * msg.header.stamp.nanosec  # the policy steps at its own rate by it
        ctbr = ctrl(odom_to_state17(msg, self._state), stamp_s)
        self.pub.publish(ctbr_to_twist(ctbr, self._cmd, msg.header.stamp, self.body_frame))
        self._times[self._n % len(self._times)] = time.perf_counter() - t0
        self._n += 1

    def on_setpoint(self, msg: PointStamped) -> None:
        """New hover setpoint (ENU m): a new episode for a hover policy (tracking policies ignore setpoints)."""
        self._target = np.array([msg.point.x, msg.point.y, msg.point.z])
        ctrl = self.ctrl
        if isinstance(ctrl, OnnxHoverController):
            ctrl.target = self._target
            ctrl.reset()
            self.resets += 1

    def on_reference(self, msg: Path) -> None:
        """A reference was (re)published: a new episode for a tracking policy (reset, re-anchor the phase)."""
        ctrl = self.ctrl
        if not isinstance(ctrl, OnnxHoverController):
            ctrl.reset()
            self.resets += 1

    def on_model(self, msg: String) -> None:
        """Load the announced model in a thread; swap only if it validates (else keep flying the old one)."""
        def load():
            try:
                new = load_controller(msg.data, self._target, self.cfg.carrot_m)
            except ConfigError as exc:
                self.rejected += 1
                self.get_logger().error(f"model swap rejected, keeping {self.model_path}: {exc}")
                return
            self.ctrl, self.model_path = new, str(new.policy.path)
            self.swaps += 1
            self.get_logger().info(f"swapped in {self.model_path}")

        threading.Thread(target=load, daemon=True).start()

    def step_times_ms(self) -> np.ndarray:
        """Recent hot-path durations (ms)."""
        return self._times[:min(self._n, len(self._times))] * 1e3

    def publish_diagnostics(self) -> None:
        """Timing statistics and model status as diagnostic_msgs/DiagnosticArray."""
        t = self.step_times_ms()
        ctrl = self.ctrl
        phase = getattr(ctrl.reference, "phase_s", None)
        values = {"model": self.model_path, "task": ctrl.policy.sidecar.get("task", ""), "steps": str(self._n),
                  "swaps": str(self.swaps),
                  "rejected_models": str(self.rejected), "resets": str(self.resets),
                  "step_ms_p50": f"{np.median(t):.3f}" if t.size else "nan",
                  "step_ms_max": f"{t.max():.3f}" if t.size else "nan",
                  "surprise": f"{ctrl.last_surprise}", "scheduler": current_policy()}
        if phase is not None:
            values["reference_phase_s"] = f"{phase:.3f}"
        status = DiagnosticStatus(level=DiagnosticStatus.OK, name="ssm_mbrl_ros/policy", message="running",
                                  values=[KeyValue(key=k, value=v) for k, v in values.items()])
        msg = DiagnosticArray(status=[status])
        msg.header.stamp = self.get_clock().now().to_msg()
        self.diag.publish(msg)


def main(args=None) -> int:
    """`python -m ssm_mbrl_ros.ros.policy_node --ros-args -p model:=hover`."""
    return run_node(PolicyNode, args, executor="events")  # latency-critical: see make_executor


if __name__ == "__main__":
    raise SystemExit(main())
