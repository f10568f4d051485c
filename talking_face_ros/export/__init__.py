"""Face exports for other tools: glTF 2.0 (``export.gltf``) and Live Link Face CSV
(``export.livelink_export``).

Submodules are imported on use (``from talking_face_ros.export.gltf import write_glb``), so
code that only needs the helpers below (the RViz marker builder) does not load pygltflib.
"""
from __future__ import annotations

import numpy as np

from ..arkit import NUM_BLENDSHAPES

# Length of one rig unit in metres: glTF and ROS both measure in metres, rigs in centimetres.
METERS_PER_UNIT: dict[str, float] = {"m": 1.0, "cm": 0.01, "mm": 0.001}


def meters_per_unit(units: str) -> float:
    """Metres per rig unit (``"cm"`` -> 0.01); ValueError for a unit it cannot convert."""
    try:
        return METERS_PER_UNIT[units]
    except KeyError:
        raise ValueError(f"rig units {units!r} cannot be converted to metres; "
                         f"known: {', '.join(METERS_PER_UNIT)}") from None


def check_frames(times, weights) -> tuple[np.ndarray, np.ndarray]:
    """float64 ``(frames,)`` times and ``(frames, 52)`` weights, or a ValueError saying what is wrong."""
    t = np.asarray(times, dtype=np.float64)
    w = np.asarray(weights, dtype=np.float64)
    if w.ndim != 2 or w.shape[1] != NUM_BLENDSHAPES or len(w) == 0:
        raise ValueError(f"weights must be (frames, {NUM_BLENDSHAPES}) with frames >= 1, got shape {w.shape}")
    if t.shape != (len(w),):
        raise ValueError(f"times must be ({len(w)},) to match the weights, got shape {t.shape}")
    if not (np.isfinite(t).all() and np.isfinite(w).all()):
        raise ValueError("times and weights must be finite")
    if np.any(np.diff(t) <= 0):
        raise ValueError("times must strictly increase")
    return t, w


def frame_rate(times) -> float:
    """The frames' rate from their median step, rounded to 1/1000 fps (30 for 1/30 s steps)."""
    times = np.asarray(times, dtype=np.float64)
    if len(times) < 2:
        return 30.0
    return round(1.0 / float(np.median(np.diff(times))), 3)


def resample_frames(times, weights, fps: float) -> tuple[np.ndarray, np.ndarray]:
    """``(times[0] + i / fps, weights there)`` over the frames' span, linearly interpolated.

    Unlike :func:`talking_face_ros.data.resample.resample_motion` this takes the frames' own
    times, which need not be regular. Linear interpolation keeps weights inside [0, 1]; frames
    already on the grid come out unchanged.
    """
    times, weights = check_frames(times, weights)
    if not fps > 0:
        raise ValueError(f"fps must be positive, got {fps}")
    count = int(np.floor((times[-1] - times[0]) * fps + 0.01)) + 1  # 0.01: times rounded in files
    grid = times[0] + np.arange(count) / fps
    position = np.interp(grid, times, np.arange(len(times), dtype=np.float64))
    nearest = np.round(position)
    position = np.where(np.abs(position - nearest) < 1e-6, nearest, position)  # on-grid rows exact
    lo = np.floor(position).astype(np.int64)
    hi = np.minimum(lo + 1, len(times) - 1)
    frac = (position - lo)[:, None]
    return grid, (weights[lo] * (1.0 - frac) + weights[hi] * frac).astype(np.float32)
