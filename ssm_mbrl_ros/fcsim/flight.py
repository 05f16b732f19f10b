"""What fc-sim's vehicle does each control step, by flight mode: PX4's mode logic on top of the physics.

OFFBOARD flies the latest SET_ATTITUDE_TARGET (thrust normalised through the airframe's thrust map, FRD rates to
FLU) while it is fresh; when the stream lapses for COM_OF_LOSS_T the flight controller's own failsafe switches to
the COM_OBL_RC_ACT action (hold, land or disarm), as PX4 does, independently of any companion-side supervisor.
POSCTL and HOLD hold the position latched on entry, TAKEOFF climbs to its target and then holds, LAND descends at
MPC_LAND_SPEED and disarms on touchdown; these are flown by a geometric position controller whose thrust goes out
normalised with MPC_THR_HOVER (the parameter, which may differ from the airframe's true hover throttle, as on a real
drone) and comes back through the airframe's true thrust map. Physics: sim/single_drone.py.
"""
from __future__ import annotations

import numpy as np

from ssm_mbrl_ros.core.frames import frd_to_flu
from ssm_mbrl_ros.link.thrust_map import ThrustMap

CLIMB_SPEED_MPS = 1.5  # AUTO.TAKEOFF climb rate (PX4 MPC_TKO_SPEED default)
LANDED_HEIGHT_M = 0.05  # below this height the vehicle counts as on the ground


class FlightModes:
    """Mixin of FcSim: per-step command by mode, the offboard-loss failsafe, and the landed state."""

    def offboard_signal_ok(self, now: float) -> bool:
        """A setpoint arrived within COM_OF_LOSS_T."""
        return self.setpoint is not None and now - self.setpoint.received_s <= self.params["COM_OF_LOSS_T"]

    def offboard_loss_failsafe(self, now: float) -> None:
        """COM_OBL_RC_ACT after the offboard stream lapsed: 4 land, 7 disarm, anything else hold."""
        action = int(self.params["COM_OBL_RC_ACT"])
        name = {4: "land", 7: "disarm"}.get(action, "hold")
        self.event(f"offboard lost: failsafe {name}")
        self.failsafes.append((round(now, 3), name))
        if name == "disarm":
            self.disarm(" (offboard loss)")
            self.set_mode("HOLD", now)
        else:
            self.set_mode(name.upper(), now)

    def takeoff_to(self, height_m: float, now: float) -> None:
        """AUTO.TAKEOFF: climb to height_m above home at the current horizontal position, then HOLD."""
        self.set_mode("TAKEOFF", now)
        self.takeoff_z = float(self.home_enu[2] + height_m)
        self.climb_z = float(self.state()[2])

    def landed_state(self) -> int:
        """MAV_LANDED_STATE for EXTENDED_SYS_STATE."""
        m, z = self.mav, float(self.state()[2])
        if not self.armed:
            return m.MAV_LANDED_STATE_ON_GROUND
        if self.mode == "TAKEOFF":
            return m.MAV_LANDED_STATE_TAKEOFF
        if self.mode == "LAND" and z > LANDED_HEIGHT_M:
            return m.MAV_LANDED_STATE_LANDING
        return m.MAV_LANDED_STATE_ON_GROUND if z < LANDED_HEIGHT_M else m.MAV_LANDED_STATE_IN_AIR

    def command_ctbr(self, now: float) -> np.ndarray:
        """CTBR (4,) physical FLU applied this step, by mode."""
        if not self.armed:
            return np.zeros(4)
        if self.mode == "OFFBOARD":
            if self.offboard_signal_ok(now):
                sp = self.setpoint
                return np.concatenate([[self.thrust_map.to_mps2(sp.thrust_norm)], frd_to_flu(sp.rates_frd)])
            self.offboard_loss_failsafe(now)
            if not self.armed:
                return np.zeros(4)
        dt = 1.0 / self.cfg.sim_hz
        ref, ref_vel = self.hold_pos.copy(), np.zeros(3)
        if self.mode == "LAND":
            speed = self.params["MPC_LAND_SPEED"]
            self.land_z = max(self.land_z - speed * dt, -0.5)
            ref[2], ref_vel[2] = self.land_z, -speed
        elif self.mode == "TAKEOFF":
            self.climb_z = min(self.climb_z + CLIMB_SPEED_MPS * dt, self.takeoff_z)
            ref[2], ref_vel[2] = self.climb_z, CLIMB_SPEED_MPS if self.climb_z < self.takeoff_z else 0.0
            if abs(float(self.state()[2]) - self.takeoff_z) < 0.1:
                self.event("takeoff complete")
                self.set_mode("HOLD", now)
        ctbr = self.ctrl.compute(self.sim.state, ref, ref_vel)
        # the position controller commands normalised thrust with MPC_THR_HOVER; the airframe answers with its own
        ctbr[0] = self.thrust_map.to_mps2(ThrustMap(self.params["MPC_THR_HOVER"]).to_normalized(ctbr[0]))
        return ctbr

    def after_step(self, state: np.ndarray) -> None:
        """Battery drain and the auto-disarm on touchdown in LAND."""
        if self.armed:
            self.battery = max(0.0, self.battery - 1.0 / (self.cfg.sim_hz * self.cfg.battery_life_s))
            if self.mode == "LAND" and state[2] < LANDED_HEIGHT_M and self.land_z <= 0.0:
                self.armed = False
                self.event("landed: disarmed")
