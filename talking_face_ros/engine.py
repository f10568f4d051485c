"""Speech audio + emotion text -> ARKit frames, live or offline, through one code path.

The CLI, the ROS node and the benchmarks all use ``Engine``. Audio goes in with ``push`` in
pieces of any size and rate; ``pull`` returns the frames that are final; ``flush`` ends an
utterance. ``animate`` is the same engine fed a whole clip at once and flushed, so offline and
live output agree (exactly at temperature 0, up to float rounding of the windows).

How it stays exact and bounded:

* Speech features come from ``features.StreamingFeatures`` on the bundle's chunk plan, the
  same passes the training features were made with.
* The networks are temporally local (``model.receptive_field``: frames before/after a frame
  that can change it). A frame is final once the features of the ``lookahead`` frames after it
  exist; it is computed in a window that starts ``receptive_field.left`` frames before it (on
  the model's code grid, ``align``), which gives the same numbers as one pass over the whole
  utterance. Everything older than the next window's start is dropped, so memory does not grow
  with the length of the stream.
* A torch code predictor is run in its stages instead (``_CodePlan``): each speech-trunk step,
  high code, low code and frame is computed once, in a window cut to that stage's own reach, and
  steps and codes are kept until nothing reads them. The code levels' layer stacks and the
  refine head's speech branch go further, block by block (``model/staged_blocks.py``,
  ``model/staged_regression.py``): each block's new steps read only their own reach of the
  block below. Same numbers up to float rounding; in the default model the windows per second
  of audio shrink from the whole 7 s reach to about what each block reads.
* ``step_frames`` (auto: 2 for a causal speech encoder, whose frames come one every 33 ms)
  runs the network only once that many new frames of speech arrived: a run costs about the
  same for one frame as for two, and the frames are the same, one frame later at most.
* Text conditions are per frame. ``set_emotion`` starts a linear blend from the current text
  embedding to the new one at the first frame at or after the newest audio, over
  ``emotion_blend_s``. Frames get their text when their features arrive, which is always after
  that point, so a frame's condition never changes once set and windows stay consistent.
  Between utterances (no audio since the last ``flush`` or ``reset``) a new text applies at once.

Clock and indices: frame ``index`` depicts stream time ``index / fps``. The stream clock counts
the 16 kHz samples that reached the encoder; ``flush`` pads the utterance with silence up to
the next frame boundary (less than one frame), and the next utterance starts there, so indices
continue without gaps or repeats across utterances. ``reset`` starts the clock again at 0.

Sampling (temperature > 0) draws codes window by window from a seeded ``torch.Generator``;
then a frame depends on the window it was drawn in, so live and offline draws differ (each is a
valid sample). ``set_identity`` applies to windows computed after the call (identity is a table
row per window, it cannot be blended).

Bad audio never raises: NaN/inf samples become 0 and float samples beyond [-1, 1] are clipped
there, as a converter clips at full scale (both counted in ``stats``), integer PCM is scaled
to [-1, 1], multi-channel arrays are averaged (the channel axis is the short one when it has
at most 8 entries, else axis 1), empty arrays are ignored. Nonsense arguments (a sample rate
outside [MIN_SAMPLE_RATE, MAX_SAMPLE_RATE], arrays of 3+ dimensions, complex or non-numeric
arrays) raise ValueError. Final frames wait in the engine until
``pull``; a caller that never pulls makes that queue grow.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .arkit import NUM_BLENDSHAPES
from .emotions import clean_text
from .encoders.base import SAMPLE_RATE
from .features import StreamingFeatures

if TYPE_CHECKING:  # the engine imports torch only when it is built
    from .model.layers import Reach

# Sample rates push accepts: telephone audio to the fastest studio converters. A rate of a few
# Hz would turn a handful of samples into hours of audio after resampling.
MIN_SAMPLE_RATE, MAX_SAMPLE_RATE = 1_000, 384_000


@dataclass(frozen=True)
class Frame:
    index: int  # position in the stream; rises by 1 from frame to frame
    time: float  # stream audio time the frame depicts, index / fps seconds
    weights: np.ndarray  # (52,) float32 ARKit weights in arkit.ARKIT_NAMES order


class Engine:
    """Streaming animation with one loaded bundle; not thread-safe (one caller at a time)."""

    def __init__(
        self,
        bundle,  # bundle.Bundle
        *,
        emotion_blend_s: float = 0.5,  # seconds over which a new emotion text fades in
        temperature: float = 0.0,  # 0: most likely codes (deterministic); > 0: sampling (predictor only)
        seed: int | None = None,  # seed of the sampling generator; None: torch's global RNG
        window_s: float = 30.0,  # most frames one network call emits (bounds memory when fed hours at once)
        # Run the network once this many new frames of speech arrived (more: fewer, larger calls,
        # (step_frames - 1) / fps more latency); 0: auto, 2 for a causal speech encoder (a frame
        # every 33 ms otherwise costs one whole call each), 1 for a chunked one (frames come a chunk at a time).
        step_frames: int = 0,
        model=None,  # stand-in for bundle.model with its predict() (onnx_backend.OnnxMotionModel); None: bundle.model
    ):
        import torch

        _check_number(emotion_blend_s, "emotion_blend_s", minimum=0.0)
        _check_number(window_s, "window_s", minimum=1e-9)
        self.bundle = bundle
        self.model = bundle.model if model is None else model
        self._torch = torch
        # The ONNX stand-in names the device its inputs go to; a torch network is where its weights are.
        self._device = getattr(self.model, "device", None) or next(self.model.parameters()).device
        self.backend = getattr(self.model, "backend", None) or \
            f"torch ({self._device}, {str(next(self.model.parameters()).dtype).removeprefix('torch.')})"
        motion_dim = self.model.config.motion_dim if hasattr(self.model.config, "motion_dim") \
            else self.model.vqvae.config.motion_dim
        if motion_dim != NUM_BLENDSHAPES:
            raise ValueError(f"the bundle's model outputs {motion_dim} channels, not the 52 ARKit weights")
        self._sampling = bundle.model_kind == "predictor"
        self.emotion_blend_s = float(emotion_blend_s)
        self.window_frames = max(1, int(round(window_s * bundle.fps)))
        self._features = StreamingFeatures(bundle.encoders.speech, bundle.plan, fps=bundle.fps)
        if isinstance(step_frames, bool) or not isinstance(step_frames, (int, np.integer)) or step_frames < 0:
            raise ValueError(f"step_frames must be an int >= 0 (0: auto), got {step_frames!r}")
        self.step_frames = int(step_frames) or (2 if self._features.causal else 1)
        self._reach = self.model.receptive_field
        self._align = int(self.model.align)
        self._plan = _CodePlan.of(self.model)  # None: every window runs the whole network
        self._stacks = {}  # code level -> its layers run block by block (code plan only)
        self._branch_stages = None  # a refine branch run layer by layer (code plan only)
        if self._plan is not None:
            from .model.staged_blocks import StagedBlocks

            p = self._plan
            self._stacks["low"] = StagedBlocks(
                self.model.low, stride=p.s1, inputs=self._low_inputs, window_steps=max(1, self.window_frames // p.s1),
                conds=lambda a, b, frames: self._step_conds(a, b, frames, stride=p.s1))
            if p.hierarchical:
                self._stacks["high"] = StagedBlocks(
                    self.model.high, stride=p.s2, inputs=self._high_inputs,
                    window_steps=max(1, self.window_frames // p.s2),
                    conds=lambda a, b, frames: self._step_conds(a, b, frames, stride=p.s2, shift=p.causal))
        if self._plan is not None and self._plan.branch is not None:
            from .model.staged_regression import StagedRegression

            branch = self.model.refine_branch
            self._branch_stages = StagedRegression(branch, window_steps=max(1, self.window_frames // branch.config.stride))
        self._identity = 0
        self._emotion_text = bundle.default_emotion
        self._target = self._embed(self._emotion_text)
        self.set_sampling(temperature=temperature, seed=seed)
        self.reset()

    @classmethod
    def from_bundle(cls, bundle, *, device: str = "auto", precision: str = "auto", backend: str = "torch",
                    onnx_dir=None, encoder_options: dict | None = None, threads: int | None = None,
                    **options) -> "Engine":
        """An engine for a bundle folder (loaded on ``device``) or an already loaded Bundle.

        backend "torch": the PyTorch network, in ``precision`` (auto: fp16 on CUDA, fp32 on the
        CPU; see ``bundle.load_bundle``). backend "onnx": the exported graphs in onnxruntime
        (``onnx_backend``; ``onnx_dir`` holds or receives the export, ``threads`` per session,
        default torch's thread count). ``encoder_options`` as in ``load_bundle``.
        """
        from .bundle import BACKENDS, Bundle, load_bundle

        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
        if backend == "onnx":
            from .onnx_backend import load_onnx_bundle

            folder = bundle.folder if isinstance(bundle, Bundle) else Path(bundle)
            if folder is None:
                raise ValueError("backend 'onnx' needs a bundle folder (the graphs are exported from its files)")
            import torch

            bundle, model = load_onnx_bundle(
                folder, device=device, precision=precision, onnx_dir=onnx_dir, encoder_options=encoder_options,
                threads=threads or torch.get_num_threads(), window_s=options.get("window_s", 30.0))
            return cls(bundle, model=model, **options)
        if not isinstance(bundle, Bundle):
            bundle = load_bundle(Path(bundle), device=device, precision=precision, encoder_options=encoder_options)
        return cls(bundle, **options)

    # ------------------------------------------------------------------ settings

    @property
    def fps(self) -> float:
        return self.bundle.fps

    @property
    def latency_s(self) -> float:
        """Upper bound of (newest audio time - time of the last final frame) while audio streams in.

        Chunk wait + plan right context + feature interpolation (``StreamingFeatures.latency_s``)
        plus the model's lookahead and the frames a run waits for (``step_frames``); the soxr
        delay of non-16 kHz input (a few ms) comes on top.
        """
        return self._features.latency_s + (self.lookahead_frames + self.step_frames - 1) / self.fps

    @property
    def causal_features(self) -> bool:
        """Whether the speech features stream causally (``features.StreamingFeatures.causal``)."""
        return self._features.causal

    @property
    def lookahead_frames(self) -> int:
        """Frames of features after the newest final frame, at most (the model's lookahead, or
        the code plan's, which drops a few frames of the reach bound's slack)."""
        return self.model.lookahead if self._plan is None else self._plan.lookahead(self._align)

    @property
    def emotion(self) -> str:
        return self._emotion_text

    @property
    def identity(self) -> int:
        return self._identity

    def set_emotion(self, text: str | None) -> None:
        """New emotion text (None or blank: the bundle's default); blends in from the newest audio on.

        Any string is accepted: ``emotions.clean_text`` turns control characters into spaces,
        drops unpaired surrogates and cuts it at ``emotions.MAX_TEXT_CHARS``.
        """
        if text is not None and not isinstance(text, str):
            raise ValueError(f"emotion text must be a string, got {type(text).__name__}")
        text = clean_text(text)[0] if text else ""
        text = text or self.bundle.default_emotion
        new = self._embed(text)
        now = self._utt_base + self._frames_before_clock()
        if self._clock_samples == 0 or self.emotion_blend_s == 0:  # nothing to blend from yet
            self._blend = (now, new, new, 0)
        else:
            self._blend = (now, self._text_at(now), new, max(1, int(round(self.emotion_blend_s * self.fps))))
        self._emotion_text, self._target = text, new

    def set_identity(self, name: str | None) -> None:
        """Speaker by name (a training voice of the bundle); unknown names use row 0 with a warning."""
        self._identity = self.bundle.identity_index(name)

    def set_sampling(self, *, temperature: float = 0.0, seed: int | None = None) -> None:
        """Code sampling for the next windows: temperature 0 = argmax; ``seed`` restarts the generator."""
        _check_number(temperature, "temperature", minimum=0.0)
        if temperature > 0 and not self._sampling:
            raise ValueError("temperature > 0 needs a code predictor; this bundle holds a regression model")
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, np.integer))):
            raise ValueError(f"seed must be an int or None, got {seed!r}")
        self.temperature = float(temperature)
        self._generator = None
        if seed is not None:
            self._generator = self._torch.Generator(device=self._device)
            self._generator.manual_seed(int(seed))

    # ------------------------------------------------------------------ streaming

    def reset(self) -> None:
        """Forget the stream: clock and frame index back to 0; emotion and identity settings stay."""
        self._features.reset()
        self._resampler = None  # (rate, soxr.ResampleStream) for non-16 kHz input
        self._utt_base = 0  # stream index of the current utterance's frame 0
        self._clock_samples = 0  # samples of the current utterance that reached the encoder
        self._blend = (0, self._target, self._target, 0)  # (start frame, from, to, frames)
        self._clear_utterance()
        self._out: list[tuple[int, np.ndarray]] = []  # (first index, (n, 52) weights) not yet pulled
        self.stats = {"samples_in": 0, "nonfinite_samples": 0, "clipped_samples": 0, "frames": 0}

    def push(self, audio, sample_rate: float = SAMPLE_RATE) -> int:
        """Feed audio (any size, rate, dtype; 1-D or (samples, channels)); returns frames made final."""
        sample_rate = _check_rate(sample_rate)
        audio = self._sanitise(audio)
        if len(audio) == 0:
            return 0
        self.stats["samples_in"] += len(audio)
        made = self.stats["frames"]
        self._feed(self._resample(audio, sample_rate))
        return self.stats["frames"] - made

    def pull(self) -> list[Frame]:
        """Frames made final since the last pull, in order."""
        return [Frame(first + k, (first + k) / self.fps, w[k]) for first, w in self._take() for k in range(len(w))]

    def pull_arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Like ``pull`` as arrays: indices (n,) int64, times (n,) float64, weights (n, 52) float32."""
        parts = self._take()
        if not parts:
            return np.zeros(0, np.int64), np.zeros(0), np.zeros((0, NUM_BLENDSHAPES), np.float32)
        index = np.concatenate([np.arange(first, first + len(w), dtype=np.int64) for first, w in parts])
        return index, index / self.fps, np.concatenate([w for _, w in parts])

    def flush(self) -> int:
        """End of utterance: make every remaining frame final; returns how many. A no-op without audio."""
        made = self._finish_resampler()
        if self._clock_samples == 0:
            return made
        feats = self._features.flush()
        self._add_features(feats)
        made += self._run(final=True)
        self._utt_base += self._n_frames
        self._clock_samples = 0
        self._clear_utterance()
        return made

    def buffered(self) -> dict[str, int]:
        """Sizes of every internal buffer (samples or frames), for memory checks."""
        f = self._features.buffered()
        return {"audio": f["audio"], "features": f["features"], "model_frames": len(self._speech),
                "codes": len(self._high) + len(self._low), "branch_frames": len(self._branch),
                "unpulled_frames": sum(len(w) for _, w in self._out)}

    # ------------------------------------------------------------------ offline

    def animate(self, audio, sample_rate: float = SAMPLE_RATE, *, emotion: str | None = None,
                identity: str | None = None, seed: int | None = None,
                temperature: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
        """A whole clip: (times (n,), weights (n, 52)); resets the stream and leaves these settings."""
        sample_rate = _check_rate(sample_rate)
        self.set_sampling(temperature=temperature, seed=seed)
        self.set_identity(identity)
        self.reset()
        self.set_emotion(emotion)
        audio = self._sanitise(audio)  # once, so that pieces of a 2-D array are not re-read as channels
        step = max(1, int(self.window_frames / self.fps * sample_rate))  # pieces keep the buffers small
        for i in range(0, len(audio), step):
            self.push(audio[i:i + step], sample_rate)
        self.flush()
        _, times, weights = self.pull_arrays()
        return times, weights

    # ------------------------------------------------------------------ internals

    def _clear_utterance(self) -> None:
        """Model-side state of one utterance; indices below are utterance-local frames."""
        dim_s, dim_t = self.bundle.encoders.speech.feature_dim, self._target.shape[0]
        self._speech = np.zeros((0, dim_s), np.float32)  # features of frames [_buf_start, _n_frames)
        self._text = np.zeros((0, dim_t), np.float32)  # text embedding of the same frames
        self._buf_start = 0
        self._n_frames = 0  # frames whose features arrived
        self._frames_at_run = 0  # ... when the network last ran (step_frames)
        self._next_out = 0  # next frame to make final
        # Codes already drawn (code plan only): steps [_start, _start + len) of the utterance.
        self._trunk, self._trunk_start = self._torch.zeros(0), 0  # speech trunk steps (code plan), on the device
        self._high, self._high_start = np.zeros(0, np.int64), 0
        # Low steps: their code and, for a refining predictor, the state its correction reads.
        self._low, self._low_start = np.zeros(0, self._plan.low_steps if self._plan else np.int64), 0
        self._branch, self._branch_start = self._torch.zeros(0), 0  # a refine branch's motion per frame, on the device
        if self._branch_stages is not None:
            self._branch_stages.reset()
        for stack in self._stacks.values():
            stack.reset()
        self._final_frames = None

    def _embed(self, text: str) -> np.ndarray:
        return np.asarray(self.bundle.encoders.text.encode_one(text), np.float32)

    def _frames_before_clock(self) -> int:
        """Frames of the current utterance whose time lies before the newest audio."""
        return int(math.ceil(self._clock_samples * self.fps / SAMPLE_RATE - 1e-6)) if self._clock_samples else 0

    def _text_at(self, index) -> np.ndarray:
        """Text embedding of stream frame(s) ``index`` under the current blend."""
        start, old, new, frames = self._blend
        idx = np.atleast_1d(np.asarray(index, np.float64))
        w = np.ones_like(idx) if frames == 0 else np.clip((idx - start + 1) / frames, 0.0, 1.0)
        w = w.astype(np.float32)[:, None]
        out = old[None, :] * (1.0 - w) + new[None, :] * w
        return out if np.ndim(index) else out[0]

    def _sanitise(self, audio) -> np.ndarray:
        x = np.asarray(audio)
        if x.ndim == 0 or x.ndim > 2:
            raise ValueError(f"audio must be 1-D (samples) or 2-D (samples, channels), got shape {x.shape}")
        if x.size == 0:
            return np.zeros(0, np.float32)
        if x.dtype.kind == "b":
            x = x.astype(np.float32)
        elif x.dtype.kind == "u":  # unsigned PCM: mid-scale is silence
            half = float(2 ** (8 * x.dtype.itemsize - 1))
            x = (x.astype(np.float64) - half) / half
        elif x.dtype.kind == "i":
            x = x.astype(np.float64) / float(2 ** (8 * x.dtype.itemsize - 1))
        elif x.dtype.kind == "c" or x.dtype.kind not in "f":
            raise ValueError(f"audio must be real numbers, got dtype {x.dtype}")
        with np.errstate(over="ignore", invalid="ignore"):  # overflow and NaN are handled below
            if x.ndim == 2:  # channels are the short axis when it is <= 8 long, else axis 1
                axis = 0 if (x.shape[0] <= 8 and x.shape[0] < x.shape[1]) else 1
                x = x.mean(axis=axis, dtype=np.float64)
            x = np.asarray(x, np.float32)
        bad = ~np.isfinite(x)
        if bad.any():
            self.stats["nonfinite_samples"] += int(bad.sum())
            x = np.where(bad, np.float32(0.0), x)
        loud = np.abs(x) > 1.0  # float PCM beyond full scale (integer PCM cannot be)
        if loud.any():
            self.stats["clipped_samples"] += int(loud.sum())
            x = np.clip(x, np.float32(-1.0), np.float32(1.0))
        return x

    def _resample(self, audio: np.ndarray, rate) -> np.ndarray:
        """To 16 kHz with a streaming soxr resampler (the same samples as one soxr pass over the clip)."""
        if self._resampler is not None and self._resampler[0] != rate:
            self._finish_resampler()
        if rate == SAMPLE_RATE:
            return audio
        if self._resampler is None:
            import soxr

            self._resampler = (rate, soxr.ResampleStream(rate, SAMPLE_RATE, 1, dtype="float32", quality="HQ"))
        return self._resampler[1].resample_chunk(audio, last=False)

    def _finish_resampler(self) -> int:
        """Feed the resampler's delayed tail (end of utterance or a change of input rate)."""
        if self._resampler is None:
            return 0
        _, stream = self._resampler
        self._resampler = None
        return self._feed(stream.resample_chunk(np.zeros(0, np.float32), last=True))

    def _feed(self, audio16k: np.ndarray) -> int:
        if len(audio16k) == 0:
            return 0
        self._clock_samples += len(audio16k)
        feats = self._features.push(audio16k)
        if len(feats) == 0:  # no new frame of speech: nothing can become final (most small pieces)
            return 0
        self._add_features(feats)
        if self._n_frames - self._frames_at_run < self.step_frames:
            return 0
        self._frames_at_run = self._n_frames
        return self._run(final=False)

    def _add_features(self, feats: np.ndarray) -> None:
        if len(feats) == 0:
            return
        first = self._utt_base + self._n_frames
        text = self._text_at(np.arange(first, first + len(feats)))
        self._speech = np.concatenate([self._speech, feats])
        self._text = np.concatenate([self._text, text])
        self._n_frames += len(feats)

    def _run(self, *, final: bool) -> int:
        """Make final every frame whose lookahead is covered (all of them when ``final``).

        In inference mode, not just without gradients: no version counters or view tracking on
        the few thousand small tensor operations of a piece (1-3 ms of 27-40 per 0.96 s chunk
        of the default model, measured in turn). Every kept tensor is made and read in here."""
        with self._torch.inference_mode():
            return self._run_network(final=final)

    def _run_network(self, *, final: bool) -> int:
        if self._plan is not None:
            return self._run_codes(final=final)
        stop = self._n_frames if final else self._n_frames - self.model.lookahead
        made = 0
        while self._next_out < stop:
            e = self._next_out
            s = min(stop, e + self.window_frames)
            a = max(0, e - self._reach.left) // self._align * self._align
            b = self._n_frames if final and s == stop else min(self._n_frames, s + self._reach.right)
            weights = self._predict(a, b)[e - a:s - a]
            self._out.append((self._utt_base + e, weights))
            self._next_out = s
            made += s - e
            self._drop_before(max(0, s - self._reach.left) // self._align * self._align)
        self.stats["frames"] += made
        return made

    def _run_codes(self, *, final: bool) -> int:
        """``_run`` for a code predictor: each trunk step and code is computed once and kept
        until nothing reads it.

        Four stages, each in windows only as wide as its own reach (``_CodePlan``): trunk steps
        from speech, high codes from the trunk, low codes from the trunk and the high codes,
        frames from both codes; a refine head's speech branch is a fifth, its motion per frame
        from speech. The code levels and the branch run their layers block by block. A step is
        computed once its reach of input exists; a window's edges are farther than the stage's
        reach from what is kept of it, so the numbers are those of one pass over the whole
        utterance (as in ``_run``), at a fraction of the cost of running the whole network over
        ``receptive_field`` for every piece.
        """
        p, n = self._plan, self._n_frames
        trunk_n, high_n, low_n, stop = p.ready(n, final=final, align=self._align)
        self._trunk = self._extend(self._trunk, self._trunk_start, trunk_n, p.s1, p.trunk, self._speech_trunk, _cat,
                                   final=final)
        self._final_frames = n if final else None  # the ended utterance's length, for the stacks' masks
        if p.hierarchical:
            self._high = self._draw("high", self._high, self._high_start, high_n, final=final)
        self._low = self._draw("low", self._low, self._low_start, low_n, final=final)
        if p.branch is not None:  # layer by layer, each inner step once (model/staged_regression.py)
            self._branch = _cat(self._branch, self._branch_stages.advance(self._window_inputs, n, final=final))
            stop = min(stop, self._branch_start + len(self._branch))  # never binds: ready() leaves its reach
        made = 0
        while self._next_out < stop:
            e = self._next_out
            s = min(stop, e + self.window_frames)
            a = self._window_start(e - p.decode.left)
            b = n if final and s == stop else min(n, s - 1 + p.decode.right + 1)
            self._out.append((self._utt_base + e, self._decode(a, b)[e - a:s - a]))
            self._next_out = s
            made += s - e
        # Keep what the next window of each stage reads.
        trunk_from = self._window_start(p.s1 * (self._trunk_start + len(self._trunk)) - p.trunk.left)
        decode_from = self._window_start(self._next_out - p.decode.left)
        low = self._stacks["low"]
        low.drop_before(self._low_start + len(self._low))  # its output is drawn into codes
        trunk_keep, frames_from = low.needs_input_from(), min(trunk_from, decode_from, low.needs_frames_from())
        if p.hierarchical:
            high, f = self._stacks["high"], p.s2 // p.s1
            high.drop_before(self._high_start + len(self._high))
            shift = 1 if p.causal else 0  # a causal high step reads the step before it (_high_inputs)
            trunk_keep = min(trunk_keep, f * max(0, high.needs_input_from() - shift))
            frames_from = min(frames_from, max(0, high.needs_frames_from() - shift * p.s2))
            first_high = low.needs_input_from() // f if p.causal else _floor_step(low.needs_input_from(), f)
            high_keep = min(decode_from // p.s2, max(0, first_high))  # see _low_inputs
            self._high, self._high_start = _drop_codes(self._high, self._high_start, high_keep)
        self._trunk, self._trunk_start = _drop_codes(self._trunk, self._trunk_start, trunk_keep)
        self._low, self._low_start = _drop_codes(self._low, self._low_start, decode_from // p.s1)
        if p.branch is not None:  # the frames it reads for its next rows; rows before the next output go
            frames_from = min(frames_from, self._window_start(self._branch_stages.frames_needed_from()))
            self._branch, self._branch_start = _drop_codes(self._branch, self._branch_start, self._next_out)
        self._drop_before(frames_from)
        self.stats["frames"] += made
        return made

    def _extend(self, kept, start: int, target: int, stride: int, reach, compute, append, *, final: bool):
        """``kept`` (steps [start, start + len) of a stage) extended to ``target`` steps, computed
        by ``compute(a, b)`` over frame windows [a, b) that reach far enough for every new step."""
        n = self._n_frames
        while start + len(kept) < target:
            i0 = start + len(kept)
            i1 = min(target, i0 + max(1, self.window_frames // stride))
            a = self._window_start(stride * i0 - reach.left)
            b = n if final and i1 == target else min(n, stride * (i1 - 1) + reach.right + 1)
            kept = append(kept, compute(a, b)[i0 - a // stride:i1 - a // stride])
        return kept

    def _window_start(self, frame: int) -> int:
        return max(0, frame) // self._align * self._align

    def _window_codes(self, level: str, a: int, b: int) -> np.ndarray:
        """Codes of ``level`` on the window [a, b)'s step grid; 0 stands in for codes not drawn
        yet (only window edges that no kept output reads lie there)."""
        stride = self._plan.s2 if level == "high" else self._plan.s1
        codes, start = (self._high, self._high_start) if level == "high" else (self._low, self._low_start)
        first, steps = a // stride, -(-(b - a) // self._align) * self._align // stride
        assert first >= start, "a code this window reads was dropped"  # the keep rules of _run_codes
        out = np.zeros(steps, codes.dtype)
        known = codes[first - start:first - start + steps]
        out[:len(known)] = known
        return out

    def _speech_trunk(self, a: int, b: int):
        """The model's speech trunk over the frames [a, b), (steps, dim) on the device."""
        speech, text, identity = self._window_inputs(a, b, speech=True)
        return self.model.speech_trunk(speech, text, identity)[0]

    def _window_inputs(self, a: int, b: int, *, speech: bool = False):
        """Batched (speech or None, text, identity) of the frames [a, b) for the model."""
        torch = self._torch
        i, j = a - self._buf_start, b - self._buf_start
        assert i >= 0, "a frame this window reads was dropped"  # the keep rules of _run_codes
        text = torch.from_numpy(self._text[i:j]).to(self._device)[None]
        feats = torch.from_numpy(self._speech[i:j]).to(self._device)[None] if speech else None
        return feats, text, torch.tensor([self._identity], device=self._device)

    def _draw(self, level: str, kept: np.ndarray, start: int, goal: int, *, final: bool) -> np.ndarray:
        """``kept`` codes of ``level`` extended to ``goal`` steps: the level's layers run block by
        block (``model/staged_blocks.py``), then its head draws the new steps' codes."""
        have = start + len(kept)
        if goal <= have:
            return kept
        stack = self._stacks[level]
        stack.extend(goal, total=goal if final else None, frames=self._n_frames if final else None)
        hidden = stack.rows(have, goal)
        codes = self.model.codes_of_hidden(level, hidden[None], temperature=self.temperature,
                                           generator=self._generator)[0].cpu().numpy()
        if level == "high":
            return _append(kept, codes)
        steps = np.zeros(len(codes), self._plan.low_steps)
        steps["code"] = codes
        if self._plan.hidden_size:  # the state the refine head reads per low step
            steps["hidden"] = hidden.to("cpu", self._torch.float32).numpy()
        return _append(kept, steps)

    def _trunk_rows(self, a: int, b: int):
        i, j = a - self._trunk_start, b - self._trunk_start
        assert i >= 0 and j <= len(self._trunk), f"trunk steps [{a}, {b}) not kept"  # the keep rules of _run_codes
        return self._trunk[i:j]

    def _real_steps(self, a: int, b: int, stride: int):
        """(b - a,) mask of steps with a real frame: all of them until the utterance has ended."""
        mask = self._torch.ones(b - a, dtype=self._torch.bool, device=self._device)
        if self._final_frames is not None:
            mask[max(0, -(-self._final_frames // stride) - a):] = False
        return mask

    def _high_inputs(self, a: int, b: int):
        """The high layers' input of high steps [a, b): the trunk pooled over each step's low steps
        (a causal model's: over the step before's, zeros before the first; VQVAEConfig.causal)."""
        from .model.layers import pool_time

        p = self._plan
        f = p.s2 // p.s1
        if not p.causal:
            return pool_time(self._trunk_rows(f * a, f * b)[None], self._real_steps(f * a, f * b, p.s1)[None], f)[0]
        lo, hi = max(0, a - 1), b - 1
        rows = pool_time(self._trunk_rows(f * lo, f * hi)[None], self._real_steps(f * lo, f * hi, p.s1)[None], f)[0]
        return _cat(rows.new_zeros((1, rows.shape[1])), rows) if a == 0 else rows

    def _low_inputs(self, a: int, b: int):
        """The low layers' input of low steps [a, b): the trunk plus the high codes' vectors,
        interpolated between high-step centres as ``CodePredictor._low_hidden`` does."""
        x = self._trunk_rows(a, b)
        p = self._plan
        if not p.hierarchical:
            return x
        from .model.layers import upsample_linear

        f = p.s2 // p.s1
        if p.causal:  # low step j reads the high step it lies in, held (layers.upsample_held)
            ha, hb = a // f, (b - 1) // f + 1
            assert ha >= self._high_start and hb <= self._high_start + len(self._high), \
                "a high code the low layers read is not kept or not drawn"  # see _run_codes
            codes = self._torch.from_numpy(self._high[ha - self._high_start:hb - self._high_start]).to(self._device)
            held = self.model.code_in(self.model.vqvae.vq_high.lookup(codes)).repeat_interleave(f, dim=0)
            return x + held[a - f * ha:b - f * ha] * self._real_steps(a, b, p.s1)[:, None]
        # Low step j lies at u = (j + 0.5) / f - 0.5 high steps and reads high steps floor(u), floor(u) + 1.
        ha, need = max(0, _floor_step(a, f)), _floor_step(b - 1, f) + 2
        hb = min(need, self._high_start + len(self._high))
        real_high = hb if self._final_frames is None else -(-self._final_frames // p.s2)  # clamped at the last real one
        assert ha >= self._high_start, "a high code the low layers read was dropped"  # see _run_codes
        assert self._final_frames is not None or hb == need, "a high code the low layers read is not drawn"
        codes = self._torch.from_numpy(self._high[ha - self._high_start:hb - self._high_start]).to(self._device)
        vectors = self.model.code_in(self.model.vqvae.vq_high.lookup(codes))[None]
        up = upsample_linear(vectors, f, self._torch.tensor([min(real_high, hb) - ha], device=self._device))[0]
        return x + up[a - f * ha:b - f * ha] * self._real_steps(a, b, p.s1)[:, None]

    def _step_conds(self, a: int, b: int, frames: int | None, *, stride: int, shift: bool = False):
        """The model's conditions pooled over steps [a, b) of ``stride`` frames (``frames``: the
        ended utterance's length, whose padded end is left out of the pooling); with ``shift``,
        each step gets the step before's (zeros before the first), as a causal model's high level."""
        from .model.layers import pool_time
        from .model.staged_blocks import step_conditions

        if shift:
            rows = self._step_conds(max(0, a - 1), b - 1, frames, stride=stride) if b - 1 > max(0, a - 1) else None
            if a > 0:
                return rows
            zero = self.model.conditioner.null_text.new_zeros((1, self.model.conditioner.null_text.shape[0]))
            return zero if rows is None else _cat(zero, rows)
        mask, cond = step_conditions(self.model.conditioner, self._window_inputs, a, b, stride=stride, frames=frames)
        return pool_time(cond, mask, stride)[0]

    def _decode(self, a: int, b: int) -> np.ndarray:
        """Frames [a, b) decoded from the drawn codes (and corrected, by a refining predictor)."""
        torch = self._torch
        speech, text, identity = self._window_inputs(a, b, speech=True)
        steps = self._window_codes("low", a, b)
        low = torch.from_numpy(steps["code"]).to(self._device)[None]
        high = torch.from_numpy(self._window_codes("high", a, b)).to(self._device)[None] \
            if self._plan.hierarchical else None
        hidden = torch.from_numpy(steps["hidden"]).to(self._device)[None] if self._plan.hidden_size else None
        codes = {"low": low, "high": high, "hidden": hidden}
        if self._plan.branch is not None:  # rows only for the frames kept from this window; the rest read none
            branch = self._branch.new_zeros((b - a, self._branch.shape[1]))
            i, j = max(a, self._branch_start), min(b, self._branch_start + len(self._branch))
            branch[i - a:j - a] = self._branch[i - self._branch_start:j - self._branch_start]
            codes["branch"] = branch[None]
        out = self.model.decode(codes, speech, text, identity)
        return out[0].detach().to("cpu", torch.float32).numpy()

    def _predict(self, a: int, b: int) -> np.ndarray:
        torch = self._torch
        i, j = a - self._buf_start, b - self._buf_start
        speech = torch.from_numpy(self._speech[i:j]).to(self._device)
        text = torch.from_numpy(self._text[i:j]).to(self._device)
        if self._sampling:
            out = self.model.predict(speech, text, self._identity, temperature=self.temperature,
                                     generator=self._generator)
        else:
            out = self.model.predict(speech, text, self._identity)
        return out.detach().to("cpu", torch.float32).numpy()

    def _drop_before(self, frame: int) -> None:
        drop = frame - self._buf_start
        if drop > 0:
            self._speech = self._speech[drop:]
            self._text = self._text[drop:]
            self._buf_start = frame

    def _take(self) -> list[tuple[int, np.ndarray]]:
        out, self._out = self._out, []
        return out


@dataclass(frozen=True)
class _CodePlan:
    """Where each stage of a code predictor reads, in frames around an output's anchor."""

    hierarchical: bool
    trunk: "Reach"  # speech -> trunk step (low rate)
    s1: int  # frames per low code
    s2: int  # frames per high code (s1 for one level)
    high: "Reach | None"  # speech -> high code
    low: "Reach"  # speech, and high-code anchors -> low code (the wider of the two)
    low_on_high: "Reach"  # high-code anchors -> low code
    decode: "Reach"  # code anchors and text -> frame
    hidden_size: int = 0  # a refining predictor's state per low step (``CodePredictor.decode``), else 0
    branch: "Reach | None" = None  # speech -> a refine branch's motion of a frame, else None
    causal: bool = False  # VQVAEConfig.causal: a high step is drawn from the step before, held over its frames

    @property
    def low_steps(self) -> np.dtype:
        """What the engine keeps per low step: the code and the state its frames' correction reads."""
        return np.dtype([("code", np.int64), ("hidden", np.float32, (self.hidden_size,))])

    @classmethod
    def of(cls, model) -> "_CodePlan | None":
        """The plan of a torch ``CodePredictor``; None for other models (one network call per window)."""
        if not hasattr(model, "codes_of_hidden"):
            return None
        from .model.layers import Reach

        fields, v = model.code_receptive_fields, model.vqvae.config
        hierarchical = bool(model.hierarchical)
        on_high = fields.get("low_on_high", Reach())
        return cls(hierarchical=hierarchical, trunk=fields["trunk"], s1=v.low_stride,
                   s2=v.high_stride if hierarchical else v.low_stride, high=fields.get("high"),
                   low=fields["low_given_high"].max(on_high), low_on_high=on_high,
                   decode=model.vqvae.decode_receptive_field, hidden_size=model.config.dim if model.refines else 0,
                   branch=None if model.refine_branch is None else model.refine_branch.receptive_field,
                   causal=bool(getattr(v, "causal", False)))

    def lookahead(self, align: int) -> int:
        """The most frames of speech after the newest frame that ``ready`` makes final (the
        pattern repeats every ``align`` frames, once past the utterance's start)."""
        start = 8 * (self.decode.right + self.low.right + (self.high.right if self.hierarchical else 0) + align)
        return max(n - self.ready(n, final=False, align=align)[3] for n in range(start, start + 2 * align))

    def ready(self, frames: int, *, final: bool, align: int) -> tuple[int, int, int, int]:
        """(trunk steps, high codes, low codes, frames) of an utterance that can be final with
        ``frames`` of speech."""
        if final:
            padded = -(-frames // align) * align
            return padded // self.s1, padded // self.s2, padded // self.s1, frames
        trunk = max(0, (frames - 1 - self.trunk.right) // self.s1 + 1)
        high = max(0, (frames - 1 - self.high.right) // self.s2 + 1) if self.hierarchical else 0
        low = max(0, (frames - 1 - self.low.right) // self.s1 + 1)
        if self.hierarchical:  # and the high codes it reads are drawn
            low = min(low, max(0, (self.s2 * high - 1 - self.low_on_high.right) // self.s1 + 1))
        stop = self.s1 * low - self.decode.right
        if self.hierarchical:
            stop = min(stop, self.s2 * high - self.decode.right)
        if self.branch is not None:
            stop = min(stop, frames - self.branch.right)
        return trunk, high, low, max(0, min(frames, stop))


def _floor_step(j: int, f: int) -> int:
    """floor((j + 0.5) / f - 0.5): the coarse step at or before fine step ``j``'s centre (``upsample_linear``)."""
    return (2 * j + 1 - f) // (2 * f)


def _append(kept: np.ndarray, new: np.ndarray) -> np.ndarray:
    return np.concatenate([kept, new])


def _cat(kept, new):
    """Kept rows (a tensor on the device) followed by new ones."""
    import torch  # already loaded by the engine; imported here so that this module does not need it

    return torch.cat([kept, new]) if len(kept) else new


def _drop_codes(codes: np.ndarray, start: int, keep_from: int) -> tuple[np.ndarray, int]:
    drop = min(len(codes), keep_from - start)
    return (codes[drop:], start + drop) if drop > 0 else (codes, start)


def _check_number(value, name: str, *, minimum: float) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) \
            or not math.isfinite(value) or value < minimum:
        raise ValueError(f"{name} must be a finite number >= {minimum:g}, got {value!r}")


def _check_rate(rate) -> float:
    if isinstance(rate, bool) or not isinstance(rate, (int, float, np.integer, np.floating)) \
            or not math.isfinite(rate) or not MIN_SAMPLE_RATE <= rate <= MAX_SAMPLE_RATE:
        raise ValueError(f"sample_rate must be a number of Hz in [{MIN_SAMPLE_RATE}, {MAX_SAMPLE_RATE}], "
                         f"got {rate!r}")
    return float(rate) if not float(rate).is_integer() else int(rate)
