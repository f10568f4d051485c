"""Non-autoregressive code predictor: speech features + text + identity -> VQ codes -> motion.

DEEPTalk showed that the codes of a motion VQ-VAE can be predicted in parallel instead of one
after the other; that is what this module does, in two parallel passes:

1. HIGH codes (holistic expression, 3.75 Hz by default) from the speech trunk and the
   condition (identity + text), all high steps at once;
2. LOW codes (lips and fine motion, 15 Hz) from the speech trunk, the condition and the
   embeddings of the high codes (the same internal condition as in the VQ-VAE's decoder).

Training feeds the low head the *true* high codes for a share ``teacher_forcing`` of the
sequences and the head's own argmax predictions for the rest, and replaces a share
``code_noise`` of them at random, so the low head learns to cope with the high-code errors it
will meet at inference (scheduled sampling). Outside training mode the low head always sees
predicted high codes, so validation losses measure what inference does.

Losses: label-smoothed cross-entropy at both levels. Optionally (``motion_loss_weight`` > 0,
off by default) an L1 loss on motion decoded from the predicted codes (plus, with
``gap_weight``, the lip-gap loss of ``layers.lip_gap_loss`` on it): the codes enter the
frozen decoder as straight-through one-hots (argmax forward, softmax gradient), which makes the
cross-entropy care about codes that *look* different rather than merely have different indices.

Optionally (``refine_weight`` > 0) a refine head corrects each decoded frame: a small MLP
reads the frame's decoded (raw) motion, the state of its low step (the low head's last hidden
layer) and its speech feature frame, and puts out a correction added before the output
activation. It is trained (weight ``refine_weight``) with the VQ-VAE's motion losses on the
corrected motion of the argmax codes (the decoder frozen, no gradient through the codes).
Why: picking codes from speech is where the error is (the VQ-VAE reconstructs ten times better
than its codes are predicted from 2 hours of data), and a code that is wrong but close moves
the lips a little off. The codes keep the motion's shape and style (closures, emotion,
diversity by sampling); the correction pulls each frame towards what the speech says. It reads
nothing beyond its own frame and low step, so the reach, windows and streaming stay exact.

With ``refine_branch_layers`` > 0 the head also has a speech branch: the regression baseline's
network (``baselines.py``), which reads the speech in temporal context and puts out motion,
trained with that baseline's own losses. The head reads the branch's motion, and a gate per
frame and channel moves the decoded motion towards it. Branch, gate and head train in a stage of
their own (``refine_forward``, stage 3), on codes drawn at ``refine_temperature`` so that the
codes are as unreliable as on new voices. Why: on 2 hours of data the codes over-fit the training
voices while the regression generalises (held-out LVE 5.8 against 12.5 mm²), and a regression
alone does not close the lips on bilabials or sample; the gate learns to take each from where it
is right. The branch's reach (11 frames ahead) lies within the decoder's, so the lookahead does
not grow; the engine computes the branch as a stage of its own.

Two kinds of output head (``head``): "logits" scores each code with its own output unit;
"latent" puts out a vector in the code space and scores each code by its negative squared
distance to it (times a learned scale), trained with the cross-entropy plus the squared error to
the target code's vector (``latent_loss_weight``). The argmax is then the nearest code, as in
CodeTalker; temperature sampling works on either.

Every layer is local (convolutions, band attention with a learned relative-position bias),
so ``receptive_field`` (speech frames -> output frame, including the VQ-VAE's decoder) is
finite and ``apply_in_windows`` over ``predict`` at temperature 0 equals one pass.

The VQ-VAE is held, frozen and in eval mode, as ``self.vqvae``: it provides the code targets,
the code embeddings and the decoder, and it is saved with the predictor.
"""
from __future__ import annotations

import contextlib
import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .config import PredictorConfig
from .layers import (
    Conditioner, ConvBlock, Downsample, LocalAttention, Reach, as_batch, ceil_to, check_mask,
    check_series, lip_gap_loss, masked_mean, motion_losses, pad_time, pool_time, sample_codes, shift_steps,
    upsample_held, upsample_linear,
)
from .motion_vqvae import HierarchicalMotionVQVAE


