"""`ssm-mbrl ship`: copy a training run's best policy into models/ with a model card (evaluated, not copied)."""
from __future__ import annotations

import argparse


def add_parser(sub) -> argparse.ArgumentParser:
    """Register the ship subcommand."""
    p = sub.add_parser(
        "ship", help="publish a run's policy to models/NAME.onnx with its sidecar and a model card",
        description=("Copy RUN/best.onnx (or --which policy) and its sidecar to MODELS/NAME.onnx/.json, evaluate it "
                     "with the same closed-loop simulator as `ssm-mbrl evaluate` (EPISODES episodes, seed SEED), "
                     "and write MODELS/NAME.md: how it was trained (command, env steps, wall-clock) and the "
                     "measured metrics, plus NAME_eval.json and the trajectory PNG."),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--run", dest="run_dir", required=True, help="training log directory (holds best.onnx, config.json, summary.json)")
    p.add_argument("--name", required=True, help="model name, e.g. hover or figure8")
    p.add_argument("--which", default="best", choices=["best", "policy"], help="best evaluated or latest policy")
    p.add_argument("--models", default="models", help="output directory")
    p.add_argument("--episodes", type=int, default=100, help="evaluation episodes for the card")
    p.add_argument("--seed", type=int, default=0, help="evaluation seed")
    p.add_argument("--command", default=None, help="the training command line to record (default: rebuilt from "
                                                      "config.json)")
    p.set_defaults(run=run)
    return p


def run(args) -> int:
    """Copy, evaluate, write the card."""
    import json
    import shutil
    from pathlib import Path

    from ssm_mbrl_ros.cli.main import main as cli_main
    from ssm_mbrl_ros.core.config import ConfigError

    run_dir, out = Path(args.run_dir), Path(args.models)
    src = run_dir / f"{args.which}.onnx"
    if not src.is_file() or not src.with_suffix(".json").is_file():
        raise ConfigError(f"{src} (with its .json sidecar) not found: is {run_dir} a training run?")
    out.mkdir(parents=True, exist_ok=True)
    dst = out / f"{args.name}.onnx"
    shutil.copyfile(src, dst)
    shutil.copyfile(src.with_suffix(".json"), dst.with_suffix(".json"))
    eval_json = out / f"{args.name}_eval.json"
    code = cli_main(["evaluate", "--policy", str(dst), "--episodes", str(args.episodes), "--seed", str(args.seed),
                     "--json", str(eval_json), "--no-progress"])
    if code:
        return code
    metrics = json.loads(eval_json.read_text())
    side = json.loads(dst.with_suffix(".json").read_text())
    tc = side.get("training_config", {})
    train = tc.get("train", {})
    summary = json.loads((run_dir / "summary.json").read_text()) if (run_dir / "summary.json").is_file() else {}
    command = args.command or ("ssm-mbrl train " + " ".join(f"--set {k}={json.dumps(v)}" for k, v in train.items()))
    rows = "\n".join(f"| {k} | {v} |" for k, v in metrics.items() if k not in ("controller",))
    card = f"""# {args.name}: {side['task']} on {side['vehicle']} ({side.get('world_model', '?')} world model)

Exported policy graph (encoder + posterior + one-step sequence filter + actor), run with
`ssm_mbrl_ros.runtime.OnnxPolicy` (onnxruntime + numpy). Inputs obs ({side['obs_layout'].get('dim')}),
state ({side['state_size']}), is_first; outputs normalised CTBR action, state_out, surprise (nats).
Control rate {side['control_hz']} Hz. SHA-256 `{side['onnx_sha256']}`.

## How it was trained
- command: `{command}`
- env steps at export: {tc.get('env_steps')}, training wall-clock at export: {tc.get('wall_s')} s
  (whole run: {summary.get('env_steps')} env steps, {summary.get('wall_s')} s, {summary.get('updates')} updates)
- world model: {train.get('wm')} / preset {train.get('preset')}; expert guidance: {train.get("expert")};
  seed {train.get('seed')}; training drones' task overrides (curriculum, shaping; evaluation uses the task as
  defined): {tc.get('collect_overrides', train.get('collect_overrides') or [])}

## Evaluation (closed loop, this file through onnxruntime)
`ssm-mbrl evaluate --policy {dst} --episodes {args.episodes} --seed {args.seed} --json {eval_json}`

| metric | value |
|---|---|
{rows}

![trajectories]({eval_json.with_suffix('.png').name})
"""
    dst.with_suffix(".md").write_text(card)
    print(f"wrote {dst}, {dst.with_suffix('.json')}, {dst.with_suffix('.md')}, {eval_json}")
    return 0
