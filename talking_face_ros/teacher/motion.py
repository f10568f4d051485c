"""The procedural teacher: a phoneme timeline (+ emotion, speaking style) -> 52 ARKit curves.

Layers, in order:

1. speech articulation by coarticulation (:mod:`.coarticulation`), with stressed vowels
   articulated more fully and the emotion's and speaker's articulation gain;
2. the speaker's habits (jaw-versus-lips share, mouth width, resting smile);
3. the emotion's expression with its onset/offset dynamics (:mod:`.expression`);
4. brow emphasis on prominent syllables (loud ones when a loudness envelope is given, long ones
   otherwise);
5. blinks and gaze (:mod:`.eyes`);
6. a final geometric constraint: during every bilabial the lips are sealed, measured on the real
   rig's lip gap (:mod:`talking_face_ros.lip_geometry`), whatever the layers above did.

Randomness (blink times, gaze, the expression's slow wobble) comes from ``seed`` only; speech
articulation is deterministic, so two seeds differ only in eyes and micro-fluctuations.
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from ..arkit import INDEX, NUM_BLENDSHAPES
from ..data.sample import frame_count
from ..emotions import check as check_emotion
from ..lip_geometry import GAP_PER_WEIGHT, NEUTRAL_GAP, lip_gap
from ..phonemes import BILABIALS, SILENCE, VOWELS, PhonemeSegment, validate_timeline
from ..style import SpeakingStyle
from . import expression
from .coarticulation import articulate, event_envelope, time_pairs
from .eyes import eye_layer
from .visemes import CLOSURE, columns

LEAD_S = 0.02  # the mouth runs ahead of the sound by this much (capped at half a frame)
PRE_ROLL_S = 1.0  # silence assumed before the clip (the face starts from rest)

# Lip seal: target gap when sealed, well under lip_geometry.CLOSED_GAP (0.15 cm). Where the
# coarticulation alone left a bilabial unsealed (a 20 ms /b/ between open vowels), the seal is
# blended in over a ramp long enough that the lips close no faster than real lips do (peak lip
# aperture speeds in speech are about 20-30 cm/s).
SEALED_GAP_CM = 0.10
MAX_LIP_SPEED = 25.0  # cm/s
SEAL_RAMP_S = (0.05, 0.2)  # shortest and longest ramp

STRESS_GAIN = 0.3  # articulation gain per unit of log prominence ...
STRESS_GAIN_RANGE = (0.85, 1.15)  # ... within these bounds
BROW_EMPHASIS = 0.2  # brow movement on a fully emphasised syllable (times brow_activity)
EMPHASIS_FROM = 0.15  # log prominence where emphasis starts ...
EMPHASIS_FULL = 0.5  # ... and where it is complete

# Plausible ranges of SpeakingStyle fields (documented ones are narrower; these reject nonsense).
STYLE_RANGES = {
    "articulation": (0.2, 2.0), "mouth_width": (-1.0, 1.0), "smile_bias": (-1.0, 1.0),
    "blink_rate": (0.0, 2.0), "jaw_bias": (0.3, 1.7), "brow_activity": (0.0, 3.0),
}


# ---------------------------------------------------------------------------------------------
# Input checking and timeline preparation


def _check_inputs(duration, fps, emotion, intensity, style, seed, loudness, loudness_rate):
    number = (int, float, np.floating, np.integer)
    if not (isinstance(duration, number) and math.isfinite(duration) and duration >= 0):
        raise ValueError(f"duration must be a finite number of seconds >= 0, got {duration!r}")
    if not (isinstance(fps, number) and math.isfinite(fps) and fps > 0):
        raise ValueError(f"fps must be a positive finite number, got {fps!r}")
    check_emotion(emotion, intensity)
    if not isinstance(style, SpeakingStyle):
        raise ValueError(f"style must be a SpeakingStyle, got {type(style).__name__}")
    for name, (lo, hi) in STYLE_RANGES.items():
        value = getattr(style, name)
        if not (math.isfinite(value) and lo <= value <= hi):
            raise ValueError(f"style.{name} = {value!r} is outside the plausible range [{lo}, {hi}]")
    if not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    if loudness is not None:
        if loudness_rate is None or not (math.isfinite(loudness_rate) and loudness_rate > 0):
            raise ValueError("loudness needs loudness_rate, its sampling rate in Hz (> 0)")
        arr = np.asarray(loudness, dtype=np.float64)
        if arr.ndim != 1 or not np.all(np.isfinite(arr)) or np.any(arr < 0):
            raise ValueError("loudness must be a 1-D array of finite non-negative RMS values")


def tile_timeline(phonemes: Sequence[PhonemeSegment], duration: float, *, fps: float) -> list[PhonemeSegment]:
    """Sorted segments covering ``[-PRE_ROLL_S, duration]``: gaps and the margins become SIL.

    Segments may overrun ``duration`` by up to one frame (aligners round to their own frames);
    they are clipped. Consecutive silences merge, so a pause's strength reflects its length.
    """
    phonemes = list(phonemes)
    for i, seg in enumerate(phonemes):
        if not isinstance(seg, PhonemeSegment):
            raise ValueError(f"phonemes[{i}] is a {type(seg).__name__}, expected a PhonemeSegment")
        if seg.start < -1e-6 or seg.end > duration + 1.0 / fps + 1e-6:
            raise ValueError(f"phonemes[{i}] = {seg} lies outside the clip [0, {duration:.3f}] s")
    segs = validate_timeline(phonemes)
    out: list[PhonemeSegment] = []
    cursor = -PRE_ROLL_S

    def push(phone, start, end):
        if out and phone == SILENCE and out[-1].phone == SILENCE:
            out[-1] = PhonemeSegment(SILENCE, out[-1].start, end)
        else:
            out.append(PhonemeSegment(phone, start, end))

    for seg in segs:
        start, end = max(seg.start, 0.0), min(seg.end, duration)
        if start >= duration and seg.duration > 0:
            continue
        start = max(start, cursor)
        end = max(end, start)
        if start > cursor + 1e-9:
            push(SILENCE, cursor, start)
        push(seg.phone, start, end)
        cursor = end
    push(SILENCE, cursor, max(duration, cursor) + PRE_ROLL_S)
    return out


# ---------------------------------------------------------------------------------------------
# Prosody: which syllables are prominent


def prominence(segments: list[PhonemeSegment], loudness=None, loudness_rate=None) -> np.ndarray:
    """Log prominence of each vowel relative to the utterance's median vowel (0 elsewhere).

    From the loudness envelope when given (mean RMS over the vowel), otherwise from vowel
    duration (stressed vowels are longer, and espeak-ng/aligners reflect that).
    """
    z = np.zeros(len(segments))
    vowels = [i for i, s in enumerate(segments) if s.phone in VOWELS and s.duration > 0]
    if len(vowels) < 2:
        return z
    starts = np.array([segments[i].start for i in vowels])
    ends = np.array([segments[i].end for i in vowels])
    if loudness is not None:
        env = np.asarray(loudness, dtype=np.float64)
        csum = np.concatenate([[0.0], np.cumsum(env)])
        lo = np.clip(np.floor(starts * loudness_rate).astype(np.int64), 0, len(env))
        hi = np.clip(np.ceil(ends * loudness_rate).astype(np.int64), 0, len(env))
        hi = np.maximum(hi, np.minimum(lo + 1, len(env)))
        value = (csum[hi] - csum[lo]) / np.maximum(hi - lo, 1)
    else:
        value = ends - starts
    median = np.median(value)
    if median <= 0:
        return z
    z[vowels] = np.log(np.maximum(value, 1e-3 * median) / median)
    return z


def brow_emphasis(times, segments, z, *, emotion: str, activity: float) -> np.ndarray:
    """Brow raises (or, for angry/disgusted, brow lowering) on prominent syllables ``(T, 52)``."""
    out = np.zeros((len(times), NUM_BLENDSHAPES))
    strength = np.clip((z - EMPHASIS_FROM) / (EMPHASIS_FULL - EMPHASIS_FROM), 0.0, 1.0)
    hit = np.flatnonzero(strength > 0)
    if activity <= 0 or len(hit) == 0:
        return out
    start = np.array([segments[i].start for i in hit])
    span = np.array([segments[i].duration for i in hit])
    # Brows move with the pitch accent, starting a little before the vowel.
    level = event_envelope(times, start - 0.05, start + 0.5 * span, rise=0.12, fall=0.3,
                           amplitude=BROW_EMPHASIS * activity * strength[hit])
    if emotion in expression.EMPHASIS_LOWERS_BROWS:
        out[:, columns("browDown")] = level[:, None]
    else:
        out[:, INDEX["browInnerUp"]] = 0.6 * level
        out[:, columns("browOuterUp")] = level[:, None]
    return out


# ---------------------------------------------------------------------------------------------
# Speaker habits


def apply_style(face: np.ndarray, style: SpeakingStyle) -> np.ndarray:
    """Jaw-versus-lips share and mouth-width habit on the speech curves, then the resting face."""
    face[:, INDEX["jawOpen"]] *= style.jaw_bias
    face[:, columns("mouthLowerDown", "mouthUpperUp")] *= max(0.3, 2.0 - style.jaw_bias)
    m = style.mouth_width
    face[:, columns("mouthStretch", "mouthSmile")] *= 1.0 + 0.5 * m
    face[:, columns("mouthPucker", "mouthFunnel")] *= 1.0 - 0.4 * m
    np.clip(face, 0.0, 1.0, out=face)
    rest = np.zeros(NUM_BLENDSHAPES)
    rest[columns("mouthStretch")] = 0.06 * max(m, 0.0)
    rest[INDEX["mouthPucker"]] = 0.06 * max(-m, 0.0)
    rest[columns("mouthSmile")] = 0.15 * max(style.smile_bias, 0.0)
    rest[columns("mouthFrown")] = 0.15 * max(-style.smile_bias, 0.0)
    return expression.soft_add(face, rest[None, :])


# ---------------------------------------------------------------------------------------------
# Lip seal

# Shapes that open the lips (positive gap) other than the jaw, in the order the seal gives them
# up: first the mouth's own, then the expression's (nose wrinkle, cheek raise) as a last resort.
_MOUTH_OPENERS = np.array(columns(
    "mouthFunnel", "mouthLowerDown", "mouthUpperUp", "mouthRollUpper", "mouthShrugUpper", "jawForward",
))
_FACE_OPENERS = np.array(columns("noseSneer", "cheekSquint", "mouthSmile"))
_JAW, _CLOSE = INDEX["jawOpen"], INDEX["mouthClose"]


def sealed(face: np.ndarray, *, gap: float = SEALED_GAP_CM) -> np.ndarray:
    """The nearest sealed version of each frame: lip gap <= ``gap`` cm on the ICT rig.

    First mouthClose rises, up to jawOpen (ARKit's convention: mouthClose closes the lips of an
    open jaw; beyond jawOpen the lips would pass through each other). Then the lip-opening shapes
    shrink, the mouth's own before the expression's. With all openers gone, jaw and mouthClose
    together leave at most NEUTRAL_GAP < ``gap``, so the seal always succeeds.
    """
    out = face.astype(np.float64, copy=True)
    need = NEUTRAL_GAP + out @ GAP_PER_WEIGHT.astype(np.float64) - gap
    room = np.maximum(out[:, _JAW] - out[:, _CLOSE], 0.0)
    raise_close = np.clip(need / -GAP_PER_WEIGHT[_CLOSE], 0.0, room)
    out[:, _CLOSE] += raise_close
    need += raise_close * GAP_PER_WEIGHT[_CLOSE]
    for cols in (_MOUTH_OPENERS, _FACE_OPENERS):
        opening = out[:, cols] @ GAP_PER_WEIGHT[cols].astype(np.float64)
        keep = np.where(need > 0, 1.0 - np.clip(need / np.maximum(opening, 1e-12), 0.0, 1.0), 1.0)
        out[:, cols] *= keep[:, None]
        need -= (1.0 - keep) * opening
    return out


def enforce_lip_closure(face, segments, closure, *, fps: float, lead: float) -> np.ndarray:
    """Seal the lips through every bilabial and blend the seal in smoothly around it.

    The seal strength is the coarticulated closure channel, raised to 1 over each bilabial
    (from ``lead`` before its acoustic start to its end) and on the frame nearest its centre, so
    even a 20 ms /b/ between frames closes the lips on at least one frame.
    """
    n = len(face)
    times = np.arange(n) / fps
    strength = np.clip(closure, 0.0, 1.0)
    bil = [s for s in segments if s.phone in BILABIALS]
    if bil:
        start = np.array([s.start for s in bil]) - lead
        end = np.array([s.end for s in bil])
        centre = np.clip(np.round(0.5 * (start + lead + end) * fps), 0, n - 1) / fps
        start, end = np.concatenate([start, centre]), np.concatenate([end, centre])
        # How far the lips are open around each bilabial sets how long the seal takes to close.
        gap = lip_gap(face)
        ev, idx, _ = time_pairs(times, start - SEAL_RAMP_S[1], end + SEAL_RAMP_S[1])
        around = np.full(len(start), SEALED_GAP_CM)
        np.maximum.at(around, ev, gap[idx])
        ramp = np.clip(0.5 * np.pi * (around - SEALED_GAP_CM) / MAX_LIP_SPEED, *SEAL_RAMP_S)
        strength = np.maximum(strength, event_envelope(times, start, end, rise=ramp, fall=ramp))
    live = strength > 0
    if np.any(live):
        face[live] += strength[live, None] * (sealed(face[live]) - face[live])
    return face


# ---------------------------------------------------------------------------------------------
# The teacher


def phonemes_to_blendshapes(
    phonemes: Sequence[PhonemeSegment],
    *,
    duration: float,  # seconds of audio the motion accompanies
    fps: float = 30.0,  # output frame rate; frame i depicts time i / fps
    emotion: str = "neutral",  # one of emotions.EMOTIONS
    intensity: int = 2,  # 1..3 (MEAD levels)
    style: SpeakingStyle = SpeakingStyle(),  # the speaker's habits
    seed: int = 0,  # blinks, gaze and the expression's wobble
    loudness: np.ndarray | None = None,  # RMS envelope of the audio (per frame or per sample)
    loudness_rate: float | None = None,  # Hz of ``loudness``
) -> np.ndarray:
    """ARKit weights ``(frame_count(duration, fps), 52)`` float32 in [0, 1] for a timeline."""
    _check_inputs(duration, fps, emotion, intensity, style, seed, loudness, loudness_rate)
    n = frame_count(duration, fps)
    times = np.arange(n) / fps
    lead = min(LEAD_S, 0.5 / fps)
    segments = tile_timeline(phonemes, duration, fps=fps)

    z = prominence(segments, loudness, loudness_rate)
    gains = np.clip(1.0 + STRESS_GAIN * z, *STRESS_GAIN_RANGE)
    gains *= expression.articulation_gain(emotion, intensity) * style.articulation
    curves = articulate(segments, fps=fps, frames=n, lead=lead, gains=gains)
    face = np.clip(curves[:, :NUM_BLENDSHAPES], 0.0, 1.0)

    face = apply_style(face, style)
    rng = np.random.default_rng([seed, 0])
    face = expression.apply(face, expression.expression_layer(emotion, intensity),
                            expression.envelope(times, duration, rng))
    face = expression.soft_add(face, brow_emphasis(times, segments, z, emotion=emotion,
                                                   activity=style.brow_activity))
    eyes = eye_layer(times, blink_rate=style.blink_rate, seed=seed)
    face = expression.soft_add(face, eyes)
    lids = face[:, columns("eyeBlink")].max(axis=1, keepdims=True)
    face[:, columns("eyeWide")] *= 1.0 - lids  # a closing lid cannot be held wide

    face = enforce_lip_closure(face, segments, curves[:, CLOSURE], fps=fps, lead=lead)
    return np.clip(face, 0.0, 1.0).astype(np.float32)
