"""ENU/FLU <-> NED/FRD conversions and quaternion helpers, both ways, against hand-derived cases."""
import numpy as np
import pytest

from ssm_mbrl_ros.core import frames as F


def _random_quats(n, seed=0):
    rng = np.random.default_rng(seed)
    return F.quat_normalize(rng.normal(size=(n, 4)))


def test_world_vector_enu_ned_known_values():
    # 1 m east, 2 m north, 3 m up == north 2, east 1, down -3
    np.testing.assert_allclose(F.enu_to_ned([1.0, 2.0, 3.0]), [2.0, 1.0, -3.0])
    np.testing.assert_allclose(F.ned_to_enu([2.0, 1.0, -3.0]), [1.0, 2.0, 3.0])


def test_body_vector_flu_frd_known_values():
    # roll right (FLU +x) stays, pitch-up in FLU is +y about left axis == -y about right axis
    np.testing.assert_allclose(F.flu_to_frd([0.1, 0.2, 0.3]), [0.1, -0.2, -0.3])


@pytest.mark.parametrize("fn, inv", [(F.enu_to_ned, F.ned_to_enu), (F.flu_to_frd, F.frd_to_flu)])
def test_vector_round_trips(fn, inv):
    v = np.random.default_rng(1).normal(size=(100, 3))
    np.testing.assert_allclose(inv(fn(v)), v, atol=1e-12)


def test_attitude_round_trip():
    q = _random_quats(200)
    back = F.attitude_ned_frd_to_enu_flu(F.attitude_enu_flu_to_ned_frd(q))
    np.testing.assert_allclose(back, q, atol=1e-12)


def test_attitude_identity_maps_to_yaw_90():
    # Level and facing east in ENU (identity) == level, facing east in NED: yaw +90 deg about down.
    q_ned = F.attitude_enu_flu_to_ned_frd(np.array([1.0, 0.0, 0.0, 0.0]))
    np.testing.assert_allclose(F.quat_to_euler_zyx(q_ned), [0.0, 0.0, np.pi / 2], atol=1e-12)


def test_attitude_conversion_consistent_with_vector_conversions():
    # A body vector rotated to the world must agree whichever convention we use.
    q = _random_quats(50, seed=3)
    v_flu = np.random.default_rng(4).normal(size=(50, 3))
    world_enu = F.quat_rotate(q, v_flu)
    world_ned = F.quat_rotate(F.attitude_enu_flu_to_ned_frd(q), F.flu_to_frd(v_flu))
    np.testing.assert_allclose(F.enu_to_ned(world_enu), world_ned, atol=1e-12)


def test_rotmat_matches_rotate_and_euler_round_trip():
    q = _random_quats(50, seed=5)
    v = np.random.default_rng(6).normal(size=(50, 3))
    np.testing.assert_allclose(np.einsum("nij,nj->ni", F.quat_to_rotmat(q), v), F.quat_rotate(q, v), atol=1e-12)
    eul = F.quat_to_euler_zyx(q)
    np.testing.assert_allclose(F.quat_normalize(F.quat_from_euler_zyx(*eul.T)), q, atol=1e-9)


def test_xyzw_reordering_round_trip():
    q = _random_quats(10)
    xyzw = F.quat_wxyz_to_xyzw(q)
    np.testing.assert_allclose(xyzw[:, 3], q[:, 0])
    np.testing.assert_allclose(F.quat_xyzw_to_wxyz(xyzw), q)


def test_torch_quaternion_helpers_match_numpy():
    torch = pytest.importorskip("torch")
    from ssm_mbrl_ros.sim import state as S

    q = _random_quats(20, seed=7)
    v = np.random.default_rng(8).normal(size=(20, 3))
    qt, vt = torch.tensor(q), torch.tensor(v)
    np.testing.assert_allclose(S.quat_rotate(qt, vt).numpy(), F.quat_rotate(q, v), atol=1e-12)
    np.testing.assert_allclose(S.quat_rotate_inverse(qt, S.quat_rotate(qt, vt)).numpy(), v, atol=1e-12)
    np.testing.assert_allclose(S.quat_to_rotmat(qt).numpy(), F.quat_to_rotmat(q), atol=1e-12)
    np.testing.assert_allclose(S.quat_multiply(qt, qt).numpy(), F.quat_multiply(q, q), atol=1e-12)
    np.testing.assert_allclose(S.yaw_of(qt).numpy(), F.quat_to_euler_zyx(q)[:, 2], atol=1e-12)
