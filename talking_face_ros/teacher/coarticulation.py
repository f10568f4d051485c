"""Coarticulation: turning a phoneme timeline into smooth articulator curves.

Model (after Cohen & Massaro's dominance model of visual speech). Every gesture ``s`` (one per
phoneme, two per diphthong, see :mod:`.visemes`) has a target ``T_s`` and, for each articulator
group ``g`` (jaw, lips, rounding, tongue), a dominance that is flat over the gesture's core (its
central part) and decays exponentially outside it::

    D_sg(t) = alpha_sg * exp(-theta_sg * tau),   tau = distance from t to the core (0 inside),

with a separate decay rate before the core (anticipation) and after it (carry-over). Each channel
``c`` of group ``g`` is the dominance-weighted mean of all targets, with a faint rest pose as
floor so the mean is defined far from any gesture::

    F_c(t) = (sum_s D_sg(t) T_sc + eps * rest_c) / (sum_s D_sg(t) + eps).

Consequences, all of them observed in real speech: a consonant with weak lip dominance (K, G, T,
D, HH) takes its lip shape from the surrounding vowels; a rounded vowel with strong, slowly
decaying rounding dominance rounds the lips across the consonants before it (anticipatory
rounding, as in "strew"); a bilabial's very strong but fast-decaying lip dominance seals the lips
locally without flattening the neighbours; a short pause has weak dominance and does not let the
mouth collapse between words.

Curves are evaluated at ``t + lead`` (the mouth moves slightly before the sound it makes: about
20 ms, within one frame), on a grid a few times finer than the frame rate, then low-pass
filtered (zero-phase Gaussian, tens of milliseconds: the mass of jaw and lips) and sampled at the
frames. The filter bounds velocity and acceleration and adds no lag. Sealing the lips exactly is
left to a final geometric pass (:func:`talking_face_ros.teacher.motion.enforce_lip_closure`),
since only the whole face, expression included, decides how much sealing is needed.
"""
from __future__ import annotations

import numpy as np
from scipy.ndimage import gaussian_filter1d
from scipy.sparse import csc_matrix

from ..phonemes import PhonemeSegment
from .visemes import GESTURE_TABLE, GROUP_COLUMNS, NUM_CHANNELS, SPEECH_COLUMNS, silence_strength

FLOOR = 1e-3  # rest-pose dominance everywhere: keeps the mean defined far from any gesture
CUTOFF = 1e-3  # dominances below this are dropped (bounded support, exact enough)
SMOOTHING_S = (0.024, 0.015, 0.018, 0.015)  # Gaussian sigma per group: jaw is heaviest
INTERNAL_RATE = 120.0  # Hz at least: resolves 20 ms phonemes before the smoothing filter


def time_pairs(times: np.ndarray, lo: np.ndarray, hi: np.ndarray):
    """All (event, sample) index pairs with ``lo[event] <= times[sample] <= hi[event]``.

    Pairs come event by event (samples ascending within an event); ``counts`` gives how many
    each event has. Written by hand because no library enumerates ragged interval-by-grid
    memberships; it lets every event touch only the samples it reaches (linear cost, vectorised).
    """
    first = np.searchsorted(times, lo, side="left")
    last = np.searchsorted(times, hi, side="right")
    counts = np.maximum(last - first, 0)
    event = np.repeat(np.arange(len(lo)), counts)
    offsets = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
    return event, first[event] + offsets, counts


def event_envelope(times, starts, ends, *, rise, fall, amplitude=1.0) -> np.ndarray:
    """Max over events of a plateau from ``start`` to ``end`` with raised-cosine edges.

    Each event rises from 0 at ``start - rise`` to ``amplitude`` at ``start`` and falls back to 0
    at ``end + fall``: the shape of a blink, a brow raise or a lip-seal hold. ``rise``, ``fall``
    (seconds) and ``amplitude`` are scalars or one per event; ``times`` must be sorted.
    """
    times = np.asarray(times, dtype=np.float64)
    starts = np.asarray(starts, dtype=np.float64)
    ends = np.maximum(np.asarray(ends, dtype=np.float64), starts)
    rise = np.broadcast_to(np.maximum(np.asarray(rise, dtype=np.float64), 1e-9), starts.shape)
    fall = np.broadcast_to(np.maximum(np.asarray(fall, dtype=np.float64), 1e-9), starts.shape)
    amplitude = np.broadcast_to(np.asarray(amplitude, dtype=np.float64), starts.shape)
    out = np.zeros(times.shape, dtype=np.float64)
    if starts.size == 0:
        return out
    ev, idx, _ = time_pairs(times, starts - rise, ends + fall)
    t = times[idx]
    before = np.clip((starts[ev] - t) / rise[ev], 0.0, 1.0)
    after = np.clip((t - ends[ev]) / fall[ev], 0.0, 1.0)
    value = amplitude[ev] * 0.5 * (1.0 + np.cos(np.pi * np.maximum(before, after)))
    np.maximum.at(out, idx, value)
    return out


