"""Hierarchical motion VQ-VAE: facial motion -> coarse (high) and fine (low) discrete codes -> motion.

The split follows "Emotion-controllable 3D talking face generation with hierarchical
disentanglement-guided VQ-VAE": the HIGH level holds the holistic expression (emotion, slow
facial posture) at a low rate, the LOW level the fine motion (lips, blinks) at a higher rate.
Identity and a descriptive-text embedding are external conditions of both decoders; the decoded
high level is the internal condition of the low decoder.

Layout (default rates at 30 fps; stride = frames per step)::

    motion (T, 52) -> frame blocks -> patchify x2 -> low blocks -> z_low  (stride 2, 15 Hz)
                                                 \\-> mean-pool x4 -> high blocks -> z_high (stride 8)
    z_high -> VQ -> high blocks (FiLM: identity, text) -> high context -> coarse head -> coarse motion
    z_low  -> VQ -> (+ interpolated high context) -> low blocks (FiLM) -> unpatchify -> frame blocks -> fine
    output = interpolate(coarse motion) + fine            (then clamped to [0, 1], see below)

Disentanglement guidance (why the two levels end up holding different things):

1. The high encoder sees a mean-pooled (box low-pass) view of the low features at a quarter of
   their rate, so it cannot carry lip detail even if it wanted to.
2. Coarse-to-fine decoding: the high level alone must reconstruct the motion averaged over each
   high step (``coarse`` loss, L1 against the per-step mean of the target), and the low level
   adds the residual on top. What is slow and global is therefore claimed by the high codes;
   the low codes only need what the coarse motion misses, which is mostly the lips.
3. Expression supervision on the high codes only: a linear emotion classifier on each
   quantised high vector (when labels are given) and a linear map from it to the sentence's
   text embedding (cosine loss) pull emotion information into the high codebook. Being linear
   and per step, they make each high code itself expression-specific, which is what lets the
   code predictor pick emotions from text.
4. The reconstruction loss weights the jaw/mouth channels ``lip_weight`` times more, so the low
   level (the only path with enough temporal resolution for lips) is pushed to get them right.

Output range: the decoder output is linear and clamped to [0, 1] at the end
(``output_activation="clamp"``). The losses see the unclamped output: for targets in [0, 1]
|clamp(y) - t| <= |y - t|, so the loss bounds the error of what is shown, and its gradient never
vanishes the way a sigmoid's does near the resting weight 0 (most ARKit channels rest there).

Locality: all layers are convolutions, patchify/repeat resampling and interpolation between
neighbouring steps, with per-frame LayerNorm; ``receptive_field`` (motion -> motion) and
``decode_receptive_field`` (codes -> motion) give the reach in frames (see ``layers.Reach``).
Inputs are padded to a multiple of the coarsest stride and cropped back to T.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .config import VQVAEConfig
from .layers import (
    Conditioner, ConvBlock, Downsample, Reach, Upsample, ceil_to, channel_weights, check_mask,
    check_series, check_text, downsample_mask, lip_gap_loss, masked_mean, motion_losses, pad_time, pool_time,
    shift_steps, upsample_held, upsample_linear,
)
from .quantizer import VectorQuantizerEMA


class HierarchicalMotionVQVAE(nn.Module):
    """Motion <-> (high codes, low codes); ``levels=1`` gives the single-level baseline."""

    def __init__(self, config: VQVAEConfig):
        super().__init__()
        c = self.config = config
        s1, s2 = c.low_stride, c.high_stride
        self.hierarchical = c.levels == 2
        self.conditioner = Conditioner(
            num_speakers=c.num_speakers, identity_dim=c.identity_dim, text_dim=c.text_dim,
            cond_dim=c.cond_dim, identity_dropout=c.identity_dropout, text_dropout=c.text_dropout,
        )

        def blocks(n, dim, kernel, cond_dim=0):
            return nn.ModuleList(ConvBlock(dim, kernel=kernel, mlp_ratio=c.mlp_ratio, cond_dim=cond_dim,
                                           dropout=c.dropout, causal=c.causal) for _ in range(n))

        def quantizer(codebook_size):
            return VectorQuantizerEMA(codebook_size=codebook_size, dim=c.code_dim, decay=c.codebook_decay,
                                      dead_code_threshold=c.dead_code_threshold, commitment=c.commitment)

        def conv(kernel, stride):  # the reach of one conv block
            return Reach.conv(kernel, stride, causal=c.causal)

        # a causal model holds the high level's vectors over their frames (below); else it interpolates
        spread = Reach.up if c.causal else Reach.interp

        # Encoder. Reaches below: frames of motion that a code anchored at frame t may depend on.
        self.enc_in = nn.Linear(c.motion_dim, c.frame_dim)
        self.enc_frame = blocks(c.frame_blocks, c.frame_dim, c.kernel)
        self.enc_down = Downsample(c.frame_dim, c.dim, s1)
        self.enc_low = blocks(c.low_blocks, c.dim, c.kernel)
        self.enc_low_out = nn.Linear(c.dim, c.code_dim)
        enc_low = conv(c.kernel, 1) * c.frame_blocks + Reach.down(1, s1) + conv(c.kernel, s1) * c.low_blocks
        self.vq_low = quantizer(c.low_codebook_size)
        if self.hierarchical:
            self.enc_high = blocks(c.high_blocks, c.dim, c.high_kernel)
            self.enc_high_out = nn.Linear(c.dim, c.code_dim)
            enc_high = enc_low + Reach.down(s1, s2) + conv(c.high_kernel, s2) * c.high_blocks
            if c.causal:  # a high code is made from the step before the one it is held over
                enc_high = enc_high + Reach.shift(s2)
            self.vq_high = quantizer(c.high_codebook_size)

        # Decoder. Reaches below: code anchors (and text frames) an output frame t may depend on.
        low_cond = Reach.down(1, s1)  # the condition at a low step is the mean over its frames
        if self.hierarchical:
            self.dec_high_in = nn.Linear(c.code_dim, c.dim)
            self.dec_high = blocks(c.high_decoder_blocks, c.dim, c.high_kernel, c.cond_dim)
            self.coarse_head = nn.Linear(c.dim, c.motion_dim)
            # the high context: the code alone, or with decoder blocks also the text pooled over the step
            high_ctx = (Reach.down(1, s2) if c.high_decoder_blocks else Reach()) \
                + conv(c.high_kernel, s2) * c.high_decoder_blocks
            self.dec_context = nn.Linear(c.dim, c.dim) if c.internal_condition else None
            if c.internal_condition:
                low_cond = low_cond.max(high_ctx + spread(s1, s2))
        self.dec_low_in = nn.Linear(c.code_dim, c.dim)
        self.dec_low = blocks(c.low_blocks, c.dim, c.kernel, c.cond_dim)
        self.dec_up = Upsample(c.dim, c.frame_dim, s1)
        self.dec_frame = blocks(c.frame_blocks, c.frame_dim, c.kernel, c.cond_dim)
        self.dec_out = nn.Linear(c.frame_dim, c.motion_dim)
        fine = low_cond + conv(c.kernel, s1) * c.low_blocks + Reach.up(1, s1) + conv(c.kernel, 1) * c.frame_blocks

        # Expression heads on the quantised high vectors (guidance 3 of the module doc).
        self.emotion_head = (nn.Linear(c.code_dim, c.num_emotions)
                             if self.hierarchical and c.num_emotions else None)
        self.text_head = nn.Linear(c.code_dim, c.text_dim) if self.hierarchical else None
        self.register_buffer("channel_weight", channel_weights(c.motion_dim, c.lip_weight), persistent=False)

        if self.hierarchical:
            coarse = high_ctx + spread(1, s2)
            self._decode_reach = fine.max(coarse)
            self._reach = (enc_low + fine).max(enc_high + self._decode_reach)
        else:
            self._decode_reach = fine
            self._reach = enc_low + fine

    # -- properties the windowed / streaming callers need --------------------------------------

    @property
    def align(self) -> int:
        """Windows must start at multiples of this many frames (the coarsest code stride)."""
        return self.config.align

    @property
    def receptive_field(self) -> Reach:
        """Frames before/after frame t of the input motion that its reconstruction depends on."""
        return self._reach

    @property
    def decode_receptive_field(self) -> Reach:
        """Frames before/after frame t whose codes (anchors) or text frames the decoded frame t reads."""
        return self._decode_reach

    @property
    def lookahead(self) -> int:
        """Future frames of codes the decoder needs before it can emit a frame."""
        return self._decode_reach.right

    # -- public API ----------------------------------------------------------------------------

    def forward(self, motion: Tensor, *, mask: Tensor | None = None, identity: Tensor | None = None,
                text: Tensor | None = None, emotion: Tensor | None = None) -> dict[str, Tensor]:
        """Training step: ``loss`` (to backpropagate), its parts, and codebook statistics.

        motion (B, T, motion_dim); mask (B, T) bool (padding at the end); identity (B,) int in
        [0, num_speakers]; text (B, text_dim) or (B, T, text_dim); emotion (B,) int class of
        ``emotions.EMOTIONS`` or -1 where unknown. All values are scalars; ``perplexity_high`` and
        ``usage_high`` exist for two levels only. Identity/text dropout and codebook updates
        happen in training mode (codebook updates only with autograd on).
        """
        motion, masks, T = self._prepare(motion, mask)
        B = motion.shape[0]
        conds = self._conditions(identity, text, B, T, masks, drop=self.training)
        z_low, z_high = self._encode(motion, masks)
        q_low = self.vq_low(z_low, masks["low"])
        q_high = self.vq_high(z_high, masks["high"]) if self.hierarchical else None
        parts = self._decode(q_low.quantized, None if q_high is None else q_high.quantized, masks, conds)

        c = self.config
        fm = masks["frame"]
        view = self.loss_view(parts["raw"])
        recon, velocity = motion_losses(view, motion, fm, self.channel_weight)
        zero = recon.new_zeros(())
        gap = lip_gap_loss(view, motion, fm, closed_weight=c.closed_weight) if c.gap_weight else zero
        out = {"recon": recon, "velocity": velocity, "gap": gap, "coarse": zero, "commit": q_low.commit_loss,
               "emotion": zero, "emotion_accuracy": zero, "text_align": zero,
               "perplexity_low": q_low.perplexity, "usage_low": q_low.usage}
        if q_high is not None:
            hm = masks["high"]
            target = pool_time(motion, fm, c.high_stride)
            coarse_error = (self.loss_view(parts["coarse"]) - target).abs() * self.channel_weight
            out["coarse"] = masked_mean(coarse_error, hm)
            out["commit"] = out["commit"] + q_high.commit_loss
            out["perplexity_high"], out["usage_high"] = q_high.perplexity, q_high.usage
            if emotion is not None and self.emotion_head is not None:
                out["emotion"], out["emotion_accuracy"] = self._emotion_loss(q_high.quantized, emotion, hm)
            if text is not None:
                out["text_align"] = self._text_align_loss(q_high.quantized, text, T, masks)
        out["loss"] = (out["recon"] + c.velocity_weight * out["velocity"] + c.gap_weight * gap
                       + c.coarse_weight * out["coarse"]
                       + out["commit"] + c.emotion_weight * out["emotion"]
                       + c.text_align_weight * out["text_align"])
        return out

    @torch.no_grad()
    def encode_codes(self, motion: Tensor, *, mask: Tensor | None = None) -> dict[str, Tensor | None]:
        """Code indices: ``low`` (B, ceil(T/align)*align/low_stride), ``high`` (B, ...) or None, with masks.

        Never updates the codebook (no gradient, so the quantiser stays read-only in any mode).
        """
        motion, masks, _ = self._prepare(motion, mask)
        z_low, z_high = self._encode(motion, masks)
        return {
            "low": self.vq_low(z_low, masks["low"]).indices,
            "high": self.vq_high(z_high, masks["high"]).indices if self.hierarchical else None,
            "low_mask": masks["low"], "high_mask": masks["high"] if self.hierarchical else None,
        }

    def decode_codes(self, low: Tensor, high: Tensor | None, *, frames: int, identity: Tensor | None = None,
                     text: Tensor | None = None, mask: Tensor | None = None) -> Tensor:
        """Motion (B, frames, motion_dim) in the output range from code indices.

        low (B, L) with L = ceil(frames / align) * align / low_stride; high likewise at the high
        stride (None for ``levels=1``).
        """
        return self.decode(self.vq_low.lookup(low), None if high is None else self.vq_high.lookup(high),
                           frames=frames, identity=identity, text=text, mask=mask)

    def decode(self, low: Tensor, high: Tensor | None, *, frames: int, identity: Tensor | None = None,
               text: Tensor | None = None, mask: Tensor | None = None,
               return_parts: bool = False) -> Tensor | dict[str, Tensor]:
        """Like ``decode_codes`` from code vectors (B, L, code_dim) (for soft/straight-through codes).

        ``return_parts`` gives {"weights", "raw" (before the output activation), "fine" (the low
        decoder's output), "coarse" (the high level's interpolated contribution)}, all at the
        frame rate, instead of the weights; raw = coarse + fine.
        """
        B = low.shape[0]
        Tp = ceil_to(frames, self.align)
        masks = self.code_masks(check_mask(mask, B, frames, low.device), Tp)
        self._check_code_shape("low", low, B, Tp // self.config.low_stride)
        if self.hierarchical:
            if high is None:
                raise ValueError("a two-level VQ-VAE needs high codes to decode")
            self._check_code_shape("high", high, B, Tp // self.config.high_stride)
        conds = self._conditions(identity, text, B, frames, masks, drop=False)
        parts = self._decode(low, high, masks, conds)
        weights = self.activate(parts["raw"])[:, :frames]
        if not return_parts:
            return weights
        return {"weights": weights, "raw": parts["raw"][:, :frames], "fine": parts["fine"][:, :frames],
                "coarse": parts["coarse_frames"][:, :frames]}

    @torch.no_grad()
    def reconstruct(self, motion: Tensor, *, mask: Tensor | None = None, identity: Tensor | None = None,
                    text: Tensor | None = None) -> Tensor:
        """Encode, quantise and decode (no codebook update): (B, T, motion_dim) in the output range."""
        T = motion.shape[1]
        codes = self.encode_codes(motion, mask=mask)
        return self.decode_codes(codes["low"], codes["high"], frames=T, identity=identity, text=text, mask=mask)

    # -- internals -----------------------------------------------------------------------------

    def _prepare(self, motion, mask) -> tuple[Tensor, dict[str, Tensor], int]:
        motion = check_series(motion, "motion", self.config.motion_dim)
        motion = motion.to(self.dec_out.weight.dtype)
        B, T, _ = motion.shape
        fmask = check_mask(mask, B, T, motion.device)
        Tp = ceil_to(T, self.align)
        masks = self.code_masks(fmask, Tp)
        return pad_time(motion * fmask[..., None], Tp), masks, T

    def code_masks(self, frame_mask: Tensor, padded: int) -> dict[str, Tensor]:
        """Real-step masks at the frame, low and (two levels) high rates, frames padded to ``padded``."""
        m = pad_time(frame_mask, padded)
        masks = {"frame": m, "low": downsample_mask(m, self.config.low_stride)}
        if self.hierarchical:
            masks["high"] = downsample_mask(m, self.config.high_stride)
        return masks

    def _conditions(self, identity, text, B, T, masks, *, drop) -> dict[str, Tensor]:
        cond = self.conditioner(identity, text, batch=B, frames=T, drop=drop)
        cond = pad_time(cond, masks["frame"].shape[1]) * masks["frame"][..., None]
        conds = {"frame": cond, "low": pool_time(cond, masks["frame"], self.config.low_stride)}
        if self.hierarchical:
            conds["high"] = pool_time(cond, masks["frame"], self.config.high_stride)
        return conds

    def _encode(self, motion: Tensor, masks) -> tuple[Tensor, Tensor | None]:
        fm, lm = masks["frame"], masks["low"]
        h = self.enc_in(motion) * fm[..., None]
        for block in self.enc_frame:
            h = block(h, fm)
        h = self.enc_down(h, lm)
        for block in self.enc_low:
            h = block(h, lm)
        z_low = self.enc_low_out(h)
        if not self.hierarchical:
            return z_low, None
        hm = masks["high"]
        g = pool_time(h, lm, self.config.high_stride // self.config.low_stride)
        for block in self.enc_high:
            g = block(g, hm)
        if self.config.causal:  # see VQVAEConfig.causal
            g = shift_steps(g)
        return z_low, self.enc_high_out(g)

    def _decode(self, low: Tensor, high: Tensor | None, masks, conds) -> dict[str, Tensor]:
        c = self.config
        fm, lm = masks["frame"], masks["low"]
        h = self.dec_low_in(low) * lm[..., None]
        parts = {}
        if self.hierarchical:
            hm = masks["high"]
            ctx = self.dec_high_in(high) * hm[..., None]
            for block in self.dec_high:
                ctx = block(ctx, hm, conds["high"])
            coarse = self.coarse_head(ctx)
            high_len = hm.sum(dim=1)
            parts["coarse"] = coarse
            if c.causal:
                parts["coarse_frames"] = upsample_held(coarse, c.high_stride) * fm[..., None]
            else:
                parts["coarse_frames"] = upsample_linear(coarse, c.high_stride, high_len) * fm[..., None]
            if self.dec_context is not None:  # the internal condition
                up = upsample_held(ctx, c.high_stride // c.low_stride) if c.causal else \
                    upsample_linear(ctx, c.high_stride // c.low_stride, high_len)
                h = h + self.dec_context(up) * lm[..., None]
        for block in self.dec_low:
            h = block(h, lm, conds["low"])
        h = self.dec_up(h, fm)
        for block in self.dec_frame:
            h = block(h, fm, conds["frame"])
        fine = self.dec_out(h) * fm[..., None]
        parts["fine"] = fine
        parts["raw"] = fine + parts["coarse_frames"] if self.hierarchical else fine
        if not self.hierarchical:
            parts["coarse_frames"] = torch.zeros_like(fine)
        return parts

    def activate(self, raw: Tensor) -> Tensor:
        """The output range (``output_activation``) of raw motion."""
        act = self.config.output_activation
        if act == "clamp":
            return raw.clamp(0.0, 1.0)
        if act == "sigmoid":
            return torch.sigmoid(raw)
        return raw

    def loss_view(self, raw: Tensor) -> Tensor:
        """What the losses compare with the target: the unclamped output (see module doc)."""
        return torch.sigmoid(raw) if self.config.output_activation == "sigmoid" else raw

    def _emotion_loss(self, high: Tensor, emotion: Tensor, hm: Tensor) -> tuple[Tensor, Tensor]:
        emotion = torch.as_tensor(emotion, device=high.device).long().reshape(-1)
        if emotion.shape[0] != high.shape[0]:
            raise ValueError(f"emotion has {emotion.shape[0]} labels for a batch of {high.shape[0]}")
        if (emotion >= self.config.num_emotions).any() or (emotion < -1).any():
            raise ValueError(f"emotion labels must be in [-1, {self.config.num_emotions}), "
                             f"got {emotion.tolist()}")
        logits = self.emotion_head(high)
        labels = emotion[:, None].expand(-1, high.shape[1])
        use = hm & (labels >= 0)
        ce = F.cross_entropy(logits.transpose(1, 2), labels.clamp_min(0), reduction="none")
        correct = (logits.argmax(dim=-1) == labels).float()
        return masked_mean(ce[..., None], use), masked_mean(correct[..., None], use)

    def _text_align_loss(self, high: Tensor, text: Tensor, T: int, masks) -> Tensor:
        text = check_text(text, high.shape[0], T, self.config.text_dim).to(high)
        if text.shape[1] > 1:  # one embedding per frame: average it over each high step
            text = pool_time(pad_time(text, masks["frame"].shape[1]), masks["frame"], self.config.high_stride)
        pred = self.text_head(high)
        cos = F.cosine_similarity(pred, text.expand_as(pred), dim=-1, eps=1e-6)
        return masked_mean((1.0 - cos)[..., None], masks["high"])

    def _check_code_shape(self, name: str, codes: Tensor, batch: int, steps: int) -> None:
        if codes.ndim != 3 or codes.shape != (batch, steps, self.config.code_dim):
            raise ValueError(f"{name} codes must be (batch={batch}, steps={steps}, code_dim="
                             f"{self.config.code_dim}) for these frames, got {tuple(codes.shape)}")
