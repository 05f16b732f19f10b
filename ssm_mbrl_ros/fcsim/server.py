"""FcSim: the stand-in PX4's MAVLink endpoint, run loop and network impairment; the rest of the package fills it in.

Per received message: SET_ATTITUDE_TARGET (body rates + thrust only, clamped to MC_*RATE_MAX and [0, 1], non-finite
ones dropped), COMMAND_LONG / COMMAND_INT (commands.py), PARAM_* (params.py), PING and TIMESYNC (answered),
STATUSTEXT (logged, made printable). Per step: the mode logic and physics (flight.py), then the telemetry that is due
(messages.py). The socket can drop packets (both ways) and delay them by latency + uniform jitter; telemetry can carry
Gaussian noise and the drone a constant wind.

Two clocks (FcSimConfig.lockstep): real time (default; the physics steps every 1/sim_hz of wall-clock time,
whatever the companion does) or lockstep (one step per SET_ATTITUDE_TARGET received, simulated time everywhere;
rules in fcsim/lockstep.py).
"""
from __future__ import annotations

import dataclasses
import heapq
import math
import random
import threading
import time
from dataclasses import dataclass, field

import numpy as np

from ssm_mbrl_ros.core.frames import enu_to_ned
from ssm_mbrl_ros.link.thrust_map import ThrustMap
from ssm_mbrl_ros.link.transport import mavutil, open_connection, bound_port, signing_key

from . import messages
from .commands import handle_command
from .config import DEFAULT_RATES_HZ, LOSS_ACTIONS, FcSimConfig
from .flight import FlightModes
from .lockstep import LockstepLoop
from .params import Px4Params

RATE_GAIN_PARAMS = {"MC_ROLLRATE": 0, "MC_PITCHRATE": 1, "MC_YAWRATE": 2}


def printable(text) -> str:
    """A received text safe for a terminal: printable ASCII only (escape codes and control bytes become '?'), 50
    characters at most."""
    return "".join(ch if 32 <= ord(ch) < 127 else "?" for ch in str(text)[:50])


@dataclass
class Setpoint:
    """The latest accepted offboard setpoint (FRD rad/s, normalised thrust, receive time s)."""

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
    clamped: int = 0  # setpoints limited to [0, 1] thrust and MC_*RATE_MAX
    setpoints: int = 0
    steps: int = 0
    late_steps: int = 0
    events: list = field(default_factory=list)  # (fc time s, text)


