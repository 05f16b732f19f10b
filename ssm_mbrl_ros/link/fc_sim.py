"""Stand-in PX4 flight controller speaking a MAVLink 2 subset over UDP, flying our QuadrotorSim.

What it implements (PX4 rules for this subset): HEARTBEAT as MAV_AUTOPILOT_PX4 with PX4 custom
modes (POSCTL, OFFBOARD, AUTO.LOITER = HOLD, AUTO.LAND); arming/disarming (disarm in the air only
when forced, param2 = 21196); OFFBOARD refused without a live SET_ATTITUDE_TARGET stream; loss of
that stream for longer than offboard_loss_timeout_s (PX4's COM_OF_LOSS_T) switches to HOLD or LAND
(COM_OBL_RC_ACT-like); HOLD and LAND are flown by an internal geometric position controller, LAND
disarms on touchdown. Telemetry at configurable rates, changed with MAV_CMD_SET_MESSAGE_INTERVAL.
Thrust arrives normalised [0, 1] and goes back to m/s^2 through the thrust map inverse; FRD rates
become FLU. The socket can drop packets (both ways) and delay them by latency + uniform jitter;
telemetry can carry Gaussian noise and the drone a constant wind. Physics: sim/single_drone.py
(the QuadrotorSim model for one drone in float64 scalars, ~0.1 ms per 10 ms step instead of ~5 ms
for eager torch at N = 1) and the numpy geometric controller for HOLD/LAND; no torch in the loop.

Two clocks (FcSimConfig.lockstep): real time (default; the physics steps every 1/sim_hz of wall-clock
time, whatever the companion does) or lockstep (one step per SET_ATTITUDE_TARGET received, simulated
time everywhere; rules in link/fc_sim_lockstep.py).
"""
from __future__ import annotations

import heapq
import math
import random
import threading
import time
from dataclasses import dataclass, field

import numpy as np

from ssm_mbrl_ros.core.config import ConfigError, doc
from ssm_mbrl_ros.core.frames import (attitude_enu_flu_to_ned_frd, enu_to_ned, flu_to_frd, frd_to_flu, quat_conjugate,
                                      quat_rotate)
from ssm_mbrl_ros.link import mavlink_link as ml
from ssm_mbrl_ros.link.fc_sim_lockstep import LockstepLoop
from ssm_mbrl_ros.link.px4_modes import (FORCE_DISARM_MAGIC, MAV_MODE_FLAG_CUSTOM_MODE_ENABLED,
                                         MAV_MODE_FLAG_SAFETY_ARMED, MODES, encode_custom_mode)
from ssm_mbrl_ros.link.thrust_map import GRAVITY_MPS2, ThrustMap
from ssm_mbrl_ros.link.transport import signing_key

DEFAULT_RATES_HZ = {"HEARTBEAT": 1.0, "SYS_STATUS": 1.0, "ATTITUDE_QUATERNION": 50.0,
                    "LOCAL_POSITION_NED": 30.0, "HIGHRES_IMU": 50.0, "ODOMETRY": 0.0}


