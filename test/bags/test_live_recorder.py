"""Live recorder core: serialised message streams -> one chunk per episode, read back by the store's own readers."""
import numpy as np
from replay_helpers import REWARD, SPEC

from ssm_mbrl_ros.core import frames
from ssm_mbrl_ros.bags.bag_info import bags_info
from ssm_mbrl_ros.bags.cdr import encode_float32_multiarray, encode_odometry, encode_twist_stamped
from ssm_mbrl_ros.bags.live_recorder import LiveRecorder, header_stamp_ns
from ssm_mbrl_ros.bags.replay import Replay
from ssm_mbrl_ros.bags.store import EpisodeStore, list_chunks

INFO = {"task": "hover", "vehicle": "agile5", "control_hz": 100.0, "action_spec": SPEC.to_dict(), "reward": REWARD}
T0 = 1_700_000_000_000_000_000


class Clock:
    def __init__(self):
        self.t = 0.0

    def __call__(self):
        return self.t


def stream(n, t0, seed):
    """n steps of odometry/command/privileged bytes at 100 Hz (stamps t0 + 10 ms k) and the true values."""
    rng = np.random.default_rng(seed)
    stamps = t0 + 10_000_000 * np.arange(n, dtype=np.int64)
    pos = rng.normal(size=(n, 3)) + [0, 0, 2]
    q = frames.quat_normalize(rng.normal(size=(n, 4)) * 0.1 + [1, 0, 0, 0])
    vel, omega = rng.normal(size=(n, 3)), rng.normal(size=(n, 3))
    ctbr = np.concatenate([rng.uniform(5, 15, (n, 1)), rng.uniform(-2, 2, (n, 3))], 1)
    odom = encode_odometry(stamps, pos, frames.quat_wxyz_to_xyzw(q), frames.quat_rotate(frames.quat_conjugate(q), vel),
                           omega)
    lin = np.zeros((n, 3))
    lin[:, 2] = ctbr[:, 0]
    cmd = encode_twist_stamped(stamps, lin, ctbr[:, 1:])
    priv = encode_float32_multiarray(rng.normal(size=(n, 25)).astype(np.float32))
    return stamps, odom, cmd, priv, {"pos": pos, "vel": vel, "ctbr": ctbr}


def feed(rec, clock, stamps, odom, cmd, priv):
    for k, t in enumerate(stamps):
        clock.t += 0.01
        rec.add("/odom", odom[k].tobytes(), int(t) + 300_000)  # received 0.3 ms after the stamp
        rec.add("/privileged", priv[k].tobytes(), int(t) + 400_000)
        rec.add("/cmd_ctbr", cmd[k].tobytes(), int(t) + 2_000_000)  # the answer, stamped like its odometry
        rec.poll()


def test_header_stamp_both_byte_orders():
    le = encode_twist_stamped(np.array([5_000_000_123]), np.zeros((1, 3)), np.zeros((1, 3)))[0].tobytes()
    assert header_stamp_ns(le) == 5_000_000_123
    be = b"\x00\x00\x00\x00" + (5).to_bytes(4, "big") + (123).to_bytes(4, "big")
    assert header_stamp_ns(be) == 5_000_000_123 and header_stamp_ns(b"\x00\x01") is None


def test_two_live_episodes_become_two_chunks_with_their_descriptions(tmp_path):
    clock = Clock()
    rec = LiveRecorder(EpisodeStore(tmp_path), INFO, chunk_every_s=60.0, clock=clock)
    s1, *m1, v1 = stream(80, T0, 1)
    s2, *m2, v2 = stream(60, int(s1[-1]) + 10_000_000, 2)  # continuous stamps: no gap between episodes
    rec.episode_start(T0 - 5_000_000_000, [0.0, 0.0, 1.5])  # latched setpoint from before the recording
    feed(rec, clock, s1, *m1)
    rec.episode_end({"terminated": True, "return": -3.0})
    rec.episode_start(int(s2[0]) + 200_000, [1.0, 0.0, 2.0])  # stamped just after the new episode's first odometry
    feed(rec, clock, s2, *m2)
    assert len(rec.chunks_written) == 1  # episode 1, written once episode 2 had started
    rec.close()
    assert [p.name for p in list_chunks(tmp_path)] == ["chunk_000000", "chunk_000001"]
    rp = Replay(tmp_path)
    data = rp.arrays()
    assert rp.report.problems == [] and len(data["obs"]) == 140
    assert np.flatnonzero(data["is_first"]).tolist() == [0, 80]
    assert data["cont"][79] == 0.0 and data["cont"][139] == 1.0  # episode 1 crashed, episode 2 was cut by close()
    np.testing.assert_allclose(data["ctbr"][:80], v1["ctbr"], rtol=1e-6)
    np.testing.assert_allclose(data["ctbr"][80:], v2["ctbr"], rtol=1e-6)
    np.testing.assert_allclose(data["obs"][:80, 0:3], np.array([0, 0, 1.5]) - v1["pos"], atol=1e-5)  # setpoint-relative
    np.testing.assert_allclose(data["obs"][80:, 0:3], np.array([1, 0, 2.0]) - v2["pos"], atol=1e-5)
    np.testing.assert_allclose(data["obs"][80:, 3:6], v2["vel"], atol=1e-5)
    assert np.isfinite(data["reward"]).all() and data["privileged_valid"].all()
    info = bags_info(tmp_path)
    assert [b["episodes"] for b in info["bags"]] == [1, 1] and info["report"]["problem_counts"] == {}
    assert info["bags"][0]["topics"]["/odom"]["count"] == 80 and info["bags"][1]["topics"]["/cmd_ctbr"]["count"] == 60


def test_long_episode_is_chunked_by_time_and_nothing_is_lost(tmp_path):
    clock = Clock()
    rec = LiveRecorder(EpisodeStore(tmp_path), INFO, chunk_every_s=0.5, clock=clock)
    s, *m, v = stream(230, T0, 3)
    feed(rec, clock, s, *m)
    rec.close()
    assert len(rec.chunks_written) == 5 and rec.messages == 3 * 230
    rp = Replay(tmp_path)
    data = rp.arrays()
    assert len(data["ctbr"]) == 230  # every odometry sample, across the pieces
    np.testing.assert_allclose(data["ctbr"], v["ctbr"], rtol=1e-6)
    assert np.isnan(data["reward"]).all()  # no setpoint was ever announced: reward unknown, reported
    assert rp.report.kinds()["reward_unknown"] == 5
