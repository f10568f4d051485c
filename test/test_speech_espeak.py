"""espeak-ng synthesis with phoneme timings, and emotional prosody (talking_face_ros.speech)."""
from __future__ import annotations

import multiprocessing
import warnings

import numpy as np
import pytest

from talking_face_ros.corpus.voices import VOICES, VoiceConfig, voice_by_id
from talking_face_ros.phonemes import PHONEMES, SILENCE, VOWELS
from talking_face_ros.speech import espeak
from talking_face_ros.speech.espeak import arpabet_for, synthesize, text_to_arpabet
from talking_face_ros.speech.prosody import Prosody, emotion_prosody
from talking_face_ros.style import SpeakingStyle

MALE = voice_by_id("us_m3")
FEMALE = voice_by_id("gb_f2")


def _rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64)))) if len(x) else 0.0


def _segment_audio(result, seg, *, trim: float = 0.0) -> np.ndarray:
    """Samples of a segment, with ``trim`` of its length cut from each end."""
    a = seg.start + trim * seg.duration
    b = seg.end - trim * seg.duration
    return result.audio[int(a * result.sample_rate):int(b * result.sample_rate)]


def _median_f0(x: np.ndarray, sr: int) -> float:
    """Median F0 of the loud, periodic 40 ms frames, by the autocorrelation peak in 60-500 Hz."""
    n, hop = int(0.04 * sr), int(0.01 * sr)
    frames = [x[i:i + n] for i in range(0, len(x) - n, hop)]
    loud = 0.3 * max(_rms(f) for f in frames)
    f0 = []
    for f in frames:
        if _rms(f) < loud:
            continue
        f = f - f.mean()
        ac = np.correlate(f, f, "full")[n - 1:]
        lo, hi = int(sr / 500), int(sr / 60)
        lag = lo + int(np.argmax(ac[lo:hi]))
        if ac[lag] > 0.5 * ac[0]:
            f0.append(sr / lag)
    return float(np.median(f0))


def test_synthesis_gives_nonsilent_16k_float_audio():
    r = synthesize("Hello there, how are you today?", voice=MALE)
    assert r.sample_rate == 16000
    assert r.audio.dtype == np.float32 and r.audio.ndim == 1
    assert 1.0 < r.duration < 4.0  # seven words at 170 wpm
    assert np.max(np.abs(r.audio)) <= 1.0
    assert _rms(r.audio) > 0.02


def test_phonemes_tile_the_audio_exactly():
    r = synthesize("Stop, then go on. Really?", voice=FEMALE)
    segs = r.phonemes
    assert segs[0].start == 0.0 and segs[-1].end == r.duration
    for a, b in zip(segs, segs[1:]):
        assert a.end == b.start and a.duration > 0
        assert not (a.phone == b.phone == SILENCE)  # pauses are merged
    assert all(s.phone in PHONEMES for s in segs)
    assert segs[0].phone == SILENCE and segs[-1].phone == SILENCE
    inner_pauses = [s for s in segs[1:-1] if s.phone == SILENCE]
    assert len(inner_pauses) == 2 and all(s.duration > 0.05 for s in inner_pauses)  # at "," and "."
    assert [s.phone for s in segs if s.phone != SILENCE][:4] == ["S", "T", "AA", "P"]


def test_bilabials_sit_on_energy_dips():
    r = synthesize("bob may pay", voice=MALE)
    speech = [s for s in r.phonemes if s.phone != SILENCE]
    assert [s.phone for s in speech] == ["B", "AA", "B", "M", "EY", "P", "EY"]
    vowels = [s for s in speech if s.phone in VOWELS]
    vowel_rms = np.mean([_rms(_segment_audio(r, s, trim=0.2)) for s in vowels])
    for s in speech[1:]:  # the first B follows silence: its segment is just the release burst
        if s.phone in {"B", "M"}:  # voiced closure: a murmur far below the vowels
            assert _rms(_segment_audio(r, s, trim=0.2)) < 0.5 * vowel_rms, s
        if s.phone == "P":  # voiceless closure: silence until the burst at the end
            closure = r.audio[int(s.start * 16000):int((s.start + 0.6 * s.duration) * 16000)]
            assert len(closure) > 0.02 * 16000 and _rms(closure) < 0.05 * vowel_rms, s
    # plausible times: three syllables at 170 wpm, the utterance starts within 20 ms
    assert speech[0].start < 0.02 and 0.5 < speech[-1].end < 1.2


def test_stop_closure_is_part_of_the_stop():
    """espeak announces a voiceless stop at its burst; the closure before it is moved into the stop."""
    r = synthesize("a happy puppy", voice=MALE)
    p_events = [t for m, t in r.espeak_phonemes if m == "p"]
    p_segments = [s for s in r.phonemes if s.phone == "P"]
    assert len(p_events) == len(p_segments) == 3
    for t_burst, seg in zip(p_events, p_segments):
        assert 0.02 < t_burst - seg.start < 0.1  # closures of 20-100 ms


