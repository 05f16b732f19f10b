"""Message <-> array conversions: odometry round trip (world velocity through the body frame) and CTBR."""
import numpy as np
from builtin_interfaces.msg import Time
from geometry_msgs.msg import TwistStamped
from nav_msgs.msg import Odometry

from ssm_mbrl_ros.core.frames import quat_conjugate, quat_normalize, quat_rotate
from ssm_mbrl_ros.ros.conversions import ctbr_to_twist, odom_to_state17, state17_to_odom, twist_to_ctbr


def test_odometry_round_trip_and_body_frame_twist():
    rng = np.random.default_rng(0)
    for _ in range(200):
        s = np.zeros(17)
        s[0:3] = rng.normal(0, 3, 3)
        s[3:7] = quat_normalize(rng.normal(size=4))
        s[7:13] = rng.normal(0, 2, 6)
        msg = state17_to_odom(s, Odometry(), Time(sec=1, nanosec=2))
        v = msg.twist.twist.linear
        np.testing.assert_allclose([v.x, v.y, v.z], quat_rotate(quat_conjugate(s[3:7]), s[7:10]), atol=1e-12)
        back = odom_to_state17(msg, np.full(17, np.nan))
        np.testing.assert_allclose(back[:13], s[:13], atol=1e-12)
        assert np.all(back[13:] == 0.0)
    assert msg.header.frame_id == "odom" and msg.child_frame_id == "base_link"


def test_ctbr_round_trip():
    ctbr = np.array([9.5, 0.1, -0.2, 0.3])
    msg = ctbr_to_twist(ctbr, TwistStamped(), Time(sec=3))
    assert msg.twist.linear.x == msg.twist.linear.y == 0.0 and msg.header.frame_id == "base_link"
    np.testing.assert_array_equal(twist_to_ctbr(msg, np.zeros(4)), ctbr)


def test_frame_prefix_follows_the_namespace_and_reaches_every_frame_id():
    import numpy as np
    from geometry_msgs.msg import TwistStamped
    from nav_msgs.msg import Odometry

    from ssm_mbrl_ros.ros.conversions import ctbr_to_twist, frame_ids, resolve_frame_prefix, state17_to_odom
    from ssm_mbrl_ros.ros.viz import odom_transform, path_msg, task_markers

    assert resolve_frame_prefix("auto", "/") == "" and resolve_frame_prefix("auto", "/drone1") == "drone1/"
    assert resolve_frame_prefix("auto", "/fleet/drone2") == "fleet/drone2/"
    assert resolve_frame_prefix("", "/drone1") == "" and resolve_frame_prefix("uav7", "/") == "uav7/"
    frames = frame_ids(resolve_frame_prefix("auto", "/drone1"))
    assert frames == ("drone1/odom", "drone1/base_link")
    state = np.r_[0.0, 0.0, 1.0, 1.0, 0.0, 0.0, 0.0, np.zeros(10)]
    odom = state17_to_odom(state, Odometry(), Odometry().header.stamp, frames)
    assert (odom.header.frame_id, odom.child_frame_id) == frames
    tf = odom_transform(state, odom.header.stamp, frames=frames)
    assert (tf.header.frame_id, tf.child_frame_id) == frames
    assert ctbr_to_twist(np.zeros(4), TwistStamped(), odom.header.stamp, frames[1]).header.frame_id == frames[1]
    assert path_msg(np.zeros((2, 3)), odom.header.stamp, world_frame=frames[0]).header.frame_id == frames[0]
    markers = task_markers(odom.header.stamp, [0, 0, 1], None, np.zeros((3, 3)), frames[0])
    assert {m.header.frame_id for m in markers.markers} == {"drone1/odom"}
