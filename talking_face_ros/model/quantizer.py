"""Vector quantiser with an exponential-moving-average codebook.

Why EMA instead of a learned codebook: the codebook follows the encoder as a running k-means
(each code moves to the running mean of the vectors assigned to it), which is stabler than a
codebook loss and needs no learning rate. The encoder gets its gradient through the
straight-through estimator (the quantised output passes the upstream gradient unchanged to the
encoder output) plus a commitment loss that keeps the encoder near its codes.

Codes that stop being used are the usual failure of VQ training. Here a code whose EMA usage
(vectors per batch) falls below ``dead_code_threshold`` is moved onto a random encoder output of
the current batch, and the codebook starts from random encoder outputs of the first training
batch rather than from noise, so that no code starts far from the data.

Padded frames (``mask`` False) take no part in the statistics, the restarts or the loss. Under
``torch.distributed`` the statistics are summed over processes and restarts are drawn on rank 0
and broadcast, so the codebook stays identical on every replica. Collectives happen only in
training-mode forwards; evaluation never communicates (it may run on one rank only).

The implementation is written here rather than taken from vector-quantize-pytorch to keep the
dependency list short and the masking semantics exact; it follows the same EMA formulation
(van den Oord et al. 2017, appendix; Laplace-smoothed cluster sizes).
"""
from __future__ import annotations

from typing import NamedTuple

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import Tensor, nn


class Quantized(NamedTuple):
    quantized: Tensor  # (..., dim) codes with straight-through gradient to the input
    indices: Tensor  # (...) int64 code index per vector
    commit_loss: Tensor  # scalar: commitment * mean squared distance input -> code (valid vectors)
    perplexity: Tensor  # scalar in [1, K]: exp(entropy) of this batch's code histogram
    usage: Tensor  # scalar in [0, 1]: share of the K codes used in this batch


