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
