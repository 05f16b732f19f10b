"""Smoke test of the world-model benchmark at tiny sizes: JSON keys and sane values."""
from ssm_mbrl_ros.bench.wm import bench_wm
from ssm_mbrl_ros.world_models.config import wm_preset


def test_bench_wm_tiny_reports_both_models():
    out = bench_wm(batch=2, lengths=(8, 32), cfg=wm_preset("tiny"), horizon=3, repeats=1)
    for key in ("s5_ms", "rssm_ms", "speedup"):
        assert set(out[key]) == {"8", "32"} and all(v > 0 for v in out[key].values())
    assert set(out["observe_speedup"]) == {"8", "32"}
    for key in ("imagine_ms", "observe_ms", "peak_mem_mb"):
        assert set(out[key]) == {"s5", "rssm"}
        assert all(set(v) == {"8", "32"} for v in out[key].values())
    for kind in ("s5", "rssm"):
        mem = out["peak_mem_mb"][kind]
        assert 0 < mem["8"] < mem["32"]  # activations grow with sequence length
    assert abs(out["speedup"]["32"] - out["rssm_ms"]["32"] / out["s5_ms"]["32"]) < 1e-9
    assert out["params"]["s5"] > 0 and out["params"]["rssm"] > 0 and out["batch"] == 2
    split = out["full_update_split_ms"]["s5"]["32"]
    assert set(split) == {"world_model", "imagine", "actor", "critic", "optimizer_steps"}
    assert 0 < split["optimizer_steps"] < split["world_model"] + split["actor"] + split["critic"]
    assert out["torch"] and out["device"] == "cpu" and out["config"]["deter"] == wm_preset("tiny").deter