class FcSim(FlightModes, LockstepLoop):
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
        self._nominal_gains = (self.sim.c.kp, self.sim.c.ki, self.sim.c.kd)
        self.ctrl = SingleGeometricController(self.vehicle, control_dt_s=1.0 / config.sim_hz)
        start = self.sim.hover_state(config.start_pos_m)
        start[13:17] = 0.0  # rotors stopped
        self.sim.reset(start)
        key = signing_key(config.signing_key_hex, source="fc_sim.signing_key_hex")  # or $MAVLINK_SIGNING_KEY
        self.conn = open_connection(config.url, config.system_id, 1, key, allow_remote=config.allow_remote)
        self.mav = mavutil.mavlink
        self.params = Px4Params.for_fc(config, self.vehicle, self.thrust_map.hover_throttle,
                                       LOSS_ACTIONS[config.offboard_loss_action], on_change=self._param_changed)
        self._wind = np.asarray(config.wind_mps, dtype=float)
        self.rng = random.Random(config.seed)
        self.noise_rng = np.random.default_rng(config.seed)
        self.stats = FcSimStats()
        self.failsafes: list = []  # (fc time s, action) of the flight controller's own offboard-loss failsafes
        self.armed = False
        self.mode = "POSCTL"
        self.setpoint: Setpoint | None = None
        self.home_enu = np.asarray(config.start_pos_m, float).copy()
        self.hold_pos = self.home_enu.copy()
        self.land_z = self.takeoff_z = self.climb_z = 0.0
        self.battery = 1.0
        self.rates_hz = {**DEFAULT_RATES_HZ, **config.rates_hz}
        self.next_tx = {k: 0.0 for k in self.rates_hz}
        self._outq: list = []  # heap of (release time, seq, msg)
        self._inq: list = []
        self._seq = 0
        self._prev_vel = np.zeros(3)
        self.accel_enu = np.zeros(3)
        self._was_ready = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.t0 = time.monotonic()
        self._k = 0  # lockstep: steps taken; simulated time = _k / sim_hz
        self.driven = False  # lockstep: the last step was triggered by a setpoint
        self.started = False  # lockstep: a setpoint has arrived (simulated time runs)

    @property
    def port(self) -> int:
        """Local UDP port of the socket."""
        return bound_port(self.conn)

    @property
    def home_ned(self) -> np.ndarray:
        """Home position, local NED m."""
        return enu_to_ned(self.home_enu)

    def now(self) -> float:
        """Seconds since boot: wall-clock time, or simulated time in lockstep."""
        if self.cfg.lockstep:
            return self._k / self.cfg.sim_hz
        return time.monotonic() - self.t0

    def estimator_ready(self, now: float | None = None) -> bool:
        """The simulated estimator has converged (boot wall time >= estimator_ready_s; also in lockstep, where
        simulated time stands still until the companion streams)."""
        return time.monotonic() - self.t0 >= self.cfg.estimator_ready_s

    def state(self) -> np.ndarray:
        """Simulator state (17,) ENU/FLU."""
        return self.sim.state

    def battery_mv(self) -> int:
        """Battery voltage, mV (4S: 14.0 V empty .. 16.8 V full)."""
        return int(1000 * (14.0 + 2.8 * self.battery))

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

    def queue_out(self, msg) -> None:
        """Send msg through the simulated wire (loss, latency, jitter)."""
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
    def event(self, text: str) -> None:
        """Log an event and send it as STATUSTEXT."""
        self.stats.events.append((round(self.now(), 3), text))
        self.queue_out(self.mav.MAVLink_statustext_message(self.mav.MAV_SEVERITY_WARNING, text[:50].encode()))

    def set_mode(self, name: str, now: float) -> None:
        """Enter a mode; HOLD, POSCTL, LAND and TAKEOFF latch the current position."""
        if name != self.mode:
            self.event(f"mode {self.mode} -> {name}")
        if name in ("HOLD", "POSCTL", "LAND", "TAKEOFF"):
            self.hold_pos = self.state()[0:3].copy()
        if name == "LAND":
            self.land_z = float(self.hold_pos[2])
        self.mode = name

    def arm(self, now: float) -> None:
        """Arm; on the ground the home position is set here, as PX4 does."""
        self.armed = True
        self.ctrl.reset()
        if self.state()[2] < 0.05:
            self.home_enu = self.state()[0:3].copy()
        # arming after an auto-land starts in position control; any mode re-latches its hold point
        self.set_mode("POSCTL" if self.mode in ("LAND", "TAKEOFF") else self.mode, now)
        self.event("armed")

    def disarm(self, why: str = "") -> None:
        """Disarm (motors stop)."""
        if self.armed:
            self.event("disarmed" + why)
        self.armed = False

    def message(self, name: str, now: float, noise: bool = True):
        """The telemetry message `name` stamped at now."""
        if self.cfg.lockstep:  # simulated time is a multiple of the period: round, do not truncate 0.0299999 to 29
            ms, us = int(round(now * 1e3)), int(round(now * 1e6))
        else:
            ms, us = int(now * 1e3), int(now * 1e6)
        return messages.build(self, name, now, ms, us, noise)

    def _param_changed(self, name: str, value: float) -> None:
        """Apply a parameter change: rate-loop gains scale the airframe's nominal gains."""
        prefix, _, term = name.rpartition("_")
        if prefix in RATE_GAIN_PARAMS and term in ("P", "I", "D"):
            axis = RATE_GAIN_PARAMS[prefix]
            which = "PID".index(term)
            default = self.params.defs[name].default
            nominal = self._nominal_gains[which][axis]
            gains = list((self.sim.c.kp, self.sim.c.ki, self.sim.c.kd)[which])
            gains[axis] = nominal * (value / default) if default else value
            self.sim.c = dataclasses.replace(self.sim.c, **{("kp", "ki", "kd")[which]: tuple(gains)})
        self.event(f"param {name} = {value:g}")

    def _handle(self, msg, now: float) -> None:
        kind = msg.get_type()
        guard = self.conn.peer_guard
        if guard is not None and guard.peer is None:  # udpin: PX4 too keeps the first partner that talks to it
            if kind != "HEARTBEAT" or msg.get_srcSystem() == self.cfg.system_id:
                self.stats.rejected += 1  # nothing counts before a peer announced itself with a heartbeat
                return
            guard.lock()
        mine = getattr(msg, "target_system", 0) in (0, self.cfg.system_id)
        if kind == "SET_ATTITUDE_TARGET":
            if mine:
                self._setpoint(msg, now)
        elif kind in ("COMMAND_LONG", "COMMAND_INT"):
            if mine:
                handle_command(self, msg, now)
        elif kind in ("PARAM_REQUEST_LIST", "PARAM_REQUEST_READ", "PARAM_SET"):
            if mine:
                for reply in self.params.handle(self.mav, msg):
                    self.queue_out(reply)
        elif kind == "PING":
            if msg.target_system == 0:  # a request: answer it with the same sequence and time
                self.queue_out(self.mav.MAVLink_ping_message(msg.time_usec, msg.seq, msg.get_srcSystem(),
                                                             msg.get_srcComponent()))
        elif kind == "TIMESYNC":
            if msg.tc1 == 0:  # a request: our time in tc1, theirs echoed in ts1
                self.queue_out(self.mav.MAVLink_timesync_message(int(self.now() * 1e9), msg.ts1))
        elif kind == "STATUSTEXT" and len(self.stats.events) < 1000:
            self.stats.events.append((round(now, 3), "companion: " + printable(msg.text)))

    def _setpoint(self, msg, now: float) -> None:
        """Accept a SET_ATTITUDE_TARGET: body rates + thrust only, never a NaN to the mixer, clamped as PX4 does."""
        rates = [msg.body_roll_rate, msg.body_pitch_rate, msg.body_yaw_rate]
        if (msg.type_mask & 128 == 0 or msg.type_mask & 0b1000111 != 0
                or not all(math.isfinite(x) for x in rates + [msg.thrust])):
            self.stats.rejected += 1  # only body rates + thrust with attitude ignored is supported
            return
        limit = np.radians([self.params["MC_ROLLRATE_MAX"], self.params["MC_PITCHRATE_MAX"],
                            self.params["MC_YAWRATE_MAX"]])
        clipped = np.clip(np.asarray(rates, float), -limit, limit)
        thrust = min(max(float(msg.thrust), 0.0), 1.0)
        if thrust != msg.thrust or not np.array_equal(clipped, rates):
            self.stats.clamped += 1
        self.setpoint = Setpoint(clipped, thrust, now)
        self.stats.setpoints += 1

    # ---- physics and telemetry ----
    def _step(self, now: float) -> None:
        ctbr = self.command_ctbr(now)
        s = self.sim.step(ctbr, wind_mps=self._wind)
        self.accel_enu = (s[7:10] - self._prev_vel) * self.cfg.sim_hz
        self._prev_vel = s[7:10].copy()
        self.stats.steps += 1
        self.after_step(s)

    def _telemetry(self, now: float) -> None:
        eps = 1e-6 if self.cfg.lockstep else 0.0  # simulated time: k / sim_hz vs summed periods (round-off)
        ready = self.estimator_ready(now)
        if ready != self._was_ready:  # tell a waiting ground station at once, not at the next 1 Hz SYS_STATUS
            self._was_ready = ready
            self.next_tx["SYS_STATUS"] = 0.0
        for name, hz in self.rates_hz.items():
            if hz > 0 and now >= self.next_tx[name] - eps:
                self.next_tx[name] = max(self.next_tx[name] + 1.0 / hz, now)
                self.queue_out(self.message(name, now))
