"""Learning-curve PNGs from the trainer's metrics.jsonl (evaluation and training scalars)."""
from __future__ import annotations

import json
from pathlib import Path


def read_metrics(path: Path) -> list[dict]:
    """All records of a metrics.jsonl file (a torn last line from a crash is skipped)."""
    rows = []
    if not Path(path).is_file():
        return rows
    for line in Path(path).read_text().splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return rows


def save_figure(fig, path, title: str = "") -> Path:
    """Title, tight layout, write the PNG (parent folders created), close the figure; returns the path."""
    import matplotlib.pyplot as plt

    fig.suptitle(title)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def plot_curves(metrics_path: Path, out_path: Path, title: str = "") -> Path | None:
    """Evaluation success / return / RMSE vs env steps and wall-clock, plus world-model and actor losses."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = read_metrics(metrics_path)
    evals = [r for r in rows if r.get("kind") == "eval"]
    train = [r for r in rows if r.get("kind") == "train"]
    if not evals and not train:
        return None
    fig, ax = plt.subplots(2, 3, figsize=(15, 8))
    if evals:
        steps = [r["env_steps"] for r in evals]
        minutes = [r["wall_s"] / 60.0 for r in evals]
        ax[0, 0].plot(steps, [r["success_rate"] or 0.0 for r in evals], "o-")
        ax[0, 0].set(xlabel="env steps", ylabel="eval success rate", ylim=(-0.02, 1.02))
        ax[0, 1].plot(minutes, [r["mean_return"] or 0.0 for r in evals], "o-")
        ax[0, 1].set(xlabel="wall-clock (min)", ylabel="eval mean return")
        ax[0, 2].semilogy(steps, [max(r["pos_rmse_m"] or 1e3, 1e-3) for r in evals], "o-")
        ax[0, 2].set(xlabel="env steps", ylabel="eval position RMSE (m)")
    if train:
        steps = [r["env_steps"] for r in train]
        ax[1, 0].plot(steps, [r["loss"] for r in train], label="world model")
        ax[1, 0].plot(steps, [r["obs_loss"] for r in train], label="obs", alpha=0.6)
        ax[1, 0].set(xlabel="env steps", ylabel="loss", yscale="log")
        ax[1, 0].legend()
        ac = [r for r in train if "imag_return" in r]
        ax[1, 1].plot([r["env_steps"] for r in ac], [r["imag_return"] for r in ac], label="imagined return")
        ax[1, 1].plot([r["env_steps"] for r in ac], [r["imag_value"] for r in ac], label="critic value")
        bc = [r for r in train if "bc_loss" in r]
        if bc:
            ax[1, 1].plot([r["env_steps"] for r in bc], [r["bc_loss"] for r in bc], label="behaviour cloning loss")
        ax[1, 1].set(xlabel="env steps")
        ax[1, 1].legend()
        ep = [r for r in train if r.get("train_return") is not None]
        ax[1, 2].plot([r["env_steps"] for r in ep], [r["train_return"] for r in ep])
        ax[1, 2].set(xlabel="env steps", ylabel="training episode return")
    for a in ax.flat:
        a.grid(alpha=0.3)
    return save_figure(fig, out_path, title)


def compare_runs(runs: list[tuple[str, str]], out_path, title: str = "") -> Path:
    """One PNG comparing several runs' evaluations (success, position RMSE) vs env steps and wall-clock."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(1, 3, figsize=(15, 4))
    for run_dir, label in runs:
        ev = [r for r in read_metrics(Path(run_dir) / "metrics.jsonl") if r.get("kind") == "eval"]
        steps = [r["env_steps"] for r in ev]
        minutes = [r["wall_s"] / 60.0 for r in ev]
        ax[0].plot(steps, [r["success_rate"] or 0.0 for r in ev], "o-", label=label)
        ax[1].plot(minutes, [r["success_rate"] or 0.0 for r in ev], "o-", label=label)
        ax[2].semilogy(steps, [r["final_pos_err_m"] or 1e3 for r in ev], "o-", label=label)
    ax[0].set(xlabel="env steps", ylabel="eval success rate", ylim=(-0.02, 1.02))
    ax[1].set(xlabel="wall-clock (min)", ylabel="eval success rate", ylim=(-0.02, 1.02))
    ax[2].set(xlabel="env steps", ylabel="eval final position error (m)")
    for a in ax:
        a.grid(alpha=0.3)
        a.legend()
    return save_figure(fig, out_path, title)


if __name__ == "__main__":
    import argparse

    ap = argparse.ArgumentParser(description="Compare training runs: python -m ssm_mbrl_ros.train.curves "
                                             "--out cmp.png RUN_DIR:LABEL ...")
    ap.add_argument("runs", nargs="+", help="RUN_DIR:LABEL")
    ap.add_argument("--out", required=True, help="output PNG")
    ap.add_argument("--title", default="", help="figure title")
    a = ap.parse_args()
    print(compare_runs([tuple(r.rsplit(":", 1)) for r in a.runs], a.out, a.title))
