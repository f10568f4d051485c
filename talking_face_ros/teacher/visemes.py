"""Viseme targets and dominances: what each phoneme asks of the mouth, and how insistently.

A phoneme's *target* is a pose over the ARKit mouth shapes (plus one virtual channel, lip
closure). Its *dominance* says, per articulator group, how strongly that target wins against the
neighbours' targets and how far in time that pull reaches (see :mod:`.coarticulation`). The
groups are the articulators that move independently in speech:

* ``jaw``      jaw opening (vowel height; sibilants need a raised jaw),
* ``lips``     lip aperture: seal, press, roll, raise/lower (bilabials and labiodentals own it),
* ``rounding`` lip rounding / protrusion versus spreading (rounded vowels, W, SH own it),
* ``tongue``   the visible tongue tip (TH/DH).

Numbers are this project's choice, set so that the ICT-FaceKit lip gap
(:mod:`talking_face_ros.lip_geometry`) comes out physiologically plausible: about 2 cm for /a/,
about 0.5 cm for /i/, lips sealed for /p b m/, lower lip under the upper teeth for /f v/.
Diphthongs are two gestures (nucleus, then an off-glide), because their lip shape moves.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..arkit import INDEX, NUM_BLENDSHAPES
from ..phonemes import BILABIALS, PHONEMES, ROUNDED, SILENCE, VOWEL_OPENNESS

GROUPS: tuple[str, ...] = ("jaw", "lips", "rounding", "tongue")
JAW, LIPS, ROUNDING, TONGUE = range(len(GROUPS))

# The coarticulation blend works on the 52 ARKit weights plus one virtual channel: how sealed the
# lips should be (1 on bilabials). The final closure pass turns it into real weights, because a
# seal depends on everything else that opens the lips (jaw, expression) at that moment.
CLOSURE = NUM_BLENDSHAPES
NUM_CHANNELS = NUM_BLENDSHAPES + 1


def columns(*names: str) -> list[int]:
    """Column indices; a bare symmetric name (``mouthStretch``) means both sides."""
    out = []
    for n in names:
        out += [INDEX[n]] if n in INDEX else [INDEX[n + "Left"], INDEX[n + "Right"]]
    return out


# Which articulator moves each channel; -1: speech never moves it (brows, eyes, nose, cheeks).
COLUMN_GROUP = np.full(NUM_CHANNELS, -1, dtype=np.int64)
COLUMN_GROUP[columns("jawOpen", "jawForward")] = JAW
COLUMN_GROUP[columns(
    "mouthPress", "mouthRollLower", "mouthRollUpper", "mouthUpperUp", "mouthLowerDown",
    "mouthShrugLower", "mouthShrugUpper", "cheekPuff",
)] = LIPS
COLUMN_GROUP[CLOSURE] = LIPS
COLUMN_GROUP[columns("mouthPucker", "mouthFunnel", "mouthStretch", "mouthSmile", "mouthDimple")] = ROUNDING
COLUMN_GROUP[columns("tongueOut")] = TONGUE
GROUP_COLUMNS: tuple[np.ndarray, ...] = tuple(np.flatnonzero(COLUMN_GROUP == g) for g in range(len(GROUPS)))
SPEECH_COLUMNS = np.flatnonzero(COLUMN_GROUP[:NUM_BLENDSHAPES] >= 0)


def pose(**weights: float) -> np.ndarray:
    """A target over the channels; ``mouthStretch=0.2`` sets both sides, ``closure`` the seal."""
    out = np.zeros(NUM_CHANNELS, dtype=np.float64)
    for name, w in weights.items():
        out[[CLOSURE] if name == "closure" else columns(name)] = w
    return out


# ---------------------------------------------------------------------------------------------
# Targets.
# Vowels: the jaw carries most of the opening, the lower lip drops a little with it (lowerDown
# shows the lower teeth on /a/). Openness comes from the shared VOWEL_OPENNESS table.


def vowel_pose(openness: float, *, spread: float = 0.0, pucker: float = 0.0, funnel: float = 0.0):
    """Open by ``openness`` (0..1); spread (stretch + a little smile) or round (pucker, funnel)."""
    return pose(
        jawOpen=0.06 + 0.46 * openness,
        mouthLowerDown=0.04 + 0.16 * openness,
        mouthUpperUp=0.02 + 0.05 * openness,
        mouthStretch=spread,
        mouthSmile=0.4 * spread,
        mouthPucker=pucker,
        mouthFunnel=funnel,
    )


# Lip posture of each monophthong: spread front vowels, rounded back vowels, neutral others.
_VOWEL_LIPS: dict[str, dict[str, float]] = {
    "IY": dict(spread=0.32), "IH": dict(spread=0.22), "EH": dict(spread=0.16),
    "AE": dict(spread=0.18), "AA": {}, "AH": {}, "ER": dict(pucker=0.2, funnel=0.15),
    "UW": dict(pucker=0.65, funnel=0.22), "UH": dict(pucker=0.38, funnel=0.2),
    "AO": dict(pucker=0.15, funnel=0.35),
}
# Diphthongs: (nucleus lips, off-glide openness, off-glide lips); the nucleus takes the phone's
# own VOWEL_OPENNESS, the glide moves toward /i/ or /u/ without reaching it.
_DIPHTHONGS: dict[str, tuple[dict, float, dict]] = {
    "AY": ({}, 0.35, dict(spread=0.22)),
    "AW": ({}, 0.35, dict(pucker=0.45, funnel=0.22)),
    "EY": (dict(spread=0.16), 0.25, dict(spread=0.28)),
    "OW": (dict(pucker=0.3, funnel=0.4), 0.32, dict(pucker=0.55, funnel=0.28)),
    "OY": (dict(pucker=0.2, funnel=0.35), 0.3, dict(spread=0.2)),
}
NUCLEUS_FRACTION = 0.55  # share of a diphthong's duration spent near its first target

_CONSONANT_TARGETS: dict[str, np.ndarray] = {
    # Lips sealed and pressed before the release (a puff of cheek pressure on the stops).
    "P": pose(jawOpen=0.06, closure=1.0, mouthPress=0.25, mouthRollLower=0.05, cheekPuff=0.04),
    "B": pose(jawOpen=0.06, closure=1.0, mouthPress=0.2, mouthRollLower=0.05, cheekPuff=0.03),
    "M": pose(jawOpen=0.06, closure=1.0, mouthPress=0.08),
    # Lower lip rolled in under the upper teeth, upper lip lifted off them.
    "F": pose(jawOpen=0.08, mouthRollLower=0.5, mouthUpperUp=0.14, mouthShrugLower=0.05),
    "V": pose(jawOpen=0.08, mouthRollLower=0.45, mouthUpperUp=0.12, mouthShrugLower=0.05),
    # Tongue tip between the teeth.
    "TH": pose(jawOpen=0.12, tongueOut=0.3, mouthLowerDown=0.08, mouthUpperUp=0.04),
    "DH": pose(jawOpen=0.11, tongueOut=0.25, mouthLowerDown=0.08, mouthUpperUp=0.04),
    # Sibilants: teeth nearly together, lips parted to show them; /s z/ spread, /sh/ protruded.
    "S": pose(jawOpen=0.04, mouthStretch=0.14, mouthSmile=0.05, mouthUpperUp=0.1, mouthLowerDown=0.12),
    "Z": pose(jawOpen=0.04, mouthStretch=0.12, mouthSmile=0.04, mouthUpperUp=0.1, mouthLowerDown=0.12),
    "SH": pose(jawOpen=0.06, mouthPucker=0.3, mouthFunnel=0.4, mouthUpperUp=0.1, mouthLowerDown=0.1),
    "ZH": pose(jawOpen=0.06, mouthPucker=0.3, mouthFunnel=0.38, mouthUpperUp=0.1, mouthLowerDown=0.1),
    "CH": pose(jawOpen=0.06, mouthPucker=0.28, mouthFunnel=0.35, mouthUpperUp=0.08, mouthLowerDown=0.08),
    "JH": pose(jawOpen=0.06, mouthPucker=0.28, mouthFunnel=0.33, mouthUpperUp=0.08, mouthLowerDown=0.08),
    # Tongue consonants: jaw fairly high, lips whatever the neighbours want (low lip dominance).
    "T": pose(jawOpen=0.1, mouthLowerDown=0.05), "D": pose(jawOpen=0.1, mouthLowerDown=0.05),
    "N": pose(jawOpen=0.1, mouthLowerDown=0.04), "L": pose(jawOpen=0.16, mouthLowerDown=0.06),
    "K": pose(jawOpen=0.14), "G": pose(jawOpen=0.14), "NG": pose(jawOpen=0.12),
    "HH": pose(jawOpen=0.2),
    # Approximants: /r/ is lip-rounded in English, /w/ strongly, /j/ spread.
    "R": pose(jawOpen=0.1, mouthPucker=0.25, mouthFunnel=0.2),
    "W": pose(jawOpen=0.07, mouthPucker=0.7, mouthFunnel=0.2),
    "Y": pose(jawOpen=0.08, mouthStretch=0.15, mouthSmile=0.05),
    SILENCE: pose(),  # the face at rest: ARKit's zero pose has the lips lightly together
}


# ---------------------------------------------------------------------------------------------
# Dominances: per group (alpha = strength, theta = decay rate in 1/s before / after the segment's
# core). Strong, fast-decaying lip dominance makes bilabial closure local but reliable; strong,
# slow-decaying rounding dominance of rounded vowels spreads rounding over preceding consonants.


@dataclass(frozen=True)
class Dominance:
    alpha: tuple[float, float, float, float]  # jaw, lips, rounding, tongue
    theta_ant: tuple[float, float, float, float]  # 1/s, toward earlier times (anticipation)
    theta_car: tuple[float, float, float, float]  # 1/s, toward later times (carry-over)
    core: float = 0.6  # central fraction of the segment held at full dominance


def _dom(jaw, lips, rounding, tongue, *, rates=(14.0, 22.0, 16.0, 25.0), ant=None, core=0.6):
    ant = rates if ant is None else ant
    return Dominance((jaw, lips, rounding, tongue), tuple(ant), tuple(rates), core)


_ROUNDED_VOWEL = _dom(1.0, 0.5, 1.2, 0.3, rates=(14.0, 20.0, 9.0, 25.0), ant=(14.0, 20.0, 6.0, 25.0),
                      core=0.5)
_MILDLY_ROUNDED_VOWEL = _dom(1.0, 0.5, 0.6, 0.3, rates=(14.0, 20.0, 14.0, 25.0), core=0.5)
_SPREAD_VOWEL = _dom(1.0, 0.5, 0.6, 0.3, rates=(14.0, 20.0, 14.0, 25.0), core=0.5)
_NEUTRAL_VOWEL = _dom(1.0, 0.5, 0.4, 0.3, rates=(14.0, 20.0, 18.0, 25.0), core=0.5)


def _vowel_dominance(lips: dict) -> Dominance:
    """By lip posture, so a diphthong's rounded glide (AW, OW) spreads rounding, its nucleus not."""
    rounding = lips.get("pucker", 0.0) + lips.get("funnel", 0.0)
    if rounding >= 0.4:
        return _ROUNDED_VOWEL
    if rounding > 0:
        return _MILDLY_ROUNDED_VOWEL  # ER
    return _SPREAD_VOWEL if lips.get("spread", 0.0) > 0 else _NEUTRAL_VOWEL


