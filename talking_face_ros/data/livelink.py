"""Epic Games' Live Link Face CSV takes: read as samples, and written for Unreal / MetaHuman.

The iPhone app saves a take as ``<slate>_<take>_<device>.csv`` beside a ``.mov``. Extract the
audio once, next to the CSV with the same stem: ``ffmpeg -i take.mov -vn -ac 1 take.wav``.

The CSV, as the app exports it::

    Timecode,BlendShapeCount,EyeBlinkLeft,EyeLookDownLeft,...,TongueOut,HeadYaw,HeadPitch,
    HeadRoll,LeftEyeYaw,LeftEyePitch,LeftEyeRoll,RightEyeYaw,RightEyePitch,RightEyeRoll
    14:03:52:28.207,61,0.0123,...

* Blendshape columns carry the ARKit names capitalised, in the app's order (``LIVELINK_ORDER``):
  Apple's grouping (left eye, right eye, jaw, mouth, brows, cheeks, nose, tongue). It equals
  Unreal's ``EARFaceBlendShape`` enum except that the header lists ``JawRight`` before
  ``JawLeft`` and ``MouthRight`` before ``MouthLeft`` (as in exported takes). The reader matches
  columns by name, case-insensitively, so files in any order load; the writer uses this order.
* ``BlendShapeCount`` is the number of value columns that follow: 61 = 52 weights + 9 angles.
  Some exports spell it ``BlendshapeCount``; both are accepted.
* ``Timecode`` is ``HH:MM:SS:FF.fff``: ``FF`` counts frames at the timecode rate (the app's
  capture rate, 60 by default, 30 selectable) and ``.fff`` is a fraction of a frame (sub-frame),
  which is how 59.94 fps captures drift against a 60 fps count. Times are taken relative to the
  first row. The rate is the largest ``FF`` seen + 1 once the take crosses a second boundary;
  for takes shorter than that pass ``source_fps`` (default 60). Rows are then placed on a regular
  grid at the measured row rate (interpolating across dropped frames) before resampling.
* Head and eye angles are kept in ``meta["rotations"]`` (``meta["rotation_names"]`` columns),
  resampled with the weights, in the units the app wrote (not converted).
"""
from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..arkit import ARKIT_NAMES, NUM_BLENDSHAPES
from .datasets import (
    MAX_DURATION_MISMATCH, FormatError, align_to_audio, check_weights, find_audio, read_wav,
)
from .sample import MotionSample

LIVELINK_ORDER: tuple[str, ...] = (
    "EyeBlinkLeft", "EyeLookDownLeft", "EyeLookInLeft", "EyeLookOutLeft", "EyeLookUpLeft",
    "EyeSquintLeft", "EyeWideLeft", "EyeBlinkRight", "EyeLookDownRight", "EyeLookInRight",
    "EyeLookOutRight", "EyeLookUpRight", "EyeSquintRight", "EyeWideRight", "JawForward",
    "JawRight", "JawLeft", "JawOpen", "MouthClose", "MouthFunnel", "MouthPucker", "MouthRight",
    "MouthLeft", "MouthSmileLeft", "MouthSmileRight", "MouthFrownLeft", "MouthFrownRight",
    "MouthDimpleLeft", "MouthDimpleRight", "MouthStretchLeft", "MouthStretchRight",
    "MouthRollLower", "MouthRollUpper", "MouthShrugLower", "MouthShrugUpper", "MouthPressLeft",
    "MouthPressRight", "MouthLowerDownLeft", "MouthLowerDownRight", "MouthUpperUpLeft",
    "MouthUpperUpRight", "BrowDownLeft", "BrowDownRight", "BrowInnerUp", "BrowOuterUpLeft",
    "BrowOuterUpRight", "CheekPuff", "CheekSquintLeft", "CheekSquintRight", "NoseSneerLeft",
    "NoseSneerRight", "TongueOut",
)
ROTATION_NAMES: tuple[str, ...] = (
    "HeadYaw", "HeadPitch", "HeadRoll", "LeftEyeYaw", "LeftEyePitch", "LeftEyeRoll",
    "RightEyeYaw", "RightEyePitch", "RightEyeRoll",
)
HEADER: tuple[str, ...] = ("Timecode", "BlendShapeCount") + LIVELINK_ORDER + ROTATION_NAMES
DEFAULT_SOURCE_FPS = 60.0  # the app's default capture rate

