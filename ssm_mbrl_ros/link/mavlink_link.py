"""Companion-side MAVLink 2 link to a PX4 flight controller (pymavlink, dialect common).

One background thread receives (telemetry, heartbeats, COMMAND_ACK) and sends our 1 Hz heartbeat;
the caller's thread streams setpoints and issues commands. Commands are COMMAND_LONG with
COMMAND_ACK matching and retries (confirmation field counts the retries). Connection URLs, loopback binding,
peer locking and signing: link/transport.py.

The link talks to one flight controller: messages count only from the configured system / component id
(PX4's 1 / 1 by default) and, over UDP, from the address of the first heartbeat with those ids; everything else
is dropped and counted (`rx_foreign`, `security_counts()`), and the target never changes while the link is open.

Clocks: `link.clock()` is the time every stamp uses (telemetry receive times, heartbeat, commands
sent, setpoint stream). By default it is the companion's monotonic clock. With lockstep=True
(against `fc-sim --lockstep`) it is the flight controller's simulated time: the newest SYSTEM_TIME
(the step-done marker fc-sim sends after the telemetry of each step), telemetry stamps are the
messages' own time_boot_ms / time_usec, and `wait_for_tick` blocks until the next step's data is in.
Timeouts (waiting for the FC, for ACKs) always run on the wall clock.
"""
from __future__ import annotations

import copy
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor

import numpy as np

from ssm_mbrl_ros.core.frames import flu_to_frd
from ssm_mbrl_ros.link.px4_modes import (FORCE_DISARM_MAGIC, MAV_MODE_FLAG_CUSTOM_MODE_ENABLED,
                                         MAV_MODE_FLAG_SAFETY_ARMED, MODES, decode_custom_mode, mode_name)
from ssm_mbrl_ros.link.param_codec import INT32, REAL32, decode, encode
from ssm_mbrl_ros.link.telemetry import Telemetry
from ssm_mbrl_ros.link.thrust_map import ThrustMap

from ssm_mbrl_ros.link.transport import bound_port, link_security_counts, open_connection, parse_url  # noqa: F401
from pymavlink import mavutil  # noqa: E402  (transport set MAVLINK20 first)

mavlink = mavutil.mavlink  # the common dialect (MAVLINK20=1 set by transport before pymavlink was imported)

TYPE_MASK_IGNORE_ATTITUDE = 128  # SET_ATTITUDE_TARGET: use body rates + thrust, ignore q
TELEMETRY_MESSAGES = ("ATTITUDE_QUATERNION", "LOCAL_POSITION_NED", "HIGHRES_IMU", "SYS_STATUS", "ODOMETRY")
STATE_MESSAGES = ("ATTITUDE_QUATERNION", "LOCAL_POSITION_NED", "ODOMETRY")  # the pose parts of the state


class LinkError(RuntimeError):
    """The flight controller did not answer, or refused a command."""


