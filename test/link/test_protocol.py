"""Link <-> fc-sim over real UDP loopback: handshake, rates, arming, OFFBOARD rules, stream-loss failsafe,
ACK retries, signing, and garbage on both sockets. fc-sim runs in a thread of this process."""
import os
import socket
import time

import numpy as np
import pytest

from ssm_mbrl_ros.link import mavlink_link as ml
from ssm_mbrl_ros.fcsim import FcSim, FcSimConfig
from ssm_mbrl_ros.link.mavlink_link import LinkError, MavLink, bound_port
from ssm_mbrl_ros.link.rehearsal import wait_until
from ssm_mbrl_ros.link.thrust_map import ThrustMap
from ssm_mbrl_ros.sim.vehicle import load_vehicle

VEHICLE = load_vehicle("agile5")
TMAP = ThrustMap.for_vehicle(VEHICLE)
HOVER = np.array([9.81, 0.0, 0.0, 0.0])


def pair(link_kw=None, **fc_kw):
    link = MavLink("udpin:127.0.0.1:0", TMAP, **(link_kw or {}))
    fc = FcSim(FcSimConfig(url=f"udpout:127.0.0.1:{bound_port(link.conn)}", **fc_kw)).start()
    return link, fc


@pytest.fixture
def link_fc():
    link, fc = pair()
    yield link, fc
    fc.stop()
    link.close()


def stream(link, seconds, ctbr=HOVER, hz=100.0):
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        link.send_ctbr(ctbr)
        time.sleep(1.0 / hz)


def test_handshake_heartbeat_and_telemetry(link_fc):
    link, fc = link_fc
    link.wait_for_fc(5.0)
    assert link.target_system == 1 and link.mode == "POSCTL" and not link.armed
    link.wait_for_state(5.0, max_age_s=0.1)
    np.testing.assert_allclose(link.telemetry.pos_m, [0, 0, 0], atol=1e-6)
    assert wait_until(lambda: link.telemetry.battery_fraction is not None, 3.0)
    assert any(k == "HEARTBEAT" for k in link.rx_counts)


def test_set_message_interval_changes_rate(link_fc):
    link, fc = link_fc
    link.wait_for_fc(5.0)
    assert link.set_message_interval("ATTITUDE_QUATERNION", 100.0) == ml.mavlink.MAV_RESULT_ACCEPTED
    assert link.set_message_interval("HIGHRES_IMU", 0) == ml.mavlink.MAV_RESULT_ACCEPTED
    time.sleep(0.2)
    a0, i0 = link.rx_counts.get("ATTITUDE_QUATERNION", 0), link.rx_counts.get("HIGHRES_IMU", 0)
    time.sleep(1.0)
    rate = link.rx_counts["ATTITUDE_QUATERNION"] - a0
    assert 70 <= rate <= 110, rate
    assert link.rx_counts.get("HIGHRES_IMU", 0) - i0 == 0
    # an unknown message id is answered, not ignored
    assert link.command(ml.mavlink.MAV_CMD_SET_MESSAGE_INTERVAL, [9999.0, 1e4]) == ml.mavlink.MAV_RESULT_UNSUPPORTED


def test_offboard_needs_a_live_setpoint_stream(link_fc):
    link, fc = link_fc
    link.wait_for_fc(5.0)
    link.arm()
    assert wait_until(lambda: link.armed, 2.0)
    with pytest.raises(LinkError, match="setpoint stream"):  # refused by our side
        link.set_mode("OFFBOARD")
    res = link.command(ml.mavlink.MAV_CMD_DO_SET_MODE, link.mode_params("OFFBOARD"))  # and by the FC
    assert res == ml.mavlink.MAV_RESULT_DENIED
    stream(link, 0.3)
    link.set_mode("OFFBOARD")
    assert fc.mode == "OFFBOARD"
    # keep streaming, else the stream-loss failsafe ends OFFBOARD before the next 1 Hz heartbeat
    assert wait_until(lambda: (link.send_ctbr(HOVER), link.mode == "OFFBOARD")[1], 2.0)


