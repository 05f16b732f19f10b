"""Print the evaluations of training runs as a markdown table (one row per run).

Usage: python docs/results/eval_table.py LOGDIR [LOGDIR ...] [--json out.json] [--plot out.png]
Each cell is `update: return (success %)` of a periodic 32-episode evaluation (kind 'eval' in LOGDIR/metrics.jsonl).
"""
import argparse
import json
from pathlib import Path


def evals(logdir: Path) -> list[dict]:
    """The run's evaluation records, in order."""
    out = []
    for line in (logdir / "metrics.jsonl").read_text().splitlines():
        rec = json.loads(line)
        if rec.get("kind") == "eval":
            out.append({k: rec.get(k) for k in ("updates", "env_steps", "wall_s", "success_rate", "mean_return",
                                                 "final_pos_err_m", "crash_rate", "tilt_rate", "out_of_bounds_rate")})
    return out


def main() -> None:
    """Print the table (and write the records as JSON with --json)."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("logdirs", nargs="+", type=Path)
    ap.add_argument("--json", type=Path, help="also write {logdir name: records} here")
    ap.add_argument("--plot", type=Path, help="also plot return and final distance against env steps here")
    a = ap.parse_args()
    data = {d.name: evals(d) for d in a.logdirs}
    for name, recs in data.items():
        cells = [f"{r['updates']}: {r['mean_return']:.0f} ({100 * r['success_rate']:.0f} %, {r['final_pos_err_m']:.2f} m)"
                 for r in recs]
        print(f"| {name} | " + " / ".join(cells) + " |")
    if a.json:
        a.json.write_text(json.dumps(data, indent=1) + "\n")
    if a.plot:
        plot(data, a.plot)


def plot(data: dict, path: Path) -> None:
    """Evaluation return, success rate and mean final distance to the setpoint against env steps, one line per run."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_r, ax_s, ax_d) = plt.subplots(1, 3, figsize=(15, 4))
    for name, recs in data.items():
        steps = [r["env_steps"] for r in recs]
        ax_r.plot(steps, [r["mean_return"] for r in recs], marker="o", label=name)
        ax_s.plot(steps, [100 * r["success_rate"] for r in recs], marker="o", label=name)
        ax_d.plot(steps, [r["final_pos_err_m"] for r in recs], marker="o", label=name)
    ax_r.set(xlabel="env steps", ylabel="mean return (32 episodes)")
    ax_s.set(xlabel="env steps", ylabel="success: final distance < 0.1 m (%)", ylim=(-3, 103))
    ax_d.set(xlabel="env steps", ylabel="mean final distance to setpoint (m)", yscale="log")
    ax_d.axhline(0.1, color="k", lw=0.8, ls="--", label="success radius")
    for ax in (ax_r, ax_s, ax_d):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


if __name__ == "__main__":
    main()
