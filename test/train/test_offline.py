"""`ssm-mbrl bags record` -> real MCAP store -> `ssm-mbrl train-offline`: held-out prediction improves."""
import json

import pytest

from ssm_mbrl_ros.cli.main import main


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    d = tmp_path_factory.mktemp("flights") / "store"
    assert main(["bags", "record", "--out", str(d), "--episodes", "10", "--episodes-per-chunk", "5",
                 "--action-noise", "0.05", "--set", "episode_length_s=2"]) == 0
    return d


def test_train_offline_reports_heldout_error_and_improves(store, tmp_path):
    out = tmp_path / "off"
    assert main(["train-offline", "--bags", str(store), "--out", str(out), "--updates", "400", "--preset", "tiny", "--seq-len", "32",
                 "--horizons", "1,10,25", "--no-progress"]) == 0
    rep = json.loads((out / "report.json").read_text())
    assert rep["bags"] >= 1 and rep["episodes"] == 10 and rep["heldout_steps"] > 0
    before, after = rep["before_training"]["pos_rmse_m"], rep["heldout"]["pos_rmse_m"]
    assert set(after) == {"1", "10", "25"}
    assert after["1"] < 0.8 * before["1"], (before, after)  # learning from bags helps on unseen episodes
    assert (out / "predictions.png").stat().st_size > 10_000 and (out / "world_model.pt").is_file()
    # fine-tuning starts from the saved model: its error before training equals the first run's final error
    out2 = tmp_path / "off2"
    assert main(["train-offline", "--bags", str(store), "--out", str(out2), "--init", str(out / "world_model.pt"),
                 "--updates", "1", "--seq-len", "32", "--horizons", "1,10,25", "--no-progress"]) == 0
    rep2 = json.loads((out2 / "report.json").read_text())
    assert rep2["before_training"]["pos_rmse_m"]["1"] == pytest.approx(after["1"], rel=1e-5)


def test_train_offline_bad_input(tmp_path, capsys):
    assert main(["train-offline", "--bags", str(tmp_path / "none"), "--out", str(tmp_path / "o")]) == 2
    assert "no such file" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert main(["train-offline", "--bags", str(tmp_path / "empty"), "--out", str(tmp_path / "o")]) == 2
    assert "no rosbag2 bags" in capsys.readouterr().err
    assert main(["train-offline", "--bags", str(tmp_path), "--wm", "lstm", "--out", str(tmp_path / "o")]) == 2
    assert "valid: ['s5', 'rssm']" in capsys.readouterr().err
