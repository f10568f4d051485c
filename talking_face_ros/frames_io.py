"""Animation frame files: 52 ARKit weights with timestamps, as .npz, .csv or .json.

- ``.csv``: header ``time,<52 ARKit names>``, one row per frame, time in seconds.
- ``.npz``: ``time`` (frames,) float64, ``blendshapes`` (frames, 52) float32, ``names`` (52,) str;
  optionally ``samples`` (N, frames, 52) for several stochastic samples of the same input.
- ``.json``: ``{"fps": .., "names": [...], "frames": [{"time": t, "weights": [52 floats]}, ...]}``.
"""
from __future__ import annotations

import csv
import json
import zipfile
from pathlib import Path

import numpy as np

from .arkit import ARKIT_NAMES, NUM_BLENDSHAPES

FORMATS = (".npz", ".csv", ".json")


def save_frames(path, times, weights, *, fps: float | None = None, samples=None) -> Path:
    path = Path(path)
    times = np.asarray(times, dtype=np.float64)
    weights = np.asarray(weights, dtype=np.float32)
    if weights.ndim != 2 or weights.shape[1] != NUM_BLENDSHAPES or len(times) != len(weights):
        raise ValueError(f"need (frames,) times and (frames, 52) weights, got {times.shape} and {weights.shape}")
    path.parent.mkdir(parents=True, exist_ok=True)
    suffix = path.suffix.lower()
    if suffix == ".npz":
        extra = {} if samples is None else {"samples": np.asarray(samples, dtype=np.float32)}
        np.savez_compressed(path, time=times, blendshapes=weights, names=np.array(ARKIT_NAMES), **extra)
    elif suffix == ".csv":
        with path.open("w", newline="") as f:
            w = csv.writer(f)
            w.writerow(("time",) + ARKIT_NAMES)
            for t, row in zip(times, weights):
                w.writerow([f"{t:.6f}"] + [f"{v:.5f}" for v in row])
    elif suffix == ".json":
        if fps is None and len(times) > 1:
            fps = float(round(1.0 / np.median(np.diff(times)), 6))
        doc = {"fps": fps, "names": list(ARKIT_NAMES),
               "frames": [{"time": round(float(t), 6), "weights": [round(float(v), 5) for v in row]}
                          for t, row in zip(times, weights)]}
        path.write_text(json.dumps(doc))
    else:
        raise ValueError(f"{path}: unknown frame format {suffix!r}; use one of {', '.join(FORMATS)}")
    return path


def load_frames(path) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """(times, weights (frames, 52), samples or None) from a file written by :func:`save_frames`."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such frame file")
    suffix = path.suffix.lower()
    if suffix == ".npz":
        try:
            with np.load(path, allow_pickle=False) as z:
                weights = z["blendshapes"].astype(np.float32)
                times = z["time"] if "time" in z.files else None
                samples = z["samples"].astype(np.float32) if "samples" in z.files else None
                names = [str(n) for n in z["names"]] if "names" in z.files else list(ARKIT_NAMES)
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:
            raise ValueError(f"{path}: unreadable frame file ({exc})") from None
        weights = _reorder(weights, names, path)
        if samples is not None:
            samples = _reorder(samples, names, path)
    elif suffix == ".csv":
        with path.open(newline="") as f:
            rows = list(csv.reader(f))
        if not rows or rows[0][:1] != ["time"]:
            raise ValueError(f"{path}: line 1: expected a header starting with 'time'")
        names = rows[0][1:]
        data = []
        for n, row in enumerate(rows[1:], start=2):
            if len(row) != len(names) + 1:
                raise ValueError(f"{path}: line {n}: {len(row)} fields, expected {len(names) + 1}")
            try:
                data.append([float(v) for v in row])
            except ValueError:
                raise ValueError(f"{path}: line {n}: non-numeric value") from None
        arr = np.array(data, dtype=np.float64).reshape(-1, len(names) + 1)
        times, weights, samples = arr[:, 0], _reorder(arr[:, 1:].astype(np.float32), names, path), None
    elif suffix == ".json":
        try:
            doc = json.loads(path.read_text())
            names = doc.get("names", list(ARKIT_NAMES))
            times = np.array([f["time"] for f in doc["frames"]], dtype=np.float64)
            weights = np.array([f["weights"] for f in doc["frames"]], dtype=np.float32).reshape(len(times), -1)
        except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"{path}: malformed frame JSON ({exc})") from None
        weights, samples = _reorder(weights, names, path), None
    else:
        raise ValueError(f"{path}: unknown frame format {suffix!r}; use one of {', '.join(FORMATS)}")
    if not np.isfinite(weights).all():
        raise ValueError(f"{path}: NaN or infinite weights")
    if times is None:
        times = np.arange(len(weights)) / 30.0
    return np.asarray(times, np.float64), weights, samples


def _reorder(weights: np.ndarray, names, path) -> np.ndarray:
    """Columns in canonical ARKit order whatever order the file used."""
    names = list(names)
    if names == list(ARKIT_NAMES):
        return weights
    missing = [n for n in ARKIT_NAMES if n not in names]
    if missing:
        raise ValueError(f"{path}: missing ARKit columns {missing[:5]}{'...' if len(missing) > 5 else ''}")
    idx = [names.index(n) for n in ARKIT_NAMES]
    return weights[..., idx]
