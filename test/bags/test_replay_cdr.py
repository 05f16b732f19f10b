"""Bulk numpy CDR decoding equals rosbags' generic deserialiser; the MCAP scan finds every message."""
import numpy as np
from rosbags.rosbag2 import Reader, StoragePlugin, Writer

from ssm_mbrl_ros.bags.cdr import (decode_float32_multiarray_bulk, decode_odometry_bulk,
                                     decode_twist_stamped_bulk, odometry_fields, twist_stamped_fields)
from ssm_mbrl_ros.bags.mcap_scan import scan_mcap
from ssm_mbrl_ros.bags.store import typestore

TS = typestore()
T = TS.types


def _odom(rng, fid, cid):
    v = rng.normal(size=85)
    V3 = T["geometry_msgs/msg/Vector3"]
    return T["nav_msgs/msg/Odometry"](
        header=T["std_msgs/msg/Header"](stamp=T["builtin_interfaces/msg/Time"](
            sec=int(rng.integers(0, 2**31 - 1)), nanosec=int(rng.integers(0, 10**9))), frame_id=fid),
        child_frame_id=cid,
        pose=T["geometry_msgs/msg/PoseWithCovariance"](pose=T["geometry_msgs/msg/Pose"](
            position=T["geometry_msgs/msg/Point"](x=v[0], y=v[1], z=v[2]),
            orientation=T["geometry_msgs/msg/Quaternion"](x=v[3], y=v[4], z=v[5], w=v[6])), covariance=v[7:43]),
        twist=T["geometry_msgs/msg/TwistWithCovariance"](twist=T["geometry_msgs/msg/Twist"](
            linear=V3(x=v[43], y=v[44], z=v[45]), angular=V3(x=v[46], y=v[47], z=v[48])), covariance=v[49:85]))


def _pack(raws):
    lens = np.array([len(r) for r in raws])
    return b"".join(raws), np.concatenate([[0], np.cumsum(lens)[:-1]]), lens


def test_odometry_bulk_equals_generic_for_all_string_lengths():
    rng = np.random.default_rng(0)
    msgs = [_odom(rng, "o" * (i % 13), "base_link"[: (i // 13) % 10] + "x" * (i % 3)) for i in range(400)]
    raws = [bytes(TS.serialize_cdr(m, "nav_msgs/msg/Odometry")) for m in msgs]
    assert len({len(r) for r in raws}) > 3  # several alignments exercised
    d, ok = decode_odometry_bulk(*_pack(raws))
    assert ok.all()
    for i, raw in enumerate(raws):
        g = odometry_fields(TS.deserialize_cdr(raw, "nav_msgs/msg/Odometry"))
        for k, v in g.items():
            np.testing.assert_array_equal(np.asarray(v), d[k][i], err_msg=f"{k} msg {i}")


def test_twist_stamped_bulk_equals_generic_and_rejects_big_endian():
    rng = np.random.default_rng(1)
    raws = []
    for i in range(100):
        m = T["geometry_msgs/msg/TwistStamped"](
            header=T["std_msgs/msg/Header"](stamp=T["builtin_interfaces/msg/Time"](sec=i, nanosec=7 * i),
                                            frame_id="f" * (i % 9)),
            twist=T["geometry_msgs/msg/Twist"](linear=T["geometry_msgs/msg/Vector3"](*rng.normal(size=3)),
                                               angular=T["geometry_msgs/msg/Vector3"](*rng.normal(size=3))))
        raws.append(bytes(TS.serialize_cdr(m, "geometry_msgs/msg/TwistStamped")))
    raws[5] = b"\x00\x00" + raws[5][2:]  # claims big endian: must not be decoded in bulk
    d, ok = decode_twist_stamped_bulk(*_pack(raws))
    assert not ok[5] and ok.sum() == 99
    j = 0
    for i, raw in enumerate(raws):
        if i == 5:
            continue
        g = twist_stamped_fields(TS.deserialize_cdr(raw, "geometry_msgs/msg/TwistStamped"))
        assert g["stamp_ns"] == d["stamp_ns"][j]
        np.testing.assert_array_equal(g["lin"], d["lin"][j])
        np.testing.assert_array_equal(g["ang"], d["ang"][j])
        j += 1


def test_float32_multiarray_bulk():
    rows = np.random.default_rng(2).normal(size=(20, 25)).astype(np.float32)
    M = T["std_msgs/msg/Float32MultiArray"]
    L = T["std_msgs/msg/MultiArrayLayout"]
    raws = [bytes(TS.serialize_cdr(M(layout=L(dim=[], data_offset=0), data=r), "std_msgs/msg/Float32MultiArray"))
            for r in rows]
    d, ok = decode_float32_multiarray_bulk(*_pack(raws))
    assert ok.all()
    np.testing.assert_array_equal(d["data"], rows)


def test_mcap_scan_matches_rosbags_reader(tmp_path):
    rng = np.random.default_rng(3)
    path = tmp_path / "bag"
    with Writer(path, version=9, storage_plugin=StoragePlugin.MCAP) as w:
        c1 = w.add_connection("/odom", "nav_msgs/msg/Odometry", typestore=TS)
        c2 = w.add_connection("/other", "std_msgs/msg/String", typestore=TS)
        for i in range(3000):  # > 1 MiB: several chunks, each with message indexes
            w.write(c1, 1000 + i, bytes(TS.serialize_cdr(_odom(rng, "odom", "base_link"), "nav_msgs/msg/Odometry")))
            if i % 7 == 0:
                w.write(c2, 1000 + i, bytes(TS.serialize_cdr(T["std_msgs/msg/String"](data="x" * i), "std_msgs/msg/String")))
    scan = scan_mcap(next(path.glob("*.mcap")))
    assert scan.complete and not scan.error
    got = {}
    for ch in scan.by_topic().values():
        log, off, ln = ch.arrays()
        got[ch.topic] = [(int(t), scan.buffer[o:o + n]) for t, o, n in zip(log, off, ln)]
    with Reader(path) as r:
        want = {}
        for conn, t, raw in r.messages():
            want.setdefault(conn.topic, []).append((t, bytes(raw)))
    assert got == want
    assert len(got["/odom"]) == 3000


def test_bulk_encoders_are_byte_identical_to_rosbags():
    from ssm_mbrl_ros.bags.cdr import encode_float32_multiarray, encode_odometry, encode_twist_stamped
    from ssm_mbrl_ros.bags.store import _MsgFactory

    f, rng, n = _MsgFactory(), np.random.default_rng(5), 20
    st = rng.integers(0, 2**60, n)
    pos, q, lin, ang = (rng.normal(size=(n, k)) for k in (3, 4, 3, 3))
    rows = encode_odometry(st, pos, q, lin, ang)
    ctbr = np.concatenate([rng.normal(size=(n, 1)), ang], 1)
    lin_cmd = np.concatenate([np.zeros((n, 2)), ctbr[:, :1]], 1)
    cmd = encode_twist_stamped(st, lin_cmd, ang)
    priv = rng.normal(size=(n, 25)).astype(np.float32)
    prow = encode_float32_multiarray(priv)
    for i in range(n):
        assert rows[i].tobytes() == f.odom(int(st[i]), pos[i], q[i], lin[i], ang[i])
        assert cmd[i].tobytes() == f.cmd(int(st[i]), ctbr[i])
        assert prow[i].tobytes() == f.priv(priv[i])
