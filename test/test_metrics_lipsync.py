"""Lip-sync measures on constructed timelines whose answers are known in advance."""
import math

import numpy as np
import pytest

from talking_face_ros import arkit
from talking_face_ros.lip_geometry import NEUTRAL_GAP, lip_gap
from talking_face_ros.metrics import lipsync
from talking_face_ros.phonemes import VOWEL_OPENNESS, PhonemeSegment

FPS = 30.0
JAW = arkit.INDEX["jawOpen"]


def timeline(*phones_and_durations, start=0.0):
    out, t = [], start
    for phone, dur in phones_and_durations:
        out.append(PhonemeSegment(phone, t, t + dur))
        t += dur
    return out


def jaw_weights(jaw_open):
    w = np.zeros((len(jaw_open), 52), dtype=np.float32)
    w[:, JAW] = jaw_open
    return w


def test_lip_gap_curve_is_the_shared_measure():
    w = jaw_weights([0.0, 0.5])
    np.testing.assert_allclose(lipsync.lip_gap_curve(w), lip_gap(w))
    assert lipsync.lip_gap_curve(w)[0] == pytest.approx(NEUTRAL_GAP)  # neutral lips touch: closed


def test_closure_rate_three_of_four():
    # SIL, then four bilabials separated by AA; the lips close on all but the third
    segs = timeline(("SIL", 0.2), ("M", 0.1), ("AA", 0.2), ("B", 0.1), ("AA", 0.2), ("P", 0.1),
                    ("AA", 0.2), ("M", 0.1), ("SIL", 0.2))
    t = np.arange(int(1.4 * FPS)) / FPS
    jaw = np.full(len(t), 0.5)  # open: gap 1.7 cm
    for seg in segs:
        if seg.phone in {"M", "B"}:
            jaw[(t >= seg.start) & (t <= seg.end)] = 0.0  # closed: gap 0.076 cm
    result = lipsync.bilabial_closure_rate(jaw_weights(jaw), FPS, segs)
    assert (result.rate, result.closed, result.total) == (0.75, 3, 4)


def test_short_bilabial_between_frames_is_not_missed():
    # frames at 10/30 = 0.3333 s and 11/30 = 0.3667 s; the /b/ lasts 20 ms in between
    segs = [PhonemeSegment("AA", 0.0, 0.34), PhonemeSegment("B", 0.34, 0.36), PhonemeSegment("AA", 0.36, 0.6)]
    jaw = np.full(18, 0.5)
    jaw[11] = 0.0  # the lips close on the frame right after the /b/
    result = lipsync.bilabial_closure_rate(jaw_weights(jaw), FPS, segs)
    assert (result.rate, result.closed, result.total) == (1.0, 1, 1)
    # without the half-frame tolerance the /b/ has no frame at all and is not evaluated
    strict = lipsync.bilabial_closure_rate(jaw_weights(jaw), FPS, segs, tolerance_frames=0.0)
    assert strict.total == 0 and math.isnan(strict.rate)


def test_bilabials_past_the_end_of_the_motion_are_left_out():
    segs = timeline(("M", 0.1), ("AA", 0.5), ("B", 0.1))  # the /b/ starts at 0.6 s
    result = lipsync.bilabial_closure_rate(jaw_weights(np.zeros(9)), FPS, segs)  # 0.27 s of motion
    assert (result.rate, result.closed, result.total) == (1.0, 1, 1)


def vowel_weights(segs, openness_of):
    """Jaw opening proportional to openness_of(phone) during each segment."""
    t = np.arange(int(segs[-1].end * FPS) + 1) / FPS
    jaw = np.zeros(len(t))
    for seg in segs:
        jaw[(t >= seg.start) & (t < seg.end)] = openness_of(seg.phone)
    return jaw_weights(jaw)


def test_vowel_openness_perfect_and_reversed_order():
    segs = timeline(("AA", 0.2), ("T", 0.1), ("IY", 0.2), ("T", 0.1), ("EH", 0.2), ("T", 0.1),
                    ("UW", 0.2), ("T", 0.1), ("AE", 0.2), ("SIL", 0.1))
    good = lipsync.vowel_openness_agreement(vowel_weights(segs, lambda p: VOWEL_OPENNESS.get(p, 0.0)), FPS, segs)
    assert good.spearman == pytest.approx(1.0)
    assert good.vowels == 5
    assert good.pairs == 2 * 2  # open {AA, AE} x close {IY, UW}
    assert good.pairwise == pytest.approx(1.0)
    bad = lipsync.vowel_openness_agreement(
        vowel_weights(segs, lambda p: 1.0 - VOWEL_OPENNESS[p] if p in VOWEL_OPENNESS else 0.0), FPS, segs)
    assert bad.spearman == pytest.approx(-1.0)
    assert bad.pairwise == pytest.approx(0.0)


