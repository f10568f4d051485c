"""Planned speech features: chunk geometry, streaming == offline bit for bit, plan checks, edge cases."""
from __future__ import annotations

import math
import threading

import numpy as np
import pytest

from talking_face_ros.data.sample import frame_count
from talking_face_ros.encoders.base import SpeechEncoder
from talking_face_ros.features import ChunkPlan, StreamingFeatures, encode_planned

FPS = 30.0
SR = 16000


class PassProbe(SpeechEncoder):
    """Moonshine's frame grid (384/895 samples); each frame reports where it came from.

    Fed a ramp (sample n holds (n + 1) * 1e-6), frame j of a pass reports the ramp value at its
    anchor (so its absolute sample), the pass's first sample (its start), the pass length and
    the pass's last sample (0 when it was zero-padded beyond the end of the audio).
    """

    name = "probe"
    feature_dim = 4
    frame_stride = 384
    frame_span = 895

    def __init__(self):
        self._set_windows(600.0, 0.0, 0.0, 0.0)  # never windowed: one pass is one pass
        self.passes = []

    def _encode_window(self, audio):
        self.passes.append(len(audio))
        n = self.num_frames(len(audio))
        anchors = audio[np.arange(n) * self.frame_stride]
        cols = [anchors, np.full(n, audio[0]), np.full(n, len(audio) / 1e5), np.full(n, audio[-1])]
        return np.stack(cols, axis=1).astype(np.float32)


def ramp(n: int) -> np.ndarray:
    return ((np.arange(n, dtype=np.float64) + 1) * 1e-6).astype(np.float32)


@pytest.fixture(scope="module")
def moonshine():
    from talking_face_ros.encoders import build_speech_encoder

    return build_speech_encoder({"kind": "moonshine", "device": "cpu", "threads": 1})


@pytest.fixture(scope="module")
def speech():
    """About 3.4 s of espeak-ng speech of a corpus voice at 16 kHz."""
    from talking_face_ros.corpus.voices import VOICES
    from talking_face_ros.speech.espeak import synthesize

    audio = synthesize("Pack my box with five dozen liquor jugs, please.", voice=VOICES[2]).audio
    assert 2.0 < len(audio) / SR < 6.0
    return audio


def stream_in_pieces(encoder, audio, plan, sizes):
    s = StreamingFeatures(encoder, plan, fps=FPS)
    outs, i = [], 0
    for n in sizes:
        if i >= len(audio):
            break
        outs.append(s.push(audio[i:i + n]))
        i += n
    assert i >= len(audio)
    outs.append(s.flush())
    return np.concatenate(outs), s


# ------------------------------------------------------------------------------------------------
# Real Moonshine: streamed output equals the offline features exactly


def test_streaming_equals_offline_exactly_with_moonshine(moonshine, speech):
    plan = ChunkPlan()
    offline = encode_planned(moonshine, speech, plan, fps=FPS)
    assert offline.shape == (frame_count(len(speech) / SR, FPS), 416)
    assert offline.dtype == np.float32 and np.isfinite(offline).all()
    rng = np.random.default_rng(3)
    for sizes in (rng.integers(1, 9000, 10_000), rng.integers(1, 400, 10_000), [len(speech)]):
        streamed, _ = stream_in_pieces(moonshine, speech, plan, sizes)
        assert np.array_equal(streamed, offline)


def test_parallel_passes_give_the_same_features(moonshine, speech):
    """Pieces that complete several chunks at once: their passes run two at a time, in two
    threads, and the features are those of one pass at a time, bit for bit."""
    plan = ChunkPlan(chunk_s=0.48, left_s=0.96, right_s=0.192)
    piece = int(1.5 * SR)  # each piece completes three 0.48 s chunks
    threads = set()
    real = moonshine._encode_window

    def spy(audio):
        threads.add(threading.get_ident())
        return real(audio)

    def stream(parallel_passes):
        threads.clear()
        s = StreamingFeatures(moonshine, plan, fps=FPS, parallel_passes=parallel_passes)
        outs = [s.push(speech[i:i + piece]) for i in range(0, len(speech), piece)]
        return np.concatenate(outs + [s.flush()]), set(threads)

    moonshine._encode_window = spy
    try:
        one_at_a_time, used = stream(1)
        assert used == {threading.get_ident()}  # all in the caller's thread
        two_at_a_time, used = stream(2)
        assert len(used) == 2 and threading.get_ident() not in used  # the pool's two threads
    finally:
        del moonshine._encode_window
    assert np.array_equal(two_at_a_time, one_at_a_time)
    assert np.array_equal(one_at_a_time, encode_planned(moonshine, speech, plan, fps=FPS))