_BILABIAL = _dom(1.2, 10.0, 0.05, 0.3, rates=(20.0, 80.0, 25.0, 25.0), core=0.9)
_CONSONANT_DOMINANCE = {
    "P": _BILABIAL, "B": _BILABIAL, "M": _BILABIAL,
    # Labiodentals need a raised jaw to bring the lower lip to the upper teeth.
    "F": _dom(1.5, 6.0, 0.1, 0.3, rates=(20.0, 60.0, 25.0, 25.0), core=0.8),
    "V": _dom(1.5, 6.0, 0.1, 0.3, rates=(20.0, 60.0, 25.0, 25.0), core=0.8),
    "TH": _dom(0.6, 0.5, 0.1, 10.0, rates=(25.0, 30.0, 25.0, 40.0), core=0.8),
    "DH": _dom(0.6, 0.5, 0.1, 10.0, rates=(25.0, 30.0, 25.0, 40.0), core=0.8),
    "S": _dom(1.5, 0.6, 0.3, 0.3, rates=(25.0, 25.0, 20.0, 25.0)),
    "Z": _dom(1.5, 0.6, 0.3, 0.3, rates=(25.0, 25.0, 20.0, 25.0)),
    "SH": _dom(1.2, 0.6, 1.2, 0.3, rates=(25.0, 25.0, 15.0, 25.0), ant=(25.0, 25.0, 12.0, 25.0)),
    "ZH": _dom(1.2, 0.6, 1.2, 0.3, rates=(25.0, 25.0, 15.0, 25.0), ant=(25.0, 25.0, 12.0, 25.0)),
    "CH": _dom(1.2, 0.6, 1.2, 0.3, rates=(25.0, 25.0, 15.0, 25.0), ant=(25.0, 25.0, 12.0, 25.0)),
    "JH": _dom(1.2, 0.6, 1.2, 0.3, rates=(25.0, 25.0, 15.0, 25.0), ant=(25.0, 25.0, 12.0, 25.0)),
    "T": _dom(0.6, 0.15, 0.03, 0.3, rates=(25.0, 25.0, 25.0, 25.0)),
    "D": _dom(0.6, 0.15, 0.03, 0.3, rates=(25.0, 25.0, 25.0, 25.0)),
    "N": _dom(0.6, 0.15, 0.03, 0.3, rates=(25.0, 25.0, 25.0, 25.0)),
    "L": _dom(0.5, 0.15, 0.05, 0.3, rates=(25.0, 25.0, 25.0, 25.0)),
    "K": _dom(0.4, 0.1, 0.02, 0.3, rates=(25.0, 25.0, 25.0, 25.0)),
    "G": _dom(0.4, 0.1, 0.02, 0.3, rates=(25.0, 25.0, 25.0, 25.0)),
    "NG": _dom(0.4, 0.1, 0.02, 0.3, rates=(25.0, 25.0, 25.0, 25.0)),
    "HH": _dom(0.05, 0.05, 0.02, 0.05, rates=(25.0, 25.0, 25.0, 25.0)),  # shaped by its vowel
    "R": _dom(0.4, 0.3, 0.7, 0.3, rates=(25.0, 25.0, 14.0, 25.0), ant=(25.0, 25.0, 10.0, 25.0)),
    "W": _dom(0.5, 0.8, 2.0, 0.3, rates=(25.0, 25.0, 12.0, 25.0), ant=(25.0, 25.0, 7.0, 25.0)),
    "Y": _dom(0.5, 0.3, 0.6, 0.3, rates=(25.0, 25.0, 15.0, 25.0)),
}
# Silence pulls the face to rest with a strength that grows with the pause: a 60 ms gap between
# words barely relaxes the mouth, a long pause holds it at rest against anticipation (strength
# 4, above any vowel's). Its core is the whole pause.
SILENCE_RATES = (30.0, 30.0, 30.0, 30.0)
SILENCE_CORE = 1.0


