"""PNG plots of evaluated trajectories against the task reference (matplotlib, no display needed)."""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def _draw_gates(ax, gate_corners: np.ndarray | None) -> None:
    """Draw each gate as a closed outline from its (G, K, 3) corner points."""
    if gate_corners is None:
        return
    for corners in np.asarray(gate_corners):
        loop = np.vstack([corners, corners[:1]])
        ax.plot(loop[:, 0], loop[:, 1], loop[:, 2], color="tab:orange", lw=2)


def _equal_axes(ax, point_sets: list[np.ndarray]) -> None:
    """Same metre scale on x, y and z so a 5 cm altitude wobble does not look like a 5 m one."""
    pts = np.vstack([p for p in point_sets if len(p)]) if point_sets else np.zeros((1, 3))
    lo, hi = pts.min(0), pts.max(0)
    centre, half = 0.5 * (lo + hi), max(0.5 * float((hi - lo).max()), 0.5)
    ax.set_xlim(centre[0] - half, centre[0] + half)
    ax.set_ylim(centre[1] - half, centre[1] + half)
    ax.set_zlim(max(centre[2] - half, 0.0), max(centre[2] - half, 0.0) + 2 * half)
    ax.set_box_aspect((1, 1, 1))


def plot_trajectories(path: str | Path, trajectories: list[dict], reference_path: np.ndarray | None,
                      title: str, gate_corners: np.ndarray | None = None, metrics: dict | None = None) -> Path:
    """Write a PNG: 3-D flown paths vs the reference (left), position error over time (right).

    reference_path: the task's whole reference (a trajectory or the gates' centre line); None for
    setpoint tasks, whose per-episode references are drawn instead (o = start, x = setpoint).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig = plt.figure(figsize=(12, 5.5))
    ax = fig.add_subplot(1, 2, 1, projection="3d")
    if reference_path is not None and len(reference_path):
        ref = np.asarray(reference_path)
        ax.plot(ref[:, 0], ref[:, 1], ref[:, 2], "k--", lw=1.2, label="reference")
    _draw_gates(ax, gate_corners)
    for i, tr in enumerate(trajectories):
        p, r = tr["pos"], tr["ref"]
        line = ax.plot(p[:, 0], p[:, 1], p[:, 2], lw=1.4, label=f"episode {i}")[0]
        ax.scatter(*p[0], marker="o", s=15, color=line.get_color())
        if reference_path is None:  # setpoint tasks: this episode's own reference, ending in an x
            ax.plot(r[:, 0], r[:, 1], r[:, 2], ls=":", lw=1.0, color=line.get_color())
            ax.scatter(*r[-1], marker="x", s=40, color=line.get_color())
    _equal_axes(ax, [tr["pos"] for tr in trajectories] + ([np.asarray(reference_path)] if reference_path is not None else []))
    ax.set_xlabel("x east [m]")
    ax.set_ylabel("y north [m]")
    ax.set_zlabel("z up [m]")
    ax.set_title(title)
    ax.legend(loc="upper left", fontsize=8)
    ax2 = fig.add_subplot(1, 2, 2)
    for i, tr in enumerate(trajectories):
        err = np.linalg.norm(tr["pos"] - tr["ref"], axis=1)
        ax2.plot(tr["t_s"], err, lw=1.2, label=f"episode {i}")
    ax2.set_xlabel("time [s]")
    ax2.set_ylabel("position error to reference [m]")
    ax2.set_yscale("log")
    ax2.grid(True, which="both", alpha=0.3)
    if metrics:
        keys = ("success_rate", "pos_rmse_m", "crash_rate", "lap_time_s")
        text = "\n".join(f"{k}: {metrics[k]:.3g}" for k in keys if isinstance(metrics.get(k), (int, float)))
        ax2.text(0.98, 0.98, text, transform=ax2.transAxes, ha="right", va="top", fontsize=9,
                 bbox=dict(boxstyle="round", fc="white", alpha=0.8))
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
