"""Emotion layer: a FACS-grounded expression per MEAD emotion, its dynamics, its effect on speech.

Each emotion is a prototype set of FACS action units (after Ekman & Friesen's EMFACS
prototypes), and each action unit maps onto the ARKit shapes driven by the same muscle. The
static layer, scaled by ``emotions.INTENSITY_SCALE``, is what tests and metrics compare against;
over time the layer ramps in at the start, breathes a little, and eases off toward the end, the
way an acted expression does. Speech and expression combine per channel by a saturating sum
(``a + b - ab``), with a few physiological interactions: a smile flattens lip rounding and is
itself narrowed by it, sadness lowers articulation, anger tenses it.
"""
from __future__ import annotations

import numpy as np

from ..arkit import INDEX, NUM_BLENDSHAPES, UPPER_FACE
from ..emotions import EMOTIONS, INTENSITY_SCALE, check

# Action unit -> ARKit shapes it moves (weights at full AU intensity). A bare symmetric name
# means both sides; unilateral units are written per side in the emotion table.
AU_SHAPES: dict[int, dict[str, float]] = {
    1: {"browInnerUp": 1.0},  # inner brow raiser (frontalis, medial)
    2: {"browOuterUp": 1.0},  # outer brow raiser (frontalis, lateral)
    4: {"browDown": 1.0},  # brow lowerer (corrugator, depressor supercilii)
    5: {"eyeWide": 1.0},  # upper lid raiser
    6: {"cheekSquint": 1.0, "eyeSquint": 0.4},  # cheek raiser (orbicularis oculi, orbital part)
    7: {"eyeSquint": 1.0},  # lid tightener
    9: {"noseSneer": 1.0, "mouthUpperUp": 0.3},  # nose wrinkler
    10: {"mouthUpperUp": 1.0},  # upper lip raiser
    12: {"mouthSmile": 1.0},  # lip corner puller (zygomaticus major)
    14: {"mouthDimple": 1.0},  # dimpler (buccinator)
    15: {"mouthFrown": 1.0},  # lip corner depressor
    17: {"mouthShrugLower": 1.0},  # chin raiser (mentalis)
    20: {"mouthStretch": 1.0},  # lip stretcher (risorius)
    23: {"mouthPress": 0.5, "mouthRollLower": 0.25, "mouthRollUpper": 0.25},  # lip tightener
    24: {"mouthPress": 1.0},  # lip pressor
    26: {"jawOpen": 1.0},  # jaw drop
    41: {"eyeBlink": 1.0},  # lid droop
}

CONTEMPT_SIDE = "Right"  # AU14 is one-sided; the subject's right, by this project's choice
# Emotion -> (action unit, intensity at the strongest level, side: "" both, or "Left"/"Right").
EMOTION_AUS: dict[str, tuple[tuple[int, float, str], ...]] = {
    "neutral": (),
    "happy": ((6, 0.6, ""), (12, 0.8, "")),
    "sad": ((1, 0.6, ""), (4, 0.3, ""), (15, 0.6, ""), (17, 0.3, ""), (41, 0.15, "")),
    "angry": ((4, 0.8, ""), (5, 0.25, ""), (7, 0.5, ""), (23, 0.5, ""), (24, 0.4, "")),
    "surprised": ((1, 0.8, ""), (2, 0.8, ""), (5, 0.6, ""), (26, 0.3, "")),
    "fearful": ((1, 0.7, ""), (2, 0.5, ""), (4, 0.35, ""), (5, 0.7, ""), (20, 0.6, ""), (26, 0.2, "")),
    "disgusted": ((4, 0.2, ""), (9, 0.7, ""), (10, 0.5, ""), (15, 0.3, ""), (17, 0.4, "")),
    "contemptuous": ((14, 0.7, CONTEMPT_SIDE), (12, 0.25, CONTEMPT_SIDE)),
}
assert set(EMOTION_AUS) == set(EMOTIONS)

# How each emotion scales speech articulation at full intensity (sad speech is hypo-articulated,
# angry and surprised speech hyper-articulated).
ARTICULATION_GAIN: dict[str, float] = {
    "neutral": 1.0, "happy": 1.05, "sad": 0.8, "angry": 1.12, "surprised": 1.08,
    "fearful": 0.95, "disgusted": 0.9, "contemptuous": 0.9,
}
# Which way the brows go on an emphasised syllable: down when the emotion already lowers them.
EMPHASIS_LOWERS_BROWS = frozenset({"angry", "disgusted"})