def silence_strength(duration) -> np.ndarray:
    x = np.clip((np.asarray(duration, dtype=np.float64) - 0.06) / 0.3, 0.0, 1.0)
    return 0.03 + 3.97 * x * x * (3.0 - 2.0 * x)


# ---------------------------------------------------------------------------------------------
# Gesture table: each phoneme is one gesture, a diphthong two. A gesture is a slice of the
# segment (start fraction, end fraction), a target and a dominance.


@dataclass(frozen=True)
class Gesture:
    start: float  # fraction of the segment where this gesture begins
    end: float  # ... and ends
    target: np.ndarray  # (NUM_CHANNELS,)
    dominance: Dominance


def _build_gestures() -> dict[str, tuple[Gesture, ...]]:
    table: dict[str, tuple[Gesture, ...]] = {}
    for phone in PHONEMES:
        if phone in _DIPHTHONGS:
            nucleus, glide_open, glide = _DIPHTHONGS[phone]
            table[phone] = (
                Gesture(0.0, NUCLEUS_FRACTION, vowel_pose(VOWEL_OPENNESS[phone], **nucleus),
                        _vowel_dominance(nucleus)),
                Gesture(NUCLEUS_FRACTION, 1.0, vowel_pose(glide_open, **glide), _vowel_dominance(glide)),
            )
        elif phone in VOWEL_OPENNESS:
            lips = _VOWEL_LIPS[phone]
            target = vowel_pose(VOWEL_OPENNESS[phone], **lips)
            table[phone] = (Gesture(0.0, 1.0, target, _vowel_dominance(lips)),)
        elif phone == SILENCE:
            dom = Dominance((1.0,) * 4, SILENCE_RATES, SILENCE_RATES, SILENCE_CORE)
            table[phone] = (Gesture(0.0, 1.0, _CONSONANT_TARGETS[phone], dom),)
        else:
            table[phone] = (Gesture(0.0, 1.0, _CONSONANT_TARGETS[phone], _CONSONANT_DOMINANCE[phone]),)
    return table


