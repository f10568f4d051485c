"""EmoTalk's 3D-ETF: ARKit blendshape sequences with their speech, emotion-labelled via RAVDESS.

Layout (as EmoTalk-based training code reads the release)::

    3D-ETF/RAVDESS/blendshape/<name>.npy    (frames, 52) float
    3D-ETF/RAVDESS/audio/<name>.wav
    3D-ETF/HDTF/blendshape/<name>.npy       (no emotion labels)
    3D-ETF/HDTF/audio/<name>.wav

A WAV beside the ``.npy`` with the same stem (or in a ``wav/`` sibling) is found as well.

Channel order: EmoTalk's release names its 52 output channels in Apple's alphabetical order
(its renderer's shape-key list; its blink post-processing writes channels 8 and 9, eyeBlinkLeft
and eyeBlinkRight), which is ``arkit.ARKIT_NAMES``, so columns are used as they are. Frame rate:
30 fps (EmoTalk renders and trains at 30); ``source_fps`` overrides it.

RAVDESS file names are seven two-digit fields ``MM-VV-EE-II-SS-RR-AA``: modality (01 audio-video,
02 video only, 03 audio only), vocal channel (01 speech, 02 song), emotion (01 neutral, 02 calm,
03 happy, 04 sad, 05 angry, 06 fearful, 07 disgust, 08 surprised), intensity (01 normal,
02 strong; neutral has normal only), statement (01 "Kids are talking by the door", 02 "Dogs are
sitting by the door"), repetition (01, 02) and actor (01-24; odd male, even female).
Mapped onto the project's MEAD vocabulary: calm -> neutral (``emotion_text`` keeps "calm"),
disgust -> disgusted; intensity normal -> 2, strong -> 3, and 1 for neutral and calm, whose
expression layer is empty at every level. HDTF names (``WDA_BarackObama_000``) give the speaker.
"""
from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from pathlib import Path

from ..arkit import NUM_BLENDSHAPES
from .datasets import (
    MAX_DURATION_MISMATCH, FormatError, align_to_audio, check_weights, find_audio, read_array,
    read_wav,
)
from .sample import MotionSample

SOURCE_FPS = 30.0
RAVDESS_EMOTIONS = {1: "neutral", 2: "calm", 3: "happy", 4: "sad", 5: "angry", 6: "fearful",
                    7: "disgust", 8: "surprised"}
_TO_MEAD = {"neutral": "neutral", "calm": "neutral", "happy": "happy", "sad": "sad",
            "angry": "angry", "fearful": "fearful", "disgust": "disgusted",
            "surprised": "surprised"}
RAVDESS_STATEMENTS = {1: "Kids are talking by the door", 2: "Dogs are sitting by the door"}
_RAVDESS_NAME = re.compile(r"^\d{2}(-\d{2}){6}$")
_HDTF_NAME = re.compile(r"^((?:WDA|WRA|RD)_[A-Za-z0-9]+)_\d+$")


@dataclass(frozen=True)
class RavdessLabel:
    modality: int
    vocal_channel: int
    emotion: str  # RAVDESS's own word ("calm", "disgust", ...)
    intensity: int  # 1 normal, 2 strong
    statement: int
    repetition: int
    actor: int

    @property
    def mead_emotion(self) -> str:
        return _TO_MEAD[self.emotion]

    @property
    def mead_intensity(self) -> int:
        return 1 if self.mead_emotion == "neutral" else self.intensity + 1


def parse_ravdess_name(stem: str, path=None) -> RavdessLabel | None:
    """The label in a RAVDESS-style name, None for other names, FormatError for bad codes."""
    if not _RAVDESS_NAME.match(stem):
        return None
    modality, channel, emotion, intensity, statement, repetition, actor = map(int, stem.split("-"))
    problems = []
    if modality not in (1, 2, 3):
        problems.append(f"modality {modality:02d}")
    if channel not in (1, 2):
        problems.append(f"vocal channel {channel:02d}")
    if emotion not in RAVDESS_EMOTIONS:
        problems.append(f"emotion {emotion:02d}")
    if intensity not in (1, 2) or (emotion == 1 and intensity == 2):
        problems.append(f"intensity {intensity:02d}")
    if statement not in RAVDESS_STATEMENTS:
        problems.append(f"statement {statement:02d}")
    if repetition not in (1, 2):
        problems.append(f"repetition {repetition:02d}")
    if not 1 <= actor <= 24:
        problems.append(f"actor {actor:02d}")
    if problems:
        raise FormatError(path or stem, "file name",
                          "RAVDESS-style name with invalid " + ", ".join(problems))
    return RavdessLabel(modality, channel, RAVDESS_EMOTIONS[emotion], intensity, statement,
                        repetition, actor)


def find_sequences(root) -> list[Path]:
    """Every ``.npy`` under ``root``: each one is a sequence (bad ones become load errors)."""
    return sorted(Path(root).rglob("*.npy"))


def load_etf3d(
    npy_path,
    *,
    wav_path=None,  # default: same stem beside the .npy or in a sibling audio/ or wav/ folder
    fps: float = 30.0,  # motion frame rate of the sample
    source_fps: float | None = None,  # frame rate of the .npy; None: 3D-ETF's 30 fps
    sample_rate: int | None = None,  # resample the audio; None keeps the file's rate
    max_duration_mismatch: float = MAX_DURATION_MISMATCH,  # seconds audio and motion may differ
) -> MotionSample:
    """One 3D-ETF sequence with its audio, labelled when its name is RAVDESS-style."""
    path = Path(npy_path)
    source_fps = source_fps or SOURCE_FPS
    label = parse_ravdess_name(path.stem, path)
    weights = read_array(path)
    if weights.ndim != 2 or weights.shape[1] != NUM_BLENDSHAPES or len(weights) == 0:
        raise FormatError(path, "shape", f"expected (frames, {NUM_BLENDSHAPES}) blendshape "
                          f"weights, found {weights.shape}")
    check_weights(weights, path)
    wav = find_audio(path, wav_path)
    audio, rate = read_wav(wav, sample_rate=sample_rate)
    motion, mismatch = align_to_audio(weights.astype("float32"), source_fps, fps, len(audio) / rate,
                                      path=path, max_mismatch=max_duration_mismatch)
    meta = {"format": "etf3d", "source": str(path), "audio_source": str(wav),
            "source_fps": source_fps, "duration_mismatch": mismatch}
    sample = MotionSample(name=path.stem, audio=audio, sample_rate=rate, fps=fps,
                          blendshapes=motion, meta=meta)
    if label is not None:
        sample.emotion = label.mead_emotion
        sample.intensity = label.mead_intensity
        sample.emotion_text = label.emotion if label.intensity == 1 else f"very {label.emotion}"
        sample.speaker = f"ravdess_actor{label.actor:02d}"
        sample.sentence = RAVDESS_STATEMENTS[label.statement]
        meta["ravdess"] = asdict(label)
    elif (hdtf := _HDTF_NAME.match(path.stem)) is not None:
        sample.speaker = hdtf.group(1)
    return sample
