"""Direct-regression baseline: speech features + text + identity -> 52 weights, no codes.

The comparison point for the VQ models, in the manner of LAM / EmoTalk: a speech encoder
output regressed straight to blendshape weights by a windowed transformer. It takes the same
inputs and has the same locality property (``receptive_field``, ``apply_in_windows``) as the
code predictor, so the two can be trained, streamed and evaluated the same way. Layout::

    speech (T, d) -> frame blocks -> patchify x stride -> [conv + band attention] x layers
        (FiLM: identity, text) -> unpatchify -> frame blocks (FiLM) -> linear -> clamp to [0, 1]

Losses are those of the VQ-VAE's reconstruction (lip-weighted L1 on the unclamped output and on
frame-to-frame differences), so differences between the models are not differences of loss.
"""
from __future__ import annotations

import torch
from torch import Tensor, nn

from .config import RegressionConfig
from .layers import (
    Conditioner, ConvBlock, Downsample, LocalAttention, Reach, Upsample, as_batch, ceil_to,
    channel_weights, check_mask, check_series, downsample_mask, lip_gap_loss, motion_losses, pad_time, pool_time,
)


class RegressionBaseline(nn.Module):
    """Speech (B, T, speech_dim) at the motion frame rate -> motion (B, T, motion_dim)."""

    def __init__(self, config: RegressionConfig):
        super().__init__()
        c = self.config = config
        s = c.stride
        r = (c.kernel - 1) // 2
        self.conditioner = Conditioner(
            num_speakers=c.num_speakers, identity_dim=c.identity_dim, text_dim=c.text_dim,
            cond_dim=c.cond_dim, identity_dropout=c.identity_dropout, text_dropout=c.text_dropout,
        )

        def conv(dim, cond_dim=0):
            return ConvBlock(dim, kernel=c.kernel, mlp_ratio=c.mlp_ratio, cond_dim=cond_dim, dropout=c.dropout)

        self.speech_in = nn.Linear(c.speech_dim, c.frame_dim)
        self.frame_in = nn.ModuleList(conv(c.frame_dim) for _ in range(c.frame_blocks))
        self.down = Downsample(c.frame_dim, c.dim, s)
        self.layers = nn.ModuleList(
            nn.ModuleList([conv(c.dim, c.cond_dim),
                           LocalAttention(c.dim, heads=c.heads, left=c.attn_left, right=c.attn_right,
                                          cond_dim=c.cond_dim, dropout=c.dropout)])
            for _ in range(c.layers))
        self.up = Upsample(c.dim, c.frame_dim, s)
        self.frame_out = nn.ModuleList(conv(c.frame_dim, c.cond_dim) for _ in range(c.frame_blocks))
        self.out = nn.Linear(c.frame_dim, c.motion_dim)
        self.register_buffer("channel_weight", channel_weights(c.motion_dim, c.lip_weight), persistent=False)
        layer = Reach.steps(r, r, s) + Reach.steps(c.attn_left, c.attn_right, s)
        self._reach = Reach.steps(r, r, 1) * (2 * c.frame_blocks) + Reach.down(1, s) + Reach.up(1, s) \
            + layer * c.layers

    @property
    def align(self) -> int:
        """Windows must start at multiples of this many frames."""
        return self.config.stride

    @property
    def receptive_field(self) -> Reach:
        """Speech/text frames before and after frame t that output frame t depends on."""
        return self._reach

    @property
    def lookahead(self) -> int:
        return self._reach.right

    def forward(self, speech: Tensor, *, motion: Tensor, mask: Tensor | None = None,
                identity: Tensor | None = None, text: Tensor | None = None) -> dict[str, Tensor]:
        """Training step: {"loss", "recon", "velocity"}; arguments as in ``CodePredictor.forward``."""
        raw, T = self._run(speech, mask, identity, text, drop=self.training)
        return self.losses(raw, motion, mask)

    def losses(self, raw: Tensor, motion: Tensor, mask: Tensor | None = None) -> dict[str, Tensor]:
        """The training losses of ``run``'s output against ``motion`` (B, T, motion_dim)."""
        motion = check_series(motion, "motion", self.config.motion_dim).to(raw)
        if tuple(motion.shape[:2]) != tuple(raw.shape[:2]):
            raise ValueError(f"motion {tuple(motion.shape[:2])} and speech features {tuple(raw.shape[:2])} "
                             "must have the same (batch, frames)")
        fmask = check_mask(mask, motion.shape[0], raw.shape[1], motion.device)
        view = torch.sigmoid(raw) if self.config.output_activation == "sigmoid" else raw
        c = self.config
        recon, velocity = motion_losses(view, motion, fmask, self.channel_weight)
        gap = lip_gap_loss(view, motion, fmask, closed_weight=c.closed_weight) if c.gap_weight else recon.new_zeros(())
        return {"loss": recon + c.velocity_weight * velocity + c.gap_weight * gap, "recon": recon,
                "velocity": velocity, "gap": gap}

    @torch.no_grad()
    def predict(self, speech_feats, text_emb=None, identity=None, *, mask: Tensor | None = None) -> Tensor:
        """Motion (T, motion_dim) or (B, T, motion_dim); inputs as in ``CodePredictor.predict``."""
        speech, text, identity, single = as_batch(speech_feats, text_emb, identity)
        was_training = self.training
        if was_training:  # eval() walks every module: per streamed piece that cost showed in profiles
            self.eval()
        try:
            raw, _ = self._run(speech, mask, identity, text, drop=False)
        finally:
            if was_training:
                self.train()
        act = self.config.output_activation
        out = raw.clamp(0.0, 1.0) if act == "clamp" else torch.sigmoid(raw) if act == "sigmoid" else raw
        return out[0] if single else out

    def run(self, speech: Tensor, *, mask: Tensor | None = None, identity: Tensor | None = None,
            text: Tensor | None = None, drop: bool = False) -> Tensor:
        """Unactivated output (B, T, motion_dim) of batched inputs; ``drop``: identity/text dropout.
        The code predictor's refine head uses this network as its speech branch."""
        return self._run(speech, mask, identity, text, drop=drop)[0]

    def _run(self, speech, mask, identity, text, *, drop: bool) -> tuple[Tensor, int]:
        """Unactivated output (B, T, motion_dim), cropped to the input length T."""
        c = self.config
        speech = check_series(speech, "speech features", c.speech_dim).to(self.speech_in.weight)
        B, T, _ = speech.shape
        Tp = ceil_to(T, c.stride)
        fm = pad_time(check_mask(mask, B, T, speech.device), Tp)
        lm = downsample_mask(fm, c.stride)
        cond = pad_time(self.conditioner(identity, text, batch=B, frames=T, drop=drop), Tp) * fm[..., None]
        cond_low = pool_time(cond, fm, c.stride)
        h = self.front(pad_time(speech, Tp), fm)
        for k in range(c.layers):
            h = self.layer(k, h, lm, cond_low)
        return self.back(h, fm, cond)[:, :T], T

    # The three parts of ``_run``, apart so that ``staged_regression.StagedRegression`` can run
    # each over a stream in windows of its own reach: the same operations, the same numbers.

    def front(self, speech: Tensor, fine_mask: Tensor) -> Tensor:
        """Speech (B, T, speech_dim), T a multiple of the stride -> inner steps (B, T / stride, dim)."""
        h = self.speech_in(speech) * fine_mask[..., None]
        for block in self.frame_in:
            h = block(h, fine_mask)
        return self.down(h, downsample_mask(fine_mask, self.config.stride))

    def layer(self, k: int, h: Tensor, coarse_mask: Tensor, cond_low: Tensor) -> Tensor:
        """Inner layer ``k`` (conv block, then windowed attention) on inner steps (B, T', dim)."""
        conv, attn = self.layers[k]
        return attn(conv(h, coarse_mask, cond_low), coarse_mask, cond_low)

    def back(self, h: Tensor, fine_mask: Tensor, cond: Tensor) -> Tensor:
        """Inner steps (B, T', dim) -> unactivated motion (B, T' * stride, motion_dim)."""
        h = self.up(h, fine_mask)
        for block in self.frame_out:
            h = block(h, fine_mask, cond)
        return self.out(h) * fine_mask[..., None]
