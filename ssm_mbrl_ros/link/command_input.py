"""The CTBR command coming from another process (the ROS policy node) and when to act on it.

Holds the latest command, when it arrived (link clock, for the supervisor's stale-command guard)
and the state stamp it answers (cmd_ctbr carries the stamp of the odometry it was computed from).
Real time: the flight-controller link acts on a fixed-rate timer. Lockstep: it acts as soon as
the command answering the newest published state arrives (each action steps the simulation once),
so neither a slow controller nor a loaded machine lets simulated time run away from the controller;
when no answer comes within timeout_s of wall time it free-runs on the timer (so the stale-command
failsafe can fire) until an answer to the newest state arrives again.
"""
from __future__ import annotations

import numpy as np


class CommandInput:
    """Latest command + lockstep gating; wall times are time.monotonic() seconds supplied by the caller."""

    def __init__(self, lockstep: bool = False, timeout_s: float = 0.5):
        self.lockstep, self.timeout_s = lockstep, timeout_s
        self.ctbr: np.ndarray | None = None  # (4,) thrust m/s^2, body rates FLU rad/s
        self.received_s: float | None = None  # link clock when it arrived
        self.stamp_ns: int | None = None  # the state stamp it answers
        self.state_stamp_ns: int | None = None  # newest state published to the controller
        self.free_run = False
        self._last_event_wall: float | None = None

    def state_published(self, stamp_ns: int, wall_s: float) -> None:
        """A new state went out to the controller (its answer is awaited in lockstep)."""
        self.state_stamp_ns = stamp_ns
        self._last_event_wall = wall_s

    def received(self, ctbr, stamp_ns: int, now_s: float) -> bool:
        """Store a command; True when the caller should act now (lockstep, answering the newest state)."""
        self.ctbr = np.asarray(ctbr, dtype=float).copy()
        self.received_s, self.stamp_ns = now_s, stamp_ns
        answers = stamp_ns == self.state_stamp_ns
        if answers:
            self.free_run = False
        return self.lockstep and answers

    def timer_due(self, wall_s: float) -> bool:
        """Whether the rate timer should act now: always in real time; in lockstep only when free-running."""
        if not self.lockstep or self.free_run:
            return True
        if self._last_event_wall is not None and wall_s - self._last_event_wall > self.timeout_s:
            self.free_run = True  # the controller went quiet: keep time moving so the failsafe can see it
        return self.free_run

    def acted(self, wall_s: float) -> None:
        """The link acted (one setpoint or failsafe step)."""
        self._last_event_wall = wall_s
