"""Episode store: chunks are standard rosbag2 MCAP bags, read back by an independent reader and by the replay."""
import json

import numpy as np
import yaml
from replay_helpers import REWARD, SPEC, make_episode
from rosbags.highlevel import AnyReader

from ssm_mbrl_ros.core import frames
from ssm_mbrl_ros.bags.dataset import bags_to_dataset
from ssm_mbrl_ros.bags.replay import Replay
from ssm_mbrl_ros.bags.store import EpisodeStore, typestore


def test_chunk_is_a_standard_bag_read_by_anyreader(tmp_path):
    store = EpisodeStore(tmp_path / "store")
    ep = make_episode(40, seed=1)
    chunk = store.write_chunk([ep], start_ns=5_000_000_000)
    assert chunk.name == "chunk_000000" and (chunk / "metadata.yaml").is_file()
    assert [p.name for p in (tmp_path / "store").iterdir()] == ["chunk_000000"]  # no temp dir left
    meta = yaml.safe_load((chunk / "metadata.yaml").read_text())["rosbag2_bagfile_information"]
    assert meta["storage_identifier"] == "mcap"
    assert json.loads(meta["custom_data"]["ssm_mbrl_ros.episodes"])[0]["task"] == "hover"
    with AnyReader([chunk], default_typestore=typestore()) as r:
        topics = {t: (i.msgtype, i.msgcount) for t, i in r.topics.items()}
        assert topics == {"/odom": ("nav_msgs/msg/Odometry", 40), "/cmd_ctbr": ("geometry_msgs/msg/TwistStamped", 40),
                          "/privileged": ("std_msgs/msg/Float32MultiArray", 40), "/episode_info": ("std_msgs/msg/String", 1)}
        odom = [r.deserialize(raw, c.msgtype) for c, _, raw in r.messages([c for c in r.connections if c.topic == "/odom"])]
        cmd = [r.deserialize(raw, c.msgtype) for c, _, raw in r.messages([c for c in r.connections if c.topic == "/cmd_ctbr"])]
    m = odom[7]
    assert (m.header.frame_id, m.child_frame_id) == ("odom", "base_link")
    assert m.header.stamp.sec * 10**9 + m.header.stamp.nanosec == 5_000_000_000 + 7 * 10_000_000
    np.testing.assert_allclose([m.pose.pose.position.x, m.pose.pose.position.y, m.pose.pose.position.z], ep.state[7, :3])
    q = ep.state[7, 3:7]
    o = m.pose.pose.orientation
    np.testing.assert_allclose([o.w, o.x, o.y, o.z], q)
    lin = m.twist.twist.linear  # body frame (child frame) per nav_msgs/Odometry
    np.testing.assert_allclose(frames.quat_rotate(q, [lin.x, lin.y, lin.z]), ep.state[7, 7:10], atol=1e-12)
    c = cmd[7]
    assert c.header.frame_id == "base_link" and c.twist.linear.x == 0.0 and c.twist.linear.y == 0.0
    np.testing.assert_allclose([c.twist.linear.z, c.twist.angular.x, c.twist.angular.y, c.twist.angular.z], ep.ctbr[7])


def test_dataset_from_store_matches_episodes_and_rewards(tmp_path):
    store = EpisodeStore(tmp_path)
    eps = [make_episode(60, seed=s, terminated=(s == 1)) for s in range(3)]
    chunk = store.write_chunk(eps)
    data, infos, report = bags_to_dataset([chunk])
    assert report.problems == [] and report.episodes == 3
    assert data["obs"].shape == (180, 22) and data["privileged"].shape == (180, 25)
    assert np.flatnonzero(data["is_first"]).tolist() == [0, 60, 120]
    assert data["cont"].tolist().count(0.0) == 1 and data["cont"][119] == 0.0  # episode 1 terminated
    ep = eps[2]
    sl = slice(120, 180)
    sp = np.array([0.5, -0.5, 2.0])
    np.testing.assert_allclose(data["obs"][sl, 0:3], sp - ep.state[:, 0:3], atol=1e-5)
    np.testing.assert_allclose(data["obs"][sl, 3:6], ep.state[:, 7:10], atol=1e-5)
    np.testing.assert_allclose(data["obs"][sl, 6:15], frames.quat_to_rotmat(ep.state[:, 3:7]).reshape(-1, 9), atol=1e-5)
    np.testing.assert_allclose(data["obs"][sl, 15:18], ep.state[:, 10:13], atol=1e-5)
    act = SPEC.to_normalized(ep.ctbr)
    np.testing.assert_allclose(data["action"][sl], act, atol=1e-6)
    np.testing.assert_allclose(data["obs"][sl, 18:22][1:], act[:-1], atol=1e-6)  # last_action
    np.testing.assert_allclose(data["ctbr"][sl], ep.ctbr, rtol=1e-6)
    np.testing.assert_array_equal(data["privileged"][sl], ep.privileged)
    # reward on arriving at step t=5, written out independently of the implementation
    t = 5
    err = np.linalg.norm(sp - ep.state[t, :3])
    r = (REWARD["pos_weight"] * np.exp(-err / REWARD["pos_scale_m"]) - REWARD["vel_weight"] * (ep.state[t, 7:10] ** 2).sum()
         - REWARD["rate_weight"] * (ep.state[t, 10:13] ** 2).sum() - REWARD["smooth_weight"] * ((act[t - 1] - act[t - 2]) ** 2).sum())
    assert abs(data["reward"][120 + t] - r) < 1e-4 and data["reward"][120] == 0.0
    assert data["reward"][119] < -5  # crash penalty on the terminated episode's last step


def test_replay_sample_refresh_eviction_resume(tmp_path):
    store = EpisodeStore(tmp_path)
    store.write_chunk([make_episode(100, seed=0), make_episode(100, seed=1)])
    rp = Replay(tmp_path, capacity_steps=450, seed=0)
    assert rp.num_steps == 200
    b = rp.sample(16, 64)
    assert b["obs"].shape == (16, 64, 22) and b["action"].shape == (16, 64, 4) and b["reward"].shape == (16, 64)
    assert b["is_first"][:, 0].all() and b["obs"].dtype == np.float32
    assert rp.refresh() == 0
    store.write_chunk([make_episode(100, seed=2)])
    assert rp.refresh() == 1 and rp.num_steps == 300
    store.write_chunk([make_episode(100, seed=3), make_episode(100, seed=4)])
    assert rp.refresh() == 1
    # 500 steps > capacity 450: the oldest chunk is evicted from memory and from disk
    assert rp.num_steps == 300 and rp.chunk_names == ["chunk_000001", "chunk_000002"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["chunk_000001", "chunk_000002"]
    resumed = Replay(tmp_path, capacity_steps=450)
    assert resumed.num_steps == 300
    np.testing.assert_array_equal(resumed.arrays()["obs"], rp.arrays()["obs"])
    assert store.write_chunk([make_episode(20, seed=9)]).name == "chunk_000003"  # numbering continues


def test_to_sequences_windows():
    from ssm_mbrl_ros.bags.dataset import concat_episodes, to_sequences

    data = concat_episodes([])
    data = {k: np.concatenate([v, np.zeros((130,) + v.shape[1:], v.dtype)]) for k, v in data.items()}
    data["obs"][:, 0] = np.arange(130)
    seq = to_sequences(data, 64)
    assert seq["obs"].shape == (2, 64, 22) and seq["obs"][1, 0, 0] == 64 and seq["is_first"][:, 0].all()
