"""Config loading: type checks, unknown/missing fields, overrides; errors name the file and field."""
from dataclasses import dataclass

import pytest

from ssm_mbrl_ros.core.config import (
    ConfigError, apply_overrides, doc, field_help, from_dict, load_yaml_config, to_dict,
)


@dataclass
class Inner:
    gain: float = doc("proportional gain, 1/s", default=1.0)
    axes: tuple[float, float, float] = doc("per-axis limits, rad/s", default=(1.0, 1.0, 1.0))


@dataclass
class Outer:
    name: str = doc("a name")
    steps: int = doc("number of steps", default=10)
    inner: Inner = doc("nested section", default_factory=Inner)
    mode: str = doc("full or partial", default="full")

    def validate(self, source):
        if self.steps <= 0:
            raise ConfigError(f"{source}.steps: must be > 0, got {self.steps}")


def test_from_dict_builds_nested_and_coerces_int_to_float():
    cfg = from_dict(Outer, {"name": "a", "inner": {"gain": 2, "axes": [1, 2, 3]}})
    assert cfg.inner.gain == 2.0 and isinstance(cfg.inner.gain, float)
    assert cfg.inner.axes == (1.0, 2.0, 3.0)
    assert to_dict(cfg)["inner"]["axes"] == [1.0, 2.0, 3.0]


@pytest.mark.parametrize(
    "data, fragment",
    [
        ({}, "f.yaml.name: required field is missing"),
        ({"name": "a", "steps": "ten"}, "f.yaml.steps: expected an integer"),
        ({"name": "a", "inner": {"gain": "x"}}, "f.yaml.inner.gain: expected a number"),
        ({"name": "a", "inner": {"axes": [1, 2]}}, "f.yaml.inner.axes: expected 3 items"),
        ({"name": "a", "bogus": 1}, "unknown field(s) ['bogus']"),
        ({"name": "a", "steps": 0}, "f.yaml.steps: must be > 0"),
        ({"name": "a", "steps": True}, "expected an integer"),
    ],
)
def test_errors_name_file_and_field(data, fragment):
    with pytest.raises(ConfigError) as err:
        from_dict(Outer, data, "f.yaml")
    assert fragment in str(err.value)


def test_overrides_and_yaml_file(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("name: x\ninner:\n  gain: 3.0\n")
    cfg = load_yaml_config(Outer, p, overrides=["inner.gain=5", "steps=7"])
    assert (cfg.inner.gain, cfg.steps) == (5.0, 7)
    with pytest.raises(ConfigError, match="expected KEY=VALUE"):
        apply_overrides({}, ["novalue"])
    with pytest.raises(ConfigError, match="file not found"):
        load_yaml_config(Outer, tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: [unclosed\n")
    with pytest.raises(ConfigError, match="bad.yaml: not valid YAML"):
        load_yaml_config(Outer, bad)


def test_field_help_exposes_docs():
    assert field_help(Inner)["gain"] == "proportional gain, 1/s"


def test_non_finite_numbers_are_refused_with_the_field_named():
    import argparse

    from ssm_mbrl_ros.core.config import finite_float
    from ssm_mbrl_ros.fcsim import FcSimConfig

    with pytest.raises(ConfigError, match=r"fc-sim.start_pos_m\[2\]: expected a finite number"):
        from_dict(FcSimConfig, {"start_pos_m": [0.0, 0.0, float("nan")]}, "fc-sim")
    with pytest.raises(ConfigError, match=r"fc-sim.wind_mps\[0\]: expected a finite number"):
        from_dict(FcSimConfig, {"wind_mps": [float("inf"), 0.0, 0.0]}, "fc-sim")
    with pytest.raises(ConfigError, match="fc-sim.latency_s: expected a finite number"):
        from_dict(FcSimConfig, {"latency_s": float("nan")}, "fc-sim")
    assert from_dict(FcSimConfig, {"latency_s": "1e-3"}, "fc-sim").latency_s == 0.001  # YAML 1.1 reads 1e-3 as text
    with pytest.raises(argparse.ArgumentTypeError, match="finite"):
        finite_float("nan")
    assert finite_float("2.5") == 2.5


def test_from_dict_enforces_declared_ranges():
    from dataclasses import dataclass

    from ssm_mbrl_ros.core.config import doc

    @dataclass
    class Ranged:
        rate_hz: float = doc("rate, Hz", default=10.0, range=(1.0, 100.0))
        n: int = doc("count", default=2, range=(1, 5))

    assert from_dict(Ranged, {"rate_hz": 1.0, "n": 5}, "r").rate_hz == 1.0  # bounds are inclusive
    with pytest.raises(ConfigError, match=r"r.rate_hz: 0.5 is outside the allowed range \[1.0, 100.0\]"):
        from_dict(Ranged, {"rate_hz": 0.5}, "r")
    with pytest.raises(ConfigError, match="r.n: 6 is outside"):
        from_dict(Ranged, {"n": 6}, "r")
    with pytest.raises(ValueError, match="low <= high"):
        doc("bad", range=(2, 1))
