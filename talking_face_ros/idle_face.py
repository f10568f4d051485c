"""The face between utterances: resting habit, the current emotion, blinks and gaze, forever.

The node must never show a frozen face, and it runs for hours on a small CPU, so the face at
rest comes from the procedural teacher's own layers, not from the network fed silence:

* cost: a frame here is a few vector operations (tens of microseconds); the engine fed silence
  would run the speech encoder and predictor around the clock (about a tenth of a core for
  Moonshine alone) to draw a face that is not speaking;
* behaviour: the teacher's blinks and gaze are what the corpus, and so the model, was taught;
  an untrained or young model need not blink at all, while this face always does.

It is the teacher's silent face (``teacher.phonemes_to_blendshapes`` with no phonemes, away from
the clip's onset and end) made endless: blink and gaze events are drawn incrementally from the
same renewal processes, and the slow wobbles are sinusoids drawn once and evaluated at any time.
Memory stays constant however long it runs: events are forgotten once they are over.

``EmotionLabels`` maps free emotion text to the MEAD (emotion, intensity) the idle face shows and
the frame reports: exact corpus phrasings first, otherwise the nearest labelled phrasings in the
text encoder's embedding space.
"""
from __future__ import annotations

import math
from collections import Counter, OrderedDict

import numpy as np

from .arkit import NUM_BLENDSHAPES
from .corpus.emotion_text import all_labelled, lookup
from .emotions import check as check_emotion
from .style import SpeakingStyle
from .teacher import expression
from .teacher.coarticulation import event_envelope
from .teacher.eyes import (BLINK_CLOSE_S, BLINK_HOLD_S, BLINK_OPEN_S, BLINK_REFRACTORY_S, BLINK_SHAPE,
                           DRIFT, FIXATION_MEAN_S, GAZE_LIMIT, GAZE_SPREAD, LID_FOLLOWS_GAZE, SACCADE_S)
from .teacher.motion import apply_style
from .teacher.visemes import columns

_BLINK = np.array(columns("eyeBlink"))
_WIDE = np.array(columns("eyeWide"))
_GAZE_REFRACTORY_S = 0.3  # as teacher.eyes.gaze
_GAZE_SHAPE = 3.0
CACHE_SIZE = 256  # emotion texts whose labels are remembered


class _Renewal:
    """Gamma renewal events (teacher.eyes._renewal_times), drawn as far ahead as asked."""

    def __init__(self, rng: np.random.Generator, *, mean: float, refractory: float, shape: float):
        self.rng = rng
        self.refractory = min(refractory, 0.5 * mean)
        self.scale = (mean - self.refractory) / shape
        self.shape = shape
        # Entered at a random point of the first interval, as the teacher does.
        first = self.refractory + rng.gamma(shape, self.scale)
        self.next_time = first * (1.0 - rng.uniform())

    def until(self, end: float) -> list[float]:
        """Event times from the last call's end up to ``end`` (exclusive)."""
        out = []
        while self.next_time < end:
            out.append(self.next_time)
            self.next_time += self.refractory + self.rng.gamma(self.shape, self.scale)
        return out


class _SlowNoise:
    """``expression.slow_noise`` with its frequencies and phases fixed, evaluated at any time."""

    def __init__(self, rng: np.random.Generator, *, low: float, high: float, parts: int = 3):
        self.freq = rng.uniform(low, high, parts)
        self.phase = rng.uniform(0.0, 2.0 * np.pi, parts)

    def __call__(self, times: np.ndarray) -> np.ndarray:
        parts = len(self.freq)
        waves = np.sin(2.0 * np.pi * np.outer(times, self.freq) + self.phase)
        return waves.sum(axis=1) / np.sqrt(parts * 0.5) / 2.0


def _smoothstep(x):
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3.0 - 2.0 * x)


