"""A real, independently written MAVLink client (MAVSDK, the native C++ library behind `pip install mavsdk`) runs a
whole offboard flight on fc-sim, as a companion computer would against PX4: connect, wait until healthy, read
telemetry and a parameter, arm, OFFBOARD with attitude-rate setpoints, climb and hold, land with the land command,
auto-disarm. Skipped (with the reason) where mavsdk cannot be installed."""
import asyncio
import math
import socket
import time

import pytest

mavsdk = pytest.importorskip("mavsdk", minversion="4", reason="MAVSDK (pip install 'mavsdk>=4') is not installed")
from mavsdk.asyncio import ComponentType, Configuration, Mavsdk  # noqa: E402
from mavsdk.asyncio.plugins.action import ActionAsync  # noqa: E402
from mavsdk.asyncio.plugins.offboard import AttitudeRate, OffboardAsync  # noqa: E402
from mavsdk.asyncio.plugins.param import ParamAsync  # noqa: E402
from mavsdk.asyncio.plugins.telemetry import LandedState, TelemetryAsync  # noqa: E402

from ssm_mbrl_ros.fcsim import FcSim, FcSimConfig  # noqa: E402

TARGET_UP_M = 1.5


def _free_udp_port() -> int:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


async def _flight(port: int, fc: FcSim) -> dict:
    """The companion's whole flight through MAVSDK; returns what it saw."""
    seen = {"alt": [], "xy": [], "health_s": None}
    config = Configuration.create_with_component_type(ComponentType.COMPANION_COMPUTER)
    async with Mavsdk(config) as mav:
        await mav.add_any_connection(f"udpin://127.0.0.1:{port}")
        fc.start()
        system = await mav.first_autopilot(timeout_s=15.0)
        assert system is not None, "MAVSDK found no autopilot"
        tel, action, offboard, param = TelemetryAsync(system), ActionAsync(system), OffboardAsync(system), \
            ParamAsync(system)
        t0 = time.monotonic()
        while True:  # "wait until healthy": armable, local and global position, home
            h = await tel.health()
            if h.is_armable and h.is_local_position_ok and h.is_global_position_ok and h.is_home_position_ok:
                seen["health_s"] = time.monotonic() - t0
                break
            assert time.monotonic() - t0 < 10.0, f"never healthy: {vars(h)}"
            await asyncio.sleep(0.1)
        hover = await param.get_param_float("MPC_THR_HOVER")
        seen["home"] = vars(await tel.home())
        seen["battery"] = (await tel.battery()).remaining_percent
        assert not await tel.armed() and not await tel.in_air()
        await action.arm()
        await offboard.set_attitude_rate(AttitudeRate(0.0, 0.0, 0.0, 0.0))
        await offboard.start()
        end = time.monotonic() + 8.0
        while time.monotonic() < end:  # a PD altitude loop and a level-keeping loop on MAVSDK's telemetry
            pos, vel, att = await tel.position(), await tel.velocity_ned(), await tel.attitude_euler()
            ned = await tel.position_velocity_ned()
            up, vz_up = pos.relative_altitude_m, -vel.down_m_s
            thrust = hover * (1.0 + 0.35 * (TARGET_UP_M - up) - 0.5 * vz_up)
            roll_rate = -4.0 * att.roll_deg
            pitch_rate = -4.0 * att.pitch_deg
            await offboard.set_attitude_rate(AttitudeRate(roll_rate, pitch_rate, 0.0, min(max(thrust, 0.0), 1.0)))
            seen["alt"].append((time.monotonic(), up))
            seen["xy"].append((ned.position.north_m, ned.position.east_m))
            await asyncio.sleep(0.02)
        seen["in_air"] = await tel.in_air()
        await action.land()  # MAV_CMD_NAV_LAND from OFFBOARD: PX4 leaves offboard for AUTO.LAND
        t_land = time.monotonic()
        while await tel.armed():
            assert time.monotonic() - t_land < 15.0, "did not land and disarm"
            await asyncio.sleep(0.1)
        seen["final_up"] = (await tel.position()).relative_altitude_m
        seen["landed_state"] = await tel.landed_state()
    return seen


def test_mavsdk_flies_a_whole_offboard_flight_on_fc_sim():
    port = _free_udp_port()
    fc = FcSim(FcSimConfig(url=f"udpout:127.0.0.1:{port}"))
    try:
        seen = asyncio.run(asyncio.wait_for(_flight(port, fc), timeout=90.0))
    finally:
        fc.stop()
    events = [text for _, text in fc.stats.events]
    assert 0.5 <= seen["health_s"] <= 5.0  # healthy only once the simulated estimator is ready
    assert abs(seen["home"]["latitude_deg"] - 47.397742) < 1e-6 and seen["battery"] > 90
    alt = [a for _, a in seen["alt"]]
    t = [s - seen["alt"][0][0] for s, _ in seen["alt"]]
    hold = [a for s, a in zip(t, alt) if s > 4.0]
    assert max(alt) > 1.2 and seen["in_air"]  # it climbed
    assert all(abs(a - TARGET_UP_M) < 0.3 for a in hold), hold  # and held 1.5 m for the last 4 s
    assert max(math.hypot(n, e) for n, e in seen["xy"]) < 1.0  # level: little horizontal drift
    assert seen["final_up"] < 0.1 and seen["landed_state"] == LandedState.ON_GROUND
    assert "mode POSCTL -> OFFBOARD" in events and "mode OFFBOARD -> LAND" in events and "landed: disarmed" in events
    assert fc.stats.rejected == 0 and not fc.failsafes  # nothing MAVSDK sent was refused; no failsafe
