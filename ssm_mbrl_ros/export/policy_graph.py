"""The deployable policy graph and its ONNX export (the contract runtime/policy.py checks).

One graph holds everything the policy needs to keep its belief: the world model's encoder and
posterior, the one-step sequence filter (S5 recurrence or RSSM GRU) and the actor's mean action.
The recurrent state is explicit, packed as state = [world-model carry (pack order), previous
action (4)], so the graph is a pure function (obs, state, is_first) -> (action, state_out, surprise).
The latent is the posterior mode (deterministic flight); surprise = KL(posterior || prior) in nats,
summed over latent groups: how much the observation disagreed with the model's prediction.
"""
from __future__ import annotations

import io
import time
import warnings
from pathlib import Path

import torch
from torch import nn

from ..runtime.sidecar import write_sidecar

OPSET = 17  # onnxruntime >= 1.14 runs it; opset 17 has LayerNormalization as one op
IR_VERSION = 10  # pinned: the IR version onnxruntime 1.2x accepts (newer torch may write 11)
INPUTS = ["obs", "state", "is_first"]
OUTPUTS = ["action", "state_out", "surprise"]


class PolicyGraph(nn.Module):
    """World-model filter + actor as one stateful step: (obs, state, is_first) -> (action, state_out, surprise)."""

    def __init__(self, world_model, actor):
        super().__init__()
        self.wm, self.actor = world_model, actor
        self.action_dim = world_model.action_dim
        self.carry_size = world_model.export_state_size

    @property
    def state_size(self) -> int:
        """Width S of the packed recurrent state: world-model carry + previous action."""
        return self.carry_size + self.action_dim

    def initial_state(self, batch: int) -> torch.Tensor:
        """Zero state (B, S) (the graph also zeroes rows itself where is_first)."""
        p = next(self.parameters())
        return p.new_zeros(batch, self.state_size)

    def forward(self, obs: torch.Tensor, state: torch.Tensor, is_first: torch.Tensor):
        """obs (B, D), state (B, S), is_first (B,) float or bool -> action (B, A), state_out (B, S), surprise (B,)."""
        first = is_first.to(obs.dtype)
        state = state * (1.0 - first).unsqueeze(-1)
        carry = self.wm.unpack_carry(state[:, :self.carry_size])
        prev_action = state[:, self.carry_size:]
        # an actor trained on sampled latents flies on the posterior mode: deterministic, and a traced random
        # draw would freeze the export batch size into the graph
        latent = "mode" if self.actor.latent == "sample" else self.actor.latent
        carry, feat, post, prior = self.wm.act_step(carry, obs, prev_action, first, latent)
        action = self.actor.mean_action(feat)
        surprise = self.wm.latent_kl(post, prior)
        return action, torch.cat([self.wm.pack_carry(carry), action], dim=-1), surprise


def export_onnx(graph: PolicyGraph, path, obs_dim: int) -> Path:
    """Write graph to path as ONNX (opset OPSET, IR IR_VERSION, dynamic batch); returns the path."""
    import onnx

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    was_training = graph.training
    graph = graph.eval()
    p = next(graph.parameters())
    args = (torch.zeros(2, obs_dim, dtype=p.dtype, device=p.device), graph.initial_state(2),
            torch.zeros(2, dtype=p.dtype, device=p.device))
    buf = io.BytesIO()
    # dynamo=False: the TorchScript exporter handles the S5 step and argmax-free latents in one
    # deterministic graph on CPU in well under a second; passing it explicitly pins the behaviour
    # across torch releases whose default changed.
    with warnings.catch_warnings():  # shape checks are constant for a trace: their TracerWarnings are noise
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        torch.onnx.export(graph, args, buf, dynamo=False, opset_version=OPSET, input_names=INPUTS,
                          output_names=OUTPUTS, dynamic_axes={n: {0: "B"} for n in INPUTS + OUTPUTS})
    model = onnx.load_from_string(buf.getvalue())
    model.ir_version = min(model.ir_version, IR_VERSION)
    onnx.checker.check_model(model)
    tmp = path.with_name(path.name + ".tmp")
    onnx.save(model, str(tmp))
    tmp.replace(path)  # atomic: a reader never sees a half-written model
    graph.train(was_training)
    return path


def export_policy(world_model, actor, path, *, obs_layout, action_spec, control_hz: float, vehicle: str,
                  task: str, training_config: dict | None = None, **extra) -> Path:
    """Export world model + actor to `path` (.onnx) and write its sidecar; returns the .onnx path."""
    graph = PolicyGraph(world_model, actor)
    if obs_layout.dim != world_model.obs_dim:
        raise ValueError(f"obs_layout has {obs_layout.dim} values but the world model reads {world_model.obs_dim}")
    with torch.no_grad():
        export_onnx(graph, path, world_model.obs_dim)
    write_sidecar(path, obs_layout=obs_layout, action_spec=action_spec, state_size=graph.state_size,
                  control_hz=control_hz, vehicle=vehicle, task=task, training_config=training_config or {},
                  world_model=world_model.cfg.kind, state_layout={"carry": world_model.carry_sizes(),
                                                                  "prev_action": world_model.action_dim},
                  exported_unix_s=round(time.time(), 3), **extra)
    return Path(path)
