"""Read a node's ROS parameters once into a config dataclass (type-checked; errors name the parameter)."""
from __future__ import annotations

import dataclasses
import gc
import os
import sys
import typing

import rclpy
from rcl_interfaces.msg import ParameterDescriptor
from rclpy.executors import ExternalShutdownException

from ssm_mbrl_ros.core.config import ConfigError, field_help, field_range, from_dict, to_dict


def _ros_type(tp, default):
    """The static ROS parameter type of a dataclass field (None: dynamic, for unions, dicts and lists whose element
    type neither the annotation nor the default tells)."""
    from rclpy.parameter import Parameter

    T = Parameter.Type
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    scalars = {bool: T.BOOL, int: T.INTEGER, float: T.DOUBLE, str: T.STRING}
    if tp in scalars:
        return scalars[tp]
    if origin is typing.Literal and all(isinstance(a, str) for a in args):
        return T.STRING
    if origin in (list, tuple) or tp in (list, tuple):
        item = args[0] if args and args[0] is not Ellipsis else None
        if item is None and default:
            item = type(default[0])
        return {bool: T.BOOL_ARRAY, int: T.INTEGER_ARRAY, float: T.DOUBLE_ARRAY, str: T.STRING_ARRAY}.get(item)
    return None


def read_config(node, cls):
    """Declare one read-only parameter per dataclass field, statically typed from the field's annotation (so
    `ros2 param describe` shows it), with the field's doc as description, and build cls from the values.

    A value of the wrong type (ROS's own check, or core.config.from_dict's for the few dynamic ones) raises
    ConfigError naming `<node> parameters.<name>`, the same message style as YAML config errors; the node exits 2.
    """
    from rcl_interfaces.msg import FloatingPointRange, IntegerRange
    from rclpy.exceptions import (InvalidParameterTypeException, InvalidParameterValueException,
                                  ParameterUninitializedException)
    from rclpy.parameter import Parameter

    defaults = to_dict(cls())
    helps = field_help(cls)
    hints = typing.get_type_hints(cls)
    values = {}
    where = f"{node.get_name()} parameters"
    for f in dataclasses.fields(cls):
        default = defaults[f.name]
        ptype = _ros_type(hints.get(f.name), default)
        desc = ParameterDescriptor(description=helps.get(f.name, ""), read_only=True, dynamic_typing=ptype is None)
        if ptype is not None:
            desc.type = ptype.value
        bounds = field_range(f)
        if bounds is not None and ptype == Parameter.Type.DOUBLE:
            desc.floating_point_range = [FloatingPointRange(from_value=float(bounds[0]), to_value=float(bounds[1]))]
        elif bounds is not None and ptype == Parameter.Type.INTEGER:
            desc.integer_range = [IntegerRange(from_value=int(bounds[0]), to_value=int(bounds[1]))]
        initial = default if default not in ([], (), None) else (ptype if ptype is not None else None)
        try:
            value = node.declare_parameter(f.name, initial, desc).value
        except InvalidParameterTypeException as e:
            raise ConfigError(f"{where}.{f.name}: expected {ptype.name.lower() if ptype else 'another type'} "
                              f"({e})") from None
        except InvalidParameterValueException as e:
            raise ConfigError(f"{where}.{f.name}: outside the allowed range [{bounds[0]}, {bounds[1]}] ({e})") from None
        except ParameterUninitializedException:
            value = None
        if value is not None:
            values[f.name] = list(value) if isinstance(value, (tuple, list)) or hasattr(value, "tolist") else value
    return from_dict(cls, values, where)


def make_executor(kind: str | None = None, from_env: bool = True):
    """The executor a node spins in: `events` (rclpy's C++ EventsExecutor) or `single` (SingleThreadedExecutor).

    Env SSM_MBRL_ROS_EXECUTOR overrides the argument (unless from_env is false); the default is single. The latency-critical nodes
    (policy, fc_link) ask for events: `bench ros` measured p99 3.1 vs 4.3 ms and 12 vs 100 missed cycles at
    250 Hz here. Not the default because in rclpy 9.1 EventsExecutor.spin() ran no callbacks and a node with
    timers but no subscription never fired them; run_node therefore loops on spin_once. Falls back to
    single where rclpy has no EventsExecutor (before Kilted).
    """
    kind = (os.environ.get("SSM_MBRL_ROS_EXECUTOR") if from_env else None) or kind or "single"
    if kind not in ("events", "single"):
        raise ConfigError(f"SSM_MBRL_ROS_EXECUTOR: expected 'events' or 'single', got {kind!r}")
    if kind == "events":
        try:
            from rclpy.experimental import EventsExecutor

            return EventsExecutor()
        except ImportError:
            pass
    from rclpy.executors import SingleThreadedExecutor

    return SingleThreadedExecutor()


def run_node(factory, args=None, executor: str | None = None) -> int:
    """init -> build the node -> spin (executor: see make_executor) -> clean shutdown; a ConfigError prints the
    reason and returns 2."""
    rclpy.init(args=args)
    node = None
    try:
        node = factory()
        executor = make_executor(executor)
        executor.add_node(node)
        gc.collect()
        gc.freeze()  # start-up objects (models, modules) leave the collector's view: no multi-ms gen-2 pauses in flight
        while rclpy.ok():  # spin_once: EventsExecutor.spin() (rclpy 9.1) neither ran callbacks nor saw SIGINT here
            executor.spin_once(timeout_sec=0.1)
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
