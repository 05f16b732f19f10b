"""`ssm-mbrl study`: run a learning study (variants x seeds, equal budgets), resumable, and summarise it."""
from __future__ import annotations

import argparse


def add_parser(sub) -> argparse.ArgumentParser:
    """Register the study subcommand."""
    p = sub.add_parser(
        "study", help="train several variants x seeds under equal budgets and draw their learning curves",
        description=("Run every (variant, seed) of a study file as its own `ssm-mbrl train` process, "
                     "score each run's best.onnx on the file's final_episodes, and write OUT/study.json, "
                     "OUT/study.png (seed bands of return, success, episode length and final distance against "
                     "env steps and wall-clock) and OUT/study.md (table). Running the same command again resumes: "
                     "finished runs are kept, interrupted ones continue from their checkpoint. Shipped studies: "
                     "config/studies/*.yaml (pass the name or a path)."),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("study", help="study name (config/studies/NAME.yaml) or path to a study YAML")
    p.add_argument("--out", default=None, help="study directory (default: runs/study-NAME)")
    p.add_argument("--jobs", type=int, default=1,
                   help="runs trained at once; give each run threads=1 in the study file and use at most the "
                        "number of cores, or the runs' budgets buy less than they would alone")
    p.add_argument("--seeds", type=int, nargs="+", default=None, help="replace the file's seeds")
    p.add_argument("--minutes", type=float, default=None, help="replace the file's per-run wall-clock budget")
    p.add_argument("--report-only", action="store_true", help="train nothing: summarise the runs found in --out")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    p.set_defaults(run=run)
    return p


def resolve_study_path(name_or_path: str):
    """A study YAML path, or config/studies/NAME.yaml from the source tree or the package share."""
    from ssm_mbrl_ros.core.config import resolve_shipped_config

    return resolve_shipped_config("studies", name_or_path, "study", "studies")


def run(args) -> int:
    """Train what is left of the study, then write its report."""
    from pathlib import Path

    from ssm_mbrl_ros.core.config import ConfigError
    from ssm_mbrl_ros.train.study import load_study, run_state, run_study
    from ssm_mbrl_ros.train.study_report import write_report

    if args.jobs < 1:
        raise ConfigError(f"--jobs: must be >= 1, got {args.jobs}")
    overrides = {"minutes": args.minutes} if args.minutes is not None else {}
    spec = load_study(resolve_study_path(args.study), args.seeds, overrides)
    out = Path(args.out or f"runs/study-{spec.name}")
    states = [run_state(out, v, s) for v, s in spec.runs]
    print(f"study {spec.name}: {spec.description}\n  {len(spec.runs)} runs in {out}: "
          + ", ".join(f"{states.count(k)} {k}" for k in ("done", "resume", "partial", "new") if states.count(k)))
    if not args.report_only:
        try:
            run_study(spec, out, args.jobs, progress=not args.no_progress)
        except RuntimeError as exc:
            print(f"ssm-mbrl study: {exc}")
            return 1
    json_path, png, table = write_report(spec, out)
    print(table)
    print(f"wrote {json_path}, {png} and {out / 'study.md'}")
    return 0
