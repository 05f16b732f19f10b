"""Task registry/config errors, analytic trajectory derivatives, racing gate passing and lap times."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from ssm_mbrl_ros.core.config import ConfigError
from ssm_mbrl_ros.sim.tasks import list_tasks, load_task_config, make_task, task_config_path
from ssm_mbrl_ros.sim.tasks.trajectories import CircleTrajectory, Figure8Trajectory

F64 = torch.float64


def test_task_names_and_unknown_name_lists_valid_ones():
    names = list_tasks()
    for n in ("hover", "circle", "figure8", "racing"):
        assert n in names and n + "_partial" in names
    with pytest.raises(ConfigError) as exc:
        load_task_config("hoover")
    assert "hover_partial" in str(exc.value) and "racing" in str(exc.value)


def test_presets_found_and_partial_suffix_sets_observation():
    for fam in ("hover", "circle", "figure8", "racing"):
        assert task_config_path(fam) is not None
        assert load_task_config(fam).observation == "full"
        assert load_task_config(fam + "_partial").observation == "partial"
    assert load_task_config("circle").trajectory == "circle"
    assert load_task_config("figure8", ["speed_mps=4.5"]).speed_mps == 4.5


@pytest.mark.parametrize("text, field", [
    ("episode_length_s: ten\n", "episode_length_s"),
    ("radius_m: -1.0\n", "radius_m"),
    ("sensors:\n  pos_delay_steps: -2\n", "pos_delay_steps"),
    ("randomization:\n  mass_scale: [1.2, 0.8]\n", "mass_scale"),
    ("no_such_field: 1\n", "no_such_field"),
    ("physics_hz: 250.0\n", "physics_hz"),
    ("trajectory: figure8\n", "trajectory"),
])
def test_bad_yaml_names_file_and_field(tmp_path, text, field):
    path = tmp_path / "circle.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as exc:
        load_task_config("circle", path=path)
    assert str(path) in str(exc.value) and field in str(exc.value)


def test_bad_override_is_config_error():
    with pytest.raises(ConfigError, match="speed_mps"):
        load_task_config("circle", ["speed_mps=fast"])


def _finite_diff_check(traj, t):
    h = 1e-5
    pos, vel, acc, jerk = traj.evaluate(t)
    for f, df in ((0, vel), (1, acc), (2, jerk)):
        plus, minus = traj.evaluate(t + h)[f], traj.evaluate(t - h)[f]
        np.testing.assert_allclose((plus - minus) / (2 * h), df, atol=1e-5 * (1 + df.abs().max().item()))
    np.testing.assert_allclose(traj.position(t), pos, atol=1e-12)


def test_circle_and_figure8_derivatives_match_finite_differences():
    t = torch.linspace(0.0, 7.0, 57, dtype=F64)
    _finite_diff_check(CircleTrajectory((1.0, -2.0, 2.5), 2.0, 4.0), t)
    _finite_diff_check(Figure8Trajectory((0.0, 0.0, 2.0), 3.0, 1.5, 4.0), t)


def test_trajectory_speeds():
    circle = CircleTrajectory((0.0, 0.0, 2.0), 2.0, 4.0)
    t = torch.linspace(0.0, circle.period_s, 1000, dtype=F64)
    np.testing.assert_allclose(circle.evaluate(t)[1].norm(dim=-1), 4.0, rtol=1e-12)
    # centripetal acceleration v^2 / r
    np.testing.assert_allclose(circle.evaluate(t)[2].norm(dim=-1), 8.0, rtol=1e-12)
    fig8 = Figure8Trajectory((0.0, 0.0, 2.0), 3.0, 1.5, 4.0)
    t = torch.linspace(0.0, fig8.period_s, 20001, dtype=F64)
    pos, vel, _, _ = fig8.evaluate(t)
    assert vel.norm(dim=-1).max().item() == pytest.approx(4.0, rel=1e-6)
    assert pos[:, 0].max().item() == pytest.approx(3.0, rel=1e-6)
    assert pos[:, 1].max().item() == pytest.approx(1.5, rel=1e-6)
    np.testing.assert_allclose(pos[0], pos[-1], atol=1e-9)  # closed after one period


def test_tracking_observation_holds_relative_reference_points():
    task = make_task("figure8", 3, dtype=F64)
    gen = torch.Generator().manual_seed(0)
    pos, _, _ = task.reset(torch.arange(3), gen)
    obs = task.observe(pos.t()).t()  # struct-of-arrays in and out
    assert obs.shape == (3, 3 * 5 + 3)
    tau = task.time_s + task.phase_s
    for k in range(5):
        expected = task.trajectory.position(tau + 0.1 * k) - pos
        np.testing.assert_allclose(obs[:, 3 * k:3 * k + 3], expected, atol=1e-12)
    np.testing.assert_allclose(obs[:, 15:18], task.reference()["vel"], atol=1e-12)
    assert len(set(task.phase_s.tolist())) == 3  # random phase per env


def test_tracking_precision_term_adds_a_sharp_peak_on_the_reference():
    plain, sharp = (make_task("figure8", 4, dtype=F64, overrides=ov)
                    for ov in ([], ["reward.precision_weight=2", "reward.precision_scale_m=0.05"]))
    gen = torch.Generator().manual_seed(0)
    plain.reset(torch.arange(4), gen)
    sharp.phase_s[:] = plain.phase_s
    state = torch.zeros(4, 17, dtype=F64)
    state[:, 3] = 1.0
    ref_pos, ref_vel = plain.reference()["pos"], plain.reference()["vel"]
    offsets = torch.tensor([0.0, 0.05, 0.1, 0.5], dtype=F64)
    state[:, 0:3] = ref_pos + offsets[:, None] * torch.tensor([1.0, 0.0, 0.0], dtype=F64)
    state[:, 7:10] = ref_vel
    a, b = plain.step(state.t()), sharp.step(state.t())
    np.testing.assert_allclose(a.pos_err_m, offsets, atol=1e-9)
    np.testing.assert_allclose(b.reward - a.reward, 2.0 * np.exp(-offsets.numpy() / 0.05), atol=1e-9)
    with pytest.raises(ConfigError, match="precision_scale_m"):
        load_task_config("figure8", ["reward.precision_scale_m=0"])


def test_hover_reward_peaks_at_setpoint():
    task = make_task("hover", 3, dtype=F64)
    task.setpoint_m[:] = torch.tensor([0.0, 0.0, 2.0], dtype=F64)
    state = torch.zeros(3, 17, dtype=F64)
    state[:, 3] = 1.0
    state[:, 0:3] = torch.tensor([[0.0, 0.0, 2.0], [0.5, 0.0, 2.0], [1.0, 0.0, 2.0]], dtype=F64)
    out = task.step(state.t())
    np.testing.assert_allclose(out.pos_err_m, [0.0, 0.5, 1.0], atol=1e-12)
    # alive bonus 0.5 + exp(-distance / 1 m) at zero velocity (config/tasks/hover.yaml)
    np.testing.assert_allclose(out.reward, 0.5 + np.exp(-np.array([0.0, 0.5, 1.0]) / 1.0), atol=1e-12)


def test_hover_precision_term_adds_a_sharp_peak_and_is_off_as_evaluated():
    from ssm_mbrl_ros.sim.tasks.hover import HoverReward, hover_task_reward

    dist = np.array([0.0, 0.05, 0.1, 0.3, 2.0])
    plain = hover_task_reward(HoverReward(), dist, np.zeros(5))
    sharp = HoverReward(precision_weight=2.0, precision_scale_m=0.05)
    np.testing.assert_allclose(hover_task_reward(sharp, dist, np.zeros(5)) - plain, 2.0 * np.exp(-dist / 0.05),
                               atol=1e-12)
    # the torch path (imagined rewards) and a bag's recorded weights without the field give the same numbers
    torch.testing.assert_close(hover_task_reward(sharp, torch.tensor(dist), torch.zeros(5)),
                               torch.tensor(hover_task_reward(sharp, dist, np.zeros(5))))
    recorded = {"alive_bonus": 0.5, "pos_weight": 1.0, "pos_scale_m": 1.0, "vel_weight": 0.01}
    np.testing.assert_allclose(hover_task_reward(recorded, dist, np.zeros(5)), plain)
    with pytest.raises(ConfigError, match="precision_scale_m"):
        load_task_config("hover", ["reward.precision_scale_m=0"])


@pytest.mark.parametrize("fraction", [0.0, 0.5, 1.0])
def test_hover_near_starts_begin_near_the_setpoint(fraction):
    n = 400
    task = make_task("hover", n, dtype=F64, overrides=[f"near_start_fraction={fraction}", "near_start_radius_m=0.3"])
    pos, _, _ = task.reset(torch.arange(n), torch.Generator().manual_seed(0))
    offset = (pos - task.setpoint_m).abs().max(dim=1).values
    near = float((offset <= 0.3 + 1e-12).double().mean())
    assert abs(near - fraction) < 0.1  # box starts within 0.3 m of the setpoint on every axis are rare (~0.2 %)
    if fraction == 0.0:  # the task as evaluated draws exactly what it drew before the curriculum existed
        plain = make_task("hover", n, dtype=F64)
        torch.testing.assert_close(plain.reset(torch.arange(n), torch.Generator().manual_seed(0))[0], pos)


def _line_racing_task(n=1):
    gates = [[0.0, 0.0, 2.0, 0.0], [5.0, 0.0, 2.0, 0.0], [10.0, 0.0, 2.0, 0.0], [15.0, 0.0, 2.0, 0.0]]
    cfg = load_task_config("racing", [f"gates={gates}", "bounds_low_m=[-30, -30, -1]", "bounds_high_m=[30, 30, 8]"])
    task = make_task("racing", n, dtype=F64, config=cfg)
    task.reset(torch.arange(n), torch.Generator().manual_seed(0))
    return task


def _fly(task, positions):
    """Feed scripted positions (T, N, 3) through the task, advancing time each step."""
    outs = []
    for p in positions:
        state = torch.zeros(p.shape[0], 17, dtype=F64)
        state[:, 3] = 1.0
        state[:, 0:3] = p
        task.advance_time()
        outs.append((task.step(state.t()), {k: v.clone() for k, v in task.step_info().items()}))
    return outs


def test_racing_straight_line_passes_gates_and_reports_lap_time():
    task = _line_racing_task()
    v, dt = 4.0, task.dt_s
    start = torch.tensor([-2.0, 0.1, 2.05], dtype=F64)
    steps = int(19.0 / (v * dt))
    xs = [start + torch.tensor([v * dt * (k + 1), 0.0, 0.0], dtype=F64) for k in range(steps)]
    task._prev[:] = torch.stack(task.gates.plane_coords(start.unsqueeze(1)), 0)
    outs = _fly(task, torch.stack(xs).unsqueeze(1))
    passed_at = [k for k, (o, info) in enumerate(outs) if info["gate_passed"][0]]
    assert len(passed_at) == 4
    for gate_x, k in zip((0.0, 5.0, 10.0, 15.0), passed_at):
        # crossed between the positions of steps k-1 and k
        assert xs[k - 1][0] < gate_x <= xs[k][0]
    assert not any(o.collision[0] for o, _ in outs)
    lap_step = passed_at[-1]
    info = outs[lap_step][1]
    assert info["lap_completed"][0] and info["laps"][0] == 1
    # lap time: time of the step that crossed the last gate, from the episode start
    assert info["lap_time_s"][0].item() == pytest.approx((lap_step + 1) * dt)
    assert abs(info["lap_time_s"][0].item() - 17.0 / v) <= dt + 1e-9
    assert math.isnan(outs[lap_step - 1][1]["lap_time_s"][0].item())
    bonus = [o.reward[0].item() for o, _ in outs]
    assert bonus[passed_at[0]] > 4.0 and abs(bonus[passed_at[0] - 1]) < 1.0  # gate bonus 5 on passing


def test_racing_frame_hit_is_collision_and_wrong_order_does_not_count():
    task = _line_racing_task(3)
    # env 0 clips the frame of gate 0 (lateral 0.8 m: outside the shrunk opening, inside the frame)
    # env 1 flies past gate 0 far outside it; env 2 starts after gate 0 and flies through gate 1
    starts = torch.tensor([[-1.0, 0.8, 2.0], [-1.0, 3.0, 2.0], [3.0, 0.0, 2.0]], dtype=F64)
    task.reset(torch.arange(3), torch.Generator().manual_seed(0))
    task._prev[:] = torch.stack(task.gates.plane_coords(starts.t()), 0)
    path = torch.stack([starts + torch.tensor([0.05 * (k + 1), 0.0, 0.0], dtype=F64) for k in range(60)])
    outs = _fly(task, path)
    collided = torch.stack([o.collision for o, _ in outs]).any(0)
    assert collided.tolist() == [True, False, False]
    assert outs[-1][1]["gates_passed"].tolist() == [0, 0, 0]
    assert outs[-1][1]["gate_index"].tolist() == [0, 0, 0]


def test_racing_reference_path_flies_through_every_gate_in_order():
    task = make_task("racing", 1, dtype=F64)
    task.reset(torch.arange(1), torch.Generator().manual_seed(0))
    n_steps = int(1.25 * task.path.length_m / task.cfg.ref_speed_mps / task.dt_s)
    refs, outs = [], []
    for _ in range(n_steps):
        task.advance_time()
        ref = task.reference()
        refs.append(ref)
        state = torch.zeros(1, 17, dtype=F64)
        state[:, 3] = 1.0
        state[:, 0:3] = ref["pos"]
        outs.append(task.step(state.t()))
    assert task.laps[0].item() == 1 and not any(o.collision[0] for o in outs)
    assert min(r["pos"][0, 2].item() for r in refs) > 0.5
    # reference velocity/acceleration consistent with finite differences of the reference
    pos = torch.cat([r["pos"] for r in refs])
    vel = torch.cat([r["vel"] for r in refs])
    acc = torch.cat([r["acc"] for r in refs])
    dt = task.dt_s
    fd_vel = (pos[2:] - pos[:-2]) / (2 * dt)
    fd_acc = (vel[2:] - vel[:-2]) / (2 * dt)
    assert (fd_vel - vel[1:-1]).norm(dim=1).max().item() < 0.05
    assert (fd_acc - acc[1:-1]).norm(dim=1).median().item() < 0.3
    assert vel[-1].norm().item() == pytest.approx(task.cfg.ref_speed_mps, rel=1e-3)
    assert len(task.gates.corners()) == 5 and task.reference_path().shape[1] == 3


def test_presets_searched_in_source_tree_and_installed_share_dir(monkeypatch, tmp_path):
    import sys

    from ssm_mbrl_ros.sim import tasks

    monkeypatch.setattr(sys, "prefix", str(tmp_path))
    dirs = tasks.task_config_dirs()
    assert dirs[0].parts[-2:] == ("config", "tasks") and dirs[0].parent.parent.joinpath("ssm_mbrl_ros").is_dir()
    assert tmp_path / "share" / "ssm_mbrl_ros" / "config" / "tasks" in dirs
    # an installed share dir is used when the source tree has no preset
    share = tmp_path / "share" / "ssm_mbrl_ros" / "config" / "tasks"
    share.mkdir(parents=True)
    (share / "hover.yaml").write_text("episode_length_s: 3.0\n")
    monkeypatch.setattr(tasks, "task_config_dirs", lambda: [tmp_path / "missing", share])
    assert load_task_config("hover").episode_length_s == 3.0


def test_hover_reward_ranks_hovering_above_flying_and_flying_above_crashing():
    """The default hover reward makes staying airborne worth more than crashing at once (docs/learning.md)."""
    from ssm_mbrl_ros.control.experts import make_agent
    from ssm_mbrl_ros.evaluation.rollout import run_episodes
    from ssm_mbrl_ros.sim.env import make_env

    def mean_return(agent_fn):
        env = make_env("hover", 8, seed=4)
        return float(run_episodes(env, agent_fn(env), seed=4, record=0, progress=False).episode_return.mean())

    class Drop:  # zero thrust: falls to the ground
        physical = False

        def reset(self, env_ids=None):
            pass

        def act(self, obs, env):
            return torch.tensor([-1.0, 0.0, 0.0, 0.0]).expand(obs.shape[0], 4)

    geometric = mean_return(lambda env: make_agent("geometric", env))
    open_loop = mean_return(lambda env: make_agent("hover", env))  # hover thrust, no feedback: drifts, then ends
    crash = mean_return(lambda env: Drop())
    assert geometric > open_loop > crash, (geometric, open_loop, crash)
