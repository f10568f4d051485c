"""The synthetic speakers of the corpus: an espeak-ng voice plus the face's speaking style.

Each voice is one identity: how it sounds (espeak-ng accent, variant, pitch, range, speed) and how
its face moves (talking_face_ros.style.SpeakingStyle). The split is by voice, so the validation
and test voices are never heard or seen in training and the evaluation measures generalisation
to new speakers. Everything here is a fixed table: the corpus is reproducible from it.

Accents are espeak-ng's English voices (``espeak-ng --voices=en``, the gmw/ files) and variants
are files of ``espeak-ng-data/voices/!v`` (m1..m8, f1..f5, klatt4 and named ones); the MBROLA
voices are left out because they need the separate mbrola program.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..style import SpeakingStyle

SPLITS = ("train", "val", "test")
SEXES = ("female", "male")


@dataclass(frozen=True)
class VoiceConfig:
    voice_id: str  # stable identity label used in manifests and sample names
    language: str  # espeak-ng voice name of the accent, e.g. "en-us", "en-gb-x-rp"
    variant: str  # espeak-ng variant file in voices/!v, e.g. "m3", "f2", "klatt4"
    sex: str  # "female" or "male": what the variant sounds like (for balanced splits)
    pitch: int  # espeak base pitch 0..100 (50 = the variant's own)
    range: int  # espeak pitch range 0..100 (0 = monotone, 50 = normal)
    speed: int  # speaking rate, words per minute (espeak 80..450)
    style: SpeakingStyle  # how this identity's face moves

    def __post_init__(self):
        if not self.voice_id or not self.language or not self.variant:
            raise ValueError(f"voice {self.voice_id!r}: voice_id, language and variant must be set")
        if self.sex not in SEXES:
            raise ValueError(f"voice {self.voice_id}: sex must be one of {SEXES}, got {self.sex!r}")
        for name, lo, hi in (("pitch", 0, 100), ("range", 0, 100), ("speed", 80, 450)):
            value = getattr(self, name)
            if not (isinstance(value, int) and lo <= value <= hi):
                raise ValueError(f"voice {self.voice_id}: {name} must be an int in [{lo}, {hi}], got {value!r}")

    @property
    def espeak_name(self) -> str:
        """The name espeak_SetVoiceByName takes: accent plus variant."""
        return f"{self.language}+{self.variant}"

    def to_dict(self) -> dict:
        return {
            "voice_id": self.voice_id, "language": self.language, "variant": self.variant,
            "sex": self.sex, "pitch": self.pitch, "range": self.range, "speed": self.speed,
            "style": self.style.to_dict(),
        }

    @classmethod
    def from_dict(cls, d: dict) -> "VoiceConfig":
        expected = {"voice_id", "language", "variant", "sex", "pitch", "range", "speed", "style"}
        if set(d) != expected:
            raise ValueError(
                f"voice config fields: missing {sorted(expected - set(d))}, unknown {sorted(set(d) - expected)}"
            )
        return cls(
            voice_id=str(d["voice_id"]), language=str(d["language"]), variant=str(d["variant"]),
            sex=str(d["sex"]), pitch=int(d["pitch"]), range=int(d["range"]), speed=int(d["speed"]),
            style=SpeakingStyle.from_dict(d["style"]),
        )


def _voice(voice_id, language, variant, sex, pitch, range_, speed, art, width, smile, blink, jaw, brow):
    style = SpeakingStyle(
        articulation=art, mouth_width=width, smile_bias=smile, blink_rate=blink, jaw_bias=jaw,
        brow_activity=brow,
    )
    return VoiceConfig(voice_id, language, variant, sex, pitch, range_, speed, style)


# Styles are spread over the SpeakingStyle ranges so that every identity moves differently, with
# two mild couplings that real speakers show: fast talkers articulate less, and wide-pitch-range
# (expressive) voices move their brows more.
# fmt: off
#        voice_id        accent            variant    sex      pitch range wpm  artic width smile blink jaw  brow
VOICES: tuple[VoiceConfig, ...] = (
    _voice("us_f1",       "en-us",          "f1",      "female", 50, 60, 165, 1.10, 0.30, 0.25, 0.30, 0.95, 1.30),
    _voice("us_annie",    "en-us",          "Annie",   "female", 45, 70, 175, 1.20, 0.10, 0.35, 0.22, 0.85, 1.60),
    _voice("us_m3",       "en-us",          "m3",      "male",   50, 50, 170, 1.00, 0.00, 0.00, 0.28, 1.05, 1.00),
    _voice("us_klatt4",   "en-us",          "klatt4",  "male",   40, 40, 185, 0.85, -0.25, -0.10, 0.35, 1.20, 0.60),
    _voice("gb_f2",       "en",             "f2",      "female", 55, 55, 160, 1.15, -0.20, 0.10, 0.18, 0.90, 1.20),
    _voice("gb_m1",       "en",             "m1",      "male",   45, 45, 155, 1.05, 0.20, -0.20, 0.25, 1.25, 0.80),
    _voice("rp_f4",       "en-gb-x-rp",     "f4",      "female", 50, 65, 150, 1.30, -0.40, 0.05, 0.20, 0.80, 1.50),
    _voice("rp_m2",       "en-gb-x-rp",     "m2",      "male",   50, 35, 160, 0.95, -0.10, -0.30, 0.32, 1.10, 0.50),
    _voice("rp_steph",    "en-gb-x-rp",     "steph",   "female", 55, 50, 180, 0.90, 0.40, 0.20, 0.40, 1.00, 1.10),
    _voice("car_f3",      "en-029",         "f3",      "female", 50, 60, 170, 1.25, 0.50, 0.40, 0.26, 0.75, 1.70),
    _voice("car_m4",      "en-029",         "m4",      "male",   45, 55, 175, 1.10, 0.35, 0.15, 0.15, 1.30, 1.20),
    _voice("sc_f5",       "en-gb-scotland", "f5",      "female", 50, 45, 165, 0.95, -0.30, -0.15, 0.36, 1.05, 0.70),
    _voice("sc_m8",       "en-gb-scotland", "m8",      "male",   50, 40, 150, 1.15, -0.50, -0.25, 0.22, 1.15, 0.90),
    _voice("lan_linda",   "en-gb-x-gbclan", "linda",   "female", 40, 55, 190, 0.80, 0.15, 0.30, 0.42, 0.90, 1.00),
    _voice("lan_andy",    "en-gb-x-gbclan", "Andy",    "male",   50, 45, 165, 1.00, 0.05, -0.05, 0.30, 1.00, 0.40),
    _voice("wm_belinda",  "en-gb-x-gbcwmd", "belinda", "female", 45, 60, 170, 1.05, 0.25, 0.15, 0.24, 0.85, 1.40),
    _voice("wm_travis",   "en-gb-x-gbcwmd", "travis",  "male",   50, 50, 180, 0.85, -0.05, 0.10, 0.38, 1.20, 0.90),
    _voice("nyc_victor",  "en-us-nyc",      "victor",  "male",   55, 60, 195, 0.75, 0.30, -0.35, 0.27, 1.10, 1.50),
    # validation voices
    _voice("nyc_andrea",  "en-us-nyc",      "Andrea",  "female", 45, 50, 175, 1.00, -0.15, 0.20, 0.33, 0.95, 1.10),
    _voice("gb_robert",   "en",             "robert",  "male",   50, 55, 160, 1.15, 0.10, -0.10, 0.20, 1.10, 1.00),
    _voice("car_grandma", "en-029",         "grandma", "female", 45, 40, 160, 0.90, 0.20, 0.05, 0.31, 0.95, 0.70),
    # test voices
    _voice("us_aunty",    "en-us",          "aunty",   "female", 50, 55, 170, 1.10, 0.05, 0.15, 0.29, 0.90, 1.25),
    _voice("rp_m6",       "en-gb-x-rp",     "m6",      "male",   50, 45, 165, 1.00, -0.20, -0.05, 0.23, 1.15, 0.85),
    _voice("sc_antonio",  "en-gb-scotland", "antonio", "male",   45, 50, 175, 0.95, 0.15, 0.00, 0.34, 1.00, 1.05),
)
# fmt: on

_SPLIT_OF: dict[str, str] = {
    **{v.voice_id: "train" for v in VOICES[:18]},
    **{v.voice_id: "val" for v in VOICES[18:21]},
    **{v.voice_id: "test" for v in VOICES[21:]},
}
_BY_ID: dict[str, VoiceConfig] = {v.voice_id: v for v in VOICES}


def voice_by_id(voice_id: str) -> VoiceConfig:
    try:
        return _BY_ID[voice_id]
    except KeyError:
        raise ValueError(f"unknown voice_id {voice_id!r}; known: {', '.join(_BY_ID)}") from None


def split_of(voice_id: str) -> str:
    """'train', 'val' or 'test' for a voice."""
    voice_by_id(voice_id)  # the clear error for unknown ids
    return _SPLIT_OF[voice_id]


def voices_in(split: str) -> list[VoiceConfig]:
    """The voices of one split, in table order."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    return [v for v in VOICES if _SPLIT_OF[v.voice_id] == split]
