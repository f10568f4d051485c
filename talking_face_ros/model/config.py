"""Hyper-parameters of the three networks, as plain dataclasses that round-trip through JSON.

A checkpoint stores its config as JSON next to the weights (see ``checkpoint.py``), so every
field is a plain int/float/str/bool. ``from_dict`` rejects unknown keys (a typo in a config
file must not silently fall back to a default) and fills missing ones with defaults (older
checkpoints stay loadable when a field is added). Every config validates itself on creation.

Default sizes: VQ-VAE 2.6 M parameters, code predictor 3.7 M more; both stages together are
25.5 MB of fp32 safetensors (12.7 MB fp16). Strides are in frames; the rates in the comments
assume 30 fps motion.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Type, TypeVar

from ..arkit import NUM_BLENDSHAPES
from ..emotions import EMOTIONS

C = TypeVar("C")

OUTPUT_ACTIVATIONS = ("clamp", "sigmoid", "none")


@dataclass
class VQVAEConfig:
    """The hierarchical motion VQ-VAE (``motion_vqvae.HierarchicalMotionVQVAE``)."""

    motion_dim: int = NUM_BLENDSHAPES  # channels per frame: 52 ARKit weights (or 3 * rig vertices)
    output_activation: str = "clamp"  # "clamp" to [0, 1] (ARKit), "sigmoid", "none" (vertex offsets)
    levels: int = 2  # 2: high + low codes; 1: single-level VQ baseline (CodeTalker-like)
    internal_condition: bool = True  # the low decoder sees the high context (False: ablation)
    low_stride: int = 2  # frames per low code (30 fps -> 15 Hz)
    high_stride: int = 8  # frames per high code (30 fps -> 3.75 Hz); a multiple of low_stride
    frame_dim: int = 128  # channels of the layers at the frame rate
    dim: int = 256  # channels of the layers at the low and high rates
    code_dim: int = 64  # size of one codebook vector (both levels)
    low_codebook_size: int = 256  # codes of the low (fine) level
    high_codebook_size: int = 128  # codes of the high (coarse) level
    kernel: int = 5  # temporal kernel of the frame- and low-rate conv blocks (odd)
    high_kernel: int = 3  # temporal kernel of the high-rate conv blocks (odd)
    frame_blocks: int = 1  # conv blocks at the frame rate, in the encoder and in the decoder
    low_blocks: int = 2  # conv blocks at the low rate, in the encoder and in the decoder
    high_blocks: int = 2  # conv blocks at the high rate in the encoder
    high_decoder_blocks: int = 1  # ... in the decoder (each adds high_stride frames of lookahead)
    mlp_ratio: int = 2  # hidden width of a block's pointwise MLP, in multiples of its channels
    dropout: float = 0.0  # dropout inside the blocks
    num_speakers: int = 0  # training speakers; identity 0 = unknown, 1..num_speakers = speakers
    identity_dim: int = 32  # size of a row of the identity table
    text_dim: int = 384  # size of the precomputed text embedding (MiniLM 384, CLIP 512)
    cond_dim: int = 128  # size of the per-frame condition (identity + text) that drives FiLM
    identity_dropout: float = 0.1  # training: share of sequences whose identity becomes 0
    text_dropout: float = 0.1  # training: share of sequences whose text becomes the null text
    codebook_decay: float = 0.99  # EMA decay of the codebook statistics
    commitment: float = 0.25  # weight of the commitment loss (encoder -> its code)
    dead_code_threshold: float = 1.0  # a code whose EMA usage (vectors/batch) falls below is restarted
    lip_weight: float = 2.0  # weight of the jaw/mouth channels in the reconstruction loss (52-d only)
    velocity_weight: float = 0.5  # weight of the L1 loss on frame-to-frame differences
    coarse_weight: float = 0.5  # weight of the high level's own reconstruction of the pooled motion
    num_emotions: int = len(EMOTIONS)  # classes of the emotion head on the high codes (0: no head)
    emotion_weight: float = 0.1  # weight of that emotion classification loss
    text_align_weight: float = 0.1  # weight of the high codes -> text embedding cosine loss
    gap_weight: float = 0.0  # weight of the L1 loss on the lip gap in cm (layers.lip_gap_loss; 52-d only)
    closed_weight: float = 4.0  # extra weight of that loss on frames whose target lips are closed
    # Low latency: every conv block reads only earlier steps, and the high code of a step is made
    # from the step before it and held over its frames (no interpolation towards the next one).
    # The code predictor follows; a frame then waits only for the speech of its own low step.
    causal: bool = False

    def __post_init__(self):
        if not isinstance(self.causal, bool):
            raise ValueError(f"VQVAEConfig.causal must be true or false, got {self.causal!r}")
        _check_positive(self, "motion_dim", "low_stride", "high_stride", "frame_dim", "dim",
                        "code_dim", "low_codebook_size", "high_codebook_size", "kernel",
                        "high_kernel", "mlp_ratio", "identity_dim", "text_dim", "cond_dim")
        _check_nonnegative(self, "frame_blocks", "low_blocks", "high_blocks", "high_decoder_blocks",
                           "num_speakers", "num_emotions", "dead_code_threshold", "commitment",
                           "lip_weight", "velocity_weight", "coarse_weight", "emotion_weight",
                           "text_align_weight", "gap_weight", "closed_weight")
        _check_probability(self, "dropout", "identity_dropout", "text_dropout")
        _check_odd(self, "kernel", "high_kernel")
        if self.output_activation not in OUTPUT_ACTIVATIONS:
            raise ValueError(f"VQVAEConfig.output_activation must be one of {OUTPUT_ACTIVATIONS}, "
                             f"got {self.output_activation!r}")
        if self.levels not in (1, 2):
            raise ValueError(f"VQVAEConfig.levels must be 1 or 2, got {self.levels!r}")
        if self.high_stride % self.low_stride or self.high_stride <= self.low_stride:
            raise ValueError(f"VQVAEConfig.high_stride ({self.high_stride}) must be a multiple of "
                             f"low_stride ({self.low_stride}) and larger")
        if not 0.0 < self.codebook_decay < 1.0:
            raise ValueError(f"VQVAEConfig.codebook_decay must be in (0, 1), got {self.codebook_decay}")

    @property
    def align(self) -> int:
        """Frames per coarsest code: inputs are padded to, and windows start at, multiples of it."""
        return self.high_stride if self.levels == 2 else self.low_stride

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "VQVAEConfig":
        return _from_dict(cls, data)


@dataclass
class PredictorConfig:
    """The non-autoregressive code predictor (``predictor.CodePredictor``); rates come from its VQ-VAE."""

    speech_dim: int = 416  # size of a speech feature frame (Moonshine base 416, wav2vec2 768)
    frame_dim: int = 128  # channels at the frame rate
    dim: int = 256  # channels at the low and high rates
    heads: int = 4  # attention heads (dim must be divisible by it)
    kernel: int = 5  # temporal kernel of the frame- and low-rate conv blocks (odd)
    high_kernel: int = 1  # temporal kernel of the high-rate blocks (1: attention alone mixes time)
    frame_blocks: int = 1  # conv blocks on the speech features at the frame rate
    trunk_blocks: int = 2  # conv blocks of the shared speech trunk at the low rate
    high_layers: int = 2  # conv + windowed-attention layers of the high-code head
    low_layers: int = 2  # conv + windowed-attention layers of the low-code head
    high_attn_left: int = 8  # high steps of the past a high step attends to (8 x 8 frames = 2.1 s)
    high_attn_right: int = 1  # ... of the future (lookahead: 1 x 8 frames per layer)
    low_attn_left: int = 16  # low steps of the past a low step attends to (16 x 2 frames = 1.1 s)
    low_attn_right: int = 2  # ... of the future (2 x 2 frames per layer)
    mlp_ratio: int = 2  # hidden width of a block's pointwise MLP, in multiples of its channels
    dropout: float = 0.1  # dropout inside the blocks and attention
    num_speakers: int = 0  # must equal the VQ-VAE's (same identity numbering)
    identity_dim: int = 32  # size of a row of the identity table
    text_dim: int = 384  # must equal the VQ-VAE's
    cond_dim: int = 128  # size of the per-frame condition
    identity_dropout: float = 0.1  # training: share of sequences whose identity becomes 0
    text_dropout: float = 0.1  # training: share of sequences whose text becomes the null text
    teacher_forcing: float = 0.5  # training: share of sequences whose low head sees the true high codes
    code_noise: float = 0.1  # training: share of the high codes fed to the low head replaced at random
    label_smoothing: float = 0.1  # of both cross-entropies
    time_mask: float = 0.0  # training: share of speech feature frames zeroed (SpecAugment-like, against memorising)
    high_loss_weight: float = 1.0  # weight of the high-code cross-entropy (low has weight 1)
    head: str = "logits"  # "logits": one output per code; "latent": a code-space vector scored by distance to each code
    latent_loss_weight: float = 1.0  # head "latent": weight of the squared error to the target code vector
    motion_loss_weight: float = 0.0  # weight of an L1 loss on motion decoded from the predicted codes
    gap_weight: float = 0.0  # with the motion or refine loss: weight of the lip-gap L1 on that motion (cm)
    closed_weight: float = 4.0  # extra weight of the lip-gap loss where the target's lips are closed
    refine_weight: float = 0.0  # > 0: a per-frame refine head corrects the decoded motion, trained with this weight
    refine_branch_layers: int = 0  # > 0: a speech branch (the regression baseline's network) feeds the refine head; trained in stage 3
    refine_branch_dim: int = 256  # channels of that branch's inner layers
    refine_temperature: float = 0.0  # stage 3: codes drawn at this temperature (0: argmax) for the head to correct

    def __post_init__(self):
        _check_positive(self, "speech_dim", "frame_dim", "dim", "heads", "kernel", "high_kernel",
                        "mlp_ratio", "identity_dim", "text_dim", "cond_dim", "high_attn_left",
                        "low_attn_left")
        _check_nonnegative(self, "frame_blocks", "trunk_blocks", "high_layers", "low_layers",
                           "high_attn_right", "low_attn_right", "num_speakers",
                           "high_loss_weight", "motion_loss_weight", "gap_weight", "closed_weight",
                           "latent_loss_weight", "refine_weight", "refine_branch_layers", "refine_temperature")
        _check_positive(self, "refine_branch_dim")
        _check_probability(self, "dropout", "identity_dropout", "text_dropout", "code_noise",
                           "label_smoothing", "time_mask")
        if self.head not in ("logits", "latent"):
            raise ValueError(f"PredictorConfig.head must be 'logits' or 'latent', got {self.head!r}")
        if not 0.0 <= self.teacher_forcing <= 1.0:
            raise ValueError(f"PredictorConfig.teacher_forcing must be in [0, 1], got {self.teacher_forcing!r}")
        _check_odd(self, "kernel", "high_kernel")
        if self.dim % self.heads:
            raise ValueError(f"PredictorConfig.dim ({self.dim}) must be divisible by heads ({self.heads})")
        if self.refine_branch_layers and not self.refine_weight:
            raise ValueError("PredictorConfig.refine_branch_layers needs a refine head (refine_weight > 0): "
                             "the branch feeds it")
        if self.refine_branch_dim % self.heads:
            raise ValueError(f"PredictorConfig.refine_branch_dim ({self.refine_branch_dim}) must be divisible "
                             f"by heads ({self.heads})")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "PredictorConfig":
        return _from_dict(cls, data)


@dataclass
class RegressionConfig:
    """The direct-regression baseline without codes (``baselines.RegressionBaseline``)."""

    speech_dim: int = 416  # size of a speech feature frame
    motion_dim: int = NUM_BLENDSHAPES  # output channels per frame
    output_activation: str = "clamp"  # as in VQVAEConfig
    stride: int = 2  # frames per step of the inner layers (30 fps -> 15 Hz)
    frame_dim: int = 128  # channels at the frame rate
    dim: int = 256  # channels of the inner layers
    heads: int = 4  # attention heads
    kernel: int = 5  # temporal kernel of the conv blocks (odd)
    frame_blocks: int = 1  # conv blocks at the frame rate, before and after the inner layers
    layers: int = 4  # conv + windowed-attention layers at the inner rate
    attn_left: int = 16  # inner steps of the past a step attends to
    attn_right: int = 2  # ... of the future
    mlp_ratio: int = 2
    dropout: float = 0.1
    num_speakers: int = 0  # identity 0 = unknown
    identity_dim: int = 32
    text_dim: int = 384
    cond_dim: int = 128
    identity_dropout: float = 0.1
    text_dropout: float = 0.1
    lip_weight: float = 2.0  # as in VQVAEConfig
    velocity_weight: float = 0.5
    gap_weight: float = 0.0  # as in VQVAEConfig
    closed_weight: float = 4.0  # as in VQVAEConfig

    def __post_init__(self):
        _check_positive(self, "speech_dim", "motion_dim", "stride", "frame_dim", "dim", "heads",
                        "kernel", "mlp_ratio", "identity_dim", "text_dim", "cond_dim", "attn_left")
        _check_nonnegative(self, "frame_blocks", "layers", "attn_right", "num_speakers",
                           "lip_weight", "velocity_weight", "gap_weight", "closed_weight")
        _check_probability(self, "dropout", "identity_dropout", "text_dropout")
        _check_odd(self, "kernel")
        if self.output_activation not in OUTPUT_ACTIVATIONS:
            raise ValueError(f"RegressionConfig.output_activation must be one of {OUTPUT_ACTIVATIONS}, "
                             f"got {self.output_activation!r}")
        if self.dim % self.heads:
            raise ValueError(f"RegressionConfig.dim ({self.dim}) must be divisible by heads ({self.heads})")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "RegressionConfig":
        return _from_dict(cls, data)


def _from_dict(cls: Type[C], data: dict) -> C:
    if not isinstance(data, dict):
        raise ValueError(f"{cls.__name__}: expected a JSON object, got {type(data).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ValueError(f"{cls.__name__}: unknown field(s) {', '.join(unknown)}")
    for name, value in data.items():
        expected = type(fields[name].default)
        ok = isinstance(value, expected) and not (expected is not bool and isinstance(value, bool))
        if expected is float and isinstance(value, int) and not isinstance(value, bool):
            ok = True  # JSON writes 1.0 as 1 in some tools
        if not ok:
            raise ValueError(f"{cls.__name__}.{name}: expected {expected.__name__}, got {value!r}")
    return cls(**{k: (float(v) if type(fields[k].default) is float else v) for k, v in data.items()})


def _check_positive(cfg, *names):
    for n in names:
        if getattr(cfg, n) <= 0:
            raise ValueError(f"{type(cfg).__name__}.{n} must be > 0, got {getattr(cfg, n)!r}")


def _check_nonnegative(cfg, *names):
    for n in names:
        if getattr(cfg, n) < 0:
            raise ValueError(f"{type(cfg).__name__}.{n} must be >= 0, got {getattr(cfg, n)!r}")


def _check_probability(cfg, *names):
    for n in names:
        if not 0.0 <= getattr(cfg, n) < 1.0:
            raise ValueError(f"{type(cfg).__name__}.{n} must be in [0, 1), got {getattr(cfg, n)!r}")


def _check_odd(cfg, *names):
    for n in names:
        if getattr(cfg, n) % 2 != 1:
            raise ValueError(f"{type(cfg).__name__}.{n} must be odd (a centred kernel), "
                             f"got {getattr(cfg, n)!r}")
