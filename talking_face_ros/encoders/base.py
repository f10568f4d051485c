"""The two encoder interfaces the model is built on: speech -> features in time, text -> a vector.

Every speech encoder here is a strided convolutional front end followed by a transformer with
global attention. The front end fixes the frame grid (one frame every ``frame_stride`` samples,
each frame seeing ``frame_span`` samples); the transformer makes every frame depend on the whole
input. That is why long audio is encoded in overlapping windows with context on both sides and a
crossfade between them (``SpeechEncoder.encode``), and why a streaming caller has to wait for
``right_context_s`` of audio after a frame before its features settle.
"""
from __future__ import annotations

import os
from abc import ABC, abstractmethod
from collections import OrderedDict

import numpy as np

from ..data.sample import frame_count

SAMPLE_RATE = 16000  # Hz; every speech encoder here was trained on 16 kHz audio


def resolve_torch_device(device: str) -> str:
    """Map "auto" / "cpu" / "cuda[:N]" to a torch device string that exists on this machine."""
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cpu":
        return "cpu"
    if device == "cuda" or device.startswith("cuda:"):
        if not torch.cuda.is_available():
            raise ValueError(f"device {device!r}: torch sees no CUDA GPU here; use 'cpu' or 'auto'")
        return device
    raise ValueError(f"device must be 'auto', 'cpu' or 'cuda', got {device!r}")


def hub_offline() -> bool:
    """True when the user asked for no Hugging Face hub traffic (HF_HUB_OFFLINE / TRANSFORMERS_OFFLINE)."""
    flags = (os.environ.get("HF_HUB_OFFLINE", ""), os.environ.get("TRANSFORMERS_OFFLINE", ""))
    return any(f.strip().lower() in ("1", "true", "yes", "on") for f in flags)


