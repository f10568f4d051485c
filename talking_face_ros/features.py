"""Speech features on a chunk grid fixed in absolute audio time, the same offline and streaming.

The speech encoders attend over their whole input, so a feature frame depends on how much
audio was in its pass (see ``encoders/moonshine.py``). A model trained on features of one
chunking and run on features of another sees different inputs. Hence one rule, used by the
training feature cache and by the live engine alike:

* the audio is cut into chunks of ``chunk_s`` on a grid starting at sample 0;
* chunk k's features come from one encoder pass over
  ``[k*chunk - left, (k+1)*chunk + right]``; the start is clipped to sample 0 and samples
  beyond the end of the audio are zeros (only the last chunks, at the end of an utterance);
* of that pass only the feature frames anchored inside the chunk are kept (frame g of the
  encoder is anchored at sample ``g * frame_stride``, where its receptive field starts);
* the stitched feature sequence is mapped to the motion rate as ``encode_at_fps`` does:
  motion frame i (time ``i / fps``) interpolates linearly between the two feature frames
  around it, holding the first/last feature beyond the ends.

``StreamingFeatures`` computes the same passes on the same samples as audio arrives, so its
output concatenated equals ``encode_planned`` of the whole utterance bit for bit, whatever
the sizes of the pushed pieces. A motion frame is final once the chunk holding the feature
frame after it has its right context, so frames lag the newest audio by at most about
``chunk_s + right_s`` (``StreamingFeatures.latency_s``).
"""
from __future__ import annotations

import math
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, fields

import numpy as np

from .data.sample import frame_count


