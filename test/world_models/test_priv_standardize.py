"""Standardised privileged targets: running statistics equal the batch statistics, and they set the loss scale."""
import torch

from ssm_mbrl_ros.world_models.distributions import symlog
from ssm_mbrl_ros.world_models.heads import Heads, RunningStandardizer


def test_running_statistics_equal_those_of_all_masked_rows():
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(6, 50, 3, generator=gen, dtype=torch.float64) * torch.tensor([1.0, 0.03, 5.0]) + 2.0
    mask = torch.rand(6, 50, generator=gen) > 0.3
    norm = RunningStandardizer(3)
    for chunk, m in zip(x.split(2), mask.split(2)):
        norm.update(chunk, m)
    rows = x[mask]
    torch.testing.assert_close(norm.mean, rows.mean(0))
    torch.testing.assert_close(norm.std(), rows.std(0, unbiased=False))
    torch.testing.assert_close(norm(rows).std(0, unbiased=False), torch.ones(3, dtype=torch.float64))
    assert set(norm.state_dict()) == {"count", "mean", "m2"}  # travels in checkpoints


def test_standardised_privileged_loss_weighs_small_spread_features_like_large_ones():
    """Targets: feature 0 spread ~3 (symlog of rotor-speed-like values), feature 1 a 0.9-1.1 scale. A head that
    predicts the mean of each misses both by one std: with standardisation both cost ~1, without it the scale ~0."""
    torch.manual_seed(0)
    priv = torch.stack([torch.rand(4, 32) * 2000.0, 0.9 + 0.2 * torch.rand(4, 32)], -1)
    batch = {"obs": torch.zeros(4, 32, 2), "reward": torch.zeros(4, 32), "cont": torch.ones(4, 32),
             "privileged": priv}
    for standardize in (False, True):
        heads = Heads(8, 2, 2, 16, 1, 1, 5, priv_standardize=standardize)
        for p in heads.priv_head.parameters():
            torch.nn.init.zeros_(p)
        if standardize:
            heads.train()
            heads.losses(torch.zeros(4, 32, 8), batch)  # one update of the statistics; the head predicts 0 = mean
            per_feature = heads.priv_norm(symlog(priv)).square().mean((0, 1))
            torch.testing.assert_close(per_feature.float(), torch.ones(2), rtol=1e-4, atol=1e-4)
            heads.eval()
            before = heads.priv_norm.count.clone()
            heads.losses(torch.zeros(4, 32, 8), batch)
            assert heads.priv_norm.count == before  # evaluation does not move the statistics
        else:
            assert heads.priv_norm is None
            centred = symlog(priv) - symlog(priv).mean((0, 1))
            assert centred[..., 1].square().mean() < 1e-3 * centred[..., 0].square().mean()


def test_reduced_statistics_are_those_of_every_rank_rows():
    """Two data-parallel 'ranks' (threads) with different rows and masks, whose reduce sums the update vectors: both
    end with the statistics of all masked rows of both."""
    import threading

    gen = torch.Generator().manual_seed(1)
    xs = [torch.randn(4, 40, 3, generator=gen, dtype=torch.float64) * 2.0 + r for r in range(2)]
    masks = [torch.rand(4, 40, generator=gen) > 0.5 * r for r in range(2)]
    masks[0][:2] = False  # rank 0 has an update with no rows at all: it must still take part in the reduce
    barrier, slots = threading.Barrier(2), [None, None]

    def reducer(rank):
        def reduce(t):
            slots[rank] = t.clone()
            barrier.wait()
            t.copy_(slots[0] + slots[1])
            barrier.wait()
        return reduce

    norms = [RunningStandardizer(3) for _ in range(2)]
    for rank, norm in enumerate(norms):
        norm.reduce = reducer(rank)

    def run(rank):
        for chunk, m in zip(xs[rank].split(2), masks[rank].split(2)):
            norms[rank].update(chunk, m)

    threads = [threading.Thread(target=run, args=(r,)) for r in range(2)]
    [t.start() for t in threads]
    [t.join(timeout=30) for t in threads]
    rows = torch.cat([xs[r][masks[r]] for r in range(2)])
    for norm in norms:
        assert norm.count == rows.shape[0]
        torch.testing.assert_close(norm.mean, rows.mean(0))
        torch.testing.assert_close(norm.std(), rows.std(0, unbiased=False))
