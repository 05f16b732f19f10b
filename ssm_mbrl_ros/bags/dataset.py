"""Bag streams -> time-aligned fixed-rate episodes -> training arrays for a world-model trainer.

Training arrays (one dict, all episodes concatenated along axis 0, `is_first` marks starts):
    obs (n, D) float32     [task block, vel (3, world ENU m/s), rotmat (9, body->world), omega (3, FLU rad/s),
                           last_action (4, normalised)]; task block = setpoint - pos (3, m) when the episode's
                           setpoint is known (the hover env's full observation exactly), else pos (3, m ENU)
    action (n, 4) float32  command issued at step t, normalised by the action spec (physical if none is known)
    ctbr (n, 4) float32    the same command in physical units (m/s^2, rad/s FLU)
    reward (n,) float32    reward received on arriving at step t (0 at is_first), recomputed from the task's
                           reward weights; NaN where the task/setpoint is unknown (reported)
    cont (n,) float32      0 at the last step of a terminated episode, else 1
    is_first (n,) bool
    privileged (n, P) float32 (zeros where absent; `privileged_valid` (n,) bool says which rows are real)
    expert (n,) bool       a demonstrator label exists for step t (an /expert_ctbr message within dt/2)
    expert_action (n, 4) float32  that label, normalised like `action` (zeros where expert is False)
Alignment: odometry is resampled to rate_hz on a grid starting at each segment's first stamp
(linear interpolation, slerp for the attitude); the command at grid time t is the last one
stamped <= t + dt/2 (zero-order hold). Streams are cleaned first: a backward clock jump or a gap
longer than gap_s splits a segment, and so does a known episode start (an episode info's
start_ns equal to an odometry stamp: live recordings have no gap between episodes);
out-of-order stamps are sorted, duplicates dropped, and each repair is reported.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..core.observation import COMMON_FIELDS, VEL_FIELD, observation_entries
from ..core.spaces import ActionSpec, ObsField, ObsLayout
from .bagread import BagStreams, TopicNames
from .report import IngestReport

KEYS = ("obs", "action", "ctbr", "reward", "cont", "is_first", "privileged", "privileged_valid", "expert",
        "expert_action")


@dataclass
class AlignConfig:
    """How bag streams become fixed-rate episodes."""

    rate_hz: float | None = None  # None: the episode info's control_hz, else 100 Hz
    gap_s: float = 0.1  # a forward gap in odometry stamps longer than this splits the episode
    clock_jump_s: float = 0.05  # a backward stamp step larger than this is a clock jump (split), smaller is reordering
    min_steps: int = 10  # shorter pieces are dropped (reported)
    privileged_dim: int = 25


def obs_layout(setpoint_known: bool) -> ObsLayout:
    """The layout of the dataset's obs (equal to the hover env's full observation when the setpoint is known)."""
    first = (ObsField("pos_err", 3, "m", "world ENU", "setpoint - position") if setpoint_known
             else ObsField("pos", 3, "m", "world ENU", "position"))
    return ObsLayout((first, VEL_FIELD) + COMMON_FIELDS)


def slerp(q0: np.ndarray, q1: np.ndarray, a: np.ndarray) -> np.ndarray:
    """Spherical interpolation of (w,x,y,z) quaternions q0 -> q1 (n,4) at fractions a (n,), shortest path."""
    d = (q0 * q1).sum(-1)
    q1 = np.where(d[:, None] < 0, -q1, q1)
    d = np.abs(d).clip(-1.0, 1.0)
    th = np.arccos(d)
    s = np.sin(th)
    small = s < 1e-6
    w0 = np.where(small, 1 - a, np.sin((1 - a) * th) / np.where(small, 1, s))
    w1 = np.where(small, a, np.sin(a * th) / np.where(small, 1, s))
    q = w0[:, None] * q0 + w1[:, None] * q1
    return q / np.linalg.norm(q, axis=-1, keepdims=True)


def _take(d: dict, idx) -> dict:
    return {k: v[idx] for k, v in d.items()}


def clean_segments(s: dict, cfg: AlignConfig, report: IngestReport, bag: str, topic: str,
                   episode_starts_ns=()) -> list[dict]:
    """Split a stream (arrival order) at clock jumps, gaps and known episode starts, sort within pieces, drop
    duplicate stamps.

    A known episode start (the self-description's start_ns) splits there, silently (also without a gap).
    """
    order = np.argsort(s["log_ns"], kind="stable")
    s = _take(s, order)
    t = s["t_ns"]
    d = np.diff(t)
    jump = d < -cfg.clock_jump_s * 1e9
    gap = d > cfg.gap_s * 1e9
    known = np.isin(t[1:], np.asarray(list(episode_starts_ns), np.int64)) & (d > 0)
    if jump.any():
        report.add(bag, "clock_jump", "backward stamp jump; episode split there", topic, int(jump.sum()))
    if (gap & ~known).any():
        report.add(bag, "gap", f"stamp gap > {cfg.gap_s} s; episode split there", topic, int((gap & ~known).sum()))
    cuts = np.flatnonzero(jump | gap | known) + 1
    pieces = []
    for idx in np.split(np.arange(len(t)), cuts):
        p = _take(s, idx)
        if (np.diff(p["t_ns"]) < 0).any():
            report.add(bag, "out_of_order", "stamps out of order; sorted", topic, int((np.diff(p["t_ns"]) < 0).sum()))
            p = _take(p, np.argsort(p["t_ns"], kind="stable"))
        dup = np.diff(p["t_ns"]) == 0
        if dup.any():
            report.add(bag, "duplicate_stamp", "duplicate stamps; later copies dropped", topic, int(dup.sum()))
            p = _take(p, np.concatenate([[True], ~dup]))
        pieces.append(p)
    return pieces


def resample_odom(p: dict, grid_ns: np.ndarray) -> dict:
    """Odometry piece (sorted, unique stamps) at grid times: linear for vectors, slerp for the attitude."""
    t = p["t_ns"]
    i = np.clip(np.searchsorted(t, grid_ns, side="right") - 1, 0, max(len(t) - 2, 0))
    j = np.minimum(i + 1, len(t) - 1)
    span = (t[j] - t[i]).astype(float)
    a = np.where(span > 0, (grid_ns - t[i]) / np.where(span > 0, span, 1.0), 0.0).clip(0.0, 1.0)
    out = {"t_ns": grid_ns}
    for k in ("pos", "vel", "omega"):
        out[k] = p[k][i] + a[:, None] * (p[k][j] - p[k][i])
    out["quat"] = slerp(p["quat"][i], p["quat"][j], a)
    return out


def _zoh(t_src: np.ndarray, values: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Last value stamped <= t (zero-order hold); valid (n,) False before the first one."""
    k = np.searchsorted(t_src, t, side="right") - 1
    return values[np.clip(k, 0, None)], k >= 0


def _info_for(infos: list[dict], t0: int, t1: int) -> dict:
    """The episode info whose [start_ns, end_ns] overlaps [t0, t1] most (empty dict if none)."""
    best, best_ov = {}, 0
    for inf in infos:
        if "start_ns" not in inf:
            continue
        ov = min(t1, inf.get("end_ns", t1)) - max(t0, inf["start_ns"])
        if ov >= best_ov:
            best, best_ov = inf, ov
    return best if best_ov >= 0 and best else (infos[0] if len(infos) == 1 and "start_ns" not in infos[0] else {})


def compute_reward(task: str | None, info: dict, pos, vel, omega, action_norm, terminated: bool) -> np.ndarray | None:
    """Reward received on arriving at each step (hover-type tasks with a known setpoint), None if unknown."""
    rw = info.get("reward")
    sp = info.get("setpoint_m")
    if task is None or not task.startswith("hover") or sp is None or not rw:
        return None
    from ..sim.tasks.hover import hover_step_reward  # the simulator's own definition (torch imported on first use)

    err = np.linalg.norm(np.asarray(sp)[None] - pos, axis=-1)
    prev = np.concatenate([np.zeros((1, 4)), action_norm[:-1]])  # a_{t-1}; reward at t follows action a_{t-1}
    prev2 = np.concatenate([np.zeros((2, 4)), action_norm[:-2]])[: len(prev)]
    r = hover_step_reward(rw, err, (vel * vel).sum(-1), (omega * omega).sum(-1), ((prev - prev2) ** 2).sum(-1))
    r[0] = 0.0
    if terminated:
        r[-1] -= rw["crash_penalty"]
    return r


def episode_arrays(o: dict, ctbr: np.ndarray, priv: np.ndarray | None, info: dict, cfg: AlignConfig,
                   expert: tuple[np.ndarray, np.ndarray] | None = None) -> dict:
    """Training arrays of one aligned episode (see module docstring); expert = (labels CTBR (n, 4), valid (n,))."""
    n = len(o["t_ns"])
    spec = ActionSpec.from_dict(info["action_spec"]) if info.get("action_spec") else None
    act = spec.to_normalized(ctbr) if spec is not None else ctbr
    last = np.concatenate([np.zeros((1, 4)), act[:-1]])
    sp = info.get("setpoint_m")
    block = (np.asarray(sp)[None] - o["pos"]) if sp is not None else o["pos"]
    obs = np.stack(observation_entries(block.T, o["vel"].T, o["quat"].T, o["omega"].T, last.T), 1)
    terminated = bool(info.get("terminated", False))
    r = compute_reward(info.get("task"), info, o["pos"], o["vel"], o["omega"], act, terminated)
    cont = np.ones(n, np.float32)
    if terminated:
        cont[-1] = 0.0
    p = np.zeros((n, cfg.privileged_dim), np.float32)
    pv = np.zeros(n, bool)
    if priv is not None and priv.shape[1] == cfg.privileged_dim:
        p, pv = priv.astype(np.float32), np.ones(n, bool)
    first = np.zeros(n, bool)
    first[0] = True
    ex, ex_act = np.zeros(n, bool), np.zeros((n, 4), np.float32)
    if expert is not None:
        ex = expert[1].astype(bool)
        lab = spec.to_normalized(expert[0]) if spec is not None else expert[0]
        ex_act = np.where(ex[:, None], lab, 0.0).astype(np.float32)
    return {"expert": ex, "expert_action": ex_act, "obs": obs.astype(np.float32), "action": act.astype(np.float32),
            "ctbr": ctbr.astype(np.float32),
            "reward": (np.full(n, np.nan) if r is None else r).astype(np.float32), "cont": cont, "is_first": first,
            "privileged": p, "privileged_valid": pv}


def streams_to_episodes(st: BagStreams, report: IngestReport, cfg: AlignConfig | None = None) -> list[dict]:
    """All usable episodes of one bag as training-array dicts (each with 'info' and 't_ns')."""
    cfg = cfg or AlignConfig()
    if st is None or st.odom is None or st.cmd is None:
        return []
    bag = st.path
    infos = st.infos
    starts = [int(i["start_ns"]) for i in infos if "start_ns" in i]
    names = st.names or TopicNames()
    pieces = clean_segments(st.odom, cfg, report, bag, names.odom, starts)
    cmd = clean_segments(st.cmd, AlignConfig(gap_s=1e9, clock_jump_s=cfg.clock_jump_s), report, bag, names.cmd)
    priv = None
    if st.priv is not None and len(st.priv["t_ns"]):
        priv = clean_segments(st.priv, AlignConfig(gap_s=1e9, clock_jump_s=cfg.clock_jump_s), IngestReport(), bag, "priv")
    expert = None
    if st.expert is not None and len(st.expert["t_ns"]):
        expert = clean_segments(st.expert, AlignConfig(gap_s=1e9, clock_jump_s=cfg.clock_jump_s), IngestReport(), bag,
                                names.expert)
    episodes, no_reward = [], 0
    for p in pieces:
        info = _info_for(infos, int(p["t_ns"][0]), int(p["t_ns"][-1]))
        hz = cfg.rate_hz or float(info.get("control_hz", 100.0))
        dt_ns = int(round(1e9 / hz))
        # Commands of this piece: the cmd segment received over the same bag-time span.
        lo, hi = p["log_ns"][0], p["log_ns"][-1]
        c = _pick(cmd, lo, hi)
        if c is None:
            report.add(bag, "missing_topic", "no commands during an odometry segment; segment dropped", names.cmd)
            continue
        t0 = max(int(p["t_ns"][0]), int(c["t_ns"][0]) - dt_ns // 2)
        grid = t0 + dt_ns * np.arange(int((p["t_ns"][-1] - t0) // dt_ns) + 1, dtype=np.int64)
        if len(grid) < cfg.min_steps:
            report.add(bag, "short_segment", f"{len(grid)} steps < min_steps {cfg.min_steps}; dropped", names.odom)
            continue
        o = resample_odom(p, grid)
        ctbr, _ = _zoh(c["t_ns"], c["ctbr"], grid + dt_ns // 2)
        prow = None
        pp = _pick(priv, lo, hi) if priv else None
        if pp is not None:
            prow, _ = _zoh(pp["t_ns"], pp["data"], grid + dt_ns // 2)
        ex = None
        pe = _pick(expert, lo, hi) if expert else None
        if pe is not None:  # labels stamped like the odometry they answer: nearest within dt/2
            ex = _nearest(pe["t_ns"], pe["ctbr"], grid, dt_ns // 2)
        ep = episode_arrays(o, ctbr, prow, info, cfg, ex)
        ep["t_ns"], ep["info"] = grid, info
        if np.isnan(ep["reward"]).all():
            no_reward += 1
        episodes.append(ep)
    if no_reward:
        report.add(bag, "reward_unknown", "no task setpoint/reward weights in the bag; reward left NaN",
                   count=no_reward)
    report.episodes += len(episodes)
    report.steps += sum(len(e["t_ns"]) for e in episodes)
    return episodes


def _nearest(t_src: np.ndarray, values: np.ndarray, t: np.ndarray, tol_ns: int) -> tuple[np.ndarray, np.ndarray]:
    """The value stamped nearest to each t (sorted t_src), and valid (n,) where it is within tol_ns."""
    k = np.clip(np.searchsorted(t_src, t), 1, max(len(t_src) - 1, 1))
    lo = np.clip(k - 1, 0, len(t_src) - 1)
    hi = np.clip(k, 0, len(t_src) - 1)
    best = np.where(np.abs(t_src[hi] - t) < np.abs(t - t_src[lo]), hi, lo)
    return values[best], np.abs(t_src[best] - t) <= tol_ns


def _pick(pieces: list[dict] | None, lo: int, hi: int) -> dict | None:
    """The piece whose bag receive times overlap [lo, hi] most."""
    best, best_ov = None, -1
    for q in pieces or []:
        ov = min(hi, q["log_ns"][-1]) - max(lo, q["log_ns"][0])
        if ov > best_ov:
            best, best_ov = q, ov
    return best if best_ov >= 0 else None


def concat_episodes(episodes: list[dict], privileged_dim: int = 25) -> dict:
    """Concatenate episode arrays into one training dict (empty arrays when there are none)."""
    if not episodes:
        return {"obs": np.zeros((0, 22), np.float32), "action": np.zeros((0, 4), np.float32),
                "ctbr": np.zeros((0, 4), np.float32), "reward": np.zeros(0, np.float32),
                "cont": np.zeros(0, np.float32), "is_first": np.zeros(0, bool),
                "privileged": np.zeros((0, privileged_dim), np.float32), "privileged_valid": np.zeros(0, bool),
                "expert": np.zeros(0, bool), "expert_action": np.zeros((0, 4), np.float32)}
    return {k: np.concatenate([e[k] for e in episodes]) for k in KEYS}


def bags_to_dataset(paths, names=None, cfg: AlignConfig | None = None, thrust_max_mps2=None):
    """Read bags (dirs or .mcap files) -> (training dict, list of episode infos, IngestReport)."""
    from .bagread import read_bag

    report = IngestReport()
    eps = []
    for p in paths:
        st = read_bag(p, names, report, thrust_max_mps2)
        eps.extend(streams_to_episodes(st, report, cfg))
    return concat_episodes(eps), [e["info"] for e in eps], report


def to_sequences(data: dict, length: int) -> dict:
    """Non-overlapping (B, T) windows of a training dict (the remainder is dropped); is_first set at each window start."""
    n = len(data["is_first"]) // length * length
    out = {k: v[:n].reshape((-1, length) + v.shape[1:]) for k, v in data.items()}  # (n, ...) -> (B, T, ...)
    out["is_first"] = out["is_first"].copy()
    out["is_first"][:, 0] = True
    return out
