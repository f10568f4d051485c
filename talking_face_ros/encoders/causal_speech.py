"""A causal speech encoder, distilled from Moonshine, for faces that must follow the voice within ~0.1 s.

Why it exists: Moonshine attends over its whole input, so its features are computed in 0.96 s
chunks with 0.19 s of audio after them (``features.ChunkPlan``), and a live face can show a
sound only about a second after it was heard. This network reads audio strictly in order:

    16 kHz audio -> log-mel (25 ms Hann windows every 10 ms, 80 bands)
                 -> stem: each 20 ms output frame g reads mel frames 2g-2 .. 2g+1 (linear, GELU, LayerNorm)
                 -> GRU layers (the state carries everything heard before)
                 -> linear map into Moonshine's feature space (416-d)

so feature frame g (anchored at sample 320 g) depends on no audio after sample 320 g + 560:
17.5 ms after the time it depicts. Its history lives in the GRU state, so streaming needs no
re-encoded context: ``CausalStream`` takes audio in pieces of any size and returns each frame
once, and one pass over an utterance gives the same numbers (up to float rounding) however the
audio was cut. ``features.StreamingFeatures`` uses the stream for encoders with ``causal = True``.

It is trained (``distill_speech.py``) to reproduce the Moonshine features that the training
feature cache holds for the corpus, at the motion frame rate; models for it are then trained on
its own features like on any other encoder's.

Files: a folder with ``config.json`` (the ``CausalSpeechConfig`` fields) and
``model.safetensors``; no pickle.
"""
from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from .base import SAMPLE_RATE, SpeechEncoder

N_FFT, HOP, WINDOW = 400, 160, 400  # 25 ms windows every 10 ms at 16 kHz
FRAME_STRIDE = 2 * HOP  # one feature frame per two mel frames: 20 ms
STEM_MELS = 4  # mel frames 2g-2 .. 2g+1 feed feature frame g
# Feature frame g reads samples up to the end of mel frame 2g+1: 320 g + 160 + 400.
FRAME_SPAN = HOP + WINDOW
FORMAT = "talking_face_causal_speech"
SHIPPED = Path(__file__).resolve().parents[1] / "assets" / "causal_speech"


@dataclass(frozen=True)
class CausalSpeechConfig:
    n_mels: int = 80  # mel bands of the front end
    f_min: float = 20.0  # lowest band edge (Hz)
    f_max: float = 7600.0  # highest band edge (Hz)
    dim: int = 256  # width of the stem and the GRU
    layers: int = 2  # GRU layers
    feature_dim: int = 416  # output size: Moonshine base's feature size
    teacher: str = "moonshine"  # what the output imitates (informational)

    @classmethod
    def from_dict(cls, data: dict) -> "CausalSpeechConfig":
        from ..model.config import _from_dict  # the model configs' checks: unknown fields, field types

        return _from_dict(cls, data)


