"""The one sample type every data source (corpus, Live Link Face, 3D-ETF, VOCASET/BIWI) becomes."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..arkit import NUM_BLENDSHAPES
from ..phonemes import PhonemeSegment


@dataclass
class MotionSample:
    """Speech audio with the face motion that goes with it.

    A sample carries blendshape weights, vertex positions, or both; which one a loader fills
    depends on its format. Frame ``i`` depicts audio time ``i / fps`` seconds.
    """

    name: str  # unique within its dataset, e.g. "v03_s0412_happy2"
    audio: np.ndarray  # (samples,) float32 mono in [-1, 1]
    sample_rate: int  # Hz of ``audio``
    fps: float  # frames per second of the motion
    blendshapes: np.ndarray | None = None  # (frames, 52) float32, ARKit order
    vertices: np.ndarray | None = None  # (frames, vertices, 3) float32, dataset units
    template: np.ndarray | None = None  # (vertices, 3) the speaker's neutral mesh
    phonemes: list[PhonemeSegment] | None = None  # timings, when the source knows them
    speaker: str | None = None  # identity label
    emotion: str | None = None  # one of emotions.EMOTIONS when known
    intensity: int | None = None  # 1..3 when known
    emotion_text: str | None = None  # descriptive emotion text
    sentence: str | None = None  # transcript
    meta: dict = field(default_factory=dict)  # anything else (source file, voice config...)

    def __post_init__(self):
        self.audio = np.asarray(self.audio, dtype=np.float32)
        if self.audio.ndim != 1:
            raise ValueError(f"{self.name}: audio must be mono (1-D), got shape {self.audio.shape}")
        if self.blendshapes is None and self.vertices is None:
            raise ValueError(f"{self.name}: a sample needs blendshapes or vertices")
        if self.blendshapes is not None:
            self.blendshapes = np.asarray(self.blendshapes, dtype=np.float32)
            if self.blendshapes.ndim != 2 or self.blendshapes.shape[1] != NUM_BLENDSHAPES:
                raise ValueError(
                    f"{self.name}: blendshapes must be (frames, 52), got {self.blendshapes.shape}"
                )
        if self.vertices is not None:
            self.vertices = np.asarray(self.vertices, dtype=np.float32)
            if self.vertices.ndim != 3 or self.vertices.shape[2] != 3:
                raise ValueError(f"{self.name}: vertices must be (frames, V, 3), got {self.vertices.shape}")

    @property
    def frames(self) -> int:
        motion = self.blendshapes if self.blendshapes is not None else self.vertices
        return int(motion.shape[0])

    @property
    def duration(self) -> float:
        return len(self.audio) / float(self.sample_rate)

    def times(self) -> np.ndarray:
        return np.arange(self.frames, dtype=np.float64) / self.fps


def frame_count(duration: float, fps: float) -> int:
    """Frames that cover ``duration`` seconds: frame i depicts time i / fps, for i / fps < duration."""
    return max(1, int(np.ceil(duration * fps - 1e-6)))
