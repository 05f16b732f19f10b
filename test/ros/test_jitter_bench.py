"""`bench jitter`: the bare periodic loop counts every cycle, reports lateness, and names a stall the host imposes."""
import json
import time

from ssm_mbrl_ros.bench import jitter
from ssm_mbrl_ros.cli.main import main as cli_main


def test_quiet_loop_counts_cycles_and_lateness():
    r = jitter.bench_jitter(rate_hz=200.0, duration_s=0.25)
    assert r["cycles"] == 50 and r["scheduling"] == "default"
    lat = r["lateness_ms"]
    assert 0.0 <= lat["p50"] <= lat["p99"] <= lat["max"]
    assert [w["late_ms"] for w in r["worst"]] == sorted((w["late_ms"] for w in r["worst"]), reverse=True)


def test_a_stall_longer_than_a_period_is_counted_at_its_time(monkeypatch):
    real_sleep, calls = time.sleep, []

    def sleep_with_one_stall(s):
        calls.append(s)
        real_sleep(s + (0.030 if len(calls) == 10 else 0.0))  # the host takes the core for 30 ms once

    monkeypatch.setattr(jitter.time, "sleep", sleep_with_one_stall)
    r = jitter.bench_jitter(rate_hz=100.0, duration_s=0.5)
    assert r["stalls"] >= 1 and r["lateness_ms"]["max"] >= 20.0
    assert r["worst"][0]["late_ms"] >= 20.0 and 0.0 <= r["worst"][0]["t_s"] <= 0.2


def test_cli_writes_json_and_refuses_bad_rate(tmp_path, capsys):
    out = tmp_path / "j.json"
    assert cli_main(["bench", "jitter", "--rate", "100", "--duration", "0.2", "--json", str(out)]) == 0
    assert json.loads(out.read_text())["cycles"] == 20
    assert cli_main(["bench", "jitter", "--rate", "0"]) == 2
    assert "--rate" in capsys.readouterr().err