@dataclass
class FcSimConfig:
    """Stand-in PX4: connection, vehicle, rates, failsafe and network impairment settings."""

    url: str = doc("where to talk: udpout:HOST:PORT (PX4 SITL style, sends to the companion) or udpin:HOST:PORT",
                   default="udpout:127.0.0.1:14540")
    vehicle: str = doc("vehicle name or YAML path (config/vehicles)", default="agile5")
    physics_hz: float = doc("RK4 physics rate, Hz (a multiple of sim_hz)", default=200.0)
    sim_hz: float = doc("rate at which commands are applied and the simulator is stepped, Hz", default=100.0)
    start_pos_m: list = doc("start position ENU m (on the ground at z = 0)", default_factory=lambda: [0.0, 0.0, 0.0])
    hover_throttle: float = doc("the simulated airframe's true hover throttle (MPC_THR_HOVER); 0 = g / max thrust",
                                default=0.0)
    offboard_loss_timeout_s: float = doc("COM_OF_LOSS_T: setpoint silence that ends OFFBOARD, s", default=0.5)
    offboard_loss_action: str = doc("mode after offboard loss: hold | land", default="hold")
    land_speed_mps: float = doc("descent speed in LAND, m/s", default=0.7)
    rates_hz: dict = doc("telemetry message name -> rate Hz (0 = off)", default_factory=lambda: dict(DEFAULT_RATES_HZ))
    latency_s: float = doc("added one-way delay on every packet, both directions, s", default=0.0)
    jitter_s: float = doc("extra uniform random delay in [0, jitter_s] per packet, s", default=0.0)
    loss: float = doc("probability that a packet is dropped, each direction (0..1)", default=0.0)
    battery_life_s: float = doc("armed time from full to empty battery, s", default=900.0)
    seed: int = doc("random seed for loss and jitter", default=0)
    system_id: int = doc("MAVLink system id of the autopilot", default=1)
    signing_key_hex: str = doc("MAVLink 2 signing key, 64 hex digits (32 bytes); empty = no signing. With a key, "
                               "unsigned or wrongly signed messages are rejected and counted", default="")
    allow_remote: bool = doc("allow a non-loopback UDP address in url (talk over a network: sign it)", default=False)
    pos_noise_m: float = doc("Gaussian noise std on reported positions (estimator error), m", default=0.0)
    vel_noise_mps: float = doc("Gaussian noise std on reported velocities, m/s", default=0.0)
    wind_mps: list = doc("constant wind ENU m/s acting on the simulated drone", default_factory=lambda: [0.0, 0.0, 0.0])
    lockstep: bool = doc("step the physics once per SET_ATTITUDE_TARGET received (simulated time) instead of "
                         "on the wall clock; see the module doc", default=False)
    lockstep_timeout_s: float = doc("lockstep: wall time to wait for the next setpoint before free-running in "
                                    "real time, s", default=1.0)

    def validate(self, source: str = "fc_sim") -> None:
        """Raise ConfigError naming the bad field."""
        ml.parse_url(self.url)
        for name in ("physics_hz", "sim_hz", "offboard_loss_timeout_s", "land_speed_mps", "battery_life_s",
                     "lockstep_timeout_s"):
            if not getattr(self, name) > 0:
                raise ConfigError(f"{source}.{name}: must be > 0, got {getattr(self, name)}")
        if self.offboard_loss_action not in ("hold", "land"):
            raise ConfigError(f"{source}.offboard_loss_action: expected hold or land, "
                              f"got {self.offboard_loss_action!r}")
        if self.pos_noise_m < 0 or self.vel_noise_mps < 0:
            raise ConfigError(f"{source}.pos_noise_m/vel_noise_mps: must be >= 0")
        if not 0 <= self.loss < 1 or self.latency_s < 0 or self.jitter_s < 0:
            raise ConfigError(f"{source}.loss/latency_s/jitter_s: need 0 <= loss < 1 and non-negative delays")
        if not 0 <= self.hover_throttle < 1:
            raise ConfigError(f"{source}.hover_throttle: expected 0 (auto) or a value in (0, 1)")
        if len(self.wind_mps) != 3:
            raise ConfigError(f"{source}.wind_mps: expected [x, y, z] m/s")
        try:
            if self.signing_key_hex and len(bytes.fromhex(self.signing_key_hex)) != 32:
                raise ValueError
        except ValueError:
            raise ConfigError(f"{source}.signing_key_hex: expected 64 hex digits") from None
        unknown = set(self.rates_hz) - set(DEFAULT_RATES_HZ)
        if unknown:
            raise ConfigError(f"{source}.rates_hz: unknown messages {sorted(unknown)}; "
                              f"known {sorted(DEFAULT_RATES_HZ)}")


def printable(text) -> str:
    """A received text safe for a terminal: printable ASCII only (escape codes and control bytes become '?'), 50
    characters at most."""
    return "".join(ch if 32 <= ord(ch) < 127 else "?" for ch in str(text)[:50])


@dataclass
class _Setpoint:
    rates_frd: np.ndarray
    thrust_norm: float
    received_s: float


@dataclass
class FcSimStats:
    """Counters for tests and logs."""

    rx: int = 0
    rx_dropped: int = 0
    bad_data: int = 0
    rejected: int = 0  # messages ignored as malformed or unsupported, commands refused for their arguments
    clamped: int = 0  # setpoints limited to [0, 1] thrust and the vehicle's maximum rates
    setpoints: int = 0
    steps: int = 0
    late_steps: int = 0
    events: list = field(default_factory=list)  # (fc time s, text)


