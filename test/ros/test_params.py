"""Node parameters are declared statically typed from the config dataclass, read-only, with descriptions; a value
of the wrong type refuses with the parameter's name."""
from dataclasses import dataclass
from typing import Literal

import pytest

rclpy = pytest.importorskip("rclpy")
from rclpy.node import Node  # noqa: E402
from rclpy.parameter import Parameter  # noqa: E402

from ssm_mbrl_ros.core.config import ConfigError, doc  # noqa: E402
from ssm_mbrl_ros.ros.params import read_config  # noqa: E402


@dataclass
class _Cfg:
    rate_hz: float = doc("loop rate, Hz", default=100.0)
    count: int = doc("how many", default=3)
    name: str = doc("a name", default="x")
    mode: Literal["a", "b"] = doc("a mode", default="a")
    on: bool = doc("a switch", default=False)
    setpoint_m: list = doc("x, y, z (m)", default_factory=lambda: [0.0, 0.0, 1.5])
    extra: list = doc("KEY=VALUE items", default_factory=list)


@pytest.fixture
def ros():
    rclpy.init()
    yield
    rclpy.try_shutdown()


def _node(overrides=()):
    return Node("typed_params_test", parameter_overrides=[Parameter(k, value=v) for k, v in overrides])


def test_parameters_are_typed_read_only_and_described(ros):
    node = _node([("rate_hz", 250.0), ("setpoint_m", [1.0, 2.0, 3.0])])
    try:
        cfg = read_config(node, _Cfg)
        assert cfg.rate_hz == 250.0 and cfg.setpoint_m == [1.0, 2.0, 3.0] and cfg.extra == []
        T = Parameter.Type
        want = {"rate_hz": T.DOUBLE, "count": T.INTEGER, "name": T.STRING, "mode": T.STRING, "on": T.BOOL,
                "setpoint_m": T.DOUBLE_ARRAY}
        for name, ptype in want.items():
            d = node.describe_parameter(name)
            assert d.type == ptype.value and d.read_only and not d.dynamic_typing, name
        assert node.describe_parameter("rate_hz").description == "loop rate, Hz"
        assert node.describe_parameter("extra").dynamic_typing  # element type unknown from an empty default
    finally:
        node.destroy_node()


@pytest.mark.parametrize("name,value", [("rate_hz", "fast"), ("count", 2.5), ("on", "yes"), ("setpoint_m", ["a"])])
def test_a_wrong_type_names_the_parameter(ros, name, value):
    node = _node([(name, value)])
    try:
        with pytest.raises(ConfigError, match=f"typed_params_test parameters.{name}: expected"):
            read_config(node, _Cfg)
    finally:
        node.destroy_node()