def test_setpoint_mapping_frd_and_normalised_thrust(link_fc):
    link, fc = link_fc
    link.wait_for_fc(5.0)
    link.send_ctbr([9.81, 0.1, 0.2, 0.3])
    assert wait_until(lambda: fc.setpoint is not None, 2.0)
    np.testing.assert_allclose(fc.setpoint.rates_frd, [0.1, -0.2, -0.3], rtol=1e-6)
    assert fc.setpoint.thrust_norm == pytest.approx(TMAP.hover_throttle, rel=1e-6)
    assert fc.thrust_map.to_mps2(fc.setpoint.thrust_norm) == pytest.approx(9.81, rel=1e-6)


@pytest.mark.parametrize("action", ["hold", "land"])
def test_stream_loss_triggers_fc_failsafe(action):
    link, fc = pair(offboard_loss_action=action, start_pos_m=[0.0, 0.0, 1.0], estimator_ready_s=0.0)
    try:
        link.wait_for_fc(5.0)
        link.wait_for_prearm()
        stream(link, 0.2)
        link.arm()
        link.set_mode("OFFBOARD")
        stream(link, 0.3)
        last = fc.setpoint.received_s
        assert wait_until(lambda: link.mode == action.upper(), 3.0)
        t_event = next(t for t, text in fc.stats.events if text.startswith("offboard lost"))
        # acts after COM_OF_LOSS_T (0.5 s) and within one 10 ms sim period of it (plus scheduling slack)
        assert 0.5 <= t_event - last <= 0.5 + 0.01 + 0.04, t_event - last  # 40 ms slack: loaded 2-core CI
        if action == "hold":
            time.sleep(1.0)
            assert link.armed and link.mode == "HOLD"
            assert abs(fc.state()[2] - fc.hold_pos[2]) < 0.05  # holds where it was
        else:  # LAND descends, touches down and disarms
            assert wait_until(lambda: not link.armed, 6.0)
            assert fc.state()[2] < 0.05
    finally:
        fc.stop()
        link.close()


def test_disarm_in_air_needs_force_and_unsupported_command():
    link, fc = pair(start_pos_m=[0.0, 0.0, 2.0], estimator_ready_s=0.0)  # armed before it falls
    try:
        link.wait_for_fc(5.0)
        link.arm()
        with pytest.raises(LinkError, match="disarm refused"):
            link.disarm()
        link.disarm(force=True)  # the operator kill
        assert wait_until(lambda: not link.armed, 2.0)
        assert link.command(ml.mavlink.MAV_CMD_DO_FLIGHTTERMINATION, [1.0]) == ml.mavlink.MAV_RESULT_UNSUPPORTED
    finally:
        fc.stop()
        link.close()


def test_command_retries_then_fails_on_silence():
    sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sink.bind(("127.0.0.1", 0))
    sink.settimeout(0.05)
    link = MavLink(f"udpout:127.0.0.1:{sink.getsockname()[1]}", TMAP)
    try:
        t0 = time.monotonic()
        with pytest.raises(LinkError, match="after 3 tries"):
            link.command(ml.mavlink.MAV_CMD_COMPONENT_ARM_DISARM, [1.0], timeout_s=0.1, retries=2)
        assert 0.29 <= time.monotonic() - t0 < 1.0
        parser = ml.mavlink.MAVLink(None)
        confirmations = []
        end = time.monotonic() + 0.5
        while time.monotonic() < end:
            try:
                data = sink.recv(2048)
            except socket.timeout:
                continue
            for msg in parser.parse_buffer(data) or []:
                if msg.get_type() == "COMMAND_LONG":
                    confirmations.append(msg.confirmation)
        assert confirmations == [0, 1, 2]
    finally:
        link.close()
        sink.close()


def test_signing_same_key_talks_other_key_is_ignored():
    key = os.urandom(32)
    link, fc = pair(link_kw=dict(signing_key=key), signing_key_hex=key.hex())
    try:
        link.wait_for_fc(5.0)
        assert link.set_message_interval("ATTITUDE_QUATERNION", 50) == ml.mavlink.MAV_RESULT_ACCEPTED
    finally:
        fc.stop()
        link.close()
    link, fc = pair(link_kw=dict(signing_key=key), signing_key_hex=os.urandom(32).hex())
    try:
        with pytest.raises(LinkError, match="heartbeat"):
            link.wait_for_fc(1.0)
    finally:
        fc.stop()
        link.close()


