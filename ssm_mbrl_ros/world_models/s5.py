"""S5 state-space layer (Smith, Warrington, Linderman 2023) with episode resets, plus block and stack.

Continuous system per layer: x' = Lambda x + B~ u, y = 2 Re(C~ x) + D u, with Lambda diagonal
complex (HiPPO-N eigenvalues) and B~ = V^-1 B, C~ = C V. Conjugate-symmetric form: only P/2
complex modes are stored and the output takes 2 Re(.). Zero-order hold with learnable per-mode
step dt: Lambda_bar = exp(Lambda dt), B_bar = (Lambda_bar - 1) / Lambda * B~.

Two evaluation paths with identical maths:
- `forward(u, state, reset)`: the whole (B, T) sequence in one parallel scan (training).
- `step(u, state, reset)`: one step with real-only arithmetic (acting, imagination, ONNX export).
The recurrent state at the API boundary is a REAL tensor (B, P) = [Re x (P/2), Im x (P/2)].
`reset[b, t] = True` zeroes the state before step t's input (a new episode starts at t).
"""
from __future__ import annotations

import contextlib
import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .scan import linear_scan

SSM_PARAMETER_NAMES = ("lambda_re", "lambda_im", "b_re", "b_im", "log_step")


def hippo_legs(n: int) -> np.ndarray:
    """HiPPO-LegS state matrix A (n, n), float64: -sqrt(2i+1)sqrt(2k+1) below the diagonal, -(i+1) on it."""
    q = np.sqrt(2.0 * np.arange(n) + 1.0)
    a = np.tril(np.outer(q, q), k=-1) + np.diag(np.arange(n) + 1.0)
    return -a


def hippo_n(n: int) -> np.ndarray:
    """Normal part of HiPPO-LegS, A + p p^T with p_i = sqrt(i + 1/2): -1/2 I plus a skew-symmetric matrix."""
    p = np.sqrt(np.arange(n) + 0.5)
    return hippo_legs(n) + np.outer(p, p)


