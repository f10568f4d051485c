"""The eight MEAD emotions and three intensities: the emotion vocabulary of corpus and metrics."""
from __future__ import annotations

import unicodedata

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


# Emotion text as people and programs send it. The encoders read 77 (CLIP) to 256 (MiniLM)
# tokens, so 1,000 characters is more than any of them uses; the bound keeps a runaway message
# (a file published on the wrong topic) from costing seconds of tokenizing.
MAX_TEXT_CHARS = 1000


def clean_text(text: str, *, max_chars: int = MAX_TEXT_CHARS) -> tuple[str, list[str]]:
    """Free emotion text as the text encoders can read it: ``(text, what was changed)``.

    Control characters (tabs, newlines, NUL, terminal escape codes) become spaces and runs of
    white space one space, because they carry no meaning and some tokenizers choke on them;
    unpaired surrogates (which no UTF-8 tokenizer can encode, only a Python str can hold) are
    removed; text is cut at ``max_chars``. Any script is kept as it is: the encoders' tokenizers
    read non-Latin text (MiniLM maps what its vocabulary lacks to its unknown token). A blank
    result means "no text" to the callers (the default emotion).
    """
    if not isinstance(text, str):
        raise ValueError(f"emotion text must be a string, got {type(text).__name__}")
    changes = []
    cut = len(text) > 4 * max_chars
    text = text[:4 * max_chars]  # bounds the work below; white space may still shrink it
    if any(unicodedata.category(c) in ("Cc", "Cs") and c not in "\t\n\r" for c in text):
        changes.append("control characters removed")
        text = "".join(_CLEAN.get(unicodedata.category(c), c) for c in text)
    text = " ".join(text.split())
    if cut or len(text) > max_chars:
        changes.append(f"cut to {max_chars} characters")
        text = text[:max_chars].rstrip()
    return text, changes


_CLEAN = {"Cc": " ", "Cs": ""}  # control character -> space, unpaired surrogate -> nothing
