"""Security of the MAVLink link and fc-sim over real UDP loopback: loopback binding, peer locking, spoofed
heartbeats, MAVLink 2 signing, and PX4's rules for command arguments and setpoint limits."""
import os
import socket
import subprocess
import sys
import time

import numpy as np
import pytest

from ssm_mbrl_ros.core.config import ConfigError
from ssm_mbrl_ros.link import mavlink_link as ml
from ssm_mbrl_ros.fcsim import FcSim, FcSimConfig, printable
from ssm_mbrl_ros.link.mavlink_link import LinkError, MavLink, bound_port
from ssm_mbrl_ros.link.rehearsal import wait_until
from ssm_mbrl_ros.link.thrust_map import ThrustMap
from ssm_mbrl_ros.link.transport import check_link_host, signing_key
from ssm_mbrl_ros.sim.vehicle import load_vehicle

TMAP = ThrustMap.for_vehicle(load_vehicle("agile5"))
m = ml.mavlink


def _pack(msg, src_system=1, src_component=1, key: bytes | None = None) -> bytes:
    mav = m.MAVLink(None, srcSystem=src_system, srcComponent=src_component)
    if key is not None:
        mav.signing.secret_key, mav.signing.sign_outgoing, mav.signing.link_id = key, True, 0
        mav.signing.timestamp = int(time.time() * 1e5)
    return msg.pack(mav)


def _armed_heartbeat():
    return m.MAVLink_heartbeat_message(m.MAV_TYPE_QUADROTOR, m.MAV_AUTOPILOT_PX4, 128 | 1, 6 << 16,
                                       m.MAV_STATE_ACTIVE, 3)


@pytest.fixture
def pair():
    link = MavLink("udpin:127.0.0.1:0", TMAP)
    fc = FcSim(FcSimConfig(url=f"udpout:127.0.0.1:{bound_port(link.conn)}")).start()
    link.wait_for_fc(5.0)
    yield link, fc
    fc.stop()
    link.close()


def test_sockets_listen_on_loopback_by_default():
    fc = FcSim(FcSimConfig(url="udpout:127.0.0.1:14999"))  # fc-sim's default form: PX4 SITL sending to 14540
    link = MavLink("udpout:127.0.0.1:14998", TMAP)
    try:
        assert fc.conn.port.getsockname()[0] == "127.0.0.1"  # pymavlink alone leaves udpout on the wildcard address
        assert link.conn.port.getsockname()[0] == "127.0.0.1"
    finally:
        fc.conn.close()
        link.close()


def test_a_network_address_is_an_explicit_choice():
    with pytest.raises(ConfigError, match="not a loopback address"):
        FcSim(FcSimConfig(url="udpin:192.0.2.1:0"))  # a documentation-only (TEST-NET-1) address
    with pytest.raises(ConfigError, match="not a loopback address"):
        MavLink("udpin:192.0.2.1:0", TMAP)
    # with allow_remote the address passes the check (checked without opening it: tests bind loopback only)
    assert check_link_host("udpin:192.0.2.1:0", allow_remote=True) == "192.0.2.1"
    with pytest.raises(ConfigError, match="not a loopback address"):
        check_link_host("udpin:192.0.2.1:0")
    with pytest.raises(ConfigError, match="not a valid IPv4 address"):
        FcSimConfig(url="udpin:999.1.1.1:14540").validate()


def test_fc_sim_cli_prints_a_loopback_socket_and_bad_urls_exit_2():
    env = {**os.environ, "PYTHONPATH": os.getcwd()}
    out = subprocess.run([sys.executable, "-m", "ssm_mbrl_ros.cli.fc_sim", "fc-sim", "--duration", "0.3", "--url",
                          "udpout:127.0.0.1:14997"], capture_output=True, text=True, timeout=60, env=env)
    assert out.returncode == 0, out.stderr
    assert "socket 127.0.0.1:" in out.stdout and "UNSIGNED" in out.stdout
    bad = subprocess.run([sys.executable, "-m", "ssm_mbrl_ros.cli.fc_sim", "fc-sim", "--url", "udpin:999.1.1.1:5"],
                         capture_output=True, text=True, timeout=60, env=env)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr and "999.1.1.1" in bad.stderr


def test_a_foreign_address_cannot_arm_fc_sim(pair):
    link, fc = pair
    tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        arm = m.MAVLink_command_long_message(1, 1, m.MAV_CMD_COMPONENT_ARM_DISARM, 0, 1, 0, 0, 0, 0, 0, 0)
        tx.sendto(_pack(arm, 245, 191), ("127.0.0.1", fc.port))  # right ids, wrong address
        assert wait_until(lambda: fc.conn.peer_guard.foreign_datagrams == 1, 2.0)
        time.sleep(0.1)
        assert not fc.armed
    finally:
        tx.close()


