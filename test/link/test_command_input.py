"""When the fc_link node acts on a command: on its timer in real time; in lockstep on the answer to the newest
state, free-running on the timer only after the controller stayed silent past the timeout."""
import numpy as np

from ssm_mbrl_ros.link.command_input import CommandInput


def test_real_time_acts_on_the_timer_only():
    c = CommandInput(lockstep=False)
    c.state_published(100, 0.0)
    assert not c.received([9.81, 0, 0, 0], 100, 5.0)  # never acts from the subscription
    assert c.timer_due(0.0) and c.timer_due(10.0)
    np.testing.assert_array_equal(c.ctbr, [9.81, 0, 0, 0])
    assert c.received_s == 5.0 and c.stamp_ns == 100


def test_lockstep_acts_on_the_answer_and_free_runs_after_silence():
    c = CommandInput(lockstep=True, timeout_s=0.5)
    assert not c.timer_due(0.0)  # nothing published yet: wait
    c.state_published(100, 1.0)
    assert not c.received([1, 0, 0, 0], 90, 0.0)  # answers an older state: hold it, do not step
    assert c.received([2, 0, 0, 0], 100, 0.0)  # answers the newest state: step now
    c.acted(1.01)
    assert not c.timer_due(1.2)  # waiting for the FC's next step / the next answer
    c.state_published(110, 1.2)
    assert not c.timer_due(1.6)
    assert c.timer_due(1.71) and c.free_run  # silent for more than 0.5 s: keep time moving
    assert c.timer_due(1.72)
    assert not c.received([3, 0, 0, 0], 100, 0.0) and c.free_run  # a stale answer does not end free-running
    assert c.received([3, 0, 0, 0], 110, 0.0) and not c.free_run  # the answer to the newest state does
