"""The `ssm-mbrl` console script end to end: evaluate, bench sim, --help, and clear errors."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

EXE = str(Path(sys.executable).with_name("ssm-mbrl"))


def _run(*args, timeout=300):
    return subprocess.run([EXE, *args], capture_output=True, text=True, timeout=timeout)


def test_help_lists_commands_and_every_evaluate_option_is_explained():
    res = _run("evaluate", "--help")
    assert res.returncode == 0
    for opt in ("--task", "--controller", "--vehicle", "--episodes", "--seed", "--json", "--plot", "--set"):
        assert opt in res.stdout


def test_evaluate_writes_metrics_json_and_png(tmp_path):
    out = tmp_path / "m.json"
    res = _run("evaluate", "--task", "figure8", "--controller", "geometric", "--episodes", "4",
               "--set", "episode_length_s=3", "--json", str(out), "--no-progress")
    assert res.returncode == 0, res.stderr
    m = json.loads(out.read_text())
    for key in ("success_rate", "pos_rmse_m", "crash_rate", "lap_time_s", "episodes"):
        assert key in m
    assert m["episodes"] == 4 and m["crash_rate"] == 0.0
    assert m["pos_rmse_m"] < 0.3  # the geometric controller tracks the 4 m/s figure-8
    png = out.with_suffix(".png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("args, expected", [
    (["--task", "backflip"], ["figure8", "hover"]),
    (["--controller", "magic"], ["geometric"]),
    (["--vehicle", "jumbo"], ["agile5"]),
    (["--set", "episode_length_s=abc"], ["episode_length_s"]),
    (["--episodes", "0"], ["--episodes"]),
])
def test_bad_input_fails_with_exit_2_naming_the_problem(args, expected, capsys):
    from ssm_mbrl_ros.cli.main import main

    assert main(["evaluate", "--no-progress", *args]) == 2
    err = capsys.readouterr().err
    for word in expected:
        assert word in err


def test_bench_sim_writes_json(tmp_path):
    out = tmp_path / "b.json"
    res = _run("bench", "sim", "--envs", "64,256", "--min-env-steps", "2000", "--no-compile",
               "--json", str(out), "--no-progress", "--set", "control_hz=50")
    assert res.returncode == 0, res.stderr
    b = json.loads(out.read_text())
    assert set(b["by_envs"]) == {"64", "256"}
    assert b["env_steps_per_s"] == max(b["by_envs"].values()) > 0
    assert b["physics_hz"] == 500.0 and b["control_hz"] == 50.0  # the task's rate, with --set on top


def test_bench_wm_and_replay_write_json(tmp_path, capsys):
    from ssm_mbrl_ros.cli.main import main

    wm = tmp_path / "wm.json"
    assert main(["bench", "wm", "--preset", "tiny", "--lengths", "8,16", "--repeats", "1", "--json", str(wm)]) == 0
    w = json.loads(wm.read_text())
    assert set(w["s5_ms"]) == set(w["rssm_ms"]) == set(w["speedup"]) == {"8", "16"}
    assert all(w["speedup"][t] == pytest.approx(w["rssm_ms"][t] / w["s5_ms"][t], rel=1e-6) for t in ("8", "16"))
    rp = tmp_path / "replay.json"
    assert main(["bench", "replay", "--msgs", "2000", "--json", str(rp)]) == 0
    r = json.loads(rp.read_text())
    assert r["ingest_msgs_per_s"] > 0 and r["sample_ms"] > 0 and r["odometry_msgs"] == 2000
