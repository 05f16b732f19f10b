"""`ssm-mbrl evaluate`: fly a controller on a task in the batched simulator; print metrics, write JSON + PNG."""
from __future__ import annotations

import argparse


def add_parser(sub) -> argparse.ArgumentParser:
    """Register the evaluate subcommand."""
    p = sub.add_parser(
        "evaluate",
        help="evaluate a controller on a task in the simulator (metrics, JSON, trajectory PNG)",
        description=(
            "Run EPISODES episodes in parallel (one per simulated drone) and report success rate, "
            "position RMSE to the reference, crash rate and lap times (racing). Writes the metrics "
            "as JSON with --json and a PNG of recorded 3-D trajectories against the reference."
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--task", default=None,
                   help="task name: hover, circle, figure8, racing, or a *_partial variant "
                        "(default: the --policy sidecar's task, else hover)")
    p.add_argument("--policy", default=None, metavar="MODEL.onnx",
                   help="fly an exported policy (.onnx with its .json sidecar, or a shipped model name such as hover) "
                        "through onnxruntime instead of a classical --controller")
    p.add_argument("--controller", default="geometric",
                   help="classical controller: geometric (SE(3) position control -> CTBR), geometric_pd (the same "
                        "without its position-error integral: what a memoryless policy can reach under wind and "
                        "parameter randomisation), geometric_priv (geometric_pd plus the true wind drag and "
                        "thrust/mass mismatch as feed-forward: the privileged expert) or hover (open loop)")
    p.add_argument("--vehicle", default=None,
                   help="vehicle name (config/vehicles/NAME.yaml) or a YAML path (default: the --policy sidecar's "
                        "vehicle, else agile5)")
    p.add_argument("--episodes", type=int, default=16, help="number of episodes (= parallel simulated drones)")
    p.add_argument("--seed", type=int, default=0, help="seed for resets, randomisation and sensor noise")
    p.add_argument("--device", default="cpu", help="torch device: cpu, cuda, cuda:1, or auto")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a task config value, e.g. --set episode_length_s=20 (repeatable); with --policy, on "
                        "top of the task definition in its sidecar (control rate, reward, training overrides)")
    p.add_argument("--json", dest="json_path", default=None, help="write the metrics JSON here")
    p.add_argument("--plot", dest="plot_path", default=None,
                   help="write the trajectory PNG here (default: next to --json, else none)")
    p.add_argument("--record", type=int, default=3, help="number of episodes drawn in the PNG")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    p.set_defaults(run=run)
    return p


def run(args) -> int:
    """Evaluate and report; returns 0 on success."""
    import torch

    from ssm_mbrl_ros.core.io import resolve_device, write_json
    from ssm_mbrl_ros.core.config import ConfigError
    from ssm_mbrl_ros.control.experts import make_agent
    from ssm_mbrl_ros.evaluation.agents import OnnxPolicyAgent
    from ssm_mbrl_ros.evaluation.plots import plot_trajectories
    from ssm_mbrl_ros.evaluation.rollout import run_episodes
    from ssm_mbrl_ros.sim.env import make_env

    if args.episodes < 1:
        raise ConfigError(f"--episodes must be >= 1, got {args.episodes}")
    sidecar = {}
    if args.policy:
        from ssm_mbrl_ros.runtime.sidecar import SidecarError, load_sidecar

        from ssm_mbrl_ros.runtime.models import find_model

        try:
            args.policy = str(find_model(args.policy))
            sidecar = load_sidecar(args.policy)
        except (SidecarError, FileNotFoundError) as e:
            raise ConfigError(f"--policy: {e}") from e
    if sidecar:
        from ssm_mbrl_ros.runtime.sidecar import task_overrides_of

        args.overrides = task_overrides_of(sidecar) + list(args.overrides)
    args.task = args.task or sidecar.get("task", "hover")
    args.vehicle = args.vehicle or sidecar.get("vehicle", "agile5")
    env = make_env(args.task, args.episodes, vehicle=args.vehicle, device=resolve_device(args.device),
                   dtype=torch.float32, seed=args.seed, overrides=args.overrides)
    if args.policy:
        from ssm_mbrl_ros.runtime.policy import PolicyLoadError

        try:
            agent = OnnxPolicyAgent(env, args.policy)
        except (PolicyLoadError, FileNotFoundError) as e:
            raise ConfigError(f"--policy: {e}") from e
        args.controller = f"policy:{args.policy}"
    else:
        agent = make_agent(args.controller, env)
    result = run_episodes(env, agent, seed=args.seed, record=args.record, progress=not args.no_progress)
    metrics = {**result.metrics(), "controller": args.controller, "vehicle": args.vehicle, "seed": args.seed,
               "task_overrides": list(args.overrides)}
    if args.policy and agent.surprise:
        metrics["mean_surprise_nats"] = round(sum(agent.surprise) / len(agent.surprise), 6)
    width = max(len(k) for k in metrics)
    for key, value in metrics.items():
        print(f"{key:<{width}}  {value}")
    plot_path = args.plot_path
    if plot_path is None and args.json_path:
        plot_path = str(args.json_path).rsplit(".", 1)[0] + ".png"
    if args.json_path:
        print(f"wrote {write_json(args.json_path, metrics)}")
    if plot_path:
        gates = env.task.gates.corners() if hasattr(env.task, "gates") else None
        from ssm_mbrl_ros.sim.tasks.hover import HoverTask

        # a hover task's "reference path" is every env's setpoint: draw each episode's own instead
        ref_path = None if isinstance(env.task, HoverTask) else env.task.reference_path()
        out = plot_trajectories(plot_path, result.trajectories, ref_path,
                                f"{args.task} / {args.controller} / {args.vehicle}", gate_corners=gates, metrics=metrics)
        print(f"wrote {out}")
    env.close()
    return 0
