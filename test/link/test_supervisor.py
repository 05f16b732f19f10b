"""Safety supervisor: pre-arm checks, every in-flight guard, clamps, latching and reaction time."""
import math

import numpy as np
import pytest

from ssm_mbrl_ros.core.config import ConfigError
from ssm_mbrl_ros.core.frames import quat_from_euler_zyx
from ssm_mbrl_ros.link.supervisor import (Action, StateSample, Supervisor, SupervisorConfig,
                                          calibrate_surprise_threshold, tilt_deg)

DT = 0.01
LEVEL = np.array([1.0, 0, 0, 0])
HOVER = np.array([9.81, 0.0, 0.0, 0.0])


def make(**kw):
    cfg = dict(geofence_min_m=[-5, -5, 0], geofence_max_m=[5, 5, 4], surprise_threshold=2.0, surprise_steps=3)
    cfg.update(kw)
    return Supervisor(SupervisorConfig(**cfg))


def st(t, pos=(0, 0, 1), quat=LEVEL):
    return StateSample(np.asarray(pos, float), np.asarray(quat, float), t)


def fly(sup, steps, t0=0.0, **kw):
    """Nominal steps; returns the list of decisions."""
    return [sup.step(t0 + i * DT, st(t0 + i * DT), HOVER, **kw) for i in range(steps)]


def test_prearm_all_ok():
    r = make().prearm(1.0, st(0.99), 0.5, True, 0.9)
    assert r.ok and r.failures == []


@pytest.mark.parametrize("case,args,expect", [
    ("no_state", dict(state=None), "state"),
    ("stale_state", dict(state=st(0.9)), "state"),
    ("nan_state", dict(state=st(1.0, pos=(np.nan, 0, 1))), "state"),
    ("no_heartbeat", dict(hb=None), "fc_heartbeat"),
    ("old_heartbeat", dict(hb=-2.5), "fc_heartbeat"),
    ("model", dict(model=False), "model"),
    ("battery_low", dict(batt=0.1), "battery"),
    ("battery_unknown", dict(batt=None), "battery"),
    ("battery_nan", dict(batt=float("nan")), "battery"),
    ("outside_fence", dict(state=st(1.0, pos=(9, 0, 1))), "geofence"),
])
def test_prearm_each_check_fails(case, args, expect):
    a = dict(state=st(1.0), hb=0.9, model=True, batt=0.9)
    a.update(args)
    r = make().prearm(1.0, a["state"], a["hb"], a["model"], a["batt"])
    assert not r.ok
    assert any(f.startswith(expect) for f in r.failures), r.failures


def test_prearm_requires_geofence():
    r = Supervisor(SupervisorConfig()).prearm(1.0, st(1.0), 1.0, True, 1.0)
    assert not r.ok and any(f.startswith("geofence") for f in r.failures)


def test_nominal_streams_clamped_command():
    sup = make()
    for d in fly(sup, 50):
        assert d.action is Action.STREAM
        np.testing.assert_allclose(d.ctbr, HOVER)


def _trigger_at(sup, k, bad_step):
    """Fly nominal steps, then at step k inject via bad_step(t); return the decision of that step."""
    fly(sup, k)
    return bad_step(k * DT)


@pytest.mark.parametrize("reason,bad,expected", [
    ("stale_state", lambda s, t: s.step(t, st(t - 0.051), HOVER), Action.LAND),
    ("stale_state", lambda s, t: s.step(t, None, HOVER), Action.LAND),
    ("nonfinite_state", lambda s, t: s.step(t, st(t, quat=(np.nan, 0, 0, 0)), HOVER), Action.LAND),
    ("nan_action", lambda s, t: s.step(t, st(t), [np.nan, 0, 0, 0]), Action.HOLD),
    ("nan_action", lambda s, t: s.step(t, st(t), [9.81, np.inf, 0, 0]), Action.HOLD),
    ("nan_action", lambda s, t: s.step(t, st(t), [9.81, 0, 0]), Action.HOLD),
    ("geofence", lambda s, t: s.step(t, st(t, pos=(0, 0, 4.01)), HOVER), Action.HOLD),
    ("geofence", lambda s, t: s.step(t, st(t, pos=(-5.1, 0, 1)), HOVER), Action.HOLD),
    ("tilt", lambda s, t: s.step(t, st(t, quat=quat_from_euler_zyx(math.radians(61), 0, 0)), HOVER), Action.HOLD),
    ("battery", lambda s, t: s.step(t, st(t), HOVER, battery_fraction=0.1), Action.LAND),
    ("fc_heartbeat", lambda s, t: s.step(t, st(t), HOVER, fc_heartbeat_s=t - 3.01), Action.LAND),
])
def test_guard_acts_in_the_step_it_is_seen(reason, bad, expected):
    sup = make()
    d = _trigger_at(sup, 20, lambda t: bad(sup, t))
    assert d.action is expected and d.reason == reason and d.ctbr is None
    assert d.triggered_s == pytest.approx(20 * DT)  # reaction within the trigger's own control period


def test_state_age_boundary():
    sup = make()
    assert sup.step(1.0, st(1.0 - 0.049), HOVER).action is Action.STREAM
    assert sup.step(1.01, st(1.01 - 0.0505), HOVER).reason == "stale_state"