_ARKIT_INDEX_BY_LOWER = {name.lower(): i for i, name in enumerate(ARKIT_NAMES)}
_ROTATION_BY_LOWER = {name.lower(): name for name in ROTATION_NAMES}
_TIMECODE = re.compile(r"^(\d+):(\d{2}):(\d{2})[:;](\d+(?:\.\d*)?)$")  # ';' marks drop-frame
_DAY = 24 * 3600


@dataclass
class LiveLinkTake:
    """One take as its CSV holds it: rows at the times their timecodes say."""

    path: Path
    times: np.ndarray  # (rows,) seconds since the first row
    weights: np.ndarray  # (rows, 52) float32, ARKit order
    rotations: np.ndarray  # (rows, len(rotation_names)) float32, as written
    rotation_names: tuple[str, ...]
    timecode_fps: float  # the rate FF counts in
    capture_fps: float  # the measured row rate
    start_timecode: str

    def on_grid(self) -> np.ndarray:
        """Weights then rotations at times ``i / capture_fps``, dropped rows interpolated."""
        values = np.concatenate([self.weights, self.rotations], axis=1)
        n = len(self.times)
        grid = np.arange(int(round(self.times[-1] * self.capture_fps)) + 1) / self.capture_fps
        if len(grid) == n and np.max(np.abs(self.times - grid)) <= 0.1 / self.capture_fps:
            return values
        columns = [np.interp(grid, self.times, values[:, c]) for c in range(values.shape[1])]
        return np.stack(columns, axis=1).astype(np.float32)


def _parse_header(path: Path, header: list[str]):
    """Header names, {column: ARKit index} and {column: rotation name}; FormatError if invalid."""
    names = [h.strip() for h in header]
    if len(names) < 2 or names[0].lower() != "timecode" or names[1].lower() != "blendshapecount":
        raise FormatError(path, "line 1", "not a Live Link Face header: it must start with "
                          f"'Timecode,BlendShapeCount', found {','.join(names[:2])!r}")
    blend: dict[int, int] = {}
    rotations: dict[int, str] = {}
    seen: dict[str, int] = {}
    for column, name in enumerate(names[2:], start=2):
        key = name.lower()
        where = f"line 1, column {column + 1} ({name})"
        if key in seen:
            raise FormatError(path, where, f"duplicate column (also column {seen[key] + 1})")
        seen[key] = column
        if key in _ARKIT_INDEX_BY_LOWER:
            blend[column] = _ARKIT_INDEX_BY_LOWER[key]
        elif key in _ROTATION_BY_LOWER:
            rotations[column] = _ROTATION_BY_LOWER[key]
        else:
            raise FormatError(path, where, "unknown column: neither an ARKit blendshape nor a "
                              "head/eye rotation")
    missing = sorted(set(range(NUM_BLENDSHAPES)) - set(blend.values()))
    if missing:
        raise FormatError(path, "line 1", "missing blendshape columns: "
                          + ", ".join(ARKIT_NAMES[i] for i in missing))
    return names, blend, rotations


def _parse_values(path: Path, names, rows) -> np.ndarray:
    """(rows, columns - 1) float64 of everything after the timecode; FormatError at a bad cell."""
    try:
        values = np.array([row[1:] for _, row in rows], dtype=np.str_).astype(np.float64)
    except ValueError:
        values = None  # some cell is not a number: the cell-by-cell pass below finds it
    if values is not None and np.all(np.isfinite(values)):
        return values
    values = np.empty((len(rows), len(names) - 1))
    for r, (line, row) in enumerate(rows):
        for column, cell in enumerate(row[1:], start=1):
            where = f"line {line}, column {column + 1} ({names[column]})"
            try:
                number = float(cell)
            except ValueError:
                raise FormatError(path, where, f"{cell!r} is not a number") from None
            if not np.isfinite(number):
                raise FormatError(path, where, f"non-finite value {cell.strip()!r}")
            values[r, column - 1] = number
    return values


