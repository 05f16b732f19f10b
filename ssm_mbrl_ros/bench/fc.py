"""`bench fc`: hover through fc-sim over MAVLink/UDP and failsafe reaction times of the offboard loop.

One fc-sim subprocess serves every flight: a hover of `duration_s` (position RMSE after a settle
time, control-loop timing), then one short flight per failsafe reason in which the trigger is
injected 1 s after OFFBOARD. Reaction = time from the control step that first sees the trigger
to the failsafe command (PX4 mode change or force disarm) leaving our socket; the FC's COMMAND_ACK
time is reported beside it. Between flights the supervisor is reset and the drone re-armed.

Then the flight controller's own offboard-loss failsafe, with no supervisor of ours in the loop: for each
(COM_OF_LOSS_T, COM_OBL_RC_ACT) case the parameters are set over the parameter protocol, the companion streams
setpoints in OFFBOARD and stops; the delay from the last setpoint fc-sim received to its failsafe (FC clock) should
be COM_OF_LOSS_T plus at most one 10 ms step.
"""
from __future__ import annotations

import math
import threading
import time

import numpy as np

from ssm_mbrl_ros.core.frames import quat_from_euler_zyx
from ssm_mbrl_ros.link.offboard_loop import GeometricPolicy, fly, prepare
from ssm_mbrl_ros.link.rehearsal import session, summarize
from ssm_mbrl_ros.link.supervisor import default_supervisor_config
from ssm_mbrl_ros.link.supervisor import Supervisor


def failsafe_injections(kill: threading.Event, at_s: float = 1.0, max_state_age_s: float = 0.05) -> dict:
    """reason -> inject(now, t_since_offboard) producing that trigger from at_s after OFFBOARD on."""
    tilted = quat_from_euler_zyx(math.radians(75.0), 0.0, 0.0)

    def after(overrides_fn):
        return lambda now, t: overrides_fn(now) if t >= at_s else None

    def kill_fn(now, t):
        if t >= at_s:
            kill.set()

    return {
        "stale_state": after(lambda now: {"stamp_s": now - max_state_age_s - 0.01}),
        "nan_action": after(lambda now: {"ctbr": np.full(4, np.nan)}),
        "geofence": after(lambda now: {"pos_m": np.array([0.0, 0.0, 10.0])}),
        "tilt": after(lambda now: {"quat_wxyz": tilted}),
        "surprise": after(lambda now: {"surprise": 1e3}),
        "overrun": after(lambda now: {"policy_s": 0.05}),
        "battery": after(lambda now: {"battery_fraction": 0.05}),
        "operator_kill": kill_fn,
    }


FC_LOSS_CASES = ((0.5, 5), (1.0, 4))  # (COM_OF_LOSS_T s, COM_OBL_RC_ACT: 5 hold, 4 land)


def fc_offboard_loss(loss_t_s: float, action: int, vehicle_name: str = "agile5") -> dict:
    """The FC's own offboard-loss failsafe in an in-process fc-sim: parameters set over MAVLink, 0.5 s of setpoints
    in OFFBOARD at 1 m, then silence; delay from the last setpoint received to the failsafe (FC clock) and the mode."""
    from ssm_mbrl_ros.fcsim import FcSim, FcSimConfig
    from ssm_mbrl_ros.link.mavlink_link import MavLink, bound_port
    from ssm_mbrl_ros.link.rehearsal import wait_until
    from ssm_mbrl_ros.link.thrust_map import ThrustMap
    from ssm_mbrl_ros.sim.vehicle import load_vehicle

    link = MavLink("udpin:127.0.0.1:0", ThrustMap.for_vehicle(load_vehicle(vehicle_name)))
    fc = FcSim(FcSimConfig(url=f"udpout:127.0.0.1:{bound_port(link.conn)}", vehicle=vehicle_name,
                           start_pos_m=[0.0, 0.0, 1.0], estimator_ready_s=0.0)).start()
    try:
        link.wait_for_fc(5.0)
        link.set_param("COM_OF_LOSS_T", loss_t_s)
        link.set_param("COM_OBL_RC_ACT", action, integer=True)
        link.wait_for_prearm()
        hover = [9.81, 0.0, 0.0, 0.0]
        link.send_ctbr(hover)
        link.arm()
        for _ in range(50):
            link.send_ctbr(hover)
            time.sleep(0.01)
        link.set_mode("OFFBOARD")
        for _ in range(50):
            link.send_ctbr(hover)
            time.sleep(0.01)
        wait_until(lambda: fc.failsafes, loss_t_s + 3.0)
        delay = fc.failsafes[0][0] - fc.setpoint.received_s if fc.failsafes else None
        wait_until(lambda: link.mode in ("HOLD", "LAND"), 2.0)
        expected = {4: "LAND"}.get(action, "HOLD")
        return {"COM_OF_LOSS_T": loss_t_s, "COM_OBL_RC_ACT": action, "failsafe_after_s": delay,
                "mode_after": link.mode, "ok": delay is not None and loss_t_s <= delay <= loss_t_s + 0.02
                and link.mode == expected}
    finally:
        fc.stop()
        link.close()


