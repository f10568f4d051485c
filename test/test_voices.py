"""The corpus speakers and their split (talking_face_ros.corpus.voices)."""
from __future__ import annotations

import itertools
import json

import numpy as np
import pytest

from talking_face_ros.corpus.voices import (
    SPLITS, VOICES, VoiceConfig, split_of, voice_by_id, voices_in,
)
from talking_face_ros.style import SpeakingStyle

# SpeakingStyle's documented ranges, used to compare styles on a common scale.
STYLE_RANGES = {
    "articulation": (0.6, 1.4), "mouth_width": (-1.0, 1.0), "smile_bias": (-1.0, 1.0),
    "blink_rate": (0.1, 0.5), "jaw_bias": (0.7, 1.3), "brow_activity": (0.0, 2.0),
}


def _style_vector(style: SpeakingStyle) -> np.ndarray:
    return np.array([(getattr(style, k) - lo) / (hi - lo) for k, (lo, hi) in STYLE_RANGES.items()])


def test_at_least_24_distinct_voices():
    assert len(VOICES) >= 24
    assert len({v.voice_id for v in VOICES}) == len(VOICES)
    assert len({v.espeak_name for v in VOICES}) == len(VOICES)  # no two identities sound the same
    assert len({v.language for v in VOICES}) >= 6  # several accents


def test_every_voice_exists_in_espeak():
    from talking_face_ros.speech.espeak import _LOCK, _synthesiser

    with _LOCK:
        synth = _synthesiser()
        for v in VOICES:
            synth.check_voice(v.espeak_name)  # raises ValueError for a missing accent or variant
    bad = VoiceConfig("x", "en-us", "no-such-variant", "male", 50, 50, 170, SpeakingStyle())
    with pytest.raises(ValueError, match="no-such-variant"):
        with _LOCK:
            synth.check_voice(bad.espeak_name)


def test_split_is_by_voice_with_unseen_test_speakers():
    parts = {s: voices_in(s) for s in SPLITS}
    ids = {s: {v.voice_id for v in vs} for s, vs in parts.items()}
    assert sum(len(i) for i in ids.values()) == len(VOICES)
    for a, b in itertools.combinations(SPLITS, 2):
        assert not ids[a] & ids[b]
    assert len(ids["train"]) >= 18 and len(ids["test"]) >= 2 and len(ids["val"]) >= 2
    for split in ("train", "val", "test"):
        assert {v.sex for v in parts[split]} == {"female", "male"}, split
    for v in VOICES:
        assert v.voice_id in ids[split_of(v.voice_id)]
    assert sum(v.sex == "female" for v in VOICES) == sum(v.sex == "male" for v in VOICES)


def test_lookups_reject_unknown_names():
    assert voice_by_id("us_m3").variant == "m3"
    with pytest.raises(ValueError, match="nobody"):
        voice_by_id("nobody")
    with pytest.raises(ValueError, match="nobody"):
        split_of("nobody")
    with pytest.raises(ValueError, match="holdout"):
        voices_in("holdout")


def test_styles_differ_meaningfully_between_voices():
    vectors = np.stack([_style_vector(v.style) for v in VOICES])
    assert np.all((vectors >= 0) & (vectors <= 1)), "a style leaves SpeakingStyle's range"
    # every style dimension is used: a spread of at least 8 % of its range (smiles stay subtle)
    assert np.all(vectors.std(axis=0) >= 0.08), vectors.std(axis=0)
    # and any two identities differ by at least 0.25 of a range summed over the six dimensions
    distances = [np.abs(a - b).sum() for a, b in itertools.combinations(vectors, 2)]
    assert min(distances) >= 0.25


def test_voice_config_round_trips_through_json():
    for v in VOICES:
        d = json.loads(json.dumps(v.to_dict()))
        assert VoiceConfig.from_dict(d) == v
    d = VOICES[0].to_dict()
    del d["speed"]
    with pytest.raises(ValueError, match="speed"):
        VoiceConfig.from_dict(d)
    with pytest.raises(ValueError, match="pitch"):
        VoiceConfig.from_dict({**VOICES[0].to_dict(), "pitch": 140})
    with pytest.raises(ValueError, match="sex"):
        VoiceConfig.from_dict({**VOICES[0].to_dict(), "sex": "robot"})