def hippo_n_eig(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Eigendecomposition of HiPPO-N: (Lambda (n,) complex, V (n, n) unitary) with S = V diag(Lambda) V^H."""
    s = hippo_n(n)
    diag = np.diag(s)
    skew = s - np.diag(diag)
    # -i K is Hermitian for skew-symmetric K; its real eigenvalues w give K's eigenvalues i w.
    w, v = np.linalg.eigh(-1j * skew)
    return diag.mean() + 1j * w, v


def init_s5_matrices(d_state: int, blocks: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Block-diagonal conjugate-symmetric init: (Lambda (P/2,) complex, V (P, P/2) complex)."""
    if d_state % blocks or (d_state // blocks) % 2:
        raise ValueError(f"d_state={d_state} must split into {blocks} blocks of even size")
    size = d_state // blocks
    lam, v = hippo_n_eig(size)
    half = size // 2
    # eigh sorts ascending, so the first half holds one member of every conjugate pair.
    lam, v = lam[:half], v[:, :half]
    big_v = np.zeros((d_state, d_state // 2), dtype=np.complex128)
    for j in range(blocks):
        big_v[j * size : (j + 1) * size, j * half : (j + 1) * half] = v
    return np.tile(lam, blocks), big_v


def _expm1(x: torch.Tensor) -> torch.Tensor:
    """exp(x) - 1, accurate near 0, from ops ONNX opset 17 has (no Expm1 there): 2 t / (1 - t), t = tanh(x/2)."""
    t = torch.tanh(0.5 * x)
    return 2.0 * t / (1.0 - t)


class S5(nn.Module):
    """One S5 SSM: H inputs/outputs, P-dimensional real state (P/2 complex modes); scan and step paths."""

    def __init__(self, d_model: int, d_state: int, blocks: int = 1, dt_min: float = 1e-3,
                 dt_max: float = 1e-1, clip_eigs: bool = True):
        super().__init__()
        self.d_model, self.d_state, self.clip_eigs = d_model, d_state, clip_eigs
        self.n_modes = d_state // 2
        lam, v = init_s5_matrices(d_state, blocks)
        rng = np.random.default_rng(int(torch.randint(0, 2**31 - 1, ()).item()))
        b_real = rng.normal(0.0, 1.0 / math.sqrt(d_model), size=(d_state, d_model))  # lecun normal
        c_cplx = rng.normal(0.0, 1.0 / math.sqrt(d_state), size=(d_model, d_state, 2)) @ np.array([1.0, 1j])
        b_tilde = v.conj().T @ b_real  # (P/2, H) = V^-1 B (V has orthonormal columns)
        c_tilde = c_cplx @ v  # (H, P/2)
        dtype = torch.get_default_dtype()

        def param(x):
            return nn.Parameter(torch.as_tensor(np.ascontiguousarray(x), dtype=dtype))

        self.lambda_re, self.lambda_im = param(lam.real), param(lam.imag)
        self.b_re, self.b_im = param(b_tilde.real), param(b_tilde.imag)
        self.c_re, self.c_im = param(c_tilde.real), param(c_tilde.imag)
        self.d = nn.Parameter(torch.randn(d_model, dtype=dtype))
        u = torch.rand(self.n_modes, dtype=dtype)
        self.log_step = nn.Parameter(math.log(dt_min) + u * (math.log(dt_max) - math.log(dt_min)))
        self._held: tuple | None = None  # discretize() held for a run of steps (see hold_discretization)

    def continuous_lambda(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(Re Lambda, Im Lambda), each (P/2,); the real part is kept <= -1e-4 when clip_eigs."""
        re = self.lambda_re.clamp(max=-1e-4) if self.clip_eigs else self.lambda_re
        return re, self.lambda_im

    def discretize(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Zero-order hold in real arithmetic: (Re, Im) of Lambda_bar (P/2,) and of B_bar (P/2, H)."""
        lr, li = self.continuous_lambda()
        dt = self.log_step.exp()
        zr, zi = lr * dt, li * dt
        mag = zr.exp()
        lbar_re, lbar_im = mag * torch.cos(zi), mag * torch.sin(zi)
        # Lambda_bar - 1 = expm1(zr) cos(zi) - 2 sin^2(zi/2) + i e^zr sin(zi), accurate for small dt.
        num_re = _expm1(zr) * torch.cos(zi) - 2.0 * torch.sin(0.5 * zi) ** 2
        num_im = lbar_im
        den = lr * lr + li * li
        coef_re = (num_re * lr + num_im * li) / den  # (Lambda_bar - 1) / Lambda
        coef_im = (num_im * lr - num_re * li) / den
        bbar_re = coef_re[:, None] * self.b_re - coef_im[:, None] * self.b_im
        bbar_im = coef_re[:, None] * self.b_im + coef_im[:, None] * self.b_re
        return lbar_re, lbar_im, bbar_re, bbar_im

    def initial_state(self, batch_size: int) -> torch.Tensor:
        """Zero real state (batch_size, P) on the parameters' device and dtype."""
        return self.d.new_zeros(batch_size, self.d_state)

    def _check(self, u: torch.Tensor, state: torch.Tensor | None, time_axis: bool) -> torch.Tensor:
        want = 3 if time_axis else 2
        if u.dim() != want or u.shape[-1] != self.d_model:
            raise ValueError(f"S5 input must be ({'B, T, ' if time_axis else 'B, '}{self.d_model}), got {tuple(u.shape)}")
        if state is None:
            return self.initial_state(u.shape[0]).to(u.dtype)
        if state.shape != (u.shape[0], self.d_state) or state.is_complex():
            raise ValueError(f"S5 state must be real ({u.shape[0]}, {self.d_state}), got {tuple(state.shape)} {state.dtype}")
        return state

    def forward(self, u: torch.Tensor, state: torch.Tensor | None = None,
                reset: torch.Tensor | None = None, return_states: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        """Parallel scan over time: u (B, T, H), state (B, P), reset (B, T) bool -> (y (B, T, H), last state (B, P)).

        return_states=True returns every step's state (B, T, P) instead of the last (imagination
        starts from each of them).
        """
        state = self._check(u, state, time_axis=True)
        bsz, T, _ = u.shape
        lbar_re, lbar_im, bbar_re, bbar_im = self.discretize()
        lam_bar = torch.complex(lbar_re, lbar_im)  # (P/2,)
        # Rows interleaved (mode re, mode im) so the product views as complex: (B, T, P) -> (B, T, P/2)
        w_in = torch.stack([bbar_re, bbar_im], dim=1).reshape(self.d_state, self.d_model)
        bu = torch.view_as_complex((u @ w_in.t()).reshape(bsz, T, self.n_modes, 2))
        if reset is None:
            a = lam_bar.expand(bsz, T, self.n_modes)
        else:
            if reset.shape != (bsz, T):
                raise ValueError(f"S5 reset must be ({bsz}, {T}) bool, got {tuple(reset.shape)}")
            a = lam_bar * (~reset.bool()).to(u.dtype).unsqueeze(-1)  # a_t = 0 where an episode starts
        x0 = torch.complex(state[:, : self.n_modes], state[:, self.n_modes :])
        xs = linear_scan(a, bu, x0)  # (B, T, P/2) complex
        # 2 Re(C x) = 2 (Re C Re x - Im C Im x); view_as_real interleaves (re, im): (B, T, P/2, 2) -> (B, T, P)
        w_out = torch.stack([self.c_re, -self.c_im], dim=-1).reshape(self.d_model, self.d_state)
        y = 2.0 * (torch.view_as_real(xs).reshape(bsz, T, self.d_state) @ w_out.t()) + u * self.d
        kept = xs if return_states else xs[:, -1]
        return y, torch.cat([kept.real, kept.imag], dim=-1)

    def step(self, u: torch.Tensor, state: torch.Tensor | None = None,
             reset: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """One recurrence step with real tensors only: u (B, H), state (B, P), reset (B,) -> (y (B, H), state)."""
        state = self._check(u, state, time_axis=False)
        lbar_re, lbar_im, bbar_re, bbar_im = self._held if self._held is not None else self.discretize()
        xr, xi = state[:, : self.n_modes], state[:, self.n_modes :]
        if reset is not None:
            keep = (~reset.bool()).to(u.dtype).unsqueeze(-1)
            xr, xi = xr * keep, xi * keep
        nr = lbar_re * xr - lbar_im * xi + u @ bbar_re.t()
        ni = lbar_re * xi + lbar_im * xr + u @ bbar_im.t()
        y = 2.0 * (nr @ self.c_re.t() - ni @ self.c_im.t()) + u * self.d
        return y, torch.cat([nr, ni], dim=-1)


@contextlib.contextmanager
def hold_discretization(module: nn.Module):
    """Within the block, every S5 layer in module discretizes once and its step() reuses the result.

    For a run of recurrent steps with unchanged parameters (an imagination rollout): the held tensors stay in the
    autograd graph, so gradients to Lambda, B and the step size are the same as when each step discretizes.
    """
    layers = [m for m in module.modules() if isinstance(m, S5)]
    for layer in layers:
        layer._held = layer.discretize()
    try:
        yield
    finally:
        for layer in layers:
            layer._held = None


class RMSNorm(nn.Module):
    """Root-mean-square norm with a learnable gain (written out so ONNX opset 17 exports it)."""

    def __init__(self, dim: int, eps: float = 1e-6):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Normalise the last axis by its RMS and scale."""
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


def make_norm(kind: str, dim: int) -> nn.Module:
    """'layer' -> LayerNorm, 'rms' -> RMSNorm, 'none' -> Identity."""
    norms = {"layer": lambda: nn.LayerNorm(dim), "rms": lambda: RMSNorm(dim), "none": nn.Identity}
    if kind not in norms:
        raise ValueError(f"unknown norm {kind!r}; valid: {sorted(norms)}")
    return norms[kind]()


class S5Block(nn.Module):
    """Pre-norm residual block: u + dropout(act(S5(norm(u)))), act = GELU or GELU then a sigmoid gate (GLU)."""

    def __init__(self, d_model: int, d_state: int, blocks: int = 1, norm: str = "layer",
                 activation: str = "glu", dropout: float = 0.0, **s5_kwargs):
        super().__init__()
        if activation not in ("gelu", "glu"):
            raise ValueError(f"unknown activation {activation!r}; valid: ['gelu', 'glu']")
        self.d_state = d_state
        self.norm = make_norm(norm, d_model)
        self.ssm = S5(d_model, d_state, blocks=blocks, **s5_kwargs)
        self.gate = nn.Linear(d_model, d_model) if activation == "glu" else None
        self.dropout = nn.Dropout(dropout)

    def _mix(self, y: torch.Tensor) -> torch.Tensor:
        y = F.gelu(y)
        if self.gate is not None:
            y = y * torch.sigmoid(self.gate(y))
        return self.dropout(y)

    def initial_state(self, batch_size: int) -> torch.Tensor:
        """Zero state (batch_size, P)."""
        return self.ssm.initial_state(batch_size)

    def forward(self, u, state=None, reset=None, return_states: bool = False):
        """Sequence path: u (B, T, H) -> (y (B, T, H), last state (B, P) or all states (B, T, P))."""
        y, state = self.ssm(self.norm(u), state, reset, return_states)
        return u + self._mix(y), state

    def step(self, u, state=None, reset=None):
        """One step: u (B, H) -> (y (B, H), state (B, P))."""
        y, state = self.ssm.step(self.norm(u), state, reset)
        return u + self._mix(y), state


class S5Stack(nn.Module):
    """n_layers S5 blocks (+ optional final norm); state = concatenation of layer states (B, n_layers * P)."""

    def __init__(self, n_layers: int, d_model: int, d_state: int, final_norm: str = "layer", **block_kwargs):
        super().__init__()
        self.d_model, self.d_state, self.n_layers = d_model, d_state, n_layers
        self.layers = nn.ModuleList(S5Block(d_model, d_state, **block_kwargs) for _ in range(n_layers))
        self.out_norm = make_norm(final_norm, d_model)

    @property
    def state_size(self) -> int:
        """Width of the flat real state."""
        return self.n_layers * self.d_state

    def initial_state(self, batch_size: int) -> torch.Tensor:
        """Zero state (batch_size, n_layers * P) on the parameters' device and dtype."""
        return self.layers[0].ssm.d.new_zeros(batch_size, self.state_size)

    def _run(self, u, state, reset, method, **kwargs):
        if state is None:
            state = self.initial_state(u.shape[0]).to(u.dtype)
        if state.shape != (u.shape[0], self.state_size):
            raise ValueError(f"S5Stack state must be ({u.shape[0]}, {self.state_size}), got {tuple(state.shape)}")
        new_states = []
        for layer, s in zip(self.layers, state.split(self.d_state, dim=-1)):
            u, s = getattr(layer, method)(u, s, reset, **kwargs)
            new_states.append(s)
        return self.out_norm(u), torch.cat(new_states, dim=-1)

    def forward(self, u, state=None, reset=None, return_states: bool = False):
        """Sequence path: u (B, T, H), state (B, L*P), reset (B, T) -> (y (B, T, H), last state (B, L*P)
        or, with return_states, every step's state (B, T, L*P))."""
        return self._run(u, state, reset, "forward", return_states=return_states)

    def step(self, u, state=None, reset=None):
        """One step: u (B, H), state (B, L*P), reset (B,) -> (y (B, H), state)."""
        return self._run(u, state, reset, "step")


def split_ssm_parameters(module: nn.Module) -> tuple[list[nn.Parameter], list[nn.Parameter]]:
    """(SSM core parameters Lambda/B/log_step, everything else): S5 trains the former with lower LR, no decay."""
    ssm, other = [], []
    for name, p in module.named_parameters():
        (ssm if name.rsplit(".", 1)[-1] in SSM_PARAMETER_NAMES else other).append(p)
    return ssm, other
