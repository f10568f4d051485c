"""Emotion in the voice: how each MEAD emotion shifts pitch, pitch range, rate and loudness.

The directions follow the acoustic correlates of vocal emotion reported across the literature
(Murray & Arnott 1993, "Toward the simulation of emotion in synthetic speech"; Banse & Scherer
1996, "Acoustic profiles in vocal emotion expression"; Juslin & Laukka 2003, "Communication of
emotions in vocal expression and music performance"):

    emotion       mean F0   F0 range   rate      loudness
    happy         higher    wider      faster    louder
    sad           lower     narrower   slower    softer
    angry         higher    wider      faster    much louder
    fearful       higher    narrower   faster    about the same
    surprised     much hi.  widest     same      louder
    disgusted     lower     a bit wider slower   softer
    contemptuous  lower     a bit wider slower   same
    neutral       the voice's own settings

The magnitudes are this project's choice (in espeak's units), picked to be clearly audible at
intensity 3 without leaving the range where espeak sounds natural; weaker intensities scale the
change by emotions.INTENSITY_SCALE.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

from .. import emotions

if TYPE_CHECKING:  # corpus.voices is only needed for the type; keep the import graph acyclic
    from ..corpus.voices import VoiceConfig

# espeak-ng's accepted parameter ranges (speak_lib.h; rate from espeakRATE_MINIMUM/MAXIMUM).
PITCH_RANGE = (0, 100)
RANGE_RANGE = (0, 100)
SPEED_RANGE = (80, 450)
VOLUME_RANGE = (0, 200)


@dataclass(frozen=True)
class Prosody:
    pitch: int  # espeak base pitch 0..100 (50 = the variant's natural pitch)
    range: int  # espeak pitch range 0..100 (0 = monotone)
    speed: int  # words per minute 80..450
    volume: int = 100  # espeak amplitude 0..200 (100 = normal)
    gain: float = 1.0  # linear gain on the synthesised float audio (loudness beyond espeak's own)

    def __post_init__(self):
        for name, (lo, hi) in (("pitch", PITCH_RANGE), ("range", RANGE_RANGE), ("speed", SPEED_RANGE),
                               ("volume", VOLUME_RANGE)):
            value = getattr(self, name)
            if not (isinstance(value, int) and lo <= value <= hi):
                raise ValueError(f"prosody {name} must be an int in [{lo}, {hi}], got {value!r}")
        if not (self.gain > 0 and self.gain < float("inf")):
            raise ValueError(f"prosody gain must be a positive finite number, got {self.gain!r}")

    @classmethod
    def of_voice(cls, voice: "VoiceConfig") -> "Prosody":
        """The voice's own, neutral settings."""
        return cls(pitch=voice.pitch, range=voice.range, speed=voice.speed)

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class _Shift:
    pitch: float  # espeak pitch units added at full intensity
    range: float  # espeak range units added at full intensity
    rate: float  # speed factor at full intensity
    loudness: float  # volume factor at full intensity


# Full-intensity (level 3) shifts; see the module docstring for the sources of the directions.
EMOTION_SHIFTS: dict[str, _Shift] = {
    "neutral": _Shift(pitch=0, range=0, rate=1.00, loudness=1.00),
    "happy": _Shift(pitch=+14, range=+22, rate=1.10, loudness=1.15),
    "sad": _Shift(pitch=-14, range=-25, rate=0.78, loudness=0.70),
    "angry": _Shift(pitch=+8, range=+22, rate=1.15, loudness=1.45),
    "fearful": _Shift(pitch=+18, range=-18, rate=1.22, loudness=0.95),
    "surprised": _Shift(pitch=+26, range=+35, rate=1.00, loudness=1.20),
    "disgusted": _Shift(pitch=-12, range=+6, rate=0.85, loudness=0.90),
    "contemptuous": _Shift(pitch=-9, range=+6, rate=0.90, loudness=1.00),
}
assert set(EMOTION_SHIFTS) == set(emotions.EMOTIONS)


def _clamp(value: float, bounds: tuple[int, int]) -> int:
    return int(min(max(round(value), bounds[0]), bounds[1]))


def emotion_prosody(emotion: str, intensity: int, voice: "VoiceConfig") -> Prosody:
    """The voice's settings moved towards ``emotion`` by ``INTENSITY_SCALE[intensity]``."""
    emotions.check(emotion, intensity)
    shift = EMOTION_SHIFTS[emotion]
    s = 0.0 if emotion == "neutral" else emotions.INTENSITY_SCALE[intensity]
    return Prosody(
        pitch=_clamp(voice.pitch + s * shift.pitch, PITCH_RANGE),
        range=_clamp(voice.range + s * shift.range, RANGE_RANGE),
        speed=_clamp(voice.speed * (1 + s * (shift.rate - 1)), SPEED_RANGE),
        volume=_clamp(100 * (1 + s * (shift.loudness - 1)), VOLUME_RANGE),
    )
