"""Vehicle parameter files: loading, derived quantities and errors that name the file and field."""
import math

import numpy as np
import pytest
import yaml

from ssm_mbrl_ros.core.config import ConfigError
from ssm_mbrl_ros.sim.state import GRAVITY_MPS2
from ssm_mbrl_ros.sim.vehicle import list_vehicles, load_vehicle, resolve_vehicle_path


def test_shipped_vehicles_load_with_expected_class():
    assert {"agile5", "x500", "crazyflie"} <= set(list_vehicles())
    agile, x500, cf = load_vehicle("agile5"), load_vehicle("x500"), load_vehicle("crazyflie")
    assert 0.6 <= agile.mass_kg <= 1.0 and agile.thrust_to_weight >= 4.0
    assert 1.5 <= x500.mass_kg <= 2.5 and x500.thrust_to_weight > 1.3
    assert 0.02 <= cf.mass_kg <= 0.04 and cf.thrust_to_weight > 1.5
    # the Crazyflie file carries a full (non-diagonal) identified inertia tensor
    assert np.abs(cf.inertia - np.diag(np.diag(cf.inertia))).max() > 0


@pytest.mark.parametrize("name", ["agile5", "x500", "crazyflie"])
def test_derived_quantities_are_consistent(name):
    v = load_vehicle(name)
    # hover speed: four rotors carry the weight
    assert 4 * v.thrust_coeff * v.hover_rotor_speed_radps**2 == pytest.approx(v.mass_kg * GRAVITY_MPS2, rel=1e-12)
    assert v.rotor_speed_min_radps < v.hover_rotor_speed_radps < v.rotor_speed_max_radps
    spec = v.action_spec()
    assert spec.thrust_max_mps2 == pytest.approx(v.thrust_to_weight * GRAVITY_MPS2)
    assert spec.max_rate_radps == tuple(v.max_rate_radps)
    # allocation: equal rotor thrusts give pure collective thrust, no torque
    wrench = v.allocation_matrix() @ np.full(4, 1.0)
    np.testing.assert_allclose(wrench, [4.0, 0.0, 0.0, 0.0], atol=1e-12)


def test_path_and_name_resolve_to_same_file():
    path = resolve_vehicle_path("x500")
    assert load_vehicle(path) == load_vehicle("x500")


def _write(tmp_path, data, name="bad.yaml"):
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data))
    return path


def _base():
    return yaml.safe_load(resolve_vehicle_path("agile5").read_text())


@pytest.mark.parametrize(
    "field, value, words",
    [
        ("mass_kg", -0.5, "must be > 0"),
        ("mass_kg", "heavy", "expected a number"),
        ("inertia_kgm2", [[1e-3, 0, 0], [0, -1e-3, 0], [0, 0, 1e-3]], "positive definite"),
        ("inertia_kgm2", [[1e-3, 5e-4, 0], [0, 1e-3, 0], [0, 0, 1e-3]], "symmetric"),
        ("rotor_speed_max_radps", 100.0, "must exceed"),
        ("motor_time_constant_s", 0.0, "must be > 0"),
        ("rotor_directions", [1, 1, 1, -1], "rotor_directions"),
        ("thrust_coeff", 1.0e-9, "cannot hover"),
    ],
)
def test_bad_values_name_file_and_field(tmp_path, field, value, words):
    data = _base()
    data[field] = value
    path = _write(tmp_path, data)
    with pytest.raises(ConfigError) as exc:
        load_vehicle(path)
    msg = str(exc.value)
    assert str(path) in msg and words in msg
    expected_field = "rotor_speed_max_radps" if field == "thrust_coeff" else field
    assert expected_field in msg


def test_missing_field_and_nested_gain_errors(tmp_path):
    data = _base()
    del data["motor_time_constant_s"]
    path = _write(tmp_path, data)
    with pytest.raises(ConfigError, match=r"bad\.yaml\.motor_time_constant_s: required field is missing"):
        load_vehicle(path)
    data = _base()
    data["rate_gains"]["kp"] = [1.0, 2.0]
    path = _write(tmp_path, data, "gains.yaml")
    with pytest.raises(ConfigError, match=r"gains\.yaml\.rate_gains\.kp: expected 3 values"):
        load_vehicle(path)


def test_unknown_vehicle_lists_known_ones():
    with pytest.raises(ConfigError, match="agile5"):
        load_vehicle("no_such_quad")
    assert math.isfinite(load_vehicle("crazyflie").hover_rotor_speed_radps)