def bench_fc(duration_s: float = 60.0, target_pos_m=(0.0, 0.0, 1.5), settle_s: float = 5.0,
             vehicle_name: str = "agile5", failsafes: bool = True, fc_overrides=(),
             inject_at_s: float = 1.0, failsafe_flight_s: float = 1.6,
             supervisor_overrides: dict | None = None) -> dict:
    """Hover RMSE and loop timing over duration_s at 100 Hz, plus failsafe reaction times, as a dict."""
    out: dict = {"fc_sim_overrides": list(fc_overrides), "supervisor_overrides": supervisor_overrides or {},
                 "vehicle": vehicle_name, "rate_hz": 100.0,
                 "duration_s": duration_s, "target_pos_m": list(target_pos_m)}
    with session(vehicle_name, fc_overrides) as (link, vehicle, _proc):
        policy = GeometricPolicy(vehicle, target_pos_m)
        policy(np.r_[0.0, 0, 0, 1, 0, 0, 0, np.zeros(10)], 0.0)  # warm-up
        sup_cfg = default_supervisor_config(vehicle, **{"surprise_threshold": 1.0, "surprise_steps": 5,
                                                        "overrun_steps": 3, **(supervisor_overrides or {})})
        sup = Supervisor(sup_cfg)
        prepare(link, sup, timeout_s=30.0)
        log = fly(link, policy, sup, duration_s + 1.0)  # + about the arming time before OFFBOARD
        out.update(summarize(log, target_pos_m, settle_s))
        out["failsafe_reaction_ms"], out["failsafe_ack_ms"] = {}, {}
        if not failsafes:
            return out
        kill = threading.Event()
        for reason, inject in failsafe_injections(kill, inject_at_s, sup_cfg.max_state_age_s).items():
            kill.clear()
            sup.reset()
            # ends failsafe_flight_s - inject_at_s after the failsafe (a lossy link may delay OFFBOARD)
            tail_s = failsafe_flight_s - inject_at_s
            log = fly(link, policy, sup, failsafe_flight_s + 5.0, inject=inject, kill=kill,
                      stop_when=lambda lg, now: lg.failsafe_sent_s is not None and now - lg.failsafe_sent_s > tail_s)
            ok = log.failsafe is not None and log.failsafe.reason == reason
            out["failsafe_reaction_ms"][reason] = (1e3 * (log.failsafe_sent_s - log.failsafe.triggered_s)
                                                   if ok else None)
            deadline = time.monotonic() + 1.0
            while log.failsafe_ack_s is None and time.monotonic() < deadline:
                time.sleep(0.01)
            out["failsafe_ack_ms"][reason] = (1e3 * (log.failsafe_ack_s - log.failsafe.triggered_s)
                                              if ok and log.failsafe_ack_s else None)
            out.setdefault("errors_failsafe_flights", []).extend(f"{reason}: {e}" for e in log.errors)
            if reason == "operator_kill":
                time.sleep(1.5)  # let it fall and settle on the ground before anything else
            else:
                time.sleep(0.3)
    out["fc_offboard_loss"] = [fc_offboard_loss(t, a, vehicle_name) for t, a in FC_LOSS_CASES]
    out["fc_offboard_loss_ok"] = all(c["ok"] for c in out["fc_offboard_loss"])
    vals = [v for v in out["failsafe_reaction_ms"].values() if v is not None]
    out["failsafe_reaction_ms_max"] = max(vals) if vals else None
    complete = bool(vals) and len(vals) == len(out["failsafe_reaction_ms"])
    out["failsafes_within_one_period"] = complete and max(vals) <= 1e3 / out["rate_hz"]
    return out


def run(args) -> int:
    """`ssm-mbrl bench fc`: print the summary, write JSON; exit 1 if a failsafe missed its period."""
    import torch

    from ssm_mbrl_ros.core.io import write_json
    from ssm_mbrl_ros.core.config import ConfigError

    torch.set_num_threads(1)
    try:
        target = tuple(float(x) for x in args.target.split(","))
        assert len(target) == 3
    except (ValueError, AssertionError) as exc:
        raise ConfigError(f"--target: expected x,y,z in metres, got {args.target!r}") from exc
    r = bench_fc(args.duration, target, args.settle, args.vehicle, not args.no_failsafes, args.overrides)
    lp = r["loop_period_ms"]
    print(f"hover RMSE {r['hover_rmse_m']:.4f} m over {r['rmse_window_s']:.1f} s at 100 Hz "
          f"(loop period mean {lp['mean']:.2f} ms, p99 {lp['p99']:.2f} ms, max {lp['max']:.2f} ms)")
    for reason, ms in r["failsafe_reaction_ms"].items():
        ack = r["failsafe_ack_ms"].get(reason)
        print(f"failsafe {reason:<14} command sent after {ms if ms is None else round(ms, 2)} ms, "
              f"FC ack after {ack if ack is None else round(ack, 2)} ms")
    for c in r.get("fc_offboard_loss", []):
        print(f"FC offboard-loss failsafe (COM_OF_LOSS_T {c['COM_OF_LOSS_T']:g} s, COM_OBL_RC_ACT "
              f"{c['COM_OBL_RC_ACT']}): after {c['failsafe_after_s']} s -> {c['mode_after']}"
              f"{'' if c['ok'] else '  NOT AS CONFIGURED'}")
    if args.json_path:
        print(f"wrote {write_json(args.json_path, r)}")
    ok = args.no_failsafes or (r["failsafes_within_one_period"] and r["fc_offboard_loss_ok"])
    return 0 if ok and not r["errors"] else 1
