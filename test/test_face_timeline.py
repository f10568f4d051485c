"""The node's plain-Python parts: frame grid, audio intake, idle face, timeline, parameters."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import yaml

from talking_face_ros.arkit import INDEX, NUM_BLENDSHAPES
from talking_face_ros.face_timeline import (ENGINE_RATE, NS, Audio, AudioIntake, Begin, Chunk, Emotion, End,
                                            FaceTimeline, Grid, GridFrames)
from talking_face_ros.idle_face import EmotionLabels, IdleFace
from talking_face_ros.node_params import SPECS, NodeParams, ParameterError, check
from talking_face_ros.style import SpeakingStyle
from talking_face_ros.teacher import expression, phonemes_to_blendshapes

REPO = Path(__file__).resolve().parents[1]
T0 = 1_700_000_000 * NS  # an epoch-like clock value: large numbers, as in a real node
PERIOD = 33_333_333  # ns at 30 fps
NEUTRAL = Emotion("neutral", "neutral", 1)


def chunk(stamp_ns, samples, *, seq=0, rate=16000, channels=1, start=False, end=False, stream="s", utt=1):
    return Chunk(stream_id=stream, sequence=seq, utterance_id=utt, utterance_start=start, utterance_end=end,
                 stamp_ns=int(stamp_ns), sample_rate=rate, channels=channels,
                 samples=np.asarray(samples, dtype=np.int16))


def intake(**kw):
    options = dict(max_gap_s=1.0, utterance_timeout_s=1.0, max_clock_offset_s=30.0)
    options.update(kw)
    return AudioIntake(Grid(fps=30.0, t0_ns=T0), **options)


# ---------------------------------------------------------------------------------------------
# Grid


def test_grid_is_integer_nanoseconds_without_drift():
    g = Grid(fps=30.0, t0_ns=T0)
    assert g.period_ns == PERIOD
    assert g.stamp(108_000) - g.stamp(107_999) == PERIOD  # an hour in: still exactly one period
    assert g.index_at_or_before(T0 + 2 * PERIOD) == 2
    assert g.index_at_or_before(T0 + 2 * PERIOD - 1) == 1
    assert g.index_at_or_before(T0 - 1) == -1


# ---------------------------------------------------------------------------------------------
# Audio intake


def test_utterance_is_padded_onto_the_grid():
    a = intake()
    stamp = T0 + 2 * PERIOD + PERIOD // 2  # half a frame after grid frame 2
    actions = a.accept(chunk(stamp, [16384] * 320, start=True), now_ns=stamp)
    begin, audio = actions
    assert isinstance(begin, Begin) and begin.first_frame == 2
    # 16.67 ms of padding = 267 samples at 16 kHz: frame 0 of the engine lands on grid frame 2.
    assert begin.pad_samples == round(PERIOD / 2 * ENGINE_RATE / NS) == 267
    assert abs(a.grid.stamp(2) + begin.pad_samples * NS / ENGINE_RATE - stamp) <= NS / ENGINE_RATE
    assert isinstance(audio, Audio) and audio.sample_rate == 16000
    np.testing.assert_array_equal(audio.samples, np.full(320, 0.5, np.float32))


def test_continuous_chunks_pass_through_and_stereo_is_averaged():
    a = intake()
    a.accept(chunk(T0, np.zeros(320), start=True), now_ns=T0)
    stereo = np.stack([np.full(441, 8192), np.full(441, 24576)], axis=1).reshape(-1)  # 0.25 and 0.75
    stamp = T0 + 320 * NS // 16000
    # A second chunk at another rate and channel count, continuing on the clock: no gap.
    actions = a.accept(chunk(stamp, stereo, seq=1, rate=44100, channels=2), now_ns=stamp)
    assert len(actions) == 1 and actions[0].sample_rate == 44100
    np.testing.assert_allclose(actions[0].samples, 0.5)
    assert a.counts["gaps_filled"] == 0 and a.counts["bad_inputs"] == 0


def test_a_short_gap_becomes_silence_and_a_long_one_a_new_utterance():
    a = intake(max_gap_s=0.5)
    a.accept(chunk(T0, np.ones(320), start=True), now_ns=T0)
    expected = T0 + 20_000_000
    actions = a.accept(chunk(expected + 100_000_000, np.ones(320), seq=1), now_ns=expected)  # 100 ms late
    assert [type(x) for x in actions] == [Audio, Audio]
    np.testing.assert_array_equal(actions[0].samples, np.zeros(1600, np.float32))  # 100 ms at 16 kHz
    assert a.counts["gaps_filled"] == 1
    later = expected + 120_000_000 + 2 * NS  # 2 s beyond the end: more than max_gap
    actions = a.accept(chunk(later, np.ones(320), seq=2), now_ns=later)
    assert [type(x) for x in actions] == [End, Begin, Audio]
    assert actions[0].reason == "gap" and actions[1].first_frame == a.grid.index_at_or_before(later)


def test_slow_clock_drift_and_jitter_are_absorbed():
    a = intake()
    a.accept(chunk(T0, np.ones(320), start=True), now_ns=T0)
    rng = np.random.default_rng(0)
    for i in range(1, 500):
        # The source's clock runs 1 % fast against its samples (0.2 ms per chunk, 100 ms in all)
        # and each stamp jitters by up to 2 ms: never a gap or a drop.
        stamp = T0 + i * 20_200_000 + int(rng.integers(-2_000_000, 2_000_001))
        assert [type(x) for x in a.accept(chunk(stamp, np.ones(320), seq=i), now_ns=stamp)] == [Audio]
    assert a.counts["gaps_filled"] == 0 and a.counts["stamps_backwards"] == 0


def test_backward_stamps_drop_the_chunk_or_resync():
    a = intake(max_gap_s=0.5)
    a.accept(chunk(T0, np.ones(320), start=True), now_ns=T0)
    a.accept(chunk(T0 + 20_000_000, np.ones(320), seq=1), now_ns=T0)
    # 30 ms back (overlaps audio already received): dropped and counted.
    assert a.accept(chunk(T0 + 10_000_000, np.ones(320), seq=2), now_ns=T0) == []
    assert a.counts["stamps_backwards"] == 1 and a.counts["chunks_dropped"] == 1
    # The stream carries on where it should be: accepted again.
    assert [type(x) for x in a.accept(chunk(T0 + 40_000_000, np.ones(320), seq=3), now_ns=T0)] == [Audio]
    # 10 s back (a restarted clock): a new utterance at the new stamp.
    actions = a.accept(chunk(T0 - 10 * NS, np.ones(320), seq=4), now_ns=T0)
    assert [type(x) for x in actions] == [End, Begin, Audio] and a.counts["resyncs"] == 1


@pytest.mark.parametrize("bad, why", [
    (dict(rate=0), "sample_rate"), (dict(rate=10_000_000), "sample_rate"), (dict(channels=0), "channels is 0"),
    (dict(channels=2, samples=np.ones(3)), "not a multiple"), (dict(samples=np.zeros(0)), "no samples"),
    (dict(rate=1000, samples=np.zeros(121_000)), "in one chunk"),
])
def test_bad_chunks_are_dropped_counted_and_named(bad, why):
    a = intake()
    args = dict(samples=np.ones(320))
    args.update(bad)
    samples = args.pop("samples")
    assert a.accept(chunk(T0, samples, **args), now_ns=T0) == []
    assert a.counts["bad_inputs"] == 1 and a.active is None
    assert why in a.warnings[-1][1]


def test_marked_streams_idle_between_utterances_unmarked_ones_time_out():
    a = intake(utterance_timeout_s=0.5)
    a.accept(chunk(T0, np.ones(320), start=True, end=True), now_ns=T0)
    assert a.active is None
    # Silence between utterances of a stream that marks them: ignored.
    assert a.accept(chunk(T0 + NS, np.ones(320), seq=1), now_ns=T0 + NS) == []
    # Another stream that never marks: audio opens an utterance, silence on the wire closes it.
    actions = a.accept(chunk(T0 + 2 * NS, np.ones(320), stream="raw"), now_ns=T0 + 2 * NS)
    assert [type(x) for x in actions] == [Begin, Audio]
    assert a.poll(now_ns=T0 + 2 * NS + 400_000_000) == []
    assert [x.reason for x in a.poll(now_ns=T0 + 2 * NS + 600_000_000)] == ["timeout"]


def test_one_voice_at_a_time_duplicates_and_lost_chunks():
    a = intake()
    a.accept(chunk(T0, np.ones(320), start=True), now_ns=T0)
    assert a.accept(chunk(T0, np.ones(320), stream="other", start=True), now_ns=T0) == []
    assert a.counts["chunks_dropped"] == 1
    assert a.accept(chunk(T0, np.ones(320), seq=0), now_ns=T0) == []  # the same sequence again
    assert a.counts["duplicates"] == 1
    a.accept(chunk(T0 + 80_000_000, np.ones(320), seq=4), now_ns=T0)  # chunks 1..3 never came
    assert a.counts["chunks_lost"] == 3 and a.counts["gaps_filled"] == 1


def test_absurd_stamps_are_replaced_by_the_arrival_time():
    a = intake(max_clock_offset_s=10.0)
    now = T0 + 5 * NS
    begin, _ = a.accept(chunk(0, np.ones(320), start=True), now_ns=now)  # a zero stamp
    assert a.counts["restamped"] == 1
    # Placed so that its last sample was captured on arrival: first sample 20 ms earlier.
    assert begin.first_frame == a.grid.index_at_or_before(now - 20_000_000)
    # The rest of the utterance keeps the same offset: its zero-based stamps continue seamlessly.
    assert [type(x) for x in a.accept(chunk(20_000_000, np.ones(320), seq=1), now_ns=now)] == [Audio]


# ---------------------------------------------------------------------------------------------
# Engine frames onto the grid


def test_grid_frames_identity_decimation_and_interpolation():
    w = [np.full(NUM_BLENDSHAPES, i, np.float32) for i in range(6)]
    same = GridFrames(10, model_fps=30.0, grid_fps=30.0)
    assert [k for i in range(3) for k, _ in same.add(i, w[i])] == [10, 11, 12]
    with pytest.raises(ValueError, match="continuous"):
        same.add(5, w[5])
    down = GridFrames(0, model_fps=60.0, grid_fps=30.0)
    out = [kw for i in range(6) for kw in down.add(i, w[i])]
    assert [k for k, _ in out] == [0, 1, 2] and [float(v[0]) for _, v in out] == [0.0, 2.0, 4.0]
    up = GridFrames(0, model_fps=30.0, grid_fps=60.0)
    out = [kw for i in range(3) for kw in up.add(i, w[i])]
    assert [float(v[0]) for _, v in out] == [0.0, 0.5, 1.0, 1.5, 2.0]


# ---------------------------------------------------------------------------------------------
# The timeline


class ConstantFace:
    """A rest face that is the same at every time, so mixtures can be computed by hand."""

    def __init__(self, value=0.2):
        self.value = np.full(NUM_BLENDSHAPES, value, np.float32)
        self.emotion = None

    def frames(self, times):
        return np.repeat(self.value[None], len(times), axis=0)

    def set_emotion(self, emotion, intensity, *, at):
        self.emotion = (emotion, intensity, at)


def test_timeline_publishes_one_frame_per_period_at_stamp_plus_delay():
    delay = 500_000_000
    t = FaceTimeline(Grid(fps=30.0, t0_ns=T0), ConstantFace(), delay_ns=delay, speech_blend_s=0.0, emotion=NEUTRAL)
    assert t.due(T0 + delay - PERIOD) == []  # frame 0 is not due yet
    frames = t.due(T0 + delay)
    assert [f.index for f in frames] == [0]
    frames += t.due(T0 + delay + 10 * PERIOD + PERIOD // 2 + 1)  # half a period early: frame 11 too
    assert [f.index for f in frames] == list(range(12))
    assert set(np.diff([f.stamp_ns for f in frames])) == {PERIOD}
    assert not any(f.speaking for f in frames)


def test_speech_and_idle_share_the_timeline_with_a_crossfade():
    t = FaceTimeline(Grid(fps=30.0, t0_ns=T0), ConstantFace(0.2), delay_ns=0,
                     speech_blend_s=2 * PERIOD / NS, emotion=NEUTRAL)  # two frames of crossfade: steps of 0.5
    speech = np.full(NUM_BLENDSHAPES, 1.0, np.float32)
    for k in range(3, 7):
        assert t.add_speech(k, speech, utterance_id=9, arrival=0.0)
    frames = t.due(T0 + 10 * PERIOD)
    level = [round(float(f.weights[0]), 6) for f in frames]
    # idle 0.2; speech 1.0; smoothstep(0.5) = 0.5 halfway: 0.6; fade-out from the held frame.
    assert level == [0.2, 0.2, 0.2, 0.6, 1.0, 1.0, 1.0, 0.6, 0.2, 0.2, 0.2]
    assert [f.speaking for f in frames] == [k in range(3, 7) for k in range(11)]
    assert all(f.utterance_id == 9 for f in frames[3:7])
    assert set(np.diff([f.stamp_ns for f in frames])) == {PERIOD}
    # A speech frame for a slot already published is late: dropped, counted, never shown.
    assert not t.add_speech(5, speech, utterance_id=9, arrival=0.0)
    assert t.counts["late_frames"] == 1
    assert t.counts["frames_published"] == 11 and t.counts["speech_frames"] == 4


def test_emotion_changes_are_events_on_the_audio_timeline():
    face = ConstantFace()
    delay = 10 * PERIOD
    t = FaceTimeline(Grid(fps=30.0, t0_ns=T0), face, delay_ns=delay, speech_blend_s=0.0, emotion=NEUTRAL)
    frames = t.due(T0 + delay + 2 * PERIOD)  # frames 0..2 published
    angry = Emotion("furious", "angry", 3)
    # Arriving at clock time T0 + delay + 2 periods = audio time of frame 12: from there on.
    assert t.set_emotion(angry, at_ns=T0 + delay + 2 * PERIOD) == 12
    assert face.emotion == ("angry", 3, 12 * PERIOD / NS)
    assert t.emotion == angry
    frames += t.due(T0 + delay + 20 * PERIOD)
    assert [f.emotion.label for f in frames] == ["neutral"] * 12 + ["angry"] * 9
    # A change stamped in the past starts at the next frame to publish, never before.
    assert t.set_emotion(NEUTRAL, at_ns=T0) == 21


def test_a_stalled_timeline_skips_instead_of_bursting():
    t = FaceTimeline(Grid(fps=30.0, t0_ns=T0), ConstantFace(), delay_ns=0, speech_blend_s=0.1, emotion=NEUTRAL)
    frames = t.due(T0 + 60 * NS)  # a minute behind
    assert len(frames) == 31 and frames[-1].index == 1800  # the last second only
    assert t.counts["frames_skipped"] == 1800 - 30


# ---------------------------------------------------------------------------------------------
# The face at rest


def test_idle_face_is_the_teachers_silent_face():
    style = SpeakingStyle(smile_bias=0.3, mouth_width=0.2)
    teacher = phonemes_to_blendshapes([], duration=20.0, emotion="happy", intensity=3, style=style, seed=3)
    times = np.arange(600) / 30.0
    idle = IdleFace(style=style, seed=3, emotion="happy", intensity=3).frames(times)
    mid = slice(60, 450)  # after the teacher's onset ramp, before its ease-out
    not_eyes = [i for n, i in INDEX.items() if not n.startswith("eye")]
    layer = expression.expression_layer("happy", 3)
    # Both are rest + the same expression layer; they differ only in their slow wobbles,
    # each within FLUCTUATION of the layer.
    bound = 2 * expression.FLUCTUATION * layer[not_eyes] + 1e-5
    assert np.all(np.abs(teacher[mid][:, not_eyes] - idle[mid][:, not_eyes]) <= bound)
    smile = INDEX["mouthSmileLeft"]
    assert abs(idle[mid, smile].mean() - teacher[mid, smile].mean()) < 0.02


def test_idle_face_blinks_at_the_styles_rate_and_keeps_moving():
    face = IdleFace(style=SpeakingStyle(blink_rate=0.3), seed=1)
    times = np.arange(0, 600, 1 / 30.0)
    w = np.concatenate([face.frames(times[i:i + 300]) for i in range(0, len(times), 300)])
    lid = w[:, INDEX["eyeBlinkLeft"]]
    closings = np.flatnonzero((lid[1:] > 0.5) & (lid[:-1] <= 0.5))
    # 180 expected; a gamma renewal process with CV 0.71 gives a standard deviation near 10.
    assert 140 <= len(closings) <= 220
    # Never frozen: every 2-second window moves.
    steps = np.abs(np.diff(w, axis=0)).sum(axis=1)
    assert np.all(steps[:17940].reshape(-1, 60).max(axis=1) > 1e-4)


def test_idle_face_does_not_depend_on_how_time_is_split_and_forgets_the_past():
    times = np.arange(0, 120, 1 / 30.0)
    whole = IdleFace(seed=5).frames(times)
    face = IdleFace(seed=5)
    pieces = np.concatenate([face.frames(times[i:i + 7]) for i in range(0, len(times), 7)])
    np.testing.assert_allclose(pieces, whole, atol=1e-6)
    face.frames([3600.0])  # an hour later
    assert len(face._blink_events) <= 3 and len(face._fixations) <= 3
    with pytest.raises(ValueError, match="only moves forward"):
        face.frames([10.0])


def test_idle_face_blends_into_a_new_emotion():
    face = IdleFace(seed=2, emotion="neutral", intensity=1, blend_s=0.5)
    face.set_emotion("happy", 3, at=10.0)
    w = face.frames(np.array([9.9, 10.25, 11.0, 12.0]))
    smile = INDEX["mouthSmileLeft"]
    target = expression.expression_layer("happy", 3)[smile]
    assert w[0, smile] == pytest.approx(0.0, abs=1e-6)
    assert 0.1 * target < w[1, smile] < 0.9 * target  # halfway through the blend
    assert w[3, smile] == pytest.approx(target, rel=2 * expression.FLUCTUATION)


class BagOfWords:
    """A text encoder double: unit vectors of hashed word counts, so nearness is word overlap.

    crc32, not hash(): str hashes change with PYTHONHASHSEED, and so would the collisions."""

    def encode(self, texts):
        import zlib

        out = np.zeros((len(texts), 512))
        for i, text in enumerate(texts):
            for word in text.lower().replace(",", " ").split():
                out[i, zlib.crc32(word.encode()) % 512] += 1.0
        return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)


def test_emotion_labels_from_corpus_phrasings_and_nearest_neighbours():
    labels = EmotionLabels(None)
    assert labels("Furious") == ("angry", 3)
    assert labels("neutral") == ("neutral", 1)
    with pytest.raises(ValueError, match="no text encoder"):
        labels("grumpy robot")
    labels = EmotionLabels(BagOfWords())
    assert labels("utterly furious and seething with rage") == ("angry", 3)
    assert labels("smiling slightly, a little cheerful today")[0] == "happy"


# ---------------------------------------------------------------------------------------------
# Parameters


def test_parameter_file_holds_every_default():
    data = yaml.safe_load((REPO / "config" / "talking_face.yaml").read_text())
    assert data == {"talking_face_node": {"ros__parameters": {s.name: s.default for s in SPECS}}}
    assert NodeParams() == NodeParams(**data["talking_face_node"]["ros__parameters"])


def test_parameter_errors_name_the_parameter_and_the_allowed_values():
    with pytest.raises(ParameterError, match=r"parameter fps = 500.0 is outside \[1, 120\]"):
        check("fps", 500.0)
    with pytest.raises(ParameterError, match="parameter device = 'tpu': expected one of auto, cpu, cuda"):
        NodeParams(device="tpu")
    with pytest.raises(ParameterError, match="expected an integer"):
        check("seed", 1.5)
    p = NodeParams(delay_margin=0.25)
    assert p.delay_for(0.5) == pytest.approx(0.75)
    assert NodeParams(delay=2.0).delay_for(0.5) == 2.0
    with pytest.raises(ParameterError, match="shorter than the engine latency"):
        NodeParams(delay=0.2).delay_for(0.5)
    with pytest.raises(ParameterError, match="more than parameter lookahead"):
        NodeParams(lookahead=1.0).delay_for(2.9)
    assert math.isclose(NodeParams().delay_for(2.5), 3.0)  # auto margin: 0.5 s for a chunked encoder
    assert math.isclose(NodeParams().delay_for(0.076, causal=True), 0.136)  # ... 0.06 s for a causal one
    assert math.isclose(NodeParams(delay_margin=0.0).delay_for(0.076, causal=True), 0.076)
    with pytest.raises(ParameterError, match=r"-1 \(auto\) or a number of seconds >= 0"):
        NodeParams(delay_margin=-0.5)
