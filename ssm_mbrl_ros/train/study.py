"""Learning studies: several training variants x seeds under the same budgets, resumable, summarised as curves.

A study file (config/studies/*.yaml) names the runs:

    description: S5WM against the RSSM on hover            # one line, printed and kept in the JSON
    train: {task: hover, minutes: 10, threads: 1}           # TrainConfig fields every run shares (the budgets)
    seeds: [0, 1, 2]
    variants:                                              # name -> TrainConfig fields of that variant
      s5: {wm: s5}
      rssm: {wm: rssm}
    final_episodes: 100                                    # each run's best.onnx is scored on this many episodes

Each run is `ssm-mbrl train` in its own process, written to OUT/VARIANT-sSEED (log in OUT/VARIANT-sSEED.log). A run
that finished has OUT/VARIANT-sSEED/study_run.json; one that was interrupted after its first checkpoint continues with
`--resume` (its wall-clock budget counts the time already trained); one interrupted before it is moved aside and
started again. So running the same study command again after a crash, a reboot or Ctrl-C finishes what is left.
"""
from __future__ import annotations

import json
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from ssm_mbrl_ros.core.config import ConfigError, load_yaml

DONE_FILE = "study_run.json"


@dataclass
class StudySpec:
    """A parsed study file."""

    name: str
    description: str
    train: dict
    seeds: list[int]
    variants: dict[str, dict]
    final_episodes: int = 100
    source: str = ""
    runs: list[tuple[str, int]] = field(default_factory=list)  # (variant, seed), the order they are started in


def load_study(path: str | Path, seeds: list[int] | None = None, train_overrides: dict | None = None) -> StudySpec:
    """Read and check a study file; seeds and train_overrides (e.g. minutes) replace the file's."""
    path = Path(path)
    data = load_yaml(path)
    where = str(path)
    unknown = set(data) - {"description", "train", "seeds", "variants", "final_episodes"}
    if unknown:
        raise ConfigError(f"{where}: unknown keys {sorted(unknown)} (description, train, seeds, variants, "
                          "final_episodes)")
    variants = data.get("variants") or {}
    if not isinstance(variants, dict) or not variants:
        raise ConfigError(f"{where}.variants: a mapping of at least one variant name to TrainConfig fields")
    for name, fields in variants.items():
        if not str(name).replace("_", "").replace("-", "").isalnum():
            raise ConfigError(f"{where}.variants: name {name!r} must be letters, digits, '-' or '_' (a folder name)")
        if fields is not None and not isinstance(fields, dict):
            raise ConfigError(f"{where}.variants.{name}: a mapping of TrainConfig fields, got {fields!r}")
    seed_list = list(seeds if seeds is not None else data.get("seeds", [0, 1, 2]))
    if not seed_list or not all(isinstance(s, int) and s >= 0 for s in seed_list):
        raise ConfigError(f"{where}.seeds: a list of non-negative integers, got {seed_list!r}")
    train = dict(data.get("train") or {})
    train.update(train_overrides or {})
    episodes = data.get("final_episodes", 100)
    if not isinstance(episodes, int) or episodes < 0:
        raise ConfigError(f"{where}.final_episodes: a non-negative integer (0 = skip), got {episodes!r}")
    spec = StudySpec(path.stem, str(data.get("description", "")), train, seed_list,
                     {str(k): dict(v or {}) for k, v in variants.items()}, episodes, where)
    # seed-major order: with two jobs, the variants of one seed run side by side and share the machine alike
    spec.runs = [(v, s) for s in spec.seeds for v in spec.variants]
    for variant, seed in spec.runs:
        check_run_config(spec, variant, seed)
    return spec


def _flatten(prefix: str, value, out: list[str]) -> None:
    if isinstance(value, dict) and not value and not prefix:  # an empty variant: the defaults
        return
    if isinstance(value, dict) and value:
        for k, v in value.items():
            _flatten(f"{prefix}.{k}" if prefix else str(k), v, out)
    else:
        out.append(f"{prefix}={yaml.safe_dump(value, default_flow_style=True, width=10_000).strip()}"
                   .removesuffix("\n..."))


def run_overrides(spec: StudySpec, variant: str, seed: int) -> list[str]:
    """The `--set KEY=VALUE` overrides of one run: the shared train fields, the variant's, then the seed."""
    out: list[str] = []
    _flatten("", spec.train, out)
    _flatten("", spec.variants[variant], out)
    out.append(f"seed={seed}")
    return out


