"""On-disk corpus format: one ``.npz`` per utterance plus one ``manifest.json``.

Layout of a corpus directory::

    manifest.json            corpus facts + one entry per utterance (see below)
    utterances/<id>.npz      audio, motion and phoneme timings of one utterance
    plots/<id>.png           a few pictures (waveform, phonemes, key curves), for people

``manifest.json``::

    {"format": "talking_face_corpus", "version": 1, "fps": 30.0, "sample_rate": 16000,
     "seed": 0, "generator": {...}, "voices": [{voice config + style + split}, ...],
     "utterances": [{"id", "file", "split", "voice_id", "sentence_id", "sentence", "emotion",
                     "intensity", "emotion_text", "text_split", "duration", "frames"}, ...]}

``utterances/<id>.npz`` (``numpy.load(..., allow_pickle=False)``):

    audio        (samples,) int16    16 kHz mono speech
    blendshapes  (frames, 52) float32 ARKit weights in ARKIT_NAMES order, frame i at i / fps
    phone        (n,) str             ARPAbet + SIL, tiling the audio
    phone_start  (n,) float64         seconds
    phone_end    (n,) float64         seconds

Vertex sequences are not stored: on a linear rig they are an exact function of the weights, so
:func:`load_sample` (``vertices=rig``) and ``talking-face corpus vertices`` compute them on demand.
Storing them for a 2-hour corpus would take tens of gigabytes.
"""
from __future__ import annotations

import json
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..arkit import NUM_BLENDSHAPES
from ..data.sample import MotionSample
from ..phonemes import PhonemeSegment

FORMAT_NAME = "talking_face_corpus"
FORMAT_VERSION = 1
SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class Utterance:
    """One manifest entry: what was said, by whom, with which emotion, and where it lies."""

    id: str
    file: str  # relative to the corpus directory
    split: str  # train / val / test (voice and sentence both belong to it)
    voice_id: str
    sentence_id: int
    sentence: str
    emotion: str
    intensity: int
    emotion_text: str
    text_split: str  # "seen" or "heldout" phrasing of the emotion text
    duration: float
    frames: int

    def to_dict(self) -> dict:
        return dict(self.__dict__)


class Corpus:
    """A corpus directory opened for reading (manifest in memory, utterances loaded on demand)."""

    def __init__(self, root):
        self.root = Path(root)
        path = self.root / "manifest.json"
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no corpus manifest here (make one with `talking-face corpus`)")
        try:
            self.manifest = json.loads(path.read_text())
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path}: not valid JSON ({exc})") from None
        if self.manifest.get("format") != FORMAT_NAME:
            raise ValueError(f"{path}: not a talking-face corpus manifest")
        if self.manifest.get("version") != FORMAT_VERSION:
            raise ValueError(f"{path}: corpus format version {self.manifest.get('version')} is not {FORMAT_VERSION}")
        self.fps = float(self.manifest["fps"])
        self.sample_rate = int(self.manifest["sample_rate"])
        self.utterances = [Utterance(**u) for u in self.manifest["utterances"]]
        self._by_id = {u.id: u for u in self.utterances}

    def __len__(self):
        return len(self.utterances)

    def split(self, name: str) -> list[Utterance]:
        if name not in SPLITS:
            raise ValueError(f"unknown split {name!r}; expected one of {SPLITS}")
        return [u for u in self.utterances if u.split == name]

    def get(self, utt_id: str) -> Utterance:
        try:
            return self._by_id[utt_id]
        except KeyError:
            raise KeyError(f"no utterance {utt_id!r} in {self.root}") from None

    def voices(self) -> list[dict]:
        return list(self.manifest.get("voices", []))

    def speakers(self) -> list[str]:
        return sorted({u.voice_id for u in self.utterances})

    def hours(self) -> float:
        return sum(u.duration for u in self.utterances) / 3600.0

    def load(self, utt, *, vertices=None) -> MotionSample:
        utt = self.get(utt) if isinstance(utt, str) else utt
        return load_sample(self.root / utt.file, utt, fps=self.fps, sample_rate=self.sample_rate, vertices=vertices)


def write_utterance(path, *, audio: np.ndarray, blendshapes: np.ndarray, phonemes) -> None:
    """Write one utterance file atomically (a crash never leaves a half-written file behind)."""
    path = Path(path)
    audio_i16 = np.clip(np.round(np.asarray(audio) * 32767.0), -32768, 32767).astype(np.int16)
    if blendshapes.ndim != 2 or blendshapes.shape[1] != NUM_BLENDSHAPES:
        raise ValueError(f"blendshapes must be (frames, 52), got {blendshapes.shape}")
    tmp = path.with_name(path.name + ".tmp.npz")
    np.savez(
        tmp,
        audio=audio_i16,
        blendshapes=np.asarray(blendshapes, dtype=np.float32),
        phone=np.array([p.phone for p in phonemes], dtype="<U3"),
        phone_start=np.array([p.start for p in phonemes], dtype=np.float64),
        phone_end=np.array([p.end for p in phonemes], dtype=np.float64),
    )
    os.replace(tmp, path)


def read_utterance(path) -> tuple[np.ndarray, np.ndarray, list[PhonemeSegment]]:
    """(audio float32, blendshapes, phonemes) of one utterance file, checked field by field."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as z:
            fields = {k: z[k] for k in ("audio", "blendshapes", "phone", "phone_start", "phone_end")}
    except KeyError as exc:
        raise ValueError(f"{path}: missing field {exc}") from None
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise ValueError(f"{path}: unreadable utterance file ({exc})") from None
    bs = fields["blendshapes"]
    if bs.ndim != 2 or bs.shape[1] != NUM_BLENDSHAPES:
        raise ValueError(f"{path}: field 'blendshapes' has shape {bs.shape}, expected (frames, 52)")
    if not np.isfinite(bs).all():
        raise ValueError(f"{path}: field 'blendshapes' has NaN or infinite values")
    if fields["audio"].dtype != np.int16:
        raise ValueError(f"{path}: field 'audio' is {fields['audio'].dtype}, expected int16")
    audio = fields["audio"].astype(np.float32) / 32767.0
    phonemes = [
        PhonemeSegment(str(p), float(s), float(e))
        for p, s, e in zip(fields["phone"], fields["phone_start"], fields["phone_end"])
    ]
    return audio, bs.astype(np.float32), phonemes


def load_sample(path, utt: Utterance, *, fps: float, sample_rate: int, vertices=None) -> MotionSample:
    """The utterance as a :class:`MotionSample`; ``vertices`` (a rig with ``mesh()``) adds vertex motion."""
    audio, bs, phonemes = read_utterance(path)
    verts = vertices.mesh(bs) if vertices is not None else None
    return MotionSample(
        name=utt.id, audio=audio, sample_rate=sample_rate, fps=fps, blendshapes=bs,
        vertices=verts, template=None if vertices is None else vertices.neutral,
        phonemes=phonemes, speaker=utt.voice_id, emotion=utt.emotion, intensity=utt.intensity,
        emotion_text=utt.emotion_text, sentence=utt.sentence,
        meta={"split": utt.split, "text_split": utt.text_split, "sentence_id": utt.sentence_id},
    )


def write_manifest(root, manifest: dict) -> None:
    root = Path(root)
    tmp = root / "manifest.json.tmp"
    tmp.write_text(json.dumps(manifest, indent=1, ensure_ascii=False))
    os.replace(tmp, root / "manifest.json")
