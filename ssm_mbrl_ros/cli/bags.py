"""`ssm-mbrl bags info DIR`: what a directory of rosbag2 bags holds."""
from __future__ import annotations

import argparse


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
    i.add_argument("--rate-hz", type=float, default=None, help="resampling rate, Hz (default: the bag's control_hz, else 100)")
    i.add_argument("--gap-s", type=float, default=0.1, help="odometry gap that splits an episode, s")
    i.add_argument("--thrust-max-mps2", type=float, default=None,
                   help="vehicle max collective thrust, m/s^2, to scale normalised thrust (px4/mavros commands)")
    i.add_argument("--json", dest="json_path", default=None, help="also write the summary as JSON here")
    i.set_defaults(run=run_info)
    return p


def run_info(args) -> int:
    """Print the summary of each DIR; exit 2 when a DIR does not exist."""
    from pathlib import Path

    from ssm_mbrl_ros.cli.common import write_json
    from ssm_mbrl_ros.core.config import ConfigError
    from ssm_mbrl_ros.replay.bag_info import bags_info, format_bags_info
    from ssm_mbrl_ros.replay.bagread import TopicNames
    from ssm_mbrl_ros.replay.dataset import AlignConfig

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
    return 0