def _parse_times(path: Path, rows, timecode_fps: float | None):
    """(seconds since the first row, timecode rate) from the Timecode column."""
    whole = np.empty(len(rows))
    frames = np.empty(len(rows))
    for k, (line, row) in enumerate(rows):
        match = _TIMECODE.match(row[0].strip())
        if match is None:
            raise FormatError(path, f"line {line}, column 1 (Timecode)",
                              f"{row[0]!r} is not a HH:MM:SS:FF timecode")
        h, m, s, f = match.groups()
        whole[k] = int(h) * 3600 + int(m) * 60 + int(s)
        frames[k] = float(f)
    whole += _DAY * np.cumsum(np.diff(whole, prepend=whole[0]) < -_DAY / 2)  # midnight wrap
    if timecode_fps is None:
        crosses_second = np.any(np.diff(whole) > 0)
        timecode_fps = float(np.floor(frames.max()) + 1) if crosses_second else DEFAULT_SOURCE_FPS
    too_big = np.nonzero(frames >= timecode_fps)[0]
    if len(too_big):
        line = rows[too_big[0]][0]
        raise FormatError(path, f"line {line}, column 1 (Timecode)",
                          f"frame {frames[too_big[0]]:g} does not exist at {timecode_fps:g} fps")
    times = whole + frames / timecode_fps
    times -= times[0]
    steps = np.diff(times)
    if np.any(steps <= 0):
        k = int(np.argmax(steps <= 0)) + 1
        raise FormatError(path, f"line {rows[k][0]}, column 1 (Timecode)",
                          f"timecode {rows[k][1][0]} does not come after line {rows[k - 1][0]}'s "
                          f"{rows[k - 1][1][0]}")
    return times, timecode_fps


def read_livelink_csv(path, *, source_fps: float | None = None) -> LiveLinkTake:
    """A take's rows; ``source_fps`` fixes the timecode rate instead of detecting it."""
    path = Path(path)
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:  # -sig: tolerate a BOM
            reader = csv.reader(f)
            lines = [(reader.line_num, row) for row in reader]
    except (UnicodeDecodeError, csv.Error) as err:
        raise FormatError(path, "file", f"not a text CSV file ({err})") from None
    if not lines:
        raise FormatError(path, "line 1", "empty file")
    names, blend, rotation_columns = _parse_header(path, lines[0][1])
    rows = [(line, row) for line, row in lines[1:] if any(cell.strip() for cell in row)]
    if not rows:
        raise FormatError(path, "line 2", "no data rows after the header")
    for line, row in rows:
        if len(row) != len(names):
            raise FormatError(path, f"line {line}", f"{len(row)} fields where the header has "
                              f"{len(names)} (truncated or damaged line)")
    values = _parse_values(path, names, rows)
    times, timecode_fps = _parse_times(path, rows, source_fps)
    weights = np.zeros((len(rows), NUM_BLENDSHAPES), dtype=np.float32)
    for column, index in blend.items():
        weights[:, index] = values[:, column - 1]
    rotation_names = tuple(rotation_columns.values())
    rotations = values[:, [c - 1 for c in rotation_columns]].astype(np.float32)
    steps = np.diff(times)
    capture_fps = round(1.0 / float(np.median(steps)), 3) if len(steps) else timecode_fps
    return LiveLinkTake(path, times, weights, rotations.reshape(len(rows), -1), rotation_names,
                        timecode_fps, capture_fps, rows[0][1][0].strip())


def find_takes(root) -> list[Path]:
    """CSV files under ``root`` whose first line starts like a Live Link Face header."""
    takes = []
    for path in sorted(Path(root).rglob("*.csv")):
        try:
            with open(path, encoding="utf-8-sig", errors="replace") as f:
                first = f.readline(64)
        except OSError:
            continue
        if first.lower().startswith("timecode,"):
            takes.append(path)
    return takes


def _shift_audio(audio: np.ndarray, rate: int, offset: float, path: Path) -> np.ndarray:
    """Audio re-cut so that its sample 0 is the take's first frame."""
    shift = int(round(abs(offset) * rate))
    if offset >= 0:  # audio starts after the first frame: pad the gap with silence
        return np.concatenate([np.zeros(shift, dtype=np.float32), audio])
    if shift >= len(audio):
        raise FormatError(path, "audio", f"audio_offset {offset:g} s cuts away all the audio")
    return audio[shift:]


