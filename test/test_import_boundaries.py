"""Core modules import with rclpy and ROS messages blocked: only ssm_mbrl_ros/ros may use them."""
import pkgutil
import subprocess
import sys
from pathlib import Path

import ssm_mbrl_ros

BLOCKER = """
import importlib.abc, sys
BLOCKED = {blocked!r}
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name.split('.')[0] in BLOCKED:
            raise ImportError('blocked for this test: ' + name)
sys.meta_path.insert(0, Block())
import importlib
for mod in {modules!r}:
    importlib.import_module(mod)
print('imported', len({modules!r}))
"""

ROS_PACKAGES = ["rclpy", "std_msgs", "nav_msgs", "geometry_msgs", "sensor_msgs", "diagnostic_msgs",
                "visualization_msgs", "px4_msgs", "rosbag2_py", "launch", "launch_ros"]


def _modules(exclude_prefixes):
    root = Path(ssm_mbrl_ros.__file__).parent
    mods = [m.name for m in pkgutil.walk_packages([str(root)], "ssm_mbrl_ros.")]
    mods = [m for m in mods if not m.endswith(".__main__")]  # __main__ runs the CLI on import
    return [m for m in mods if not any(m.startswith(p) for p in exclude_prefixes)]


def _run_blocked(modules, blocked):
    code = BLOCKER.format(blocked=set(blocked), modules=modules)
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)


def test_every_core_module_imports_without_ros():
    mods = _modules(["ssm_mbrl_ros.ros"])
    assert len(mods) > 5
    res = _run_blocked(mods, ROS_PACKAGES)
    assert res.returncode == 0, res.stderr
    assert f"imported {len(mods)}" in res.stdout


def test_blocker_really_blocks():
    res = _run_blocked(["rclpy"], ROS_PACKAGES)
    assert res.returncode != 0 and "blocked for this test" in res.stderr
