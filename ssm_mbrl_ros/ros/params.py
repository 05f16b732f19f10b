"""Read a node's ROS parameters once into a config dataclass (type-checked; errors name the parameter)."""
from __future__ import annotations

import dataclasses
import sys

import rclpy
from rcl_interfaces.msg import ParameterDescriptor
from rclpy.executors import ExternalShutdownException

from ssm_mbrl_ros.core.config import ConfigError, field_help, from_dict, to_dict


def read_config(node, cls):
    """Declare one parameter per dataclass field (any type accepted by ROS) and build cls from their values.

    Values are checked by core.config.from_dict, so a wrong type raises ConfigError naming
    `<node>.<parameter>`, the same message style as YAML config errors.
    """
    defaults = to_dict(cls())
    helps = field_help(cls)
    values = {}
    for f in dataclasses.fields(cls):
        desc = ParameterDescriptor(description=helps.get(f.name, ""), dynamic_typing=True, read_only=True)
        default = defaults[f.name]
        value = node.declare_parameter(f.name, default if default != [] else None, desc).value
        if value is not None:
            values[f.name] = list(value) if isinstance(value, (tuple, list)) or hasattr(value, "tolist") else value
    return from_dict(cls, values, f"{node.get_name()} parameters")


def run_node(factory, args=None) -> int:
    """init -> build the node -> spin -> clean shutdown; a ConfigError prints the reason and returns 2."""
    rclpy.init(args=args)
    node = None
    try:
        node = factory()
        rclpy.spin(node)
        return 0
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except (KeyboardInterrupt, ExternalShutdownException):
        return 0
    finally:
        if node is not None:
            node.destroy_node()
        rclpy.try_shutdown()
