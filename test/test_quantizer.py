"""VectorQuantizerEMA: EMA updates, dead-code restarts, straight-through gradient, masks, statistics."""
from __future__ import annotations

import copy

import pytest
import torch
import torch.distributed as dist

from talking_face_ros.model.quantizer import VectorQuantizerEMA


def make(codebook, *, counts=None, decay=0.9, threshold=0.0, commitment=0.25):
    """A quantiser with a given codebook, already past its data initialisation."""
    codebook = torch.as_tensor(codebook, dtype=torch.float32)
    q = VectorQuantizerEMA(codebook_size=codebook.shape[0], dim=codebook.shape[1], decay=decay,
                           dead_code_threshold=threshold, commitment=commitment)
    counts = torch.ones(codebook.shape[0]) if counts is None else torch.as_tensor(counts, dtype=torch.float32)
    q.codebook.copy_(codebook)
    q.ema_count.copy_(counts)
    q.ema_sum.copy_(codebook * counts[:, None])
    q.initialized.fill_(True)
    return q


CORNERS = [[0.0, 0.0], [10.0, 10.0], [-10.0, 10.0], [10.0, -10.0]]


def test_ema_update_moves_code_to_running_mean_of_assigned_inputs():
    q = make(CORNERS, decay=0.9).train()
    x = torch.tensor([[1.0, 1.0], [0.5, 1.5], [1.5, 0.5], [1.0, 1.0]])  # mean (1, 1), all nearest code 0
    out = q(x)
    assert out.indices.tolist() == [0, 0, 0, 0]
    # Hand-computed EMA step: count0 = 0.9 * 1 + 0.1 * 4 = 1.3, sum0 = 0.9 * 0 + 0.1 * (4, 4) = (0.4, 0.4);
    # the other codes keep count 0.9 and sum 0.9 * code, so they stay where they are.
    assert q.ema_count.tolist() == pytest.approx([1.3, 0.9, 0.9, 0.9], abs=1e-6)
    assert q.codebook[0].tolist() == pytest.approx([0.4 / 1.3, 0.4 / 1.3], abs=1e-4)
    assert torch.allclose(q.codebook[1:], torch.tensor(CORNERS[1:]), atol=1e-3)
    # Repeated steps converge to the mean of the inputs.
    for _ in range(100):
        q(x)
    assert q.codebook[0].tolist() == pytest.approx([1.0, 1.0], abs=1e-3)


def test_eval_mode_and_no_grad_never_update():
    q = make(CORNERS)
    before = q.codebook.clone()
    q.eval()(torch.ones(5, 2))
    with torch.no_grad():
        q.train()(torch.ones(5, 2))
    assert torch.equal(q.codebook, before)


def test_first_training_batch_initialises_codebook_from_real_vectors_only():
    torch.manual_seed(0)
    q = VectorQuantizerEMA(codebook_size=16, dim=3).train()
    x = torch.randn(2, 10, 3)
    mask = torch.zeros(2, 10, dtype=torch.bool)
    mask[0, :6] = True
    mask[1, :3] = True
    x[~mask] = 1000.0  # padding: must never become a code
    q(x, mask)
    assert bool(q.initialized)
    real = x[mask]
    dist_to_real = torch.cdist(q.codebook, real).min(dim=1).values
    assert float(dist_to_real.max()) < 0.5  # every code started on a real vector, then moved a little
    assert float(q.codebook.abs().max()) < 100.0


def test_dead_codes_are_restarted_on_current_inputs():
    torch.manual_seed(0)
    # Code 0 sits on the data; codes 1..3 are far away and have no usage left.
    q = make(CORNERS, counts=[5.0, 0.0, 0.0, 0.0], decay=0.9, threshold=1.0).train()
    x = torch.randn(1, 12, 2) * 0.1 + torch.tensor([3.0, 3.0])
    mask = torch.ones(1, 12, dtype=torch.bool)
    mask[0, 8:] = False
    x[0, 8:] = -50.0
    q(x, mask)
    real = x[mask]
    for k in (1, 2, 3):
        assert float((real - q.codebook[k]).norm(dim=1).min()) == 0.0  # exactly one of the real inputs
    assert q.ema_count[1:].tolist() == [1.0, 1.0, 1.0]  # restarted at the threshold
    # The live code took its ordinary EMA step: (0.9 * 0 + 0.1 * sum of inputs) / (0.9 * 5 + 0.1 * 8).
    assert q.ema_count[0] == pytest.approx(5.3)
    assert q.codebook[0].tolist() == pytest.approx((0.1 * real.sum(0) / 5.3).tolist(), abs=1e-5)


