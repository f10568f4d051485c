"""Eyes: blinks and gaze, the part of a face that is alive even when the mouth is still.

Blinks close both lids together, fast (about 50 ms) and reopen more slowly (about 85 ms); they
come at irregular intervals (a gamma renewal process with a short refractory gap, mean interval
``1 / blink_rate``), and not every blink closes fully. Gaze holds fixations, jumps between them
with short saccades (about 40 ms) and drifts slowly in between. Both eyes move together, so
looking to the subject's left is ``eyeLookOutLeft`` with ``eyeLookInRight``. The upper lid
follows the eye down a little when the gaze drops.
"""
from __future__ import annotations

import numpy as np

from ..arkit import INDEX, NUM_BLENDSHAPES
from .coarticulation import event_envelope
from .expression import slow_noise

BLINK_CLOSE_S = 0.05  # lid closing
BLINK_HOLD_S = 0.015  # fully closed
BLINK_OPEN_S = 0.085  # lid reopening (slower than closing)
BLINK_REFRACTORY_S = 0.25  # shortest interval between two blinks
BLINK_SHAPE = 2.0  # gamma shape of the inter-blink intervals (coefficient of variation 0.71)

SACCADE_S = 0.04  # duration of a gaze jump
FIXATION_MEAN_S = 1.6  # mean time between gaze jumps
GAZE_SPREAD = (0.12, 0.06)  # std of fixation targets, horizontal and vertical (ARKit units)
GAZE_LIMIT = 0.3  # fixations stay within this (conversational gaze, not extreme looks)
DRIFT = 0.02  # amplitude of the slow drift around a fixation
LID_FOLLOWS_GAZE = 0.3  # blink weight per unit of downward gaze


def _renewal_times(rng: np.random.Generator, mean: float, refractory: float, end: float, shape: float):
    """Event times in [0, end) of a gamma renewal process, entered a random way into a gap."""
    refractory = min(refractory, 0.5 * mean)
    scale = (mean - refractory) / shape
    count = int(end / mean * 2 + 10)
    gaps = refractory + rng.gamma(shape, scale, count)
    times = np.cumsum(gaps) - gaps[0] * rng.uniform()
    while times[-1] < end:  # rare: draw more until the clip is covered
        more = refractory + rng.gamma(shape, scale, count)
        times = np.concatenate([times, times[-1] + np.cumsum(more)])
    return times[times < end]


def blinks(times: np.ndarray, *, rate: float, rng: np.random.Generator) -> np.ndarray:
    """Blink weight (both lids) over ``times``; ``rate`` blinks per second."""
    end = float(times[-1]) + 1.0 if len(times) else 1.0
    if rate < 1e-3:  # fewer than one blink in 15 minutes: none
        return np.zeros(len(times))
    closed = _renewal_times(rng, 1.0 / rate, BLINK_REFRACTORY_S, end, BLINK_SHAPE)  # lids shut
    depth = rng.uniform(0.85, 1.0, len(closed))  # some blinks do not close fully
    return event_envelope(times, closed, closed + BLINK_HOLD_S, rise=BLINK_CLOSE_S, fall=BLINK_OPEN_S,
                          amplitude=depth)


def gaze(times: np.ndarray, *, rng: np.random.Generator) -> np.ndarray:
    """Gaze direction ``(len(times), 2)``: +x toward the subject's left, +y up (ARKit units)."""
    end = float(times[-1]) + 1.0 if len(times) else 1.0
    jumps = _renewal_times(rng, FIXATION_MEAN_S, 0.3, end, 3.0)
    targets = np.clip(rng.normal(0.0, GAZE_SPREAD, size=(len(jumps) + 1, 2)), -GAZE_LIMIT, GAZE_LIMIT)
    targets[0] = 0.0  # start looking straight ahead (at the listener)
    k = np.searchsorted(jumps, times, side="right")  # fixation index at each time
    since = times - np.concatenate([[-np.inf], jumps])[k]
    x = np.clip(since / SACCADE_S, 0.0, 1.0)
    progress = (x * x * (3.0 - 2.0 * x))[:, None]
    previous = targets[np.maximum(k - 1, 0)]
    out = previous + (targets[k] - previous) * progress
    drift = np.stack([slow_noise(times, rng, low=0.05, high=0.3) for _ in range(2)], axis=1)
    return out + DRIFT * drift


def eye_layer(times: np.ndarray, *, blink_rate: float, seed: int) -> np.ndarray:
    """Blink and gaze weights ``(len(times), 52)`` (all other channels zero)."""
    blink_rng, gaze_rng = (np.random.default_rng([seed, stream]) for stream in (1, 2))
    out = np.zeros((len(times), NUM_BLENDSHAPES), dtype=np.float64)
    g = gaze(times, rng=gaze_rng)
    left, right = np.maximum(g[:, 0], 0.0), np.maximum(-g[:, 0], 0.0)
    up, down = np.maximum(g[:, 1], 0.0), np.maximum(-g[:, 1], 0.0)
    out[:, INDEX["eyeLookOutLeft"]] = out[:, INDEX["eyeLookInRight"]] = left
    out[:, INDEX["eyeLookInLeft"]] = out[:, INDEX["eyeLookOutRight"]] = right
    out[:, INDEX["eyeLookUpLeft"]] = out[:, INDEX["eyeLookUpRight"]] = up
    out[:, INDEX["eyeLookDownLeft"]] = out[:, INDEX["eyeLookDownRight"]] = down
    lid = blinks(times, rate=blink_rate, rng=blink_rng)
    lid = lid + LID_FOLLOWS_GAZE * down * (1.0 - lid)
    out[:, INDEX["eyeBlinkLeft"]] = out[:, INDEX["eyeBlinkRight"]] = lid
    return out
