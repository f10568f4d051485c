"""Build the speech and text encoders from a configuration dict (the ``encoders:`` part of a config).

    {"speech": {"kind": "moonshine", "threads": 2},
     "text": {"kind": "clip", "model": "/models/clip-vit-base-patch32"}}

Each part's keys other than ``kind`` are the keyword arguments of the encoder class; a missing
part gets the offline defaults (Moonshine, MiniLM).
"""
from __future__ import annotations

import importlib
import inspect
from typing import NamedTuple

from .base import SpeechEncoder, TextEncoder

# kind -> (module, class); imported on demand so that Moonshine alone never imports torch
SPEECH_KINDS = {
    "moonshine": ("talking_face_ros.encoders.moonshine", "MoonshineEncoder"),
    "wav2vec2": ("talking_face_ros.encoders.wav2vec2", "Wav2Vec2Encoder"),
    "causal": ("talking_face_ros.encoders.causal_speech", "CausalSpeechEncoder"),
}
TEXT_KINDS = {
    "minilm": ("talking_face_ros.encoders.minilm", "MiniLMTextEncoder"),
    "clip": ("talking_face_ros.encoders.clip_text", "ClipTextEncoder"),
}
DEFAULTS = {"speech": {"kind": "moonshine"}, "text": {"kind": "minilm"}}
# Speech encoders whose ``threads`` is an onnxruntime session's, not torch's (process-wide) count.
ONNXRUNTIME_SPEECH_KINDS = frozenset({"moonshine"})


class Encoders(NamedTuple):
    speech: SpeechEncoder
    text: TextEncoder


def _kind_and_options(part: str, config: dict | str | None) -> tuple[str, dict]:
    if config is None:
        config = DEFAULTS[part]
    elif isinstance(config, str):  # shorthand: "moonshine" for {"kind": "moonshine"}
        config = {"kind": config}
    elif not isinstance(config, dict):
        raise ValueError(f"encoders.{part}: expected a mapping with a 'kind', got {type(config).__name__}")
    config = dict(config)
    return config.pop("kind", DEFAULTS[part]["kind"]), config


def speech_kind(config: dict | str | None) -> str:
    """The kind a speech part of an ``encoders`` config names (None or no kind: the default)."""
    return _kind_and_options("speech", config)[0]


def _build(part: str, config: dict | None, kinds: dict):
    kind, config = _kind_and_options(part, config)
    if kind not in kinds:
        raise ValueError(f"encoders.{part}.kind: unknown kind {kind!r}; known: {sorted(kinds)}")
    module, cls_name = kinds[kind]
    cls = getattr(importlib.import_module(module), cls_name)
    params = inspect.signature(cls.__init__).parameters
    accepted = [name for name, p in params.items() if name != "self" and p.kind is not p.VAR_KEYWORD]
    unknown = sorted(set(config) - set(accepted))
    if unknown:
        raise ValueError(f"encoders.{part}: {kind} does not take {unknown}; options: {accepted}")
    return cls(**config)


def build_speech_encoder(config: dict | None = None) -> SpeechEncoder:
    """A speech encoder from ``{"kind": "moonshine" | "wav2vec2" | "causal", **options}`` (None: Moonshine)."""
    return _build("speech", config, SPEECH_KINDS)


def build_text_encoder(config: dict | None = None) -> TextEncoder:
    """A text encoder from ``{"kind": "minilm" | "clip", **options}`` (None: MiniLM)."""
    return _build("text", config, TEXT_KINDS)


def build_encoders(config: dict | None = None) -> Encoders:
    """Both encoders from ``{"speech": {...}, "text": {...}}``."""
    config = {} if config is None else config
    if not isinstance(config, dict):
        raise ValueError(f"encoders: expected a mapping, got {type(config).__name__}")
    unknown = sorted(set(config) - set(DEFAULTS))
    if unknown:
        raise ValueError(f"encoders: unknown parts {unknown}; expected 'speech' and/or 'text'")
    return Encoders(build_speech_encoder(config.get("speech")), build_text_encoder(config.get("text")))