GESTURES = _build_gestures()
assert set(GESTURES) == set(PHONEMES)
assert all(GESTURES[p][0].target[CLOSURE] == 1.0 for p in BILABIALS)
assert all(g.target[INDEX["mouthPucker"]] > 0 for p in ROUNDED for g in GESTURES[p][:1])


@dataclass(frozen=True)
class GestureTable:
    """All gestures as arrays, for vectorised lookup: phone -> (first row, row count)."""

    first_count: dict[str, tuple[int, int]]
    start: np.ndarray  # (rows,) fractions of the segment
    end: np.ndarray
    target: np.ndarray  # (rows, NUM_CHANNELS)
    alpha: np.ndarray  # (rows, groups)
    theta_ant: np.ndarray
    theta_car: np.ndarray
    core: np.ndarray  # (rows,)
    silence: np.ndarray  # (rows,) bool: strength scales with the pause length


def _table() -> GestureTable:
    rows = [(p, g) for p in sorted(GESTURES) for g in GESTURES[p]]
    first_count, i = {}, 0
    for p in sorted(GESTURES):
        first_count[p] = (i, len(GESTURES[p]))
        i += len(GESTURES[p])
    return GestureTable(
        first_count,
        np.array([g.start for _, g in rows]), np.array([g.end for _, g in rows]),
        np.array([g.target for _, g in rows]),
        np.array([g.dominance.alpha for _, g in rows], dtype=np.float64),
        np.array([g.dominance.theta_ant for _, g in rows], dtype=np.float64),
        np.array([g.dominance.theta_car for _, g in rows], dtype=np.float64),
        np.array([g.dominance.core for _, g in rows]),
        np.array([p == SILENCE for p, _ in rows]),
    )


GESTURE_TABLE = _table()
