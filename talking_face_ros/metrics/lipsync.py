"""Lip-sync measures that need no ground-truth mesh: only the weights, their frame rate and the speech.

LVE needs a captured face for every test sentence. These measures instead check articulatory
facts that any correct animation must show, given when each phoneme was spoken:

* the lips close on P, B and M (:func:`bilabial_closure_rate`);
* open vowels open the mouth wider than close vowels (:func:`vowel_openness_agreement`);
* the mouth moves at the same time as the speech (:func:`audio_motion_lag`, or
  :func:`audio_envelope_lag` when there are no phoneme timings).

All of them read the mouth through one number per frame, the ICT-rig inner-lip gap in cm
(:func:`lip_gap_curve`, i.e. :func:`talking_face_ros.lip_geometry.lip_gap`). Frame ``i`` depicts
time ``i / fps``, as everywhere in the project.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.stats import spearmanr

from ..lip_geometry import CLOSED_GAP, lip_gap
from ..phonemes import (
    BILABIALS,
    CLOSE_VOWELS,
    OPEN_VOWELS,
    SILENCE,
    VOWEL_OPENNESS,
    PhonemeSegment,
    validate_timeline,
)

# Openness given to consonants other than bilabials in the reference signal. The mouth is partly
# open on most consonants, between a closure (0) and the closest vowel (0.2). This is the
# project's choice, not a phonetic constant.
CONSONANT_OPENNESS = 0.15


@dataclass(frozen=True)
class ClosureRate:
    rate: float  # closed / total; nan when no bilabial could be evaluated
    closed: int  # bilabials during which the lips closed
    total: int  # bilabials with at least one frame in their window


@dataclass(frozen=True)
class OpennessAgreement:
    spearman: float  # rank correlation, canonical openness vs peak lip gap; nan if undefined
    pairwise: float  # share of (open, close) vowel pairs ordered correctly; nan if no pair
    vowels: int  # vowel segments evaluated
    pairs: int  # (open, close) pairs compared


@dataclass(frozen=True)
class Lag:
    frames: int | None  # best lag; positive = motion behind audio; None if undefined
    seconds: float  # frames / fps (nan if undefined)
    correlation: float  # Pearson correlation at that lag (nan if undefined)


def lip_gap_curve(weights: np.ndarray) -> np.ndarray:
    """Inner-lip gap in cm per frame (closed at or below ``lip_geometry.CLOSED_GAP`` = 0.15)."""
    return lip_gap(weights)


def bilabial_closure_rate(
    weights: np.ndarray,
    fps: float,
    phonemes: list[PhonemeSegment],
    *,
    threshold: float = CLOSED_GAP,  # cm; lips count as closed at or below this gap
    tolerance_frames: float = 0.5,  # window widening on each side, in frames
) -> ClosureRate:
    """Share of P/B/M segments during which the lips close in at least one frame.

    A frame counts for a segment ``[start, end]`` when its time lies in ``[start - tol/fps,
    end + tol/fps]``. The half-frame default makes sure that every segment, however short, has
    a frame in its window. At 30 fps a 20 ms /b/ can fall entirely between two frames, and the
    nearest frame is the one that shows the closure. Segments with no frame at all are left out
    of ``total``; they lie past the end of the motion.
    """
    gap = lip_gap_curve(weights)
    fps = _check_fps(fps)
    closed = total = 0
    for seg in validate_timeline(phonemes):
        if seg.phone not in BILABIALS:
            continue
        frames = _frames_in(seg, fps, len(gap), tolerance_frames)
        if frames.size == 0:
            continue
        total += 1
        closed += bool(np.any(gap[frames] <= threshold))
    return ClosureRate(closed / total if total else math.nan, closed, total)


def vowel_openness_agreement(
    weights: np.ndarray,
    fps: float,
    phonemes: list[PhonemeSegment],
    *,
    tolerance_frames: float = 0.5,  # window widening on each side, in frames
) -> OpennessAgreement:
    """Do wider vowels get wider mouths? Two views of the same question.

    * ``spearman``: Spearman rank correlation (scipy) over vowel segments, between the
      canonical openness (``phonemes.VOWEL_OPENNESS``) and the peak lip gap measured in the
      segment's window (same windows as :func:`bilabial_closure_rate`). 1 means perfectly
      ordered.
    * ``pairwise``: over every pair of one open-vowel segment (``OPEN_VOWELS``) and one
      close-vowel segment (``CLOSE_VOWELS``), the share where the open vowel's peak gap is
      larger. A tie counts one half. This is robust to the exact numbers in the openness table,
      which are a project choice.

    The peak is used, not the mean, because a vowel's opening builds up from and decays into its
    neighbours. The peak is the vowel's own target.
    """
    gap = lip_gap_curve(weights)
    fps = _check_fps(fps)
    canonical, peak, kind = [], [], []
    for seg in validate_timeline(phonemes):
        if seg.phone not in VOWEL_OPENNESS:
            continue
        frames = _frames_in(seg, fps, len(gap), tolerance_frames)
        if frames.size == 0:
            continue
        canonical.append(VOWEL_OPENNESS[seg.phone])
        peak.append(float(gap[frames].max()))
        kind.append("open" if seg.phone in OPEN_VOWELS else "close" if seg.phone in CLOSE_VOWELS else "")
    canonical, peak, kind = np.array(canonical), np.array(peak), np.array(kind, dtype=str)
    rho = math.nan
    if len(peak) >= 2 and np.ptp(canonical) > 0 and np.ptp(peak) > 0:
        rho = float(spearmanr(canonical, peak).statistic)
    diff = peak[kind == "open"][:, None] - peak[kind == "close"][None, :]
    pairs = diff.size
    pairwise = float(np.mean((diff > 0) + 0.5 * (diff == 0))) if pairs else math.nan
    return OpennessAgreement(rho, pairwise, len(peak), pairs)


def openness_reference(phonemes: list[PhonemeSegment], fps: float, frames: int) -> np.ndarray:
    """Expected mouth openness per frame from the timings.

    The value is the vowel's ``VOWEL_OPENNESS``, 0 for bilabials, silence and uncovered time, and
    ``CONSONANT_OPENNESS`` for other consonants. The frame at time ``t`` takes the phone with
    ``start <= t < end``.
    """
    fps = _check_fps(fps)
    ref = np.zeros(frames)
    t = np.arange(frames) / fps + 1e-9  # a boundary summed from durations may miss by 1 ulp
    for seg in validate_timeline(phonemes):
        if seg.phone in VOWEL_OPENNESS:
            value = VOWEL_OPENNESS[seg.phone]
        elif seg.phone in BILABIALS or seg.phone == SILENCE:
            value = 0.0
        else:
            value = CONSONANT_OPENNESS
        ref[(t >= seg.start) & (t < seg.end)] = value
    return ref


def audio_motion_lag(
    weights: np.ndarray,
    fps: float,
    phonemes: list[PhonemeSegment],
    *,
    max_lag_frames: int = 10,  # search lags in [-max, +max] frames
) -> Lag:
    """How far the mouth trails (+) or leads (-) the phonemes, from the best cross-correlation.

    The reference is :func:`openness_reference`, the measured curve is the lip gap, and the lag
    is searched with :func:`best_lag`. Lag ``L`` means the gap at frame ``i + L`` follows the
    reference at frame ``i``.
    """
    gap = lip_gap_curve(weights)
    return best_lag(openness_reference(phonemes, fps, len(gap)), gap, fps, max_lag_frames=max_lag_frames)


def audio_envelope_lag(
    weights: np.ndarray,
    fps: float,
    audio: np.ndarray,
    sample_rate: int,
    *,
    max_lag_frames: int = 10,  # search lags in [-max, +max] frames
) -> Lag:
    """Like :func:`audio_motion_lag` but with the audio's RMS envelope as the reference.

    Use it for speech without phoneme timings. Frame ``i``'s envelope is the RMS of the samples
    in ``[(i - 1/2)/fps, (i + 1/2)/fps)``. Loudness and mouth opening are only loosely linked (a
    loud /m/ has closed lips), so compare lags between models rather than expecting exactly 0.
    """
    gap = lip_gap_curve(weights)
    return best_lag(rms_envelope(audio, sample_rate, fps, len(gap)), gap, fps, max_lag_frames=max_lag_frames)


def rms_envelope(audio: np.ndarray, sample_rate: int, fps: float, frames: int) -> np.ndarray:
    """RMS per motion frame over a one-frame window centred on the frame's time; 0 past the end."""
    fps = _check_fps(fps)
    x = np.asarray(audio, dtype=np.float64)
    if x.ndim != 1:
        raise ValueError(f"audio must be mono (1-D), got shape {x.shape}")
    if sample_rate <= 0:
        raise ValueError(f"sample_rate must be positive, got {sample_rate}")
    energy = np.concatenate([[0.0], np.cumsum(x * x)])
    centres = np.arange(frames) / fps * sample_rate
    half = 0.5 * sample_rate / fps
    lo = np.clip(np.round(centres - half).astype(np.int64), 0, len(x))
    hi = np.clip(np.round(centres + half).astype(np.int64), 0, len(x))
    n = hi - lo
    return np.sqrt(np.divide(energy[hi] - energy[lo], n, out=np.zeros(frames), where=n > 0))


