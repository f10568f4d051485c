"""Forced alignment with pocketsphinx (talking_face_ros.speech.align)."""
from __future__ import annotations

import difflib

import numpy as np
import pytest

from talking_face_ros.corpus.voices import voice_by_id
from talking_face_ros.phonemes import BILABIALS, SILENCE
from talking_face_ros.speech.align import (
    BECKETT_TRANSCRIPT, align, beckett_wav_path, transcript_words,
)
from talking_face_ros.speech.audio import load_wav
from talking_face_ros.speech.espeak import synthesize

pytest.importorskip("pocketsphinx")


def _assert_tiles(segments, duration):
    assert segments[0].start == 0.0 and segments[-1].end == pytest.approx(duration, abs=1e-9)
    for a, b in zip(segments, segments[1:]):
        assert a.end == b.start and a.duration > 0
        assert not (a.phone == b.phone == SILENCE)


def _matched(reference, hypothesis):
    """Pairs of non-silent segments that the two phone sequences agree on, in order."""
    ref = [s for s in reference if s.phone != SILENCE]
    hyp = [s for s in hypothesis if s.phone != SILENCE]
    sm = difflib.SequenceMatcher(a=[s.phone for s in ref], b=[s.phone for s in hyp], autojunk=False)
    return [(ref[i + k], hyp[j + k]) for i, j, n in sm.get_matching_blocks() for k in range(n)]


def test_alignment_of_espeak_speech_agrees_with_espeak_timings():
    text = "Bob may pay for the map. Maybe Peter will bring a basket of apples."
    r = synthesize(text, voice=voice_by_id("us_klatt4"))
    aligned = align(r.audio, r.sample_rate, text)
    _assert_tiles(aligned, r.duration)
    pairs = _matched(r.phonemes, aligned)
    assert len(pairs) >= 0.9 * sum(s.phone != SILENCE for s in r.phonemes)
    boundary_error = np.mean([abs(a.start - b.start) + abs(a.end - b.end) for a, b in pairs]) / 2
    assert boundary_error < 0.025  # measured about 10 ms on this voice
    bilabials = [(a, b) for a, b in pairs if a.phone in BILABIALS]
    assert len(bilabials) >= 10
    for a, b in bilabials:  # each lip closure starts where espeak put it, within 40 ms
        assert abs(a.start - b.start) < 0.04, (a, b)


def test_words_missing_from_the_dictionary_get_espeak_pronunciations():
    text = "I have 42 apples"
    r = synthesize(text, voice=voice_by_id("us_klatt4"))
    phones = [s.phone for s in align(r.audio, r.sample_rate, text) if s.phone != SILENCE]
    assert "F AO R T IY T UW" in " ".join(phones)


def test_resampled_input_keeps_its_own_timeline():
    text = "Bob may pay."
    r = synthesize(text, voice=voice_by_id("us_klatt4"), sample_rate=22050)
    aligned = align(r.audio, 22050, text)
    _assert_tiles(aligned, r.duration)


def test_bad_input_is_rejected():
    with pytest.raises(ValueError, match="no words"):
        align(np.zeros(16000, np.float32), 16000, " ... ")
    with pytest.raises(ValueError, match="empty audio"):
        align(np.zeros(0, np.float32), 16000, "hello")


def test_transcript_words():
    assert transcript_words("Don't stop -- 42 times, OK?") == ["don't", "stop", "42", "times", "ok"]


def test_real_recording_beckett():
    path = beckett_wav_path()
    if path is None:
        pytest.skip("moonshine-cpp (which ships beckett.wav) is not installed")
    audio, sr = load_wav(path)
    assert sr == 16000 and len(audio) / sr == pytest.approx(9.96, abs=0.01)
    segments = align(audio, sr, BECKETT_TRANSCRIPT)
    _assert_tiles(segments, len(audio) / sr)
    speech = [s.phone for s in segments if s.phone != SILENCE]
    # CMU dictionary pronunciations of the transcript, in order
    assert " ".join(speech) == (
        "EH V ER T R AY D EH V ER F EY L D N OW M AE T ER T R AY AH G EH N "
        "F EY L AH G EH N F EY L B EH T ER"
    )
    # the reader pauses between the six short sentences: five long inner silences
    inner = [s for s in segments[1:-1] if s.phone == SILENCE and s.duration > 0.3]
    assert len(inner) == 5

    def rms(seg):
        x = audio[int(seg.start * sr):int(seg.end * sr)]
        return float(np.sqrt(np.mean(x.astype(np.float64) ** 2)))

    loud = np.median([rms(s) for s in segments if s.phone not in (SILENCE, "M", "B")])
    assert max(rms(s) for s in inner) < 0.2 * loud  # the pauses really are quiet