def load_livelink(
    csv_path,
    *,
    wav_path=None,  # the take's audio; default: same stem as the CSV (or a wav/ or audio/ sibling)
    fps: float = 30.0,  # motion frame rate of the sample
    source_fps: float | None = None,  # timecode rate; detected from the timecodes when None
    audio_offset: float = 0.0,  # seconds from the first frame to the first audio sample
    sample_rate: int | None = None,  # resample the audio; None keeps the file's rate
    max_duration_mismatch: float = MAX_DURATION_MISMATCH,  # seconds audio and motion may differ
    name: str | None = None,  # sample name; default: the CSV's stem
) -> MotionSample:
    """A take with its audio as a MotionSample at ``fps``; angles in ``meta["rotations"]``."""
    take = read_livelink_csv(csv_path, source_fps=source_fps)
    wav = find_audio(take.path, wav_path)
    audio, rate = read_wav(wav, sample_rate=sample_rate)
    audio = _shift_audio(audio, rate, audio_offset, take.path)
    grid = take.on_grid()
    check_weights(grid[:, :NUM_BLENDSHAPES], take.path)
    motion, mismatch = align_to_audio(grid, take.capture_fps, fps, len(audio) / rate,
                                      path=take.path, max_mismatch=max_duration_mismatch)
    return MotionSample(
        name=name or take.path.stem,
        audio=audio,
        sample_rate=rate,
        fps=fps,
        blendshapes=motion[:, :NUM_BLENDSHAPES],
        meta={
            "format": "livelink",
            "source": str(take.path),
            "audio_source": str(wav),
            "rotations": motion[:, NUM_BLENDSHAPES:].astype(np.float32),
            "rotation_names": take.rotation_names,
            "capture_fps": take.capture_fps,
            "timecode_fps": take.timecode_fps,
            "start_timecode": take.start_timecode,
            "audio_offset": audio_offset,
            "duration_mismatch": mismatch,
        },
    )


# ---------------------------------------------------------------- writing


def _timecode(milliframes: int, rate: int) -> str:
    seconds, rest = divmod(milliframes, rate * 1000)
    minutes, s = divmod(seconds, 60)
    h, m = divmod(minutes, 60)
    return f"{h % 24:02d}:{m:02d}:{s:02d}:{rest // 1000:02d}.{rest % 1000:03d}"


def write_livelink_csv(
    path,
    weights,
    fps: float,
    *,
    rotations=None,  # (frames, 9) head/eye angles in ROTATION_NAMES order; zeros when None
    start_timecode: str = "00:00:00:00",  # HH:MM:SS:FF of the first row, FF at round(fps)
) -> Path:
    """``(frames, 52)`` ARKit-order weights as a Live Link Face CSV, one row per frame.

    The timecode counts ``round(fps)`` frames per second; a non-integer rate (29.97) is written
    with fractional sub-frames so the timecodes still give each row's true time.
    """
    path = Path(path)
    weights = np.asarray(weights, dtype=np.float64)
    if weights.ndim != 2 or weights.shape[1] != NUM_BLENDSHAPES or len(weights) == 0:
        raise ValueError(f"weights must be (frames, {NUM_BLENDSHAPES}), got {weights.shape}")
    if not fps > 0:
        raise ValueError(f"fps must be positive, got {fps}")
    if rotations is None:
        rotations = np.zeros((len(weights), len(ROTATION_NAMES)))
    rotations = np.asarray(rotations, dtype=np.float64)
    if rotations.shape != (len(weights), len(ROTATION_NAMES)):
        raise ValueError(f"rotations must be ({len(weights)}, {len(ROTATION_NAMES)}), "
                         f"got {rotations.shape}")
    if not (np.all(np.isfinite(weights)) and np.all(np.isfinite(rotations))):
        raise ValueError("weights and rotations must be finite")
    rate = int(round(fps))
    match = _TIMECODE.match(start_timecode)
    if match is None or float(match.group(4)) >= rate:
        raise ValueError(f"start_timecode {start_timecode!r} is not HH:MM:SS:FF at {rate} fps")
    h, m, s, f = match.groups()
    start = ((int(h) * 3600 + int(m) * 60 + int(s)) * rate + float(f)) * 1000
    order = [ARKIT_NAMES.index(n[0].lower() + n[1:]) for n in LIVELINK_ORDER]
    columns = np.concatenate([weights[:, order], rotations], axis=1)
    lines = [",".join(HEADER)]
    for i, row in enumerate(columns):
        milliframes = int(round(start + i * rate / fps * 1000))
        values = ",".join(f"{v:.8f}" for v in row)
        lines.append(f"{_timecode(milliframes, rate)},{len(row)},{values}")
    path.write_text("\n".join(lines) + "\n")
    return path
