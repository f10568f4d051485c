"""espeak-ng speech with sample-accurate phoneme timings, via the C library (libespeak-ng1).

Why ctypes and not a PyPI package: the Python wrappers either run the ``espeak-ng`` program
(audio only, or phonemes only) or return phoneme strings without times. The timings we need come
from the library's synth callback, whose espeakEVENT_PHONEME events carry the exact output sample
at which each phoneme starts. So this module drives libespeak-ng directly: synchronous mode,
phoneme events on, one callback collecting the int16 audio and the events.

The library is process-global state (one voice, one callback), so there is one synthesiser per
process, used under a lock; the corpus generator runs one per worker process. Each utterance is
spoken in a forked child so that the output is a pure function of the input (see _Synthesiser).

Two corrections to espeak's event positions, both following espeak-ng's Generate()
(synthesize.c) and checked against the waveform:
- a stop's closure silence (its "prepause") is generated *before* the stop's event, so the
  silence would belong to the previous phoneme; the stop segment is extended back over the
  silent closure, as in TIMIT-style segmentation where the closure is part of the stop;
- a vowel after a nasal is announced only after its formant onset, i.e. after the nasal's
  release; the boundary is moved back to the release (the steepest energy rise), so that a
  bilabial /m/ ends when the lips open.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import os
import threading
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..phonemes import SILENCE, VOWELS, PhonemeSegment
from .audio import resample_audio
from .prosody import Prosody

if TYPE_CHECKING:
    from ..corpus.voices import VoiceConfig

# ---------------------------------------------------------------------------------------------
# espeak-ng English phoneme mnemonics -> ARPAbet (+ SIL)
#
# The inventory was collected from the phoneme events of all eight gmw English accents on
# varied text, and paired with espeak's own IPA output (espeakINITIALIZE_PHONEME_IPA) to fix
# each sound; the tests check it against every phoneme of the compiled English tables. Where
# ARPAbet has no symbol for an espeak sound the nearest ARPAbet phone in the CMU dictionary's
# convention is used (flap -> T, glottal stop -> T, dental t -> T, velar
# fricative /x/ -> K as in CMU "loch" L AA K). A mnemonic that is two sounds in a row (syllabic
# /@L/ = [əl], triphthongs) maps to two phones; the segment is split, the first taking
# _SPLIT_FIRST of it. Stress marks (' , % =) are not part of the mnemonic and are dropped.
# ---------------------------------------------------------------------------------------------
ESPEAK_TO_ARPABET: dict[str, tuple[str, ...]] = {
    # pauses: word/phrase/clause breaks of different length
    "_": ("SIL",), "_:": ("SIL",), "_!": ("SIL",), "_|": ("SIL",), "_^": ("SIL",), "_#": ("SIL",),
    # plosives and affricates
    "p": ("P",), "b": ("B",), "t": ("T",), "d": ("D",), "k": ("K",), "g": ("G",),
    "t2": ("T",),  # [t] that does not reduce
    "t#": ("T",),  # en-us flap [ɾ] ("city"); CMU writes T
    "t[": ("T",),  # dental [t̪], en-029 for "th"
    "d#": ("D",), "d2": ("D",),
    "?": ("T",),  # glottal stop [ʔ] ("button" in en-us); CMU writes T
    "tS": ("CH",), "dZ": ("JH",),
    # fricatives
    "f": ("F",), "v": ("V",), "T": ("TH",), "D": ("DH",), "s": ("S",), "z": ("Z",),
    "z#": ("Z",), "z/2": ("Z",), "s2": ("S",), "S": ("SH",), "Z": ("ZH",),
    "h": ("HH",), "x": ("K",), "C": ("HH",),
    # nasals, liquids, glides
    "m": ("M",), "n": ("N",), "N": ("NG",), "n-": ("N",), "m-": ("M",),  # n- m-: syllabic
    "l": ("L",), "l/": ("L",), "l/2": ("L",), "r": ("R",), "r-": ("R",),  # r-: linking r
    "w": ("W",), "w#": ("W",),  # w#: [ʍ] "which" (Scottish)
    "j": ("Y",),
    ";": ("Y",),  # the short [j] glide espeak appends to i-vowels before a vowel ("happy_ending")
    # monophthongs
    "@": ("AH",), "@2": ("AH",), "@5": ("AH",), "@-": ("AH",), "@#": ("AH",), "a#": ("AH",),
    "3": ("AH",),  # [ə]; [ɚ] in en-us, see _RHOTIC
    "3:": ("ER",), "IR": ("ER",), "VR": ("ER",),  # IR VR: Scottish split "ir"/"ur"
    "V": ("AH",),
    "a": ("AE",), "a2": ("AE",), "aa": ("AE",), "A#": ("AE",), "a#2": ("AE",),
    "A:": ("AA",), "A@": ("AA",), "0": ("AA",), "02": ("AA",), "0#": ("AA",), "A~": ("AA",),
    "O:": ("AO",), "O": ("AO",), "O@": ("AO",), "o@": ("AO",), "O2": ("AO",), "O~": ("AO",),
    "E": ("EH",), "E2": ("EH",), "E#": ("EH",), "e#": ("EH",), "e@": ("EH",),
    "I": ("IH",), "I2": ("IH",), "I#": ("IH",), "I2#": ("IH",),
    "i": ("IY",), "i:": ("IY",), "i@": ("IY",), "i@3": ("IY",),
    "U": ("UH",), "U@": ("UH",), "u:": ("UW",),
    "e:": ("EY",), "o:": ("OW",),
    # diphthongs
    "eI": ("EY",), "aI": ("AY",), "aI2": ("AY",), "OI": ("OY",), "aU": ("AW",),
    "oU": ("OW",), "oU#": ("OW",),
    "I@": ("IH",),  # [ɪə] "near" (nucleus)
    # two sounds in one mnemonic
    "@L": ("AH", "L"),  # syllabic l [əl] ("apple")
    "aI@": ("AY", "AH"), "aI3": ("AY", "ER"), "aU@": ("AW", "AH"),  # "science", "fire", "hour"
    # Sounds of the shared base tables (base1, base) that the English tables inherit: not used
    # by English words, but reachable through foreign names; mapped by place of articulation.
    "_::": ("SIL",), "_;_": ("SIL",), "_^_": ("SIL",), "_X1": ("SIL",), "||": ("SIL",), "": ("SIL",),
    "_\x01": ("SIL",), "1": ("SIL",), "#X1": ("SIL",),  # internal markers
    "*": ("R",), "**": ("R",),  # tapped and trilled r
    "B": ("B",),  # [β] bilabial fricative: the lips nearly close
    "v#": ("V",),  # [ʋ]
    "c": ("K",), "q": ("K",), "J": ("G",), "d[": ("D",),  # palatal/uvular stops, dental d
    "tS;": ("CH",), "dZ;": ("JH",),
    "S;": ("SH",), "s;": ("SH",), "s.": ("SH",), "Z;": ("ZH",), "z;": ("ZH",), "z.": ("ZH",),
    "X": ("K",), "Q": ("G",), 'Q"': ("G",), "Q^": ("G",), "J^": ("Y",), "l#": ("L",),
    "L": ("L",), "L/": ("L",), "l-": ("L",), "l.": ("L",), "l/3": ("L",), "l^": ("L",),
    "R": ("R",), "R2": ("R",), "R3": ("R",), 'r"': ("R",), "r.": ("R",), "r/": ("R",),
    "n.": ("N",), "n^": ("N",), "N-": ("NG",),
    "a/": ("AA",), "e": ("EY",), "o": ("OW",), "u": ("UW",),
}
_SPLIT_FIRST = 0.6  # share of a two-phone mnemonic's segment given to its first phone

# en-us is rhotic: espeak's [3] is [ɚ] and the vowel+r mnemonics carry the /r/ (CMU: "car" K AA R).
_RHOTIC: dict[str, tuple[str, ...]] = {
    "3": ("ER",), "A@": ("AA", "R"), "O@": ("AO", "R"), "o@": ("AO", "R"), "e@": ("EH", "R"),
    "U@": ("UH", "R"), "i@3": ("IY", "R"), "I@": ("IH", "R"), "aI@": ("AY", "ER"), "aU@": ("AW", "ER"),
}
_RHOTIC_LANGUAGES = frozenset({"en-us"})

_STRESS_MARKS = "',%="
_warned: set[str] = set()


def arpabet_for(mnemonic: str, *, language: str = "en") -> tuple[str, ...]:
    """ARPAbet phones for one espeak mnemonic; unknown ones map to the nearest class, warned once."""
    m = mnemonic.strip(_STRESS_MARKS)
    if language in _RHOTIC_LANGUAGES and m in _RHOTIC:
        return _RHOTIC[m]
    if m in ESPEAK_TO_ARPABET:
        return ESPEAK_TO_ARPABET[m]
    # Nearest class: drop espeak's modifier suffixes (#, 2, :, /, -, [, ~) until a known base is
    # left; failing that, a pause, a vowel-like or a consonant-like default.
    base = m
    while len(base) > 1 and base not in ESPEAK_TO_ARPABET:
        base = base[:-1]
    if base in ESPEAK_TO_ARPABET:
        phones = ESPEAK_TO_ARPABET[base]
    elif m.startswith("_") or not m:
        phones = (SILENCE,)
    elif m[0] in "aeiouAEIOUV03@":
        phones = ("AH",)
    else:
        phones = ("T",)
    if m not in _warned:
        _warned.add(m)
        warnings.warn(f"espeak phoneme {mnemonic!r} has no ARPAbet mapping; using {' '.join(phones)}",
                      stacklevel=2)
    return phones


# ---------------------------------------------------------------------------------------------
# The C library
# ---------------------------------------------------------------------------------------------
_AUDIO_OUTPUT_SYNCHRONOUS = 2
_INITIALIZE_PHONEME_EVENTS = 0x0001
_INITIALIZE_DONT_EXIT = 0x8000
_CHARS_UTF8 = 1
_POS_CHARACTER = 1
_EVENT_LIST_TERMINATED, _EVENT_PHONEME = 0, 7
_RATE, _VOLUME, _PITCH, _RANGE, _PUNCTUATION, _WORDGAP = 1, 2, 3, 4, 5, 7
_EE_OK = 0


class _Event(ctypes.Structure):
    """espeak_EVENT from speak_lib.h (API revision 12)."""

    _fields_ = [
        ("type", ctypes.c_int),
        ("unique_identifier", ctypes.c_uint),
        ("text_position", ctypes.c_int),
        ("length", ctypes.c_int),
        ("audio_position", ctypes.c_int),  # milliseconds
        ("sample", ctypes.c_int),  # output sample index at which the event happens
        ("user_data", ctypes.c_void_p),
        ("id", ctypes.c_char * 8),  # union; for phoneme events the mnemonic, NUL-terminated
    ]


_SynthCallback = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int,
                                  ctypes.POINTER(_Event))


class _Synthesiser:
    """The process's one espeak-ng instance.

    espeak-ng carries state from one utterance to the next that no API call resets (the pitch
    flutter phase, the glottal pulse phase, echo and breath-noise filters), so the same text
    comes out a few samples different every time. To make synthesis a pure function of its
    input, this process only initialises the library and selects voices; each utterance is
    spoken by a forked child that starts from that untouched state, sends back the audio and
    events through a pipe and exits. The fork costs a few milliseconds per utterance.
    """

    def __init__(self):
        name = ctypes.util.find_library("espeak-ng") or "libespeak-ng.so.1"
        try:
            lib = ctypes.CDLL(name)
        except OSError as e:
            raise RuntimeError(
                f"cannot load the espeak-ng library ({name}): install it with "
                "'apt-get install libespeak-ng1 espeak-ng-data'"
            ) from e
        lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        lib.espeak_SetSynthCallback.argtypes = [_SynthCallback]
        lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        lib.espeak_Synth.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int,
                                     ctypes.c_uint, ctypes.c_uint, ctypes.c_void_p, ctypes.c_void_p]
        lib.espeak_TextToPhonemes.argtypes = [ctypes.POINTER(ctypes.c_void_p), ctypes.c_int, ctypes.c_int]
        lib.espeak_TextToPhonemes.restype = ctypes.c_char_p
        lib.espeak_Info.argtypes = [ctypes.POINTER(ctypes.c_char_p)]
        lib.espeak_Info.restype = ctypes.c_char_p
        rate = lib.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, 500, None,
                                     _INITIALIZE_PHONEME_EVENTS | _INITIALIZE_DONT_EXIT)
        if rate <= 0:
            raise RuntimeError("espeak_Initialize failed: is espeak-ng-data installed?")
        self.lib = lib
        self.rate = int(rate)  # 22050 for espeak-ng's own voices
        self._chunks: list[bytes] = []
        self._events: list[str] = []
        self._callback = _SynthCallback(self._on_synth)  # kept referenced: C holds the pointer
        lib.espeak_SetSynthCallback(self._callback)
        # rand() drives espeak's breath noise; the child seeds it so the noise repeats too.
        self._libc = ctypes.CDLL(None)
        self._voices: set[str] = set()
        data_path = ctypes.c_char_p()
        lib.espeak_Info(ctypes.byref(data_path))
        self.data_path = Path(data_path.value.decode()) if data_path.value else None

    # -- in this process ------------------------------------------------------------------
    def check_voice(self, espeak_name: str) -> None:
        """Fail early on unknown voices; also loads the voice's data once for the children."""
        if espeak_name not in self._voices:
            if self.lib.espeak_SetVoiceByName(espeak_name.encode()) != _EE_OK:
                raise ValueError(f"espeak-ng has no voice {espeak_name!r} (see 'espeak-ng --voices=en')")
            # espeak silently falls back to the plain accent when a variant is missing
            _, _, variant = espeak_name.partition("+")
            if variant and self.data_path and not (self.data_path / "voices" / "!v" / variant).is_file():
                raise ValueError(f"espeak-ng has no voice variant {variant!r} in {self.data_path / 'voices' / '!v'}")
            self._voices.add(espeak_name)

    def synth(self, espeak_name: str, text: str, prosody: Prosody) -> tuple[np.ndarray, list[tuple[int, str]]]:
        self.check_voice(espeak_name)
        payload = _in_child(lambda: self._synth_here(espeak_name, text, prosody))
        n_pcm = int.from_bytes(payload[:8], "little")
        pcm = np.frombuffer(payload[8:8 + 2 * n_pcm], dtype=np.int16).copy()
        events = []
        for line in payload[8 + 2 * n_pcm:].decode("utf-8", "replace").splitlines():
            sample, mnemonic = line.split("\t", 1)
            events.append((int(sample), mnemonic))
        return pcm, events

    def phonemes(self, espeak_name: str, text: str) -> list[str]:
        """espeak's mnemonics for text, one string per clause, phonemes separated by "|"."""
        self.check_voice(espeak_name)
        payload = _in_child(lambda: self._phonemes_here(espeak_name, text))
        return payload.decode("utf-8", "replace").split("\n") if payload else []

    # -- in the forked child ----------------------------------------------------------------
    def _on_synth(self, wav, n, events) -> int:
        if n > 0 and wav:
            self._chunks.append(ctypes.string_at(wav, 2 * n))
        i = 0
        while events[i].type != _EVENT_LIST_TERMINATED:
            e = events[i]
            if e.type == _EVENT_PHONEME:
                self._events.append(f"{int(e.sample)}\t{e.id.decode('utf-8', 'replace')}")
            i += 1
        return 0  # 0 = continue synthesis

    def _synth_here(self, espeak_name: str, text: str, prosody: Prosody) -> bytes:
        lib = self.lib
        if lib.espeak_SetVoiceByName(espeak_name.encode()) != _EE_OK:
            raise ValueError(f"espeak-ng has no voice {espeak_name!r}")
        for param, value in ((_RATE, prosody.speed), (_VOLUME, prosody.volume), (_PITCH, prosody.pitch),
                             (_RANGE, prosody.range), (_PUNCTUATION, 0), (_WORDGAP, 0)):
            lib.espeak_SetParameter(param, int(value), 0)
        self._libc.srand(0)
        data = text.encode("utf-8") + b"\0"
        err = lib.espeak_Synth(data, len(data), 0, _POS_CHARACTER, 0, _CHARS_UTF8, None, None)
        if err != _EE_OK:
            raise RuntimeError(f"espeak_Synth failed with code {err}")
        pcm = b"".join(self._chunks)
        return (len(pcm) // 2).to_bytes(8, "little") + pcm + "\n".join(self._events).encode("utf-8")

    def _phonemes_here(self, espeak_name: str, text: str) -> bytes:
        self.lib.espeak_SetVoiceByName(espeak_name.encode())
        buf = ctypes.create_string_buffer(text.encode("utf-8") + b"\0")
        ptr = ctypes.c_void_p(ctypes.addressof(buf))
        out = []
        while ptr.value:
            # phonememode: a separator character in bits 8..23 -> phonemes separated by "|"
            res = self.lib.espeak_TextToPhonemes(ctypes.byref(ptr), _CHARS_UTF8, ord("|") << 8)
            if res:
                out.append(res.decode("utf-8", "replace"))
        return "\n".join(out).encode("utf-8")


def _in_child(work) -> bytes:
    """Run work() in a forked child and return the bytes it produced (see _Synthesiser)."""
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: never returns
        status = 0
        try:
            os.close(read_fd)
            try:
                payload = b"\x00" + work()
            except BaseException as e:  # report any failure to the parent, then exit
                payload, status = b"\x01" + f"{type(e).__name__}: {e}".encode("utf-8", "replace"), 1
            view = memoryview(payload)
            while view:
                view = view[os.write(write_fd, view):]
            os.close(write_fd)
        finally:
            os._exit(status)
    os.close(write_fd)
    chunks = []
    with os.fdopen(read_fd, "rb") as pipe:
        while chunk := pipe.read(1 << 20):
            chunks.append(chunk)
    _, wait_status = os.waitpid(pid, 0)
    payload = b"".join(chunks)
    if not payload:
        raise RuntimeError(f"espeak-ng child process died (wait status {wait_status})")
    if payload[:1] == b"\x01":
        message = payload[1:].decode("utf-8", "replace")
        raise (ValueError if message.startswith("ValueError") else RuntimeError)(f"espeak-ng: {message}")
    return payload[1:]


_LOCK = threading.Lock()
_SYNTH: _Synthesiser | None = None


def _reset_after_fork() -> None:
    # A forked worker inherits the initialised, never-used library, which is exactly the state
    # synthesis starts from; it must not inherit a lock that some parent thread held.
    global _LOCK
    _LOCK = threading.Lock()


os.register_at_fork(after_in_child=_reset_after_fork)


def _synthesiser() -> _Synthesiser:
    global _SYNTH
    if _SYNTH is None:
        _SYNTH = _Synthesiser()
    return _SYNTH


# ---------------------------------------------------------------------------------------------
# Synthesis
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SynthResult:
    audio: np.ndarray  # (samples,) float32 mono in [-1, 1]
    sample_rate: int  # Hz of audio
    phonemes: list[PhonemeSegment]  # tiles [0, duration] exactly, SIL for pauses
    espeak_phonemes: list[tuple[str, float]]  # espeak's own (mnemonic, start s), uncorrected

    @property
    def duration(self) -> float:
        return len(self.audio) / self.sample_rate


def synthesize(text: str, *, voice: "VoiceConfig", prosody: Prosody | None = None,
               sample_rate: int = 16000) -> SynthResult:
    """Speak plain text with a corpus voice; audio at ``sample_rate`` plus phoneme timings."""
    if not isinstance(text, str) or not text.strip():
        raise ValueError("text to synthesise must be a non-empty string")
    if sample_rate <= 0:
        raise ValueError(f"sample_rate must be positive, got {sample_rate}")
    prosody = prosody if prosody is not None else Prosody.of_voice(voice)
    with _LOCK:
        synth = _synthesiser()
        pcm, events = synth.synth(voice.espeak_name, text, prosody)
        native_rate = synth.rate
    if len(pcm) == 0:
        raise ValueError(f"espeak-ng produced no audio for {text!r}")
    native = pcm.astype(np.float32) / 32768.0
    boundaries, phones = _timeline(native, events, native_rate, language=voice.language)

    audio = resample_audio(native, native_rate, sample_rate)
    if prosody.gain != 1.0:
        audio = np.clip(audio * np.float32(prosody.gain), -1.0, 1.0)
    duration = len(audio) / sample_rate
    # Times are native sample indices / native rate (exact); only the end is the resampled length.
    times = np.minimum(np.asarray(boundaries, dtype=np.float64) / native_rate, duration)
    times[-1] = duration
    segments = [PhonemeSegment(p, float(a), float(b)) for p, a, b in zip(phones, times[:-1], times[1:]) if b > a]
    return SynthResult(
        audio=audio.astype(np.float32, copy=False), sample_rate=sample_rate, phonemes=segments,
        espeak_phonemes=[(m, s / native_rate) for s, m in events],
    )


_STOPS = frozenset({"P", "B", "T", "D", "K", "G", "CH", "JH"})
_NASALS = frozenset({"M", "N", "NG"})


def _moving_rms(x: np.ndarray, width: int) -> np.ndarray:
    """RMS over a centred window of ``width`` samples, same length as x."""
    c = np.concatenate([[0.0], np.cumsum(x.astype(np.float64) ** 2)])
    half = width // 2
    lo = np.clip(np.arange(len(x)) - half, 0, len(x))
    hi = np.clip(np.arange(len(x)) + half + 1, 0, len(x))
    return np.sqrt((c[hi] - c[lo]) / np.maximum(hi - lo, 1))


def _timeline(x: np.ndarray, events: list[tuple[int, str]], rate: int, *, language: str
              ) -> tuple[list[int], list[str]]:
    """Phone boundaries in native samples (len(phones) + 1 of them, from 0 to len(x))."""
    n = len(x)
    # 1. espeak's events as (start sample, ARPAbet phones); audio before the first one is SIL.
    b: list[int] = [0]
    p: list[tuple[str, ...]] = [(SILENCE,)]
    for sample, mnemonic in sorted(events, key=lambda e: e[0]):  # stable: keeps equal-sample order
        b.append(min(max(int(sample), 0), n))
        p.append(arpabet_for(mnemonic, language=language))
    b.append(n)

    # 2. Corrections from the waveform (see the module docstring), on whole mnemonics.
    width = max(3, int(0.0025 * rate))
    rms = _moving_rms(x, width)
    quiet = max(0.08 * np.percentile(rms, 90), 1e-3)  # breathy variants keep some noise in closures
    max_closure, max_gap = int(0.15 * rate), int(0.004 * rate)
    for i in range(1, len(p)):
        if p[i][0] in _STOPS and p[i - 1][-1] != SILENCE and b[i] > b[i - 1]:
            # Walk back from the stop's event over its quiet closure, keeping at least a quarter
            # of the previous segment. Loud bursts shorter than max_gap are stepped over: the
            # half window next to the event still "hears" the release, and variants with an
            # echo (m2, f2-f5) replay earlier speech faintly into the closure.
            floor = max(b[i - 1] + (b[i] - b[i - 1]) // 4, b[i] - max_closure)
            start, loud_run = b[i], 0
            for k in range(b[i] - 1, floor - 1, -1):
                if rms[k] < quiet:
                    start, loud_run = k, 0
                else:
                    loud_run += 1
                    if loud_run > max_gap:
                        break
            b[i] = start
    env_db = 20 * np.log10(_moving_rms(x, max(3, int(0.005 * rate))) + 1e-5)
    step = int(0.0075 * rate)
    for i in range(1, len(p) - 1):
        if p[i][-1] in _NASALS and p[i + 1][0] in VOWELS:
            lo = b[i] + int(0.3 * (b[i + 1] - b[i]))
            hi = b[i + 1]
            if hi - lo < 2 or lo - step < 0 or hi + step > n:
                continue
            t = np.arange(lo, hi)
            rise = env_db[t + step] - env_db[t - step]
            k = int(np.argmax(rise))
            if rise[k] >= 4.0:  # a clear release; otherwise keep espeak's boundary
                b[i + 1] = int(t[k])

    # 3. Split two-phone mnemonics, drop empty segments, merge neighbouring silences.
    flat_b: list[int] = []
    flat_p: list[str] = []
    for s, e, ph in zip(b[:-1], b[1:], p):
        flat_b.append(s)
        flat_p.append(ph[0])
        if len(ph) == 2:
            flat_b.append(s + int(round(_SPLIT_FIRST * (e - s))))
            flat_p.append(ph[1])
    flat_b.append(n)
    out_b, out_p = [0], []
    for s, e, ph in zip(flat_b[:-1], flat_b[1:], flat_p):
        if e <= s:
            continue
        if out_p and ph == out_p[-1] == SILENCE:
            out_b[-1] = e
            continue
        out_p.append(ph)
        out_b.append(e)
    return out_b, out_p


def text_to_espeak(text: str, *, language: str = "en-us") -> list[list[str]]:
    """espeak's phoneme mnemonics for each word of text (no audio), stress marks removed."""
    if not text.strip():
        return []
    with _LOCK:
        clauses = _synthesiser().phonemes(language, text)
    words = []
    for clause in clauses:
        for word in clause.split():
            ms = [m.strip(_STRESS_MARKS) for m in word.split("|")]
            ms = [m for m in ms if m]
            if ms:
                words.append(ms)
    return words


def text_to_arpabet(text: str, *, language: str = "en-us") -> list[list[str]]:
    """ARPAbet pronunciation of each word of text as espeak reads it (numbers, names, ...)."""
    out = []
    for word in text_to_espeak(text, language=language):
        phones = [ph for m in word for ph in arpabet_for(m, language=language) if ph != SILENCE]
        if phones:
            out.append(phones)
    return out
