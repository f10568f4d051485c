"""The procedural teacher: lip seals, coarticulation, expressions, eyes, determinism, validation."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from talking_face_ros.arkit import ARKIT_NAMES, INDEX, LIPS, NUM_BLENDSHAPES, indices, mirror_name
from talking_face_ros.data.sample import frame_count
from talking_face_ros.emotions import EMOTIONS, INTENSITY_SCALE
from talking_face_ros.lip_geometry import lip_gap, lips_closed
from talking_face_ros.phonemes import (
    BILABIALS, CLOSE_VOWELS, OPEN_VOWELS, PHONEMES, VOWEL_OPENNESS, VOWELS, PhonemeSegment,
)
from talking_face_ros.style import SpeakingStyle
from talking_face_ros.teacher import expression_layer, phonemes_to_blendshapes

FPS = 30.0


def timeline(*spec, start=0.3, tail=0.3):
    """Back-to-back segments from ``(phone, seconds)`` pairs; returns (segments, duration)."""
    out, t = [], start
    for phone, d in spec:
        out.append(PhonemeSegment(phone, t, t + d))
        t += d
    return out, t + tail


def segment_frames(seg, fps, frames):
    """Frames depicting a segment: those whose time lies in it, else the one nearest its centre."""
    t = np.arange(frames) / fps
    inside = np.flatnonzero((t >= seg.start) & (t < seg.end))
    if len(inside):
        return inside
    return np.array([min(int(round(0.5 * (seg.start + seg.end) * fps)), frames - 1)])


def centre_frame(seg, fps=FPS):
    return int(round(0.5 * (seg.start + seg.end) * fps))


def w(m, name, frames=slice(None)):
    return m[frames, INDEX[name]]


# ---------------------------------------------------------------------------------------------
# Random timelines (hypothesis)

styles = st.builds(
    SpeakingStyle,
    articulation=st.floats(0.6, 1.4), mouth_width=st.floats(-1.0, 1.0), smile_bias=st.floats(-1.0, 1.0),
    blink_rate=st.floats(0.0, 0.6), jaw_bias=st.floats(0.7, 1.3), brow_activity=st.floats(0.0, 2.0),
)
phones = st.one_of(st.sampled_from(sorted(PHONEMES)), st.sampled_from(sorted(BILABIALS)))
durations = st.one_of(st.sampled_from([0.0, 0.02, 0.02, 0.035]), st.floats(0.02, 0.3))


@st.composite
def timelines(draw):
    t = draw(st.floats(0.0, 0.4))
    segs = []
    for phone, d, gap in draw(st.lists(st.tuples(phones, durations, st.sampled_from([0.0, 0.0, 0.0, 0.07])),
                                       min_size=0, max_size=25)):
        t += gap
        segs.append(PhonemeSegment(phone, t, t + d))
        t += d
    return segs, t + draw(st.floats(0.0, 0.4))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    tl=timelines(), fps=st.sampled_from([24.0, 25.0, 30.0, 60.0]), emotion=st.sampled_from(EMOTIONS),
    intensity=st.sampled_from([1, 2, 3]), style=styles, seed=st.integers(0, 2**31), loud=st.booleans(),
)
def test_bilabials_always_seal_the_lips(tl, fps, emotion, intensity, style, seed, loud):
    segs, duration = tl
    n = frame_count(duration, fps)
    loudness = np.random.default_rng(seed).uniform(0.0, 0.3, n) if loud else None
    m = phonemes_to_blendshapes(segs, duration=duration, fps=fps, emotion=emotion, intensity=intensity,
                                style=style, seed=seed, loudness=loudness,
                                loudness_rate=fps if loud else None)
    assert m.shape == (n, NUM_BLENDSHAPES) and m.dtype == np.float32
    assert np.all(np.isfinite(m)) and m.min() >= 0.0 and m.max() <= 1.0
    closed = lips_closed(m)
    for seg in segs:
        if seg.phone in BILABIALS:
            frames = segment_frames(seg, fps, n)
            # Sealed on every frame inside the segment (and on the nearest one if none is inside).
            assert closed[frames].all(), (seg, emotion, intensity, style, lip_gap(m)[frames])


def test_twenty_ms_bilabial_between_frames_in_wide_open_speech():
    # /b/ of 20 ms falls between frames 15 (0.500 s) and 16 (0.533 s); surprise holds the jaw open.
    segs = [PhonemeSegment("AA", 0.2, 0.505), PhonemeSegment("B", 0.505, 0.525),
            PhonemeSegment("AA", 0.525, 0.8)]
    style = SpeakingStyle(articulation=1.4, jaw_bias=1.3)
    m = phonemes_to_blendshapes(segs, duration=1.0, emotion="surprised", intensity=3, style=style)
    gap = lip_gap(m)
    assert gap[centre_frame(segs[1])] <= 0.15
    # ... while the vowels around it stay open (the seal is local): over 1 cm at their middles.
    assert gap[centre_frame(segs[0])] > 1.0 and gap[centre_frame(segs[2])] > 1.0
    # Lips close no faster than about 30 cm/s (1 cm per frame at 30 fps).
    assert np.abs(np.diff(gap)).max() < 1.0


def test_long_m_holds_the_lips_closed_throughout():
    segs, duration = timeline(("AA", 0.2), ("M", 0.5), ("AA", 0.2))
    m = phonemes_to_blendshapes(segs, duration=duration, emotion="happy", intensity=3)
    assert lips_closed(m)[segment_frames(segs[1], FPS, len(m))].all()
    # mouthClose never exceeds jawOpen (ARKit: it closes the lips of an open jaw).
    assert np.all(w(m, "mouthClose") <= w(m, "jawOpen") + 1e-6)


# ---------------------------------------------------------------------------------------------
# Visemes and coarticulation


def vowel_frame(v):
    """Weights at the middle of a 0.25 s vowel between two /t/ (lip-neutral consonants)."""
    segs, duration = timeline(("T", 0.08), (v, 0.25), ("T", 0.08))
    m = phonemes_to_blendshapes(segs, duration=duration)
    return m[centre_frame(segs[1])], m[segment_frames(segs[1], FPS, len(m))]


def test_rounded_vowels_round_and_spread_vowels_spread():
    rounded = {v: vowel_frame(v)[0] for v in ("UW", "UH", "OW", "AO")}
    spread = {v: vowel_frame(v)[0] for v in ("IY", "IH", "EY", "EH")}
    rounding = lambda f: f[INDEX["mouthPucker"]] + f[INDEX["mouthFunnel"]]  # noqa: E731
    assert min(rounding(f) for f in rounded.values()) > max(rounding(f) for f in spread.values()) + 0.2
    stretch = lambda f: f[INDEX["mouthStretchLeft"]]  # noqa: E731
    assert min(stretch(f) for f in spread.values()) > max(stretch(f) for f in rounded.values()) + 0.05
    assert rounded["UW"][INDEX["mouthPucker"]] > 0.5  # /u/ is the most protruded


def test_open_vowels_open_the_lips_more_than_close_vowels():
    peak = {v: lip_gap(vowel_frame(v)[1]).max() for v in VOWELS}
    assert min(peak[v] for v in OPEN_VOWELS) > max(peak[v] for v in CLOSE_VOWELS) + 0.2
    # Physiological scale on the ICT rig: /a/ opens about 2 cm, /i/ about half a centimetre.
    assert 1.5 < peak["AA"] < 2.5 and 0.3 < peak["IY"] < 0.9
    # Jaw opening follows the openness table (rank correlation over all monophthongs).
    mono = [v for v in VOWELS if v not in ("AY", "AW", "EY", "OW", "OY")]
    jaw = [vowel_frame(v)[0][INDEX["jawOpen"]] for v in mono]
    ranks = lambda x: np.argsort(np.argsort(x))  # noqa: E731
    assert np.corrcoef(ranks(jaw), ranks([VOWEL_OPENNESS[v] for v in mono]))[0, 1] > 0.95


def test_anticipatory_rounding_spreads_over_preceding_consonants():
    def pucker(v):
        segs, duration = timeline(("SIL", 0.3), ("IY", 0.15), ("S", 0.08), ("T", 0.06), (v, 0.2))
        return w(phonemes_to_blendshapes(segs, duration=duration), "mouthPucker"), segs

    round_, segs = pucker("UW")
    spread, _ = pucker("IY")
    onset = segs[-1].start
    times = np.arange(len(round_)) / FPS
    before = np.flatnonzero((times >= segs[2].start) & (times < onset))
    # During /s t/, before the vowel is heard, the lips already round for /u/ (not for /i/).
    assert np.all(round_[before] > spread[before])
    assert round_[before[-1]] > 0.5 * round_[centre_frame(segs[-1])] > 0.2
    assert np.all(np.diff(round_[before]) > 0)  # and rounding grows toward the vowel


@pytest.mark.parametrize("consonant", ["K", "G", "HH", "T", "D"])
def test_lip_neutral_consonants_take_their_lips_from_the_vowel(consonant):
    def at_consonant(v):
        segs, duration = timeline(("AH", 0.12), (consonant, 0.08), (v, 0.2))
        m = phonemes_to_blendshapes(segs, duration=duration)
        return m[centre_frame(segs[1])]

    before_u, before_i = at_consonant("UW"), at_consonant("IY")
    assert before_u[INDEX["mouthPucker"]] > before_i[INDEX["mouthPucker"]] + 0.2
    assert before_i[INDEX["mouthStretchLeft"]] > before_u[INDEX["mouthStretchLeft"]] + 0.05


def test_labiodentals_roll_the_lower_lip_and_th_shows_the_tongue():
    segs, duration = timeline(("AA", 0.2), ("F", 0.12), ("AA", 0.2), ("TH", 0.12), ("AA", 0.2))
    m = phonemes_to_blendshapes(segs, duration=duration)
    f, th, a = centre_frame(segs[1]), centre_frame(segs[3]), centre_frame(segs[0])
    assert w(m, "mouthRollLower", f) > 0.3 and w(m, "mouthUpperUpLeft", f) > 0.05
    assert w(m, "mouthRollLower", a) < 0.05
    assert lip_gap(m[f]) < 0.6 < lip_gap(m[a])  # lower lip up against the upper teeth
    assert w(m, "tongueOut", th) > 0.15 and w(m, "tongueOut", a) < 0.02


def test_diphthongs_glide():
    segs, duration = timeline(("T", 0.08), ("AY", 0.3), ("T", 0.08), ("OY", 0.3), ("T", 0.08))
    m = phonemes_to_blendshapes(segs, duration=duration)
    ay, oy = segs[1], segs[3]
    early = lambda s: int(round((s.start + 0.2 * s.duration) * FPS))  # noqa: E731
    late = lambda s: int(round((s.start + 0.85 * s.duration) * FPS))  # noqa: E731
    assert w(m, "jawOpen", early(ay)) > w(m, "jawOpen", late(ay)) + 0.1  # /a/ -> /i/: closes ...
    assert w(m, "mouthStretchLeft", late(ay)) > w(m, "mouthStretchLeft", early(ay)) + 0.05  # ... spreads
    assert w(m, "mouthFunnel", early(oy)) > w(m, "mouthFunnel", late(oy)) + 0.1  # /o/ -> /i/: unrounds


def test_smooth_motion_and_lag_within_one_frame():
    rng = np.random.default_rng(3)
    cons, vows = sorted(PHONEMES - VOWELS - {"SIL"}), sorted(VOWELS)
    segs, t = [], 0.3
    for i in range(160):
        phone = cons[rng.integers(len(cons))] if i % 2 == 0 else vows[rng.integers(len(vows))]
        d = rng.uniform(0.04, 0.1) if i % 2 == 0 else rng.uniform(0.06, 0.2)
        segs.append(PhonemeSegment(phone, t, t + d))
        t += d
    m = phonemes_to_blendshapes(segs, duration=t + 0.3)
    gap = lip_gap(m)
    # Jaw and lips move like masses: bounded per-frame change (jaw < 4.5/s, lip gap < 25 cm/s).
    assert np.abs(np.diff(w(m, "jawOpen"))).max() < 0.15
    assert np.abs(np.diff(gap)).max() < 0.85
    # Lip opening follows the vowels' openness with at most one frame of lag or lead.
    times = np.arange(len(m)) / FPS
    openness = np.zeros(len(m))
    for s in segs:
        if s.phone in VOWELS:
            openness[(times >= s.start) & (times < s.end)] = VOWEL_OPENNESS[s.phone]
    g, o = gap - gap.mean(), openness - openness.mean()
    lags = np.arange(-5, 6)  # negative: the lips move before the sound
    cc = [np.dot(g[max(0, k): len(g) + min(0, k)], o[max(0, -k): len(o) + min(0, -k)]) for k in lags]
    assert lags[int(np.argmax(cc))] in (-1, 0)


# ---------------------------------------------------------------------------------------------
# Emotion


def test_expression_layers_follow_facs():
    e = {emo: expression_layer(emo, 3) for emo in EMOTIONS}
    both = lambda layer, name: (layer[INDEX[name + "Left"]], layer[INDEX[name + "Right"]])  # noqa: E731
    assert np.all(e["neutral"] == 0)
    left, right = both(e["happy"], "mouthSmile")
    assert left == right > 0.3 and min(both(e["happy"], "cheekSquint")) > 0.2  # AU6 + AU12
    assert e["sad"][INDEX["browInnerUp"]] > 0.3 and min(both(e["sad"], "mouthFrown")) > 0.3  # AU1 + AU15
    assert 0 < e["sad"][INDEX["browDownLeft"]] < e["sad"][INDEX["browInnerUp"]]  # AU4, slight
    assert min(both(e["angry"], "browDown")) > 0.5 and min(both(e["angry"], "mouthPress")) > 0.2  # AU4 + AU24
    assert min(both(e["angry"], "eyeSquint")) > 0.2  # AU7
    assert min(both(e["surprised"], "browOuterUp")) > 0.5 and e["surprised"][INDEX["jawOpen"]] > 0.2
    assert min(both(e["surprised"], "eyeWide")) > 0.3
    assert min(both(e["fearful"], "eyeWide")) > 0.5 and min(both(e["fearful"], "mouthStretch")) > 0.4
    assert e["fearful"][INDEX["browInnerUp"]] > 0.4 and min(both(e["fearful"], "browDown")) > 0.2
    assert min(both(e["disgusted"], "noseSneer")) > 0.5 and min(both(e["disgusted"], "mouthUpperUp")) > 0.4
    dl, dr = both(e["contemptuous"], "mouthDimple")
    sl, sr = both(e["contemptuous"], "mouthSmile")
    assert (dl == 0 and dr > 0.5) and (sl == 0 and sr > 0.1)  # AU14, one side only
    # Each emotion is its own expression.
    names = [x for x in EMOTIONS if x != "neutral"]
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            assert np.linalg.norm(e[a] - e[b]) > 0.5, (a, b)


@pytest.mark.parametrize("emotion", [e for e in EMOTIONS if e != "neutral"])
def test_expression_intensity_scales_the_layer(emotion):
    layers = [expression_layer(emotion, i) for i in (1, 2, 3)]
    norms = [np.linalg.norm(x) for x in layers]
    assert norms[0] < norms[1] < norms[2]
    ratio = INTENSITY_SCALE[1] / INTENSITY_SCALE[3]
    np.testing.assert_allclose(layers[0], layers[2] * ratio, atol=1e-6)
    if emotion != "contemptuous":  # only contempt is one-sided
        for name in ARKIT_NAMES:
            assert layers[2][INDEX[name]] == layers[2][INDEX[mirror_name(name)]]


def silent_face(emotion, intensity=3, duration=3.0, **kw):
    return phonemes_to_blendshapes([], duration=duration, emotion=emotion, intensity=intensity, **kw)


@pytest.mark.parametrize("emotion", [e for e in EMOTIONS if e != "neutral"])
def test_the_face_shows_the_expression_layer(emotion):
    m = silent_face(emotion, intensity=2, seed=11)
    face = np.median(m[30:60], axis=0)  # 1-2 s: past the onset, before the offset; median skips blinks
    layer = expression_layer(emotion, 2)
    keep = indices([n for n in ARKIT_NAMES if not n.startswith("eyeLook")])
    assert np.abs(face[keep] - layer[keep]).max() < 0.1
    assert np.corrcoef(face[keep], layer[keep])[0, 1] > 0.97


def test_expression_appears_over_time_with_onset_and_offset():
    m = silent_face("happy", duration=4.0)
    smile = w(m, "mouthSmileLeft")
    middle = smile[45:75].mean()
    assert middle > 0.5 * expression_layer("happy", 3)[INDEX["mouthSmileLeft"]]
    assert smile[0] < 0.5 * middle  # ramps in over the first half second ...
    assert smile[15:].min() > 0.5 * middle  # ... and is established by 0.5 s
    assert smile[-1] < 0.9 * middle  # eases off at the end
    assert np.abs(np.diff(smile)).max() < 0.1  # smoothly
    ordering = [silent_face("happy", i)[45:75, INDEX["mouthSmileLeft"]].mean() for i in (1, 2, 3)]
    assert ordering[0] < ordering[1] < ordering[2]
    surprised, neutral = silent_face("surprised"), silent_face("neutral")
    assert w(surprised, "browOuterUpLeft", slice(45, 75)).mean() > w(neutral, "browOuterUpLeft").max() + 0.3


def test_speech_and_emotion_combine():
    segs, duration = timeline(("S", 0.08), ("IY", 0.2), ("T", 0.08), ("AA", 0.25), ("T", 0.08), ("UW", 0.25))
    neutral = phonemes_to_blendshapes(segs, duration=duration)
    happy = phonemes_to_blendshapes(segs, duration=duration, emotion="happy", intensity=3)
    sad = phonemes_to_blendshapes(segs, duration=duration, emotion="sad", intensity=3)
    iy, aa, uw = (centre_frame(s) for s in (segs[1], segs[3], segs[5]))
    wide = lambda m, f: m[f, INDEX["mouthSmileLeft"]] + m[f, INDEX["mouthStretchLeft"]]  # noqa: E731
    assert wide(happy, iy) > wide(neutral, iy) + 0.2  # smiling widens /i/ ...
    assert happy[uw, INDEX["mouthPucker"]] < neutral[uw, INDEX["mouthPucker"]]  # ... flattens /u/
    assert happy[uw, INDEX["mouthPucker"]] > 0.3  # ... but /u/ is still rounded
    assert sad[aa, INDEX["jawOpen"]] < 0.9 * neutral[aa, INDEX["jawOpen"]]  # sadness articulates less


# ---------------------------------------------------------------------------------------------
# Eyes, brows, style


def blink_onsets(m):
    lid = w(m, "eyeBlinkLeft")
    return np.flatnonzero((lid[1:] >= 0.5) & (lid[:-1] < 0.5))


@pytest.mark.parametrize("rate", [0.15, 0.28, 0.5])
def test_blinks_at_the_style_rate(rate):
    count = 0
    for seed in range(4):  # 4 x 4 minutes of silence: the count's spread is about 7 %
        m = silent_face("neutral", duration=240.0, style=SpeakingStyle(blink_rate=rate), seed=seed)
        assert np.array_equal(w(m, "eyeBlinkLeft"), w(m, "eyeBlinkRight"))  # both lids together
        count += len(blink_onsets(m))
        # Each blink is brief: closed (>= 0.5) for at most 4 frames (133 ms).
        closed = np.concatenate([[0], (w(m, "eyeBlinkLeft") >= 0.5).astype(int), [0]])
        runs = np.flatnonzero(np.diff(closed) == -1) - np.flatnonzero(np.diff(closed) == 1)
        assert runs.max() <= 4 and w(m, "eyeBlinkLeft").max() > 0.8
    assert 0.8 * rate * 960 < count < 1.2 * rate * 960


def test_no_blinks_at_rate_zero_and_gaze_is_conjugate():
    m = silent_face("neutral", duration=60.0, style=SpeakingStyle(blink_rate=0.0))
    assert len(blink_onsets(m)) == 0
    # Looking left = left eye out + right eye in; the two eyes never disagree.
    np.testing.assert_array_equal(w(m, "eyeLookOutLeft"), w(m, "eyeLookInRight"))
    np.testing.assert_array_equal(w(m, "eyeLookInLeft"), w(m, "eyeLookOutRight"))
    np.testing.assert_array_equal(w(m, "eyeLookUpLeft"), w(m, "eyeLookUpRight"))
    np.testing.assert_array_equal(w(m, "eyeLookDownLeft"), w(m, "eyeLookDownRight"))
    assert np.all(w(m, "eyeLookOutLeft") * w(m, "eyeLookInLeft") == 0)
    horizontal = w(m, "eyeLookOutLeft") - w(m, "eyeLookInLeft")
    assert 0.02 < horizontal.std() and np.abs(horizontal).max() < 0.4  # alive, but conversational


def test_brows_rise_on_the_loud_syllable():
    segs, duration = timeline(*[(p, d) for _ in range(5) for p, d in (("T", 0.08), ("AA", 0.15))])
    n = frame_count(duration, FPS)
    loudness = np.full(n, 0.05)
    loud = segs[5]  # third vowel
    loudness[int(loud.start * FPS): int(loud.end * FPS) + 1] = 0.2
    m = phonemes_to_blendshapes(segs, duration=duration, loudness=loudness, loudness_rate=FPS)
    brow = w(m, "browOuterUpLeft")
    near = slice(int((loud.start - 0.1) * FPS), int((loud.end + 0.2) * FPS))
    assert brow[near].max() > 0.1
    assert brow[near].max() > 3 * np.delete(brow, np.arange(n)[near]).max()
    # Without loudness, the long (stressed) vowel carries the emphasis.
    segs2, duration2 = timeline(("T", 0.08), ("AA", 0.1), ("T", 0.08), ("AA", 0.3), ("T", 0.08), ("AA", 0.1))
    m2 = phonemes_to_blendshapes(segs2, duration=duration2)
    long_v = centre_frame(segs2[3])
    assert w(m2, "browOuterUpLeft", long_v) > 0.1 > w(m2, "browOuterUpLeft", centre_frame(segs2[1]))
    quiet = phonemes_to_blendshapes(segs2, duration=duration2, style=SpeakingStyle(brow_activity=0.0))
    assert w(quiet, "browOuterUpLeft").max() == 0.0
    angry = phonemes_to_blendshapes(segs2, duration=duration2, emotion="angry", intensity=1)
    assert w(angry, "browDownLeft", long_v) > w(angry, "browDownLeft", centre_frame(segs2[5])) + 0.05


def test_speaking_style_shapes_the_mouth():
    segs, duration = timeline(("T", 0.08), ("AA", 0.25), ("T", 0.08), ("UW", 0.25), ("SIL", 0.5))
    aa, uw = centre_frame(segs[1]), centre_frame(segs[3])
    rest = int((segs[4].start + 0.4) * FPS)

    def run(**kw):
        return phonemes_to_blendshapes(segs, duration=duration, style=SpeakingStyle(**kw))

    assert w(run(articulation=1.4), "jawOpen", aa) > 1.2 * w(run(articulation=0.6), "jawOpen", aa)
    jaw_heavy, lip_heavy = run(jaw_bias=1.3), run(jaw_bias=0.7)
    assert w(jaw_heavy, "jawOpen", aa) > w(lip_heavy, "jawOpen", aa)
    assert w(jaw_heavy, "mouthLowerDownLeft", aa) < w(lip_heavy, "mouthLowerDownLeft", aa)
    wide, narrow = run(mouth_width=1.0), run(mouth_width=-1.0)
    assert w(wide, "mouthStretchLeft", rest) > 0.03 and w(narrow, "mouthPucker", rest) > 0.03
    assert w(wide, "mouthPucker", uw) < w(narrow, "mouthPucker", uw)
    assert w(run(smile_bias=1.0), "mouthSmileRight", rest) > 0.1
    assert w(run(smile_bias=-1.0), "mouthFrownLeft", rest) > 0.1


# ---------------------------------------------------------------------------------------------
# Rest, symmetry, determinism, validation


def test_silence_is_a_face_at_rest():
    for segs in ([], [PhonemeSegment("SIL", 0.0, 2.0)]):
        m = phonemes_to_blendshapes(segs, duration=2.0)
        assert m.shape == (60, NUM_BLENDSHAPES)
        assert np.all(m[:, indices(LIPS)] == 0.0)  # neutral mouth: ARKit's zero pose
        assert np.all(lips_closed(m))
    happy = phonemes_to_blendshapes([], duration=2.0, emotion="happy", intensity=2)
    assert w(happy, "mouthSmileLeft", slice(30, 60)).min() > 0.2
    assert phonemes_to_blendshapes([], duration=0.0).shape == (1, NUM_BLENDSHAPES)


@pytest.mark.parametrize("emotion", [e for e in EMOTIONS if e != "contemptuous"])
def test_left_and_right_match_except_gaze(emotion):
    segs, duration = timeline(("HH", 0.06), ("AH", 0.1), ("L", 0.06), ("OW", 0.2), ("M", 0.08), ("IY", 0.2))
    m = phonemes_to_blendshapes(segs, duration=duration, emotion=emotion, intensity=3)
    for name in ARKIT_NAMES:
        if name.endswith("Left") and not name.startswith("eyeLook"):
            np.testing.assert_array_equal(w(m, name), w(m, mirror_name(name)), err_msg=name)
    contempt = phonemes_to_blendshapes(segs, duration=duration, emotion="contemptuous", intensity=3)
    after_onset = slice(15, None)
    assert np.all(w(contempt, "mouthDimpleRight", after_onset) > w(contempt, "mouthDimpleLeft", after_onset))


def test_deterministic_and_seeds_change_only_eyes_and_wobble():
    segs, duration = timeline(("S", 0.1), ("IY", 0.2), ("M", 0.1), ("AA", 0.3), ("SIL", 1.0))
    kw = dict(duration=duration, emotion="neutral")
    a = phonemes_to_blendshapes(segs, seed=1, **kw)
    np.testing.assert_array_equal(a, phonemes_to_blendshapes(segs, seed=1, **kw))
    b = phonemes_to_blendshapes(segs, seed=2, **kw)
    mouth = indices([n for n in ARKIT_NAMES if n.startswith(("jaw", "mouth", "tongue", "cheek", "brow"))])
    np.testing.assert_array_equal(a[:, mouth], b[:, mouth])
    eyes = indices([n for n in ARKIT_NAMES if n.startswith("eye")])
    assert np.abs(a[:, eyes] - b[:, eyes]).max() > 0.01
    # With an emotion, seeds also change its slow wobble, but only slightly.
    h1 = phonemes_to_blendshapes(segs, seed=1, duration=duration, emotion="happy")
    h2 = phonemes_to_blendshapes(segs, seed=2, duration=duration, emotion="happy")
    smile = INDEX["mouthSmileLeft"]
    assert 0 < np.abs(h1[:, smile] - h2[:, smile]).max() < 0.1


def test_invalid_input_is_rejected():
    ok = [PhonemeSegment("AA", 0.0, 0.2)]
    with pytest.raises(ValueError, match="emotion"):
        phonemes_to_blendshapes(ok, duration=1.0, emotion="bored")
    with pytest.raises(ValueError, match="intensity"):
        phonemes_to_blendshapes(ok, duration=1.0, intensity=4)
    with pytest.raises(ValueError, match="overlap"):
        phonemes_to_blendshapes(ok + [PhonemeSegment("B", 0.1, 0.3)], duration=1.0)
    with pytest.raises(ValueError, match="outside the clip"):
        phonemes_to_blendshapes([PhonemeSegment("AA", 0.5, 2.0)], duration=1.0)
    with pytest.raises(ValueError, match="PhonemeSegment"):
        phonemes_to_blendshapes([("AA", 0.0, 0.2)], duration=1.0)
    with pytest.raises(ValueError, match="duration"):
        phonemes_to_blendshapes(ok, duration=-1.0)
    with pytest.raises(ValueError, match="fps"):
        phonemes_to_blendshapes(ok, duration=1.0, fps=0.0)
    with pytest.raises(ValueError, match="loudness_rate"):
        phonemes_to_blendshapes(ok, duration=1.0, loudness=np.ones(30))
    with pytest.raises(ValueError, match="loudness"):
        phonemes_to_blendshapes(ok, duration=1.0, loudness=-np.ones(30), loudness_rate=30.0)
    with pytest.raises(ValueError, match="articulation"):
        phonemes_to_blendshapes(ok, duration=1.0, style=SpeakingStyle(articulation=-1.0))
    with pytest.raises(ValueError, match="seed"):
        phonemes_to_blendshapes(ok, duration=1.0, seed=-3)
    with pytest.raises(ValueError, match="emotion"):
        expression_layer("bored", 2)


def test_aligner_style_input_is_accepted():
    # Unsorted, with gaps, overrunning the audio by a few milliseconds (pocketsphinx frames).
    segs = [PhonemeSegment("AA", 0.4, 0.6), PhonemeSegment("B", 0.3, 0.38), PhonemeSegment("IY", 0.9, 1.01)]
    m = phonemes_to_blendshapes(segs, duration=1.0, fps=25.0)
    assert m.shape == (frame_count(1.0, 25.0), NUM_BLENDSHAPES)
    assert lips_closed(m)[segment_frames(segs[1], 25.0, len(m))].all()
