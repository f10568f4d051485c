"""A speaker's speaking style: what makes one identity's face move differently from another's."""
from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class SpeakingStyle:
    articulation: float = 1.0  # scale of speech mouth motion (0.6 mumbler .. 1.4 over-articulator)
    mouth_width: float = 0.0  # -1 narrow/rounded habit .. +1 wide/stretched habit
    smile_bias: float = 0.0  # resting smile (+) or frown (-), -1 .. 1
    blink_rate: float = 0.28  # blinks per second (people: about 0.2-0.4 at rest)
    jaw_bias: float = 1.0  # share of opening done by the jaw rather than the lips (0.7 .. 1.3)
    brow_activity: float = 1.0  # how much the brows move with speech emphasis (0 .. 2)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "SpeakingStyle":
        unknown = set(d) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError(f"unknown speaking-style fields: {sorted(unknown)}")
        return cls(**{k: float(v) for k, v in d.items()})
