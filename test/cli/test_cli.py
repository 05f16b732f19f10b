"""The `ssm-mbrl` console script end to end: evaluate, bench sim, --help, and clear errors."""
import json
import subprocess
import sys
from pathlib import Path

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


def test_racing_reports_lap_times(tmp_path):
    out = tmp_path / "r.json"
    res = _run("evaluate", "--task", "racing", "--episodes", "2", "--json", str(out), "--no-progress",
               "--set", "episode_length_s=10")
    assert res.returncode == 0, res.stderr
    m = json.loads(out.read_text())
    assert m["laps_completed"] >= 2 and 3.0 < m["lap_time_s"] < 15.0


def test_unknown_names_fail_with_the_valid_choices():
    res = _run("evaluate", "--task", "backflip", "--episodes", "1")
    assert res.returncode == 2 and "figure8" in res.stderr and "hover" in res.stderr
    res = _run("evaluate", "--task", "hover", "--controller", "magic", "--episodes", "1")
    assert res.returncode == 2 and "geometric" in res.stderr
    res = _run("evaluate", "--task", "hover", "--vehicle", "jumbo", "--episodes", "1")
    assert res.returncode == 2 and "agile5" in res.stderr
    res = _run("evaluate", "--task", "hover", "--set", "episode_length_s=abc", "--episodes", "1")
    assert res.returncode == 2 and "episode_length_s" in res.stderr


def test_bench_sim_writes_json(tmp_path):
    out = tmp_path / "b.json"
    res = _run("bench", "sim", "--envs", "64,256", "--min-env-steps", "2000", "--no-compile",
               "--json", str(out), "--no-progress")
    assert res.returncode == 0, res.stderr
    b = json.loads(out.read_text())
    assert set(b["by_envs"]) == {"64", "256"}
    assert b["env_steps_per_s"] == max(b["by_envs"].values()) > 0
    assert b["physics_hz"] == 500.0 and b["control_hz"] == 100.0
