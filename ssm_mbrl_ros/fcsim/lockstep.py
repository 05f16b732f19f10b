"""fc-sim's lockstep clock (FcSimConfig.lockstep), like PX4 SITL lockstep with the companion driving time.

Simulated time advances one control period (1/sim_hz) per SET_ATTITUDE_TARGET received, so a
slow or stalled controller never sees time pass without it. After each step fc-sim immediately
sends the telemetry due at the new simulated time, then SYSTEM_TIME (time_boot_ms = simulated
time) as the "step done" marker; every stamp (time_boot_ms / time_usec, event times) and the
offboard-loss timeout (COM_OF_LOSS_T) are simulated time. When no setpoint comes:
  * before the first setpoint ever, simulated time stands at 0 and fc-sim repeats the t = 0
    telemetry (noise- and loss-free) every 0.1 s of wall time, so a companion can connect,
    handshake, arm and start streaming, and every run starts from the same state and time;
  * once streaming, fc-sim waits up to lockstep_timeout_s (wall) for the next setpoint; when
    none comes it concludes the controller stopped and free-runs in real time (one step per
    1/sim_hz of wall time) until setpoints return, so HOLD/LAND, the offboard-loss failsafe
    (after offboard_loss_timeout_s of simulated time) and a fall after a kill still happen.
Commands (arm, mode, message rates) are handled the moment they arrive, between steps; a
companion that waits for the COMMAND_ACK before its next setpoint gets them applied at a
deterministic simulated time. Loss and noise come from seeded generators (the companion's own
wall-clock heartbeats are exempt) and latency/jitter count in simulated time, so a lockstep run
is reproducible; SYSTEM_TIME itself is never dropped or delayed (it is the protocol, not telemetry).

The methods below are mixed into fcsim.server.FcSim and use its state (socket, queues, RNGs, physics).
"""
from __future__ import annotations

import time

FROZEN_REPEAT_S = 0.1  # before the first setpoint: repeat the t = 0 telemetry this often (wall s)


class LockstepLoop:
    """The lockstep run loop of FcSim: one physics step per setpoint received, simulated time everywhere."""

    def _run_lockstep(self, duration_s: float | None) -> None:
        """Lockstep loop: one step per setpoint; frozen at t = 0 until the first, free-running after a timeout."""
        dt, wait_s = 1.0 / self.cfg.sim_hz, self.cfg.lockstep_timeout_s
        end = None if duration_s is None else time.monotonic() + duration_s
        next_repeat = last_step = time.monotonic()
        while not self._stop.is_set() and (end is None or time.monotonic() < end):
            wall = time.monotonic()
            if not self.started:
                if wall >= next_repeat:
                    self._send_frozen()
                    next_repeat = wall + FROZEN_REPEAT_S
                deadline = next_repeat
            else:
                deadline = last_step + (wait_s if self.driven else dt)
                if wall >= deadline:
                    if self.driven:
                        self.event(f"lockstep: no setpoint for {wait_s:g} s, free-running")
                        self.driven = False
                    last_step = max(deadline, wall - dt)  # real-time pace without bursts
                    self._lockstep_step()
                    continue
            msg = self._recv(min(max(deadline - wall, 0.0), 0.05))
            if msg is not None and self._lockstep_input(msg):
                self.started = self.driven = True
                self._lockstep_step()
                last_step = time.monotonic()

    def _recv(self, timeout_s: float):
        """The next datagram's message (None on timeout or garbage)."""
        try:
            return self.conn.recv_match(blocking=timeout_s > 0, timeout=timeout_s or None)
        except Exception:
            self.stats.bad_data += 1
            return None

    def _lockstep_input(self, msg) -> bool:
        """Take one received message (loss, simulated-time delay); True if it is a setpoint for us (a step)."""
        self.stats.rx += 1
        kind = msg.get_type()
        if kind == "BAD_DATA":
            self.stats.bad_data += 1
            return False
        step = kind == "SET_ATTITUDE_TARGET" and msg.target_system in (0, self.cfg.system_id)
        # the companion's heartbeat runs on its wall clock: never impaired, so the seeded draws stay reproducible
        # (a setpoint lost on the simulated wire still steps time: the controller did answer)
        self._accept(msg, impaired=kind != "HEARTBEAT")
        self._flush(self.now())  # ACKs of commands go out now, between steps
        return step

    def _lockstep_step(self) -> None:
        """One period at the current simulated time, then telemetry due at the new time and the SYSTEM_TIME marker."""
        self._flush(self.now())  # delayed inputs due now take effect before the step
        self._step(self.now())
        self._k += 1
        now = self.now()
        self._telemetry(now)
        self._flush(now)
        self._send_time(now)

    def _send_time(self, now: float) -> None:
        self.conn.mav.send(self.mav.MAVLink_system_time_message(0, int(round(now * 1e3))))

    def _send_frozen(self) -> None:
        """Lockstep before the first setpoint: the t = 0 telemetry (noise- and loss-free) and SYSTEM_TIME 0."""
        for name, hz in self.rates_hz.items():
            if hz > 0:
                self.conn.mav.send(self.message(name, 0.0, noise=False))
        self._flush(0.0)
        self._send_time(0.0)
