"""fc-sim speaks PX4 to a plain pymavlink client over UDP: NaN-defaulted commands, NAV_TAKEOFF / NAV_LAND,
REQUEST_MESSAGE, the parameter protocol (read, list, set, and the behaviour it changes), PING / TIMESYNC, health,
and the flight controller's own offboard-loss failsafe."""
import math
import time

import numpy as np
import pytest

from ssm_mbrl_ros.fcsim import FcSim, FcSimConfig
from ssm_mbrl_ros.link import mavlink_link as ml
from ssm_mbrl_ros.link.mavlink_link import MavLink, bound_port
from ssm_mbrl_ros.link.rehearsal import wait_until
from ssm_mbrl_ros.link.thrust_map import ThrustMap
from ssm_mbrl_ros.sim.vehicle import load_vehicle

m = ml.mavlink
NAN = float("nan")
TMAP = ThrustMap.for_vehicle(load_vehicle("agile5"))


@pytest.fixture
def pair():
    link = MavLink("udpin:127.0.0.1:0", TMAP)
    fc = FcSim(FcSimConfig(url=f"udpout:127.0.0.1:{bound_port(link.conn)}", estimator_ready_s=0.3)).start()
    link.wait_for_fc(5.0)
    yield link, fc
    fc.stop()
    link.close()


def _received(link, kind):
    return link.rx_counts.get(kind, 0)


def test_health_turns_ok_once_the_estimator_is_ready():
    link = MavLink("udpin:127.0.0.1:0", TMAP)
    fc = FcSim(FcSimConfig(url=f"udpout:127.0.0.1:{bound_port(link.conn)}", estimator_ready_s=1.0)).start()
    try:
        link.wait_for_fc(5.0)
        assert wait_until(lambda: link.telemetry.sys_status_seen, 2.0)
        assert link.telemetry.prearm_ok is False  # at boot
        assert link.command(m.MAV_CMD_COMPONENT_ARM_DISARM, [1.0]) == m.MAV_RESULT_DENIED
        link.wait_for_prearm(3.0)
        assert link.telemetry.prearm_ok is True and fc.now() >= 1.0
    finally:
        fc.stop()
        link.close()


def test_nan_parameters_mean_default(pair):
    link, fc = pair
    link.wait_for_prearm()
    assert link.command(m.MAV_CMD_COMPONENT_ARM_DISARM, [1.0, NAN, NAN, NAN, NAN, NAN, NAN]) == m.MAV_RESULT_ACCEPTED
    assert fc.armed
    base = float(ml.MAV_MODE_FLAG_CUSTOM_MODE_ENABLED)
    assert link.command(m.MAV_CMD_DO_SET_MODE, [base, 4.0, 3.0, NAN, NAN, NAN, NAN]) == m.MAV_RESULT_ACCEPTED
    assert fc.mode == "HOLD"
    assert link.command(m.MAV_CMD_COMPONENT_ARM_DISARM, [0.0, NAN, NAN, NAN, NAN, NAN, NAN]) == m.MAV_RESULT_ACCEPTED
    assert not fc.armed


def test_takeoff_hold_and_land_commands(pair):
    link, fc = pair
    link.wait_for_prearm()
    assert link.command(m.MAV_CMD_NAV_TAKEOFF, [NAN] * 7) == m.MAV_RESULT_DENIED  # disarmed
    link.arm()
    assert link.command(m.MAV_CMD_NAV_TAKEOFF, [NAN, NAN, NAN, NAN, NAN, NAN, 488.0 + 1.2]) == m.MAV_RESULT_ACCEPTED
    assert wait_until(lambda: fc.mode == "HOLD", 5.0)  # climbed, then holds
    assert abs(fc.state()[2] - 1.2) < 0.15
    assert link.command(m.MAV_CMD_NAV_LAND, [NAN] * 7) == m.MAV_RESULT_ACCEPTED
    assert wait_until(lambda: not fc.armed, 8.0)  # lands and disarms
    assert fc.state()[2] < 0.05