class CodePredictor(nn.Module):
    """Speech (B, T, speech_dim) at the motion frame rate -> code logits -> motion via ``vqvae``."""

    def __init__(self, config: PredictorConfig, vqvae: HierarchicalMotionVQVAE):
        super().__init__()
        c, v = config, vqvae.config
        if c.num_speakers != v.num_speakers:
            raise ValueError(f"PredictorConfig.num_speakers ({c.num_speakers}) must equal the VQ-VAE's "
                             f"({v.num_speakers}): both index the same speakers")
        if c.text_dim != v.text_dim:
            raise ValueError(f"PredictorConfig.text_dim ({c.text_dim}) must equal the VQ-VAE's ({v.text_dim})")
        self.config = c
        self.vqvae = vqvae.requires_grad_(False).eval()
        self.hierarchical = vqvae.hierarchical
        s1, s2 = v.low_stride, v.high_stride
        self.causal = v.causal  # the VQ-VAE's choice (VQVAEConfig.causal) holds for the predictor too

        def reach(kernel, stride):  # of one conv block
            return Reach.conv(kernel, stride, causal=v.causal)

        spread = Reach.up if v.causal else Reach.interp  # how the high codes' vectors reach the low steps
        self.conditioner = Conditioner(
            num_speakers=c.num_speakers, identity_dim=c.identity_dim, text_dim=c.text_dim,
            cond_dim=c.cond_dim, identity_dropout=c.identity_dropout, text_dropout=c.text_dropout,
        )

        def conv(dim, kernel, cond_dim=0):
            return ConvBlock(dim, kernel=kernel, mlp_ratio=c.mlp_ratio, cond_dim=cond_dim, dropout=c.dropout,
                             causal=v.causal)

        def attn(left, right):
            return LocalAttention(c.dim, heads=c.heads, left=left, right=right, cond_dim=c.cond_dim,
                                  dropout=c.dropout)

        # Shared speech trunk at the low rate. Reaches: speech/text frames a step anchored at
        # frame t may depend on (see layers.Reach).
        self.speech_in = nn.Linear(c.speech_dim, c.frame_dim)
        self.frame_blocks = nn.ModuleList(conv(c.frame_dim, c.kernel) for _ in range(c.frame_blocks))
        self.down = Downsample(c.frame_dim, c.dim, s1)
        self.trunk = nn.ModuleList(conv(c.dim, c.kernel, c.cond_dim) for _ in range(c.trunk_blocks))
        trunk = reach(c.kernel, 1) * c.frame_blocks + Reach.down(1, s1) + reach(c.kernel, s1) * c.trunk_blocks
        low_in = trunk
        self._code_reach = {}
        if self.hierarchical:
            self.high = nn.ModuleList(
                nn.ModuleList([conv(c.dim, c.high_kernel, c.cond_dim),
                               attn(c.high_attn_left, c.high_attn_right)])
                for _ in range(c.high_layers))
            self.high_head = nn.Sequential(nn.LayerNorm(c.dim), nn.Linear(c.dim, self._head_size(v.high_codebook_size)))
            self.high_scale = self._new_scale()
            self.code_in = nn.Linear(v.code_dim, c.dim)
            high_layer = reach(c.high_kernel, s2) + Reach.steps(c.high_attn_left, c.high_attn_right, s2)
            high = trunk + Reach.down(s1, s2) + high_layer * c.high_layers
            if v.causal:  # from the step before (its trunk and conditions), as the VQ-VAE makes it
                high = trunk + Reach.down(s1, s2) + Reach.shift(s2) + high_layer * c.high_layers
            low_in = trunk.max(high + spread(s1, s2))
            self._code_reach["high"] = high
        self.low = nn.ModuleList(
            nn.ModuleList([conv(c.dim, c.kernel, c.cond_dim), attn(c.low_attn_left, c.low_attn_right)])
            for _ in range(c.low_layers))
        self.low_head = nn.Sequential(nn.LayerNorm(c.dim), nn.Linear(c.dim, self._head_size(v.low_codebook_size)))
        self.low_scale = self._new_scale()
        self.refine_head = None
        if c.refine_weight > 0:  # per frame: (decoded motion, low step's state, speech frame) -> correction
            self.refine_norm = nn.LayerNorm(c.dim)
            self.refine_speech = nn.Linear(c.speech_dim, c.frame_dim)
            self.refine_head = nn.Sequential(nn.Linear(v.motion_dim + c.dim + c.frame_dim, c.dim), nn.GELU(),
                                             nn.Linear(c.dim, v.motion_dim))
            nn.init.zeros_(self.refine_head[2].weight)  # starts as the codes' motion alone
            nn.init.zeros_(self.refine_head[2].bias)
        self.refine_branch = self.refine_branch_in = self.refine_gate = None
        if c.refine_branch_layers > 0:  # speech in temporal context -> motion -> the head's speech input
            self.refine_branch = _speech_branch(c, v)
            self.refine_branch_in = nn.Linear(v.motion_dim, c.frame_dim)
            nn.init.zeros_(self.refine_branch_in.weight)
            nn.init.zeros_(self.refine_branch_in.bias)
            # per frame and channel, how far to move from the codes' motion to the branch's
            self.refine_gate = nn.Sequential(nn.Linear(v.motion_dim + c.dim + c.frame_dim, c.dim), nn.GELU(),
                                             nn.Linear(c.dim, v.motion_dim))
            nn.init.zeros_(self.refine_gate[2].weight)  # starts half-way
            nn.init.zeros_(self.refine_gate[2].bias)
        low_layer = reach(c.kernel, s1) + Reach.steps(c.low_attn_left, c.low_attn_right, s1)
        low = low_in + low_layer * c.low_layers
        self._code_reach["trunk"] = trunk
        self._code_reach["low_given_high"] = trunk + low_layer * c.low_layers
        if self.hierarchical:  # high-code anchors a low code reads, given the high codes
            self._code_reach["low_on_high"] = spread(s1, s2) + low_layer * c.low_layers
        self._code_reach["low"] = low
        # Every code the decoder reads depends on speech within `low` of its anchor (the high
        # codes' reach is contained in it), so predict() reaches `low` + the decoder's reach.
        self._reach = low + vqvae.decode_receptive_field
        if self.refine_branch is not None:
            self._reach = self._reach.max(self.refine_branch.receptive_field)

    def _head_size(self, codebook_size: int) -> int:
        return codebook_size if self.config.head == "logits" else self.vqvae.config.code_dim

    def _new_scale(self) -> nn.Parameter | None:
        """Log of the distance scale; 1 / code_dim to start, so that logits start near unit size
        (squared distances grow with code_dim, and a learned log-scale moves slowly)."""
        if self.config.head != "latent":
            return None
        return nn.Parameter(torch.tensor(-math.log(self.vqvae.config.code_dim)))

    def train(self, mode: bool = True) -> "CodePredictor":
        """Train mode for the predictor only: the VQ-VAE stays frozen in eval mode."""
        super().train(mode)
        self.vqvae.eval()
        return self

    @property
    def refines(self) -> bool:
        """Whether a refine head corrects the decoded motion (``refine_weight`` > 0)."""
        return self.refine_head is not None

    @property
    def align(self) -> int:
        """Windows must start at multiples of this many frames (the VQ-VAE's coarsest stride)."""
        return self.vqvae.align

    @property
    def receptive_field(self) -> Reach:
        """Speech/text frames before and after frame t that predict()'s frame t depends on."""
        return self._reach

    @property
    def lookahead(self) -> int:
        """Future frames of speech features needed before frame t can be emitted."""
        return self._reach.right

    def refine_modules(self) -> list[nn.Module]:
        """What stage 3 trains: the refine head, its inputs' layers, the speech branch and the gate."""
        if self.refine_head is None:
            return []
        parts = (self.refine_norm, self.refine_speech, self.refine_head, self.refine_branch, self.refine_branch_in,
                 self.refine_gate)
        return [m for m in parts if m is not None]

    @property
    def code_receptive_fields(self) -> dict[str, Reach]:
        """Speech/text frames around a code's anchor that its logits depend on.

        "trunk": the speech trunk's steps (``speech_trunk``); "high": high codes; "low": low
        codes with predicted high codes (what predict() uses);
        "low_given_high": low codes when the high codes are given (``logits(high_codes=...)``);
        "low_on_high" (two levels): frames around a low code's anchor in which lie the anchors
        of the given high codes it reads.
        """
        return dict(self._code_reach)

    # -- training ------------------------------------------------------------------------------

    def forward(self, speech: Tensor, *, motion: Tensor, mask: Tensor | None = None,
                identity: Tensor | None = None, text: Tensor | None = None) -> dict[str, Tensor]:
        """Training step: ``loss`` and its parts; targets are the frozen VQ-VAE's codes of ``motion``.

        speech (B, T, speech_dim) aligned with motion (B, T, motion_dim); mask, identity, text as
        in ``HierarchicalMotionVQVAE.forward``.
        """
        c = self.config
        speech, masks, conds, T = self._prepare(speech, mask, identity, text, drop=self.training)
        speech_frames = speech
        if self.training and c.time_mask > 0:  # zeroed frames: the trunk must read speech from context
            keep = torch.rand(speech.shape[:2], device=speech.device) >= c.time_mask
            speech = speech * keep[..., None].to(speech.dtype)
        motion = self._check_motion(motion, speech.shape[0], T)
        targets = self.vqvae.encode_codes(motion, mask=mask)
        trunk = self._trunk(speech, masks, conds)
        zero = trunk.new_zeros(())
        out = {"ce_high": zero, "accuracy_high": zero, "latent": zero}
        high_vec = None
        if self.hierarchical:
            high_logits, high_latent = self._high_logits(trunk, masks, conds)
            out["ce_high"], out["accuracy_high"] = self._ce(high_logits, targets["high"], masks["high"])
            if high_latent is not None:
                out["latent"] = self._latent_loss(high_latent, self.vqvae.vq_high, targets["high"], masks["high"])
            fed = self._fed_high_codes(targets["high"], high_logits)
            high_vec = self.vqvae.vq_high.lookup(fed)
        low_hidden = self._low_hidden(trunk, high_vec, masks, conds)
        low_logits, low_latent = self._low_scores(low_hidden)
        out["ce_low"], out["accuracy_low"] = self._ce(low_logits, targets["low"], masks["low"])
        if low_latent is not None:
            out["latent"] = out["latent"] + self._latent_loss(low_latent, self.vqvae.vq_low, targets["low"],
                                                              masks["low"])
        out["motion"] = zero
        if c.motion_loss_weight > 0:
            out["motion"] = self._motion_loss(low_logits, high_logits if self.hierarchical else None,
                                              motion, mask, identity, text, T)
        out["refine"] = zero
        if self.refine_head is not None:
            branch = self._branch(speech_frames[:, :T], mask, identity, text)
            out["refine"] = self._refine_loss(low_hidden, low_logits.argmax(dim=-1), high_vec, speech_frames, branch,
                                              motion, mask, identity, text, T)
        out["loss"] = (c.high_loss_weight * out["ce_high"] + out["ce_low"] + c.motion_loss_weight * out["motion"]
                       + c.latent_loss_weight * out["latent"] + c.refine_weight * out["refine"])
        return out

    def _fed_high_codes(self, true: Tensor, logits: Tensor) -> Tensor:
        """The high codes the low head sees: true or predicted per sequence, plus random codes."""
        predicted = logits.argmax(dim=-1)
        if not self.training:
            return predicted
        B, n = true.shape
        use_true = torch.rand(B, device=true.device) < self.config.teacher_forcing
        fed = torch.where(use_true[:, None], true, predicted)
        if self.config.code_noise > 0:
            noisy = torch.rand(B, n, device=true.device) < self.config.code_noise
            fed = torch.where(noisy, torch.randint_like(fed, self.vqvae.config.high_codebook_size), fed)
        return fed

    def _ce(self, logits: Tensor, target: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        ce = F.cross_entropy(logits.transpose(1, 2), target, reduction="none",
                             label_smoothing=self.config.label_smoothing)
        correct = (logits.argmax(dim=-1) == target).to(logits.dtype)
        return masked_mean(ce[..., None], mask), masked_mean(correct[..., None], mask)

    @staticmethod
    def _latent_loss(latent: Tensor, quantizer, target: Tensor, mask: Tensor) -> Tensor:
        """Squared error between the head's code-space vector and the target code's vector."""
        return masked_mean((latent - quantizer.lookup(target)).pow(2), mask)

    def _motion_loss(self, low_logits, high_logits, motion, mask, identity, text, T) -> Tensor:
        vq = self.vqvae
        low = _straight_through(low_logits) @ vq.vq_low.codebook
        high = None if high_logits is None else _straight_through(high_logits) @ vq.vq_high.codebook
        parts = vq.decode(low, high, frames=T, identity=identity, text=text, mask=mask, return_parts=True)
        fmask = check_mask(mask, motion.shape[0], T, motion.device)
        view, target = vq.loss_view(parts["raw"]), motion.to(low.dtype)
        recon, _ = motion_losses(view, target, fmask, vq.channel_weight)
        if self.config.gap_weight:
            recon = recon + self.config.gap_weight * lip_gap_loss(view, target, fmask,
                                                                  closed_weight=self.config.closed_weight)
        return recon

    def refine_forward(self, speech: Tensor, *, motion: Tensor, mask: Tensor | None = None,
                       identity: Tensor | None = None, text: Tensor | None = None) -> dict[str, Tensor]:
        """Stage 3's training step: the refine head's loss on codes drawn as at inference (no teacher
        forcing) plus the speech branch's own regression loss, everything but ``refine_modules``
        frozen; arguments as in ``forward``.

        Why a stage of its own: the code heads over-fit a small corpus after ~1,500 steps, while a
        speech branch, like the regression baseline, keeps improving for thousands more; trained
        together, the early stop of the codes would stop the branch too.
        Why ``refine_temperature``: on the training voices the argmax codes are right far more
        often than on new voices (low-code accuracy 0.58 against 0.19 on the 2-hour corpus), so a
        head trained on them learns to trust the codes over the branch; codes drawn at a
        temperature are wrong about as often as on new voices (0.30 at 1.0, 0.16 at 1.5).
        """
        if self.refine_head is None:
            raise ValueError("refine_forward needs a refine head (refine_weight > 0)")
        draw = dict(temperature=self.config.refine_temperature if self.training else 0.0, top_k=None, generator=None)
        with torch.no_grad(), _eval_mode(self):
            frames, masks, conds, T = self._prepare(speech, mask, identity, text, drop=False)
            trunk = self._trunk(frames, masks, conds)
            high = self._draw_high(trunk, masks, conds, **draw) if self.hierarchical else None
            low_codes, low_hidden = self._draw_low(trunk, high, masks, conds, **draw)
            high_vec = None if high is None else self.vqvae.vq_high.lookup(high)
        motion = self._check_motion(motion, frames.shape[0], T)
        branch = self._branch(frames[:, :T], mask, identity, text)
        refine = self._refine_loss(low_hidden, low_codes, high_vec, frames, branch, motion, mask, identity, text, T)
        out = {"refine": refine}
        if branch is not None:
            own = self.refine_branch.losses(branch, motion, mask)
            out.update({"branch": own["loss"], "branch_recon": own["recon"]})
            refine = refine + own["loss"]
        return {"loss": refine, **out}

    def _check_motion(self, motion: Tensor, batch: int, frames: int) -> Tensor:
        motion = check_series(motion, "motion", self.vqvae.config.motion_dim)
        if tuple(motion.shape[:2]) != (batch, frames):
            raise ValueError(f"motion {tuple(motion.shape[:2])} and speech features {(batch, frames)} "
                             "must have the same (batch, frames); resample the features to the motion rate")
        return motion

    def _branch(self, speech: Tensor, mask, identity, text) -> Tensor | None:
        """The speech branch's raw motion (B, T, motion_dim), or None without a branch."""
        if self.refine_branch is None:
            return None
        return self.refine_branch.run(speech, mask=mask, identity=identity, text=text, drop=self.training)

    def _refine_loss(self, low_hidden, low_codes, high_vec, speech, branch, motion, mask, identity, text,
                     T) -> Tensor:
        """Motion losses of the decoded low codes (with the high codes the low head saw), corrected
        by the refine head."""
        vq = self.vqvae
        with torch.no_grad():
            low = vq.vq_low.lookup(low_codes)
            raw = vq.decode(low, high_vec, frames=T, identity=identity, text=text, mask=mask,
                            return_parts=True)["raw"]
        fmask = check_mask(mask, motion.shape[0], T, motion.device)
        view, target = vq.loss_view(raw + self._refinement(low_hidden, raw, speech, branch)), motion.to(raw.dtype)
        recon, velocity = motion_losses(view, target, fmask, vq.channel_weight)
        loss = recon + vq.config.velocity_weight * velocity
        if self.config.gap_weight:
            loss = loss + self.config.gap_weight * lip_gap_loss(view, target, fmask,
                                                                closed_weight=self.config.closed_weight)
        return loss

    def _refinement(self, low_hidden: Tensor, raw: Tensor, speech: Tensor, branch: Tensor | None) -> Tensor:
        """Per-frame correction (B, T, motion_dim) of the decoded raw motion (B, T, motion_dim),
        from the low step's state (B, L, dim), the speech frames (B, >= T, speech_dim) and the
        speech branch's motion (B, >= T, motion_dim) or None."""
        T = raw.shape[1]
        h = self.refine_norm(low_hidden.to(raw.dtype)).repeat_interleave(self.vqvae.config.low_stride, dim=1)[:, :T]
        x = self.refine_speech(speech[:, :T].to(raw.dtype))
        if branch is None:
            return self.refine_head(torch.cat([raw, h, x], dim=-1))
        branch = branch[:, :T].to(raw.dtype)
        features = torch.cat([raw, h, x + self.refine_branch_in(branch)], dim=-1)
        gate = torch.sigmoid(self.refine_gate(features))
        return self.refine_head(features) + gate * (branch - raw)

    # -- inference -----------------------------------------------------------------------------

    def logits(self, speech_feats: Tensor, text_emb: Tensor | None = None, identity: Tensor | None = None, *,
               high_codes: Tensor | None = None, mask: Tensor | None = None) -> dict[str, Tensor | None]:
        """Batched logits {"high": (B, H, K_high) or None, "low": (B, L, K_low)}.

        The low head is conditioned on ``high_codes`` (B, H) if given, else on the argmax of the
        high logits. Uses the module's current mode (no dropout of identity/text).
        """
        speech, masks, conds, _ = self._prepare(speech_feats, mask, identity, text_emb, drop=False)
        trunk = self._trunk(speech, masks, conds)
        high_logits, high_vec = None, None
        if self.hierarchical:
            high_logits = self._high_logits(trunk, masks, conds)[0]
            chosen = high_logits.argmax(dim=-1) if high_codes is None else high_codes
            high_vec = self.vqvae.vq_high.lookup(chosen)
        return {"high": high_logits, "low": self._low_logits(trunk, high_vec, masks, conds)[0]}

    @torch.no_grad()
    def predict_codes(self, speech_feats, text_emb=None, identity=None, *, temperature: float = 0.0,
                      top_k: int | None = None, generator: torch.Generator | None = None,
                      mask: Tensor | None = None) -> dict[str, Tensor | None]:
        """Batched code prediction: {"low": (B, L), "high": (B, H) or None, "hidden": (B, L, dim) the
        low steps' state a refining predictor corrects the decoded motion from, or None}; see ``predict``."""
        draw = dict(temperature=temperature, top_k=top_k, generator=generator)
        with _eval_mode(self):
            speech, masks, conds, _ = self._prepare(speech_feats, mask, identity, text_emb, drop=False)
            trunk = self._trunk(speech, masks, conds)
            high = self._draw_high(trunk, masks, conds, **draw) if self.hierarchical else None
            low, hidden = self._draw_low(trunk, high, masks, conds, **draw)
            return {"low": low, "high": high, "hidden": hidden}

    # -- the three stages, for a streaming caller ------------------------------------------------
    # The engine runs them apart so that each trunk step and code is computed once, in a window
    # just wide enough for it, instead of everything in the reach of every new frame. Batched
    # inputs only: speech (B, T, speech_dim), text (B, T, text_dim), identity (B,).

    @torch.no_grad()
    def speech_trunk(self, speech: Tensor, text: Tensor, identity: Tensor) -> Tensor:
        """The shared speech trunk at the low rate, (B, ceil(T / align) * align / low_stride, dim)."""
        with _eval_mode(self):
            speech, masks, conds, _ = self._prepare(speech, None, identity, text, drop=False)
            return self._trunk(speech, masks, conds)

    @torch.no_grad()
    def speech_branch(self, speech: Tensor, text: Tensor, identity: Tensor) -> Tensor:
        """The refine head's speech branch: its motion (B, T, motion_dim), for ``decode``'s codes["branch"]."""
        if self.refine_branch is None:
            raise ValueError("this predictor's refine head has no speech branch")
        with _eval_mode(self):
            return self.refine_branch.run(speech.to(self.speech_in.weight), identity=identity, text=text)

    @torch.no_grad()
    def codes_of_hidden(self, level: str, hidden: Tensor, *, temperature: float = 0.0, top_k: int | None = None,
                        generator: torch.Generator | None = None) -> Tensor:
        """Codes (B, N) of ``level`` ("high" or "low") from the output (B, N, dim) of its layers,
        which a streaming caller runs itself (``model/staged_blocks.py``)."""
        with _eval_mode(self):
            if level == "high":
                scores = self._scores(self.high_head(hidden), self.vqvae.vq_high, self.high_scale)
            else:
                scores = self._low_scores(hidden)
            return sample_codes(scores[0], temperature=temperature, top_k=top_k, generator=generator)

    def _draw_high(self, trunk, masks, conds, **draw) -> Tensor:
        return sample_codes(self._high_logits(trunk, masks, conds)[0], **draw)

    def _draw_low(self, trunk, high_codes, masks, conds, **draw) -> tuple[Tensor, Tensor | None]:
        high_vec = None if high_codes is None else self.vqvae.vq_high.lookup(high_codes)
        h = self._low_hidden(trunk, high_vec, masks, conds)
        codes = sample_codes(self._low_scores(h)[0], **draw)
        return codes, None if self.refine_head is None else h

    @torch.no_grad()
    def predict(self, speech_feats, text_emb=None, identity=None, *, temperature: float = 0.0,
                top_k: int | None = None, generator: torch.Generator | None = None,
                mask: Tensor | None = None) -> Tensor:
        """Motion from speech: (T, motion_dim) for one sequence, (B, T, motion_dim) for a batch.

        speech_feats (T, speech_dim) or (B, T, speech_dim) at the motion frame rate; text_emb
        (text_dim,) / (T, text_dim) per sequence, or None for the null text; identity int (0 =
        unknown speaker) or (B,). temperature 0 takes the most likely codes (deterministic);
        above 0 codes are drawn from softmax(logits / temperature), limited to the ``top_k``
        most likely, with ``generator`` for reproducible draws. Runs in eval mode. Only
        temperature 0 gives windows that match one pass (draws depend on the window).
        """
        speech, text, identity, single = as_batch(speech_feats, text_emb, identity)
        codes = self.predict_codes(speech, text, identity, temperature=temperature, top_k=top_k,
                                   generator=generator, mask=mask)
        weights = self.decode(codes, speech, text, identity, mask=mask)
        return weights[0] if single else weights

    @torch.no_grad()
    def decode(self, codes: dict, speech: Tensor, text: Tensor | None = None, identity: Tensor | None = None, *,
               mask: Tensor | None = None) -> Tensor:
        """Motion (B, T, motion_dim) of ``predict_codes``' output for the speech (B, T, speech_dim) it
        came from: the VQ-VAE's decoding, corrected by the refine head when there is one. A caller
        that keeps the speech branch's motion (``speech_branch``) passes it as codes["branch"]."""
        vq, T = self.vqvae, speech.shape[1]
        if codes.get("hidden") is None:
            return vq.decode_codes(codes["low"], codes["high"], frames=T, identity=identity, text=text, mask=mask)
        with _eval_mode(self):
            low = vq.vq_low.lookup(codes["low"])
            high = None if codes["high"] is None else vq.vq_high.lookup(codes["high"])
            raw = vq.decode(low, high, frames=T, identity=identity, text=text, mask=mask, return_parts=True)["raw"]
            real = check_mask(mask, speech.shape[0], T, speech.device)[..., None].to(raw.dtype)
            branch = codes.get("branch")
            if branch is None:
                branch = self._branch(speech.to(raw.dtype), mask, identity, text)
            return vq.activate(raw + self._refinement(codes["hidden"], raw, speech.to(raw.dtype), branch) * real)

    # -- internals -----------------------------------------------------------------------------

    def _prepare(self, speech, mask, identity, text, *, drop: bool):
        speech = check_series(speech, "speech features", self.config.speech_dim).to(self.speech_in.weight)
        B, T, _ = speech.shape
        masks, conds = self._conditions(text, identity, mask=mask, batch=B, frames=T, device=speech.device,
                                        drop=drop)
        return pad_time(speech, ceil_to(T, self.align)) * masks["frame"][..., None], masks, conds, T

    def _conditions(self, text, identity, *, mask=None, batch=None, frames=None, device=None, drop=False):
        """Masks and pooled conditions of ``frames`` frames (default: ``text``'s batch and length)."""
        B = text.shape[0] if batch is None else batch
        T = text.shape[1] if frames is None else frames
        device = text.device if device is None else device
        Tp = ceil_to(T, self.align)
        masks = self.vqvae.code_masks(check_mask(mask, B, T, device), Tp)
        cond = self.conditioner(identity, text, batch=B, frames=T, drop=drop)
        cond = pad_time(cond, Tp) * masks["frame"][..., None]
        v = self.vqvae.config
        conds = {"low": pool_time(cond, masks["frame"], v.low_stride)}
        if self.hierarchical:
            conds["high"] = pool_time(cond, masks["frame"], v.high_stride)
            if v.causal:  # a high code is drawn from the step before the one it is held over
                conds["high"] = shift_steps(conds["high"])
        return masks, conds

    def _trunk(self, speech: Tensor, masks, conds) -> Tensor:
        fm, lm = masks["frame"], masks["low"]
        h = self.speech_in(speech) * fm[..., None]
        for block in self.frame_blocks:
            h = block(h, fm)
        h = self.down(h, lm)
        for block in self.trunk:
            h = block(h, lm, conds["low"])
        return h

    def _high_logits(self, trunk: Tensor, masks, conds) -> Tensor:
        v = self.vqvae.config
        hm = masks["high"]
        h = pool_time(trunk, masks["low"], v.high_stride // v.low_stride)
        if v.causal:
            h = shift_steps(h)
        for conv, attn in self.high:
            h = attn(conv(h, hm, conds["high"]), hm, conds["high"])
        return self._scores(self.high_head(h), self.vqvae.vq_high, self.high_scale)

    def _low_logits(self, trunk: Tensor, high_vec: Tensor | None, masks, conds) -> tuple[Tensor, Tensor | None]:
        return self._low_scores(self._low_hidden(trunk, high_vec, masks, conds))

    def _low_scores(self, low_hidden: Tensor) -> tuple[Tensor, Tensor | None]:
        return self._scores(self.low_head(low_hidden), self.vqvae.vq_low, self.low_scale)

    def _low_hidden(self, trunk: Tensor, high_vec: Tensor | None, masks, conds) -> Tensor:
        v = self.vqvae.config
        lm = masks["low"]
        h = trunk
        if high_vec is not None:
            factor = v.high_stride // v.low_stride
            up = upsample_held(self.code_in(high_vec), factor) if v.causal else \
                upsample_linear(self.code_in(high_vec), factor, masks["high"].sum(dim=1))
            h = h + up * lm[..., None]
        for conv, attn in self.low:
            h = attn(conv(h, lm, conds["low"]), lm, conds["low"])
        return h

    def _scores(self, out: Tensor, quantizer, scale) -> tuple[Tensor, Tensor | None]:
        """(logits, code-space vector or None). Head "latent": logits = -scale * squared distance to each code.

        Why a distance: codes that decode alike lie close in the code space, so a near miss
        costs little in the cross-entropy, and the squared-error loss pulls an uncertain
        prediction towards the codes it hesitates between instead of towards an arbitrary
        index; the argmax is the nearest code (CodeTalker picks codes this way too).
        """
        if scale is None:
            return out, None
        book = quantizer.codebook.to(out.dtype)
        d2 = (out * out).sum(-1, keepdim=True) - 2 * out @ book.t() + (book * book).sum(-1)
        return -d2 * scale.exp(), out


def _speech_branch(c: PredictorConfig, v) -> nn.Module:
    """The refine head's speech branch: the regression baseline's network (conv blocks with
    kernel 3 and causal windowed attention), trained with that baseline's own losses; the head
    reads its motion.

    Why that network: on the 2-hour corpus it is what generalises to unseen voices (test LVE
    5.82 mm² against 12.47 for the codes with the per-frame head alone), and its reach (11 frames ahead with 4 layers)
    stays within the decoder's, so the model's lookahead does not grow. The codes keep what a
    regression loses (closures, expression); the gate learns which to take where.
    """
    from .baselines import RegressionBaseline
    from .config import RegressionConfig

    return RegressionBaseline(RegressionConfig(
        speech_dim=c.speech_dim, motion_dim=v.motion_dim, output_activation=v.output_activation,
        stride=v.low_stride, frame_dim=c.frame_dim, dim=c.refine_branch_dim, heads=c.heads,
        kernel=1 if v.causal else 3,  # causal: time is mixed by the (causal) attention alone
        layers=c.refine_branch_layers, attn_left=32 // v.low_stride, attn_right=0,  # ~1.1 s of past mlp_ratio=c.mlp_ratio, dropout=c.dropout,
        num_speakers=c.num_speakers, identity_dim=c.identity_dim, text_dim=c.text_dim, cond_dim=c.cond_dim,
        identity_dropout=c.identity_dropout, text_dropout=c.text_dropout, lip_weight=v.lip_weight,
        velocity_weight=v.velocity_weight, gap_weight=c.gap_weight, closed_weight=c.closed_weight))


@contextlib.contextmanager
def _eval_mode(model: nn.Module):
    """Eval mode for the block, only switched when needed (eval() walks every module: per
    streamed piece that cost showed in profiles)."""
    was_training = model.training
    if was_training:
        model.eval()
    try:
        yield
    finally:
        if was_training:
            model.train()


def _straight_through(logits: Tensor) -> Tensor:
    """One-hot of the argmax in the forward pass, gradient of the softmax in the backward pass."""
    soft = logits.softmax(dim=-1)
    hard = F.one_hot(soft.argmax(dim=-1), soft.shape[-1]).to(soft.dtype)
    return hard + soft - soft.detach()
