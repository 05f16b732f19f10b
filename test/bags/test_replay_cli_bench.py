"""`ssm-mbrl bags info` on a directory with good, corrupt and partial chunks; the replay benchmark's output."""
import json
import os

from replay_helpers import make_episode

from ssm_mbrl_ros.bench.replay import bench_replay
from ssm_mbrl_ros.cli import main as cli_main
from ssm_mbrl_ros.bags.store import EpisodeStore


def test_bags_info_reports_topics_episodes_and_problems(tmp_path, capsys):
    store = EpisodeStore(tmp_path / "store")
    store.write_chunk([make_episode(40, seed=0), make_episode(30, seed=1)])
    bad = store.write_chunk([make_episode(40, seed=2)])
    mcap = next(bad.glob("*.mcap"))
    mcap.write_bytes(os.urandom(mcap.stat().st_size))
    (tmp_path / "store" / ".tmp_chunk_000002.123").mkdir()  # left by a killed writer
    out_json = tmp_path / "info.json"
    assert cli_main.main(["bags", "info", str(tmp_path / "store"), "--json", str(out_json)]) == 0
    text = capsys.readouterr().out
    assert "chunk_000000: ok" in text and "2 usable episode(s), 70 step(s), task hover" in text
    assert "nav_msgs/msg/Odometry" in text
    assert "chunk_000001: UNREADABLE" in text and "partial_chunk" in text
    info = json.loads(out_json.read_text())
    good = info["bags"][0]
    assert good["topics"]["/odom"] == {"type": "nav_msgs/msg/Odometry", "count": 70}
    assert good["episodes"] == 2 and abs(good["duration_s"] - 1.68) < 1e-6  # 0.39 s + 1 s gap + 0.29 s
    assert info["report"]["problem_counts"] == {"unreadable": 1, "partial_chunk": 1}
    assert cli_main.main(["bags", "info", str(tmp_path / "nope")]) == 2


def test_bench_replay_small():
    r = bench_replay(num_msgs=3000, repeats=1, sample_iters=20)
    assert r["odometry_msgs"] == 3000 and r["ingest_msgs_per_s"] > 0 and 0 < r["sample_ms"] < 1000
    assert set(r) >= {"ingest_msgs_per_s", "sample_ms"}
