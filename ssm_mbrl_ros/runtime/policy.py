"""Run an exported recurrent policy with onnxruntime + numpy only (never torch).

Graph contract (what export/ writes and this runtime checks), B = batch (dynamic axis 0):

    inputs   obs       (B, obs_dim) float32   observation laid out as the sidecar's obs_layout
             state     (B, S)       float32   recurrent belief state, S = sidecar state_size
             is_first  (B,)         float32 or bool   1/True on an episode's first step
                                              (the graph zeroes that row's state itself)
    outputs  action    (B, 4)       float32   normalised CTBR in [-1, 1] (mean action)
             state_out (B, S)       float32   state to feed back on the next step
             surprise  (B,)         float32   world-model per-step prediction error (monitoring)

The normalised action is mapped to physical CTBR by the sidecar's ActionSpec, with clamps:
mass-normalised collective thrust in m/s^2 and body rates (FLU) in rad/s.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort

from ssm_mbrl_ros.runtime.sidecar import (action_spec_of, load_sidecar, obs_layout_of, sha256_file,
                                          validate_sidecar)

INPUTS = ("obs", "state", "is_first")
OUTPUTS = ("action", "state_out", "surprise")
ACTION_DIM = 4


class PolicyLoadError(ValueError):
    """The model file or its sidecar does not match the graph contract."""


def session_options(threads: int = 1, batch: int | None = None) -> ort.SessionOptions:
    """SessionOptions tuned for batch-1 latency: `threads` intra-op, 1 inter-op, sequential, all optimisations; a
    given batch fixes the graph's batch axis "B" to it, so the optimiser folds every shape computation into
    constants (fewer nodes per step)."""
    so = ort.SessionOptions()
    if batch is not None:
        so.add_free_dimension_override_by_name("B", int(batch))
    so.intra_op_num_threads = int(threads)
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.enable_cpu_mem_arena = True
    so.log_severity_level = 3
    return so


def _dim(d):
    """Static int size of a graph dim, or None for a symbolic/unknown one."""
    return d if isinstance(d, int) else None


class OnnxPolicy:
    """A stateful ONNX recurrent policy: checks the model against its sidecar, then step() per control tick."""

    def __init__(self, onnx_path, sidecar: dict | None = None, threads: int = 1):
        """Load onnx_path (+ `<name>.json` unless a sidecar dict is given) and verify checksum, names, shapes."""
        self.path = Path(onnx_path)
        if not self.path.is_file():
            raise FileNotFoundError(f"policy model {self.path} does not exist")
        if sidecar is None:
            sidecar = load_sidecar(self.path)
        else:
            sidecar = validate_sidecar(sidecar, where=f"sidecar given for {self.path}")
        self.sidecar = sidecar
        sha = sha256_file(self.path)
        if sha != sidecar["onnx_sha256"]:
            raise PolicyLoadError(f"{self.path}: checksum mismatch: file SHA-256 {sha} but sidecar says "
                                  f"{sidecar['onnx_sha256']} (truncated/modified model or wrong sidecar)")
        self.obs_layout = obs_layout_of(sidecar)
        self.obs_dim = self.obs_layout.dim
        self.state_size = int(sidecar["state_size"])
        self.control_hz = float(sidecar["control_hz"])
        self.action_spec = action_spec_of(sidecar)
        scale, offset = self.action_spec.scale_offset()
        self._scale, self._offset = scale.astype(np.float32), offset.astype(np.float32)
        self.threads = threads
        self._sessions: dict[int | None, ort.InferenceSession] = {}
        self._check_graph(self._session(1))  # batch 1 (flight) first; other batch sizes load the dynamic graph
        layout = sidecar.get("state_layout")
        # state = [world-model carry, previous action (4)] (export/policy_graph.py) when the sidecar says so
        self._prev_action_slot = (slice(self.state_size - ACTION_DIM, self.state_size)
                                  if isinstance(layout, dict) and layout.get("prev_action") == ACTION_DIM else None)
        self._batch = 0
        self.reset(1)

    def _session(self, batch: int | None) -> ort.InferenceSession:
        """The session for a fixed batch size (None: the dynamic graph), created once per size."""
        if batch not in self._sessions:
            try:
                self._sessions[batch] = ort.InferenceSession(
                    str(self.path), sess_options=session_options(self.threads, batch), providers=["CPUExecutionProvider"])
            except Exception as e:  # noqa: BLE001 - onnxruntime raises several types for bad files
                raise PolicyLoadError(f"{self.path}: onnxruntime cannot load the model: {e}") from e
        return self._sessions[batch]

    def _check_graph(self, session: ort.InferenceSession):
        """Input/output names, element types and static shapes must match the contract and the sidecar."""
        ins = {i.name: i for i in session.get_inputs()}
        outs = {o.name: o for o in session.get_outputs()}
        if set(ins) != set(INPUTS):
            raise PolicyLoadError(f"{self.path}: graph inputs {sorted(ins)} != expected {sorted(INPUTS)}")
        if not set(OUTPUTS) <= set(outs):
            raise PolicyLoadError(f"{self.path}: graph outputs {sorted(outs)} lack {sorted(set(OUTPUTS) - set(outs))}")
        want = {"obs": (2, self.obs_dim), "state": (2, self.state_size), "action": (2, ACTION_DIM),
                "state_out": (2, self.state_size), "surprise": (1, None)}
        for name, (rank, last) in want.items():
            arg = ins.get(name) or outs[name]
            shape = arg.shape
            if shape is not None and len(shape) != rank:
                raise PolicyLoadError(f"{self.path}: {name} has rank {len(shape)} {shape}, expected {rank}")
            if last is not None and shape is not None and _dim(shape[-1]) not in (None, last):
                raise PolicyLoadError(f"{self.path}: {name} last dim is {shape[-1]} but the sidecar needs {last}")
            if arg.type != "tensor(float)":
                raise PolicyLoadError(f"{self.path}: {name} must be float32, graph has {arg.type}")
        first = ins["is_first"]
        if first.type not in ("tensor(float)", "tensor(bool)"):
            raise PolicyLoadError(f"{self.path}: is_first must be float32 or bool, graph has {first.type}")
        if first.shape is not None and len(first.shape) != 1:
            raise PolicyLoadError(f"{self.path}: is_first must be (B,), graph has {first.shape}")
        self._first_dtype = np.bool_ if first.type == "tensor(bool)" else np.float32

    def _bind(self, state_in: np.ndarray, state_out: np.ndarray) -> ort.IOBinding:
        """An IOBinding reading the preallocated inputs and writing the preallocated outputs (no copies)."""
        b = self._run_session.io_binding()
        B = self._batch
        b.bind_input("obs", "cpu", 0, np.float32, [B, self.obs_dim], self._obs.ctypes.data)
        b.bind_input("state", "cpu", 0, np.float32, [B, self.state_size], state_in.ctypes.data)
        b.bind_input("is_first", "cpu", 0, self._first_dtype, [B], self._first.ctypes.data)
        b.bind_output("action", "cpu", 0, np.float32, [B, ACTION_DIM], self._action.ctypes.data)
        b.bind_output("state_out", "cpu", 0, np.float32, [B, self.state_size], state_out.ctypes.data)
        b.bind_output("surprise", "cpu", 0, np.float32, [B], self._surprise.ctypes.data)
        return b

    def reset(self, batch_size: int | None = None):
        """Zero the recurrent state and mark every row is_first; (re)allocate buffers for batch_size rows."""
        B = self._batch if batch_size is None else int(batch_size)
        if B <= 0:
            raise ValueError(f"batch_size must be > 0, got {B}")
        if B != self._batch:
            self._batch = B
            self._obs = np.zeros((B, self.obs_dim), np.float32)
            self._states = [np.zeros((B, self.state_size), np.float32) for _ in range(2)]
            self._first = np.ones((B,), self._first_dtype)
            self._action = np.zeros((B, ACTION_DIM), np.float32)
            self._ctbr = np.zeros((B, ACTION_DIM), np.float32)
            self._surprise = np.zeros((B,), np.float32)
            # batch 1 (flight) gets a graph with its batch axis fixed; other sizes share the dynamic one
            self._run_session = self._session(1 if B == 1 else None)
            self._single_views = (self._action[0], self._ctbr[0], self._surprise[0:1].reshape(()))  # (D,) obs
            # Ping-pong: binding k reads states[k] and writes states[1 - k].
            self._bindings = [self._bind(self._states[0], self._states[1]), self._bind(self._states[1], self._states[0])]
        self._cur = 0
        self._states[0].fill(0.0)
        self._states[1].fill(0.0)
        self._first.fill(1)
        self._first_pending = True  # is_first goes back to 0 after the next step

    def reset_where(self, mask):
        """Zero the state of rows where mask (B,) is true and mark them is_first (vector-env episode ends)."""
        m = np.asarray(mask, dtype=bool).reshape(-1)
        if m.shape != (self._batch,):
            raise ValueError(f"reset mask must be ({self._batch},), got {np.asarray(mask).shape}")
        self._states[self._cur][m] = 0.0
        self._first[m] = 1
        self._first_pending = True

    def set_prev_action(self, action) -> bool:
        """Make the next step read `action` (B, 4) normalised as the previous action, e.g. the action actually
        executed after exploration noise; False (state untouched) when the sidecar declares no such slot."""
        if self._prev_action_slot is None:
            return False
        a = np.asarray(action, np.float32).reshape(self._batch, ACTION_DIM)
        self._states[self._cur][:, self._prev_action_slot] = a
        return True

    @property
    def batch_size(self) -> int:
        """Rows per step (set by reset)."""
        return self._batch

    @property
    def state(self) -> np.ndarray:
        """Copy of the current recurrent state (B, S) that the next step reads."""
        return self._states[self._cur].copy()

    def step(self, obs, copy: bool = True):
        """One control tick: obs (B, D) or (D,) -> (action_norm (B, 4) in [-1, 1], ctbr (B, 4) m/s^2 + rad/s, surprise (B,)).

        A (D,) obs returns (4,), (4,), scalar-shaped (,) arrays. copy=False returns views into internal
        buffers, valid until the next step (no allocation at all).
        """
        obs = np.asarray(obs)
        single = obs.ndim == 1
        if (obs.shape[-1:] if single else obs.shape) != self._obs.shape[single:] or (single and self._batch != 1):
            raise ValueError(f"obs must be ({self._batch}, {self.obs_dim}) (call reset(batch_size) to change B), "
                             f"got {obs.shape}")
        np.copyto(self._obs[0] if single else self._obs, obs, casting="same_kind")
        self._run_session.run_with_iobinding(self._bindings[self._cur])
        self._cur ^= 1
        if self._first_pending:
            self._first.fill(0)
            self._first_pending = False
        ctbr = self._ctbr
        np.clip(self._action, -1.0, 1.0, out=ctbr)
        np.multiply(ctbr, self._scale, out=ctbr)
        np.add(ctbr, self._offset, out=ctbr)
        out = self._single_views if single else (self._action, ctbr, self._surprise)
        if copy:
            out = tuple(x.copy() for x in out)
        return out

    def act_physical(self, obs) -> np.ndarray:
        """Step and return only the physical CTBR command (B, 4) or (4,): thrust m/s^2, body rates rad/s."""
        return self.step(obs)[1]
