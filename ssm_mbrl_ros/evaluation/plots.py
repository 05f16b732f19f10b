"""PNG plots of evaluated trajectories against the task reference (matplotlib, no display needed)."""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def _draw_gates(ax, gates: dict | None) -> None:
    if not gates:
        return
    centres = np.asarray(gates["pos"])
    normals = np.asarray(gates.get("normal", np.zeros_like(centres)))
    half = 0.5 * float(np.asarray(gates.get("size_m", 1.0)).reshape(-1)[0])
    up = np.array([0.0, 0.0, 1.0])
    for c, n in zip(centres, normals):
        side = np.cross(up, n)
        side = side / (np.linalg.norm(side) + 1e-9)
        corners = [c + half * (s * side + u * up) for s, u in ((-1, -1), (1, -1), (1, 1), (-1, 1), (-1, -1))]
        corners = np.asarray(corners)
        ax.plot(corners[:, 0], corners[:, 1], corners[:, 2], color="tab:orange", lw=2)


def plot_trajectories(path: str | Path, trajectories: list[dict], reference_path: np.ndarray | None,
                      title: str, gates: dict | None = None, metrics: dict | None = None) -> Path:
    """Write a PNG: 3-D flown paths vs the reference (left), position error over time (right)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig = plt.figure(figsize=(12, 5.5))
    ax = fig.add_subplot(1, 2, 1, projection="3d")
    if reference_path is not None and len(reference_path):
        ref = np.asarray(reference_path)
        ax.plot(ref[:, 0], ref[:, 1], ref[:, 2], "k--", lw=1.2, label="reference")
    _draw_gates(ax, gates)
    for i, tr in enumerate(trajectories):
        p = tr["pos"]
        ax.plot(p[:, 0], p[:, 1], p[:, 2], lw=1.4, label=f"episode {i}")
        ax.scatter(*p[0], marker="o", s=15)
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
