"""The eight MEAD emotions and three intensities: the emotion vocabulary of corpus and metrics."""
from __future__ import annotations

EMOTIONS: tuple[str, ...] = (
    "neutral", "happy", "sad", "angry", "surprised", "fearful", "disgusted", "contemptuous",
)
INTENSITIES: tuple[int, ...] = (1, 2, 3)  # MEAD levels: weak, medium, strong
# Scale of the expression layer per level; neutral has no layer at any level.
INTENSITY_SCALE: dict[int, float] = {1: 0.35, 2: 0.65, 3: 1.0}
EMOTION_INDEX = {e: i for i, e in enumerate(EMOTIONS)}


def check(emotion: str, intensity: int) -> None:
    if emotion not in EMOTION_INDEX:
        raise ValueError(f"unknown emotion {emotion!r}; expected one of {', '.join(EMOTIONS)}")
    if intensity not in INTENSITY_SCALE:
        raise ValueError(f"intensity must be 1, 2 or 3, got {intensity!r}")
