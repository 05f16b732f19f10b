"""Lockstep: fc-sim steps once per setpoint on simulated time, the loop steps on the FC's SYSTEM_TIME marker.

Everything here is timed in simulated time, so the assertions are exact and do not depend on how
loaded the machine is: hover through a real fc-sim subprocess over UDP loopback, bitwise-identical
runs for the same seed (with wind, noise and packet loss), and the failsafes on simulated time.
"""
import numpy as np
import pytest

from ssm_mbrl_ros.fcsim import FcSim, FcSimConfig
from ssm_mbrl_ros.link.mavlink_link import LinkError, MavLink, bound_port
from ssm_mbrl_ros.link.offboard_loop import GeometricPolicy, fly, prepare
from ssm_mbrl_ros.link.rehearsal import rehearse, wait_until
from ssm_mbrl_ros.link.supervisor import default_supervisor_config
from ssm_mbrl_ros.link.supervisor import Supervisor
from ssm_mbrl_ros.link.thrust_map import ThrustMap
from ssm_mbrl_ros.sim.vehicle import load_vehicle

VEHICLE = load_vehicle("agile5")
HOVER = np.array([9.81, 0.0, 0.0, 0.0])


def test_lockstep_hover_through_fc_sim_subprocess():
    r = rehearse(duration_s=20.0, target_pos_m=(0.5, -0.5, 1.5), settle_s=5.0, lockstep=True)
    log, out = r["log"], r["fc_sim_output"]
    assert r["errors"] == [] and r["failsafe"] is None, r
    assert r["hover_rmse_m"] <= 0.1, r
    assert abs(r["final_pos_m"][2] - 1.5) < 0.05
    # simulated time: exactly one 10 ms period per loop step, arming at exactly arm_after_s (0.2 s)
    np.testing.assert_allclose(log.loop_dt_s, 0.01, atol=1e-9)
    assert log.offboard_s == pytest.approx(0.2)
    assert "fc-sim [   0.200 s] mode POSCTL -> OFFBOARD" in out, out
    assert "lockstep" in out and "0 late" in out
    assert r["realtime_factor"] > 1.0, r  # faster than real time (measured ~8x on an idle 2-core machine)
    assert r["final_mode"] == "LAND"


def _flight(seed, overrides=()):
    fc = ["seed=%d" % seed, "wind_mps=[1.0,0.5,0.0]", "pos_noise_m=0.005", "vel_noise_mps=0.02", "loss=0.05",
          *overrides]
    # 5 % loss can drop a pose message or two in a row: allow 3 periods of state age
    r = rehearse(duration_s=3.0, target_pos_m=(0.0, 0.0, 1.0), settle_s=1.0, fc_overrides=fc, lockstep=True,
                 supervisor_overrides={"max_state_age_s": 0.035}, land=False)
    assert r["errors"] == [] and r["failsafe"] is None, r
    log = r["log"]
    return np.asarray(log.t_s), np.asarray(log.pos_m), np.asarray([c for c in log.sent_ctbr])


def test_same_seed_same_trajectory_bitwise():
    t1, p1, c1 = _flight(3)
    t2, p2, c2 = _flight(3)
    assert len(t1) == len(t2) == 300  # 3 s of 10 ms steps
    np.testing.assert_array_equal(t1, t2)
    np.testing.assert_array_equal(p1, p2)  # bit for bit, noise and losses included
    np.testing.assert_array_equal(c1, c2)
    t3, p3, _ = _flight(4)  # another seed: other noise and losses, another trajectory
    assert np.abs(p3 - p1).max() > 1e-4


@pytest.fixture
def pair():
    """An in-process lockstep fc-sim (thread) and a lockstep link over UDP loopback."""
    link = MavLink("udpin:127.0.0.1:0", ThrustMap.for_vehicle(VEHICLE), lockstep=True)
    fc = FcSim(FcSimConfig(url=f"udpout:127.0.0.1:{bound_port(link.conn)}", lockstep=True,
                           start_pos_m=[0.0, 0.0, 1.0], lockstep_timeout_s=0.3)).start()
    yield link, fc
    fc.stop()
    link.close()


def test_time_stands_still_until_the_first_setpoint_then_one_step_each(pair):
    link, fc = pair
    link.wait_for_fc(5.0)
    link.wait_for_state(5.0)
    assert wait_until(lambda: link.rx_counts.get("SYSTEM_TIME", 0) >= 3, 2.0)  # t = 0 repeated while frozen
    assert link.clock() == 0.0 and fc.now() == 0.0 and link.snapshot().pos_fc_s == 0.0
    tick = None
    for k in range(1, 31):
        assert link.wait_for_tick(tick, 2.0)
        tick = link.clock()
        link.send_ctbr(HOVER)
    assert link.wait_for_tick(tick, 2.0)
    assert link.clock() == pytest.approx(0.30) and fc.stats.steps == 30
    assert link.snapshot().pos_fc_s == pytest.approx(0.30)  # telemetry of the new time arrived before the marker
    with pytest.raises(LinkError, match="lockstep"):
        MavLink("udpin:127.0.0.1:0", ThrustMap.for_vehicle(VEHICLE)).wait_for_tick(0.0)