def test_passes_side_by_side_use_a_one_thread_twin_of_a_multithreaded_encoder(speech):
    """A Moonshine session with two threads runs passes side by side on a one-thread twin
    session (two threads per pass would fight over two cores), with the same numbers."""
    from talking_face_ros.encoders import build_speech_encoder

    two = build_speech_encoder({"kind": "moonshine", "device": "cpu", "threads": 2})
    twin = two.concurrent()
    assert twin is not two and twin.concurrent() is twin
    assert two.session.get_session_options().intra_op_num_threads == 2
    assert twin.session.get_session_options().intra_op_num_threads == 1
    one = build_speech_encoder({"kind": "moonshine", "device": "cpu", "threads": 1})
    assert one.concurrent() is one  # already one thread per pass
    used = []
    real = twin._encode_window
    twin._encode_window = lambda audio: used.append(len(audio)) or real(audio)
    plan = ChunkPlan(chunk_s=0.48, left_s=0.96, right_s=0.192)
    piece = int(1.5 * SR)

    def stream(parallel_passes):
        s = StreamingFeatures(two, plan, fps=FPS, parallel_passes=parallel_passes)
        outs = [s.push(speech[i:i + piece]) for i in range(0, len(speech), piece)]
        return np.concatenate(outs + [s.flush()])

    alone = stream(1)
    assert not used  # one pass at a time: the two-thread session
    side_by_side = stream(2)
    assert len(used) >= 2
    assert np.array_equal(side_by_side, alone)


def test_chunking_changes_moonshine_features(moonshine, speech):
    """Why the plan exists: the same audio in other passes gives other features."""
    planned = encode_planned(moonshine, speech, ChunkPlan(), fps=FPS)
    whole = moonshine.encode_at_fps(speech, FPS)
    other = encode_planned(moonshine, speech, ChunkPlan(chunk_s=0.96, left_s=0.96, right_s=0.48), fps=FPS)
    cos = lambda a, b: (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)
    # Same frames, same speech: related (cosine well above 0), but clearly not equal.
    for ref in (whole, other):
        c = cos(planned, ref)
        assert 0.5 < np.median(c) < 0.999
        assert not np.allclose(planned, ref, atol=1e-3)


# ------------------------------------------------------------------------------------------------
# Geometry of the passes, checked with the probe encoder


def test_passes_follow_the_plan():
    enc = PassProbe()
    plan = ChunkPlan(chunk_s=0.48, left_s=0.96, right_s=0.192)
    C, L, R = 7680, 15360, 3072
    n = 5 * C + 1000  # 5 full chunks and a partial sixth
    out = encode_planned(enc, ramp(n), plan, fps=FPS)
    # Pass k runs over [max(0, kC - L), (k+1)C + R]: lengths C+R, 2C+R, then L+C+R (in any
    # order: passes of one call run in parallel; the rows below check which pass made which frame).
    assert sorted(enc.passes) == sorted([C + R, 2 * C + R] + [L + C + R] * 4)
    stride, offset = 384, 447 / SR  # frame anchor and centre of Moonshine's frames
    rate = SR / stride
    for i, row in enumerate(out):
        pos = max((i / FPS - offset) * rate, 0.0)
        lo = math.floor(pos)
        # Column 0 interpolates the anchor ramp: (anchor sample + 1) * 1e-6, linear in pos.
        assert row[0] == pytest.approx((pos * stride + 1) * 1e-6, abs=1e-8)
        k = lo * stride // C
        if (lo + 1) * stride // C != k:
            continue  # interpolates across two chunks
        start = max(0, k * C - L)
        assert row[1] == pytest.approx((start + 1) * 1e-6, abs=1e-8)  # the pass started there
        assert row[2] == pytest.approx(((k + 1) * C + R - start) / 1e5)
        if (k + 1) * C + R > n:
            assert row[3] == 0.0  # zero-padded beyond the end of the audio
        else:
            assert row[3] == pytest.approx(((k + 1) * C + R) * 1e-6, abs=1e-8)


def test_streaming_buffers_stay_bounded_and_latency_holds():
    enc = PassProbe()
    plan = ChunkPlan()
    C, L, R = plan.samples(enc)
    audio = ramp(SR * 60)  # one minute
    s = StreamingFeatures(enc, plan, fps=FPS)
    rng = np.random.default_rng(0)
    i, worst_lag, outs = 0, 0.0, []
    while i < len(audio):
        n = int(rng.integers(1, 4000))
        outs.append(s.push(audio[i:i + n]))
        i += n
        b = s.buffered()
        assert b["audio"] <= L + C + R + 4000
        assert b["features"] <= 4
        if s.frames_emitted:
            lag = min(i, len(audio)) / SR - (s.frames_emitted - 1) / FPS
            assert lag <= s.latency_s + 1e-9
            worst_lag = max(worst_lag, lag)
    assert worst_lag > s.latency_s - 2 / FPS  # the bound is tight, not just large
    outs.append(s.flush())
    assert np.array_equal(np.concatenate(outs), encode_planned(enc, audio, plan, fps=FPS))


# ------------------------------------------------------------------------------------------------
# Edge cases


