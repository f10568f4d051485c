"""The canonical phoneme inventory and timeline type shared by speech, teacher and metrics.

Phonemes are CMU/ARPAbet symbols (39 phones, no stress digits) plus ``SIL`` for silence and
pauses: the set pocketsphinx aligns to, and a small, well-documented target for espeak-ng's own
mnemonics (mapped in :mod:`talking_face_ros.speech.espeak`). Articulatory facts that the motion
teacher and the lip-sync metrics both rely on live here, once.
"""
from __future__ import annotations

from dataclasses import dataclass

SILENCE = "SIL"

VOWELS = frozenset(
    "AA AE AH AO AW AY EH ER EY IH IY OW OY UH UW".split()
)
CONSONANTS = frozenset(
    "B CH D DH F G HH JH K L M N NG P R S SH T TH V W Y Z ZH".split()
)
PHONEMES = frozenset(VOWELS | CONSONANTS | {SILENCE})

BILABIALS = frozenset({"P", "B", "M"})  # lips must close
LABIODENTALS = frozenset({"F", "V"})  # lower lip to upper teeth
ROUNDED = frozenset({"UW", "UH", "OW", "AO", "OY", "W"})  # lips round / protrude
POSTALVEOLARS = frozenset({"SH", "ZH", "CH", "JH"})  # slight lip protrusion

# How far the mouth opens on each vowel, 0 (closed) .. 1 (fully open). Ordinal facts from
# phonetics (open vowels /a/ > mid /e o/ > close /i u/); the numbers are this project's choice.
VOWEL_OPENNESS: dict[str, float] = {
    "AA": 1.00, "AE": 0.90, "AW": 0.85, "AY": 0.85, "AO": 0.80, "AH": 0.70, "OY": 0.65,
    "EH": 0.60, "OW": 0.55, "EY": 0.50, "ER": 0.40, "UH": 0.35, "IH": 0.30, "UW": 0.25,
    "IY": 0.20,
}
OPEN_VOWELS = frozenset(v for v, o in VOWEL_OPENNESS.items() if o >= 0.7)
CLOSE_VOWELS = frozenset(v for v, o in VOWEL_OPENNESS.items() if o <= 0.35)


@dataclass(frozen=True)
class PhonemeSegment:
    """One phoneme with its start and end in seconds from the start of the audio."""

    phone: str
    start: float
    end: float

    def __post_init__(self):
        if self.phone not in PHONEMES:
            raise ValueError(f"unknown phoneme {self.phone!r}; expected one of ARPAbet + SIL")
        if not self.end >= self.start:
            raise ValueError(f"phoneme {self.phone} ends ({self.end}) before it starts ({self.start})")

    @property
    def duration(self) -> float:
        return self.end - self.start


def normalise_arpabet(symbol: str) -> str:
    """``'AH0'`` -> ``'AH'``, pauses and noise markers -> ``SIL`` (pocketsphinx style input)."""
    s = symbol.strip().upper().rstrip("012")
    if s in PHONEMES:
        return s
    if s in {"", "SP", "SIL", "<SIL>", "+NSN+", "+SPN+", "+BREATH+", "+COUGH+", "+UM+", "+UH+", "NSN"}:
        return SILENCE
    raise ValueError(f"unknown ARPAbet symbol {symbol!r}")


def validate_timeline(segments) -> list[PhonemeSegment]:
    """Sorted, non-overlapping segments; raises ValueError naming the first bad one."""
    out = sorted(segments, key=lambda s: s.start)
    for a, b in zip(out, out[1:]):
        if b.start < a.end - 1e-6:
            raise ValueError(f"phonemes overlap: {a} and {b}")
    return out