@pytest.mark.parametrize("action", ["hold", "land"])
def test_offboard_loss_failsafe_counts_simulated_time(action):
    link = MavLink("udpin:127.0.0.1:0", ThrustMap.for_vehicle(VEHICLE), lockstep=True)
    fc = FcSim(FcSimConfig(url=f"udpout:127.0.0.1:{bound_port(link.conn)}", lockstep=True, lockstep_timeout_s=0.3,
                           start_pos_m=[0.0, 0.0, 1.0], offboard_loss_action=action)).start()
    try:
        link.wait_for_fc(5.0)
        link.wait_for_prearm()  # before time runs: arming at step 20 must not stall the lockstep
        tick = None
        for k in range(40):
            assert link.wait_for_tick(tick, 2.0)
            tick = link.clock()
            if k == 20:
                link.arm()
                link.set_mode("OFFBOARD")
            link.send_ctbr(HOVER)
        assert link.wait_for_tick(tick, 2.0)  # the last setpoint was taken
        last_setpoint = fc.setpoint.received_s
        assert last_setpoint == pytest.approx(0.39)
        # the controller stops: fc-sim waits 0.3 s of wall time, then free-runs; the failsafe follows COM_OF_LOSS_T
        assert wait_until(lambda: any(t.startswith("offboard lost") for _, t in fc.stats.events), 5.0)
        t_event = next(t for t, text in fc.stats.events if text.startswith("offboard lost"))
        assert t_event - last_setpoint == pytest.approx(0.51, abs=1e-6)  # first step past 0.5 s of simulated time
        assert wait_until(lambda: link.mode == action.upper(), 3.0)
    finally:
        fc.stop()
        link.close()


def test_stale_state_failsafe_one_period_after_the_limit_in_simulated_time(pair):
    link, fc = pair
    sup = Supervisor(default_supervisor_config(VEHICLE))
    policy = GeometricPolicy(VEHICLE, (0.0, 0.0, 1.0))
    prepare(link, sup, timeout_s=10.0)
    cut = []

    def inject(now, t):
        if t >= 0.5 and not cut:  # between two steps: deterministic
            link.set_message_interval("LOCAL_POSITION_NED", 0)
            link.set_message_interval("ATTITUDE_QUATERNION", 0)
            cut.append(now)

    log = fly(link, policy, sup, 2.0, inject=inject, lockstep=True)
    assert log.failsafe is not None and log.failsafe.reason == "stale_state", log.failsafe
    last_pose = link.snapshot().stamp_s
    assert last_pose == pytest.approx(cut[0])  # the step at which the cut was requested still had its telemetry
    # 50 ms limit: the first step at which the state is more than 50 ms old, i.e. 60 ms after the last pose
    assert log.failsafe.triggered_s - last_pose == pytest.approx(0.06, abs=1e-6)
    assert log.failsafe_sent_s == log.failsafe.triggered_s  # the LAND command left in that same step
    assert wait_until(lambda: link.mode == "LAND", 4.0)


def test_lockstep_loop_needs_a_lockstep_link_and_reports_a_silent_fc():
    link = MavLink("udpin:127.0.0.1:0", ThrustMap.for_vehicle(VEHICLE))
    try:
        with pytest.raises(LinkError, match="lockstep"):
            fly(link, GeometricPolicy(VEHICLE, (0, 0, 1)), Supervisor(default_supervisor_config(VEHICLE)), 1.0,
                lockstep=True)
    finally:
        link.close()
    # a real-time fc-sim never sends the lockstep marker: the loop says so and the supervisor lands
    link = MavLink("udpin:127.0.0.1:0", ThrustMap.for_vehicle(VEHICLE), lockstep=True)
    fc = FcSim(FcSimConfig(url=f"udpout:127.0.0.1:{bound_port(link.conn)}")).start()
    try:
        link.wait_for_fc(5.0)
        log = fly(link, GeometricPolicy(VEHICLE, (0, 0, 1)), Supervisor(default_supervisor_config(VEHICLE)), 1.0,
                  lockstep=True, lockstep_timeout_s=0.3)
        assert any("is fc-sim running with --lockstep" in e for e in log.errors), log.errors
        assert log.failsafe is not None and log.failsafe.reason == "stale_state"
    finally:
        fc.stop()
        link.close()


def test_fly_sim_cli_lockstep(tmp_path, capsys):
    import json

    from ssm_mbrl_ros.cli.fc_sim import main

    out = tmp_path / "fly.json"
    assert main(["fly-sim", "--lockstep", "--duration", "5", "--settle", "3", "--target", "0,0,1",
                 "--json", str(out)]) == 0
    text = capsys.readouterr().out
    assert "lockstep (timeout 1 s)" in text and "x real time" in text, text
    r = json.loads(out.read_text())
    assert r["hover_rmse_m"] < 0.1 and r["failsafe"] is None and r["final_mode"] == "LAND"
    assert r["loop_period_ms"]["max"] == pytest.approx(10.0)


def test_a_flight_controller_that_ignores_sigterm_is_killed_and_its_output_kept():
    """stop_and_read never hangs a finished rehearsal on an fc-sim that winds down slowly (a loaded machine)."""
    import subprocess
    import sys

    from ssm_mbrl_ros.link.rehearsal import stop_and_read

    code = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('fc up', flush=True); time.sleep(60)"
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert proc.stdout.readline().strip() == "fc up"
    out = stop_and_read(proc, timeout_s=1.0)
    assert proc.poll() is not None and "killed" in out
