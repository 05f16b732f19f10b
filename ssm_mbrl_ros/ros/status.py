"""Status messages shared by the training-side nodes: a JSON std_msgs/String and a diagnostic_msgs/DiagnosticArray."""
from __future__ import annotations

import json

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from std_msgs.msg import String


def json_string(values: dict) -> String:
    """values as one JSON std_msgs/String (non-JSON values as their str)."""
    return String(data=json.dumps(values, default=str))


def diagnostic_array(stamp, name: str, values: dict, message: str = "running", ok: bool = True) -> DiagnosticArray:
    """One DiagnosticStatus `name` with values flattened to key/value strings (nested dicts as JSON)."""
    kv = [KeyValue(key=k, value=json.dumps(v) if isinstance(v, (dict, list)) else str(v)) for k, v in values.items()]
    status = DiagnosticStatus(level=DiagnosticStatus.OK if ok else DiagnosticStatus.WARN, name=name, message=message,
                              values=kv)
    msg = DiagnosticArray(status=[status])
    msg.header.stamp = stamp
    return msg


def shutdown_logger(node):
    """A logger for shutdown paths: same output as the node's, but without its /rosout publisher (whose context
    the signal handler may be tearing down at that moment)."""
    import rclpy.logging

    return rclpy.logging.get_logger(f"ssm_mbrl_ros.{node.get_name()}")
