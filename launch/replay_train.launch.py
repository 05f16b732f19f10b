"""ros2 launch ssm_mbrl_ros replay_train.launch.py [params_file:=...]

Built from ssm_mbrl_ros.ros.graph (the same definition `ssm-mbrl launch replay_train` uses).
"""
from ssm_mbrl_ros.ros.launch_description import graph_launch_description


def generate_launch_description():
    return graph_launch_description("replay_train")
