"""Peer speech-to-face architectures rebuilt from their published designs, for cost benchmarks only.

These are benchmark fixtures, not product: random weights (compute does not depend on the
weights), no training code, nothing the package imports. Each keeps what sets the peer's cost,
taken from its paper and public repository descriptions (facts, not code):

* ``LAMStyle`` (LAM_Audio2Expression, streaming configuration): wav2vec2-base (12 layers, 768
  wide) whose convolutional features are resampled to 30 fps before the transformer (LAM's
  encoder takes the frame count as FaceFormer's does, assumed to resample at the same place; at
  50 Hz its transformer would cost ~1.7x more, so the assumption favours LAM), a 768->512
  projection, a 12-way one-hot identity embedded to 64 and concatenated, three residual
  conv(k=3)+LayerNorm+ReLU blocks, three more plain ones, 512->52 and a sigmoid. Streaming: every
  1 s chunk re-encodes the last 64 frames (2.13 s) of audio, zero-padded at the start, and keeps
  the chunk's 30 frames.
* ``FaceFormerStyle`` (FaceFormer, VOCASET setting): the same rate-matched wav2vec2-base, a
  768->64 audio map, a one-layer transformer decoder (64 wide, 4 heads, feed-forward 128) with
  periodic positional encoding (period 30), causal self-attention with a periodic linear bias per
  head, and cross-attention where frame i sees audio frame i only. Inference is autoregressive:
  each new frame re-runs the decoder over the whole prefix (the published code keeps no key/value
  cache); the first input is the speaker style embedding (8 subjects), each output is mapped back
  to 64 and added to the style. The output here is the 52 ARKit weights, not VOCASET's 5,023
  vertices x 3: the vertex head (64 <-> 15,069) would only add cost, so 52 is a lower bound of
  FaceFormer's cost. Its published mask covers 600 frames (20 s); here it is built to any length.
* ``EmoTalkStyle`` (EmoTalk): two wav2vec2-large encoders (24 layers, 1024 wide, 16 heads,
  feed-forward 4096, layer-norm-first as in wav2vec2-large-xlsr-53), content and emotion, both
  rate-matched to 30 fps; the emotion one also feeds a mean-pooled classifier head (1024->1024,
  tanh, -> 7 emotions). Content 1024->512, emotion 1024->832 and 832->256 with ReLU, emotion
  level (2) and person (24) one-hots embedded to 32 each, concatenated to 832; one transformer
  decoder layer (832 wide, 4 heads, feed-forward 832) with the biased causal self-attention and
  the diagonal cross-attention over the 832-d emotion features; 832->52. Offline over the whole
  clip in one pass (not autoregressive).

EmoTalk attends over the whole clip and has no streaming mode. ``WindowedStream`` runs it (and
LAM, whose published streaming mode this is) the LAM way: one 2.13 s window re-encoded per chunk.
That is an emulation for EmoTalk, so the benchmark reports its offline cost too.
"""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

SAMPLE_RATE = 16000
FPS = 30.0
NUM_WEIGHTS = 52  # ARKit blendshapes
LAM_WINDOW_FRAMES = 64  # LAM's streaming window: 64 frames at 30 fps = 2.13 s of audio

# Wav2Vec2Config keyword sets. An empty dict is wav2vec2-base (the config's defaults).
WAV2VEC2_BASE: dict = {}
WAV2VEC2_LARGE = dict(hidden_size=1024, num_hidden_layers=24, num_attention_heads=16, intermediate_size=4096,
                      feat_extract_norm="layer", conv_bias=True, do_stable_layer_norm=True)
WAV2VEC2_TINY = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
                     conv_dim=(32,) * 7, num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=4)


def wav2vec2(sizes: dict) -> nn.Module:
    """A randomly initialised transformers Wav2Vec2Model with ``sizes`` over the base defaults."""
    from transformers import Wav2Vec2Config, Wav2Vec2Model

    return Wav2Vec2Model(Wav2Vec2Config(**sizes)).eval()