def test_vowel_openness_ties_and_undefined_cases():
    segs = timeline(("AA", 0.2), ("T", 0.1), ("IY", 0.2))
    same = lipsync.vowel_openness_agreement(vowel_weights(segs, lambda p: 0.3 if p != "T" else 0.0), FPS, segs)
    assert same.pairwise == pytest.approx(0.5)  # a tie counts one half
    assert math.isnan(same.spearman)  # constant peaks: no rank correlation
    none = lipsync.vowel_openness_agreement(jaw_weights(np.zeros(10)), FPS, timeline(("M", 0.3)))
    assert none.vowels == 0 and none.pairs == 0 and math.isnan(none.pairwise)


def test_openness_reference_values():
    segs = timeline(("SIL", 0.1), ("AA", 0.1), ("S", 0.1), ("M", 0.1))
    ref = lipsync.openness_reference(segs, 10.0, 5)  # frames at 0, .1, .2, .3, .4 s
    np.testing.assert_allclose(ref, [0.0, 1.0, lipsync.CONSONANT_OPENNESS, 0.0, 0.0])


def speech_timeline():
    rng = np.random.default_rng(3)
    phones = ["AA", "T", "IY", "M", "EH", "S", "UW", "B", "AE", "K", "OW", "P", "IH", "N"]
    return timeline(*[(p, float(rng.uniform(0.06, 0.2))) for p in phones * 2], ("SIL", 0.3), start=0.2)


def weights_following(reference, delay):
    """jawOpen that reproduces the reference `delay` frames later (the lip gap is affine in it)."""
    shifted = np.roll(reference, delay)
    if delay > 0:
        shifted[:delay] = reference[0]
    elif delay < 0:
        shifted[delay:] = reference[-1]
    return jaw_weights(shifted * 0.4)


@pytest.mark.parametrize("delay", [2, 0, -3])
def test_audio_motion_lag_finds_a_known_delay(delay):
    segs = speech_timeline()
    ref = lipsync.openness_reference(segs, FPS, int(segs[-1].end * FPS))
    lag = lipsync.audio_motion_lag(weights_following(ref, delay), FPS, segs)
    assert lag.frames == delay
    assert lag.seconds == pytest.approx(delay / FPS)
    assert lag.correlation > 0.95


def test_lag_search_window_and_static_face():
    segs = speech_timeline()
    ref = lipsync.openness_reference(segs, FPS, int(segs[-1].end * FPS))
    lag = lipsync.audio_motion_lag(weights_following(ref, 6), FPS, segs, max_lag_frames=3)
    assert abs(lag.frames) <= 3  # a lag beyond the window cannot be reported
    still = lipsync.audio_motion_lag(jaw_weights(np.zeros(len(ref))), FPS, segs)
    assert still.frames is None and math.isnan(still.correlation)


def test_rms_envelope_by_hand():
    sr = 300  # 10 samples per frame at 30 fps
    audio = np.concatenate([np.full(20, 0.5), np.zeros(20)])  # 0.5 for 2/30 s, then silence
    env = lipsync.rms_envelope(audio, sr, FPS, 6)
    # frame 0 sees samples [0, 5) (clipped at the start), frame 1 [5, 15), frame 2 [15, 25): 5 of 10 loud
    np.testing.assert_allclose(env[:3], [0.5, 0.5, math.sqrt(0.25 * 5 / 10)])
    np.testing.assert_allclose(env[3:5], [0.0, 0.0])
    assert env[5] == 0.0  # window [45, 55) lies past the end of the audio


def test_audio_envelope_lag_finds_a_known_delay():
    sr = 16000
    rng = np.random.default_rng(4)
    frames = 90
    loudness = np.repeat(rng.uniform(0.0, 1.0, frames // 5), 5)  # syllable-like steps
    t = np.arange(int(frames / FPS * sr)) / sr
    audio = np.interp(t, np.arange(frames) / FPS, loudness) * np.sin(2 * np.pi * 220 * t)
    env = lipsync.rms_envelope(audio, sr, FPS, frames)
    lag = lipsync.audio_envelope_lag(weights_following(env, 2), FPS, audio, sr)
    assert lag.frames == 2
    assert lag.correlation > 0.95


def test_bad_inputs_raise():
    with pytest.raises(ValueError, match="fps"):
        lipsync.bilabial_closure_rate(jaw_weights(np.zeros(3)), 0.0, [])
    with pytest.raises(ValueError, match="overlap"):
        lipsync.audio_motion_lag(jaw_weights(np.zeros(3)), FPS,
                                 [PhonemeSegment("AA", 0.0, 0.2), PhonemeSegment("M", 0.1, 0.3)])
    with pytest.raises(ValueError, match="52"):
        lipsync.lip_gap_curve(np.zeros((3, 50)))
    with pytest.raises(ValueError, match="mono"):
        lipsync.rms_envelope(np.zeros((10, 2)), 16000, FPS, 3)