class IdleFace:
    """ARKit weights of a face at rest for any non-decreasing sequence of times (seconds)."""

    def __init__(
        self,
        *,
        style: SpeakingStyle = SpeakingStyle(),  # resting smile/width habit and blink rate
        seed: int = 0,  # blinks, gaze and wobble
        emotion: str = "neutral",  # MEAD emotion shown at start
        intensity: int = 1,  # 1..3
        blend_s: float = 0.5,  # an emotion change eases in over this long
    ):
        check_emotion(emotion, intensity)
        if not (math.isfinite(blend_s) and blend_s >= 0):
            raise ValueError(f"blend_s must be a finite number of seconds >= 0, got {blend_s!r}")
        self.style = style
        self.blend_s = float(blend_s)
        self.rest = apply_style(np.zeros((1, NUM_BLENDSHAPES)), style)[0]
        # One generator per random process, so that the face is the same however the time
        # axis is split into calls.
        rng = [np.random.default_rng([seed, stream]) for stream in range(8)]
        self._wobble = (_SlowNoise(rng[0], low=0.15, high=0.6), _SlowNoise(rng[1], low=0.15, high=0.6))
        self._drift = (_SlowNoise(rng[2], low=0.05, high=0.3), _SlowNoise(rng[3], low=0.05, high=0.3))
        self._blinks = None
        if style.blink_rate >= 1e-3:  # as teacher.eyes.blinks: fewer than one in 15 minutes is none
            self._blinks = _Renewal(rng[4], mean=1.0 / style.blink_rate,
                                    refractory=BLINK_REFRACTORY_S, shape=BLINK_SHAPE)
        self._depth_rng = rng[5]
        self._blink_events: list[tuple[float, float]] = []  # (lids shut at, depth)
        self._jumps = _Renewal(rng[6], mean=FIXATION_MEAN_S, refractory=_GAZE_REFRACTORY_S, shape=_GAZE_SHAPE)
        self._target_rng = rng[7]
        self._fixations: list[tuple[float, np.ndarray]] = [(-math.inf, np.zeros(2))]  # looks ahead first
        self._layer_from = self._layer_to = expression.expression_layer(emotion, intensity).astype(np.float64)
        self._change_at = -math.inf
        self.emotion = (emotion, intensity)
        self._last_time = -math.inf

    def set_emotion(self, emotion: str, intensity: int, *, at: float) -> None:
        """Ease toward ``emotion`` from time ``at`` on (seconds, on the times given to ``frames``)."""
        check_emotion(emotion, intensity)
        self._layer_from = self._layer_at(np.array([at]))[0]
        self._layer_to = expression.expression_layer(emotion, intensity).astype(np.float64)
        self._change_at = float(at)
        self.emotion = (emotion, intensity)

    def frames(self, times) -> np.ndarray:
        """``(len(times), 52)`` float32 in [0, 1]; times must be sorted and not before earlier calls."""
        times = np.asarray(times, dtype=np.float64).reshape(-1)
        if len(times) == 0:
            return np.zeros((0, NUM_BLENDSHAPES), np.float32)
        if not np.all(np.isfinite(times)) or np.any(np.diff(times) < 0):
            raise ValueError("IdleFace.frames: times must be finite and sorted")
        if times[0] < self._last_time - 1e-9:
            raise ValueError(f"IdleFace.frames: time {times[0]:.6f} s is before an earlier frame "
                             f"({self._last_time:.6f} s); the face only moves forward")
        self._last_time = float(times[-1])
        face = np.repeat(self.rest[None, :], len(times), axis=0)
        level = 1.0 + expression.FLUCTUATION * np.clip(
            np.stack([w(times) for w in self._wobble], axis=1), -1.0, 1.0)
        face = self._apply_layer(face, times, level)
        face = expression.soft_add(face, self._eyes(times))
        lids = face[:, _BLINK].max(axis=1, keepdims=True)
        face[:, _WIDE] *= 1.0 - lids  # a closing lid cannot be held wide (as the teacher)
        return np.clip(face, 0.0, 1.0).astype(np.float32)

    # ------------------------------------------------------------------ layers

    def _layer_at(self, times: np.ndarray) -> np.ndarray:
        if self.blend_s > 0:
            mix = _smoothstep((times - self._change_at) / self.blend_s)[:, None]
        else:
            mix = (times >= self._change_at).astype(np.float64)[:, None]
        return self._layer_from[None, :] + (self._layer_to - self._layer_from)[None, :] * mix

    def _apply_layer(self, face, times, level):
        settled = times[0] >= self._change_at + self.blend_s or times[-1] < self._change_at
        layers = self._layer_at(times[:1] if settled else times)
        if settled:  # one layer for all: the teacher's own call
            return expression.apply(face, layers[0], level)
        return np.concatenate([expression.apply(face[i:i + 1], layers[i], level[i:i + 1])
                               for i in range(len(times))])

    def _eyes(self, times: np.ndarray) -> np.ndarray:
        """Blinks and gaze as teacher.eyes.eye_layer, from incrementally drawn events."""
        out = np.zeros((len(times), NUM_BLENDSHAPES))
        g = self._gaze(times)
        left, right = np.maximum(g[:, 0], 0.0), np.maximum(-g[:, 0], 0.0)
        up, down = np.maximum(g[:, 1], 0.0), np.maximum(-g[:, 1], 0.0)
        for names, value in ((("eyeLookOutLeft", "eyeLookInRight"), left),
                             (("eyeLookInLeft", "eyeLookOutRight"), right),
                             (("eyeLookUpLeft", "eyeLookUpRight"), up),
                             (("eyeLookDownLeft", "eyeLookDownRight"), down)):
            out[:, columns(*names)] = value[:, None]
        lid = self._blink_level(times)
        lid = lid + LID_FOLLOWS_GAZE * down * (1.0 - lid)
        out[:, _BLINK] = lid[:, None]
        return out

    def _blink_level(self, times: np.ndarray) -> np.ndarray:
        if self._blinks is None:
            return np.zeros(len(times))
        for shut in self._blinks.until(times[-1] + BLINK_CLOSE_S):
            self._blink_events.append((shut, self._depth_rng.uniform(0.85, 1.0)))
        # Forget blinks that have reopened before the earliest time still to come.
        self._blink_events = [e for e in self._blink_events if e[0] + BLINK_HOLD_S + BLINK_OPEN_S >= times[0]]
        if not self._blink_events:
            return np.zeros(len(times))
        shut = np.array([e[0] for e in self._blink_events])
        depth = np.array([e[1] for e in self._blink_events])
        return event_envelope(times, shut, shut + BLINK_HOLD_S, rise=BLINK_CLOSE_S, fall=BLINK_OPEN_S,
                              amplitude=depth)

    def _gaze(self, times: np.ndarray) -> np.ndarray:
        """Fixations joined by smoothstep saccades, plus slow drift (teacher.eyes.gaze)."""
        for jump in self._jumps.until(times[-1] + 1e-9):
            target = np.clip(self._target_rng.normal(0.0, GAZE_SPREAD, size=2), -GAZE_LIMIT, GAZE_LIMIT)
            self._fixations.append((jump, target))
        # Keep the fixation in force at times[0] and the one before it (its saccade's start).
        jumps = np.array([f[0] for f in self._fixations])
        current = int(np.searchsorted(jumps, times[0], side="right")) - 1
        self._fixations = self._fixations[max(current - 1, 0):]
        jumps = np.array([f[0] for f in self._fixations])
        targets = np.stack([f[1] for f in self._fixations])
        k = np.searchsorted(jumps, times, side="right") - 1  # fixation in force at each time
        since = times - jumps[k]
        x = np.clip(since / SACCADE_S, 0.0, 1.0)
        progress = (x * x * (3.0 - 2.0 * x))[:, None]
        previous = targets[np.maximum(k - 1, 0)]
        out = previous + (targets[k] - previous) * progress
        drift = np.stack([d(times) for d in self._drift], axis=1)
        return out + DRIFT * drift


