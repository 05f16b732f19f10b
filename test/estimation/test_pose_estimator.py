"""Pose -> odometry estimator: velocity and body rates recovered from noisy poses, covariances, staleness."""
import math

import numpy as np
import pytest

from ssm_mbrl_ros.core.config import ConfigError
from ssm_mbrl_ros.core.frames import quat_from_euler_zyx, quat_multiply, quat_rotate
from ssm_mbrl_ros.estimation.pose_estimator import (EstimatorConfig, PoseVelocityEstimator, Staleness,
                                                   quat_log_rotvec)


def circle(t_s: float, radius_m: float = 2.0, omega_radps: float = 1.0):
    """Position, world velocity and yaw of a drone flying a horizontal circle, nose along the velocity."""
    pos = np.array([radius_m * math.cos(omega_radps * t_s), radius_m * math.sin(omega_radps * t_s), 1.5])
    vel = np.array([-radius_m * omega_radps * math.sin(omega_radps * t_s),
                    radius_m * omega_radps * math.cos(omega_radps * t_s), 0.0])
    return pos, vel, omega_radps * t_s + math.pi / 2


def test_circle_velocity_and_yaw_rate_from_noisy_mocap_at_irregular_times():
    rng = np.random.default_rng(0)
    est = PoseVelocityEstimator()  # defaults: 0.5 mm position noise, as a motion-capture system gives
    t, errs_v, errs_w = 0.0, [], []
    while t < 6.0:
        t += rng.uniform(0.004, 0.016)  # 60-250 Hz mocap with jitter
        pos, vel, yaw = circle(t, omega_radps=2.0)  # 4 m/s, 8 m/s^2 centripetal
        att_noise = quat_from_euler_zyx(*rng.normal(0.0, 0.002, 3))  # ~0.1 deg
        est.update(t, pos + rng.normal(0, 0.0005, 3), quat_multiply(quat_from_euler_zyx(0.0, 0.0, yaw), att_noise))
        if t > 1.0:
            s = est.state17()
            errs_v.append(s[7:10] - vel)
            errs_w.append(np.linalg.norm(s[10:13] - [0.0, 0.0, 2.0]))
    rms_axis_v = np.sqrt(np.mean(np.square(np.array(errs_v)[:, :2])))
    assert rms_axis_v < 0.15  # m/s per horizontal axis, at 4 m/s
    assert np.sqrt(np.mean(np.square(errs_w))) < 0.4  # rad/s, 3-axis norm, 0.1 deg attitude noise at up to 250 Hz
    sigma_v = math.sqrt(est.twist_covariance()[0, 0])
    assert rms_axis_v / 2 < sigma_v < rms_axis_v * 3  # the reported uncertainty matches the actual error


def test_body_rates_are_in_the_body_frame():
    # pitched 30 deg, spinning about the body x axis at 2 rad/s: the estimate must say x, not a world axis
    est = PoseVelocityEstimator(EstimatorConfig(rate_cutoff_hz=200.0))
    q0 = quat_from_euler_zyx(0.0, math.radians(30), 0.0)
    for k in range(200):
        t = k * 0.005
        q = quat_multiply(q0, quat_from_euler_zyx(2.0 * t, 0.0, 0.0))
        est.update(t, [0, 0, 1], q)
    np.testing.assert_allclose(est.state17()[10:13], [2.0, 0.0, 0.0], atol=1e-3)


def test_quat_log_is_the_rotation_vector_both_hemispheres():
    axis = np.array([1.0, 2.0, -0.5]) / np.linalg.norm([1.0, 2.0, -0.5])
    q = np.concatenate([[math.cos(0.4)], math.sin(0.4) * axis])  # 0.8 rad
    np.testing.assert_allclose(quat_log_rotvec(q), 0.8 * axis, atol=1e-12)
    np.testing.assert_allclose(quat_log_rotvec(-q), 0.8 * axis, atol=1e-12)
    v = np.array([0.3, -0.1, 0.2])
    np.testing.assert_allclose(quat_rotate(q, v), quat_rotate(-q, v))


def test_non_advancing_and_non_finite_samples_are_dropped_and_gaps_restart():
    est = PoseVelocityEstimator()
    assert est.update(1.0, [0, 0, 1], [1, 0, 0, 0])
    assert not est.ready
    assert est.update(1.01, [0.01, 0, 1], [1, 0, 0, 0])
    assert est.ready
    assert not est.update(1.01, [5.0, 0, 1], [1, 0, 0, 0])  # duplicate stamp
    assert not est.update(1.00, [5.0, 0, 1], [1, 0, 0, 0])  # out of order
    assert not est.update(1.02, [np.nan, 0, 1], [1, 0, 0, 0])
    assert est.state17()[0] < 0.05
    assert est.update(3.0, [9.0, 0, 1], [1, 0, 0, 0])  # 2 s gap > reset_after_s
    assert est.resets == 1 and not est.ready
    assert est.state17()[0] == 9.0 and est.state17()[7] == 0.0


def test_covariances_are_symmetric_positive_and_shrink_with_data():
    est = PoseVelocityEstimator()
    est.update(0.0, [0, 0, 0], [1, 0, 0, 0])
    first = est.twist_covariance()[0, 0]
    for k in range(1, 100):
        est.update(k * 0.01, [0.01 * k, 0, 0], [1, 0, 0, 0])
    for c in (est.pose_covariance(), est.twist_covariance()):
        np.testing.assert_allclose(c, c.T)
        assert np.all(np.linalg.eigvalsh(c) > 0)
    assert est.twist_covariance()[0, 0] < first / 100
    assert abs(est.state17()[7] - 1.0) < 0.02


def test_staleness_flag_transitions():
    s = Staleness(0.05)
    assert s.stale and not s.check(0.0)  # stale until the first sample
    assert s.seen(1.0) and not s.stale
    assert not s.check(1.04)
    assert s.check(1.06) and s.stale
    assert not s.check(1.5)
    assert s.seen(1.6) and s.transitions == 3


@pytest.mark.parametrize("field", ["pos_std_m", "rate_cutoff_hz", "reset_after_s"])
def test_bad_config_names_the_field(field):
    with pytest.raises(ConfigError, match=field):
        PoseVelocityEstimator(EstimatorConfig(**{field: 0.0}))
    with pytest.raises(ConfigError, match="stale_after_s"):
        Staleness(-1.0)
