"""ros2 launch ssm_mbrl_ros fly_sim.launch.py [params_file:=...] [namespace:=...]

Builds the graph from ssm_mbrl_ros.ros.graph (the same definition `ssm-mbrl launch fly_sim` uses).
"""
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

from ssm_mbrl_ros.ros.graph import PACKAGE, config_dir, get_graph


def generate_launch_description():
    graph = get_graph("fly_sim")
    args = [
        DeclareLaunchArgument("params_file", default_value=str(config_dir() / "ros" / graph.params),
                              description="ROS 2 parameter file for every node of the graph"),
        DeclareLaunchArgument("namespace", default_value="", description="namespace of the vehicle's topics"),
    ]
    nodes = [Node(package=PACKAGE, executable=spec.executable, name=spec.name, namespace=LaunchConfiguration("namespace"),
                  parameters=[LaunchConfiguration("params_file")], output="screen", emulate_tty=True)
             for spec in graph.nodes]
    return LaunchDescription(args + nodes)