def best_lag(reference: np.ndarray, measured: np.ndarray, fps: float, *, max_lag_frames: int = 10) -> Lag:
    """The lag in ``[-max, max]`` that maximises the Pearson correlation of the overlapping parts.

    For lag ``L`` the pairs are ``(reference[i], measured[i + L])``. Each overlap is z-scored on
    its own, which makes this a normalised cross-correlation that stays in [-1, 1] however much
    the two signals overlap. Lags whose overlap has fewer than 3 frames or no variation are
    skipped. Ties go to the smaller ``|L|``. Written by hand because numpy and scipy correlate
    over all lags without per-lag normalisation.
    """
    fps = _check_fps(fps)
    ref = np.asarray(reference, dtype=np.float64)
    meas = np.asarray(measured, dtype=np.float64)
    if ref.shape != meas.shape or ref.ndim != 1:
        raise ValueError(f"reference {ref.shape} and measured {meas.shape} must be equal-length 1-D curves")
    if max_lag_frames < 0:
        raise ValueError(f"max_lag_frames must be >= 0, got {max_lag_frames}")
    n = len(ref)
    best: tuple[float, int] | None = None
    for lag in sorted(range(-max_lag_frames, max_lag_frames + 1), key=abs):
        a = ref[: n - lag] if lag >= 0 else ref[-lag:]
        b = meas[lag:] if lag >= 0 else meas[: n + lag]
        if len(a) < 3 or np.ptp(a) == 0 or np.ptp(b) == 0:
            continue
        r = float(np.corrcoef(a, b)[0, 1])
        if best is None or r > best[0]:
            best = (r, lag)
    if best is None:
        return Lag(None, math.nan, math.nan)
    return Lag(best[1], best[1] / fps, best[0])


def _frames_in(seg: PhonemeSegment, fps: float, frames: int, tolerance: float) -> np.ndarray:
    """Indices ``i`` with ``start - tol/fps <= i/fps <= end + tol/fps`` (within ``[0, frames)``)."""
    eps = 1e-9  # a phone boundary that falls exactly on a frame keeps that frame
    lo = max(0, math.ceil(seg.start * fps - tolerance - eps))
    hi = min(frames - 1, math.floor(seg.end * fps + tolerance + eps))
    return np.arange(lo, hi + 1) if hi >= lo else np.arange(0)


def _check_fps(fps: float) -> float:
    fps = float(fps)
    if not fps > 0:
        raise ValueError(f"fps must be positive, got {fps}")
    return fps