def test_straight_through_gradient_equals_upstream_gradient():
    torch.manual_seed(1)
    for mode in ("train", "eval"):
        q = make(CORNERS)
        q.train(mode == "train")
        x = (torch.randn(3, 5, 2) * 4.0).requires_grad_()
        out = q(x)
        # Forward value is the nearest code ...
        assert torch.allclose(out.quantized, torch.tensor(CORNERS)[out.indices], atol=1e-5)
        # ... and the gradient passes through unchanged.
        upstream = torch.randn_like(x)
        (out.quantized * upstream).sum().backward()
        assert torch.equal(x.grad, upstream)
        assert float(x.grad.abs().sum()) > 0


def test_commitment_loss_pulls_encoder_toward_its_code():
    q = make(CORNERS, commitment=0.25).eval()
    x = torch.tensor([[1.0, 2.0]], requires_grad=True)  # nearest code (0, 0)
    out = q(x)
    assert out.commit_loss.item() == pytest.approx(0.25 * (1.0 + 4.0) / 2)  # mean over the 2 elements
    out.commit_loss.backward()
    assert x.grad[0].tolist() == pytest.approx([0.25, 0.5])  # 0.25 * 2 (x - c) / 2


def test_masked_vectors_change_nothing():
    torch.manual_seed(2)
    base = make(torch.randn(8, 4), decay=0.8, threshold=0.5).train()
    x = torch.randn(2, 9, 4)
    mask = torch.ones(2, 9, dtype=torch.bool)
    mask[0, 5:] = False
    mask[1, 2:] = False
    padded = x.clone()
    padded[~mask] = torch.randn(int((~mask).sum()), 4) * 100.0

    with_mask, only_real = copy.deepcopy(base), copy.deepcopy(base)
    torch.manual_seed(3)
    a = with_mask(padded, mask)
    torch.manual_seed(3)
    b = only_real(x[mask])
    for name in ("codebook", "ema_count", "ema_sum"):
        assert torch.allclose(getattr(with_mask, name), getattr(only_real, name), atol=1e-6), name
    assert float(a.commit_loss) == pytest.approx(float(b.commit_loss), rel=1e-6)
    assert float(a.perplexity) == pytest.approx(float(b.perplexity), rel=1e-6)
    assert torch.equal(a.indices[mask], b.indices)


def test_perplexity_and_usage():
    q = make(CORNERS).eval()
    codes = torch.tensor(CORNERS)
    uniform = q(codes.repeat(3, 1))
    assert float(uniform.perplexity) == pytest.approx(4.0)
    assert float(uniform.usage) == 1.0
    single = q(codes[:1].repeat(5, 1))
    assert float(single.perplexity) == pytest.approx(1.0)
    assert float(single.usage) == 0.25
    two = q(codes[:2].repeat(4, 1))
    assert float(two.perplexity) == pytest.approx(2.0)
    torch.manual_seed(4)
    for _ in range(5):
        p = float(q(torch.randn(20, 2) * 10).perplexity)
        assert 1.0 <= p <= 4.0


def test_lookup_returns_code_vectors_and_rejects_bad_indices():
    q = make(CORNERS)
    idx = torch.tensor([[3, 0], [1, 1]])
    assert torch.equal(q.lookup(idx), torch.tensor(CORNERS)[idx])
    with pytest.raises(ValueError, match="code indices"):
        q.lookup(torch.tensor([4]))
    with pytest.raises(ValueError, match="code indices"):
        q.lookup(torch.tensor([-1]))


def test_training_is_deterministic_given_the_torch_seed():
    def run():
        torch.manual_seed(5)
        q = VectorQuantizerEMA(codebook_size=6, dim=3, dead_code_threshold=2.0).train()
        for _ in range(4):
            q(torch.randn(10, 3))
        return q.codebook.clone()

    assert torch.equal(run(), run())


def test_distributed_path_matches_single_process(tmp_path):
    """With a one-process gloo group the all-reduce/broadcast path must give the same codebook."""
    if not dist.is_available():
        pytest.skip("torch.distributed not available")
    data = torch.randn(3, 10, 3, generator=torch.Generator().manual_seed(6))

    def run():
        torch.manual_seed(7)
        q = VectorQuantizerEMA(codebook_size=6, dim=3, dead_code_threshold=2.0).train()
        for x in data:
            q(x)
        return q.codebook.clone(), q.ema_count.clone()

    plain = run()
    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'store'}", rank=0, world_size=1)
    try:
        distributed = run()
    finally:
        dist.destroy_process_group()
    assert torch.equal(plain[0], distributed[0])
    assert torch.equal(plain[1], distributed[1])
