"""Small fixtures for the capture-format loaders, written into a test's tmp_path on demand.

Nothing binary is committed: every file is generated here in the exact on-disk format its loader
reads. The Live Link Face header is the app's own header row as text, kept independent of the
module under test so that a wrong column order there cannot hide behind the same mistake here.
"""
from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
from scipy.io import wavfile

APP_HEADER = (
    "Timecode,BlendShapeCount,EyeBlinkLeft,EyeLookDownLeft,EyeLookInLeft,EyeLookOutLeft,"
    "EyeLookUpLeft,EyeSquintLeft,EyeWideLeft,EyeBlinkRight,EyeLookDownRight,EyeLookInRight,"
    "EyeLookOutRight,EyeLookUpRight,EyeSquintRight,EyeWideRight,JawForward,JawRight,JawLeft,"
    "JawOpen,MouthClose,MouthFunnel,MouthPucker,MouthRight,MouthLeft,MouthSmileLeft,"
    "MouthSmileRight,MouthFrownLeft,MouthFrownRight,MouthDimpleLeft,MouthDimpleRight,"
    "MouthStretchLeft,MouthStretchRight,MouthRollLower,MouthRollUpper,MouthShrugLower,"
    "MouthShrugUpper,MouthPressLeft,MouthPressRight,MouthLowerDownLeft,MouthLowerDownRight,"
    "MouthUpperUpLeft,MouthUpperUpRight,BrowDownLeft,BrowDownRight,BrowInnerUp,BrowOuterUpLeft,"
    "BrowOuterUpRight,CheekPuff,CheekSquintLeft,CheekSquintRight,NoseSneerLeft,NoseSneerRight,"
    "TongueOut,HeadYaw,HeadPitch,HeadRoll,LeftEyeYaw,LeftEyePitch,LeftEyeRoll,RightEyeYaw,"
    "RightEyePitch,RightEyeRoll"
)
APP_BLENDSHAPES = APP_HEADER.split(",")[2:54]  # the 52 weight columns, app order
VOCASET_VERTICES = 5023
BIWI_VERTICES = 23370


def write_wav(path, seconds: float, *, rate: int = 16000, channels: int = 1,
              dtype=np.int16) -> np.ndarray:
    """A 220 Hz tone at half scale; returns the float signal of channel 0 as written."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    t = np.arange(int(seconds * rate + 1e-6)) / rate  # floor: no sample past `seconds`
    signal = 0.5 * np.sin(2 * np.pi * 220.0 * t)
    if np.dtype(dtype).kind == "i":
        data = np.round(signal * np.iinfo(dtype).max).astype(dtype)
        written = data.astype(np.float64) / (np.iinfo(dtype).max + 1)
    else:
        data = signal.astype(dtype)
        written = data.astype(np.float64)
    if channels > 1:
        data = np.repeat(data[:, None], channels, axis=1)
    wavfile.write(path, rate, data)
    return written


def timecode(frame: float, fps: int, start_seconds: int = 12 * 3600 + 34 * 60 + 56) -> str:
    """``HH:MM:SS:FF.fff`` of a (possibly fractional) frame count after ``start_seconds``."""
    seconds, ff = divmod(frame, fps)
    total = start_seconds + int(seconds)
    h, rest = divmod(total, 3600)
    m, s = divmod(rest, 60)
    whole = int(np.floor(ff + 1e-9))
    sub = int(round((ff - whole) * 1000))
    return f"{h:02d}:{m:02d}:{s:02d}:{whole:02d}.{sub:03d}"


def write_livelink(path, values, *, fps: int = 60, frames=None, header: str = APP_HEADER) -> Path:
    """A take: ``values`` (rows, 61) are the columns after BlendShapeCount in header order.

    ``frames`` gives each row's frame number (fractional allowed); default ``0, 1, 2, ...``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    values = np.asarray(values, dtype=np.float64)
    frames = np.arange(len(values)) if frames is None else frames
    lines = [header]
    for frame, row in zip(frames, values):
        cells = ",".join(f"{v:.6f}" for v in row)
        lines.append(f"{timecode(frame, fps)},{values.shape[1]},{cells}")
    path.write_text("\n".join(lines) + "\n")
    return path


def column_values(rows: int) -> np.ndarray:
    """(rows, 61): weight column k holds k / 100, rotation column j holds 1 + j / 10."""
    weights = np.tile(np.arange(52) / 100.0, (rows, 1))
    rotations = np.tile(1.0 + np.arange(9) / 10.0, (rows, 1))
    return np.concatenate([weights, rotations], axis=1)


def write_obj(path, vertices) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = ["# template", "o face"] + [f"v {x!r} {y!r} {z!r}" for x, y, z in vertices.tolist()]
    lines += ["vn 0 0 1", "f 1 2 3"]
    path.write_text("\n".join(lines) + "\n")
    return path


def write_ply(path, vertices, *, fmt: str = "ascii") -> Path:
    """Vertices (float x, y, z plus a uchar red channel) and one triangle after them."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    header = (f"ply\nformat {fmt} 1.0\ncomment written by adapter_fixtures\n"
              f"element vertex {len(vertices)}\nproperty float x\nproperty float y\n"
              "property float z\nproperty uchar red\nelement face 1\n"
              "property list uchar int vertex_indices\nend_header\n")
    if fmt == "ascii":
        body = "".join(f"{x!r} {y!r} {z!r} 200\n" for x, y, z in vertices.tolist()) + "3 0 1 2\n"
        path.write_text(header + body)
        return path
    endian = {"binary_little_endian": "<", "binary_big_endian": ">"}[fmt]
    body = b"".join(struct.pack(endian + "fffB", x, y, z, 200) for x, y, z in vertices.tolist())
    body += struct.pack(endian + "Biii", 3, 0, 1, 2)
    path.write_bytes(header.encode("ascii") + body)
    return path


def linear_vertex_motion(frames: int, vertices: int, fps: float, *, seed: int = 0):
    """(template, motion): vertex j moves as template[j] + t * velocity[j], t = i / fps."""
    rng = np.random.default_rng(seed)
    template = rng.normal(size=(vertices, 3)).astype(np.float32)
    velocity = rng.normal(size=(vertices, 3)).astype(np.float32)
    t = (np.arange(frames) / fps)[:, None, None]
    return template, (template[None] + t * velocity[None]).astype(np.float32), velocity