@dataclass(frozen=True)
class ChunkPlan:
    """How audio is cut into encoder passes; every length must be a whole number of encoder frames."""

    chunk_s: float = 0.48  # features are computed chunk by chunk on a grid fixed in absolute audio time
    left_s: float = 1.92  # audio before the chunk that the encoder also sees (context)
    right_s: float = 0.192  # audio after the chunk that the encoder also sees (adds latency)

    def __post_init__(self):
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise ValueError(f"ChunkPlan.{f.name} must be a finite number of seconds, got {value!r}")
        if self.chunk_s <= 0:
            raise ValueError(f"ChunkPlan.chunk_s must be > 0, got {self.chunk_s}")
        if self.left_s < 0 or self.right_s < 0:
            raise ValueError(f"ChunkPlan.left_s and right_s must be >= 0, got {self.left_s}, {self.right_s}")

    def to_dict(self) -> dict:
        return {k: float(v) for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, data) -> "ChunkPlan":
        if not isinstance(data, dict):
            raise ValueError(f"ChunkPlan: expected a mapping, got {type(data).__name__}")
        unknown = sorted(set(data) - {f.name for f in fields(cls)})
        if unknown:
            raise ValueError(f"ChunkPlan: unknown field(s) {', '.join(unknown)}")
        return cls(**data)

    def samples(self, encoder) -> tuple[int, int, int]:
        """(chunk, left, right) in samples at the encoder's rate; ValueError if off its frame grid.

        Whole frames keep every pass start on the encoder's frame grid, so a frame computed in
        one pass has the same anchor in every other pass. The right context must also cover one
        frame's receptive field beyond its anchor, or the chunk's last frames would not exist.
        """
        stride, rate = encoder.frame_stride, encoder.sample_rate
        out = []
        for name in ("chunk_s", "left_s", "right_s"):
            seconds = getattr(self, name)
            frames = seconds * rate / stride
            if abs(frames - round(frames)) > 1e-6:
                step = stride / rate
                raise ValueError(
                    f"ChunkPlan.{name}={seconds} s is not a whole number of {encoder.name} frames "
                    f"({stride} samples = {step:g} s each); use e.g. {math.floor(frames) * step:g} "
                    f"or {math.ceil(frames) * step:g}")
            out.append(int(round(frames)) * stride)
        chunk, left, right = out
        need = encoder.frame_span - stride
        if right < need:
            frames = -(-need // stride)
            raise ValueError(
                f"ChunkPlan.right_s={self.right_s} s is too short for {encoder.name}: a frame sees "
                f"{encoder.frame_span} samples from its anchor, so right_s must be at least "
                f"{frames * stride / rate:g} s ({frames} frames)")
        return chunk, left, right


def encode_planned(encoder, audio: np.ndarray, plan: ChunkPlan, *, fps: float,
                   num_frames: int | None = None) -> np.ndarray:
    """``(num_frames, feature_dim)`` float32 features of ``audio`` (mono, encoder rate) at ``fps``.

    ``num_frames`` defaults to the frames covering the audio (``data.sample.frame_count``);
    more frames hold the last feature. Audio must be finite and non-empty.
    """
    audio = _check_audio(encoder, audio)
    if len(audio) == 0:
        raise ValueError(f"{encoder.name}: audio is empty")
    stream = StreamingFeatures(encoder, plan, fps=fps)
    stream._append(audio)
    return stream._finish(num_frames)


class StreamingFeatures:
    """``encode_planned`` incrementally: ``push`` returns the frames that became final, ``flush`` the rest.

    Memory stays bounded: only the audio of the next pass and the feature frames the next
    motion frame interpolates between are kept. After ``flush`` the object starts a new
    utterance at time 0.
    """

    def __init__(self, encoder, plan: ChunkPlan, *, fps: float,
                 parallel_passes: int = 2):  # passes run at once when a push completes several chunks
        if not (isinstance(fps, (int, float)) and math.isfinite(fps) and fps > 0):
            raise ValueError(f"fps must be a positive number, got {fps!r}")
        if isinstance(parallel_passes, bool) or not isinstance(parallel_passes, int) or parallel_passes < 1:
            raise ValueError(f"parallel_passes must be an int >= 1, got {parallel_passes!r}")
        self.encoder = encoder
        self.parallel_passes = parallel_passes
        self.plan = plan
        self.fps = float(fps)
        self.chunk, self.left, self.right = plan.samples(encoder)
        self.frames_per_chunk = self.chunk // encoder.frame_stride
        # A causal encoder (``encoders/causal_speech.py``) keeps its history in a state: it is fed
        # each sample once, and a chunk's frames are those the stream completes by its right edge.
        self._stream = encoder.new_stream() if getattr(encoder, "causal", False) else None
        if self._stream is not None and self.left:
            raise ValueError(f"ChunkPlan.left_s must be 0 for the causal {encoder.name} encoder "
                             f"(its state carries the history), got {plan.left_s}")
        self.reset()

    @property
    def feature_dim(self) -> int:
        return self.encoder.feature_dim

    @property
    def causal(self) -> bool:
        """Whether the encoder streams through its state (each sample encoded once, a few ms a piece)."""
        return self._stream is not None

    @property
    def latency_s(self) -> float:
        """Bound of (newest audio time - time of the last final frame) between pushes.

        Features up to the end of chunk k exist once (k+1)*chunk + right samples arrived; a frame
        is final when the feature frame after it exists, whose time is at most one feature
        frame, minus the frame offset, before that chunk's end; frames come every 1/fps.
        """
        e = self.encoder
        return ((self.chunk + self.right) / e.sample_rate + 1.0 / e.native_rate - e.frame_offset_s
                + 1.0 / self.fps)

    @property
    def samples_pushed(self) -> int:
        """Samples of the current utterance received so far."""
        return self._n

    @property
    def frames_emitted(self) -> int:
        """Motion frames of the current utterance returned so far."""
        return self._next_frame

    def buffered(self) -> dict[str, int]:
        """Sizes of the internal buffers (samples, feature frames), for memory checks."""
        return {"audio": len(self._audio), "features": len(self._feats)}

    def reset(self) -> None:
        """Forget the current utterance."""
        self._audio = np.zeros(0, np.float32)  # samples from self._audio_start on
        self._audio_start = 0
        self._n = 0  # samples pushed
        self._next_chunk = 0
        self._feats = np.zeros((0, self.encoder.feature_dim), np.float32)  # from self._feat_start on
        self._feat_start = 0
        self._next_frame = 0
        if self._stream is not None:
            self._stream.reset()
            self._fed = 0  # samples given to the stream
            self._pending = np.zeros((0, self.encoder.feature_dim), np.float32)  # its frames past the last chunk

    def push(self, audio: np.ndarray) -> np.ndarray:
        """Add mono audio at the encoder's rate; returns the newly final ``(n, feature_dim)`` frames."""
        audio = _check_audio(self.encoder, audio)
        if len(audio) == 0:
            return np.zeros((0, self.feature_dim), np.float32)
        self._append(audio)
        self._encode_chunks(max(self._next_chunk, (self._n - self.right) // self.chunk))
        available = self._next_chunk * self.frames_per_chunk  # feature frames computed so far
        last = frame_count(self._n / self.encoder.sample_rate, self.fps)  # frames the audio covers
        stop = self._next_frame
        while stop < last and self._feature_pos(stop)[1] + 1 < available:
            stop += 1
        return self._emit(stop, total_features=None)

    def flush(self, num_frames: int | None = None) -> np.ndarray:
        """End of utterance: the remaining frames (zero audio beyond the end); then start anew."""
        if self._n == 0:
            self.reset()
            return np.zeros((0, self.feature_dim), np.float32)
        return self._finish(num_frames)

    # ------------------------------------------------------------------ internals

    def _append(self, audio: np.ndarray) -> None:
        self._audio = np.concatenate([self._audio, audio]) if len(self._audio) else audio.copy()
        self._n += len(audio)

    def _finish(self, num_frames: int | None) -> np.ndarray:
        total = frame_count(self._n / self.encoder.sample_rate, self.fps) if num_frames is None else num_frames
        if not isinstance(total, (int, np.integer)) or total < 0:
            raise ValueError(f"num_frames must be an int >= 0, got {num_frames!r}")
        self._encode_chunks(max(self._next_chunk, -(-self._n // self.chunk)))
        features = self._next_chunk * self.frames_per_chunk
        out = self._emit(max(int(total), self._next_frame), total_features=features)
        self.reset()
        return out

    def _encode_chunks(self, stop: int) -> None:
        """Encoder passes for chunks ``_next_chunk .. stop-1``, keeping the frames anchored inside each.

        The passes of a windowed encoder are independent, so when one push completes several
        chunks (a 1 s piece completes two 0.96 s chunks about once in 24) they run
        ``parallel_passes`` at a time, each in its own thread: onnxruntime and torch release the
        GIL while they compute. Each pass sees the same samples as when run alone, so the
        features are the same. ``bench/encoders.py --moonshine-only``: two one-thread int8
        passes side by side took 53.8-58.9 ms against 47.8-53.8 ms for one (three runs). Passes
        that use several threads each would fight over the cores side by side, so they run on
        the encoder's ``concurrent()`` twin, one thread each.
        """
        ks = range(self._next_chunk, stop)
        if not ks:
            return
        windows = [self._window(k) for k in ks]
        if self._stream is not None or len(ks) < 2 or self.parallel_passes < 2:
            results = (self._encode(piece) for _, piece in windows)  # lazily: one at a time
        else:
            encoder = self.encoder.concurrent()  # one thread per pass
            results = _pass_pool(self.parallel_passes).map(lambda w: encoder.encode(w[1]), windows)
        for k, (start, _), feats in zip(ks, windows, results):
            self._keep(k, start, feats)

    def _window(self, k: int) -> tuple[int, np.ndarray]:
        """First sample and samples of chunk ``k``'s pass (zeros beyond the audio, at the end only)."""
        start = self._fed if self._stream is not None else max(0, k * self.chunk - self.left)
        end = (k + 1) * self.chunk + self.right
        a = start - self._audio_start
        piece = self._audio[a:a + end - start]
        if len(piece) < end - start:  # only at the end of an utterance
            piece = np.concatenate([piece, np.zeros(end - start - len(piece), np.float32)])
        if self._stream is not None:
            self._fed = end  # the next causal window starts where this one ends
        return start, piece

    def _encode(self, piece: np.ndarray) -> np.ndarray:
        if self._stream is not None:
            return np.concatenate([self._pending, self._stream.push(piece)])
        return self.encoder.encode(piece)

    def _keep(self, k: int, start: int, feats: np.ndarray) -> None:
        e = self.encoder
        if self._stream is not None:
            kept, self._pending = feats[:self.frames_per_chunk], feats[self.frames_per_chunk:]
        else:
            first = (k * self.chunk - start) // e.frame_stride
            kept = feats[first:first + self.frames_per_chunk]
        if len(kept) != self.frames_per_chunk:
            raise RuntimeError(f"{e.name}: a pass from sample {start} gave {len(feats)} frames, "
                               f"too few for a chunk of {self.frames_per_chunk}")
        self._feats = np.concatenate([self._feats, kept]) if len(self._feats) else kept.copy()
        self._next_chunk = k + 1
        keep_from = self._fed if self._stream is not None else \
            max(0, self._next_chunk * self.chunk - self.left)  # the next pass starts here
        self._audio = self._audio[keep_from - self._audio_start:]
        self._audio_start = keep_from

    def _feature_pos(self, i: int):
        """Position of motion frame i on the feature frame grid (as in encode_at_fps), and its floor."""
        e = self.encoder
        pos = max((i / self.fps - e.frame_offset_s) * e.native_rate, 0.0)
        return pos, int(math.floor(pos))

    def _emit(self, stop: int, *, total_features: int | None) -> np.ndarray:
        """Motion frames ``_next_frame .. stop-1``; ``total_features`` set at the end of the utterance."""
        e = self.encoder
        start = self._next_frame
        if stop <= start:
            return np.zeros((0, self.feature_dim), np.float32)
        # Same expressions as SpeechEncoder.encode_at_fps, so the numbers match it exactly.
        pos = (np.arange(start, stop) / self.fps - e.frame_offset_s) * e.native_rate
        last = (total_features if total_features is not None else self._feat_start + len(self._feats)) - 1
        pos = np.clip(pos, 0.0, last)
        lo = np.floor(pos).astype(np.int64)
        hi = np.minimum(lo + 1, last)
        frac = (pos - lo).astype(np.float32)[:, None]
        f = self._feats
        out = f[lo - self._feat_start] * (1.0 - frac) + f[hi - self._feat_start] * frac
        self._next_frame = stop
        # Drop features no later frame interpolates from.
        drop = min(self._feature_pos(stop)[1], self._feat_start + len(f) - 1) - self._feat_start
        if drop > 0:
            self._feats = f[drop:]
            self._feat_start += drop
        return out.astype(np.float32, copy=False)


_POOLS: dict[tuple[int, int], ThreadPoolExecutor] = {}
_POOLS_LOCK = threading.Lock()


def _pass_pool(workers: int) -> ThreadPoolExecutor:
    """A shared pool per process and size: made once, not per push. Keyed by the process id,
    because a forked child inherits the pool object without its threads."""
    key = (os.getpid(), workers)
    with _POOLS_LOCK:
        pool = _POOLS.get(key)
        if pool is None:
            pool = _POOLS[key] = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="encoder_pass")
        return pool


def _check_audio(encoder, audio) -> np.ndarray:
    audio = np.asarray(audio)
    if audio.ndim != 1:
        raise ValueError(f"{encoder.name}: audio must be mono (1-D), got shape {audio.shape}")
    if not np.issubdtype(audio.dtype, np.floating):
        raise ValueError(f"{encoder.name}: audio must be floating point in [-1, 1], got dtype {audio.dtype}")
    audio = audio.astype(np.float32, copy=False)
    if not np.all(np.isfinite(audio)):
        raise ValueError(f"{encoder.name}: audio contains NaN or infinite samples")
    return audio
