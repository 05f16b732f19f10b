"""fc-sim's configuration: connection, vehicle, telemetry rates, failsafe, home, network impairment."""
from __future__ import annotations

from dataclasses import dataclass

from ssm_mbrl_ros.core.config import ConfigError, doc
from ssm_mbrl_ros.link.transport import parse_url

# COM_OBL_RC_ACT values fc-sim models (PX4: 0 position, 1 altitude, 2 manual, 3 return, 4 land, 5 hold, 6 terminate,
# 7 disarm); position and altitude mode are flown as HOLD (no RC sticks here)
LOSS_ACTIONS = {"hold": 5, "land": 4, "disarm": 7}

# message -> default stream rate, Hz (0 = only on request: MAV_CMD_REQUEST_MESSAGE or SET_MESSAGE_INTERVAL)
DEFAULT_RATES_HZ = {"HEARTBEAT": 1.0, "SYS_STATUS": 1.0, "EXTENDED_SYS_STATE": 1.0, "ATTITUDE_QUATERNION": 50.0,
                    "ATTITUDE": 10.0, "LOCAL_POSITION_NED": 30.0, "GLOBAL_POSITION_INT": 10.0, "HIGHRES_IMU": 50.0,
                    "HOME_POSITION": 0.5, "ODOMETRY": 0.0, "BATTERY_STATUS": 1.0, "AUTOPILOT_VERSION": 0.0}


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
    offboard_loss_timeout_s: float = doc("initial COM_OF_LOSS_T: setpoint silence that ends OFFBOARD, s (a ground "
                                         "station may change it through the parameter protocol)", default=0.5)
    offboard_loss_action: str = doc("initial COM_OBL_RC_ACT as a name: hold (5) | land (4) | disarm (7); the "
                                    "flight controller's own offboard-loss failsafe", default="hold")
    takeoff_alt_m: float = doc("initial MIS_TAKEOFF_ALT: MAV_CMD_NAV_TAKEOFF climbs this far above home, m",
                               default=2.5)
    home_lat_deg: float = doc("home latitude (GLOBAL_POSITION_INT, HOME_POSITION), deg", default=47.397742)
    home_lon_deg: float = doc("home longitude, deg", default=8.545594)
    home_alt_m: float = doc("home altitude above mean sea level, m", default=488.0)
    estimator_ready_s: float = doc("time after boot until the simulated estimator is ready: SYS_STATUS reports the "
                                   "sensors and pre-arm check healthy and arming is accepted, s", default=1.0)
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
        parse_url(self.url)
        for name in ("physics_hz", "sim_hz", "offboard_loss_timeout_s", "land_speed_mps", "battery_life_s",
                     "lockstep_timeout_s"):
            if not getattr(self, name) > 0:
                raise ConfigError(f"{source}.{name}: must be > 0, got {getattr(self, name)}")
        if self.offboard_loss_action not in LOSS_ACTIONS:
            raise ConfigError(f"{source}.offboard_loss_action: expected one of {sorted(LOSS_ACTIONS)}, "
                              f"got {self.offboard_loss_action!r}")
        if not -90 <= self.home_lat_deg <= 90 or not -180 <= self.home_lon_deg <= 180:
            raise ConfigError(f"{source}.home_lat_deg/home_lon_deg: out of range")
        if self.estimator_ready_s < 0 or self.takeoff_alt_m <= 0:
            raise ConfigError(f"{source}.estimator_ready_s must be >= 0 and takeoff_alt_m > 0")
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
