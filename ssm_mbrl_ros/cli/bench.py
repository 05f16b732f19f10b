"""`ssm-mbrl bench ...`: benchmarks that write measured numbers as JSON."""
from __future__ import annotations

import argparse

from ssm_mbrl_ros.core.config import finite_float


def _bench(bsub, name: str, help: str, description: str) -> argparse.ArgumentParser:
    """One `bench NAME` subparser with the shared --json option."""
    p = bsub.add_parser(name, help=help, description=description,
                        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--json", dest="json_path", default=None, help="write the result JSON here")
    return p


def add_parser(sub) -> argparse.ArgumentParser:
    """Register `bench` and its benchmark subcommands."""
    p = sub.add_parser("bench", help="run a benchmark and write JSON (sim, wm, replay, policy, fc, ros, jitter)",
                       description="Benchmarks; each prints a summary and writes JSON with --json.")
    bsub = p.add_subparsers(dest="bench", metavar="BENCH", required=True)
    s = _bench(bsub, "sim", "simulator throughput (env-steps/s) over batch sizes",
               "Time the full vector env step (RK4 physics at the task's physics rate under its control "
               "rate, task observation/reward/termination, autoreset) for several numbers of parallel "
               "drones, and report the best env-steps/s.")
    s.add_argument("--task", default="hover", help="task to step (hover, figure8, racing, ...)")
    s.add_argument("--envs", default="1024,4096,16384,65536,262144",
                   help="comma-separated numbers of parallel drones")
    s.add_argument("--min-env-steps", type=int, default=2_000_000,
                   help="env-steps timed per batch size (steps = this / num_envs, at least 20)")
    s.add_argument("--device", default="cpu", help="torch device: cpu, cuda or auto")
    s.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="task config override, e.g. --set control_hz=100 (docs/benchmarks.md's table: hover's policy now "
                        "runs at 25 Hz, i.e. 20 physics substeps per env step instead of 5)")
    s.add_argument("--compile", default=True, action=argparse.BooleanOptionalAction,
                   help="torch.compile the physics substeps (inductor; 20-45 s compile per batch size)")
    s.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    s.set_defaults(run=run_sim)
    r = _bench(bsub, "replay", "rosbag2 MCAP ingest (Odometry msgs/s into training arrays) and batch sampling time",
               "Write synthetic episodes to the MCAP episode store, time reading them back into training "
               "arrays (bulk CDR decoding) against rosbags' generic reader, and time sampling "
               "(batch x length) sequences from the replay.")
    r.add_argument("--msgs", type=int, default=200_000, help="Odometry messages to write and ingest")
    r.add_argument("--batch", type=int, default=16, help="sequences per sampled batch")
    r.add_argument("--length", type=int, default=64, help="steps per sampled sequence")
    r.set_defaults(run=run_replay)
    w = _bench(bsub, "wm", "world-model update time: S5WM (parallel scan) vs RSSM (step loop) at equal sizes",
               "Time one world-model update (forward, backward, Adam step) for the S5 world model and the "
               "DreamerV3 RSSM at equal latent sizes in the same run, plus imagination (horizon 15 from "
               "every posterior state) and memory saved for backward.")
    w.add_argument("--preset", default="small", help="world-model size preset: tiny, small or default")
    w.add_argument("--batch", type=int, default=16, help="sequences per batch")
    w.add_argument("--lengths", default="64,256", help="comma-separated sequence lengths T")
    w.add_argument("--repeats", type=int, default=5, help="timed repeats per case (fastest reported)")
    w.add_argument("--device", default="cpu", help="torch device: cpu, cuda or auto")
    w.add_argument("--compile", default="off", metavar="MODE",
                   help="also time the world-model update and the full trainer update under torch.compile in this "
                        "mode (default, reduce-overhead: CUDA graphs on a GPU, max-autotune), as `ssm-mbrl train "
                        "--set compile=MODE` runs them; off: eager only")
    w.set_defaults(run=run_wm)
    pol = _bench(bsub, "policy", "ONNX policy step latency at batch 1 (one thread) and throughput at a large batch",
                 "Load an exported policy (.onnx + sidecar JSON) through the torch-free runtime and time "
                 "--steps single steps at batch 1 on one thread (p50/p99/max in us), then steps/s at "
                 "--batch-big.")
    pol.add_argument("--policy", default="hover",
                     help="exported .onnx (sidecar JSON beside it), or the name of a shipped model (models/NAME.onnx)")
    pol.add_argument("--steps", type=int, default=10000, help="timed batch-1 steps")
    pol.add_argument("--batch-big", type=int, default=4096, help="batch size of the throughput measurement")
    pol.set_defaults(run=run_policy)
    f = _bench(bsub, "fc", "hover + failsafe reaction times through fc-sim over MAVLink/UDP",
               "Fly the geometric controller through the MAVLink link against fc-sim (real UDP on 127.0.0.1) "
               "at 100 Hz: hover position RMSE and loop timing, then trigger every failsafe once and time "
               "the reaction. Exit code 1 if a failsafe misses its period.")
    f.add_argument("--duration", type=finite_float, default=60.0, help="offboard hover time, s")
    f.add_argument("--settle", type=finite_float, default=5.0, help="seconds after OFFBOARD excluded from the RMSE")
    f.add_argument("--target", default="0,0,1.5", help="hover position x,y,z ENU m")
    f.add_argument("--vehicle", default="agile5", help="vehicle name")
    f.add_argument("--no-failsafes", action="store_true", help="skip the failsafe reaction flights")
    f.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="fc-sim config override, e.g. --set wind_mps=[2,1,0] --set loss=0.2 (repeatable)")
    f.set_defaults(run=run_fc)
    r = _bench(bsub, "ros", "odom -> cmd_ctbr latency through the policy node over DDS at 250 Hz",
               "Publish nav_msgs/Odometry at --rate Hz to the policy node (a separate process, as deployed) and "
               "time each answering cmd_ctbr (same stamp) for --duration s: latency p50/p99/max and missed "
               "cycles (no answer before the next odometry). Needs rclpy (ROS 2 install or make venv-ros).")
    r.add_argument("--policy", default="hover", help="exported .onnx or shipped model name")
    r.add_argument("--rate", type=finite_float, default=250.0, help="odometry rate, Hz")
    r.add_argument("--duration", type=finite_float, default=60.0, help="measured seconds (after a 3 s warm-up)")
    r.add_argument("--executor", choices=["events", "single"], default="events",
                   help="rclpy executor of the policy node and the bench node: events (C++ EventsExecutor) or single "
                        "(SingleThreadedExecutor, the wait-set executor)")
    r.add_argument("--realtime-priority", type=int, default=0, metavar="N",
                   help="SCHED_FIFO priority 1-99 for the policy node and the bench node (needs CAP_SYS_NICE; "
                        "0 = the default scheduler)")
    r.set_defaults(run=run_ros)
    j = _bench(bsub, "jitter", "wake-up lateness of a bare periodic loop (the host's share of a missed deadline)",
               "Sleep to every 1/--rate deadline for --duration s with no work, no ROS and no policy, and record how "
               "late each wake-up is: lateness p50/p99/max and stalls (a wake-up a whole period late). A stall here "
               "is the host's (scheduler, other processes, a hypervisor): `bench ros` cannot have fewer missed "
               "cycles than this loop has stalls on the same machine.")
    j.add_argument("--rate", type=finite_float, default=250.0, help="loop rate, Hz")
    j.add_argument("--duration", type=finite_float, default=60.0, help="measured seconds")
    j.add_argument("--realtime-priority", type=int, default=0, metavar="N",
                   help="SCHED_FIFO priority 1-99 for the loop (needs CAP_SYS_NICE; 0 = the default scheduler)")
    j.set_defaults(run=run_jitter)
    return p


