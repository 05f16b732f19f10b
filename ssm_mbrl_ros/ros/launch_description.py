"""LaunchDescription of a graph for `ros2 launch` (launch / launch_ros conventions), built from ros/graph.py.

Only the launch files import this module (launch and launch_ros come with a ROS 2 install; they are not on
PyPI). The processes are those `resolve_graph` returns, exactly as `ssm-mbrl launch` starts them; each
ROS node gets its section of the graph's parameter file as a parameter dictionary.
"""
from __future__ import annotations

import sys

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, ExecuteProcess, OpaqueFunction
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

from ssm_mbrl_ros.ros.graph import PACKAGE, default_params_file, get_graph, resolve_graph


def _processes(context, graph):
    """The graph's actions for the launch arguments' values in this context."""
    values = {name: LaunchConfiguration(name).perform(context) for name in graph.arguments}
    params_file = LaunchConfiguration("params_file").perform(context)
    namespace = LaunchConfiguration("namespace").perform(context)
    actions = []
    for inst in resolve_graph(graph, params_file, values, namespace=namespace):
        if inst.spec.external:  # another package's node (RViz): its own arguments, no parameter file section
            actions.append(Node(package=inst.spec.package, executable=inst.spec.executable, name=inst.name,
                                namespace=namespace, arguments=list(inst.args), output="screen"))
        elif inst.spec.ros:
            # standard semantics: rcl reads the file (wildcards, per-node sections, namespaced keys), the graph's
            # additions come after it; a replica gets its resolved set (its base section is not under its own name)
            params = [inst.parameters] if inst.spec.count_by else [params_file, inst.extra]
            actions.append(Node(package=PACKAGE, executable=inst.spec.executable, name=inst.name, namespace=namespace,
                                parameters=params, output="screen", emulate_tty=True))
        else:
            actions.append(ExecuteProcess(cmd=[sys.executable, "-m", inst.spec.module, *inst.args],
                                          name=inst.name, output="screen", sigterm_timeout="10"))
    return actions


def graph_launch_description(name: str) -> LaunchDescription:
    """DeclareLaunchArgument for params_file, namespace and the graph's own arguments, then its processes."""
    graph = get_graph(name)
    declared = [
        DeclareLaunchArgument("params_file", default_value=str(default_params_file(graph)),
                              description="ROS 2 parameter file with a section per node of the graph"),
        DeclareLaunchArgument("namespace", default_value="", description="namespace of the vehicle's topics"),
    ]
    declared += [DeclareLaunchArgument(arg, default_value=default, description=desc)
                 for arg, (default, desc) in graph.arguments.items()]
    return LaunchDescription(declared + [OpaqueFunction(function=_processes, args=[graph])])