def frames_for(samples: int) -> int:
    """Motion frames (30 fps) that cover ``samples`` of 16 kHz audio, as the peers count them."""
    return max(1, math.ceil(samples * FPS / SAMPLE_RATE - 1e-9))


def encode_at_fps(encoder: nn.Module, audio: torch.Tensor, frames: int) -> torch.Tensor:
    """(1, frames, hidden): wav2vec2 with its 50 Hz conv features resampled to ``frames`` first.

    FaceFormer, EmoTalk and LAM all run the transformer on features already at the motion rate,
    which makes it 40 % cheaper than at 50 Hz; the audio is normalised to zero mean, unit variance
    as their feature extractors do.
    """
    audio = (audio - audio.mean()) / torch.sqrt(audio.var() + 1e-7)
    conv = encoder.feature_extractor(audio)  # (1, channels, T at 50 Hz)
    conv = F.interpolate(conv, size=frames, mode="linear", align_corners=True)
    hidden, _ = encoder.feature_projection(conv.transpose(1, 2))
    return encoder.encoder(hidden).last_hidden_state


def periodic_bias(heads: int, length: int, period: int) -> torch.Tensor:
    """(heads, length, length) additive self-attention mask: causal, with a per-head linear
    penalty that grows by one step every ``period`` frames back (the biased causal attention of
    FaceFormer and EmoTalk; slopes as in ALiBi, 2^(-8(h+1)/heads))."""
    slopes = torch.tensor([2.0 ** (-8.0 * (h + 1) / heads) for h in range(heads)])
    back = torch.arange(length)[:, None] - torch.arange(length)[None, :]  # i - j
    bias = -slopes[:, None, None] * torch.div(back.clamp(min=0), period, rounding_mode="floor").float()
    return bias.masked_fill((back < 0)[None], float("-inf"))


def diagonal_memory_mask(targets: int, sources: int) -> torch.Tensor:
    """(targets, sources) boolean cross-attention mask, True = blocked: frame i sees audio frame i."""
    mask = torch.ones(targets, sources, dtype=torch.bool)
    n = min(targets, sources)
    mask[torch.arange(n), torch.arange(n)] = False
    return mask


class PeriodicPositionalEncoding(nn.Module):
    """Sinusoidal positions that repeat every ``period`` frames (FaceFormer's PPE)."""

    def __init__(self, dim: int, period: int):
        super().__init__()
        pos = torch.arange(period, dtype=torch.float32)[:, None]
        freq = torch.exp(torch.arange(0, dim, 2, dtype=torch.float32) * (-math.log(10000.0) / dim))
        table = torch.zeros(period, dim)
        table[:, 0::2] = torch.sin(pos * freq)
        table[:, 1::2] = torch.cos(pos * freq)
        self.register_buffer("table", table, persistent=False)
        self.period = period

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        idx = torch.arange(x.shape[1], device=x.device) % self.period
        return x + self.table[idx][None]


def decoder_layer(dim: int, heads: int, ff: int) -> nn.TransformerDecoder:
    layer = nn.TransformerDecoderLayer(d_model=dim, nhead=heads, dim_feedforward=ff, dropout=0.0,
                                       batch_first=True)
    return nn.TransformerDecoder(layer, num_layers=1)


def parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


# --------------------------------------------------------------------------------------------- LAM


class ConvNormReLU(nn.Module):
    """conv1d (kernel 3, same length) -> LayerNorm over channels -> (+ skip) -> ReLU."""

    def __init__(self, cin: int, cout: int, *, residual: bool):
        super().__init__()
        self.conv = nn.Conv1d(cin, cout, 3, padding=1)
        self.norm = nn.LayerNorm(cout)
        self.skip = (nn.Identity() if cin == cout else nn.Conv1d(cin, cout, 3, padding=1)) if residual else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C, T)
        y = self.norm(self.conv(x).transpose(1, 2)).transpose(1, 2)
        if self.skip is not None:
            y = y + self.skip(x)
        return F.relu(y)


