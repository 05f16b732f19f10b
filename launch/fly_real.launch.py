"""ros2 launch ssm_mbrl_ros fly_real.launch.py [sim_fc:=true|false] [record:=true|false] [params_file:=...]

Built from ssm_mbrl_ros.ros.graph (the same definition `ssm-mbrl launch fly_real` uses).
"""
from ssm_mbrl_ros.ros.launch_description import graph_launch_description


def generate_launch_description():
    return graph_launch_description("fly_real")