def test_same_input_gives_identical_bytes():
    text = "Determinism matters for a reproducible corpus."
    first = synthesize(text, voice=FEMALE)
    synthesize("Something else in between.", voice=MALE)  # espeak state must not carry over
    second = synthesize(text, voice=FEMALE)
    assert first.audio.tobytes() == second.audio.tobytes()
    assert first.phonemes == second.phonemes


def _worker_bytes(text: str) -> bytes:
    return synthesize(text, voice=FEMALE).audio.tobytes()


def test_worker_process_gives_the_same_audio():
    text = "One synthesiser per worker."
    with multiprocessing.get_context("fork").Pool(1) as pool:
        worker = pool.apply(_worker_bytes, (text,))
    assert worker == synthesize(text, voice=FEMALE).audio.tobytes()


def test_voices_differ():
    text = "The weather is lovely today."
    male, female = synthesize(text, voice=MALE), synthesize(text, voice=FEMALE)
    assert _median_f0(female.audio, 16000) > 1.5 * _median_f0(male.audio, 16000)
    fast = VoiceConfig("fast", "en-us", "m3", "male", 50, 50, 300, SpeakingStyle())
    assert synthesize(text, voice=fast).duration < 0.75 * male.duration


def test_native_rate_keeps_the_same_timings():
    text = "Sample rates only change the audio."
    r16 = synthesize(text, voice=MALE)
    r22 = synthesize(text, voice=MALE, sample_rate=22050)
    assert r22.sample_rate == 22050
    assert len(r16.audio) == round(len(r22.audio) * 16000 / 22050)
    assert [s.phone for s in r16.phonemes] == [s.phone for s in r22.phonemes]
    for a, b in zip(r16.phonemes[:-1], r22.phonemes[:-1]):  # event times are exact in both
        assert a.end == b.end


def test_bad_input_is_rejected():
    with pytest.raises(ValueError, match="non-empty"):
        synthesize("   ", voice=MALE)
    with pytest.raises(ValueError, match="non-empty"):
        synthesize("", voice=MALE)
    nobody = VoiceConfig("x", "xx-nowhere", "m3", "male", 50, 50, 170, SpeakingStyle())
    with pytest.raises(ValueError, match="xx-nowhere"):
        synthesize("hello", voice=nobody)


PHONETIC_TEXT = (
    "The birch canoe slid on the smooth planks; glue the sheet to the dark blue background. "
    "Who's there? Whistling wheat, yellow yarn, thirty-three thirsty birds. Our hour, the fire, "
    "the tower and the lawyer. Measure the vision of beige garages. Ouch, boy, joy, noise! "
    "Little bottle, button, kitten, rhythm; idea area, law and order. Cat, cot, caught, cut, "
    "curt, cart, kit, coat, could, cow, care, cure, beer, bear. Loch, huge, human, anxious, "
    "luxury, question, nature, azure, strengths, honour, vehicle, schedule, privilege, pretty city."
)


def test_every_english_phoneme_maps():
    """Real output of every accent maps without a fallback, and covers the ARPAbet inventory."""
    seen = set()
    for language in sorted({v.language for v in VOICES}):
        voice = next(v for v in VOICES if v.language == language)
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # an unmapped mnemonic warns: fail on it
            r = synthesize(PHONETIC_TEXT, voice=voice)
        for m, _ in r.espeak_phonemes:
            assert m.strip("',%=") in espeak.ESPEAK_TO_ARPABET, (language, m)
        seen |= {s.phone for s in r.phonemes}
    assert len(seen) >= 38, sorted(PHONEMES - seen)


def _english_phoneme_tables(phontab: bytes) -> dict[str, int]:
    """Mnemonic -> espeak phoneme type for every phoneme an English voice can use.

    phontab (espeak-ng-data) holds the compiled phoneme tables: a count, then per table its
    phoneme count, the index+1 of the table it inherits from, a 32-byte name and 16-byte
    PHONEME_TAB records whose first field is the mnemonic packed into 4 bytes (synthdata.c).
    """
    tables, off = [], 4
    for _ in range(phontab[0]):
        n, parent = phontab[off], phontab[off + 1]
        name = phontab[off + 4:off + 36].split(b"\0")[0].decode("latin-1")
        off += 36
        phones = {}
        for k in range(n):
            mnemonic = phontab[off + 16 * k:off + 16 * k + 4].rstrip(b"\0").decode("latin-1")
            phones[mnemonic] = phontab[off + 16 * k + 11]  # PHONEME_TAB.type
        off += 16 * n
        tables.append((name, parent, phones))
    out = {}
    for name, parent, phones in tables:
        if name == "en" or name.startswith("en-"):
            while True:  # the table and everything it inherits
                for mnemonic, kind in phones.items():  # a table overrides what it inherits
                    out.setdefault(mnemonic, kind)
                if parent == 0:
                    break
                name, parent, phones = tables[parent - 1]
    return out