class LAMStyle(nn.Module):
    """LAM_Audio2Expression's streaming network: rate-matched wav2vec2-base + conv head -> 52 weights."""

    def __init__(self, *, encoder_sizes: dict = WAV2VEC2_BASE, hidden: int = 512, identities: int = 12,
                 identity_dim: int = 64):
        super().__init__()
        self.encoder = wav2vec2(encoder_sizes)
        width = self.encoder.config.hidden_size
        self.project = nn.Linear(width, hidden)
        self.identity = nn.Linear(identities, identity_dim)  # the published 1x1 conv over a one-hot
        self.body = nn.Sequential(ConvNormReLU(hidden + identity_dim, hidden, residual=True),
                                  *[ConvNormReLU(hidden, hidden, residual=True) for _ in range(2)])
        self.decoder = nn.Sequential(*[ConvNormReLU(hidden, hidden, residual=False) for _ in range(3)])
        self.out = nn.Linear(hidden, NUM_WEIGHTS)
        self.identities = identities
        self.eval()

    @torch.inference_mode()
    def forward(self, audio: torch.Tensor, frames: int, identity: int = 0) -> torch.Tensor:
        """(frames, 52) weights for ``audio`` (1, samples)."""
        x = self.project(encode_at_fps(self.encoder, audio, frames))  # (1, T, hidden)
        who = F.one_hot(torch.tensor([identity], device=audio.device), self.identities).float()
        who = self.identity(who)[:, None, :].expand(-1, x.shape[1], -1)
        x = torch.cat([x, who], dim=2).transpose(1, 2)
        x = self.decoder(self.body(x)).transpose(1, 2)
        return torch.sigmoid(self.out(x))[0]

    def animate(self, audio: torch.Tensor) -> torch.Tensor:
        return self(audio, frames_for(audio.shape[1]))


# ------------------------------------------------------------------------------------- FaceFormer


class FaceFormerStyle(nn.Module):
    """FaceFormer: rate-matched wav2vec2-base + a one-layer decoder run autoregressively."""

    def __init__(self, *, encoder_sizes: dict = WAV2VEC2_BASE, dim: int = 64, heads: int = 4, period: int = 30,
                 subjects: int = 8):
        super().__init__()
        self.encoder = wav2vec2(encoder_sizes)
        self.audio_map = nn.Linear(self.encoder.config.hidden_size, dim)
        self.style = nn.Linear(subjects, dim, bias=False)
        self.motion_in = nn.Linear(NUM_WEIGHTS, dim)
        self.motion_out = nn.Linear(dim, NUM_WEIGHTS)
        self.positions = PeriodicPositionalEncoding(dim, period)
        self.decoder = decoder_layer(dim, heads, 2 * dim)
        self.heads, self.period, self.subjects = heads, period, subjects
        self._bias = periodic_bias(heads, 0, period)
        self.eval()

    @torch.inference_mode()
    def audio_features(self, audio: torch.Tensor, frames: int) -> torch.Tensor:
        """(1, frames, dim) decoder memory for ``audio`` (1, samples)."""
        return self.audio_map(encode_at_fps(self.encoder, audio, frames))

    def start(self, device, subject: int = 0) -> torch.Tensor:
        """The prefix before frame 0: the speaker's style embedding, (1, 1, dim)."""
        with torch.inference_mode():
            return self.style(F.one_hot(torch.tensor([subject], device=device), self.subjects).float())[:, None]

    def _mask(self, n: int, device) -> torch.Tensor:
        if self._bias.shape[-1] < n:  # grown in steps, not per frame
            self._bias = periodic_bias(self.heads, max(n, 2 * self._bias.shape[-1], 64), self.period).to(device)
        return self._bias[:, :n, :n]

    @torch.inference_mode()
    def decode(self, prefix: torch.Tensor, memory: torch.Tensor, frames: int) -> tuple[torch.Tensor, torch.Tensor]:
        """``frames`` more frames, one decoder pass over the whole prefix each.

        ``prefix`` (1, n, dim): style + embeddings of every frame so far; ``memory`` (1, m, dim)
        with m >= n - 1 + frames. Returns (new prefix, (frames, 52) weights).
        """
        style = prefix[:, :1]
        out = []
        for _ in range(frames):
            n = prefix.shape[1]
            y = self.decoder(self.positions(prefix), memory, tgt_mask=self._mask(n, prefix.device),
                             memory_mask=diagonal_memory_mask(n, memory.shape[1]).to(prefix.device))
            weights = self.motion_out(y[:, -1])  # (1, 52)
            out.append(weights)
            prefix = torch.cat([prefix, (self.motion_in(weights) + style[:, 0])[:, None]], dim=1)
        return prefix, torch.cat(out)

    def animate(self, audio: torch.Tensor) -> torch.Tensor:
        frames = frames_for(audio.shape[1])
        memory = self.audio_features(audio, frames)
        return self.decode(self.start(audio.device), memory, frames)[1]


