"""Torch-free ONNX policy runtime: torch parity, checksum/sidecar errors, reset, clamps, torch blocked."""
import io
import json
import subprocess
import sys

import numpy as np
import pytest
import torch
from torch import nn

from ssm_mbrl_ros.core.spaces import ActionSpec, ObsField, ObsLayout
from ssm_mbrl_ros.runtime.policy import OnnxPolicy, PolicyLoadError
from ssm_mbrl_ros.runtime.sidecar import SidecarError, load_sidecar, sidecar_path, write_sidecar
from ssm_mbrl_ros.world_models.s5 import S5Stack

SPEC = ActionSpec(0.0, 20.0, (8.0, 8.0, 3.0))


def layout(dim: int) -> ObsLayout:
    """A made-up observation layout of width dim (pos error 3 + the rest)."""
    return ObsLayout((ObsField("pos_err", 3, "m", "world ENU"), ObsField("rest", dim - 3, "", "")))


class TinyPolicy(nn.Module):
    """Stand-in for the exported graph: MLP encoder -> S5Stack.step -> actor MLP (tanh) + surprise head."""

    def __init__(self, obs_dim=22, hidden=256, n_layers=2, d_model=256, d_state=64):
        super().__init__()
        self.enc = nn.Sequential(nn.Linear(obs_dim, hidden), nn.SiLU(), nn.Linear(hidden, d_model))
        self.core = S5Stack(n_layers, d_model, d_state, norm="layer")
        self.actor = nn.Sequential(nn.Linear(d_model, hidden), nn.SiLU(), nn.Linear(hidden, 4))
        self.pred = nn.Linear(d_model, d_model)

    @property
    def state_size(self):
        return self.core.state_size

    def forward(self, obs, state, is_first):
        """obs (B, D), state (B, S), is_first (B,) -> action (B, 4), state_out (B, S), surprise (B,)."""
        u = self.enc(obs)
        y, new_state = self.core.step(u, state, is_first)
        action = torch.tanh(self.actor(y))
        surprise = (self.pred(y) - u).pow(2).mean(-1)
        return action, new_state, surprise


def export_policy(model, path, obs_dim, first_dtype=torch.float32, input_names=("obs", "state", "is_first")):
    """Export with the agreed signature (opset 17, IR 10, dynamic batch) and write the sidecar."""
    import onnx
    model = model.eval()
    args = (torch.zeros(2, obs_dim), torch.zeros(2, model.state_size), torch.zeros(2, dtype=first_dtype))
    buf = io.BytesIO()
    names = list(input_names)
    torch.onnx.export(model, args, buf, dynamo=False, opset_version=17, input_names=names,
                      output_names=["action", "state_out", "surprise"],
                      dynamic_axes={n: {0: "B"} for n in names + ["action", "state_out", "surprise"]})
    m = onnx.load_from_string(buf.getvalue())
    m.ir_version = min(m.ir_version, 10)
    onnx.save(m, str(path))
    write_sidecar(path, obs_layout=layout(obs_dim), action_spec=SPEC, state_size=model.state_size,
                  control_hz=100.0, vehicle="agile_quad", task="hover", training_config={"seed": 0})
    return path


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    """A small exported policy (fast tests) and its torch module."""
    torch.manual_seed(0)
    model = TinyPolicy(obs_dim=10, hidden=32, n_layers=2, d_model=32, d_state=16).eval()
    path = export_policy(model, tmp_path_factory.mktemp("small") / "small.onnx", 10)
    return model, path


@pytest.fixture(scope="module")
def realistic(tmp_path_factory):
    """A random-weight policy of deployable size: obs 22, MLP 256, S5 2 x (d_model 256, state 64)."""
    torch.manual_seed(1)
    model = TinyPolicy().eval()
    path = export_policy(model, tmp_path_factory.mktemp("real") / "hover.onnx", 22)
    return model, path


@pytest.mark.parametrize("batch", [1, 256])
def test_torch_vs_onnxruntime_parity_over_rollout(realistic, batch):
    model, path = realistic
    pol = OnnxPolicy(path)
    pol.reset(batch)
    rng = np.random.default_rng(batch)
    state = model.core.initial_state(batch)
    first = torch.ones(batch)
    act = np.zeros((batch, 4), np.float32)
    worst = worst_state = 0.0
    for t in range(200):
        obs = (rng.standard_normal((batch, 22)) * 0.5).astype(np.float32)
        obs[:, -4:] = act  # closed-loop-ish: last action is part of the observation
        if t == 120:  # episode restart for half the rows, mid-rollout
            rows = np.arange(batch) % 2 == 0
            pol.reset_where(rows)
            first = torch.as_tensor(rows, dtype=torch.float32)
            state = state * torch.as_tensor(~rows, dtype=torch.float32)[:, None]
        with torch.no_grad():
            a_t, state, s_t = model(torch.from_numpy(obs), state, first)
        first = torch.zeros(batch)
        act, ctbr, surprise = pol.step(obs[0] if batch == 1 and t % 2 else obs)
        act = act.reshape(batch, 4)
        worst = max(worst, float(np.abs(act - a_t.numpy()).max()))
        worst = max(worst, float(np.abs(np.reshape(surprise, -1) - s_t.numpy()).max()) / max(1.0, float(s_t.abs().max())))
        worst_state = max(worst_state, float(np.abs(pol.state - state.numpy()).max()))
    assert worst <= 1e-4, worst
    assert worst_state <= 1e-3, worst_state
    assert np.abs(act).max() <= 1.0