def check_run_config(spec: StudySpec, variant: str, seed: int):
    """Resolve one run's TrainConfig now, so a typo fails before the first hour of training."""
    from ssm_mbrl_ros.train.config import resolve_train_config

    try:
        return resolve_train_config(None, run_overrides(spec, variant, seed), {})
    except ConfigError as exc:
        raise ConfigError(f"{spec.source}: variant {variant}: {exc}") from None


def run_name(variant: str, seed: int) -> str:
    """Folder name of one run inside the study directory."""
    return f"{variant}-s{seed}"


def run_state(out: Path, variant: str, seed: int) -> str:
    """'done', 'resume' (a checkpoint to continue from), 'partial' (started, nothing to resume) or 'new'."""
    d = out / run_name(variant, seed)
    if (d / DONE_FILE).is_file():
        return "done"
    if (d / "checkpoint.pt").is_file():
        return "resume"
    return "partial" if d.exists() else "new"


def _train_command(spec: StudySpec, run_dir: Path, variant: str, seed: int, resume: bool) -> list[str]:
    cmd = [sys.executable, "-m", "ssm_mbrl_ros.cli", "train", "--logdir", str(run_dir), "--no-progress"]
    if resume:
        cmd.append("--resume")
    for ov in run_overrides(spec, variant, seed):
        cmd += ["--set", ov]
    return cmd


def _evaluate_command(spec: StudySpec, run_dir: Path) -> list[str]:
    return [sys.executable, "-m", "ssm_mbrl_ros.cli", "evaluate", "--policy", str(run_dir / "best.onnx"),
            "--episodes", str(spec.final_episodes), "--seed", "0", "--no-progress",
            "--json", str(run_dir / "final_eval.json")]


def execute_run(spec: StudySpec, out: Path, variant: str, seed: int) -> dict:
    """Train one run to its budget (starting, resuming or restarting it), score best.onnx, write its done file."""
    run_dir = out / run_name(variant, seed)
    state = run_state(out, variant, seed)
    if state == "done":
        return json.loads((run_dir / DONE_FILE).read_text())
    if state == "partial":  # interrupted before its first checkpoint: keep the remains for a post-mortem
        run_dir.rename(run_dir.with_name(f"{run_dir.name}.incomplete-{int(time.time())}"))
    log = out / f"{run_name(variant, seed)}.log"
    t0 = time.time()
    with open(log, "a") as f:
        f.write(f"\n# {time.strftime('%Y-%m-%d %H:%M:%S')} {'resume' if state == 'resume' else 'start'}\n")
        f.flush()
        rc = subprocess.call(_train_command(spec, run_dir, variant, seed, state == "resume"), stdout=f,
                             stderr=subprocess.STDOUT)
        if rc != 0:
            raise RuntimeError(f"run {run_dir.name} failed (exit {rc}); see {log}")
        if spec.final_episodes and (run_dir / "best.onnx").is_file():
            rc = subprocess.call(_evaluate_command(spec, run_dir), stdout=f, stderr=subprocess.STDOUT)
            if rc != 0:
                raise RuntimeError(f"evaluating {run_dir.name}/best.onnx failed (exit {rc}); see {log}")
    result = {"variant": variant, "seed": seed, "overrides": run_overrides(spec, variant, seed),
              "process_s": round(time.time() - t0, 1)}
    (run_dir / DONE_FILE).write_text(json.dumps(result, indent=1) + "\n")
    return result


def run_study(spec: StudySpec, out: Path, jobs: int = 1, progress: bool = True) -> list[dict]:
    """Execute every run not yet done, `jobs` at a time; returns their done records in spec order."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "study.yaml").write_text(yaml.safe_dump({"description": spec.description, "train": spec.train,
                                                    "seeds": spec.seeds, "variants": spec.variants,
                                                    "final_episodes": spec.final_episodes}, sort_keys=False))
    todo = [r for r in spec.runs if run_state(out, *r) != "done"]
    from tqdm import tqdm

    bar = tqdm(total=len(spec.runs), initial=len(spec.runs) - len(todo), desc=f"study {spec.name}", unit="run",
               disable=not progress)
    errors = []

    def one(run):
        try:
            execute_run(spec, out, *run)
        except RuntimeError as exc:
            errors.append(str(exc))
        bar.update(1)
        bar.set_postfix_str(run_name(*run))

    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        list(pool.map(one, todo))
    bar.close()
    if errors:
        raise RuntimeError("; ".join(errors))
    return [json.loads((out / run_name(*r) / DONE_FILE).read_text()) for r in spec.runs]
