"""Learning studies (`ssm-mbrl study`): the study file is checked before anything trains, runs resume where they
stopped, and the report's seed bands are the seeds' curves; one real two-run study end to end."""
import json

import numpy as np
import pytest

from ssm_mbrl_ros.cli.main import main as cli_main
from ssm_mbrl_ros.cli.study import resolve_study_path
from ssm_mbrl_ros.core.config import ConfigError, apply_overrides
from ssm_mbrl_ros.train.study import DONE_FILE, load_study, run_overrides, run_state
from ssm_mbrl_ros.train.study_report import band, summarise

TINY = ("{task: hover, preset: tiny, minutes: 0.5, max_env_steps: 700, prefill_steps: 300, num_envs: 4, "
        "eval_every_min: 0.05, eval_episodes: 2, threads: 1, batch_size: 4, seq_len: 16, imag_starts: 16}")


def _write(tmp_path, variants: str, train: str = "{task: hover, minutes: 1}", extra: str = "") -> str:
    path = tmp_path / "st.yaml"
    path.write_text(f"description: test\ntrain: {train}\nseeds: [0, 1]\nvariants: {variants}\n{extra}")
    return str(path)


def test_shipped_studies_load_and_resolve_by_name():
    from pathlib import Path

    names = sorted(p.stem for p in (Path(__file__).parents[2] / "config" / "studies").glob("*.yaml"))
    assert {"hover_wm", "hover_partial", "hover_s5wm_latent", "smoke"} <= set(names)
    for name in names:  # every shipped study's variants resolve to valid training configs
        spec = load_study(resolve_study_path(name))
        assert spec.runs and len(spec.runs) == len(spec.seeds) * len(spec.variants)


def test_unknown_study_names_the_shipped_ones():
    with pytest.raises(ConfigError, match="hover_wm"):
        resolve_study_path("no_such_study")


def test_bad_variant_field_fails_before_training(tmp_path):
    with pytest.raises(ConfigError, match="variant bad.*no_such_field"):
        load_study(_write(tmp_path, "{good: {wm: s5}, bad: {no_such_field: 1}}"))
    with pytest.raises(ConfigError, match="unknown keys"):
        load_study(_write(tmp_path, "{a: {}}", extra="budget: 3\n"))
    with pytest.raises(ConfigError, match="seeds"):
        load_study(_write(tmp_path, "{a: {}}"), seeds=[-1])


def test_overrides_flatten_nested_fields_and_round_trip(tmp_path):
    spec = load_study(_write(tmp_path, "{a: {world_model: {latent_min_std: 0.01}, task_overrides: [control_hz=50]}}"),
                      train_overrides={"minutes": 2.5})
    ov = run_overrides(spec, "a", 1)
    assert ov[-1] == "seed=1" and "minutes=2.5" in ov and "world_model.latent_min_std=0.01" in ov
    data = apply_overrides({"world_model": {}}, ov)
    assert data["world_model"] == {"latent_min_std": 0.01} and data["task_overrides"] == ["control_hz=50"]
    assert data["seed"] == 1 and data["task"] == "hover" and data["minutes"] == 2.5
    assert [r for r in spec.runs] == [("a", 0), ("a", 1)]


def test_an_empty_variant_trains_the_defaults(tmp_path):
    spec = load_study(_write(tmp_path, "{defaults: {}, other: {wm: rssm}}"))
    assert run_overrides(spec, "defaults", 1) == ["task=hover", "minutes=1", "seed=1"]


def test_band_is_mean_min_max_of_interpolated_seeds():
    runs = [{"evals": [{"env_steps": 0, "r": 0.0}, {"env_steps": 100, "r": 10.0}]},
            {"evals": [{"env_steps": 0, "r": 2.0}, {"env_steps": 50, "r": 4.0}]}]
    b = band(runs, "r", "env_steps", np.array([0.0, 50.0, 100.0]))
    assert b["x"] == [0.0, 50.0]  # 100 is beyond the second seed's last evaluation
    assert b["mean"] == [1.0, 4.5] and b["min"] == [0.0, 4.0] and b["max"] == [2.0, 5.0]


def test_study_trains_resumes_and_reports(tmp_path):
    """A real tiny run; then a second seed is added: a started run without checkpoint is moved aside and trained
    again, a run with a checkpoint but no done file (killed at the end) continues with --resume rather than starting
    over; the report has both seeds' bands and final scores."""
    study = _write(tmp_path, "{s5: {wm: s5}}", train=TINY, extra="final_episodes: 2\n")
    out = tmp_path / "out"
    assert cli_main(["study", study, "--out", str(out), "--seeds", "0", "--no-progress"]) == 0
    assert run_state(out, "s5", 0) == "done"
    steps = json.loads((out / "s5-s0" / "summary.json").read_text())["env_steps"]
    (out / "s5-s0" / DONE_FILE).unlink()  # as if killed after training, before the done file
    assert run_state(out, "s5", 0) == "resume"
    (out / "s5-s1").mkdir()  # as if killed before its first checkpoint
    assert run_state(out, "s5", 1) == "partial"
    assert cli_main(["study", study, "--out", str(out), "--no-progress"]) == 0
    assert "resume" in (out / "s5-s0.log").read_text()
    assert json.loads((out / "s5-s0" / "summary.json").read_text())["env_steps"] == steps  # budget spent: no more
    assert run_state(out, "s5", 1) == "done" and list(out.glob("s5-s1.incomplete-*"))
    report = json.loads((out / "study.json").read_text())
    v = report["by_variant"]["s5"]
    assert v["seeds"] == [0, 1] and v["final"]["mean_return"]["n"] == 2
    assert v["curves_vs_env_steps"]["mean_return"]["x"] and (out / "study.png").stat().st_size > 10_000
    assert summarise(load_study(study), out)["runs"][1]["final"]["success_rate"] is not None
    assert "| s5 | 2 |" in (out / "study.md").read_text()