# ---------------------------------------------------------------------------------------------
# Emotion text -> MEAD label


class EmotionLabels:
    """Free emotion text -> (MEAD emotion, intensity) for the idle face and the frame's label.

    Exact corpus phrasings map to the class they were written for. Any other text takes the
    majority class of its ``k`` nearest labelled phrasings by cosine similarity of the text
    encoder's embeddings (the encoder the model was trained with, so "nearest" means what the
    model reads as near); the phrasings are embedded once, on first need.
    """

    def __init__(self, text_encoder=None, *, k: int = 5):  # text_encoder: encode(list[str]) -> (n, d)
        self.text_encoder = text_encoder
        self.k = int(k)
        self._bank = None  # (unit embeddings (n, d), labels list)
        self._cache: OrderedDict[str, tuple[str, int]] = OrderedDict()  # bounded: texts may be endless

    def __call__(self, text: str) -> tuple[str, int]:
        known = lookup(text)
        if known is not None:
            return known
        if text in self._cache:
            return self._cache[text]
        if self.text_encoder is None:
            raise ValueError(f"emotion text {text!r} is not a corpus phrasing and no text encoder "
                             "was given to map it to an emotion")
        bank, labels = self._phrasing_bank()
        query = _unit(np.asarray(self.text_encoder.encode([text]), dtype=np.float64))[0]
        nearest = np.argsort(-(bank @ query), kind="stable")[: self.k]
        votes = Counter(labels[i] for i in nearest)
        best = max(votes.values())
        # Ties go to the class of the single nearest phrasing among the tied ones.
        label = next(labels[i] for i in nearest if votes[labels[i]] == best)
        self._cache[text] = label
        if len(self._cache) > CACHE_SIZE:
            self._cache.popitem(last=False)
        return label

    def warm_up(self) -> None:
        """Embed the labelled phrasings now (seconds), not at the first unknown text."""
        if self.text_encoder is not None:
            self._phrasing_bank()

    def _phrasing_bank(self):
        if self._bank is None:
            labelled = all_labelled(split="all")
            texts = [t for t, _, _ in labelled]
            self._bank = (_unit(self._embed_bank(texts)), [(e, i) for _, e, i in labelled])
        return self._bank

    def _embed_bank(self, texts: list[str]) -> np.ndarray:
        """The phrasings' embeddings, from the disk cache when this encoder made them before.

        Embedding 500 phrasings takes seconds on a small CPU, too long for the node's start-up; an
        encoder with a ``cache_key`` (same weights, same settings) gives the same vectors every time.
        """
        key = getattr(self.text_encoder, "cache_key", None)
        path = phrasings_cache_path(key, texts) if key else None
        if path is not None:
            try:
                emb = np.load(path, allow_pickle=False)
                if emb.ndim == 2 and len(emb) == len(texts) and np.isfinite(emb).all():
                    return emb.astype(np.float64)
            except (OSError, ValueError):
                pass  # absent or damaged: embed again and rewrite
        emb = np.asarray(self.text_encoder.encode(texts), dtype=np.float64)
        if path is not None:
            import io

            from .cache_dir import write_atomically

            buf = io.BytesIO()
            np.save(buf, emb.astype(np.float32), allow_pickle=False)
            try:
                write_atomically(path, buf.getvalue())
            except OSError:
                pass  # a read-only home only costs the next start-up the same seconds
        return emb


def phrasings_cache_path(encoder_key: str, texts: list[str] | None = None):
    """Where EmotionLabels keeps the embeddings of ``texts`` (default: the labelled phrasings) made
    by the encoder with ``encoder_key``."""
    from .cache_dir import cache_dir, text_digest

    if texts is None:
        texts = [t for t, _, _ in all_labelled(split="all")]
    return cache_dir() / f"phrasings-{text_digest(encoder_key, *texts)}.npy"


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
