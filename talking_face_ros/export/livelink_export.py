"""Frames as a Live Link Face CSV take, for Unreal Engine / MetaHuman users.

Unreal's Live Link Face importer and MetaHuman animation tools read the CSV the iPhone app
writes; :func:`talking_face_ros.data.livelink.write_livelink_csv` writes that layout. This module
puts any frame sequence on the regular grid a take needs: the app records at 60 fps by default,
so ``fps=60`` gives a take that looks like the app's own, while ``fps=None`` keeps the frames'
rate (30 fps for this project's output).
"""
from __future__ import annotations

from pathlib import Path

from ..data.livelink import write_livelink_csv
from . import check_frames, frame_rate, resample_frames

LIVELINK_APP_FPS = 60.0  # the app's default capture and timecode rate


def export_livelink(
    path,
    times,  # (frames,) seconds, strictly increasing
    weights,  # (frames, 52) ARKit-order weights
    *,
    fps: float | None = None,  # rows (and timecode frames) per second; None = the frames' own rate
    start_timecode: str = "00:00:00:00",  # HH:MM:SS:FF of the first row
) -> Path:
    """Write the frames as a Live Link Face CSV, linearly resampled to ``fps`` when needed."""
    times, weights = check_frames(times, weights)
    rate = frame_rate(times) if fps is None else float(fps)
    _, rows = resample_frames(times, weights, rate)
    return write_livelink_csv(path, rows, rate, start_timecode=start_timecode)