# Columns that follow the upper-face wobble (cheekSquint moves with the eyes, AU6).
UPPER_COLUMNS = np.array([INDEX[n] for n in UPPER_FACE + ("cheekSquintLeft", "cheekSquintRight")])
ONSET_S = 0.45  # expression ramps in over this long (shorter clips: a third of the clip)
ONSET_FLOOR = 0.3  # level at the very first frame: the speaker is already in the mood
OFFSET_S = 1.0  # over the last second (or third of the clip) the expression eases ...
OFFSET_LEVEL = 0.75  # ... down to this share
FLUCTUATION = 0.06  # relative size of the slow natural wobble of the expression


def _side_columns(shape: str, side: str) -> list[int]:
    if shape in INDEX:
        return [INDEX[shape]]
    return [INDEX[shape + side]] if side else [INDEX[shape + "Left"], INDEX[shape + "Right"]]


def expression_layer(emotion: str, intensity: int) -> np.ndarray:
    """The static expression target of ``emotion`` at ``intensity`` (1..3): ``(52,)`` in [0, 1]."""
    check(emotion, intensity)
    out = np.zeros(NUM_BLENDSHAPES, dtype=np.float64)
    for au, amount, side in EMOTION_AUS[emotion]:
        for shape, w in AU_SHAPES[au].items():
            out[_side_columns(shape, side)] += amount * w
    return np.clip(out * INTENSITY_SCALE[intensity], 0.0, 1.0).astype(np.float32)


def articulation_gain(emotion: str, intensity: int) -> float:
    check(emotion, intensity)
    return 1.0 + (ARTICULATION_GAIN[emotion] - 1.0) * INTENSITY_SCALE[intensity]


def _smoothstep(x):
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3.0 - 2.0 * x)


def slow_noise(times: np.ndarray, rng: np.random.Generator, *, low=0.15, high=0.6, parts=3) -> np.ndarray:
    """A smooth random wobble in about [-1, 1]: a few sinusoids of random frequency and phase."""
    freq = rng.uniform(low, high, parts)
    phase = rng.uniform(0.0, 2.0 * np.pi, parts)
    return np.sin(2.0 * np.pi * np.outer(times, freq) + phase).sum(axis=1) / np.sqrt(parts * 0.5) / 2.0


def envelope(times: np.ndarray, duration: float, rng: np.random.Generator) -> np.ndarray:
    """Expression level over time, ``(len(times), 2)`` for the upper and the lower face.

    Onset ramp, end easing and a slow fluctuation; the two halves of the face wobble
    independently (they are driven by different muscles).
    """
    span = max(duration, 0.03) / 3.0  # short clips: a third each; never a zero-length ramp
    onset, tail = min(ONSET_S, span), min(OFFSET_S, span)
    ramp = ONSET_FLOOR + (1.0 - ONSET_FLOOR) * _smoothstep(times / onset)
    ease = 1.0 - (1.0 - OFFSET_LEVEL) * _smoothstep((times - (duration - tail)) / tail)
    base = ramp * ease
    wobble = np.stack([slow_noise(times, rng), slow_noise(times, rng)], axis=1)
    return base[:, None] * (1.0 + FLUCTUATION * np.clip(wobble, -1.0, 1.0))


def soft_add(a, b):
    """Saturating sum of weights in [0, 1]: adds for small values, never exceeds 1."""
    return a + b - a * b


def apply(
    face: np.ndarray,  # (frames, 52) speech (and style) weights, modified in place
    layer: np.ndarray,  # (52,) expression_layer(...)
    level: np.ndarray,  # (frames, 2) envelope(...)
) -> np.ndarray:
    """Combine speech with the time-varying expression, with the smile/rounding interactions."""
    expr = np.repeat(layer[None, :].astype(np.float64), len(face), axis=0)
    upper = np.zeros(NUM_BLENDSHAPES, dtype=bool)
    upper[UPPER_COLUMNS] = True
    expr[:, upper] *= level[:, :1]
    expr[:, ~upper] *= level[:, 1:]
    smile = expr[:, [INDEX["mouthSmileLeft"], INDEX["mouthSmileRight"]]].mean(axis=1)
    rounding = face[:, INDEX["mouthPucker"]] + 0.5 * face[:, INDEX["mouthFunnel"]]
    # A smiling mouth protrudes less (the corners are held back) ...
    for name in ("mouthPucker", "mouthFunnel"):
        face[:, INDEX[name]] *= 1.0 - 0.4 * smile
    # ... and a rounded vowel pulls the smile and stretch corners in.
    narrow = np.clip(1.0 - 0.6 * rounding, 0.0, 1.0)[:, None]
    for name in ("mouthSmile", "mouthStretch", "mouthDimple"):
        cols = [INDEX[name + "Left"], INDEX[name + "Right"]]
        expr[:, cols] *= narrow
    return soft_add(face, expr)
