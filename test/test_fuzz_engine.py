"""Property-based tests (hypothesis) of the Engine: whatever audio, emotion text and speaker name
it is given, nothing but the documented ValueError escapes, and its frames stay whole.

Thousands of examples have to run in seconds, so the speech encoder is the cheap stand-in of
engine_fixtures (Moonshine's frame grid, microseconds per pass) and the text encoder is MiniLM's
own tokenizer, the part that meets the raw text, with a fixed random table in place of the
transformer. The network is a tiny random bundle. test_bad_input runs the real encoders on
the hardest cases.
"""
from __future__ import annotations

import math
import unicodedata
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from talking_face_ros.bundle import load_bundle, make_random_bundle
from talking_face_ros.emotions import MAX_TEXT_CHARS
from talking_face_ros.encoders import Encoders
from talking_face_ros.encoders.base import TextEncoder
from talking_face_ros.engine import MAX_SAMPLE_RATE, MIN_SAMPLE_RATE, Engine

from engine_fixtures import CheapSpeech  # test/engine_fixtures.py (pytest puts test/ on sys.path)

# derandomize: the same examples on every run, so CI is stable; no example database on disk.
FUZZ = settings(max_examples=1000, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
pytestmark = pytest.mark.usefixtures("one_torch_thread")  # conftest.py


class TokenizerText(TextEncoder):
    """MiniLM's tokenizer with a fixed random embedding table: the real text path, cheaply."""

    name = "minilm-tokenizer"
    dim = 384

    def __init__(self):
        from transformers import AutoTokenizer

        from talking_face_ros.encoders.minilm import minilm_model_path

        super().__init__(cache_size=64)
        self.tokenizer = AutoTokenizer.from_pretrained(str(minilm_model_path()), local_files_only=True)
        self.table = np.random.default_rng(0).standard_normal((self.tokenizer.vocab_size, self.dim))

    def _embed(self, texts):
        ids = self.tokenizer(texts, truncation=True, max_length=256)["input_ids"]
        return np.stack([self.table[row].mean(axis=0) for row in ids]).astype(np.float32)


@pytest.fixture(scope="module")
def engine(tmp_path_factory):
    folder = make_random_bundle(tmp_path_factory.mktemp("fuzz") / "b", speakers=("us_f1", "gb_m2"))
    e = Engine(load_bundle(folder, device="cpu", encoders=Encoders(CheapSpeech(), TokenizerText())))
    e.next_index = 0  # the index the next pulled frame must have (the tests keep it)
    return e


def check_frames(engine, frames):
    """Pulled frames continue the stream: indices rise by one, times match, weights in [0, 1]."""
    if frames:
        assert [f.index for f in frames] == list(range(engine.next_index, engine.next_index + len(frames)))
        w = np.stack([f.weights for f in frames])
        assert w.shape == (len(frames), 52) and np.isfinite(w).all() and w.min() >= 0 and w.max() <= 1
        assert all(math.isclose(f.time, f.index / engine.fps) for f in frames)
        engine.next_index += len(frames)
    assert engine.buffered()["unpulled_frames"] == 0


# ---------------------------------------------------------------------------------------------
# Audio

DTYPES = ("int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "float16", "float32", "float64", "bool")
FLOAT_SPECIALS = (np.nan, np.inf, -np.inf, 1e38, -1e38, 1e300, 5e-324, 1.0, -1.0, 0.0, 2.5)


@st.composite
def audio_arrays(draw):
    """1-D, (frames, channels) or (channels, frames) arrays of every numeric dtype: silence,
    noise, full scale, extreme values (NaN, inf, float maxima) or hypothesis' own small arrays."""
    dtype = np.dtype(draw(st.sampled_from(DTYPES)))
    kind = draw(st.sampled_from(("noise", "silence", "full_scale", "extreme", "drawn")))
    if kind == "drawn":  # small, every element chosen by hypothesis (NaN and inf included for floats)
        return draw(hnp.arrays(dtype, hnp.array_shapes(min_dims=1, max_dims=2, min_side=0, max_side=24)))
    n = draw(st.integers(0, 480))
    channels = draw(st.integers(1, 10))
    shape = draw(st.sampled_from(((n,), (n, channels), (channels, n))))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    if dtype.kind == "b":
        return rng.random(shape) < 0.5
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        if kind == "silence":
            return np.full(shape, 0 if dtype.kind == "i" else (info.max + 1) // 2, dtype)
        if kind in ("full_scale", "extreme"):
            return rng.choice(np.array([info.min, info.max], dtype), shape)
        return rng.integers(info.min, info.max, shape, dtype=dtype, endpoint=True)
    if kind == "silence":
        return np.zeros(shape, dtype)
    if kind == "full_scale":
        return rng.choice(np.array([-1.0, 1.0]), shape).astype(dtype)
    if kind == "extreme":
        with np.errstate(over="ignore"):
            return rng.choice(np.array(FLOAT_SPECIALS), shape).astype(dtype)
    with np.errstate(over="ignore"):
        return (rng.standard_normal(shape) * 10.0 ** rng.uniform(-6, 6)).astype(dtype)


good_rates = st.one_of(st.sampled_from((8000, 11025, 16000, 22050, 44100, 48000)),
                       st.integers(MIN_SAMPLE_RATE, MAX_SAMPLE_RATE),
                       st.floats(MIN_SAMPLE_RATE, MAX_SAMPLE_RATE),
                       st.sampled_from((np.int32(16000), np.float32(22050.0))))
bad_rates = st.sampled_from((0, -16000, 999, MAX_SAMPLE_RATE + 1, 1e12, math.nan, math.inf, True, "16k", None))
bad_arrays = st.sampled_from((np.zeros((2, 3, 4)), np.float32(0.5), np.zeros(8, np.complex64),
                              np.array(["a", "b"]), np.array([object(), 1], dtype=object), "speech"))


def mono_length(x: np.ndarray) -> int:
    """Samples the engine keeps of ``x``: channels are the short axis when it has at most 8 entries."""
    if x.ndim == 1:
        return len(x)
    return x.shape[1] if (x.shape[0] <= 8 and x.shape[0] < x.shape[1]) else x.shape[0]


@FUZZ
@given(audio=audio_arrays(), rate=good_rates, after=st.sampled_from(("pull",) * 8 + ("flush", "reset")))
def test_any_audio_is_animated_or_refused_with_a_value_error(engine, audio, rate, after):
    before = dict(engine.stats)
    engine.push(audio, rate)  # must not raise: every array above is valid audio
    if audio.size:
        assert engine.stats["samples_in"] == before["samples_in"] + mono_length(audio)
    if audio.ndim == 1 and audio.dtype.kind == "f":  # no averaging: the counts are exact
        with np.errstate(over="ignore", invalid="ignore"):
            x32 = audio.astype(np.float32)
            bad = ~np.isfinite(x32)
            assert engine.stats["nonfinite_samples"] - before["nonfinite_samples"] == bad.sum()
            assert engine.stats["clipped_samples"] - before["clipped_samples"] == (np.abs(x32[~bad]) > 1).sum()
    elif audio.dtype.kind != "f":
        assert engine.stats["nonfinite_samples"] == before["nonfinite_samples"]
        assert engine.stats["clipped_samples"] == before["clipped_samples"]
    if after == "flush":
        engine.flush()
    check_frames(engine, engine.pull())
    if after == "reset":
        engine.reset()
        engine.next_index = 0


@settings(FUZZ, max_examples=200)
@given(audio=st.one_of(audio_arrays(), bad_arrays), rate=st.one_of(good_rates, bad_rates))
def test_nonsense_arguments_raise_value_error_and_leave_the_stream_whole(engine, audio, rate):
    bad_rate = isinstance(rate, (bool, str)) or rate is None or not MIN_SAMPLE_RATE <= rate <= MAX_SAMPLE_RATE
    x = np.asarray(audio) if not isinstance(audio, str) else None
    bad_audio = x is None or x.ndim not in (1, 2) or x.dtype.kind not in "biuf"
    if bad_rate or bad_audio:
        with pytest.raises(ValueError):
            engine.push(audio, rate)
    else:
        engine.push(audio, rate)
    check_frames(engine, engine.pull())


# ---------------------------------------------------------------------------------------------
# Emotion text and speaker

any_text = st.one_of(
    st.text(st.characters(exclude_categories=()), max_size=80),  # every code point, surrogates too
    st.text(st.sampled_from("abc \t\n\x00\x1b\x7f\u200b\u3000\ufeffé怒😡ب\ud800"), max_size=40),
    st.builds(lambda c, n: c * n, st.sampled_from(("a", "happy ", " ", "\n", "怒")), st.integers(0, 6000)),
    st.sampled_from(("", "   ", "furious", "quietly irritated", "悲しい", "очень рад", "fröhlich 😊", "غاضب angry")),
)
names = st.one_of(st.none(), st.text(max_size=12), st.sampled_from(("us_f1", "gb_m2", "default", "nobody")),
                  st.integers(), st.lists(st.integers(), max_size=2))


@FUZZ
@given(text=st.one_of(any_text, st.integers(), st.binary(max_size=4)), name=names)
def test_any_emotion_text_and_speaker_name_is_taken(engine, text, name):
    if isinstance(text, str):
        engine.set_emotion(text)
        kept = engine.emotion
        assert kept and len(kept) <= MAX_TEXT_CHARS and kept == kept.strip()
        assert not any(unicodedata.category(c) in ("Cc", "Cs") for c in kept)
        if not text.strip():
            assert kept == engine.bundle.default_emotion
    else:
        with pytest.raises(ValueError, match="must be a string"):
            engine.set_emotion(text)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # unknown names warn, once per call
        engine.set_identity(name)
    assert 0 <= engine.identity < len(engine.bundle.identities)
    # The stream goes on with the new conditions.
    engine.push(np.random.default_rng(len(str(text))).standard_normal(64).astype(np.float32) * 0.1)
    check_frames(engine, engine.pull())