def run_jitter(args) -> int:
    """Run the bare-loop jitter benchmark."""
    from ssm_mbrl_ros.bench.jitter import bench_jitter
    from ssm_mbrl_ros.core.config import ConfigError

    if args.rate <= 0 or args.duration <= 0:
        raise ConfigError("bench jitter: --rate and --duration must be > 0")
    if not 0 <= args.realtime_priority <= 99:
        raise ConfigError(f"bench jitter: --realtime-priority must be in 0..99, got {args.realtime_priority}")
    result = bench_jitter(args.rate, args.duration, args.realtime_priority)
    lat = result["lateness_ms"]
    print(f"wake-up lateness ms: p50 {lat['p50']:.3f}, p99 {lat['p99']:.3f}, max {lat['max']:.3f}; "
          f"stalls (>= one period) {result['stalls']} of {result['cycles']}")
    return _report(result, args.json_path)


def run_ros(args) -> int:
    """Run the ROS latency benchmark."""
    from ssm_mbrl_ros.core.config import ConfigError

    if args.rate <= 0 or args.duration <= 0:
        raise ConfigError("bench ros: --rate and --duration must be > 0")
    if not 0 <= args.realtime_priority <= 99:
        raise ConfigError(f"bench ros: --realtime-priority must be in 0..99, got {args.realtime_priority}")
    try:
        from ssm_mbrl_ros.ros.bench_latency import bench_ros
    except ImportError as exc:
        raise ConfigError(f"bench ros needs rclpy and the message packages (make venv-ros): {exc}") from exc
    try:
        result = bench_ros(args.policy, rate_hz=args.rate, duration_s=args.duration, executor=args.executor,
                           realtime_priority=args.realtime_priority)
    except FileNotFoundError as exc:
        raise ConfigError(str(exc)) from exc
    lat = result["latency_ms"]
    print(f"latency ms: p50 {lat['p50']:.3f}, p99 {lat['p99']:.3f}, max {lat['max']:.3f}; "
          f"missed cycles {result['missed_cycles']} of {result['cycles']}")
    return _report(result, args.json_path)


def run_fc(args) -> int:
    """Run the fc-sim hover + failsafe benchmark (imported here: pymavlink is not needed for --help)."""
    from ssm_mbrl_ros.bench.fc import run

    return run(args)