# ---------------------------------------------------------------------------------------- EmoTalk


class EmoTalkStyle(nn.Module):
    """EmoTalk: content and emotion wav2vec2-large encoders + one biased decoder layer, offline."""

    def __init__(self, *, encoder_sizes: dict = WAV2VEC2_LARGE, content: int = 512, emotion: int = 832,
                 emotion_small: int = 256, extra: int = 32, heads: int = 4, period: int = 30, emotions: int = 7,
                 levels: int = 2, persons: int = 24):
        super().__init__()
        self.content_encoder = wav2vec2(encoder_sizes)
        self.emotion_encoder = wav2vec2(encoder_sizes)
        width = self.content_encoder.config.hidden_size
        self.classifier = nn.Sequential(nn.Linear(width, width), nn.Tanh(), nn.Linear(width, emotions))
        self.content_map = nn.Linear(width, content)
        self.emotion_map = nn.Linear(width, emotion)
        self.emotion_small = nn.Linear(emotion, emotion_small)
        self.level = nn.Linear(levels, extra)
        self.person = nn.Linear(persons, extra)
        dim = content + emotion_small + 2 * extra
        if dim != emotion:
            raise ValueError(f"EmoTalk's decoder width ({dim}) must equal the emotion feature size ({emotion})")
        self.decoder = decoder_layer(dim, heads, dim)
        self.out = nn.Linear(dim, NUM_WEIGHTS)
        self.heads, self.period, self.levels, self.persons = heads, period, levels, persons
        self.eval()

    @torch.inference_mode()
    def forward(self, audio: torch.Tensor, frames: int, level: int = 1, person: int = 0) -> torch.Tensor:
        """(frames, 52) weights for ``audio`` (1, samples)."""
        device = audio.device
        content = self.content_map(encode_at_fps(self.content_encoder, audio, frames))
        emo_hidden = encode_at_fps(self.emotion_encoder, audio, frames)
        self.classifier(emo_hidden.mean(dim=1))  # the emotion label head runs in the published model too
        emotion = self.emotion_map(emo_hidden)
        small = F.relu(self.emotion_small(emotion))
        lvl = self.level(F.one_hot(torch.tensor([level], device=device), self.levels).float())
        who = self.person(F.one_hot(torch.tensor([person], device=device), self.persons).float())
        x = torch.cat([content, small, lvl[:, None].expand(-1, frames, -1), who[:, None].expand(-1, frames, -1)], 2)
        y = self.decoder(x, emotion, tgt_mask=periodic_bias(self.heads, frames, self.period).to(device),
                         memory_mask=diagonal_memory_mask(frames, frames).to(device))
        return self.out(y)[0]

    def animate(self, audio: torch.Tensor) -> torch.Tensor:
        return self(audio, frames_for(audio.shape[1]))