class VectorQuantizerEMA(nn.Module):
    """Nearest-code quantiser; the codebook is updated by EMA, never by gradient.

    Updates happen in training mode with autograd enabled, so a frozen quantiser queried under
    ``torch.no_grad()`` (e.g. to make targets for the code predictor) never moves.
    """

    def __init__(
        self,
        *,
        codebook_size: int,  # K, number of codes
        dim: int,  # size of a code vector
        decay: float = 0.99,  # EMA decay of the per-code counts and sums
        eps: float = 1e-5,  # Laplace smoothing of the counts (keeps rare codes from dividing by ~0)
        dead_code_threshold: float = 1.0,  # EMA count (vectors per batch) under which a code restarts
        commitment: float = 0.25,  # weight of the commitment loss
    ):
        super().__init__()
        if codebook_size < 1 or dim < 1:
            raise ValueError(f"codebook_size and dim must be >= 1, got {codebook_size}, {dim}")
        if not 0.0 < decay < 1.0:
            raise ValueError(f"decay must be in (0, 1), got {decay}")
        self.codebook_size = codebook_size
        self.dim = dim
        self.decay = decay
        self.eps = eps
        self.dead_code_threshold = dead_code_threshold
        self.commitment = commitment
        self.register_buffer("codebook", torch.randn(codebook_size, dim))
        self.register_buffer("ema_count", torch.ones(codebook_size))
        self.register_buffer("ema_sum", self.codebook.clone())
        self.register_buffer("initialized", torch.tensor(False))

    def lookup(self, indices: Tensor) -> Tensor:
        """Code vectors for ``indices`` (any shape of int64) -> ``indices.shape + (dim,)``."""
        if indices.numel() and (indices.min() < 0 or indices.max() >= self.codebook_size):
            raise ValueError(f"code indices must be in [0, {self.codebook_size}), got "
                             f"[{int(indices.min())}, {int(indices.max())}]")
        return F.embedding(indices, self.codebook)

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Quantized:
        """Quantise ``x`` (..., dim); ``mask`` (...) bool marks the vectors that count."""
        if x.shape[-1] != self.dim:
            raise ValueError(f"expected vectors of size {self.dim}, got shape {tuple(x.shape)}")
        flat = x.reshape(-1, self.dim).float()
        valid = (torch.ones(flat.shape[0], dtype=torch.bool, device=x.device) if mask is None
                 else mask.reshape(-1).to(torch.bool))
        if valid.shape[0] != flat.shape[0]:
            raise ValueError(f"mask shape {tuple(mask.shape)} does not match vectors {tuple(x.shape[:-1])}")
        vectors = flat[valid]
        training = self.training and torch.is_grad_enabled()

        if training and not bool(self.initialized):
            self._init_from(vectors.detach())

        indices = self._nearest(flat.detach())
        codes = F.embedding(indices, self.codebook)
        counts = torch.bincount(indices[valid], minlength=self.codebook_size).float()

        if training:
            counts = self._update(vectors.detach(), indices[valid], counts)

        if vectors.shape[0]:
            commit = self.commitment * F.mse_loss(vectors, codes[valid].detach())
        else:
            commit = flat.sum() * 0.0  # keeps the graph connected when a batch is all padding
        quantized = flat + (codes - flat).detach()  # straight-through: d out / d x = identity
        perplexity, usage = _usage_stats(counts)
        return Quantized(
            quantized=quantized.reshape(x.shape).to(x.dtype),
            indices=indices.reshape(x.shape[:-1]),
            commit_loss=commit,
            perplexity=perplexity,
            usage=usage,
        )

    def _nearest(self, flat: Tensor) -> Tensor:
        # |x - e|^2 = |x|^2 - 2 x.e + |e|^2; |x|^2 is the same for every code, so it is left out.
        scores = self.codebook.pow(2).sum(1)[None, :] - 2.0 * flat @ self.codebook.t()
        return scores.argmin(dim=1)

    @torch.no_grad()
    def _init_from(self, vectors: Tensor) -> None:
        """Codebook := random vectors of the first batch (with repeats when it has fewer than K)."""
        picked = self._draw(vectors, self.codebook_size)
        if picked is None:
            return  # wait for a batch with real frames
        n = float(_all_sum(torch.tensor(float(vectors.shape[0]), device=vectors.device)))
        self.codebook.copy_(picked)
        # Starting at the restart threshold, a code that wins no vector in the next batches is
        # moved at once; a longer grace would let codes trail a fast-moving early encoder.
        threshold = self.dead_code_threshold
        self.ema_count.fill_(threshold if threshold > 0 else n / self.codebook_size)
        self.ema_sum.copy_(picked * self.ema_count[:, None])
        self.initialized.fill_(True)

    @torch.no_grad()
    def _update(self, vectors: Tensor, indices: Tensor, counts: Tensor) -> Tensor:
        """EMA step on (counts, sums) of the assigned vectors, then dead-code restarts."""
        onehot = F.one_hot(indices, self.codebook_size).type_as(vectors)
        sums = onehot.t() @ vectors
        counts, sums = _all_sum(counts), _all_sum(sums)
        self.ema_count.mul_(self.decay).add_(counts, alpha=1.0 - self.decay)
        self.ema_sum.mul_(self.decay).add_(sums, alpha=1.0 - self.decay)
        total = self.ema_count.sum()
        smoothed = (self.ema_count + self.eps) / (total + self.codebook_size * self.eps) * total
        self.codebook.copy_(self.ema_sum / smoothed[:, None])
        self._restart_dead(vectors)
        return counts

    @torch.no_grad()
    def _restart_dead(self, vectors: Tensor) -> None:
        dead = self.ema_count < self.dead_code_threshold
        n_dead = int(dead.sum())
        if n_dead == 0:
            return
        picked = self._draw(vectors, n_dead)
        if picked is None:
            return
        self.codebook[dead] = picked
        self.ema_count[dead] = self.dead_code_threshold
        self.ema_sum[dead] = picked * self.dead_code_threshold

    def _draw(self, vectors: Tensor, n: int) -> Tensor | None:
        """``n`` random rows of ``vectors``, drawn on rank 0 and shared; None if rank 0 had none."""
        draw = torch.zeros(n, self.dim + 1, device=vectors.device)  # last column: "rank 0 had data"
        if vectors.shape[0]:
            draw[:, :-1] = vectors[torch.randint(vectors.shape[0], (n,), device=vectors.device)]
            draw[:, -1] = 1.0
        draw = _broadcast(draw)
        return draw[:, :-1] if bool(draw[0, -1]) else None


def _usage_stats(counts: Tensor) -> tuple[Tensor, Tensor]:
    total = counts.sum()
    if total == 0:
        return counts.new_tensor(1.0), counts.new_tensor(0.0)
    p = counts / total
    entropy = -(p * torch.log(p.clamp_min(1e-12))).sum()  # 0 log 0 = 0 through p = 0
    return entropy.exp(), (counts > 0).float().mean()


def _distributed() -> bool:
    return dist.is_available() and dist.is_initialized()


def _all_sum(t: Tensor) -> Tensor:
    if _distributed():
        t = t.clone()
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t


def _broadcast(t: Tensor) -> Tensor:
    if _distributed():
        t = t.contiguous()
        dist.broadcast(t, src=0)
    return t
