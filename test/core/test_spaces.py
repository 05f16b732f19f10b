"""ActionSpec mapping and ObsLayout bookkeeping."""
import numpy as np
import pytest

from ssm_mbrl_ros.core.spaces import ActionSpec, ObsField, ObsLayout


def test_action_spec_maps_box_corners_and_round_trips():
    spec = ActionSpec(2.0, 38.0, (10.0, 10.0, 4.0))
    np.testing.assert_allclose(spec.to_physical(np.array([-1, -1, -1, -1.0])), [2, -10, -10, -4])
    np.testing.assert_allclose(spec.to_physical(np.array([1, 1, 1, 1.0])), [38, 10, 10, 4])
    a = np.random.default_rng(0).uniform(-1, 1, size=(50, 4))
    np.testing.assert_allclose(spec.to_normalized(spec.to_physical(a)), a, atol=1e-12)
    # out-of-range input is clamped, never extrapolated
    np.testing.assert_allclose(spec.to_physical(np.array([5.0, 0, 0, 0]))[0], 38.0)
    assert ActionSpec.from_dict(spec.to_dict()) == spec


def test_action_spec_torch_keeps_dtype():
    torch = pytest.importorskip("torch")
    spec = ActionSpec(0.0, 40.0, (10.0, 10.0, 3.0))
    a = torch.zeros(3, 4, dtype=torch.float64)
    out = spec.to_physical(a)
    assert out.dtype == torch.float64 and torch.allclose(out[:, 0], torch.full((3,), 20.0, dtype=torch.float64))


def test_action_spec_rejects_impossible_limits():
    with pytest.raises(ValueError):
        ActionSpec(10.0, 5.0, (1.0, 1.0, 1.0))
    with pytest.raises(ValueError):
        ActionSpec(0.0, 5.0, (1.0, -1.0, 1.0))


def test_obs_layout_slices_and_names():
    lay = ObsLayout((ObsField("pos_err", 3, "m", "world ENU"), ObsField("speed", 1, "m/s")))
    assert lay.dim == 4
    assert lay.slices()["speed"] == slice(3, 4)
    assert lay.names() == ["pos_err[0]", "pos_err[1]", "pos_err[2]", "speed"]
    assert ObsLayout.from_dict(lay.to_dict()) == lay