def test_request_message_ping_and_timesync(pair):
    link, fc = pair
    for name in ("AUTOPILOT_VERSION", "HOME_POSITION", "EXTENDED_SYS_STATE", "GLOBAL_POSITION_INT"):
        before = _received(link, name)
        msg_id = getattr(m, f"MAVLINK_MSG_ID_{name}")
        assert link.command(m.MAV_CMD_REQUEST_MESSAGE, [float(msg_id), NAN, NAN, NAN, NAN, NAN, NAN]) \
            == m.MAV_RESULT_ACCEPTED
        assert wait_until(lambda: _received(link, name) > before, 2.0), name
    assert link.command(m.MAV_CMD_REQUEST_MESSAGE, [9999.0]) == m.MAV_RESULT_UNSUPPORTED
    link._send(m.MAVLink_ping_message(123456, 7, 0, 0))
    link._send(m.MAVLink_timesync_message(0, 42))
    assert wait_until(lambda: _received(link, "PING") >= 1 and _received(link, "TIMESYNC") >= 1, 2.0)


def test_parameter_protocol_reads_sets_and_changes_behaviour(pair):
    link, fc = pair
    assert link.get_param("COM_OF_LOSS_T") == pytest.approx(0.5)
    assert link.get_param("COM_OBL_RC_ACT") == 5.0  # hold, an INT32 sent bytewise as PX4 does
    assert link.get_param("MPC_THR_HOVER") == pytest.approx(TMAP.hover_throttle, rel=1e-6)
    assert link.set_param("COM_OF_LOSS_T", 1.0) == pytest.approx(1.0)
    assert link.set_param("COM_OBL_RC_ACT", 4, integer=True) == 4.0
    assert link.set_param("COM_OF_LOSS_T", NAN) == pytest.approx(1.0)  # refused: the unchanged value is echoed
    assert link.set_param("MC_ROLLRATE_P", 0.3) == pytest.approx(0.3)
    assert fc.sim.c.kp[0] == pytest.approx(2.0 * fc._nominal_gains[0][0])  # the rate loop's gain doubled
    before = _received(link, "PARAM_VALUE")
    link._send(m.MAVLink_param_request_list_message(1, 1))
    assert wait_until(lambda: _received(link, "PARAM_VALUE") - before == len(fc.params.order), 2.0)
    # the flight controller's own offboard-loss failsafe now waits 1.0 s and lands
    link.wait_for_prearm()
    link.send_ctbr([9.81, 0, 0, 0])
    link.arm()
    for _ in range(30):
        link.send_ctbr([9.81, 0, 0, 0])
        time.sleep(0.01)
    link.set_mode("OFFBOARD")
    last = time.monotonic()
    for _ in range(20):
        link.send_ctbr([9.81, 0, 0, 0])
        last = time.monotonic()
        time.sleep(0.01)
    assert wait_until(lambda: fc.failsafes, 3.0)
    t_fs, action = fc.failsafes[0]
    assert action == "land" and 1.0 <= t_fs - fc.setpoint.received_s <= 1.06
    assert time.monotonic() - last >= 0.95


def test_fc_failsafe_disarm_action():
    link = MavLink("udpin:127.0.0.1:0", TMAP)
    fc = FcSim(FcSimConfig(url=f"udpout:127.0.0.1:{bound_port(link.conn)}", offboard_loss_action="disarm",
                           estimator_ready_s=0.0, start_pos_m=[0.0, 0.0, 0.0])).start()
    try:
        link.wait_for_fc(5.0)
        link.wait_for_prearm()
        link.arm()
        for _ in range(30):
            link.send_ctbr([9.0, 0, 0, 0])
            time.sleep(0.01)
        link.set_mode("OFFBOARD")
        assert wait_until(lambda: not fc.armed, 2.0) and fc.failsafes[0][1] == "disarm"
        assert np.all(np.isfinite(fc.state())) and math.isfinite(fc.battery)
    finally:
        fc.stop()
        link.close()
