"""Building blocks shared by the VQ-VAE, the code predictor and the regression baseline.

Everything here is temporally LOCAL, so that a sequence of any length can be processed in
overlapping windows whose outputs match one pass over the whole sequence (``apply_in_windows``);
the streaming engine relies on this. Conventions:

* Tensors are ``(batch, time, channels)``. ``mask`` is ``(batch, time)`` bool, True on real
  steps. Every block zeroes its output on padded steps, so padding inside a batch acts exactly
  like the zero padding a convolution applies beyond the ends of a sequence: a sequence gives
  the same result alone or padded in a batch.
* A layer at *stride* s runs at one step per s motion frames; step j stands for frames
  [s*j, s*j + s). Lengths are padded to a multiple of the coarsest stride at a model's input.
* ``Reach(left, right)`` counts the frames before and after frame t that an output anchored at
  frame t may depend on (a step's anchor is its first frame). Reaches add along a chain of
  layers and take the maximum over parallel branches. Models build their reach from the
  ``Reach.*`` rules below as they build their layers. It is an upper bound (FiLM acts after a
  block's convolution, so a condition reaches less far than the block's input); tests check
  it by perturbation, where it is tight to within a few frames.
* Normalisation is per frame (LayerNorm over channels): batch or sequence statistics would
  break locality.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..arkit import LIPS, NUM_BLENDSHAPES, indices
from ..lip_geometry import CLOSED_GAP, GAP_PER_WEIGHT, NEUTRAL_GAP


@dataclass(frozen=True)
class Reach:
    """Frames before (``left``) and after (``right``) an output frame that can influence it."""

    left: int = 0
    right: int = 0

    def __add__(self, other: "Reach") -> "Reach":
        return Reach(self.left + other.left, self.right + other.right)

    def __mul__(self, n: int) -> "Reach":
        """The reach of ``n`` such layers in a row."""
        return Reach(self.left * n, self.right * n)

    def max(self, other: "Reach") -> "Reach":
        return Reach(max(self.left, other.left), max(self.right, other.right))

    @staticmethod
    def steps(left: int, right: int, stride: int) -> "Reach":
        """A layer that sees ``left``/``right`` neighbouring steps at ``stride`` frames per step."""
        return Reach(left * stride, right * stride)

    @staticmethod
    def down(fine: int, coarse: int) -> "Reach":
        """Pooling/patchifying stride ``fine`` -> ``coarse``: a step covers the frames after its anchor."""
        return Reach(0, coarse - fine)

    @staticmethod
    def up(fine: int, coarse: int) -> "Reach":
        """Repeating stride ``coarse`` -> ``fine``: a fine step reads the coarse step it lies in."""
        return Reach(coarse - fine, 0)

    @staticmethod
    def shift(coarse: int) -> "Reach":
        """Reading the step before (``shift_steps``): ``coarse`` frames back, none ahead (a negative right)."""
        return Reach(coarse, -coarse)

    @staticmethod
    def conv(kernel: int, stride: int, *, causal: bool = False, dilation: int = 1) -> "Reach":
        """A ``ConvBlock``: half the kernel on each side, or (causal) all of it on the left."""
        if causal:
            return Reach.steps((kernel - 1) * dilation, 0, stride)
        r = (kernel - 1) // 2 * dilation
        return Reach.steps(r, r, stride)

    @staticmethod
    def interp(fine: int, coarse: int) -> "Reach":
        """Linear interpolation ``coarse`` -> ``fine``: the two coarse steps whose centres are nearest.

        Their centres lie within ``coarse`` frames of the fine step's centre; a centre is
        (stride - 1) / 2 frames after its anchor, hence the asymmetry.
        """
        return Reach(coarse + (coarse - fine + 1) // 2, coarse - (coarse - fine) // 2)


# ---------------------------------------------------------------------------------------------
# Masks, padding and resampling in time


def pad_time(x: Tensor, length: int) -> Tensor:
    """Zero-pad ``x`` (B, T, ...) at the end of the time axis to ``length`` steps."""
    extra = length - x.shape[1]
    if extra <= 0:
        return x
    return torch.cat([x, x.new_zeros((x.shape[0], extra) + tuple(x.shape[2:]))], dim=1)


def ceil_to(n: int, multiple: int) -> int:
    return -(-n // multiple) * multiple


def downsample_mask(mask: Tensor, factor: int) -> Tensor:
    """(B, T) -> (B, T / factor): a coarse step is real if any of its frames is."""
    return mask.reshape(mask.shape[0], -1, factor).any(dim=-1)


def pool_time(x: Tensor, mask: Tensor, factor: int) -> Tensor:
    """Mean over each run of ``factor`` steps, counting real steps only: (B, T, C) -> (B, T/f, C)."""
    B, T, C = x.shape
    m = mask.reshape(B, T // factor, factor, 1).to(x.dtype)
    total = (x.reshape(B, T // factor, factor, C) * m).sum(dim=2)
    return total / m.sum(dim=2).clamp_min(1.0)


def upsample_linear(x: Tensor, factor: int, lengths: Tensor) -> Tensor:
    """Linear interpolation between step centres, (B, T, C) -> (B, T * factor, C).

    Written by hand because F.interpolate cannot clamp at each sequence's own last real step
    (``lengths``, (B,)); clamping there is what keeps padded batches equal to single sequences.
    """
    B, T, C = x.shape
    # Positions in float32 whatever x's dtype: fp16 cannot count past 2048, nor hold the
    # half-frame offsets past 1024.
    u = (torch.arange(T * factor, device=x.device, dtype=torch.float32) + 0.5) / factor - 0.5
    lower = u.floor()
    w = (u - lower).to(x.dtype)[None, :, None]
    last = (lengths.to(x.device) - 1).clamp_min(0)[:, None]
    i0 = torch.minimum(lower.long().clamp_min(0)[None, :], last)
    i1 = torch.minimum((lower.long() + 1).clamp_min(0)[None, :], last)
    x0 = x.gather(1, i0[..., None].expand(B, -1, C))
    x1 = x.gather(1, i1[..., None].expand(B, -1, C))
    return x0 + w * (x1 - x0)


def shift_steps(x: Tensor) -> Tensor:
    """(B, T, C) -> (B, T, C): step t gets step t - 1's vector, step 0 zeros.

    Causal models (``VQVAEConfig.causal``) make a high code from the step before the one it is
    held over, so that the code exists by the time its first frame is shown.
    """
    return torch.cat([x.new_zeros(x.shape[0], 1, x.shape[2]), x[:, :-1]], dim=1)


def upsample_held(x: Tensor, factor: int) -> Tensor:
    """(B, T, C) -> (B, T * factor, C), each step's vector held over its ``factor`` fine steps (causal)."""
    return x.repeat_interleave(factor, dim=1)