def gestures(segments: list[PhonemeSegment], gains: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Arrays describing every gesture of a (tiled) timeline.

    ``gains`` scales each segment's target away from rest (stress: a prominent vowel is
    articulated more fully, an unstressed one is reduced); the lip seal is never scaled.
    """
    table = GESTURE_TABLE
    first, count = np.array([table.first_count[s.phone] for s in segments], dtype=np.int64).reshape(-1, 2).T
    seg = np.repeat(np.arange(len(segments)), count)
    row = np.repeat(first, count) + np.arange(len(seg)) - np.repeat(np.cumsum(count) - count, count)
    start = np.array([s.start for s in segments], dtype=np.float64)
    span = np.array([s.end for s in segments], dtype=np.float64) - start
    target = table.target[row]
    if gains is not None:
        target[:, SPEECH_COLUMNS] *= gains[seg, None]
    alpha = table.alpha[row]
    silent = table.silence[row]
    alpha[silent] *= silence_strength(span[seg[silent]])[:, None]
    return {
        "start": start[seg] + table.start[row] * span[seg], "end": start[seg] + table.end[row] * span[seg],
        "target": target, "alpha": alpha, "theta_ant": table.theta_ant[row],
        "theta_car": table.theta_car[row], "core": table.core[row],
    }


def blend(times: np.ndarray, gs: dict[str, np.ndarray]) -> np.ndarray:
    """Dominance-weighted targets at ``times`` (sorted): ``(len(times), NUM_CHANNELS)``."""
    out = np.zeros((len(times), NUM_CHANNELS), dtype=np.float64)
    if len(gs["start"]) == 0:
        return out
    centre = 0.5 * (gs["start"] + gs["end"])
    half = 0.5 * gs["core"] * (gs["end"] - gs["start"])
    core_lo, core_hi = centre - half, centre + half
    for g, cols in enumerate(GROUP_COLUMNS):
        alpha = gs["alpha"][:, g]
        live = np.flatnonzero(alpha > CUTOFF)
        log_a = np.log(alpha[live])
        reach = log_a - np.log(CUTOFF)  # e-folds until the dominance falls below CUTOFF
        th_a, th_c = gs["theta_ant"][live, g], gs["theta_car"][live, g]
        lo, hi = core_lo[live], core_hi[live]
        ev, idx, counts = time_pairs(times, lo - reach / th_a, hi + reach / th_c)
        t = times[idx]
        decay = np.maximum(lo[ev] - t, 0.0) * th_a[ev] + np.maximum(t - hi[ev], 0.0) * th_c[ev]
        d = np.exp(log_a[ev] - decay)
        # Pairs come event by event: they are already a column-compressed (time x event) matrix.
        indptr = np.concatenate([[0], np.cumsum(counts)])
        weights = csc_matrix((d, idx, indptr), shape=(len(times), len(live)))
        rhs = np.concatenate([gs["target"][live][:, cols], np.ones((len(live), 1))], axis=1)
        sums = weights @ rhs  # dominance-weighted target sums, and the dominance total last
        out[:, cols] = sums[:, :-1] / (sums[:, -1:] + FLOOR)  # rest pose is all zeros
    return out


def articulate(
    segments: list[PhonemeSegment],
    *,
    fps: float,  # output frame rate
    frames: int,  # output frame count; frame i is at time i / fps
    lead: float,  # seconds the mouth runs ahead of the sound
    gains: np.ndarray | None = None,  # per-segment articulation gain (stress)
) -> np.ndarray:
    """Speech-only channel curves ``(frames, NUM_CHANNELS)`` for a timeline that tiles the clip."""
    k = max(1, int(np.ceil(INTERNAL_RATE / fps)))
    rate = fps * k
    pad = int(np.ceil(4.0 * max(SMOOTHING_S) * rate)) + 1  # keeps the filter's edges off the clip
    grid = (np.arange(-pad, (frames - 1) * k + pad + 1, dtype=np.float64)) / rate
    curves = blend(grid + lead, gestures(segments, gains))
    for cols, sigma in zip(GROUP_COLUMNS, SMOOTHING_S):
        curves[:, cols] = gaussian_filter1d(curves[:, cols], sigma * rate, axis=0, mode="nearest")
    return curves[pad : pad + (frames - 1) * k + 1 : k]