def test_reset_zeroes_state_and_repeats_first_step(small):
    _, path = small
    pol = OnnxPolicy(path)
    obs = np.random.default_rng(0).standard_normal((3, 10)).astype(np.float32)
    pol.reset(3)
    assert pol.batch_size == 3 and not pol.state.any()
    assert (pol._first == 1).all()  # the next step is marked is_first
    a0, _, _ = pol.step(obs)
    assert not pol._first.any()
    assert pol.state.any()
    a1, _, _ = pol.step(obs)
    assert np.abs(a1 - a0).max() > 1e-6  # the state changes the action
    pol.reset()
    assert not pol.state.any() and (pol._first == 1).all()
    a2, _, _ = pol.step(obs)
    np.testing.assert_allclose(a2, a0, atol=1e-6)
    # reset_where restarts only the chosen rows
    pol.step(obs)
    pol.reset_where([False, True, False])
    s = pol.state
    assert not s[1].any() and s[0].any() and s[2].any()
    with pytest.raises(ValueError, match="obs must be"):
        pol.step(obs[:2])


def test_physical_mapping_clamps(small, monkeypatch):
    _, path = small
    pol = OnnxPolicy(path)
    pol.reset(1)
    # Make the "network" output out-of-range values: patch the bound output buffer after the run.
    real_run = pol._run_session.run_with_iobinding

    def fake_run(binding):
        real_run(binding)
        pol._action[0] = [3.0, -7.0, 0.5, 1.0]
    monkeypatch.setattr(pol._run_session, "run_with_iobinding", fake_run)
    act, ctbr, _ = pol.step(np.zeros(10, np.float32))
    assert act.shape == (4,) and ctbr.shape == (4,)
    np.testing.assert_allclose(ctbr, [20.0, -8.0, 4.0, 3.0], atol=1e-5)
    np.testing.assert_allclose(pol.act_physical(np.zeros(10, np.float32)), ctbr, atol=1e-5)
    np.testing.assert_allclose(ctbr, SPEC.to_physical(np.array([3.0, -7.0, 0.5, 1.0])), atol=1e-5)


