"""A real stale-state failsafe: mid-flight the FC is told (SET_MESSAGE_INTERVAL) to stop pose telemetry;
the supervisor must command LAND within one control period of the state turning 50 ms old."""
import threading
import time

import numpy as np

from ssm_mbrl_ros.link.offboard_loop import GeometricPolicy, fly, prepare
from ssm_mbrl_ros.link.rehearsal import session, stop_and_read, wait_until
from ssm_mbrl_ros.link.supervisor import default_supervisor_config
from ssm_mbrl_ros.link.supervisor import Supervisor


def test_telemetry_stop_triggers_land_within_one_period():
    with session() as (link, vehicle, proc):
        sup = Supervisor(default_supervisor_config(vehicle))
        policy = GeometricPolicy(vehicle, (0.0, 0.0, 1.0))
        policy(np.r_[0.0, 0, 0, 1, 0, 0, 0, np.zeros(10)], 0.0)
        prepare(link, sup, timeout_s=30.0)

        def cut_telemetry():
            wait_until(lambda: link.mode == "OFFBOARD", 5.0)
            time.sleep(0.5)
            link.set_message_interval("LOCAL_POSITION_NED", 0)
            link.set_message_interval("ATTITUDE_QUATERNION", 0)

        cutter = threading.Thread(target=cut_telemetry, daemon=True)
        cutter.start()
        log = fly(link, policy, sup, 3.0)
        cutter.join(2.0)
        assert log.failsafe is not None and log.failsafe.reason == "stale_state", log.failsafe
        stale_since = link.telemetry.stamp_s + sup.cfg.max_state_age_s
        reaction_s = log.failsafe_sent_s - stale_since
        assert 0.0 <= reaction_s <= 0.010 + 0.005, reaction_s  # one 10 ms period (+5 ms scheduling slack)
        assert wait_until(lambda: log.failsafe_ack_s is not None, 2.0)
        assert wait_until(lambda: link.mode == "LAND", 3.0)
        # a failsafe before OFFBOARD (outside a geofence placed above the landed drone): never arms
        assert wait_until(lambda: not link.armed, 6.0)
        link.set_message_interval("LOCAL_POSITION_NED", 100)
        link.set_message_interval("ATTITUDE_QUATERNION", 100)
        link.wait_for_state(2.0)
        fenced = Supervisor(default_supervisor_config(vehicle, geofence_min_m=[-5, -5, 5], geofence_max_m=[5, 5, 9]))
        log2 = fly(link, policy, fenced, 0.6)
        assert log2.failsafe.reason == "geofence" and log2.offboard_s is None
        assert log2.sent_ctbr[0] is None  # not a single setpoint was streamed
        time.sleep(0.3)
        assert not link.armed
    out = stop_and_read(proc)  # fc-sim's whole output, kept after the session stopped it
    assert "companion: failsafe stale_state: LAND" in out, out  # the reason reached the FC log
    assert "mode OFFBOARD -> LAND" in out


def test_operator_kill_overrides_an_earlier_hold():
    with session() as (link, vehicle, proc):
        sup = Supervisor(default_supervisor_config(vehicle))
        policy = GeometricPolicy(vehicle, (0.0, 0.0, 1.0))
        prepare(link, sup, timeout_s=30.0)
        kill = threading.Event()

        def inject(now, t):
            if t >= 0.3:
                kill.set()
            return {"ctbr": np.full(4, np.nan)} if t >= 0.2 else None  # NaN first -> HOLD, then the kill

        log = fly(link, policy, sup, 1.0, inject=inject, kill=kill)
        assert log.failsafe.reason == "operator_kill"
        assert wait_until(lambda: not link.armed, 2.0)  # force-disarmed in the air
    assert "failsafe nan_action: HOLD" in stop_and_read(proc)
