"""`ssm-mbrl fc-sim` (the stand-in PX4 over MAVLink) and `ssm-mbrl fly-sim` (an end-to-end rehearsal)."""
from __future__ import annotations

import argparse
import math
import signal
import sys

from ssm_mbrl_ros.core.config import finite_float


def add_parser(sub) -> argparse.ArgumentParser:
    """Register fc-sim and fly-sim."""
    p = sub.add_parser(
        "fc-sim", help="stand-in PX4 flight controller over MAVLink/UDP flying the simulator",
        description=("Speak PX4's MAVLink subset (heartbeat, arming, OFFBOARD with SET_ATTITUDE_TARGET body "
                     "rates + thrust, HOLD/LAND, telemetry, SET_MESSAGE_INTERVAL) over UDP with our "
                     "quadrotor simulator as the physics, in real time. Like PX4 SITL it sends to "
                     "udp 14540 by default."),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--url", default="udpout:127.0.0.1:14540", help="udpout:HOST:PORT or udpin:HOST:PORT")
    p.add_argument("--vehicle", default="agile5", help="vehicle name or YAML path")
    p.add_argument("--config", default=None, help="YAML file with FcSimConfig fields")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config field, e.g. --set loss=0.2 --set jitter_s=0.05 (repeatable)")
    p.add_argument("--duration", type=finite_float, default=None,
                   help="stop after this many seconds of wall time (default: run)")
    add_link_security_args(p)
    p.add_argument("--lockstep", action="store_true",
                   help="simulated time advances one control period per SET_ATTITUDE_TARGET received (like PX4 "
                        "SITL lockstep); telemetry stamps and failsafe timeouts are simulated time")
    p.set_defaults(run=run_fc_sim)

    f = sub.add_parser(
        "fly-sim", help="fly the geometric controller through MAVLink against fc-sim; print the hover error",
        description=("End-to-end rehearsal of fly_real without a drone: start fc-sim in a subprocess, "
                     "handshake, pre-arm checks, arm, OFFBOARD, hover at --target under the safety "
                     "supervisor at 100 Hz, land; print hover RMSE and control-loop timing."),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    f.add_argument("--duration", type=finite_float, default=20.0, help="offboard flight time, s")
    f.add_argument("--target", default="0,0,1.5", help="hover position x,y,z ENU m")
    f.add_argument("--settle", type=finite_float, default=3.0, help="seconds after OFFBOARD excluded from the RMSE")
    f.add_argument("--vehicle", default="agile5", help="vehicle name")
    f.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="fc-sim config override, e.g. --set loss=0.2 (repeatable)")
    f.add_argument("--max-state-age", type=finite_float, default=0.05,
                   help="supervisor stale-state limit, s (raise it when simulating jitter of the same size)")
    f.add_argument("--policy", default=None, metavar="MODEL.onnx",
                   help="fly an exported hover policy (e.g. hover or models/hover.onnx) through the link instead of "
                        "the geometric controller; its world-model surprise feeds the supervisor (tracking policies "
                        "fly through `ssm-mbrl launch fly_sim`)")
    f.add_argument("--lockstep", action="store_true",
                   help="run fc-sim --lockstep and the loop on its simulated clock: --duration/--settle are simulated "
                        "seconds, the flight runs as fast as the computation, and a run is reproducible")
    add_link_security_args(f, remote=False)
    f.add_argument("--json", dest="json_path", default=None, help="write the result JSON here")
    f.set_defaults(run=run_fly_sim)
    return p


def add_link_security_args(p, remote: bool = True) -> None:
    """--signing-key-file (and --allow-remote) for commands that open a MAVLink link."""
    p.add_argument("--signing-key-file", default=None, metavar="FILE",
                   help="MAVLink 2 signing: a file holding the 32-byte key as 64 hex digits (the same key as the "
                        "other side; PX4: docs/px4.md). Unsigned or wrongly signed messages are then rejected and "
                        "counted. Default: $MAVLINK_SIGNING_KEY if set, else unsigned")
    if remote:
        p.add_argument("--allow-remote", action="store_true",
                       help="allow a non-loopback address in --url (listen on or send to a network); without it "
                            "fc-sim only talks on 127.0.0.1. Sign a networked link (--signing-key-file)")


def fc_sim_config(args):
    """FcSimConfig from --config YAML, --url/--vehicle and --set overrides."""
    from ssm_mbrl_ros.core.config import apply_overrides, from_dict, load_yaml
    from ssm_mbrl_ros.fcsim import FcSimConfig

    data = load_yaml(args.config) if args.config else {}
    data = {**data, "url": args.url, "vehicle": args.vehicle}
    if getattr(args, "lockstep", False):
        data["lockstep"] = True
    if getattr(args, "allow_remote", False):
        data["allow_remote"] = True
    if getattr(args, "signing_key_file", None):
        from ssm_mbrl_ros.link.transport import signing_key

        data["signing_key_hex"] = signing_key(key_file=args.signing_key_file).hex()
    return from_dict(FcSimConfig, apply_overrides(data, args.overrides), args.config or "fc-sim")


def run_fc_sim(args) -> int:
    """Run the stand-in flight controller until interrupted or --duration."""
    from ssm_mbrl_ros.fcsim import FcSim

    fc = FcSim(fc_sim_config(args))
    signal.signal(signal.SIGTERM, lambda *_: fc._stop.set())  # stop cleanly and print the summary
    from ssm_mbrl_ros.link.transport import link_security_counts, local_address

    clock = f"lockstep (timeout {fc.cfg.lockstep_timeout_s:g} s)" if fc.cfg.lockstep else "real time"
    signed = "signed (MAVLink 2)" if fc.conn.mav.signing.secret_key is not None else "UNSIGNED"
    print(f"fc-sim: PX4 stand-in, url {fc.cfg.url}, socket {local_address(fc.conn)}, {signed}, "
          f"vehicle {fc.cfg.vehicle}, {clock}", flush=True)
    if fc.cfg.allow_remote:
        print("fc-sim: WARNING: --allow-remote: reachable from the network", flush=True)
    try:
        fc.run(args.duration)
    finally:
        fc.conn.close()
        for t, text in fc.stats.events:
            print(f"fc-sim [{t:8.3f} s] {text}")
        print(f"fc-sim: {fc.stats.steps} steps ({fc.stats.late_steps} late), {fc.stats.setpoints} setpoints, "
              f"{fc.stats.bad_data} bad packets, {fc.stats.rejected} rejected, {fc.stats.clamped} clamped; refused: "
              f"{link_security_counts(fc.conn)}", flush=True)
    return 0


def run_fly_sim(args) -> int:
    """Fly the rehearsal and print the result."""
    import torch

    from ssm_mbrl_ros.core.io import write_json
    from ssm_mbrl_ros.core.config import ConfigError
    from ssm_mbrl_ros.link.rehearsal import rehearse

    torch.set_num_threads(1)
    try:
        target = [float(x) for x in args.target.split(",")]
        assert len(target) == 3 and all(math.isfinite(x) for x in target)
    except (ValueError, AssertionError) as exc:
        raise ConfigError(f"--target: expected x,y,z in metres, got {args.target!r}") from exc
    controller = None
    if args.policy:
        from ssm_mbrl_ros.link.onnx_controller import OnnxHoverController
        from ssm_mbrl_ros.runtime.policy import PolicyLoadError
        from ssm_mbrl_ros.runtime.sidecar import SidecarError

        from ssm_mbrl_ros.runtime.models import find_model

        try:
            args.policy = str(find_model(args.policy))
            from ssm_mbrl_ros.runtime.sidecar import load_sidecar

            sidecar = load_sidecar(args.policy)
            task = str(sidecar.get("task", ""))
            if task != "hover":  # the rehearsal takes off and holds --target: a setpoint task
                raise ValueError(f"{args.policy} is a {task or 'task-less'} policy; fly-sim flies hover policies "
                                 f"(it holds --target). Fly a tracking policy through the ROS graph: ssm-mbrl launch "
                                 f"fly_sim --set policy.model={args.policy} --set state_bridge.task={task}")
            controller = OnnxHoverController(args.policy, target, sidecar=sidecar)
        except (PolicyLoadError, SidecarError, FileNotFoundError, ValueError) as e:
            raise ConfigError(f"--policy: {e}") from e
    from ssm_mbrl_ros.link.transport import signing_key

    r = rehearse(args.duration, target, args.vehicle, args.overrides, settle_s=args.settle,
                 supervisor_overrides={"max_state_age_s": args.max_state_age}, controller=controller,
                 lockstep=args.lockstep, signing_key=signing_key(key_file=args.signing_key_file))
    r["controller"] = f"policy:{args.policy}" if args.policy else "geometric"
    log = r.pop("log")
    print(r.pop("fc_sim_output").rstrip())
    print(f"offboard hover at {target} for {args.duration:.1f} s through MAVLink/UDP + fc-sim "
          f"({r['controller']}):")
    print(f"  hover RMSE (after {args.settle:.1f} s settle): {r['hover_rmse_m']:.4f} m")
    print(f"  final position: {r['final_pos_m']}")
    lp = r["loop_period_ms"]
    print(f"  control loop period ms: mean {lp['mean']:.2f}, p99 {lp['p99']:.2f}, max {lp['max']:.2f}; "
          f"controller {r['policy_ms_mean']:.2f} ms/step")
    if args.lockstep:
        print(f"  lockstep: {r['wall_s']:.2f} s of wall time, {r['realtime_factor']:.1f}x real time")
    print(f"  failsafe: {r['failsafe']}; final mode: {r['final_mode']}; errors: {r['errors'] or 'none'}")
    if args.json_path:
        print(f"wrote {write_json(args.json_path, r)}")
    ok = log.offboard_s is not None and r["failsafe"] is None and not r["errors"]
    return 0 if ok else 1


def main(argv=None) -> int:
    """Standalone entry (`python -m ssm_mbrl_ros.cli.fc_sim fc-sim ...`), used to spawn fc-sim."""
    parser = argparse.ArgumentParser(prog="fc_sim")
    add_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    from ssm_mbrl_ros.cli.main import dispatch

    return dispatch(args, args.command)


if __name__ == "__main__":
    sys.exit(main())