def run_policy(args) -> int:
    """Run the policy latency benchmark."""
    from ssm_mbrl_ros.bench.policy import bench_policy
    from ssm_mbrl_ros.core.config import ConfigError

    if args.steps < 100 or args.batch_big < 1:
        raise ConfigError("bench policy: need --steps >= 100 and --batch-big >= 1")
    try:
        from ssm_mbrl_ros.runtime.models import find_model

        result = bench_policy(find_model(args.policy), steps=args.steps, batch_big=args.batch_big)
    except (OSError, ValueError) as exc:  # missing file, bad sidecar, checksum or graph mismatch
        raise ConfigError(str(exc)) from exc
    lat = result["latency_us"]
    print(f"batch 1: p50 {lat['p50']:.1f} us, p99 {lat['p99']:.1f} us, max {lat['max']:.1f} us")
    return _report(result, args.json_path)


def run_wm(args) -> int:
    """Run the world-model benchmark."""
    from ssm_mbrl_ros.bench.wm import bench_wm
    from ssm_mbrl_ros.core.io import resolve_device
    from ssm_mbrl_ros.core.config import ConfigError
    from ssm_mbrl_ros.world_models.config import wm_preset

    try:
        lengths = tuple(int(x) for x in args.lengths.split(",") if x.strip())
    except ValueError as exc:
        raise ConfigError(f"--lengths: expected comma-separated integers, got {args.lengths!r}") from exc
    from ssm_mbrl_ros.train.config import COMPILE_MODES

    if args.compile not in COMPILE_MODES:
        raise ConfigError(f"--compile: must be one of {list(COMPILE_MODES)}, got {args.compile!r}")
    result = bench_wm(batch=args.batch, lengths=lengths, cfg=wm_preset(args.preset), repeats=args.repeats,
                      device=resolve_device(args.device), compile_mode=args.compile)
    for t in map(str, lengths):
        print(f"T={t:>4}  world-model update: s5 {result['s5_ms'][t]:8.1f} ms   rssm {result['rssm_ms'][t]:8.1f} ms   "
              f"speedup {result['speedup'][t]:.2f}x;  full update: s5 {result['full_update_ms']['s5'][t]:8.1f} ms   "
              f"rssm {result['full_update_ms']['rssm'][t]:8.1f} ms   speedup {result['full_update_speedup'][t]:.2f}x")
        if args.compile != "off":
            full = result["full_update_compiled_ms"]
            print(f"T={t:>4}  compiled ({args.compile}): world-model update s5 {result['s5_compiled_ms'][t]:8.1f} ms  "
                  f"rssm {result['rssm_compiled_ms'][t]:8.1f} ms;  full update s5 {full['s5'][t]:8.1f} ms  "
                  f"rssm {full['rssm'][t]:8.1f} ms   speedup {result['full_update_compiled_speedup'][t]:.2f}x")
    return _report(result, args.json_path)


def _report(result: dict, json_path: str | None) -> int:
    """Print a flat summary of a bench result and write its JSON."""
    from ssm_mbrl_ros.core.io import write_json

    for key, value in result.items():
        if not isinstance(value, (dict, list)):
            if isinstance(value, float):
                value = f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.4g}"
            print(f"{key:<28} {value}")
    if json_path:
        print(f"wrote {write_json(json_path, result)}")
    return 0


def run_replay(args) -> int:
    """Run the replay (MCAP ingest + sampling) benchmark."""
    from ssm_mbrl_ros.bench.replay import bench_replay
    from ssm_mbrl_ros.core.config import ConfigError

    if args.msgs < 1000 or args.batch < 1 or args.length < 2:
        raise ConfigError("bench replay: need --msgs >= 1000, --batch >= 1, --length >= 2")
    return _report(bench_replay(num_msgs=args.msgs, batch=args.batch, length=args.length), args.json_path)


def run_sim(args) -> int:
    """Run the simulator benchmark."""
    from ssm_mbrl_ros.bench.sim import bench_sim
    from ssm_mbrl_ros.core.io import resolve_device, write_json
    from ssm_mbrl_ros.core.config import ConfigError

    try:
        batches = [int(x) for x in args.envs.split(",") if x.strip()]
    except ValueError as exc:
        raise ConfigError(f"--envs: expected comma-separated integers, got {args.envs!r}") from exc
    if not batches or min(batches) < 1:
        raise ConfigError(f"--envs: need positive integers, got {args.envs!r}")
    result = bench_sim(args.task, batches, args.min_env_steps, resolve_device(args.device), args.compile,
                       progress=not args.no_progress, overrides=args.overrides)
    for n, sps in result["by_envs"].items():
        print(f"num_envs={int(n):>7}  env_steps_per_s={sps:,.0f}")
    print(f"best: {result['env_steps_per_s']:,.0f} env-steps/s at num_envs={result['best_num_envs']} "
          f"({result['physics_hz']:.0f} Hz physics, {result['control_hz']:.0f} Hz control)")
    if args.json_path:
        print(f"wrote {write_json(args.json_path, result)}")
    return 0