def mel_filterbank(n_mels: int, *, f_min: float, f_max: float, n_fft: int = N_FFT,
                   sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """(n_mels, n_fft // 2 + 1) triangular HTK-mel filters.

    Written here because neither torchaudio nor librosa is a dependency, and the filters are a
    dozen lines of arithmetic.
    """
    def hz_to_mel(f):
        return 2595.0 * np.log10(1.0 + np.asarray(f, np.float64) / 700.0)

    def mel_to_hz(m):
        return 700.0 * (10.0 ** (np.asarray(m, np.float64) / 2595.0) - 1.0)

    edges = mel_to_hz(np.linspace(hz_to_mel(f_min), hz_to_mel(f_max), n_mels + 2))
    freqs = np.linspace(0.0, sample_rate / 2.0, n_fft // 2 + 1)
    lower, centre, upper = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    rise = (freqs[None] - lower) / (centre - lower)
    fall = (upper - freqs[None]) / (upper - centre)
    return np.maximum(0.0, np.minimum(rise, fall)).astype(np.float32)


def build_network(config: CausalSpeechConfig):
    """The torch module (imported lazily so that this file loads without torch)."""
    import torch
    from torch import nn

    class CausalSpeechNet(nn.Module):
        def __init__(self, c: CausalSpeechConfig):
            super().__init__()
            self.config = c
            self.register_buffer("window", torch.hann_window(WINDOW, periodic=True), persistent=False)
            self.register_buffer("mel_fb", torch.from_numpy(mel_filterbank(c.n_mels, f_min=c.f_min, f_max=c.f_max)),
                                 persistent=False)
            # Normalisation of the log-mel input and of the teacher's features, set from the
            # training data before training (``distill_speech``) and saved with the weights.
            self.register_buffer("mel_mean", torch.zeros(c.n_mels))
            self.register_buffer("mel_std", torch.ones(c.n_mels))
            self.register_buffer("feature_mean", torch.zeros(c.feature_dim))
            self.register_buffer("feature_std", torch.ones(c.feature_dim))
            self.stem = nn.Sequential(nn.Linear(STEM_MELS * c.n_mels, c.dim), nn.GELU(), nn.LayerNorm(c.dim))
            self.gru = nn.GRU(c.dim, c.dim, num_layers=c.layers, batch_first=True)
            self.out = nn.Linear(c.dim, c.feature_dim)

        def log_mel(self, audio):
            """(B, N) samples -> (B, M, n_mels) normalised log-mel, M = (N - 400) // 160 + 1 (N >= 400)."""
            spec = torch.stft(audio, N_FFT, hop_length=HOP, win_length=WINDOW, window=self.window,
                              center=False, return_complex=True)
            power = spec.real.square() + spec.imag.square()  # (B, 201, M)
            mel = torch.log(torch.matmul(self.mel_fb, power) + 1e-6).transpose(1, 2)
            return (mel - self.mel_mean) / self.mel_std

        def stem_inputs(self, past, mel):
            """``past`` (B, 2, n_mels) mel frames before ``mel`` (B, 2G, n_mels) -> (B, G, 4 n_mels)."""
            seq = torch.cat([past, mel], dim=1)
            G = mel.shape[1] // 2
            return seq.unfold(1, STEM_MELS, 2)[:, :G].transpose(2, 3).reshape(seq.shape[0], G, -1)

        def standardized(self, audio):
            """Training: (B, N) audio from the utterance start -> (B, G, feature_dim) standardised features."""
            mel = self.log_mel(audio)
            G = mel.shape[1] // 2
            past = mel.new_zeros(mel.shape[0], 2, mel.shape[2])
            h, _ = self.gru(self.stem(self.stem_inputs(past, mel[:, :2 * G])))
            return self.out(h)

        def step(self, mel_pairs, past, state):
            """Streaming: new mel frames (1, 2G, n_mels) -> (features (1, G, feature_dim), past, state)."""
            h, state = self.gru(self.stem(self.stem_inputs(past, mel_pairs)), state)
            feats = self.out(h) * self.feature_std + self.feature_mean
            return feats, torch.cat([past, mel_pairs], dim=1)[:, -2:], state

    return CausalSpeechNet(config)


def load_network(folder: str | Path):
    """(network in eval mode, config) from a folder with config.json and model.safetensors."""
    from safetensors.torch import load_file

    folder = Path(folder)
    try:
        meta = json.loads((folder / "config.json").read_text())
    except (OSError, ValueError) as exc:
        raise ValueError(f"{folder}: no readable config.json for a causal speech encoder ({exc})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise ValueError(f"{folder}/config.json: not a causal speech encoder (format {FORMAT!r} expected)")
    config = CausalSpeechConfig.from_dict(meta.get("config", {}))
    net = build_network(config)
    try:
        state = load_file(str(folder / "model.safetensors"))
    except Exception as exc:  # noqa: BLE001 - safetensors raises several types for a bad file
        raise ValueError(f"{folder}/model.safetensors: unreadable ({exc})") from None
    try:
        missing, unexpected = net.load_state_dict(state, strict=False)
    except RuntimeError as exc:  # tensors of other shapes
        raise ValueError(f"{folder}/model.safetensors does not fit the config: {exc}") from None
    if missing or unexpected:
        raise ValueError(f"{folder}/model.safetensors does not fit the config: missing {missing}, "
                         f"unexpected {unexpected}")
    return net.eval(), config


def save_network(net, folder: str | Path, *, info: dict | None = None) -> Path:
    from safetensors.torch import save_file

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().contiguous().cpu() for k, v in net.state_dict().items()}
    save_file(state, str(folder / "model.safetensors"))
    meta = {"format": FORMAT, "version": 1, "config": asdict(net.config), **({"trained": info} if info else {})}
    (folder / "config.json").write_text(json.dumps(meta, indent=1) + "\n")
    return folder


class CausalStream:
    """Incremental features of one utterance: ``push`` audio, get every newly complete frame.

    Audio is kept until it completes a pair of mel frames (one feature frame), so each call
    runs ``_step`` on whole pairs only; the ONNX backend's stream (``onnx_backend``) overrides
    ``_step`` and keeps the rest.
    """

    def __init__(self, net):
        self.net = net
        self.feature_dim = net.config.feature_dim
        self.reset()

    def reset(self) -> None:
        self._audio = np.zeros(0, np.float32)  # samples of mel frames not yet in a complete pair
        self._past = None  # the stem's two mel frames before the next pair (None: zeros)
        self._state = None  # GRU hidden state (None: zeros)
        self.frames = 0  # feature frames returned so far

    def push(self, audio: np.ndarray) -> np.ndarray:
        """(n, feature_dim) float32 frames that ``audio`` (16 kHz mono float) completed."""
        audio = np.concatenate([self._audio, np.asarray(audio, np.float32)])
        pairs = ((len(audio) - WINDOW) // HOP + 1) // 2 if len(audio) >= WINDOW else 0
        if pairs <= 0:
            self._audio = audio
            return np.zeros((0, self.feature_dim), np.float32)
        feats = self._step(audio[:(2 * pairs - 1) * HOP + WINDOW])  # exactly 2 * pairs mel frames
        self._audio = audio[2 * pairs * HOP:]
        self.frames += pairs
        return feats

    def _step(self, audio: np.ndarray) -> np.ndarray:
        import torch

        with torch.inference_mode():
            mel = self.net.log_mel(torch.from_numpy(np.ascontiguousarray(audio))[None])
            if self._past is None:
                self._past = mel.new_zeros(1, 2, mel.shape[2])
            feats, self._past, self._state = self.net.step(mel, self._past, self._state)
        return feats[0].numpy()


class CausalSpeechEncoder(SpeechEncoder):
    """The distilled causal encoder: Moonshine-like 416-d features every 20 ms, 17.5 ms of lookahead."""

    name = "causal-speech"
    frame_stride = FRAME_STRIDE
    frame_span = FRAME_SPAN
    causal = True  # features.StreamingFeatures streams it through ``new_stream`` (no re-encoded context)
    BLOCK_S = 60.0  # ``encode`` feeds long audio to one stream in blocks of this length (bounded memory)

    def __init__(
        self,
        *,
        model_path: str | Path | None = None,  # folder with config.json + model.safetensors; None: the shipped one
        device: str = "cpu",  # "cpu" or "auto" (the network is small; one thread of a CPU keeps up 100x over)
        threads: int | None = None,  # torch CPU threads; None leaves torch's setting alone
    ):
        import torch

        if device not in ("cpu", "auto"):
            raise ValueError(f"causal speech encoder: device must be 'cpu' or 'auto', got {device!r}")
        if threads is not None:
            if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
                raise ValueError(f"causal speech encoder: threads must be an int >= 1 or None, got {threads!r}")
            torch.set_num_threads(threads)
        folder = Path(model_path) if model_path is not None else SHIPPED
        self.model_path = folder
        self.net, self.config = load_network(folder)
        self.feature_dim = self.config.feature_dim
        # Long-input windowing of the base class is never used (``encode`` streams); these keep
        # its attributes defined.
        self.max_single_pass_s = math.inf
        self.left_context_s = self.right_context_s = self.crossfade_s = 0.0

    def new_stream(self) -> CausalStream:
        return CausalStream(self.net)

    def encode(self, audio: np.ndarray, *, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
        """One causal pass (in blocks, exact): ``(num_frames(len), feature_dim)`` float32."""
        audio = self._check_audio(audio, sample_rate)
        if len(audio) < self.min_samples:
            audio = np.pad(audio, (0, self.min_samples - len(audio)))
        stream, block = self.new_stream(), int(self.BLOCK_S * self.sample_rate)
        feats = [stream.push(audio[i:i + block]) for i in range(0, len(audio), block)]
        out = np.concatenate(feats)
        expected = self.num_frames(len(audio))
        if out.shape != (expected, self.feature_dim):
            raise RuntimeError(f"{self.name}: got features {out.shape}, expected ({expected}, {self.feature_dim})")
        return out

    def _encode_window(self, audio: np.ndarray) -> np.ndarray:
        return self.encode(audio)
