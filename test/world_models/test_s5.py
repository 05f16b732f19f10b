"""S5 layer: parallel scan == step loop (with resets and carried state), HiPPO-N init, ZOH, ONNX step."""
import io
import math

import numpy as np
import pytest
import torch

from ssm_mbrl_ros.world_models.s5 import (S5, S5Block, S5Stack, hippo_legs, hippo_n, hippo_n_eig,
                                          hold_discretization, init_s5_matrices, split_ssm_parameters)
from ssm_mbrl_ros.world_models.scan import linear_recurrence_loop, linear_scan

F64 = torch.float64


def _resets(bsz, T, gen):
    """Random resets plus one forced reset in the middle of every sequence."""
    reset = torch.rand(bsz, T, generator=gen) < 0.15
    reset[:, T // 2] = True
    return reset


def _step_loop(model, u, state, reset):
    """Reference: call model.step once per time step."""
    ys = []
    for t in range(u.shape[1]):
        y, state = model.step(u[:, t], state, reset[:, t])
        ys.append(y)
    return torch.stack(ys, 1), state


@pytest.mark.parametrize("T", [1, 2, 7, 64, 100])
def test_linear_scan_matches_loop_complex(T):
    gen = torch.Generator().manual_seed(T)
    a = torch.complex(torch.randn(3, T, 5, generator=gen, dtype=F64), torch.randn(3, T, 5, generator=gen, dtype=F64)) * 0.6
    a[:, T // 2] = 0  # a reset
    b = torch.complex(torch.randn(3, T, 5, generator=gen, dtype=F64), torch.randn(3, T, 5, generator=gen, dtype=F64))
    x0 = torch.complex(torch.randn(3, 5, generator=gen, dtype=F64), torch.randn(3, 5, generator=gen, dtype=F64))
    ref = linear_recurrence_loop(a, b, x0)
    assert (linear_scan(a, b, x0) - ref).abs().max() <= 1e-12
    # And an explicit per-element recurrence, independent of the helper loop.
    x = x0.clone()
    for t in range(T):
        x = a[:, t] * x + b[:, t]
    assert (ref[:, -1] - x).abs().max() <= 1e-12


@pytest.mark.parametrize("bsz,T", [(1, 1), (2, 7), (3, 64), (2, 100)])
def test_s5_scan_equals_step_loop_float64(bsz, T):
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(1)
    layer = S5(6, 8, blocks=2).to(F64)
    u = torch.randn(bsz, T, 6, generator=gen, dtype=F64)
    state0 = torch.randn(bsz, 8, generator=gen, dtype=F64)
    reset = _resets(bsz, T, gen)
    reset[0, 0] = False  # keep the carried-in state alive for at least one sequence
    y_scan, s_scan = layer(u, state0, reset)
    y_loop, s_loop = _step_loop(layer, u, state0, reset)
    assert (y_scan - y_loop).abs().max() <= 1e-6
    assert (s_scan - s_loop).abs().max() <= 1e-6
    assert not s_scan.is_complex() and s_scan.shape == (bsz, 8)


def test_reset_equals_fresh_start_and_chunks_compose():
    torch.manual_seed(0)
    layer = S5(4, 6).to(F64)
    u = torch.randn(2, 20, 4, dtype=F64)
    state0 = torch.randn(2, 6, dtype=F64)
    reset = torch.zeros(2, 20, dtype=torch.bool)
    reset[:, 9] = True
    y, _ = layer(u, state0, reset)
    y_fresh, _ = layer(u[:, 9:], torch.zeros(2, 6, dtype=F64))
    assert (y[:, 9:] - y_fresh).abs().max() <= 1e-12
    # Carrying the state across chunks equals one long scan.
    y_full, s_full = layer(u, state0)
    y1, s1 = layer(u[:, :13], state0)
    y2, s2 = layer(u[:, 13:], s1)
    assert (torch.cat([y1, y2], 1) - y_full).abs().max() <= 1e-12
    assert (s2 - s_full).abs().max() <= 1e-12
    # Without carried state the state starts at zero (initial state = zeros).
    y_none, _ = layer(u)
    y_zero, _ = layer(u, layer.initial_state(2))
    assert torch.equal(y_none, y_zero)


def test_hippo_n_structure_and_eigendecomposition():
    n = 16
    a, s = hippo_legs(n), hippo_n(n)
    assert a[3, 1] == pytest.approx(-math.sqrt(7 * 3)) and a[3, 3] == -4 and a[1, 3] == 0
    p = np.sqrt(np.arange(n) + 0.5)
    assert np.allclose(s - a, np.outer(p, p))  # HiPPO-N = HiPPO-LegS + rank one
    assert np.allclose(s + s.T, -np.eye(n))  # -1/2 I + skew-symmetric, hence normal
    lam, v = hippo_n_eig(n)
    assert np.all(lam.real < 0)
    assert np.allclose(v @ np.diag(lam) @ v.conj().T, s, atol=1e-10)
    eig = np.linalg.eigvals(s)  # independent solver; real parts are all -1/2, so compare sorted imag parts
    assert np.allclose(eig.real, -0.5) and np.allclose(np.sort(eig.imag), np.sort(lam.imag), atol=1e-8)
    # Conjugate-symmetric half: one member of every conjugate pair, V columns orthonormal, block-diagonal.
    lam_h, v_h = init_s5_matrices(n, blocks=2)
    assert lam_h.shape == (n // 2,) and v_h.shape == (n, n // 2)
    half_eigs = hippo_n_eig(n // 2)[0]
    assert np.allclose(np.sort(np.concatenate([lam_h[:4].imag, -lam_h[:4].imag])), np.sort(half_eigs.imag))
    assert np.allclose(lam_h[4:], lam_h[:4])  # every block starts from the same HiPPO-N
    assert np.allclose(v_h.conj().T @ v_h, np.eye(n // 2))
    assert np.all(v_h[: n // 2, n // 4 :] == 0) and np.all(v_h[n // 2 :, : n // 4] == 0)
    with pytest.raises(ValueError):
        init_s5_matrices(12, blocks=4)  # blocks of odd size 3


def test_zoh_matches_fine_euler_integration():
    torch.manual_seed(0)
    layer = S5(3, 8).to(F64)
    with torch.no_grad():
        layer.log_step.copy_(torch.log(torch.tensor([0.05, 0.3, 1.0, 1e-3], dtype=F64)))
    u = torch.randn(2, 3, dtype=F64)
    x0r, x0i = torch.randn(2, 4, dtype=F64), torch.randn(2, 4, dtype=F64)
    _, new_state = layer.step(u, torch.cat([x0r, x0i], -1))
    # Continuous system x' = Lambda x + B~ u for one step of length dt with u held constant.
    lam = torch.complex(*layer.continuous_lambda()).detach()
    bu = (torch.complex(layer.b_re, layer.b_im).detach() @ u.to(torch.complex128).T).T  # (2, 4)
    dt = layer.log_step.exp().detach()
    x = torch.complex(x0r, x0i)
    n = 100000  # Euler relative error ~ (dt |Lambda|)^2 / 2n <= 2e-5 here
    for _ in range(n):
        x = x + (dt / n) * (lam * x + bu)
    expected = torch.cat([x.real, x.imag], -1)
    assert torch.allclose(new_state, expected, rtol=1e-4, atol=1e-6)
    # A held input drives each mode to its fixed point -B~u/Lambda (checks the B_bar scaling at large dt).
    with torch.no_grad():
        layer.log_step.fill_(math.log(200.0))
    _, s_inf = layer.step(u, torch.zeros(2, 8, dtype=F64))
    fixed = -bu / lam
    assert torch.allclose(s_inf, torch.cat([fixed.real, fixed.imag], -1), atol=1e-8)


def test_init_ranges_and_ssm_parameter_split():
    torch.manual_seed(0)
    layer = S5(16, 32)
    dt = layer.log_step.exp()
    assert dt.min() >= 1e-3 and dt.max() <= 1e-1 and dt.max() / dt.min() > 5  # spread in log space
    assert torch.all(layer.lambda_re < 0)
    lbar_re, lbar_im, _, _ = layer.discretize()
    assert torch.all(lbar_re ** 2 + lbar_im ** 2 < 1)  # stable discrete modes
    ssm, other = split_ssm_parameters(S5Stack(2, 16, 32))
    assert len(ssm) == 2 * 5 and len(other) > 0


def test_gradient_reaches_every_parameter():
    torch.manual_seed(0)
    stack = S5Stack(2, 8, 8, norm="rms", activation="glu")
    u = torch.randn(3, 12, 8)
    reset = torch.zeros(3, 12, dtype=torch.bool)
    reset[1, 5] = True
    state0 = torch.randn(3, stack.state_size, requires_grad=True)
    y, s = stack(u, state0, reset)
    (y.square().mean() + s.square().mean()).backward()
    for name, p in stack.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name
    assert state0.grad.abs().sum() > 0


@pytest.mark.parametrize("norm,activation", [("layer", "glu"), ("rms", "gelu")])
def test_stack_scan_equals_step_float64(norm, activation):
    torch.manual_seed(0)
    stack = S5Stack(3, 8, 6, norm=norm, activation=activation, blocks=3).to(F64)
    gen = torch.Generator().manual_seed(2)
    u = torch.randn(2, 37, 8, generator=gen, dtype=F64)
    state0 = torch.randn(2, stack.state_size, generator=gen, dtype=F64)
    reset = _resets(2, 37, gen)
    reset[:, 0] = False
    y_scan, s_scan = stack(u, state0, reset)
    y_loop, s_loop = _step_loop(stack, u, state0, reset)
    assert (y_scan - y_loop).abs().max() <= 1e-6 and (s_scan - s_loop).abs().max() <= 1e-6


def test_float32_scan_equals_step():
    torch.manual_seed(0)
    stack = S5Stack(2, 16, 16)
    u = torch.randn(4, 50, 16)
    reset = _resets(4, 50, torch.Generator().manual_seed(3))
    state0 = 0.1 * torch.randn(4, stack.state_size)
    y_scan, s_scan = stack(u, state0, reset)
    y_loop, s_loop = _step_loop(stack, u, state0, reset)
    assert y_scan.dtype == torch.float32 and s_scan.dtype == torch.float32
    assert (y_scan - y_loop).abs().max() <= 1e-4 and (s_scan - s_loop).abs().max() <= 1e-4


def test_bad_shapes_are_rejected():
    layer = S5(4, 6)
    with pytest.raises(ValueError, match="state"):
        layer(torch.randn(2, 5, 4), torch.zeros(2, 7))
    with pytest.raises(ValueError, match="reset"):
        layer(torch.randn(2, 5, 4), None, torch.zeros(2, 4, dtype=torch.bool))
    with pytest.raises(ValueError, match="input"):
        layer.step(torch.randn(2, 5, 4))
    with pytest.raises(ValueError, match="activation"):
        S5Block(4, 6, activation="relu")


class _StepModule(torch.nn.Module):
    def __init__(self, stack):
        super().__init__()
        self.stack = stack

    def forward(self, u, state, reset):
        return self.stack.step(u, state, reset)


def test_step_exports_to_onnx_and_matches_torch():
    import onnx
    import onnxruntime as ort
    torch.manual_seed(0)
    stack = S5Stack(2, 8, 8, norm="rms").eval()
    u, state = torch.randn(3, 8), torch.randn(3, stack.state_size)
    reset = torch.tensor([False, True, False])
    buf = io.BytesIO()
    torch.onnx.export(_StepModule(stack), (u, state, reset), buf, dynamo=False, opset_version=17,
                      input_names=["u", "state", "reset"], output_names=["y", "new_state"],
                      dynamic_axes={"u": {0: "b"}, "state": {0: "b"}, "reset": {0: "b"}})
    model = onnx.load_from_string(buf.getvalue())
    model.ir_version = min(model.ir_version, 10)
    types = {vi.type.tensor_type.elem_type for vi in list(model.graph.input) + list(model.graph.output)}
    assert not types & {onnx.TensorProto.COMPLEX64, onnx.TensorProto.COMPLEX128}
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    # Roll several steps through onnxruntime feeding the state back, with a different batch size.
    u_seq, s_t, s_o = torch.randn(5, 4, 8), torch.randn(4, stack.state_size), None
    s_o = s_t.numpy()
    for t in range(5):
        r = torch.tensor([t == 2, False, t == 3, False])
        with torch.no_grad():
            y_t, s_t = stack.step(u_seq[t], s_t, r)
        y_o, s_o = sess.run(None, {"u": u_seq[t].numpy(), "state": s_o, "reset": r.numpy()})
        assert np.abs(y_o - y_t.numpy()).max() <= 1e-5 and np.abs(s_o - s_t.numpy()).max() <= 1e-5


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu():
    torch.manual_seed(0)
    stack = S5Stack(2, 8, 8).to(F64)
    u, reset = torch.randn(2, 33, 8, dtype=F64), _resets(2, 33, torch.Generator().manual_seed(5))
    y_cpu, s_cpu = stack(u, None, reset)
    stack_gpu = stack.to("cuda")
    y_gpu, s_gpu = stack_gpu(u.cuda(), None, reset.cuda())
    y_loop, _ = _step_loop(stack_gpu, u.cuda(), None, reset.cuda())
    assert (y_gpu.cpu() - y_cpu).abs().max() <= 1e-10 and (s_gpu.cpu() - s_cpu).abs().max() <= 1e-10
    assert (y_loop - y_gpu).abs().max() <= 1e-6


def test_linear_scan_gradient_matches_autograd_of_loop():
    gen = torch.Generator().manual_seed(6)

    def cplx(*shape):
        return torch.complex(torch.randn(*shape, generator=gen, dtype=F64), torch.randn(*shape, generator=gen, dtype=F64))

    a, b, x0 = (0.5 * cplx(2, 9, 3)).requires_grad_(), cplx(2, 9, 3).requires_grad_(), cplx(2, 3).requires_grad_()
    w = cplx(2, 9, 3)
    grads_scan = torch.autograd.grad((linear_scan(a, b, x0) * w).real.sum(), [a, b, x0])
    grads_loop = torch.autograd.grad((linear_recurrence_loop(a, b, x0) * w).real.sum(), [a, b, x0])
    for gs, gl in zip(grads_scan, grads_loop):
        assert (gs - gl).abs().max() <= 1e-12
    # Real inputs and a broadcast (time-constant) coefficient also differentiate correctly.
    ar = torch.rand(1, 1, 3, generator=gen, dtype=F64).requires_grad_()
    br = torch.randn(2, 9, 3, generator=gen, dtype=F64).requires_grad_()
    assert torch.autograd.gradcheck(lambda a_, b_: linear_scan(a_, b_), (ar, br))


def test_held_discretization_gives_the_same_steps_and_gradients():
    """A rollout under hold_discretization (discretize once) equals per-step discretization, values and gradients."""
    torch.manual_seed(0)
    stack = S5Stack(2, 8, 4).double()
    u = torch.randn(3, 6, 8, dtype=F64)
    reset = torch.zeros(3, 6, dtype=torch.bool)

    def run(hold):
        stack.zero_grad(set_to_none=True)
        if hold:
            with hold_discretization(stack):
                y, _ = _step_loop(stack, u, None, reset)
        else:
            y, _ = _step_loop(stack, u, None, reset)
        y.square().sum().backward()
        return y.detach(), {n: p.grad.clone() for n, p in stack.named_parameters()}

    y_ref, g_ref = run(False)
    y_held, g_held = run(True)
    torch.testing.assert_close(y_held, y_ref)
    for name in g_ref:
        torch.testing.assert_close(g_held[name], g_ref[name], msg=name)
    assert all(layer.ssm._held is None for layer in stack.layers)  # released after the block