def test_checksum_truncation_and_sidecar_errors(small, tmp_path):
    model, path = small
    data = path.read_bytes()
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(data)
    sidecar_path(bad).write_text(sidecar_path(path).read_text())
    OnnxPolicy(bad)  # identical copy loads
    bad.write_bytes(data[: len(data) // 2])  # truncated
    with pytest.raises(PolicyLoadError, match="checksum mismatch"):
        OnnxPolicy(bad)
    # Truncated model with a sidecar recomputed for it: onnxruntime refuses it, with the file named.
    meta = json.loads(sidecar_path(path).read_text())
    write_sidecar(bad, obs_layout=meta["obs_layout"], action_spec=meta["action_spec"], state_size=meta["state_size"],
                  control_hz=100.0, vehicle="v", task="t")
    with pytest.raises(PolicyLoadError, match="bad.onnx.*cannot load"):
        OnnxPolicy(bad)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        OnnxPolicy(tmp_path / "missing.onnx")
    # Sidecar problems name the file and the key.
    good = tmp_path / "good.onnx"
    good.write_bytes(data)
    for key, value, msg in [("state_size", "48", "'state_size'"), ("obs_layout", None, "'obs_layout'"),
                            ("onnx_sha256", "abc", "'onnx_sha256'"), ("format_version", 99, "'format_version'")]:
        m = dict(meta)
        if value is None:
            del m[key]
        else:
            m[key] = value
        sidecar_path(good).write_text(json.dumps(m))
        with pytest.raises(SidecarError, match=f"good.json.*{msg}"):
            load_sidecar(good)
    sidecar_path(good).unlink()
    with pytest.raises(SidecarError, match="good.json.*does not exist"):
        OnnxPolicy(good)
    # Sidecar that disagrees with the graph's shapes.
    for key, value, msg in [("state_size", meta["state_size"] + 1, "state"), ]:
        m = dict(meta, **{key: value})
        sidecar_path(good).write_text(json.dumps(m))
        with pytest.raises(PolicyLoadError, match=f"good.onnx: {msg}"):
            OnnxPolicy(good)
    m = dict(meta, obs_layout=layout(11).to_dict())
    with pytest.raises(PolicyLoadError, match="obs last dim is 10 but the sidecar needs 11"):
        OnnxPolicy(good, sidecar=m)


def test_wrong_input_names_rejected(tmp_path):
    torch.manual_seed(0)
    model = TinyPolicy(obs_dim=6, hidden=8, n_layers=1, d_model=8, d_state=4)
    path = export_policy(model, tmp_path / "names.onnx", 6, input_names=("x", "state", "is_first"))
    with pytest.raises(PolicyLoadError, match="graph inputs"):
        OnnxPolicy(path)


def test_bool_is_first_graph(tmp_path):
    torch.manual_seed(0)
    model = TinyPolicy(obs_dim=6, hidden=8, n_layers=1, d_model=8, d_state=4).eval()
    path = export_policy(model, tmp_path / "boolfirst.onnx", 6, first_dtype=torch.bool)
    pol = OnnxPolicy(path)
    assert pol._first_dtype == np.bool_
    obs = np.ones((1, 6), np.float32)
    a, _, _ = pol.step(obs)
    with torch.no_grad():
        a_t, _, _ = model(torch.from_numpy(obs), model.core.initial_state(1), torch.ones(1, dtype=torch.bool))
    np.testing.assert_allclose(a, a_t.numpy(), atol=1e-5)


BLOCKED_RUN = """
import importlib.abc, sys
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name.split('.')[0] == 'torch':
            raise ImportError('torch blocked for this test: ' + name)
sys.meta_path.insert(0, Block())
import numpy as np
from ssm_mbrl_ros.runtime.policy import OnnxPolicy
import ssm_mbrl_ros.runtime.sidecar, ssm_mbrl_ros.bench.policy
pol = OnnxPolicy(sys.argv[1])
a, ctbr, s = pol.step(np.zeros(pol.obs_dim, np.float32))
assert a.shape == (4,) and ctbr.shape == (4,), (a.shape, ctbr.shape)
assert 'torch' not in sys.modules
print('OK', ctbr.tolist())
"""


def test_runtime_runs_with_torch_blocked(small):
    _, path = small
    r = subprocess.run([sys.executable, "-c", BLOCKED_RUN, str(path)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and "OK" in r.stdout, r.stderr[-2000:]


def test_bench_policy_keys(small, tmp_path):
    from ssm_mbrl_ros.bench.policy import bench_policy
    _, path = small
    out = bench_policy(path, steps=200, batch_big=64, big_iters=3, warmup=10, json_path=tmp_path / "b.json")
    lat = out["latency_us"]
    assert 0 < lat["p50"] <= lat["p99"] <= lat["max"]
    assert out["batch64_steps_per_s"] > 0
    assert json.loads((tmp_path / "b.json").read_text())["latency_us"]["p50"] == lat["p50"]


def test_bench_policy_cli(small, tmp_path, capsys):
    from ssm_mbrl_ros.cli.main import main

    _, path = small
    out = tmp_path / "p.json"
    assert main(["bench", "policy", "--policy", str(path), "--steps", "200", "--batch-big", "32",
                 "--json", str(out)]) == 0
    assert json.loads(out.read_text())["latency_us"]["p99"] > 0
    assert "p50" in capsys.readouterr().out
    assert main(["bench", "policy", "--policy", str(tmp_path / "missing.onnx")]) != 0


def test_task_overrides_of_a_sidecar_rebuild_the_training_task():
    from ssm_mbrl_ros.runtime.sidecar import task_overrides_of

    spec = {"thrust_min_mps2": 4.9, "thrust_max_mps2": 14.7, "max_rate_radps": [5.0, 5.0, 2.0]}
    side = {"control_hz": 25.0, "action_spec": spec, "task_overrides": ["reward.alive_bonus=0.5", "control_hz=50"]}
    assert task_overrides_of(side) == ["reward.alive_bonus=0.5", "control_hz=25", "policy_thrust_mps2=[4.9,14.7]",
                                       "policy_max_rate_radps=[5,5,2]"]
    older = {"control_hz": 100.0, "action_spec": spec,
             "training_config": {"train": {"task_overrides": ["episode_length_s=5"]}}}
    assert task_overrides_of(older)[:2] == ["episode_length_s=5", "control_hz=100"]


def test_a_stray_models_folder_does_not_shadow_a_shipped_policy(tmp_path, monkeypatch):
    from ssm_mbrl_ros.runtime.models import find_model

    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "hover.onnx").write_bytes(b"not a model")
    monkeypatch.chdir(tmp_path)
    shipped = find_model("hover")
    assert shipped.parent != tmp_path / "models" and shipped.stat().st_size > 1000
    assert find_model("models/hover.onnx").resolve() == tmp_path / "models" / "hover.onnx"  # a path is used as given
