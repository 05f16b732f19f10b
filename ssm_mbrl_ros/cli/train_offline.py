"""`ssm-mbrl train-offline`: train or fine-tune a world model from rosbag2 flight logs, no simulator."""
from __future__ import annotations

import argparse

from ssm_mbrl_ros.core.config import finite_float


def add_parser(sub) -> argparse.ArgumentParser:
    """Register the train-offline subcommand."""
    p = sub.add_parser(
        "train-offline", help="train / fine-tune a world model from rosbag2 bags; report held-out prediction error",
        description=("Read every bag under the --bags directories (rosbag2 MCAP or sqlite3, episode-store chunks, "
                     "nav_msgs/Odometry or px4_msgs/VehicleOdometry + TwistStamped / VehicleRatesSetpoint / "
                     "AttitudeTarget commands), align them to fixed-rate episodes, hold out a fraction of the "
                     "episodes, train the world model on the rest, then report open-loop k-step prediction error "
                     "on the held-out episodes (filter CONTEXT recorded steps, predict k steps from the recorded "
                     "commands only). Writes OUT/world_model.pt, OUT/report.json, OUT/predictions.png, "
                     "OUT/metrics.jsonl. Fine-tune with --init (a world_model.pt or a `train` checkpoint.pt)."),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--bags", nargs="+", required=True, metavar="DIR", help="bag directories / .mcap files / stores")
    p.add_argument("--task", default="hover", help="task the bags were flown for (rewards are recomputed from the "
                                                   "task definition stored in the bag where available)")
    p.add_argument("--out", default="runs/offline", help="output directory")
    p.add_argument("--init", default=None, help="world_model.pt or checkpoint.pt to fine-tune (default: fresh)")
    p.add_argument("--wm", default="s5", help="world model for a fresh start: s5 or rssm")
    p.add_argument("--preset", default="flight", help="size preset for a fresh start: tiny, flight, small, default")
    p.add_argument("--updates", type=int, default=500, help="world-model updates (0 = until --minutes)")
    p.add_argument("--minutes", type=finite_float, default=0.0, help="wall-clock limit in minutes (0 = none)")
    p.add_argument("--batch-size", type=int, default=16, help="sequences per batch")
    p.add_argument("--seq-len", type=int, default=64, help="steps per sequence")
    p.add_argument("--lr", type=finite_float, default=3e-4, help="Adam learning rate")
    p.add_argument("--holdout", type=finite_float, default=0.2, help="fraction of episodes held out for evaluation")
    p.add_argument("--context", type=int, default=16, help="recorded steps filtered before open-loop prediction")
    p.add_argument("--horizons", default="1,5,10,25,50", help="prediction horizons in steps, comma separated")
    p.add_argument("--odom-topic", default="/odom", help="odometry topic")
    p.add_argument("--cmd-topic", default="/cmd_ctbr", help="command topic")
    p.add_argument("--rate-hz", type=finite_float, default=None, help="resampling rate (default: the bag's control_hz, "
                                                                "else 100 Hz)")
    p.add_argument("--thrust-max-mps2", type=finite_float, default=None,
                   help="vehicle max collective thrust, m/s^2 (px4/mavros normalised thrust)")
    p.add_argument("--seed", type=int, default=0, help="split / sampling / init seed")
    p.add_argument("--device", default="cpu", help="torch device (cpu, cuda, auto)")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    p.set_defaults(run=run)
    return p


def run(args) -> int:
    """Load bags, train, evaluate, write outputs."""
    import json
    from pathlib import Path

    import numpy as np
    import torch

    from ssm_mbrl_ros.core.io import resolve_device, write_json
    from ssm_mbrl_ros.core.config import ConfigError, to_dict
    from ssm_mbrl_ros.bags.bag_info import find_bags
    from ssm_mbrl_ros.bags.bagread import TopicNames
    from ssm_mbrl_ros.bags.dataset import AlignConfig, bags_to_dataset
    from ssm_mbrl_ros.sim.tasks import list_tasks
    from ssm_mbrl_ros.train import offline
    from ssm_mbrl_ros.world_models.config import WORLD_MODEL_KINDS, wm_preset

    if args.task not in list_tasks():
        raise ConfigError(f"unknown task {args.task!r}; valid: {list_tasks()}")
    if args.wm not in WORLD_MODEL_KINDS:
        raise ConfigError(f"unknown world model {args.wm!r}; valid: {list(WORLD_MODEL_KINDS)}")
    try:
        horizons = sorted({int(h) for h in args.horizons.split(",")})
    except ValueError as e:
        raise ConfigError(f"--horizons must be comma-separated integers, got {args.horizons!r}") from e
    if not horizons or horizons[0] < 1 or args.context < 1 or args.seq_len < 2 or not 0 < args.holdout < 1:
        raise ConfigError("need horizons >= 1, --context >= 1, --seq-len >= 2 and 0 < --holdout < 1")
    paths = []
    for d in args.bags:
        if not Path(d).exists():
            raise ConfigError(f"--bags: {d}: no such file or directory")
        paths += find_bags(d)
    if not paths:
        raise ConfigError(f"--bags: no rosbag2 bags under {args.bags}")
    data, infos, report = bags_to_dataset(paths, TopicNames(odom=args.odom_topic, cmd=args.cmd_topic),
                                          AlignConfig(rate_hz=args.rate_hz), args.thrust_max_mps2)
    print(report.summary())
    if len(data["is_first"]) == 0:
        raise ConfigError(f"no usable episodes in {len(paths)} bag(s); see the problems above")
    train, held = offline.split_episodes(data, args.holdout, args.seed)
    if len(train["is_first"]) < args.seq_len or len(held["is_first"]) == 0:
        raise ConfigError(f"too little data: {len(train['is_first'])} training steps (need >= --seq-len "
                          f"{args.seq_len}) and {len(held['is_first'])} held-out steps")
    torch.manual_seed(args.seed)
    device = resolve_device(args.device)
    privileged = bool(data["privileged_valid"].any())
    priv_dim = data["privileged"].shape[1] if privileged else 0
    wm = offline.build_world_model(wm_preset(args.preset, kind=args.wm), args.init, data["obs"].shape[1],
                                   priv_dim, device)
    if privileged and wm.priv_dim != priv_dim:
        privileged = False  # a fine-tuned model without a privileged head simply ignores it
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    control_hz = float(infos[0].get("control_hz", 100.0)) if infos else 100.0
    before = offline.open_loop_eval(wm, held, args.context, horizons, control_hz=control_hz, seed=args.seed)
    log_file = open(out / "metrics.jsonl", "a")

    def log(rec):
        log_file.write(json.dumps(rec) + "\n")

    stats = offline.train_offline(wm, train, updates=args.updates, minutes=args.minutes, batch=args.batch_size,
                                  seq_len=args.seq_len, lr=args.lr, privileged=privileged, seed=args.seed,
                                  progress=not args.no_progress, log=log)
    log_file.close()
    after = offline.open_loop_eval(wm, held, args.context, horizons, control_hz=control_hz, seed=args.seed)
    torch.save({"arch": wm.arch(), "world_model_state": wm.state_dict(), "bags": [str(p) for p in paths],
                "task": args.task, "updates": stats["updates"]}, out / "world_model.pt")
    rep = {"bags": len(paths), "episodes": int(data["is_first"].sum()), "train_steps": len(train["is_first"]),
           "heldout_steps": len(held["is_first"]), "updates": stats["updates"], "wall_s": round(stats["wall_s"], 2),
           "final_loss": stats.get("loss"), "context": args.context, "world_model": to_dict(wm.cfg),
           "before_training": before.to_dict(), "heldout": after.to_dict()}
    write_json(out / "report.json", rep)
    offline.plot_predictions(after, out / "predictions.png",
                             f"held-out open-loop prediction ({args.wm}, {stats['updates']} updates)")
    print("held-out open-loop RMSE   k: " + "  ".join(f"{k:>7}" for k in horizons))
    for name, before_d, after_d in (("position m", before.pos_rmse_m, after.pos_rmse_m),
                                    ("velocity m/s", before.vel_rmse_mps, after.vel_rmse_mps)):
        print(f"  {name:<14} before: " + "  ".join(f"{before_d[k]:7.3f}" for k in horizons))
        print(f"  {name:<14} after:  " + "  ".join(f"{after_d[k]:7.3f}" for k in horizons))
    print(f"wrote {out / 'world_model.pt'}, {out / 'report.json'}, {out / 'predictions.png'}")
    return 0 if np.isfinite(stats.get("loss", np.nan)) else 1