class FcSim(LockstepLoop):
    """The stand-in PX4. Call run() (blocking) or start() for a background thread; stop() ends it."""

    def __init__(self, config: FcSimConfig):
        from ssm_mbrl_ros.control.geometric_single import SingleGeometricController
        from ssm_mbrl_ros.sim.single_drone import SingleDroneSim
        from ssm_mbrl_ros.sim.vehicle import load_vehicle

        config.validate()
        self.cfg = config
        self.vehicle = load_vehicle(config.vehicle)
        self.thrust_map = (ThrustMap(config.hover_throttle) if config.hover_throttle
                           else ThrustMap.for_vehicle(self.vehicle))
        self.sim = SingleDroneSim(self.vehicle, physics_hz=config.physics_hz, control_hz=config.sim_hz)
        self.ctrl = SingleGeometricController(self.vehicle, control_dt_s=1.0 / config.sim_hz)
        start = self.sim.hover_state(config.start_pos_m)
        start[13:17] = 0.0  # rotors stopped
        self.sim.reset(start)
        key = signing_key(config.signing_key_hex, source="fc_sim.signing_key_hex")  # or $MAVLINK_SIGNING_KEY
        self.conn = ml.open_connection(config.url, config.system_id, 1, key, allow_remote=config.allow_remote)
        self._max_rate_radps = np.asarray(self.vehicle.max_rate_radps, float)  # FRD roll, pitch, yaw magnitudes
        self._wind = np.asarray(config.wind_mps, dtype=float)
        self.mav = ml.mavlink
        self.rng = random.Random(config.seed)
        self.noise_rng = np.random.default_rng(config.seed)
        self.stats = FcSimStats()
        self.armed = False
        self.mode = "POSCTL"
        self.setpoint: _Setpoint | None = None
        self.hold_pos = np.asarray(config.start_pos_m, float)
        self.land_z = 0.0
        self.battery = 1.0
        self.rates_hz = {**DEFAULT_RATES_HZ, **config.rates_hz}
        self._next_tx = {k: 0.0 for k in self.rates_hz}
        self._outq: list = []  # heap of (release time, seq, msg)
        self._inq: list = []
        self._seq = 0
        self._prev_vel = np.zeros(3)
        self._acc = np.zeros(3)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.t0 = time.monotonic()
        self._k = 0  # lockstep: steps taken; simulated time = _k / sim_hz
        self.driven = False  # lockstep: the last step was triggered by a setpoint
        self.started = False  # lockstep: a setpoint has arrived (simulated time runs)

    @property
    def port(self) -> int:
        """Local UDP port of the socket."""
        return ml.bound_port(self.conn)

    def now(self) -> float:
        """Seconds since boot: wall-clock time, or simulated time in lockstep."""
        if self.cfg.lockstep:
            return self._k / self.cfg.sim_hz
        return time.monotonic() - self.t0

    def state(self) -> np.ndarray:
        """Simulator state (17,) ENU/FLU."""
        return self.sim.state

    # ---- lifecycle ----
    def start(self) -> "FcSim":
        """Run in a background thread."""
        self._thread = threading.Thread(target=self.run, name="fc-sim", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop the loop (and join the thread if started) and close the socket."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=3.0)
        self.conn.close()

    def run(self, duration_s: float | None = None) -> None:
        """Serve until stop() or duration_s of wall time: the real-time loop, or the lockstep loop."""
        if self.cfg.lockstep:
            return self._run_lockstep(duration_s)
        dt = 1.0 / self.cfg.sim_hz
        next_step = self.now()
        end = None if duration_s is None else self.now() + duration_s
        while not self._stop.is_set() and (end is None or self.now() < end):
            self._receive(max(0.0, min(next_step - self.now(), 0.002)))
            now = self.now()
            if now >= next_step:
                self._step(now)
                next_step += dt
                if now - next_step > 5 * dt:  # far behind real time: skip ahead, count it
                    self.stats.late_steps += 1
                    next_step = now + dt
                self._telemetry(now)
            self._flush(now)

    # ---- network impairment ----
    def _delay(self) -> float:
        return self.cfg.latency_s + (self.rng.uniform(0.0, self.cfg.jitter_s) if self.cfg.jitter_s else 0.0)

    def _queue_out(self, msg) -> None:
        if self.cfg.loss and self.rng.random() < self.cfg.loss:
            return
        self._seq += 1
        heapq.heappush(self._outq, (self.now() + self._delay(), self._seq, msg))

    def _flush(self, now: float) -> None:
        while self._outq and self._outq[0][0] <= now:
            self.conn.mav.send(heapq.heappop(self._outq)[2])
        while self._inq and self._inq[0][0] <= now:
            self._handle(heapq.heappop(self._inq)[2], now)

    def _accept(self, msg, impaired: bool = True) -> None:
        """A received message through the simulated wire: dropped (loss), delayed (latency + jitter) or handled now."""
        if impaired and self.cfg.loss and self.rng.random() < self.cfg.loss:
            self.stats.rx_dropped += 1
        elif impaired and (self.cfg.latency_s or self.cfg.jitter_s):
            self._seq += 1
            heapq.heappush(self._inq, (self.now() + self._delay(), self._seq, msg))
        else:
            try:
                self._handle(msg, self.now())
            except Exception:  # a malformed message must never stop the flight controller
                self.stats.rejected += 1

    def _receive(self, timeout_s: float) -> None:
        try:
            msg = self.conn.recv_match(blocking=timeout_s > 0, timeout=timeout_s or None)
        except Exception:
            self.stats.bad_data += 1
            return
        while msg is not None:
            self.stats.rx += 1
            if msg.get_type() == "BAD_DATA":
                self.stats.bad_data += 1
            else:
                self._accept(msg)
            try:
                msg = self.conn.recv_match(blocking=False)
            except Exception:
                self.stats.bad_data += 1
                return

    # ---- protocol ----
    def _event(self, text: str) -> None:
        self.stats.events.append((round(self.now(), 3), text))
        self._queue_out(self.mav.MAVLink_statustext_message(self.mav.MAV_SEVERITY_WARNING, text[:50].encode()))

    def _ack(self, command: int, result: int) -> None:
        self._queue_out(self.mav.MAVLink_command_ack_message(command, result))

    def _set_mode(self, name: str, now: float) -> None:
        if name != self.mode:
            self._event(f"mode {self.mode} -> {name}")
        if name in ("HOLD", "POSCTL"):
            self.hold_pos = self.state()[0:3].copy()
        if name == "LAND":
            self.hold_pos = self.state()[0:3].copy()
            self.land_z = float(self.hold_pos[2])
        self.mode = name

    def _offboard_signal_ok(self, now: float) -> bool:
        return self.setpoint is not None and now - self.setpoint.received_s <= self.cfg.offboard_loss_timeout_s

    def _handle(self, msg, now: float) -> None:
        kind = msg.get_type()
        guard = self.conn.peer_guard
        if guard is not None and guard.peer is None:  # udpin: PX4 too keeps the first partner that talks to it
            if kind != "HEARTBEAT" or msg.get_srcSystem() == self.cfg.system_id:
                self.stats.rejected += 1  # nothing counts before a peer announced itself with a heartbeat
                return
            guard.lock()
        if kind == "SET_ATTITUDE_TARGET":
            if msg.target_system not in (0, self.cfg.system_id):
                return
            rates = [msg.body_roll_rate, msg.body_pitch_rate, msg.body_yaw_rate]
            if (msg.type_mask & 128 == 0 or msg.type_mask & 0b1000111 != 0
                    or not all(math.isfinite(x) for x in rates + [msg.thrust])):
                self.stats.rejected += 1  # only body rates + thrust with attitude ignored; never a NaN to the mixer
                return
            # PX4 limits what reaches the rate controller: thrust to [0, 1], rates to the vehicle's maxima
            clipped_rates = np.clip(np.asarray(rates, float), -self._max_rate_radps, self._max_rate_radps)
            thrust = min(max(float(msg.thrust), 0.0), 1.0)
            if thrust != msg.thrust or not np.array_equal(clipped_rates, rates):
                self.stats.clamped += 1
            self.setpoint = _Setpoint(clipped_rates, thrust, now)
            self.stats.setpoints += 1
        elif kind == "STATUSTEXT" and len(self.stats.events) < 1000:
            self.stats.events.append((round(now, 3), "companion: " + printable(msg.text)))
        elif kind == "COMMAND_LONG":
            if msg.target_system not in (0, self.cfg.system_id):
                return
            self._command(msg, now)

    def _command(self, msg, now: float) -> None:
        m, c = self.mav, msg.command
        p = [msg.param1, msg.param2, msg.param3, msg.param4, msg.param5, msg.param6, msg.param7]
        if c == m.MAV_CMD_COMPONENT_ARM_DISARM:
            # PX4: param1 is 1 (arm) or 0 (disarm), anything else is refused; 21196 in param2 forces a disarm
            if p[0] not in (0.0, 1.0):
                self.stats.rejected += 1
                return self._ack(c, m.MAV_RESULT_DENIED)
            if p[0] == 1.0:
                if not self.armed:
                    self.armed = True
                    self.ctrl.reset()
                    # arming after an auto-land starts in position control; any mode re-latches its hold point
                    self._set_mode("POSCTL" if self.mode == "LAND" else self.mode, now)
                    self._event("armed")
                return self._ack(c, m.MAV_RESULT_ACCEPTED)
            landed = self.state()[2] < 0.05
            if landed or p[1] == FORCE_DISARM_MAGIC:
                if self.armed:
                    self._event("disarmed" + ("" if landed else " (forced in air)"))
                self.armed = False
                return self._ack(c, m.MAV_RESULT_ACCEPTED)
            return self._ack(c, m.MAV_RESULT_DENIED)
        if c == m.MAV_CMD_DO_SET_MODE:
            if not all(math.isfinite(x) for x in p[:2]) or not 0 <= p[0] < 256:
                self.stats.rejected += 1
                return self._ack(c, m.MAV_RESULT_DENIED)
            p[2] = p[2] if math.isfinite(p[2]) else 0.0  # NaN = default (no sub mode)
            if not int(p[0]) & MAV_MODE_FLAG_CUSTOM_MODE_ENABLED:
                return self._ack(c, m.MAV_RESULT_DENIED)
            target = next((n for n, (mm, ss) in MODES.items() if mm == int(p[1]) and ss == int(p[2])), None)
            if target is None:
                return self._ack(c, m.MAV_RESULT_UNSUPPORTED)
            if target == "OFFBOARD" and not self._offboard_signal_ok(now):
                self._event("offboard refused: no setpoint stream")
                return self._ack(c, m.MAV_RESULT_DENIED)
            self._set_mode(target, now)
            return self._ack(c, m.MAV_RESULT_ACCEPTED)
        if c == m.MAV_CMD_SET_MESSAGE_INTERVAL:
            names = {getattr(m, f"MAVLINK_MSG_ID_{n}"): n for n in self.rates_hz}
            if not all(math.isfinite(x) for x in p[:2]):
                self.stats.rejected += 1
                return self._ack(c, m.MAV_RESULT_DENIED)
            name = names.get(int(p[0]))
            if name is None:
                return self._ack(c, m.MAV_RESULT_UNSUPPORTED)
            us = p[1]
            self.rates_hz[name] = 0.0 if us < 0 else (DEFAULT_RATES_HZ[name] if us == 0 else min(1e6 / us, 1000.0))
            self._next_tx[name] = 0.0
            return self._ack(c, m.MAV_RESULT_ACCEPTED)
        self._ack(c, m.MAV_RESULT_UNSUPPORTED)

    # ---- physics ----
    def _command_ctbr(self, now: float) -> np.ndarray:
        """CTBR (4,) physical FLU applied this step, by mode."""
        if not self.armed:
            return np.zeros(4)
        if self.mode == "OFFBOARD":
            if not self._offboard_signal_ok(now):
                self._event("offboard lost: failsafe " + self.cfg.offboard_loss_action)
                self._set_mode(self.cfg.offboard_loss_action.upper(), now)
            else:
                sp = self.setpoint
                return np.concatenate([[self.thrust_map.to_mps2(sp.thrust_norm)], frd_to_flu(sp.rates_frd)])
        ref = self.hold_pos.copy()
        ref_vel = np.zeros(3)
        if self.mode == "LAND":
            self.land_z = max(self.land_z - self.cfg.land_speed_mps / self.cfg.sim_hz, -0.5)
            ref[2] = self.land_z
            ref_vel[2] = -self.cfg.land_speed_mps
        return self.ctrl.compute(self.sim.state, ref, ref_vel)

    def _step(self, now: float) -> None:
        ctbr = self._command_ctbr(now)
        s = self.sim.step(ctbr, wind_mps=self._wind)
        self._acc = (s[7:10] - self._prev_vel) * self.cfg.sim_hz
        self._prev_vel = s[7:10].copy()
        self.stats.steps += 1
        if self.armed:
            self.battery = max(0.0, self.battery - 1.0 / (self.cfg.sim_hz * self.cfg.battery_life_s))
            if self.mode == "LAND" and s[2] < 0.05 and self.land_z <= 0.0:
                self.armed = False
                self._event("landed: disarmed")

    # ---- telemetry ----
    def _telemetry(self, now: float) -> None:
        eps = 1e-6 if self.cfg.lockstep else 0.0  # simulated time: k / sim_hz vs summed periods (round-off)
        for name, hz in self.rates_hz.items():
            if hz > 0 and now >= self._next_tx[name] - eps:
                self._next_tx[name] = max(self._next_tx[name] + 1.0 / hz, now)
                self._queue_out(self._message(name, now))

    def _message(self, name: str, now: float, noise: bool = True):
        m, s = self.mav, self.state()
        if self.cfg.lockstep:  # simulated time is a multiple of the period: round, do not truncate 0.0299999 to 29
            ms, us = int(round(now * 1e3)), int(round(now * 1e6))
        else:
            ms, us = int(now * 1e3), int(now * 1e6)
        pos, vel = enu_to_ned(s[0:3]), enu_to_ned(s[7:10])
        if noise and self.cfg.pos_noise_m > 0:
            pos = pos + self.noise_rng.normal(0.0, self.cfg.pos_noise_m, 3)
        if noise and self.cfg.vel_noise_mps > 0:
            vel = vel + self.noise_rng.normal(0.0, self.cfg.vel_noise_mps, 3)
        q = attitude_enu_flu_to_ned_frd(s[3:7])
        w = flu_to_frd(s[10:13])
        if name == "HEARTBEAT":
            main, sub = MODES[self.mode]
            base = MAV_MODE_FLAG_CUSTOM_MODE_ENABLED | (MAV_MODE_FLAG_SAFETY_ARMED if self.armed else 0)
            return m.MAVLink_heartbeat_message(m.MAV_TYPE_QUADROTOR, m.MAV_AUTOPILOT_PX4, base,
                                               encode_custom_mode(main, sub),
                                               m.MAV_STATE_ACTIVE if self.armed else m.MAV_STATE_STANDBY, 3)
        if name == "ATTITUDE_QUATERNION":
            return m.MAVLink_attitude_quaternion_message(ms, *q, *w, [0.0] * 4)
        if name == "LOCAL_POSITION_NED":
            return m.MAVLink_local_position_ned_message(ms, *pos, *vel)
        if name == "ODOMETRY":
            nan21 = [float("nan")] * 21
            return m.MAVLink_odometry_message(us, m.MAV_FRAME_LOCAL_NED, m.MAV_FRAME_BODY_FRD, *pos, list(q),
                                              *quat_rotate(quat_conjugate(q), vel), *w, nan21, nan21, 0, 0, 100)
        if name == "HIGHRES_IMU":
            specific_force_flu = quat_rotate(quat_conjugate(s[3:7]), self._acc + np.array([0, 0, GRAVITY_MPS2]))
            a, g = flu_to_frd(specific_force_flu), w
            return m.MAVLink_highres_imu_message(us, *a, *g, 0.0, 0.0, 0.0, 1013.0, 0.0, 0.0, 20.0, 0x3F)
        if name == "SYS_STATUS":
            volt = int(1000 * (14.0 + 2.8 * self.battery))
            return m.MAVLink_sys_status_message(0, 0, 0, 100, volt, -1, int(round(100 * self.battery)),
                                                0, 0, 0, 0, 0, 0)
        raise ValueError(name)