class SpeechEncoder(ABC):
    """Speech audio (mono, 16 kHz) -> a feature vector per frame.

    Subclasses set the attributes below and implement ``_encode_window``; this class handles
    input checks, resampling to 16 kHz, padding of very short input, windowed encoding of long
    input and the mapping of features onto the motion frame rate.
    """

    name: str  # short identifier, e.g. "moonshine-base"
    feature_dim: int  # size of one feature vector
    sample_rate: int = SAMPLE_RATE
    frame_stride: int  # samples between consecutive feature frames
    frame_span: int  # samples one frame's convolutional front end sees
    left_context_s: float  # audio before a frame that its features need to match a whole-clip pass
    right_context_s: float  # audio after a frame that its features need (streaming latency)
    max_single_pass_s: float  # longer input is encoded in overlapping windows of this length
    crossfade_s: float  # width of the linear crossfade between neighbouring windows

    @property
    def native_rate(self) -> float:
        """Feature frames per second."""
        return self.sample_rate / self.frame_stride

    @property
    def receptive_field_s(self) -> float:
        """Audio one frame's convolutional front end sees (attention then widens it to the whole window)."""
        return self.frame_span / self.sample_rate

    @property
    def frame_offset_s(self) -> float:
        """Time of feature frame 0: the centre of the first frame's receptive field."""
        return (self.frame_span - 1) / 2.0 / self.sample_rate

    @property
    def min_samples(self) -> int:
        """Shorter input is padded with silence to this many samples (two feature frames)."""
        return self.frame_span + self.frame_stride

    def num_frames(self, num_samples: int) -> int:
        """Feature frames the encoder returns for ``num_samples`` samples (after padding)."""
        n = max(int(num_samples), self.min_samples)
        return (n - self.frame_span) // self.frame_stride + 1

    def frame_times(self, num_frames: int) -> np.ndarray:
        """Time in seconds that each of ``num_frames`` feature frames depicts."""
        return self.frame_offset_s + np.arange(num_frames, dtype=np.float64) / self.native_rate

    # ------------------------------------------------------------------ encoding

    def encode(self, audio: np.ndarray, *, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
        """Features of ``audio``: ``(num_frames(len), feature_dim)`` float32, frame k at ``frame_times``."""
        audio = self._check_audio(audio, sample_rate)
        audio = self._prepare(audio)
        if len(audio) < self.min_samples:
            audio = np.pad(audio, (0, self.min_samples - len(audio)))
        if len(self._window_starts(len(audio))) == 1:
            feats = self._encode_window(audio)
        else:
            feats = self._encode_windows(audio)
        expected = self.num_frames(len(audio))
        if feats.shape != (expected, self.feature_dim):
            raise RuntimeError(
                f"{self.name}: model returned features {feats.shape}, expected ({expected}, {self.feature_dim})"
            )
        return feats

    def concurrent(self) -> "SpeechEncoder":
        """The encoder to run passes with while other passes run beside them (``features``):
        this one, unless its passes use several threads each, when a one-thread twin keeps
        passes side by side from fighting over the cores (``MoonshineEncoder``)."""
        return self

    def encode_at_fps(
        self,
        audio: np.ndarray,
        fps: float,
        num_frames: int | None = None,
        *,
        sample_rate: int = SAMPLE_RATE,
    ) -> np.ndarray:
        """Features at the motion frame rate: row i depicts time ``i / fps``.

        Linear interpolation between the two feature frames around each motion frame, holding the
        first/last feature beyond the ends. ``resample_motion`` is not used because feature frame 0
        lies at ``frame_offset_s``, not at time 0. ``num_frames`` defaults to the frames that cover
        the audio (``data.sample.frame_count``).
        """
        if not fps > 0:
            raise ValueError(f"fps must be positive, got {fps}")
        audio = self._check_audio(audio, sample_rate)
        if num_frames is None:
            num_frames = frame_count(len(audio) / self.sample_rate, fps)
        if num_frames < 0:
            raise ValueError(f"num_frames must be >= 0, got {num_frames}")
        feats = self.encode(audio)
        pos = (np.arange(num_frames) / fps - self.frame_offset_s) * self.native_rate
        pos = np.clip(pos, 0.0, len(feats) - 1)
        lo = np.floor(pos).astype(np.int64)
        hi = np.minimum(lo + 1, len(feats) - 1)
        frac = (pos - lo).astype(np.float32)[:, None]
        return feats[lo] * (1.0 - frac) + feats[hi] * frac

    # ------------------------------------------------------------------ for subclasses

    @abstractmethod
    def _encode_window(self, audio: np.ndarray) -> np.ndarray:
        """One model pass over prepared 16 kHz audio -> ``(num_frames(len), feature_dim)`` float32."""

    def _set_windows(self, max_single_pass_s: float, left_context_s: float, right_context_s: float,
                     crossfade_s: float) -> None:
        """Check and keep the long-input window settings (called by subclass constructors)."""
        if min(left_context_s, right_context_s, crossfade_s) < 0:
            raise ValueError(f"{self.name}: contexts and crossfade must be >= 0")
        hop_s = max_single_pass_s - (left_context_s + right_context_s + crossfade_s)
        if hop_s < self.frame_stride / self.sample_rate:
            raise ValueError(
                f"{self.name}: max_single_pass_s={max_single_pass_s} leaves no room beyond the contexts "
                f"({left_context_s} + {right_context_s} s) and crossfade ({crossfade_s} s)"
            )
        self.max_single_pass_s = float(max_single_pass_s)
        self.left_context_s = float(left_context_s)
        self.right_context_s = float(right_context_s)
        self.crossfade_s = float(crossfade_s)

    def _prepare(self, audio: np.ndarray) -> np.ndarray:
        """Whole-utterance preprocessing done once before windowing (e.g. loudness normalisation)."""
        return audio

    # ------------------------------------------------------------------ internals

    def _check_audio(self, audio, sample_rate: int) -> np.ndarray:
        audio = np.asarray(audio)
        if audio.ndim != 1:
            raise ValueError(f"{self.name}: audio must be mono (1-D), got shape {audio.shape}")
        if not np.issubdtype(audio.dtype, np.floating):
            raise ValueError(f"{self.name}: audio must be floating point in [-1, 1], got dtype {audio.dtype}")
        if len(audio) == 0:
            raise ValueError(f"{self.name}: audio is empty")
        audio = audio.astype(np.float32, copy=False)
        if not np.all(np.isfinite(audio)):
            raise ValueError(f"{self.name}: audio contains NaN or infinite samples")
        if sample_rate != self.sample_rate:
            if sample_rate <= 0:
                raise ValueError(f"{self.name}: sample_rate must be positive, got {sample_rate}")
            import soxr

            audio = soxr.resample(audio, sample_rate, self.sample_rate).astype(np.float32, copy=False)
        return audio

    def _window_starts(self, num_samples: int) -> list[int]:
        """Window starts on the frame grid, evenly spread, overlapping by at least both contexts."""
        if num_samples <= round(self.max_single_pass_s * self.sample_rate):
            return [0]
        window = round(self.max_single_pass_s * self.sample_rate) // self.frame_stride * self.frame_stride
        overlap = round((self.left_context_s + self.right_context_s + self.crossfade_s) * self.sample_rate)
        hop = max(window - overlap, self.frame_stride)
        count = 1 + int(np.ceil((num_samples - window) / hop))
        last = (num_samples - window) // self.frame_stride  # in frames; the last window runs to the end
        if last == 0:  # only a few samples past one window: the last window is the whole input
            return [0]
        return sorted({round(k * last / (count - 1)) * self.frame_stride for k in range(count)})

    def _encode_windows(self, audio: np.ndarray) -> np.ndarray:
        """Encode long audio window by window and crossfade the overlaps into one feature sequence.

        Because windows start on the frame grid, local frame j of a window starting at sample s is
        global frame s / frame_stride + j. Each overlap is handed from one window to the next at
        its middle, where both windows have the most context, with a linear crossfade of
        ``crossfade_s``; the two ramps sum to one, so a frame both windows agree on is unchanged.
        """
        window = round(self.max_single_pass_s * self.sample_rate) // self.frame_stride * self.frame_stride
        starts = self._window_starts(len(audio))
        total = self.num_frames(len(audio))
        spans = []  # (first global frame, features)
        for i, s in enumerate(starts):
            chunk = audio[s:] if i == len(starts) - 1 else audio[s : s + window]
            spans.append((s // self.frame_stride, self._encode_window(chunk)))
        # hand-over points: middle of each overlap, in global frames
        cuts = [(spans[i + 1][0] + spans[i][0] + len(spans[i][1])) / 2.0 for i in range(len(spans) - 1)]
        fade = max(self.crossfade_s * self.native_rate, 1.0)
        acc = np.zeros((total, self.feature_dim), np.float64)
        norm = np.zeros(total, np.float64)
        for i, (first, feats) in enumerate(spans):
            g = first + np.arange(len(feats), dtype=np.float64)
            w = np.ones(len(feats))
            if i > 0:
                w = np.minimum(w, np.clip((g - cuts[i - 1]) / fade + 0.5, 0.0, 1.0))
            if i < len(spans) - 1:
                w = np.minimum(w, np.clip((cuts[i] - g) / fade + 0.5, 0.0, 1.0))
            acc[first : first + len(feats)] += w[:, None] * feats
            norm[first : first + len(feats)] += w
        return (acc / norm[:, None]).astype(np.float32)


class TextEncoder(ABC):
    """Texts -> unit-length float32 vectors, with a bounded LRU cache of texts seen before.

    Emotion descriptions repeat a lot (the same few prompts for every clip of a dataset, the
    same prompt for every chunk of a stream), so repeated texts are served from the cache.
    """

    name: str  # short identifier, e.g. "minilm"
    dim: int  # size of one embedding
    cache_key: str | None = None  # same key, same vectors: lets callers keep embeddings on disk

    def __init__(self, *, cache_size: int = 1024):  # cache_size: texts kept; 0 disables the cache
        if cache_size < 0:
            raise ValueError(f"cache_size must be >= 0, got {cache_size}")
        self.cache_size = int(cache_size)
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self.cache_hits = 0
        self.cache_misses = 0

    def encode(self, texts: list[str]) -> np.ndarray:
        """``(len(texts), dim)`` float32 embeddings, each of unit L2 norm."""
        if isinstance(texts, str):
            raise ValueError(f"{self.name}: texts must be a list of strings, got one str")
        texts = list(texts)
        bad = [t for t in texts if not isinstance(t, str)]
        if bad:
            raise ValueError(f"{self.name}: texts must be a list of strings, got a {type(bad[0]).__name__}")
        rows: dict[str, np.ndarray] = {}
        todo = []
        for t in texts:
            if t in rows:
                continue
            hit = self._cache.get(t)
            if hit is not None:
                self._cache.move_to_end(t)
                self.cache_hits += 1
                rows[t] = hit
            else:
                self.cache_misses += 1
                rows[t] = None
                todo.append(t)
        if todo:
            emb = np.asarray(self._embed(todo), dtype=np.float32)
            emb = emb / np.maximum(np.linalg.norm(emb, axis=1, keepdims=True), 1e-12)
            for t, row in zip(todo, emb):
                row = row.copy()
                row.flags.writeable = False  # cached rows are shared: nobody may change them
                rows[t] = row
                self._remember(t, row)
        if not texts:
            return np.zeros((0, self.dim), np.float32)
        return np.stack([rows[t] for t in texts])

    def encode_one(self, text: str) -> np.ndarray:
        """One text's embedding, ``(dim,)``; a cached text returns the same read-only array."""
        hit = self._cache.get(text)
        if hit is not None:
            self._cache.move_to_end(text)
            self.cache_hits += 1
            return hit
        row = self.encode([text])[0]
        return self._cache.get(text, row)

    def cache_info(self) -> dict:
        return {"hits": self.cache_hits, "misses": self.cache_misses, "size": len(self._cache),
                "max_size": self.cache_size}

    def clear_cache(self) -> None:
        self._cache.clear()

    @abstractmethod
    def _embed(self, texts: list[str]) -> np.ndarray:
        """``(len(texts), dim)`` raw embeddings of distinct texts (normalised by the caller)."""

    def _remember(self, text: str, row: np.ndarray) -> None:
        if self.cache_size == 0:
            return
        self._cache[text] = row
        self._cache.move_to_end(text)
        while len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)
