"""ros2 launch ssm_mbrl_ros train_sim.launch.py [collectors:=2] [params_file:=...] [namespace:=...]

Built from ssm_mbrl_ros.ros.graph (the same definition `ssm-mbrl launch train_sim` uses).
"""
from ssm_mbrl_ros.ros.launch_description import graph_launch_description


def generate_launch_description():
    return graph_launch_description("train_sim")