def test_a_spoofed_heartbeat_does_not_take_over_the_link():
    link = MavLink("udpin:127.0.0.1:0", TMAP)
    tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    fc = None
    try:
        port = bound_port(link.conn)
        tx.sendto(_pack(_armed_heartbeat(), src_system=99), ("127.0.0.1", port))  # wrong system id
        assert wait_until(lambda: link.rx_foreign == 1, 2.0)
        assert link.target_system is None and not link.armed
        fc = FcSim(FcSimConfig(url=f"udpout:127.0.0.1:{port}")).start()
        link.wait_for_fc(5.0)
        assert link.target_system == 1
        # the flight controller's own ids from another address: dropped before parsing, never believed
        for _ in range(20):
            tx.sendto(_pack(_armed_heartbeat(), src_system=1), ("127.0.0.1", port))
        assert wait_until(lambda: link.conn.peer_guard.foreign_datagrams >= 20, 2.0)
        time.sleep(1.2)  # a real heartbeat in between
        assert not link.armed and link.mode == "POSCTL" and link.target_system == 1
        assert link.security_counts()["foreign_datagrams"] >= 20
    finally:
        tx.close()
        if fc is not None:
            fc.stop()
        link.close()


def test_signing_rejects_unsigned_and_wrongly_signed_commands():
    key = os.urandom(32)
    fc = FcSim(FcSimConfig(url="udpin:127.0.0.1:0", signing_key_hex=key.hex())).start()
    tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        arm = m.MAVLink_command_long_message(1, 1, m.MAV_CMD_COMPONENT_ARM_DISARM, 0, 1, 0, 0, 0, 0, 0, 0)
        hb = m.MAVLink_heartbeat_message(m.MAV_TYPE_ONBOARD_CONTROLLER, m.MAV_AUTOPILOT_INVALID, 0, 0, 4, 3)
        for msg in (hb, arm):
            tx.sendto(_pack(msg, 245, 191), ("127.0.0.1", fc.port))  # unsigned
            tx.sendto(_pack(msg, 245, 191, key=os.urandom(32)), ("127.0.0.1", fc.port))  # another key
        assert wait_until(lambda: fc.conn.mav.signing.reject_count >= 4, 2.0)
        assert not fc.armed and fc.conn.peer_guard.peer is None  # not even the peer lock was taken
        link = MavLink(f"udpout:127.0.0.1:{fc.port}", TMAP, signing_key=key)  # the right key flies
        try:
            link.wait_for_fc(5.0)
            link.arm()
            assert wait_until(lambda: link.armed, 2.0)
        finally:
            link.close()
    finally:
        tx.close()
        fc.stop()


def test_fc_sim_arms_only_on_exactly_one(pair):
    link, fc = pair
    link.wait_for_prearm()
    for bad in (0.7, 1e30, -1.0, 2.0, float("nan")):
        assert link.command(m.MAV_CMD_COMPONENT_ARM_DISARM, [bad]) == m.MAV_RESULT_DENIED, bad
    assert not fc.armed
    assert link.command(m.MAV_CMD_COMPONENT_ARM_DISARM, [1.0]) == m.MAV_RESULT_ACCEPTED
    assert fc.armed


def test_setpoints_are_clamped_to_the_vehicle_limits_and_nan_never_flies(pair):
    link, fc = pair
    big = m.MAVLink_set_attitude_target_message(0, 1, 1, 128, [1, 0, 0, 0], 3e38, -3e38, 3e38, 3e38)
    link._send(big)
    assert wait_until(lambda: fc.stats.clamped == 1, 2.0)
    max_rate = np.asarray(load_vehicle("agile5").max_rate_radps)
    np.testing.assert_allclose(fc.setpoint.rates_frd, [max_rate[0], -max_rate[1], max_rate[2]])
    assert fc.setpoint.thrust_norm == 1.0
    link._send(m.MAVLink_set_attitude_target_message(0, 1, 1, 128, [1, 0, 0, 0], float("nan"), 0, 0, 0.5))
    assert wait_until(lambda: fc.stats.rejected >= 1, 2.0)
    assert np.all(np.isfinite(fc.setpoint.rates_frd))


def test_companion_text_is_made_safe_for_a_terminal():
    assert printable("\x1b[2Jhello\x07") == "?[2Jhello?"
    assert len(printable("x" * 80)) == 50


def test_signing_key_sources(tmp_path, monkeypatch):
    monkeypatch.delenv("MAVLINK_SIGNING_KEY", raising=False)
    assert signing_key("") is None
    key = os.urandom(32)
    (tmp_path / "k").write_text(key.hex() + "\n")
    assert signing_key(key_file=str(tmp_path / "k")) == key
    monkeypatch.setenv("MAVLINK_SIGNING_KEY", key.hex())
    assert signing_key("") == key
    with pytest.raises(ConfigError, match="64 hex digits"):
        signing_key("abcd")
    with pytest.raises(LinkError):  # a link never waits forever on a silent peer
        link = MavLink("udpin:127.0.0.1:0", TMAP, signing_key=key)
        try:
            link.wait_for_fc(0.2)
        finally:
            link.close()
