"""ssm_mbrl_ros: model-based RL with S5 world models for PX4 quadrotors, on ROS 2."""

__version__ = "0.1.0"
