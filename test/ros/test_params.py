"""Node parameters are declared statically typed from the config dataclass, read-only, with descriptions and ranges;
a value of the wrong type or out of range refuses with the parameter's name."""
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
    rate_hz: float = doc("loop rate, Hz", default=100.0, range=(1.0, 1000.0))
    count: int = doc("how many", default=3, range=(1, 10))
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


WRONG_TYPE, OUT_OF_RANGE = "expected", "outside the allowed range"


@pytest.mark.parametrize("name, value, reason", [
    ("rate_hz", "fast", WRONG_TYPE), ("count", 2.5, WRONG_TYPE), ("on", "yes", WRONG_TYPE),
    ("setpoint_m", ["a"], WRONG_TYPE),
    ("rate_hz", 0.5, OUT_OF_RANGE), ("rate_hz", 5000.0, OUT_OF_RANGE), ("count", 0, OUT_OF_RANGE),
    ("count", 11, OUT_OF_RANGE)])
def test_a_wrong_type_or_range_names_the_parameter(ros, name, value, reason):
    node = _node([(name, value)])
    try:
        with pytest.raises(ConfigError, match=f"typed_params_test parameters.{name}: {reason}"):
            read_config(node, _Cfg)
    finally:
        node.destroy_node()


def test_ranges_are_declared_and_enforced(ros):
    node = _node()
    try:
        read_config(node, _Cfg)
        fp = node.describe_parameter("rate_hz").floating_point_range[0]
        ir = node.describe_parameter("count").integer_range[0]
        assert (fp.from_value, fp.to_value, ir.from_value, ir.to_value) == (1.0, 1000.0, 1, 10)
    finally:
        node.destroy_node()


def test_shipped_node_parameters_declare_ranges():
    """Every numeric period, rate and id of the shipped nodes has a range, and the defaults lie inside."""
    import dataclasses

    from ssm_mbrl_ros.core.config import field_range
    from ssm_mbrl_ros.ros.fc_link_node import FcLinkConfig
    from ssm_mbrl_ros.ros.policy_node import PolicyNodeConfig
    from ssm_mbrl_ros.ros.sim_bridge_node import SimBridgeConfig

    for cls, names in ((PolicyNodeConfig, ("odom_gap_reset_s", "carrot_m")),
                       (SimBridgeConfig, ("rate_hz", "cmd_timeout_s")),
                       (FcLinkConfig, ("rate_hz", "hover_throttle", "fc_system_id"))):
        fields = {f.name: f for f in dataclasses.fields(cls)}
        defaults = cls()
        for name in names:
            low, high = field_range(fields[name])
            assert low <= getattr(defaults, name) <= high, (cls.__name__, name)
