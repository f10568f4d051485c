"""A stand-in speech encoder for tests that run the engine thousands of times (imported by the tests;
pytest puts test/ on sys.path)."""
from __future__ import annotations

import numpy as np

from talking_face_ros.encoders.base import SpeechEncoder


class CheapSpeech(SpeechEncoder):
    """Moonshine's frame grid and size, computed in microseconds: for long runs.

    Each frame is a fixed random projection of its samples' mean, spread and peak plus the mean
    level of the whole pass, so, as in a transformer, a frame depends on the rest of its pass.
    """

    name = "cheap"
    feature_dim = 416
    frame_stride = 384
    frame_span = 895

    def __init__(self):
        self._set_windows(600.0, 0.0, 0.0, 0.0)
        self.proj = np.random.default_rng(0).standard_normal((4, 416)).astype(np.float32)

    def _encode_window(self, audio):
        n = self.num_frames(len(audio))
        idx = np.arange(n)[:, None] * self.frame_stride + np.arange(self.frame_span)[None, :]
        frames = audio[idx]
        stats = np.stack([frames.mean(1) * 20, frames.std(1) * 5, np.abs(frames).max(1) * 3,
                          np.full(n, np.abs(audio).mean() * 10)], axis=1)
        return np.tanh(stats @ self.proj).astype(np.float32)
