"""ROS tests: real rclpy over DDS, confined to this machine (LOCALHOST discovery, a domain id per session)."""
import os
import random

import pytest

rclpy = pytest.importorskip("rclpy", reason="rclpy not installed (make venv-ros / the [ros] extra)")

os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
os.environ.setdefault("ROS_DOMAIN_ID", str(random.Random(os.getpid()).randint(20, 99)))