class MavLink:
    """Offboard link: heartbeats, telemetry -> ENU/FLU state, commands with ACK/retry, CTBR setpoints."""

    def __init__(self, url: str, thrust_map: ThrustMap, *, system_id: int = 245, component_id: int = 191,
                 signing_key: bytes | None = None, clock=time.monotonic, lockstep: bool = False,
                 on_state=None, fc_system_id: int = 1, fc_component_id: int = 1, allow_remote: bool = False):
        """on_state(): optional callback from the receive thread whenever a newer full state is in (lockstep:
        after each step's SYSTEM_TIME; else when the pose stamp advances). Keep it short; it must not block.
        fc_system_id / fc_component_id: the only flight controller this link listens to (PX4 default 1 / 1).
        allow_remote: a non-loopback UDP address is allowed (see link/transport.py)."""
        for name, v in (("system_id", system_id), ("component_id", component_id), ("fc_system_id", fc_system_id),
                        ("fc_component_id", fc_component_id)):
            if not 1 <= int(v) <= 255:
                raise ValueError(f"{name}: MAVLink ids are 1..255, got {v}")
        self.conn = open_connection(url, system_id, component_id, signing_key, allow_remote=allow_remote)
        self.fc_ids = (int(fc_system_id), int(fc_component_id))
        self.rx_foreign = 0  # messages from other system / component ids, ignored
        self.thrust_map = thrust_map
        self.lockstep = lockstep
        self.on_state = on_state
        self._wall = clock  # deadlines and timeouts
        self._fc_clock_s = 0.0  # lockstep: newest SYSTEM_TIME, s
        self.clock = self._fc_clock if lockstep else clock
        self.telemetry = Telemetry()
        self.target_system = self.target_component = None
        self.fc_heartbeat_s: float | None = None
        self.armed = False
        self.custom_mode = (0, 0)
        self.rx_errors = 0  # BAD_DATA and handler exceptions
        self.rx_counts: dict[str, int] = {}  # message type -> count, from the flight controller
        self.last_command_sent_s: dict[int, float] = {}
        self._setpoint_times: list[float] = []
        self._acks: dict[int, tuple[int, float]] = {}
        self._params: dict[str, float] = {}  # PARAM_VALUE answers by name
        self._lock = threading.Lock()
        self._send_lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self._stop = threading.Event()
        self._pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="mavlink-cmd")
        self._last_fc_time: dict[str, float] = {}
        self._thread = threading.Thread(target=self._rx_loop, name="mavlink-rx", daemon=True)
        self._thread.start()

    # ---- lifecycle ----
    def close(self) -> None:
        """Stop the receive thread and close the connection."""
        self._stop.set()
        self._thread.join(timeout=2.0)
        self._pool.shutdown(wait=False, cancel_futures=True)
        self.conn.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _fc_clock(self) -> float:
        """Lockstep clock: the flight controller's simulated time (newest SYSTEM_TIME), s."""
        return self._fc_clock_s

    def wait_for_tick(self, after_s: float | None, timeout_s: float = 1.0) -> bool:
        """Lockstep: block until the FC's simulated time passes after_s (None: return at once); False on timeout."""
        if not self.lockstep:
            raise LinkError("wait_for_tick needs a lockstep link (MavLink(lockstep=True) and fc-sim --lockstep)")
        if after_s is None:
            return True
        deadline = self._wall() + timeout_s
        with self._cond:
            while self._fc_clock_s <= after_s:
                left = deadline - self._wall()
                if left <= 0:
                    return False
                self._cond.wait(left)
        return True

    def snapshot(self) -> Telemetry:
        """A consistent copy of the latest telemetry (the receive thread keeps updating the original)."""
        with self._lock:
            return copy.copy(self.telemetry)

    def send_statustext(self, text: str, severity: int | None = None) -> None:
        """STATUSTEXT (up to 50 characters) to the FC / ground station log."""
        sev = mavlink.MAV_SEVERITY_WARNING if severity is None else severity
        self._send(mavlink.MAVLink_statustext_message(sev, text.encode()[:50]))

    @property
    def mode(self) -> str:
        """Current PX4 mode name from the last heartbeat."""
        return mode_name(*self.custom_mode)

    def wait_for_fc(self, timeout_s: float = 10.0) -> None:
        """Block until a PX4 heartbeat arrived; raises LinkError after timeout_s."""
        deadline = self._wall() + timeout_s
        with self._cond:
            while self.fc_heartbeat_s is None:
                left = deadline - self._wall()
                if left <= 0:
                    raise LinkError(f"no flight-controller heartbeat within {timeout_s} s")
                self._cond.wait(min(left, 0.05))

    def wait_for_state(self, timeout_s: float = 5.0, max_age_s: float = 0.05) -> None:
        """Block until position and attitude telemetry fresher than max_age_s; raises LinkError."""
        deadline = self._wall() + timeout_s
        while True:
            stamp = self.telemetry.stamp_s
            if stamp is not None and self.clock() - stamp <= max_age_s:
                return
            if self._wall() > deadline:
                raise LinkError(f"no fresh position+attitude telemetry within {timeout_s} s")
            time.sleep(0.005)

    # ---- sending ----
    def _send(self, msg) -> None:
        with self._send_lock:
            self.conn.mav.send(msg)

    def send_heartbeat(self) -> None:
        """Our heartbeat as an onboard controller."""
        self._send(mavlink.MAVLink_heartbeat_message(mavlink.MAV_TYPE_ONBOARD_CONTROLLER,
                                                     mavlink.MAV_AUTOPILOT_INVALID, 0, 0, mavlink.MAV_STATE_ACTIVE, 3))

    def send_ctbr(self, ctbr_flu) -> None:
        """Stream one SET_ATTITUDE_TARGET (type_mask 128): FLU rates -> FRD, thrust m/s^2 -> [0, 1]."""
        c = np.asarray(ctbr_flu, dtype=float)
        rates = flu_to_frd(c[1:4])
        thrust = self.thrust_map.to_normalized(c[0])
        now = self.clock()
        self._send(mavlink.MAVLink_set_attitude_target_message(
            int(now * 1000) & 0xFFFFFFFF, self.target_system or 1, self.target_component or 1,
            TYPE_MASK_IGNORE_ATTITUDE, [1.0, 0.0, 0.0, 0.0], *map(float, rates), float(thrust)))
        self._setpoint_times = [t for t in self._setpoint_times[-20:] if now - t < 1.0] + [now]

    def setpoints_streaming(self, min_count: int = 10, window_s: float = 0.5) -> bool:
        """True if at least min_count setpoints went out in the last window_s (PX4 needs a live stream)."""
        now = self.clock()
        return sum(1 for t in self._setpoint_times if now - t <= window_s) >= min_count

    def _send_command(self, command: int, params, confirmation: int) -> None:
        p = [float(x) for x in params] + [0.0] * (7 - len(params))
        self.last_command_sent_s[command] = self.clock()
        self._send(mavlink.MAVLink_command_long_message(self.target_system or 1, self.target_component or 1,
                                                        command, confirmation, *p))

    def command(self, command: int, params, timeout_s: float = 0.3, retries: int = 5) -> int:
        """COMMAND_LONG with ACK matching; retries on silence; returns MAV_RESULT, raises LinkError on no ACK."""
        return self._command(command, params, timeout_s, retries, first_sent=False)

    def command_async(self, command: int, params, timeout_s: float = 0.3, retries: int = 5) -> Future:
        """Send the command now (in the caller's thread) and wait for the ACK/retry in the background."""
        with self._lock:
            self._acks.pop(command, None)
        self._send_command(command, params, 0)
        return self._pool.submit(self._command, command, params, timeout_s, retries, True)

    def _command(self, command, params, timeout_s, retries, first_sent) -> int:
        for attempt in range(retries + 1):
            if not (first_sent and attempt == 0):
                with self._lock:
                    self._acks.pop(command, None)
                self._send_command(command, params, attempt)
            deadline = self._wall() + timeout_s
            with self._cond:
                while True:
                    ack = self._acks.get(command)
                    if ack is not None and ack[0] != mavlink.MAV_RESULT_IN_PROGRESS:
                        return ack[0]
                    left = deadline - self._wall()
                    if left <= 0:
                        break
                    self._cond.wait(left)
        raise LinkError(f"no COMMAND_ACK for command {command} after {retries + 1} tries")

    def _check(self, result: int, what: str) -> None:
        if result != mavlink.MAV_RESULT_ACCEPTED:
            raise LinkError(f"{what} refused by the flight controller (MAV_RESULT {result})")

    def wait_for_prearm(self, timeout_s: float = 5.0) -> None:
        """Block until the FC's SYS_STATUS reports its pre-arm checks passed (or arrives without the pre-arm bit, as
        from an autopilot that does not report it); raises LinkError after timeout_s."""
        deadline = self._wall() + timeout_s
        while not self.telemetry.sys_status_seen or self.telemetry.prearm_ok is False:
            if self._wall() > deadline:
                raise LinkError(f"the flight controller's pre-arm checks did not pass within {timeout_s} s")
            time.sleep(0.01)

    def arm(self, prearm_timeout_s: float = 5.0) -> None:
        """Wait for the FC's pre-arm checks, then arm (MAV_CMD_COMPONENT_ARM_DISARM param1 = 1); raises LinkError if
        refused."""
        self.wait_for_prearm(prearm_timeout_s)
        self._check(self.command(mavlink.MAV_CMD_COMPONENT_ARM_DISARM, [1.0]), "arm")

    def disarm(self, force: bool = False) -> None:
        """Disarm; force=True is the kill switch (PX4 disarms even in flight)."""
        self._check(self.command(mavlink.MAV_CMD_COMPONENT_ARM_DISARM, [0.0, FORCE_DISARM_MAGIC if force else 0.0]),
                    "disarm")

    def mode_params(self, name: str) -> list:
        """MAV_CMD_DO_SET_MODE params for a PX4 mode name (POSCTL, OFFBOARD, HOLD, LAND)."""
        if name not in MODES:
            raise ValueError(f"unknown PX4 mode {name!r}; known: {sorted(MODES)}")
        main, sub = MODES[name]
        base = MAV_MODE_FLAG_CUSTOM_MODE_ENABLED | (MAV_MODE_FLAG_SAFETY_ARMED if self.armed else 0)
        return [float(base), float(main), float(sub)]

    def set_mode(self, name: str) -> None:
        """Switch PX4 mode (MAV_CMD_DO_SET_MODE, custom main/sub); OFFBOARD only while setpoints stream."""
        if name == "OFFBOARD" and not self.setpoints_streaming():
            raise LinkError("OFFBOARD requested before the setpoint stream runs; stream setpoints first")
        self._check(self.command(mavlink.MAV_CMD_DO_SET_MODE, self.mode_params(name)), f"mode {name}")

    def get_param(self, name: str, timeout_s: float = 1.0, retries: int = 3) -> float:
        """A flight-controller parameter's value (PARAM_REQUEST_READ; PX4's bytewise integers decoded); raises
        LinkError when it does not answer."""
        return self._param_exchange(name, None, timeout_s, retries)

    def set_param(self, name: str, value: float, integer: bool = False, timeout_s: float = 1.0,
                  retries: int = 3) -> float:
        """Set a parameter (PARAM_SET, INT32 bytewise when integer) and return the value the FC echoes (PX4 echoes
        the old value when it refuses one)."""
        return self._param_exchange(name, (float(value), integer), timeout_s, retries)

    def _param_exchange(self, name: str, new, timeout_s: float, retries: int) -> float:
        for _ in range(retries):
            with self._lock:
                self._params.pop(name, None)
            tgt = (self.target_system or 1, self.target_component or 1)
            if new is None:
                self._send(mavlink.MAVLink_param_request_read_message(*tgt, name.encode(), -1))
            else:
                ptype = INT32 if new[1] else REAL32
                self._send(mavlink.MAVLink_param_set_message(*tgt, name.encode(), encode(new[0], ptype), ptype))
            deadline = self._wall() + timeout_s
            with self._cond:
                while name not in self._params and self._wall() < deadline:
                    self._cond.wait(max(0.0, deadline - self._wall()))
                if name in self._params:
                    return self._params[name]
        raise LinkError(f"parameter {name}: no PARAM_VALUE from the flight controller after {retries} tries")

    def set_message_interval(self, name: str, rate_hz: float) -> int:
        """MAV_CMD_SET_MESSAGE_INTERVAL for a message name; rate_hz <= 0 disables it. Returns MAV_RESULT."""
        msg_id = getattr(mavlink, f"MAVLINK_MSG_ID_{name}")
        interval_us = -1.0 if rate_hz <= 0 else 1e6 / rate_hz
        return self.command(mavlink.MAV_CMD_SET_MESSAGE_INTERVAL, [float(msg_id), interval_us])

    def security_counts(self) -> dict[str, int]:
        """Traffic the link refused: other ids (rx_foreign), other addresses, unsigned or badly signed messages."""
        return {"foreign_ids": self.rx_foreign, **link_security_counts(self.conn)}

    # ---- receiving ----
    def _rx_loop(self) -> None:
        next_hb = 0.0
        while not self._stop.is_set():
            now = self._wall()
            if now >= next_hb:
                self.send_heartbeat()
                next_hb = now + 1.0
            try:
                msg = self.conn.recv_match(blocking=True, timeout=0.02)
            except Exception:  # a malformed datagram must never stop the link
                self.rx_errors += 1
                continue
            if msg is None:
                continue
            try:
                self._handle(msg, self.clock())
            except Exception:
                self.rx_errors += 1

    def _stale(self, kind: str, fc_time: float) -> bool:
        """Drop reordered telemetry (older autopilot time than already seen for that message)."""
        last = self._last_fc_time.get(kind)
        if last is not None and fc_time < last and last - fc_time < 10.0:  # a big jump back = FC reboot
            return True
        self._last_fc_time[kind] = fc_time
        return False

    def _handle(self, msg, now: float) -> None:
        kind = msg.get_type()
        if kind == "BAD_DATA":
            self.rx_errors += 1
            return
        if (msg.get_srcSystem(), msg.get_srcComponent()) != self.fc_ids:
            self.rx_foreign += 1  # another vehicle, a ground station, or a spoofer: never our flight controller
            return
        if self.target_system is None and (kind != "HEARTBEAT" or msg.autopilot == mavlink.MAV_AUTOPILOT_INVALID):
            return  # nothing counts before the flight controller's own heartbeat locked the peer
        self.rx_counts[kind] = self.rx_counts.get(kind, 0) + 1
        if kind == "HEARTBEAT":
            if msg.autopilot == mavlink.MAV_AUTOPILOT_INVALID:
                return
            with self._cond:
                if self.target_system is None:
                    if self.conn.peer_guard is not None:
                        self.conn.peer_guard.lock()
                    self.target_system, self.target_component = self.fc_ids
                self.fc_heartbeat_s = now
                self.armed = bool(msg.base_mode & MAV_MODE_FLAG_SAFETY_ARMED)
                self.custom_mode = decode_custom_mode(msg.custom_mode)
                self._cond.notify_all()
        elif kind == "COMMAND_ACK":
            with self._cond:
                self._acks[msg.command] = (msg.result, now)
                self._cond.notify_all()
        elif kind == "PARAM_VALUE":
            pid = msg.param_id.decode(errors="replace") if isinstance(msg.param_id, bytes) else str(msg.param_id)
            with self._cond:
                self._params[pid.split("\x00", 1)[0]] = decode(msg.param_value, msg.param_type)
                self._cond.notify_all()
        elif kind == "SYSTEM_TIME" and self.lockstep:
            with self._cond:
                self._fc_clock_s = max(self._fc_clock_s, msg.time_boot_ms * 1e-3)
                self._cond.notify_all()
            if self.on_state is not None:
                self.on_state()
        elif kind in TELEMETRY_MESSAGES:
            stamp = getattr(msg, "time_boot_ms", None)
            stamp = stamp * 1e-3 if stamp is not None else getattr(msg, "time_usec", 0) * 1e-6
            if kind != "SYS_STATUS" and self._stale(kind, stamp):
                return
            with self._lock:
                before = self.telemetry.stamp_s
                self.telemetry.update(msg, stamp if self.lockstep and kind != "SYS_STATUS" else now)
                advanced = self.telemetry.stamp_s is not None and self.telemetry.stamp_s != before
            if advanced and self.on_state is not None and not self.lockstep and kind in STATE_MESSAGES:
                self.on_state()
