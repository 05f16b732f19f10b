"""Node graphs, defined once: launch files (ros2 launch) and `ssm-mbrl launch` (pip-only) both build from here.

Deliberately free of rclpy/launch imports, so the pip-only runner can read it on a machine without ROS.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

PACKAGE = "ssm_mbrl_ros"


@dataclass(frozen=True)
class NodeSpec:
    """One node of a graph: its name, console script (ros2 run) and module (python -m)."""

    name: str
    executable: str
    module: str


@dataclass(frozen=True)
class Graph:
    """A node graph and the parameter file that configures it (config/ros/<params>)."""

    name: str
    nodes: tuple
    params: str
    description: str = ""
    not_exercised: tuple = field(default_factory=tuple)


STATE_BRIDGE = NodeSpec("state_bridge", "state_bridge", "ssm_mbrl_ros.ros.state_bridge_node")
POLICY = NodeSpec("policy", "policy_node", "ssm_mbrl_ros.ros.policy_node")

GRAPHS = {
    "fly_sim": Graph("fly_sim", (STATE_BRIDGE, POLICY), "fly_sim.yaml",
                     "the simulated drone in real time flown by the ONNX policy node (hover, shipped model)"),
}


def config_dir() -> Path:
    """config/ of a source checkout / editable install, else the ament share directory."""
    here = Path(__file__).resolve().parents[2] / "config"
    if here.is_dir():
        return here
    from ament_index_python.packages import get_package_share_directory

    return Path(get_package_share_directory(PACKAGE)) / "config"


def get_graph(name: str) -> Graph:
    """The named graph; unknown names list the valid ones."""
    from ssm_mbrl_ros.core.config import ConfigError

    if name not in GRAPHS:
        raise ConfigError(f"unknown graph {name!r}; valid: {sorted(GRAPHS)}")
    return GRAPHS[name]