# -------------------------------------------------------------------------------------- streaming


class WindowedStream:
    """LAM's streaming rule for a whole-window network (LAMStyle, EmoTalkStyle): each pushed chunk
    re-encodes the newest ``window_frames`` frames of audio (zeros before the stream start) and
    keeps the chunk's own last frames."""

    def __init__(self, model: nn.Module, *, window_frames: int = LAM_WINDOW_FRAMES, device: str = "cpu"):
        self.model, self.device = model, device
        self.window_frames = window_frames
        self.window = int(SAMPLE_RATE * window_frames // FPS)  # 34,133 samples for 64 frames
        self.reset()

    def reset(self) -> None:
        self.history = np.zeros(self.window, np.float32)

    def push(self, chunk: np.ndarray) -> np.ndarray:
        """(n, 52) weights of the chunk's frames, n = frames_for(len(chunk))."""
        self.history = np.concatenate([self.history, np.asarray(chunk, np.float32)])[-self.window:]
        audio = torch.from_numpy(self.history)[None].to(self.device)
        weights = self.model(audio, frames_for(self.window))
        n = min(frames_for(len(chunk)), weights.shape[0])
        return weights[-n:].float().cpu().numpy()

    def flush(self) -> np.ndarray:
        return np.zeros((0, NUM_WEIGHTS), np.float32)


class FaceFormerStream:
    """FaceFormer fed chunk by chunk: each chunk's audio features come from a LAM-style window
    (FaceFormer itself encodes the whole clip), then its frames are decoded autoregressively over
    the prefix of every frame since the stream started, which grows without bound."""

    def __init__(self, model: FaceFormerStyle, *, window_frames: int = LAM_WINDOW_FRAMES, device: str = "cpu"):
        self.model, self.device = model, device
        self.window = int(SAMPLE_RATE * window_frames // FPS)
        self.window_frames = window_frames
        self.reset()

    def reset(self) -> None:
        self.history = np.zeros(self.window, np.float32)
        self.prefix = self.model.start(self.device)
        self.memory = torch.zeros(1, 0, self.model.audio_map.out_features, device=self.device)

    def push(self, chunk: np.ndarray) -> np.ndarray:
        self.history = np.concatenate([self.history, np.asarray(chunk, np.float32)])[-self.window:]
        audio = torch.from_numpy(self.history)[None].to(self.device)
        n = min(frames_for(len(chunk)), self.window_frames)
        feats = self.model.audio_features(audio, self.window_frames)[:, -n:]
        self.memory = torch.cat([self.memory, feats], dim=1)
        self.prefix, weights = self.model.decode(self.prefix, self.memory, n)
        return weights.float().cpu().numpy()

    def flush(self) -> np.ndarray:
        return np.zeros((0, NUM_WEIGHTS), np.float32)


def build_peer(name: str, *, tiny: bool = False, device: str = "cpu") -> tuple[nn.Module, object]:
    """(network on ``device``, a factory of streams) for "lam", "faceformer" or "emotalk".

    ``tiny``: 2-layer, 32-wide encoders (smoke tests); the heads keep their published sizes.
    """
    torch.manual_seed(0)
    if name == "lam":
        model = LAMStyle(encoder_sizes=WAV2VEC2_TINY if tiny else WAV2VEC2_BASE).to(device)
        return model, lambda: WindowedStream(model, device=device)
    if name == "faceformer":
        model = FaceFormerStyle(encoder_sizes=WAV2VEC2_TINY if tiny else WAV2VEC2_BASE).to(device)
        return model, lambda: FaceFormerStream(model, device=device)
    if name == "emotalk":
        model = EmoTalkStyle(encoder_sizes=WAV2VEC2_TINY if tiny else WAV2VEC2_LARGE).to(device)
        return model, lambda: WindowedStream(model, device=device)
    raise ValueError(f"unknown peer {name!r}; known: lam, faceformer, emotalk")
