"""Robustness on real MCAP files: truncated/corrupt chunks, missing topics, bad stamps, kill -9 mid-write."""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from replay_helpers import make_episode
from rosbags.rosbag2 import StoragePlugin, Writer

from ssm_mbrl_ros.bags.bagread import read_bag
from ssm_mbrl_ros.bags.dataset import bags_to_dataset
from ssm_mbrl_ros.bags.replay import Replay
from ssm_mbrl_ros.bags.store import EpisodeStore, _MsgFactory, list_partial, typestore

HERE = Path(__file__).parent


def _mcap(chunk: Path) -> Path:
    return next(chunk.glob("*.mcap"))


def test_truncated_chunk_keeps_messages_before_the_cut(tmp_path):
    store = EpisodeStore(tmp_path)
    chunk = store.write_chunk([make_episode(3000, seed=0, privileged=False)])
    f = _mcap(chunk)
    data = f.read_bytes()
    f.write_bytes(data[: int(len(data) * 0.6)])
    st_report = bags_to_dataset([chunk])[2]
    kinds = st_report.kinds()
    assert kinds["truncated"] == 1
    st = read_bag(chunk)
    n = len(st.odom["t_ns"])
    assert 1000 < n < 3000  # the readable prefix is recovered, not thrown away
    data, _, rep = bags_to_dataset([chunk])
    assert rep.episodes == 1 and 1000 < len(data["obs"]) <= n


def test_corrupt_chunk_is_skipped_and_the_rest_used(tmp_path):
    store = EpisodeStore(tmp_path)
    for s in range(3):
        store.write_chunk([make_episode(80, seed=s)])
    bad = tmp_path / "chunk_000001"
    f = _mcap(bad)
    f.write_bytes(os.urandom(f.stat().st_size))  # garbage from the first byte
    rp = Replay(tmp_path)
    assert rp.chunk_names == ["chunk_000000", "chunk_000002"] and rp.num_steps == 160
    assert [p.kind for p in rp.report.problems] == ["unreadable"] and "chunk_000001" in rp.report.problems[0].bag
    assert bad.exists()  # left on disk for inspection, never silently deleted
    # garbage in the middle of the file: records after it are lost, the ones before are kept
    store2 = EpisodeStore(tmp_path / "b")
    c = store2.write_chunk([make_episode(3000, seed=0, privileged=False)])
    f = _mcap(c)
    raw = bytearray(f.read_bytes())
    mid = len(raw) // 2
    raw[mid:mid + 5000] = os.urandom(5000)
    f.write_bytes(bytes(raw))
    rep = bags_to_dataset([c])[2]
    assert rep.kinds()["truncated"] == 1 and rep.steps > 500


def test_missing_topic_reported(tmp_path):
    path = tmp_path / "odom_only"
    f = _MsgFactory()
    ep = make_episode(30)
    with Writer(path, version=9, storage_plugin=StoragePlugin.MCAP) as w:
        c = w.add_connection("/odom", "nav_msgs/msg/Odometry", typestore=typestore())
        for i in range(30):
            w.write(c, 10**9 + i * 10**7, f.odom(10**9 + i * 10**7, ep.state[i, :3], [0, 0, 0, 1.0], [0, 0, 0], [0, 0, 0]))
    data, _, rep = bags_to_dataset([path])
    assert len(data["obs"]) == 0
    assert [(p.kind, p.topic) for p in rep.problems] == [("missing_topic", "/cmd_ctbr")]


def _write_stamps(path, stamps_ns, ep):
    """Our topics with the given header stamps in the given (arrival) order; receive times increase."""
    f = _MsgFactory()
    with Writer(path, version=9, storage_plugin=StoragePlugin.MCAP) as w:
        co = w.add_connection("/odom", "nav_msgs/msg/Odometry", typestore=typestore())
        cc = w.add_connection("/cmd_ctbr", "geometry_msgs/msg/TwistStamped", typestore=typestore())
        for k, (i, ns) in enumerate(stamps_ns):
            log = 10**12 + k * 10**7
            w.write(co, log, f.odom(ns, ep.state[i, :3], [0, 0, 0, 1.0], [0, 0, 0], [0, 0, 0]))
            w.write(cc, log, f.cmd(ns, ep.ctbr[i]))


