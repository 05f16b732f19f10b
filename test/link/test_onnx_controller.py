"""An exported hover policy as the link's controller: the observation equals the simulator's, bad models refused."""
import numpy as np
import pytest
import torch

from ssm_mbrl_ros.agent.actor_critic import Actor
from ssm_mbrl_ros.export.policy_graph import export_policy
from ssm_mbrl_ros.link.onnx_controller import OnnxHoverController
from ssm_mbrl_ros.sim.env import make_env
from ssm_mbrl_ros.world_models.factory import make_world_model
from ssm_mbrl_ros.world_models.config import wm_preset


def exported(task, tmp_path):
    env = make_env(task, 1, seed=3)
    wm = make_world_model(wm_preset("tiny"), env.obs_layout.dim, 4, 0)
    path = export_policy(wm, Actor(wm.feat_dim, hidden=16), tmp_path / f"{task}.onnx", obs_layout=env.obs_layout,
                         action_spec=env.action_spec, control_hz=100.0, vehicle="agile5", task=task)
    return env, path


def test_observation_matches_the_simulator_and_ctbr_is_in_limits(tmp_path):
    env, path = exported("hover", tmp_path)
    obs, _ = env.reset(seed=3)
    target = env.task.setpoint_m[0].double().numpy()
    ctrl = OnnxHoverController(path, target, carrot_m=100.0)
    state = env.sim.state[0].double().numpy()
    np.testing.assert_allclose(ctrl.observation(state), obs[0].numpy(), atol=1e-5)
    ctbr = ctrl(state, 0.0)
    spec = env.action_spec
    assert ctbr.shape == (4,) and spec.thrust_min_mps2 <= ctbr[0] <= spec.thrust_max_mps2
    assert np.all(np.abs(ctbr[1:]) <= np.asarray(spec.max_rate_radps) + 1e-6)
    assert ctrl.last_surprise is not None and ctrl.last_surprise >= 0.0
    # far targets are approached through a carrot of carrot_m metres
    far = OnnxHoverController(path, target + np.array([10.0, 0, 0]), carrot_m=1.0)
    assert np.linalg.norm(far.observation(state)[:3]) == pytest.approx(1.0, abs=1e-5)


def test_non_hover_policy_is_refused(tmp_path):
    _, path = exported("hover_partial", tmp_path)
    with pytest.raises(ValueError, match="not the layout"):
        OnnxHoverController(path, [0, 0, 1.5])


def test_policy_runs_at_its_trained_rate_and_holds_the_command_between_steps(tmp_path):
    env = make_env("hover", 1, seed=3, overrides=["control_hz=25"])
    wm = make_world_model(wm_preset("tiny"), env.obs_layout.dim, 4, 0)
    actor = Actor(wm.feat_dim, hidden=16)
    with torch.no_grad():
        actor.net[-1].weight.normal_(0.0, 1.0)  # an action that depends on the state
    path = export_policy(wm, actor, tmp_path / "p25.onnx", obs_layout=env.obs_layout, action_spec=env.action_spec,
                         control_hz=25.0, vehicle="agile5", task="hover")
    ctrl = OnnxHoverController(path, [0.0, 0.0, 2.0])
    calls = []
    real_step = ctrl.policy.step
    ctrl.policy.step = lambda *a, **k: calls.append(1) or real_step(*a, **k)
    state = env.sim.state[0].double().numpy()
    outputs = []
    for i in range(100):  # a 100 Hz loop for 1 s: 25 policy steps, each command held for 4 loop periods
        state = state.copy()
        state[10] = 0.01 * i  # the state changes every loop period
        outputs.append(ctrl(state, i * 0.01).copy())
    assert len(calls) == 25
    assert all(np.array_equal(outputs[4 * k], outputs[4 * k + j]) for k in range(25) for j in range(1, 4))


def test_tracking_observation_matches_the_simulator_at_the_same_phase(tmp_path):
    from ssm_mbrl_ros.link.onnx_controller import OnnxController, controller_for

    env, path = exported("figure8", tmp_path)
    env.reset(seed=3)
    obs, *_ = env.step(torch.zeros(1, 4))  # 0.01 s into the episode
    ctrl = controller_for(path, [0.0, 0.0, 0.0])
    assert isinstance(ctrl, OnnxController) and ctrl.reference.trajectory.period_s == env.task.trajectory.period_s
    ctrl.reference.phase_s, ctrl.reference.anchor_t_s = float(env.task.phase_s[0]), 0.0
    ctrl.last_action[:] = env.last_action[0].numpy()
    state = env.sim.state[0].double().numpy()
    t_s = float(env.task.time_s[0])
    np.testing.assert_allclose(ctrl.observation(state, t_s), obs[0].numpy(), atol=2e-5)
    ctbr = ctrl(state, t_s)
    assert ctbr.shape == (4,) and np.all(np.isfinite(ctbr))


def test_tracking_phase_anchors_on_position_and_velocity():
    """The phase found from a state on the reference is its own, also at the figure-8's crossing point where two
    branches share the position and only the velocity tells them apart."""
    from ssm_mbrl_ros.link.onnx_controller import TrajectoryReference
    from ssm_mbrl_ros.sim.tasks.trajectories import Figure8Trajectory

    traj = Figure8Trajectory((0.0, 0.0, 2.0), 3.0, 1.5, 2.0)
    ref = TrajectoryReference(traj, 5, 0.1)
    spacing = traj.period_s / 2000
    for phase in (0.0, traj.period_s / 2, 0.3 * traj.period_s, 0.77 * traj.period_s):  # 0 and T/2: the crossing
        pos, vel = (x.ravel() for x in traj.evaluate(np.array([phase]))[:2])
        found = ref.anchor(pos, vel, t_s=5.0)
        assert abs(found - phase) <= spacing, (phase, found)
        assert ref.tau_s(5.5) == pytest.approx(found + 0.5)
    # a point 0.1 m off the reference still anchors within 0.1 s of the phase (2 m/s peak speed)
    pos, vel = (x.ravel() for x in traj.evaluate(np.array([1.0]))[:2])
    assert abs(ref.anchor(pos + np.array([0.05, -0.05, 0.05]), vel, 0.0) - 1.0) < 0.1


def test_only_known_tasks_are_flown(tmp_path):
    from ssm_mbrl_ros.link.onnx_controller import controller_for

    _, path = exported("hover_partial", tmp_path)
    with pytest.raises(ValueError, match="hover_partial policy cannot be flown"):
        controller_for(path, [0, 0, 1.5])
