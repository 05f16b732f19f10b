"""`ssm-mbrl bags info DIR`: what a directory of rosbag2 bags holds."""
from __future__ import annotations

import argparse
import sys

from ssm_mbrl_ros.core.config import finite_float


def add_parser(sub) -> argparse.ArgumentParser:
    """Register `bags` and its subcommands."""
    p = sub.add_parser("bags", help="inspect rosbag2 bags / the episode store (info)",
                       description="Work with rosbag2 bags (MCAP or sqlite3) and the episode store.")
    bsub = p.add_subparsers(dest="bags_command", metavar="SUBCOMMAND", required=True)
    i = bsub.add_parser(
        "info", help="topics, message counts, duration, usable episodes and problems per bag",
        description=("Summarise every bag under DIR (rosbag2 directories and bare .mcap files): topics with "
                     "types and counts, duration, the episodes usable for training and every problem found "
                     "(unreadable or truncated files, missing topics, out-of-order or duplicate stamps, clock "
                     "jumps, gaps, unknown rewards, partial chunks from an interrupted writer)."),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    i.add_argument("dirs", nargs="+", metavar="DIR", help="bag directory, .mcap file, or a directory of them")
    i.add_argument("--odom-topic", default="/odom", help="odometry topic (nav_msgs/Odometry or px4_msgs/VehicleOdometry)")
    i.add_argument("--cmd-topic", default="/cmd_ctbr",
                   help="command topic (geometry_msgs/TwistStamped CTBR, px4_msgs/VehicleRatesSetpoint, mavros_msgs/AttitudeTarget)")
    i.add_argument("--rate-hz", type=finite_float, default=None, help="resampling rate, Hz (default: the bag's control_hz, else 100)")
    i.add_argument("--gap-s", type=finite_float, default=0.1, help="odometry gap that splits an episode, s")
    i.add_argument("--thrust-max-mps2", type=finite_float, default=None,
                   help="vehicle max collective thrust, m/s^2, to scale normalised thrust (px4/mavros commands)")
    i.add_argument("--json", dest="json_path", default=None, help="also write the summary as JSON here")
    i.set_defaults(run=run_info)
    r = bsub.add_parser(
        "record", help="fly a controller or policy in the simulator and write the episodes to an episode store",
        description=("Simulated flight logs for offline training and tests: EPISODES episodes (in parallel) of a "
                     "classical controller or an exported policy, written as rosbag2 MCAP chunks (odometry, "
                     "CTBR commands, privileged state, episode info) to OUT."),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    r.add_argument("--out", required=True, help="episode store directory (created)")
    r.add_argument("--task", default="hover", help="task name")
    r.add_argument("--controller", default="geometric", help="classical controller (geometric, hover)")
    r.add_argument("--policy", default=None, help="exported .onnx policy to fly instead of --controller")
    r.add_argument("--episodes", type=int, default=16, help="episodes (parallel drones)")
    r.add_argument("--episodes-per-chunk", type=int, default=8, help="episodes per MCAP chunk")
    r.add_argument("--action-noise", type=finite_float, default=0.0,
                   help="std of normalised-action noise added to the controller (richer dynamics coverage)")
    r.add_argument("--seed", type=int, default=0, help="seed")
    r.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="task config override, e.g. --set episode_length_s=5")
    r.set_defaults(run=run_record)
    return p


def run_record(args) -> int:
    """Record one episode per env into the store."""
    import torch

    from ssm_mbrl_ros.core.config import ConfigError
    from ssm_mbrl_ros.control.experts import make_agent
    from ssm_mbrl_ros.evaluation.agents import OnnxPolicyAgent
    from ssm_mbrl_ros.bags.recorder import EnvRecorder
    from ssm_mbrl_ros.bags.store import EpisodeStore
    from ssm_mbrl_ros.sim.env import make_env

    if args.episodes < 1:
        raise ConfigError(f"--episodes must be >= 1, got {args.episodes}")
    overrides = list(args.overrides)
    if args.policy:  # the task definition the policy was trained with (control rate, reward), then --set
        from ssm_mbrl_ros.runtime.models import find_model
        from ssm_mbrl_ros.runtime.sidecar import load_sidecar, task_overrides_of

        args.policy = str(find_model(args.policy))
        overrides = task_overrides_of(load_sidecar(args.policy)) + overrides
    env = make_env(args.task, args.episodes, seed=args.seed, overrides=overrides)
    agent = OnnxPolicyAgent(env, args.policy) if args.policy else make_agent(args.controller, env)
    store = EpisodeStore(args.out)
    rec = EnvRecorder(store, env, seed=args.seed, episodes_per_chunk=args.episodes_per_chunk)
    scale, offset = (torch.as_tensor(x, dtype=torch.float32) for x in env.action_spec.scale_offset())
    gen = torch.Generator().manual_seed(args.seed)
    obs, info = env.reset(seed=args.seed)
    agent.reset(None)
    rec.begin(info)
    finished = torch.zeros(env.num_envs, dtype=torch.bool)
    for _ in range(env.max_episode_steps + 1):
        a = agent.act(obs, env)
        ctbr = a if agent.physical else a * scale + offset
        if args.action_noise:
            ctbr = ctbr + args.action_noise * scale * torch.randn(ctbr.shape, generator=gen)
        obs, _, term, trunc, info = env.step_physical(ctbr)
        rec.step(ctbr, term, trunc, info)
        done = term | trunc
        if bool(done.any()):
            agent.reset(done.nonzero().squeeze(-1))
        finished |= done
        if bool(finished.all()):
            break
    rec.flush()
    print(f"wrote {len(rec.chunks_written)} chunk(s) to {args.out}")
    return 0


def run_info(args) -> int:
    """Print the summary of each DIR; exit 2 when a DIR does not exist, 1 when a DIR holds no readable bag."""
    from pathlib import Path

    from ssm_mbrl_ros.core.io import write_json
    from ssm_mbrl_ros.core.config import ConfigError
    from ssm_mbrl_ros.bags.bag_info import bags_info, format_bags_info
    from ssm_mbrl_ros.bags.bagread import TopicNames
    from ssm_mbrl_ros.bags.dataset import AlignConfig

    names = TopicNames(odom=args.odom_topic, cmd=args.cmd_topic)
    align = AlignConfig(rate_hz=args.rate_hz, gap_s=args.gap_s)
    results = []
    for d in args.dirs:
        if not Path(d).exists():
            raise ConfigError(f"bags info: {d}: no such file or directory")
        info = bags_info(d, names, align, args.thrust_max_mps2)
        print(format_bags_info(info))
        results.append(info)
    if args.json_path:
        print(f"wrote {write_json(args.json_path, results if len(results) > 1 else results[0])}")
    unreadable = [r["root"] for r in results if not any(b["readable"] for b in r["bags"])]
    if unreadable:
        print(f"bags info: no readable bag in {', '.join(unreadable)}", file=sys.stderr)
        return 1
    return 0
