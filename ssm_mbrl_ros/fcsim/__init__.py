"""fc-sim: a stand-in PX4 flight controller speaking MAVLink 2 over UDP, flying our quadrotor simulator.

Companion libraries and ground stations meant for PX4 work against it unchanged for what it models (commands,
parameters, telemetry, offboard rates; docs/px4.md lists it message by message). Layout:

    config.py    FcSimConfig (connection, vehicle, rates, failsafe, home, impairment)
    server.py    FcSim: socket, run loop, network impairment, message dispatch
    commands.py  COMMAND_LONG / COMMAND_INT with PX4's argument rules and results
    params.py    the modelled PX4 parameters and the parameter protocol
    messages.py  outgoing telemetry built from the simulated state (NED / FRD)
    flight.py    flight modes, the offboard-loss failsafe, take-off and landing on top of the physics
    lockstep.py  the lockstep clock (one physics step per setpoint, like PX4 SITL lockstep)
"""
from .config import DEFAULT_RATES_HZ, FcSimConfig
from .server import FcSim, FcSimStats, printable

__all__ = ["DEFAULT_RATES_HZ", "FcSim", "FcSimConfig", "FcSimStats", "printable"]
