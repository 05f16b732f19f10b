"""`ssm-mbrl train`: online model-based training in the batched simulator (S5WM or RSSM)."""
from __future__ import annotations

import argparse

# named flags -> TrainConfig fields (flags left unset keep the config file's / default value)
FLAGS = {"task": str, "wm": str, "preset": str, "minutes": float, "max_env_steps": int, "num_envs": int,
         "seed": int, "device": str, "train_ratio": float, "target_success": float, "eval_every_min": float,
         "vehicle": str}


def add_parser(sub) -> argparse.ArgumentParser:
    """Register the train subcommand."""
    from ssm_mbrl_ros.core.config import field_help
    from ssm_mbrl_ros.train.config import TrainConfig

    helps = field_help(TrainConfig)
    defaults = TrainConfig()
    p = sub.add_parser(
        "train",
        help="train a world model + policy in simulation (S5WM or the RSSM baseline)",
        description=(
            "Dreamer-style training: vectorised collection in the batched simulator, sequence replay, "
            "world-model updates (S5WM in one parallel scan, or the RSSM baseline), actor-critic in "
            "imagination. Every evaluation exports the policy to LOGDIR/policy.onnx (+ sidecar) and flies "
            "it through onnxruntime. LOGDIR also receives checkpoint.pt + its replay-N.npz (resume with "
            "--resume), metrics.jsonl, TensorBoard scalars in tb/, curves.png and summary.json. "
            "Config precedence: defaults < --config YAML < flags < --set. Multi-GPU: "
            "`torchrun --nproc_per_node N -m ssm_mbrl_ros.cli train ...`."
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--logdir", default=None, help="output directory (default: runs/TASK-WM-YYYYmmdd-HHMMSS)")
    p.add_argument("--resume", action="store_true",
                   help="continue the run in --logdir from its checkpoint and replay (budgets may change, "
                        "the architecture may not)")
    p.add_argument("--config", default=None, help="YAML file with TrainConfig fields")
    for name, typ in FLAGS.items():
        p.add_argument("--" + name.replace("_", "-"), dest=name, type=typ, default=None,
                       help=f"{helps[name]} (default {getattr(defaults, name)!r})")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override any TrainConfig field, e.g. --set batch_size=32 --set world_model.deter=64 "
                        "(fields: " + ", ".join(sorted(helps)) + ")")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    p.set_defaults(run=run)
    return p


def resolve_config(args):
    """TrainConfig from defaults < --config < flags < --set (type-checked, errors name the key)."""
    from ssm_mbrl_ros.train.config import resolve_train_config

    return resolve_train_config(args.config, args.overrides, {name: getattr(args, name, None) for name in FLAGS})


def run(args) -> int:
    """Train (or resume) and print where everything went."""
    import time
    from pathlib import Path

    from ssm_mbrl_ros.core.config import ConfigError, from_dict
    from ssm_mbrl_ros.train.checkpoint import CHECKPOINT
    from ssm_mbrl_ros.train.config import TrainConfig
    from ssm_mbrl_ros.train.trainer import Trainer

    if args.resume:
        if not args.logdir:
            raise ConfigError("--resume needs --logdir DIR (the run to continue)")
        ckpt = Path(args.logdir) / CHECKPOINT
        if not ckpt.is_file():
            raise ConfigError(f"--resume: no {CHECKPOINT} in {args.logdir}")
        if not args.config:  # the checkpoint's own config, then this command's flags and --set on top
            from ssm_mbrl_ros.train.checkpoint import load_torch_file

            saved = load_torch_file(ckpt, "cpu", "--resume").get("config")
            if not isinstance(saved, dict):
                raise ConfigError(f"--resume: {ckpt} is not a training checkpoint")
            cfg = resolve_config(args)
            given = {k for k in FLAGS if getattr(args, k, None) is not None}
            given |= {o.split("=", 1)[0].split(".")[0] for o in args.overrides}
            from ssm_mbrl_ros.core.config import to_dict

            merged = {**saved, **{k: v for k, v in to_dict(cfg).items() if k in given}}
            cfg = from_dict(TrainConfig, merged, str(ckpt))
        else:
            cfg = resolve_config(args)
    else:
        cfg = resolve_config(args)
    logdir = Path(args.logdir or f"runs/{cfg.task}-{cfg.wm}-{time.strftime('%Y%m%d-%H%M%S')}")
    if not args.resume and (logdir / CHECKPOINT).exists():
        raise ConfigError(f"{logdir} already holds a run ({CHECKPOINT}); pass --resume to continue it or choose "
                          f"another --logdir")
    trainer = Trainer(cfg, logdir, resume=args.resume, progress=not args.no_progress)
    if trainer.main:
        print(f"training {cfg.task} with {cfg.wm} ({cfg.preset}) on {trainer.device}, logdir {logdir}")
    summary = trainer.run()
    if trainer.main:
        fe = summary.get("final_eval") or {}
        print(f"done: {summary.get('env_steps')} env steps, {summary.get('updates')} updates, "
              f"{summary.get('wall_s')} s; final eval success {fe.get('success_rate')}, "
              f"rmse {fe.get('pos_rmse_m')} m; solved: {summary.get('solved')}")
        print(f"policy: {logdir / 'policy.onnx'} (best: {logdir / 'best.onnx'}); curves: {logdir / 'curves.png'}")
        print(f"score it: ssm-mbrl evaluate --policy {logdir / 'best.onnx'} --episodes 100 --json "
              f"{logdir / 'eval.json'}")
    return 130 if summary.get("interrupted") else 0
