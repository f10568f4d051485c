"""WAV input/output and resampling: every audio path in the project goes through these calls.

Reading uses scipy.io.wavfile (PCM 8/16/24/32-bit and float32/64, plain or WAVE_FORMAT_EXTENSIBLE);
resampling uses soxr. What is added here is only the policy: always float32 mono in [-1, 1], and
errors that name the file instead of a bare struct or EOF message.
"""
from __future__ import annotations

import struct
import warnings
from pathlib import Path

import numpy as np
import soxr
from scipy.io import wavfile


def to_mono(audio: np.ndarray) -> np.ndarray:
    """(samples,) or (samples, channels) -> (samples,) float32, channels averaged."""
    x = np.asarray(audio)
    if x.ndim == 1:
        return x.astype(np.float32, copy=False)
    if x.ndim != 2:
        raise ValueError(f"audio must be (samples,) or (samples, channels), got shape {x.shape}")
    return x.mean(axis=1, dtype=np.float64).astype(np.float32)


def _to_float(x: np.ndarray, path: Path) -> np.ndarray:
    """Integer PCM -> float in [-1, 1) by its full scale; float data passes through."""
    if x.dtype == np.uint8:  # 8-bit WAV is unsigned with 128 as zero
        return (x.astype(np.float32) - 128.0) / 128.0
    if x.dtype == np.int16:
        return x.astype(np.float32) / 32768.0
    if x.dtype == np.int32:  # 32-bit PCM, and 24-bit PCM which scipy left-justifies into int32
        return (x.astype(np.float64) / 2147483648.0).astype(np.float32)
    if x.dtype in (np.float32, np.float64):
        return x.astype(np.float32)
    raise ValueError(f"{path}: unsupported WAV sample type {x.dtype}")


def read_wav(path) -> tuple[np.ndarray, int]:
    """The samples of a WAV file as stored, ``(samples, channels)`` in the file's sample type, and
    its sample rate: for callers that must keep the channels (the WAV publisher).

    Missing files raise FileNotFoundError; anything that is not a complete WAV file (wrong
    magic, cut header, data shorter than the header promises) raises ValueError naming the file.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"WAV file not found: {path}")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            rate, data = wavfile.read(path)
        # scipy raises UnboundLocalError for a RIFF/WAVE file without a fmt chunk.
        # ZeroDivisionError: a fmt chunk with zero channels.
        except (ValueError, struct.error, EOFError, IndexError, UnboundLocalError, ZeroDivisionError) as e:
            raise ValueError(f"{path}: not a readable WAV file ({e})") from e
    for w in caught:
        message = str(w.message)
        if "EOF" in message or "prematurely" in message:  # scipy returns what it could read
            raise ValueError(f"{path}: truncated WAV file ({message})")
        # Other warnings (e.g. a LIST metadata chunk scipy skips) are harmless.
    if data.size == 0:
        raise ValueError(f"{path}: WAV file holds no samples")
    if rate <= 0:
        raise ValueError(f"{path}: invalid sample rate {rate}")
    _to_float(data[:0], path)  # refuses sample types we cannot scale, before anyone uses them
    return (data[:, None] if data.ndim == 1 else data), int(rate)


def load_wav(path) -> tuple[np.ndarray, int]:
    """Read a WAV file as float32 mono in [-1, 1] and its sample rate (errors as :func:`read_wav`)."""
    data, rate = read_wav(path)
    return to_mono(_to_float(data, Path(path))), rate


def to_int16(data: np.ndarray, path) -> np.ndarray:
    """Samples of :func:`read_wav` as 16-bit PCM (scaled by full scale, clipped); ValueError for NaN/inf."""
    if data.dtype == np.int16:
        return np.ascontiguousarray(data)
    x = _to_float(data, Path(path))
    if not np.all(np.isfinite(x)):
        raise ValueError(f"{path}: WAV file holds NaN or infinite samples")
    return np.round(np.clip(x.astype(np.float64), -1.0, 32767 / 32768) * 32768.0).astype(np.int16)


def save_wav(path, audio: np.ndarray, sample_rate: int) -> Path:
    """Write mono audio (float in [-1, 1], clipped) as 16-bit PCM; returns the path."""
    path = Path(path)
    x = to_mono(audio)
    if not np.all(np.isfinite(x)):
        raise ValueError(f"{path}: audio contains NaN or infinity")
    pcm = np.round(np.clip(x, -1.0, 32767 / 32768) * 32768.0).astype(np.int16)
    path.parent.mkdir(parents=True, exist_ok=True)
    wavfile.write(path, int(sample_rate), pcm)
    return path


def resample_audio(audio: np.ndarray, src_rate: int, dst_rate: int) -> np.ndarray:
    """Band-limited resampling with soxr (high quality); float32 mono in, float32 mono out."""
    if src_rate <= 0 or dst_rate <= 0:
        raise ValueError(f"sample rates must be positive, got {src_rate} -> {dst_rate}")
    x = to_mono(audio)
    if src_rate == dst_rate:
        return x.copy()
    return soxr.resample(x, src_rate, dst_rate, quality="HQ").astype(np.float32, copy=False)