class Downsample(nn.Module):
    """Stride x ``factor``: each coarse step is a linear map of its ``factor`` frames (patchify)."""

    def __init__(self, in_dim: int, out_dim: int, factor: int):
        super().__init__()
        self.factor = factor
        self.proj = nn.Linear(in_dim * factor, out_dim)

    def forward(self, x: Tensor, coarse_mask: Tensor) -> Tensor:
        B, T, C = x.shape
        return self.proj(x.reshape(B, T // self.factor, self.factor * C)) * coarse_mask[..., None]


class Upsample(nn.Module):
    """Stride / ``factor``: each coarse step emits its ``factor`` frames by a linear map (unpatchify)."""

    def __init__(self, in_dim: int, out_dim: int, factor: int):
        super().__init__()
        self.factor = factor
        self.out_dim = out_dim
        self.proj = nn.Linear(in_dim, out_dim * factor)

    def forward(self, x: Tensor, fine_mask: Tensor) -> Tensor:
        B, T, _ = x.shape
        return self.proj(x).reshape(B, T * self.factor, self.out_dim) * fine_mask[..., None]


# ---------------------------------------------------------------------------------------------
# Blocks


class AdaNorm(nn.Module):
    """LayerNorm over channels, then FiLM by a per-step condition (adaptive LayerNorm).

    The FiLM projection starts at zero, so an untrained block ignores its condition and the
    condition's effect grows only as far as it helps.
    """

    def __init__(self, dim: int, cond_dim: int = 0):
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.film = nn.Linear(cond_dim, 2 * dim) if cond_dim else None
        if self.film is not None:
            nn.init.zeros_(self.film.weight)
            nn.init.zeros_(self.film.bias)

    def forward(self, x: Tensor, cond: Tensor | None = None) -> Tensor:
        x = self.norm(x)
        if self.film is None:
            return x
        scale, shift = self.film(cond).chunk(2, dim=-1)
        return x * (1.0 + scale) + shift


class ConvBlock(nn.Module):
    """Residual ConvNeXt-style block: depthwise temporal conv, AdaNorm, pointwise MLP.

    Reach: ``(kernel - 1) / 2 * dilation`` steps on each side, or with ``causal`` all
    ``(kernel - 1) * dilation`` on the left (``left``, ``right``).
    """

    def __init__(self, dim: int, *, kernel: int = 5, dilation: int = 1, mlp_ratio: int = 2,
                 cond_dim: int = 0, dropout: float = 0.0, causal: bool = False):
        super().__init__()
        if kernel % 2 != 1:
            raise ValueError(f"kernel must be odd, got {kernel}")
        reach = Reach.conv(kernel, 1, causal=causal, dilation=dilation)
        self.left, self.right = reach.left, reach.right  # steps read before / after a step
        self.conv = nn.Conv1d(dim, dim, kernel, dilation=dilation, groups=dim)
        self.norm = AdaNorm(dim, cond_dim)
        self.mlp = nn.Sequential(
            nn.Linear(dim, mlp_ratio * dim), nn.GELU(), nn.Dropout(dropout), nn.Linear(mlp_ratio * dim, dim),
        )

    def forward(self, x: Tensor, mask: Tensor, cond: Tensor | None = None) -> Tensor:
        kernel = self.conv.weight.shape[-1]
        if kernel <= 3:
            # A depthwise kernel of 1 or 3 is a per-channel scale and shift of 1 or 3 shifted
            # copies. Written out, because torch's CPU conv runs a grouped conv as one small conv
            # per channel: a tenth of the default model's streaming time in profiles, and at
            # kernel 3 this takes half (streaming sizes) to two thirds (training batches) of
            # Conv1d's time on this 2-core CPU; the same numbers up to float rounding.
            d = self.conv.dilation[0]
            w = self.conv.weight[:, 0]
            xp = F.pad(x, (0, 0, self.left, self.right)) if self.left or self.right else x
            T = x.shape[1]
            y = torch.addcmul(self.conv.bias, xp[:, :T], w[:, 0])
            for k in range(1, kernel):
                y = torch.addcmul(y, xp[:, k * d:k * d + T], w[:, k])
        else:
            y = self.conv(F.pad(x.transpose(1, 2), (self.left, self.right))).transpose(1, 2)
        return (x + self.mlp(self.norm(y, cond))) * mask[..., None]


class LocalAttention(nn.Module):
    """Residual self-attention in which step t sees only steps [t - left, t + right].

    A learned bias per head and relative offset gives the position information. The band is
    computed in blocks of ``max(left, right)`` steps, each attending to itself and its two
    neighbours, so memory and time grow linearly with the length (a full T x T mask would not).
    """

    def __init__(self, dim: int, *, heads: int, left: int, right: int, cond_dim: int = 0,
                 dropout: float = 0.0):
        super().__init__()
        if dim % heads:
            raise ValueError(f"dim {dim} must be divisible by heads {heads}")
        if left < 0 or right < 0:
            raise ValueError(f"attention window must be >= 0 on both sides, got ({left}, {right})")
        self.heads, self.left, self.right = heads, left, right
        self.block = max(left, right, 1)
        self.dropout = dropout
        self.norm = AdaNorm(dim, cond_dim)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.out = nn.Linear(dim, dim)
        self.rel_bias = nn.Parameter(torch.zeros(heads, left + right + 1))

    @property
    def reach(self) -> tuple[int, int]:
        return self.left, self.right

    def forward(self, x: Tensor, mask: Tensor, cond: Tensor | None = None) -> Tensor:
        B, T, D = x.shape
        H, w = self.heads, self.block
        n = -(-T // w)
        q, k, v = self.qkv(self.norm(x, cond)).reshape(B, T, 3, H, D // H).permute(2, 0, 3, 1, 4)
        # Queries in blocks of w; keys/values in windows of the block and its two neighbours.
        q = F.pad(q, (0, 0, 0, n * w - T)).reshape(B, H, n, w, D // H)
        k, v = (F.pad(t, (0, 0, w, n * w - T + w)).unfold(2, 3 * w, w).transpose(-1, -2) for t in (k, v))
        key_real = F.pad(mask, (w, n * w - T + w)).unfold(1, 3 * w, w)  # (B, n, 3w)
        offset = torch.arange(3 * w, device=x.device)[None, :] - w - torch.arange(w, device=x.device)[:, None]
        in_band = (offset >= -self.left) & (offset <= self.right)  # (w, 3w)
        bias = self.rel_bias[:, (offset + self.left).clamp(0, self.left + self.right)]  # (H, w, 3w)
        allowed = in_band[None, None, None] & key_real[:, None, :, None, :]  # (B, 1, n, w, 3w)
        # A finite "minus infinity": a padded query with no real key gets a harmless uniform
        # average (zeroed by the mask below) instead of NaN; real queries are unaffected.
        very_negative = torch.finfo(q.dtype).min / 4
        attn_mask = bias[None, :, None].to(q.dtype).masked_fill(~allowed, very_negative)
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask,
                                           dropout_p=self.dropout if self.training else 0.0)
        y = y.reshape(B, H, n * w, D // H)[:, :, :T].transpose(1, 2).reshape(B, T, D)
        return (x + self.out(y)) * mask[..., None]

    def forward_from(self, x: Tensor, mask: Tensor, cond: Tensor | None, first: int) -> Tensor:
        """``forward``'s output for steps [first, T) only, (B, T - first, D).

        For streaming (``staged_blocks``), where a short window holds a few new steps and
        the keys before them: a dense (T - first) x T band instead of blocks, the same numbers
        up to float rounding.
        """
        B, T, D = x.shape
        H = self.heads
        q, k, v = self.qkv(self.norm(x, cond)).reshape(B, T, 3, H, D // H).permute(2, 0, 3, 1, 4)
        offset = torch.arange(T, device=x.device)[None, :] - torch.arange(first, T, device=x.device)[:, None]
        in_band = (offset >= -self.left) & (offset <= self.right)  # (T - first, T)
        bias = self.rel_bias[:, (offset + self.left).clamp(0, self.left + self.right)]
        allowed = in_band[None, None] & mask[:, None, None, :].bool()
        attn_mask = bias[None].to(q.dtype).masked_fill(~allowed, torch.finfo(q.dtype).min / 4)
        y = F.scaled_dot_product_attention(q[:, :, first:], k, v, attn_mask=attn_mask)
        y = y.transpose(1, 2).reshape(B, T - first, D)
        return (x[:, first:] + self.out(y)) * mask[:, first:, None]


# ---------------------------------------------------------------------------------------------
# Conditions


class Conditioner(nn.Module):
    """Identity + descriptive-text embedding -> one condition vector per frame.

    Identity 0 is the "unknown speaker" row; training replaces a share of identities by 0 so
    that row learns the average speaker. A dropped or missing text becomes a learned null
    vector, which makes the model usable without text and allows classifier-free guidance.
    Text may be one vector per sequence (B, text_dim) or one per frame (B, T, text_dim), which
    lets the emotion change in the middle of a stream without breaking locality.
    """

    def __init__(self, *, num_speakers: int, identity_dim: int, text_dim: int, cond_dim: int,
                 identity_dropout: float, text_dropout: float):
        super().__init__()
        self.num_speakers = num_speakers
        self.text_dim = text_dim
        self.identity_dropout = identity_dropout
        self.text_dropout = text_dropout
        self.identity = nn.Embedding(num_speakers + 1, identity_dim)
        self.text = nn.Linear(text_dim, cond_dim)
        self.null_text = nn.Parameter(torch.zeros(cond_dim))
        self.out = nn.Sequential(
            nn.Linear(identity_dim + cond_dim, cond_dim), nn.SiLU(), nn.Linear(cond_dim, cond_dim),
        )

    def forward(self, identity: Tensor | None, text: Tensor | None, *, batch: int, frames: int,
                drop: bool) -> Tensor:
        """(B, frames, cond_dim); ``drop`` applies the training dropouts (global torch RNG)."""
        device = self.null_text.device
        identity = check_identity(identity, batch, self.num_speakers, device)
        text_vec = check_text(text, batch, frames, self.text_dim)
        if drop and self.identity_dropout > 0:
            identity = identity * (torch.rand(batch, device=device) >= self.identity_dropout)
        ident = self.identity(identity)[:, None, :].expand(batch, frames, -1)
        null = self.null_text.expand(batch, frames, -1)
        if text_vec is None:
            txt = null
        else:
            txt = self.text(text_vec.to(device=device, dtype=null.dtype)).expand(batch, frames, -1)
            if drop and self.text_dropout > 0:
                dropped = torch.rand(batch, device=device) < self.text_dropout
                txt = torch.where(dropped[:, None, None], null, txt)
        return self.out(torch.cat([ident, txt], dim=-1))


def check_identity(identity, batch: int, num_speakers: int, device) -> Tensor:
    """Identity as (B,) int64 in [0, num_speakers]; None means 0 (unknown) for every sequence."""
    if identity is None:
        return torch.zeros(batch, dtype=torch.long, device=device)
    identity = torch.as_tensor(identity, device=device)
    if identity.dtype.is_floating_point or identity.dtype == torch.bool:
        raise ValueError(f"identity must be integer speaker ids, got dtype {identity.dtype}")
    identity = identity.long().reshape(-1)
    if identity.shape[0] != batch:
        raise ValueError(f"identity has {identity.shape[0]} entries for a batch of {batch}")
    if identity.numel() and (identity.min() < 0 or identity.max() > num_speakers):
        raise ValueError(f"identity must be in [0, {num_speakers}] (0 = unknown speaker), "
                         f"got {identity.tolist()}")
    return identity


def check_text(text, batch: int, frames: int, text_dim: int) -> Tensor | None:
    """Text as (B, 1, D) or (B, frames, D); None stays None (the null text)."""
    if text is None:
        return None
    text = torch.as_tensor(text)
    if text.ndim == 2:
        text = text[:, None, :]
    if (text.ndim != 3 or text.shape[0] != batch or text.shape[2] != text_dim
            or text.shape[1] not in (1, frames)):
        raise ValueError(f"text embedding must be (batch={batch}, {text_dim}) or "
                         f"(batch={batch}, frames={frames}, {text_dim}), got {tuple(text.shape)}")
    if not torch.isfinite(text).all():
        raise ValueError("text embedding contains NaN or inf")
    return text


def check_series(x, name: str, dim: int) -> Tensor:
    """A (B, T, dim) float series with T >= 1 and finite values."""
    x = torch.as_tensor(x)
    if x.ndim != 3 or x.shape[2] != dim or x.shape[1] < 1:
        raise ValueError(f"{name} must be (batch, frames >= 1, {dim}), got {tuple(x.shape)}")
    if not x.dtype.is_floating_point:
        raise ValueError(f"{name} must be floating point, got {x.dtype}")
    if not torch.isfinite(x).all():
        raise ValueError(f"{name} contains NaN or inf")
    return x


def check_mask(mask, batch: int, frames: int, device) -> Tensor:
    """(B, T) bool; None means every frame is real. Real frames must come first in each row."""
    if mask is None:
        return torch.ones(batch, frames, dtype=torch.bool, device=device)
    mask = torch.as_tensor(mask, device=device)
    if mask.shape != (batch, frames):
        raise ValueError(f"mask must be (batch={batch}, frames={frames}), got {tuple(mask.shape)}")
    mask = mask.to(torch.bool)
    if (mask[:, 1:] & ~mask[:, :-1]).any():
        raise ValueError("mask must mark a prefix of each sequence (padding only at the end)")
    if not mask[:, 0].all():
        raise ValueError("every sequence needs at least one real frame (mask[:, 0] must be True)")
    return mask


# ---------------------------------------------------------------------------------------------
# Losses and windows


def channel_weights(motion_dim: int, lip_weight: float) -> Tensor:
    """Per-channel loss weights with mean 1: the jaw/mouth channels count ``lip_weight`` times more.

    Only the 52-channel ARKit layout has known lip channels; other layouts get uniform weights.
    """
    w = torch.ones(motion_dim)
    if motion_dim == NUM_BLENDSHAPES:
        w[torch.from_numpy(indices(LIPS))] = lip_weight
    return w / w.mean()


def masked_mean(x: Tensor, mask: Tensor) -> Tensor:
    """Mean of ``x`` (B, T, ...) over real steps (and all trailing elements)."""
    m = mask.reshape(mask.shape + (1,) * (x.ndim - 2)).to(x.dtype)
    count = m.sum() * math.prod(x.shape[2:])
    return (x * m).sum() / count.clamp_min(1.0)


def motion_losses(pred: Tensor, target: Tensor, mask: Tensor, weight: Tensor) -> tuple[Tensor, Tensor]:
    """Channel-weighted L1 on frames and on frame-to-frame differences, over real frames."""
    recon = masked_mean((pred - target).abs() * weight, mask)
    both = mask[:, 1:] & mask[:, :-1]
    velocity = masked_mean((pred.diff(dim=1) - target.diff(dim=1)).abs() * weight, both)
    return recon, velocity


def lip_gap_loss(pred: Tensor, target: Tensor, mask: Tensor, *, closed_weight: float) -> Tensor:
    """L1 on the lip gap (cm), counted ``1 + closed_weight`` times on frames where the target's lips are closed.

    Why: the per-channel L1 spreads a bilabial closure over a dozen channels, and a code or a
    regression that smooths a 2-3 frame closure into a near-closure loses little there while
    the lips never touch. The gap is exactly affine in the 52 weights (``lip_geometry``), so
    this measures what the closure metric sees. Other layouts (vertices) give 0.
    """
    if pred.shape[-1] != NUM_BLENDSHAPES:
        return pred.new_zeros(())
    coeff = torch.as_tensor(GAP_PER_WEIGHT, dtype=pred.dtype, device=pred.device)
    error = ((pred - target) @ coeff).abs()
    closed = (NEUTRAL_GAP + target @ coeff) <= CLOSED_GAP
    return masked_mean((error * (1.0 + closed_weight * closed.to(pred.dtype)))[..., None], mask)


def apply_in_windows(fn: Callable[..., Tensor], series: dict[str, Tensor], *, reach: Reach, align: int,
                     window: int) -> Tensor:
    """Run a temporally local ``fn`` over long input in overlapping windows; equals one pass.

    ``series`` holds (B, T, ...) tensors cut along time and passed to ``fn`` as keywords;
    ``fn`` returns (B, t, ...) for a cut of t frames. Each window keeps ``window`` frames
    (rounded up to ``align``) and sees ``reach.left`` frames before them (rounded up to
    ``align``, so cuts start on the coarsest code grid) and ``reach.right`` after them.
    """
    lengths = {v.shape[1] for v in series.values()}
    if len(lengths) != 1:
        raise ValueError(f"all series must have the same number of frames, got {sorted(lengths)}")
    T = lengths.pop()
    window = ceil_to(max(window, 1), align)
    before = ceil_to(reach.left, align)
    pieces = []
    for start in range(0, T, window):
        a, b = max(0, start - before), min(T, start + window + reach.right)
        out = fn(**{k: v[:, a:b] for k, v in series.items()})
        pieces.append(out[:, start - a:start - a + min(window, T - start)])
    return torch.cat(pieces, dim=1)


def sample_codes(logits: Tensor, *, temperature: float, top_k: int | None,
                 generator: torch.Generator | None) -> Tensor:
    """Argmax at temperature 0; otherwise a draw from softmax(logits / temperature), top-k limited."""
    if temperature < 0 or not math.isfinite(temperature):
        raise ValueError(f"temperature must be >= 0, got {temperature}")
    if temperature == 0:
        return logits.argmax(dim=-1)
    logits = logits / temperature
    if top_k is not None:
        if top_k < 1:
            raise ValueError(f"top_k must be >= 1, got {top_k}")
        kth = logits.topk(min(top_k, logits.shape[-1]), dim=-1).values[..., -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    probs = logits.softmax(dim=-1).reshape(-1, logits.shape[-1])
    return torch.multinomial(probs, 1, generator=generator).reshape(logits.shape[:-1])


def as_batch(speech, text, identity) -> tuple[Tensor, Tensor | None, Tensor | None, bool]:
    """Let inference take one sequence as well as a batch.

    One sequence: speech (T, d), text (D,) or (T, D) or None, identity int or None. A batch:
    speech (B, T, d), text (B, D) or (B, T, D) or None, identity (B,) or None. Returns the
    batched tensors and whether the input was a single sequence (to drop the batch axis again).
    """
    speech = torch.as_tensor(speech)
    single = speech.ndim == 2
    if not single:
        return speech, None if text is None else torch.as_tensor(text), identity, False
    speech = speech[None]
    if text is not None:
        text = torch.as_tensor(text)[None]
    if identity is not None:
        identity = torch.as_tensor(identity).reshape(1)
    return speech, text, identity, True