def test_out_of_order_duplicates_and_clock_jump_repaired(tmp_path):
    ep = make_episode(200, seed=4, privileged=False)
    dt = 10**7
    order = [(i, 5 * 10**9 + i * dt) for i in range(100)]
    order[40], order[41] = order[41], order[40]  # out of order
    order.insert(60, order[60])  # duplicate stamp
    order += [(i, 10**9 + i * dt) for i in range(100, 200)]  # clock jumps back 4 s (e.g. a restart)
    path = tmp_path / "messy"
    _write_stamps(path, order, ep)
    data, _, rep = bags_to_dataset([path])
    k = {(p.kind, p.topic): p.count for p in rep.problems}
    for topic in ("/odom", "/cmd_ctbr"):
        assert k[("out_of_order", topic)] == 1 and k[("duplicate_stamp", topic)] == 1
    assert k[("clock_jump", "/odom")] == 1
    assert rep.episodes == 2 and np.flatnonzero(data["is_first"]).tolist() == [0, 100]
    assert len(data["obs"]) == 200
    np.testing.assert_allclose(data["ctbr"], ep.ctbr, rtol=1e-6)  # every step in its place after the repairs
    np.testing.assert_allclose(data["obs"][:, :3], ep.state[:, :3], atol=1e-6)  # no setpoint: task block = pos


def test_kill_9_mid_write_loses_only_the_open_chunk(tmp_path):
    root = tmp_path / "store"
    proc = subprocess.Popen([sys.executable, str(HERE / "writer_proc.py"), str(root), "3000"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.time() + 15
        while time.time() < deadline:
            done = len(list(root.glob("chunk_*"))) if root.exists() else 0
            partial = [p for p in list_partial(root) if any(p.rglob("*.mcap"))] if root.exists() else []
            if done >= 2 and partial and sum(f.stat().st_size for f in partial[0].rglob("*.mcap")) > 100_000:
                break
            time.sleep(0.01)
        else:
            raise AssertionError("writer never got mid-chunk: " + proc.stderr.read1().decode())
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    complete = sorted(p.name for p in root.glob("chunk_*"))
    assert len(list_partial(root)) == 1
    rp = Replay(root, capacity_steps=10**9)
    assert rp.chunk_names == complete and rp.num_steps == 3000 * len(complete)
    assert [p.kind for p in rp.report.problems] == ["partial_chunk"]
    first = make_episode(3000, seed=0, privileged=False)
    np.testing.assert_allclose(rp.arrays()["ctbr"][:3000], first.ctbr, rtol=1e-6)  # nothing stored before is lost
    # the partial chunk itself is still salvageable by reading its .mcap directly (complete MCAP chunks inside it)
    from ssm_mbrl_ros.bags.report import IngestReport

    rep = IngestReport()
    salvaged = read_bag(next(list_partial(root)[0].rglob("*.mcap")), report=rep)
    assert salvaged is not None and 0 < len(salvaged.odom["t_ns"]) < 3000 and rep.kinds()["truncated"] == 1
    # a new writer carries on after the dead one's number; the partial chunk never shadows a good one
    new = EpisodeStore(root).write_chunk([make_episode(50, seed=99)])
    assert new.name not in complete and rp.refresh() == 1


def test_a_bag_may_only_name_files_inside_its_directory(tmp_path):
    secret = tmp_path / "secret.mcap"
    store = EpisodeStore(tmp_path / "store")
    chunk = store.write_chunk([make_episode(80, seed=0)])
    secret.write_bytes(_mcap(chunk).read_bytes())  # a readable bag outside the bag directory
    meta = chunk / "metadata.yaml"
    text = meta.read_text()
    name = _mcap(chunk).name
    meta.write_text(text.replace(f"- {name}", "- ../../secret.mcap"))
    from ssm_mbrl_ros.bags.report import IngestReport

    rep = IngestReport()
    assert read_bag(chunk, report=rep) is None
    assert rep.problems[0].kind == "unreadable" and "outside the bag directory" in rep.problems[0].detail


def test_bags_info_exit_codes_and_stray_files(tmp_path, capsys):
    from ssm_mbrl_ros.cli.main import main

    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "notes.txt").write_text("not a bag")
    assert main(["bags", "info", str(empty)]) == 1  # nothing readable: a failure, not a silent 0
    out = capsys.readouterr()
    assert "no readable bag" in out.err and "notes.txt" in out.out and "not_a_bag" in out.out
    good = tmp_path / "good"
    EpisodeStore(good).write_chunk([make_episode(80, seed=0)])
    assert main(["bags", "info", str(good)]) == 0
