"""Resampling of motion to another frame rate (audio resampling lives in speech.audio)."""
from __future__ import annotations

import numpy as np


def resample_motion(motion: np.ndarray, src_fps: float, dst_fps: float, frames: int | None = None):
    """Linear interpolation in time of ``(frames, ...)`` motion from ``src_fps`` to ``dst_fps``.

    Frame ``i`` is taken to depict time ``i / fps``. ``frames`` fixes the output length (for
    instance to match an audio duration); otherwise it covers the same span as the input.
    Linear interpolation keeps blendshape weights inside [0, 1] and vertex paths on their
    segments, which spline interpolation would not.
    """
    motion = np.asarray(motion)
    if src_fps <= 0 or dst_fps <= 0:
        raise ValueError(f"frame rates must be positive, got {src_fps} and {dst_fps}")
    n = motion.shape[0]
    if n == 0:
        return motion.copy()
    if frames is None:
        frames = max(1, int(round((n - 1) * dst_fps / src_fps)) + 1)
    if src_fps == dst_fps and frames == n:
        return motion.copy()
    t_src = np.arange(n) / src_fps
    t_dst = np.arange(frames) / dst_fps
    flat = motion.reshape(n, -1)
    pos = np.clip(np.interp(t_dst, t_src, np.arange(n, dtype=np.float64)), 0, n - 1)
    lo = np.floor(pos).astype(np.int64)
    hi = np.minimum(lo + 1, n - 1)
    frac = (pos - lo)[:, None]
    out = flat[lo] * (1.0 - frac) + flat[hi] * frac
    return out.reshape((frames,) + motion.shape[1:]).astype(motion.dtype, copy=False)