def test_every_phoneme_of_the_compiled_english_tables_maps():
    data_path = espeak._synthesiser().data_path
    phontab = data_path / "phontab" if data_path else None
    if phontab is None or not phontab.is_file():
        pytest.skip("espeak-ng-data/phontab not found")
    inventory = _english_phoneme_tables(phontab.read_bytes())
    assert {"p", "b", "m", "aI", "@L", "r-"} <= set(inventory)  # the parse found real tables
    stress, virtual = 1, 9  # phoneme types that are never spoken (speak_lib: phSTRESS, phVIRTUAL)
    spoken = {m for m, t in inventory.items() if t not in (stress, virtual)}
    assert not spoken - set(espeak.ESPEAK_TO_ARPABET), sorted(spoken - set(espeak.ESPEAK_TO_ARPABET))


def test_unknown_mnemonic_maps_to_nearest_class_and_warns_once():
    with pytest.warns(UserWarning, match="t9"):
        assert arpabet_for("t9") == ("T",)  # a new variant of [t]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert arpabet_for("t9") == ("T",)  # second time: no warning
    with pytest.warns(UserWarning):
        assert arpabet_for("o~~") == ("OW",)  # a modified [o] is still [o]
    with pytest.warns(UserWarning):
        assert arpabet_for("A") == ("AH",)  # unknown vowel-like -> neutral vowel
    with pytest.warns(UserWarning):
        assert arpabet_for("Y") == ("T",)  # unknown consonant-like -> neutral consonant
    with pytest.warns(UserWarning):
        assert arpabet_for("_?") == (SILENCE,)  # unknown pause
    assert arpabet_for("'eI") == ("EY",)  # stress marks are not part of the mnemonic
    assert arpabet_for("3", language="en-us") == ("ER",) and arpabet_for("3", language="en") == ("AH",)
    assert arpabet_for("@L") == ("AH", "L")


def test_text_to_arpabet_reads_words_and_numbers():
    assert text_to_arpabet("map") == [["M", "AE", "P"]]
    assert text_to_arpabet("42") == [["F", "AO", "R", "T", "IY"], ["T", "UW"]]


def test_emotions_move_pitch_rate_and_loudness():
    text = "The quick brown fox jumps over the lazy dog near the bank."
    voice = MALE

    def measure(emotion, intensity=3):
        r = synthesize(text, voice=voice, prosody=emotion_prosody(emotion, intensity, voice))
        return _median_f0(r.audio, 16000), r.duration, _rms(r.audio)

    f0, dur, loud = measure("neutral")
    for emotion in ("happy", "surprised", "fearful", "angry"):
        assert measure(emotion)[0] > 1.08 * f0, emotion
    for emotion in ("sad", "disgusted", "contemptuous"):
        assert measure(emotion)[0] < 0.97 * f0, emotion
    sad = measure("sad")
    assert sad[1] > 1.15 * dur and sad[2] < 0.8 * loud  # slower and softer
    angry = measure("angry")
    assert angry[1] < 0.95 * dur and angry[2] > 1.2 * loud  # faster and louder
    assert measure("fearful")[1] < 0.9 * dur
    assert f0 < measure("happy", 1)[0] < measure("happy", 3)[0]  # intensity scales the change


def test_prosody_is_clamped_and_validated():
    high = VoiceConfig("hi", "en-us", "f1", "female", 95, 90, 430, SpeakingStyle())
    p = emotion_prosody("surprised", 3, high)
    assert p.pitch == 100 and p.range == 100
    assert emotion_prosody("fearful", 3, high).speed == 450
    assert emotion_prosody("neutral", 2, MALE) == Prosody.of_voice(MALE)
    with pytest.raises(ValueError, match="volume"):
        Prosody(pitch=50, range=50, speed=170, volume=250)
    with pytest.raises(ValueError, match="gain"):
        Prosody(pitch=50, range=50, speed=170, gain=0.0)
    with pytest.raises(ValueError, match="emotion"):
        emotion_prosody("bored", 1, MALE)


def test_gain_scales_the_audio():
    text = "Quiet please."
    base = synthesize(text, voice=MALE)
    half = synthesize(text, voice=MALE, prosody=Prosody(**{**Prosody.of_voice(MALE).to_dict(), "gain": 0.5}))
    np.testing.assert_allclose(half.audio, 0.5 * base.audio, atol=1e-7)
