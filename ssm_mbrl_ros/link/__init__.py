"""MAVLink / PX4 offboard link, simulated PX4 flight controller and flight safety supervisor."""
