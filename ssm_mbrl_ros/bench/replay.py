"""Replay benchmark: Odometry ingest from MCAP into training arrays, and (B, T) sampling time."""
from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np


def _synthetic_episodes(num_msgs: int, episode_steps: int, seed: int):
    """Smooth synthetic hover episodes totalling num_msgs steps (one Odometry + one command per step)."""
    from ..core import frames
    from ..core.spaces import ActionSpec
    from ..bags.store import EpisodeRecord

    rng = np.random.default_rng(seed)
    spec = ActionSpec(0.0, 45.0, (12.0, 12.0, 6.0)).to_dict()
    eps, left = [], num_msgs
    while left > 0:
        n = min(episode_steps, left)
        t = np.arange(n) / 100.0
        pos = np.sin(t[:, None] * rng.uniform(0.5, 2, 3)) + [0, 0, 2]
        q = frames.quat_from_euler_zyx(0.2 * np.sin(t), 0.1 * np.cos(t), t)
        state = np.concatenate([pos, q, np.cos(t[:, None]) * np.ones(3), rng.normal(size=(n, 3)), np.zeros((n, 4))], 1)
        ctbr = np.concatenate([np.full((n, 1), 9.81), rng.normal(size=(n, 3))], 1)
        eps.append(EpisodeRecord(state, ctbr, None, {"task": "hover", "control_hz": 100.0, "setpoint_m": [0, 0, 2],
                                                     "action_spec": spec}))
        left -= n
    return eps


def _generic_rate(chunk: Path, limit: int) -> float:
    """Odometry msgs/s through rosbags' AnyReader + generic deserialiser (the reference), on the first limit messages."""
    from rosbags.highlevel import AnyReader

    from ..bags.store import typestore

    t0 = time.perf_counter()
    n = 0
    with AnyReader([chunk], default_typestore=typestore()) as r:
        conns = [c for c in r.connections if c.topic == "/odom"]
        for c, _, raw in r.messages(connections=conns):
            m = r.deserialize(raw, c.msgtype)
            _ = (m.pose.pose.position.x, m.twist.twist.angular.z)
            n += 1
            if n >= limit:
                break
    return n / (time.perf_counter() - t0)


def bench_replay(num_msgs: int = 100_000, batch: int = 16, length: int = 64, repeats: int = 3,
                 sample_iters: int = 200, workdir: str | None = None, seed: int = 0) -> dict:
    """Time ingest (store chunk on disk -> training arrays) and sampling; returns the result dict."""
    from ..bags.bagread import read_bag
    from ..bags.dataset import concat_episodes, streams_to_episodes
    from ..bags.replay import Replay
    from ..bags.report import IngestReport
    from ..bags.store import EpisodeStore

    with tempfile.TemporaryDirectory(dir=workdir) as tmp:
        store = EpisodeStore(Path(tmp) / "store")
        t0 = time.perf_counter()
        chunk = store.write_chunk(_synthetic_episodes(num_msgs, 1000, seed), start_ns=1_000_000_000)
        write_s = time.perf_counter() - t0
        ingest, decode = [], []
        for _ in range(repeats):
            t0 = time.perf_counter()
            rep = IngestReport()
            st = read_bag(chunk, report=rep)
            t1 = time.perf_counter()
            data = concat_episodes(streams_to_episodes(st, rep))
            t2 = time.perf_counter()
            decode.append(t1 - t0)
            ingest.append(t2 - t0)
        n_odom = len(st.odom["t_ns"])
        generic = _generic_rate(chunk, min(n_odom, 20_000))
        assert len(data["obs"]) == n_odom, (len(data["obs"]), n_odom)
        replay = Replay(store.root, capacity_steps=10 * num_msgs, seed=seed)
        replay.sample(batch, length)  # build the flat cache once
        t0 = time.perf_counter()
        for _ in range(sample_iters):
            replay.sample(batch, length)
        sample_ms = (time.perf_counter() - t0) / sample_iters * 1e3
        mcap_bytes = sum(f.stat().st_size for f in chunk.glob("*.mcap"))
    return {
        "ingest_msgs_per_s": n_odom / min(ingest),
        "sample_ms": sample_ms,
        "decode_msgs_per_s": n_odom / min(decode),
        "generic_rosbags_msgs_per_s": generic,
        "odometry_msgs": n_odom,
        "command_msgs": n_odom,
        "mcap_bytes": mcap_bytes,
        "write_steps_per_s": n_odom / write_s,
        "batch": batch,
        "length": length,
        "notes": ("ingest = read the MCAP chunk (Odometry + TwistStamped + episode info), bulk-decode CDR, clean, "
                  "resample to the control rate and build obs/action/reward/cont/is_first arrays; "
                  "msgs/s counts Odometry messages; best of repeats"),
    }
