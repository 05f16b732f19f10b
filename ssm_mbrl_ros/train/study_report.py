"""Summaries of a learning study (train/study.py): per-variant curves over seeds, a table, JSON and a PNG."""
from __future__ import annotations

import json
import statistics
from pathlib import Path

import numpy as np

from ssm_mbrl_ros.train.curves import read_metrics, save_figure
from ssm_mbrl_ros.train.study import StudySpec, run_name

# evaluation metrics drawn and tabulated: key in an 'eval' record -> axis label
CURVE_METRICS = {"mean_return": "mean return", "success_rate": "success rate",
                 "mean_episode_length_s": "episode length (s)",
                 "final_pos_err_m": "final distance to setpoint / reference (m)",
                 "pos_rmse_m": "position RMSE over the episode (m)"}
# training scalars averaged over the last tenth of a run: world-model prediction error and cost per update
TRAIN_TAIL = ("obs_loss", "reward_loss", "dyn_kl", "priv_loss")
FINAL_KEYS = ("success_rate", "mean_return", "final_pos_err_m", "pos_rmse_m", "mean_episode_length_s",
              "crash_rate", "tilt_rate", "out_of_bounds_rate")


def run_record(out: Path, variant: str, seed: int) -> dict:
    """One run's evaluations, tail-averaged training scalars, update rate and final 100-episode score."""
    d = out / run_name(variant, seed)
    rows = read_metrics(d / "metrics.jsonl")
    evals = [{k: r.get(k) for k in ("env_steps", "wall_s", "updates", *CURVE_METRICS)}
             for r in rows if r.get("kind") == "eval"]
    train = [r for r in rows if r.get("kind") == "train"]
    tail = train[-max(1, len(train) // 10):] if train else []
    rec = {"variant": variant, "seed": seed, "evals": evals,
           "train_tail": {k: statistics.fmean(r[k] for r in tail) for k in TRAIN_TAIL
                          if tail and all(isinstance(r.get(k), (int, float)) for r in tail)}}
    summary = d / "summary.json"
    if summary.is_file():
        s = json.loads(summary.read_text())
        rec.update(env_steps=s.get("env_steps"), updates=s.get("updates"), wall_s=s.get("wall_s"))
        if s.get("updates") and s.get("wall_s"):
            rec["ms_per_update"] = round(1000.0 * s["wall_s"] / s["updates"], 1)  # whole loop, collection included
    final = d / "final_eval.json"
    if final.is_file():
        f = json.loads(final.read_text())
        rec["final"] = {k: f.get(k) for k in FINAL_KEYS}
    return rec


def band(runs: list[dict], metric: str, x_key: str, grid: np.ndarray) -> dict:
    """Mean, min and max over seeds of an evaluation metric, each seed linearly interpolated onto grid (x inside
    every seed's range only)."""
    ys = []
    for r in runs:
        pts = [(e[x_key], e[metric]) for e in r["evals"] if e.get(metric) is not None and e.get(x_key) is not None]
        if not pts:
            return {"x": [], "mean": [], "min": [], "max": []}
        x, y = np.array(pts, dtype=float).T
        ys.append(np.interp(grid, x, y, left=np.nan, right=np.nan))
    arr = np.array(ys)
    ok = ~np.isnan(arr).any(axis=0)
    return {"x": grid[ok].tolist(), "mean": arr[:, ok].mean(0).tolist(), "min": arr[:, ok].min(0).tolist(),
            "max": arr[:, ok].max(0).tolist()}


def _stat(values: list) -> dict | None:
    vals = [float(v) for v in values if v is not None]
    if not vals:
        return None
    return {"mean": statistics.fmean(vals), "min": min(vals), "max": max(vals), "n": len(vals)}


def summarise(spec: StudySpec, out: Path) -> dict:
    """The study's JSON: spec, every run's record, and per variant the seed statistics and curve bands."""
    runs = [run_record(out, v, s) for v, s in spec.runs]
    by_variant: dict[str, dict] = {}
    for variant in spec.variants:
        rs = [r for r in runs if r["variant"] == variant and r["evals"]]
        entry: dict = {"seeds": [r["seed"] for r in rs]}
        if rs:
            for x_key, n in (("env_steps", 40), ("wall_s", 40)):
                hi = max(max(e[x_key] for e in r["evals"]) for r in rs)
                grid = np.linspace(0.0, hi, n)
                entry[f"curves_vs_{x_key}"] = {m: band(rs, m, x_key, grid) for m in CURVE_METRICS}
            entry["final"] = {k: _stat([r.get("final", {}).get(k) for r in rs]) for k in FINAL_KEYS}
            entry["last_eval"] = {k: _stat([r["evals"][-1].get(k) for r in rs]) for k in CURVE_METRICS}
            entry["train_tail"] = {k: _stat([r["train_tail"].get(k) for r in rs]) for k in TRAIN_TAIL}
            entry["ms_per_update"] = _stat([r.get("ms_per_update") for r in rs])
            entry["env_steps"] = _stat([r.get("env_steps") for r in rs])
        by_variant[variant] = entry
    return {"study": spec.name, "description": spec.description, "train": spec.train, "seeds": spec.seeds,
            "variants": spec.variants, "final_episodes": spec.final_episodes, "runs": runs, "by_variant": by_variant}


def _fmt(stat: dict | None, scale: float = 1.0, digits: int = 2) -> str:
    if not stat:
        return "-"
    m, lo, hi = (scale * stat[k] for k in ("mean", "min", "max"))
    return f"{m:.{digits}f} ({lo:.{digits}f}-{hi:.{digits}f})"


def markdown_table(report: dict) -> str:
    """One row per variant: seed mean (min-max) of the final score, the last evaluation and the update cost."""
    lines = [f"| variant | seeds | success % ({report['final_episodes']} ep.) | return | final distance (m) | "
             "RMSE (m) | last eval return | obs loss | ms per update | env steps |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for name, v in report["by_variant"].items():
        f, le, tt = v.get("final", {}), v.get("last_eval", {}), v.get("train_tail", {})
        lines.append(f"| {name} | {len(v['seeds'])} | {_fmt(f.get('success_rate'), 100, 0)} | "
                     f"{_fmt(f.get('mean_return'), 1, 0)} | {_fmt(f.get('final_pos_err_m'))} | "
                     f"{_fmt(f.get('pos_rmse_m'), 1, 3)} | "
                     f"{_fmt(le.get('mean_return'), 1, 0)} | {_fmt(tt.get('obs_loss'), 1, 3)} | "
                     f"{_fmt(v.get('ms_per_update'), 1, 0)} | {_fmt(v.get('env_steps'), 1, 0)} |")
    return "\n".join(lines)


def plot_study(report: dict, path: Path) -> Path:
    """Seed bands (min-max, mean line) of each evaluation metric against env steps and against wall-clock."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    metrics = list(CURVE_METRICS)
    fig, axes = plt.subplots(2, len(metrics), figsize=(4.2 * len(metrics), 7.5))
    for row, (x_key, x_label, x_scale) in enumerate((("env_steps", "env steps", 1.0),
                                                    ("wall_s", "wall-clock (min)", 1 / 60.0))):
        for col, m in enumerate(metrics):
            ax = axes[row, col]
            for name, v in report["by_variant"].items():
                c = v.get(f"curves_vs_{x_key}", {}).get(m)
                if not c or not c["x"]:
                    continue
                x = np.array(c["x"]) * x_scale
                n = len(v["seeds"])
                (line,) = ax.plot(x, c["mean"], marker="o" if len(x) < 3 else None,
                                  label=f"{name} ({n} seed{'s' if n != 1 else ''})")
                ax.fill_between(x, c["min"], c["max"], color=line.get_color(), alpha=0.2)
            ax.set(xlabel=x_label, ylabel=CURVE_METRICS[m])
            if m in ("final_pos_err_m", "pos_rmse_m"):
                ax.set_yscale("log")
            ax.grid(alpha=0.3)
            ax.legend(fontsize=8)
    return save_figure(fig, path, f"{report['study']}: {report['description']} (line: seed mean, band: min-max)")


def write_report(spec: StudySpec, out: Path) -> tuple[Path, Path, str]:
    """OUT/study.json, OUT/study.png and the markdown table (also OUT/study.md)."""
    report = summarise(spec, out)
    json_path = out / "study.json"
    json_path.write_text(json.dumps(report, indent=1) + "\n")
    png = plot_study(report, out / "study.png")
    table = markdown_table(report)
    (out / "study.md").write_text(f"# {spec.name}\n\n{spec.description}\n\n{table}\n")
    return json_path, png, table