@pytest.mark.parametrize("n", [1, 1600, 7680, 7680 + 3072, 7681])
def test_short_and_exact_lengths(moonshine, speech, n):
    """Shorter than one chunk, exactly one chunk, one chunk plus its right context, one sample more."""
    plan = ChunkPlan()
    audio = speech[4000:4000 + n]
    offline = encode_planned(moonshine, audio, plan, fps=FPS)
    assert offline.shape == (frame_count(n / SR, FPS), 416)
    s = StreamingFeatures(moonshine, plan, fps=FPS)
    early = s.push(audio)
    if n < 7680 + 3072:  # the first chunk needs its right context before anything is final
        assert len(early) == 0
    rest = s.flush()
    assert np.array_equal(np.concatenate([early, rest]), offline)


def test_flush_and_empty_input(moonshine, speech):
    plan = ChunkPlan()
    s = StreamingFeatures(moonshine, plan, fps=FPS)
    assert s.flush().shape == (0, 416)  # nothing pushed
    assert s.push(np.zeros(0, np.float32)).shape == (0, 416)
    assert s.flush().shape == (0, 416)
    # After a flush the next utterance starts at time 0 again.
    first, second = speech[:20000], speech[20000:]
    a = np.concatenate([s.push(first), s.flush()])
    b = np.concatenate([s.push(second), s.flush()])
    assert np.array_equal(a, encode_planned(moonshine, first, plan, fps=FPS))
    assert np.array_equal(b, encode_planned(moonshine, second, plan, fps=FPS))
    assert s.flush().shape == (0, 416)  # a second flush has nothing left


def test_num_frames_holds_or_truncates():
    enc = PassProbe()
    audio = ramp(20000)
    base = encode_planned(enc, audio, ChunkPlan(), fps=FPS)
    longer = encode_planned(enc, audio, ChunkPlan(), fps=FPS, num_frames=len(base) + 30)
    shorter = encode_planned(enc, audio, ChunkPlan(), fps=FPS, num_frames=10)
    assert np.array_equal(longer[:len(base)], base)
    # Past the last feature frame the last feature is held.
    assert np.array_equal(longer[-1], longer[-2])
    assert np.array_equal(shorter, base[:10])
    assert encode_planned(enc, audio, ChunkPlan(), fps=FPS, num_frames=0).shape == (0, 4)


def test_bad_audio_and_arguments():
    enc = PassProbe()
    plan = ChunkPlan()
    with pytest.raises(ValueError, match="empty"):
        encode_planned(enc, np.zeros(0, np.float32), plan, fps=FPS)
    with pytest.raises(ValueError, match="NaN"):
        encode_planned(enc, np.array([0.0, np.nan] * 100, np.float32), plan, fps=FPS)
    with pytest.raises(ValueError, match="mono"):
        encode_planned(enc, np.zeros((100, 2), np.float32), plan, fps=FPS)
    with pytest.raises(ValueError, match="floating"):
        encode_planned(enc, np.zeros(100, np.int16), plan, fps=FPS)
    with pytest.raises(ValueError, match="num_frames"):
        encode_planned(enc, ramp(1000), plan, fps=FPS, num_frames=-1)
    for fps in (0, -30.0, float("nan")):
        with pytest.raises(ValueError, match="fps"):
            StreamingFeatures(enc, plan, fps=fps)
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match="parallel_passes"):
            StreamingFeatures(enc, plan, fps=FPS, parallel_passes=bad)


# ------------------------------------------------------------------------------------------------
# Plan validation


def test_plan_checks_against_the_encoder_grid():
    enc = PassProbe()  # 384 samples = 24 ms per frame
    assert ChunkPlan().samples(enc) == (7680, 30720, 3072)
    with pytest.raises(ValueError, match=r"chunk_s=0.5 s is not a whole number .* use e.g. 0.48 or 0.504"):
        ChunkPlan(chunk_s=0.5).samples(enc)
    with pytest.raises(ValueError, match="left_s"):
        ChunkPlan(left_s=1.0).samples(enc)
    # A frame sees 895 samples from its anchor: the right context must hold 511 more, i.e. 2 frames.
    with pytest.raises(ValueError, match=r"right_s=0.024 s is too short .* at least 0.048 s"):
        ChunkPlan(right_s=0.024).samples(enc)
    assert ChunkPlan(right_s=0.048, left_s=0.0).samples(enc) == (7680, 0, 768)


@pytest.mark.parametrize("bad", [dict(chunk_s=0), dict(chunk_s=-0.48), dict(left_s=-0.024),
                                 dict(right_s=float("inf")), dict(chunk_s=float("nan")), dict(left_s=True),
                                 dict(right_s="0.192")])
def test_plan_rejects_nonsense(bad):
    with pytest.raises(ValueError, match="ChunkPlan"):
        ChunkPlan(**bad)


def test_plan_round_trips_through_json():
    import json

    plan = ChunkPlan(chunk_s=0.24, left_s=0.96, right_s=0.096)
    assert ChunkPlan.from_dict(json.loads(json.dumps(plan.to_dict()))) == plan
    assert ChunkPlan.from_dict({}) == ChunkPlan()
    with pytest.raises(ValueError, match="unknown field.*chunk"):
        ChunkPlan.from_dict({"chunk": 0.48})
    with pytest.raises(ValueError, match="mapping"):
        ChunkPlan.from_dict([0.48])