def test_tilt_boundary():
    sup = make()
    assert sup.step(0.0, st(0.0, quat=quat_from_euler_zyx(0, math.radians(59), 0)), HOVER).action is Action.STREAM
    assert tilt_deg(quat_from_euler_zyx(0, math.radians(59), 1.0)) == pytest.approx(59, abs=1e-6)


def test_surprise_needs_n_consecutive_steps():
    sup = make()
    t = 0.0
    for s in (3.0, 3.0, 1.0, 3.0, 3.0):  # interrupted runs do not trigger
        assert sup.step(t, st(t), HOVER, surprise=s).action is Action.STREAM
        t += DT
    d = sup.step(t, st(t), HOVER, surprise=3.0)  # third consecutive
    assert d.action is Action.HOLD and d.reason == "surprise" and d.triggered_s == t


def test_surprise_nan_counts_and_guard_off_without_threshold():
    sup = make(surprise_steps=1)
    assert sup.step(0.0, st(0.0), HOVER, surprise=float("nan")).reason == "surprise"
    sup = make(surprise_threshold=None)
    assert all(d.action is Action.STREAM for d in fly(sup, 10, surprise=1e9))


def test_overrun_needs_consecutive_overruns():
    sup = make(overrun_steps=3)
    seq = [0.02, 0.02, 0.001, 0.02, 0.02]
    for i, pt in enumerate(seq):
        assert sup.step(i * DT, st(i * DT), HOVER, policy_time_s=pt).action is Action.STREAM
    d = sup.step(5 * DT, st(5 * DT), HOVER, policy_time_s=0.02)
    assert d.reason == "overrun" and d.action is Action.HOLD


def test_failsafe_latches_until_reset():
    sup = make()
    d = sup.step(0.0, st(0.0), [np.nan] * 4)
    assert d.reason == "nan_action"
    for d2 in fly(sup, 5, t0=0.01):  # good inputs afterwards do not resume streaming
        assert d2 is d
    sup.reset()
    assert sup.step(1.0, st(1.0), HOVER).action is Action.STREAM


def test_operator_kill_overrides_everything():
    sup = make()
    sup.step(0.0, st(0.0), [np.nan] * 4)
    d = sup.kill(0.02)
    assert d.action is Action.KILL and d.reason == "operator_kill"
    assert sup.step(0.03, st(0.03), HOVER).action is Action.KILL


def test_action_mapping_override_and_validation():
    sup = make(actions={"geofence": "land"})
    assert sup.step(0.0, st(0.0, pos=(0, 0, 9)), HOVER).action is Action.LAND
    with pytest.raises(ConfigError, match="actions.geofence"):
        make(actions={"geofence": "panic"})
    with pytest.raises(ConfigError, match="max_tilt_deg"):
        make(max_tilt_deg=0)
    with pytest.raises(ConfigError, match="geofence"):
        make(geofence_max_m=None)
    with pytest.raises(ConfigError, match="geofence_min_m"):
        make(geofence_min_m=[0, 0, 5])


def test_clamps_rates_and_thrust():
    sup = make(max_rate_radps=[1.0, 2.0, 0.5], thrust_max_mps2=20.0, thrust_slew_mps3=1e6)
    d = sup.step(0.0, st(0.0), [50.0, 3.0, -3.0, 1.0])
    np.testing.assert_allclose(d.ctbr, [20.0, 1.0, -2.0, 0.5])
    d = sup.step(0.01, st(0.01), [-5.0, 0.0, 0.0, -1.0])
    np.testing.assert_allclose(d.ctbr, [0.0, 0.0, 0.0, -0.5])


def test_thrust_slew_limit():
    sup = make(thrust_slew_mps3=100.0)  # 1 m/s^2 per 10 ms step
    thrusts = [sup.step(i * DT, st(i * DT), [9.81 if i == 0 else 20.0, 0, 0, 0]).ctbr[0] for i in range(6)]
    np.testing.assert_allclose(np.diff(thrusts), 1.0)
    down = sup.step(0.06, st(0.06), [0.0, 0, 0, 0]).ctbr[0]
    assert down == pytest.approx(thrusts[-1] - 1.0)


def test_calibrate_surprise_threshold():
    rng = np.random.default_rng(0)
    x = rng.normal(1.0, 0.1, 100_000)
    thr = calibrate_surprise_threshold(x, quantile=0.99, margin=1.0)
    assert thr == pytest.approx(1.0 + 2.326 * 0.1, rel=0.01)
    assert calibrate_surprise_threshold(np.r_[x, np.nan], 0.99, 2.0) == pytest.approx(2 * thr, rel=0.01)
    with pytest.raises(ValueError):
        calibrate_surprise_threshold([1.0, 2.0])


def test_stale_command_holds_only_when_the_command_is_older_than_the_limit():
    sup = make(max_command_age_s=0.05)
    assert sup.step(1.0, st(1.0), HOVER, command_s=0.96).action is Action.STREAM  # 40 ms old: fresh
    assert sup.step(1.01, st(1.01), HOVER).action is Action.STREAM  # no command time: computed in this step
    d = sup.step(1.02, st(1.02), HOVER, command_s=0.96)
    assert d.action is Action.HOLD and d.reason == "stale_command" and d.triggered_s == 1.02
    with pytest.raises(ConfigError, match="max_command_age_s"):
        make(max_command_age_s=0.0)
