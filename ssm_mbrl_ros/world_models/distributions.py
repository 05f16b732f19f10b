"""DreamerV3 distribution pieces in pure torch: symlog, two-hot regression, categorical latents, KL balancing.

Categorical latents have logits of shape (..., G, K) (G groups of K classes, e.g. 32 x 32); their
entropy and KL sum over both G and K and return shape (...). Two-hot targets use K bins spaced
uniformly in symlog space (default 255 bins over [-20, 20]), i.e. bins = symexp(linspace).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F


def symlog(x: torch.Tensor) -> torch.Tensor:
    """sign(x) log(1 + |x|)."""
    return torch.sign(x) * torch.log1p(x.abs())


def symexp(x: torch.Tensor) -> torch.Tensor:
    """sign(x) (exp(|x|) - 1), the inverse of symlog."""
    return torch.sign(x) * torch.expm1(x.abs())


# ---------------------------------------------------------------------------------------------
# Two-hot regression (reward and value heads)


def twohot_bins(num_bins: int = 255, low: float = -20.0, high: float = 20.0, device=None,
                dtype=None) -> torch.Tensor:
    """Bin centres (num_bins,): symexp of a uniform grid over [low, high] in symlog space."""
    dtype = dtype or torch.get_default_dtype()
    if num_bins % 2 and low == -high:
        # Mirror one half so the grid is exactly symmetric with an exact 0 (linspace is off by ~1e-16).
        pos = symexp(torch.linspace(0.0, high, (num_bins + 1) // 2, device=device, dtype=dtype))
        return torch.cat([-pos[1:].flip(0), pos])
    return symexp(torch.linspace(low, high, num_bins, device=device, dtype=dtype))


def twohot_encode(x: torch.Tensor, bins: torch.Tensor) -> torch.Tensor:
    """Two-hot weights (..., K) on the two bins bracketing x; values outside the range go to the end bin."""
    x = x.detach().to(bins.dtype)
    k = bins.shape[0]
    below = (torch.bucketize(x, bins, right=True) - 1).clamp(0, k - 2)  # bins[below] <= x, except x < bins[0]
    lo, hi = bins[below], bins[below + 1]
    w_hi = ((x - lo) / (hi - lo)).clamp(0.0, 1.0)
    out = torch.zeros(*x.shape, k, dtype=bins.dtype, device=bins.device)
    out.scatter_(-1, below.unsqueeze(-1), (1.0 - w_hi).unsqueeze(-1))
    out.scatter_add_(-1, (below + 1).unsqueeze(-1), w_hi.unsqueeze(-1))
    return out


def twohot_loss(logits: torch.Tensor, target: torch.Tensor, bins: torch.Tensor) -> torch.Tensor:
    """Cross-entropy (...,) between softmax(logits) (..., K) and the two-hot encoding of target (...)."""
    return -(twohot_encode(target, bins).to(logits.dtype) * F.log_softmax(logits, dim=-1)).sum(-1)


def twohot_mean(logits: torch.Tensor, bins: torch.Tensor) -> torch.Tensor:
    """Expected value (...,) of softmax(logits) over the bins.

    Sums the two tails from the outside in, so mirrored bins (+-e^20) cancel exactly and a uniform
    distribution decodes to 0 even in float32.
    """
    probs = F.softmax(logits, dim=-1)
    bins = bins.to(logits.dtype)
    k = bins.shape[0]
    m = (k - 1) // 2
    middle = (probs[..., m : k - m] * bins[m : k - m]).sum(-1)
    tails = (probs[..., :m] * bins[:m]).flip(-1) + probs[..., k - m :] * bins[k - m :]
    return middle + tails.sum(-1)


# ---------------------------------------------------------------------------------------------
# Categorical latents


def unimix_logits(logits: torch.Tensor, unimix: float = 0.01) -> torch.Tensor:
    """Log-probabilities (..., K) of (1 - unimix) softmax(logits) + unimix / K."""
    if unimix <= 0.0:
        return F.log_softmax(logits, dim=-1)
    probs = (1.0 - unimix) * F.softmax(logits, dim=-1) + unimix / logits.shape[-1]
    return probs.log()


def sample_onehot(logits: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Straight-through one-hot sample (..., K): forward value is one-hot, gradient is that of the probs."""
    probs = F.softmax(logits, dim=-1)
    k = logits.shape[-1]
    idx = torch.multinomial(probs.detach().reshape(-1, k), 1, generator=generator)  # (N, 1)
    onehot = F.one_hot(idx.reshape(logits.shape[:-1]), k).to(probs.dtype)
    return onehot + probs - probs.detach()


def mode_onehot(logits: torch.Tensor) -> torch.Tensor:
    """Straight-through one-hot of the most likely class (..., K)."""
    # max-equality instead of one_hot(argmax): same result without ties, and it exports to plain ONNX ops
    onehot = (logits == logits.amax(-1, keepdim=True)).to(logits.dtype)
    if not torch.is_grad_enabled():  # acting / export: the straight-through terms would only cost time
        return onehot
    probs = F.softmax(logits, dim=-1)
    return onehot + probs - probs.detach()


def categorical_entropy(logits: torch.Tensor) -> torch.Tensor:
    """Entropy (...,) of G independent categoricals with logits (..., G, K), summed over groups."""
    logp = F.log_softmax(logits, dim=-1)
    return -(logp.exp() * logp).sum((-2, -1))


def categorical_kl(logits_p: torch.Tensor, logits_q: torch.Tensor) -> torch.Tensor:
    """KL(p || q) (...,) for logits (..., G, K), summed over groups and classes."""
    logp = F.log_softmax(logits_p, dim=-1)
    logq = F.log_softmax(logits_q, dim=-1)
    return (logp.exp() * (logp - logq)).sum((-2, -1))


def logprob_kl(logp: torch.Tensor, logq: torch.Tensor) -> torch.Tensor:
    """KL(p || q) (...,) for already-normalised log-probabilities (..., G, K), e.g. unimix_logits outputs."""
    return (logp.exp() * (logp - logq)).sum((-2, -1))