def _garbage(m):
    """Random bytes, truncated frames and well-formed but nonsensical MAVLink messages."""
    rng = np.random.default_rng(0)
    out = [rng.integers(0, 256, rng.integers(1, 300)).astype(np.uint8).tobytes() for _ in range(300)]
    out += [b"\xfd" + rng.integers(0, 256, 40).astype(np.uint8).tobytes() for _ in range(100)]  # fake v2 starts
    mav = m.MAVLink(None, srcSystem=7, srcComponent=1)  # a stranger (same-id forgery needs signing)
    nan = float("nan")
    msgs = [
        m.MAVLink_set_attitude_target_message(0, 1, 1, 128, [1, 0, 0, 0], nan, 0, 0, 0.5),
        m.MAVLink_set_attitude_target_message(0, 1, 1, 0, [nan] * 4, 0, 0, 0, 2.0),
        m.MAVLink_command_long_message(1, 1, 176, 0, nan, nan, nan, 0, 0, 0, 0),
        m.MAVLink_command_long_message(1, 1, 65000, 0, 0, 0, 0, 0, 0, 0, 0),
        m.MAVLink_command_long_message(1, 1, 511, 0, 1e30, -5, 0, 0, 0, 0, 0),
        m.MAVLink_attitude_quaternion_message(10**9, nan, nan, 0, 0, nan, 0, 0, [0] * 4),
        m.MAVLink_local_position_ned_message(10**9, nan, 1e30, 0, 0, 0, 0),
        m.MAVLink_heartbeat_message(2, 12, 255, 2**32 - 1, 4, 3),
        m.MAVLink_command_ack_message(400, 200),
    ]
    for msg in msgs:
        buf = msg.pack(mav)
        out += [buf, buf[: len(buf) // 2], buf[:-1] + bytes([buf[-1] ^ 0xFF])]
    return out


def test_garbage_crashes_neither_side_and_a_stranger_changes_nothing():
    # before the link has a flight controller it parses whatever arrives: garbage is counted, a stranger's
    # heartbeat (system 7) is not taken for the flight controller
    link = MavLink("udpin:127.0.0.1:0", TMAP)
    tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    fc = None
    try:
        for data in _garbage(ml.mavlink):
            tx.sendto(data, ("127.0.0.1", bound_port(link.conn)))
        assert wait_until(lambda: link.rx_errors > 0 and link.rx_foreign > 0, 2.0)
        assert link.target_system is None and link._thread.is_alive()
        fc = FcSim(FcSimConfig(url=f"udpout:127.0.0.1:{bound_port(link.conn)}")).start()
        link.wait_for_fc(5.0)
        # locked to each other now: the same garbage from another address is dropped unparsed, on both sides
        rx_errors = link.rx_errors
        for data in _garbage(ml.mavlink):
            tx.sendto(data, ("127.0.0.1", fc.port))
            tx.sendto(data, ("127.0.0.1", bound_port(link.conn)))
        # (the kernel may drop some of the burst on a loaded machine: count what arrived, all of it unparsed)
        assert wait_until(lambda: fc.conn.peer_guard.foreign_datagrams >= 50
                          and link.conn.peer_guard.foreign_datagrams >= 50, 5.0)
        assert fc._thread.is_alive() and link._thread.is_alive() and link.rx_errors == rx_errors
        assert link.mode == "POSCTL" and not link.armed  # the fake heartbeat/ack changed nothing
        assert np.all(np.isfinite(link.telemetry.pos_m)) and np.all(np.isfinite(link.telemetry.quat_wxyz))
        link.arm()  # both still work
        link.wait_for_state(2.0, max_age_s=0.1)
        assert wait_until(lambda: link.armed, 2.0)
    finally:
        tx.close()
        if fc is not None:
            fc.stop()
        link.close()


def test_fc_sim_listening_and_link_sending_also_works():
    fc = FcSim(FcSimConfig(url="udpin:127.0.0.1:0")).start()
    link = MavLink(f"udpout:127.0.0.1:{fc.port}", TMAP)
    try:
        link.wait_for_fc(5.0)  # our heartbeat tells the FC where we are (and locks it to us)
        link.wait_for_state(5.0, max_age_s=0.1)
        link.arm()
        assert wait_until(lambda: link.armed, 2.0)
    finally:
        link.close()
        fc.stop()
