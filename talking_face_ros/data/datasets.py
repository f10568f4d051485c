"""Whole datasets of real captures, loaded one file at a time so that one bad file costs one sample.

Datasets assembled from captures always hold a few broken files: a take cut off mid-write, a WAV
that was never exported, an array saved in another layout. ``load_dataset`` loads every file it
can and lists each one it could not as a ``LoadError`` naming the file and the line (CSV) or
field (array shape, dtype, values, frame count, audio) at fault.

The format loaders (``livelink``, ``etf3d``, ``vertex_sequences``) share the helpers defined
here first: ``FormatError``, WAV reading, safe ``.npy`` reading and the audio/motion pairing.

Audio and motion of one recording must last equally long. Captures differ by a frame or two at
either end; that is absorbed by resampling the motion to exactly the frames that cover the audio
(``sample.frame_count``). A difference above ``MAX_DURATION_MISMATCH`` seconds means the two
files do not belong together (wrong WAV, wrong frame rate) and is an error, never a warning:
a silently misaligned pair teaches a model the wrong lip sync.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..speech.audio import load_wav, resample_audio
from .resample import resample_motion
from .sample import MotionSample, frame_count

# 0.25 s: several frames more than capture jitter at any rate, less than one spoken syllable.
MAX_DURATION_MISMATCH = 0.25
FORMATS: tuple[str, ...] = ("livelink", "etf3d", "vertices")


class FormatError(ValueError):
    """A malformed input file, with where in it: ``"line 7, column 20 (JawOpen)"`` or a field."""

    def __init__(self, path, line_or_field: str, message: str):
        self.path = Path(path)
        self.line_or_field = line_or_field
        self.message = message
        super().__init__(f"{self.path}: {line_or_field}: {message}")


@dataclass(frozen=True)
class LoadError:
    path: Path
    line_or_field: str  # "line 7, column 20 (JawOpen)", "shape", "audio", "frame count", ...
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.line_or_field}: {self.message}"


@dataclass
class LoadReport:
    samples: list[MotionSample] = field(default_factory=list)
    errors: list[LoadError] = field(default_factory=list)
    format: str = ""  # the format that was loaded (after auto-detection)


# ---------------------------------------------------------------- helpers shared by the loaders


def read_wav(path, *, sample_rate: int | None = None) -> tuple[np.ndarray, int]:
    """Mono float32 samples in [-1, 1] and their rate; ``sample_rate`` resamples (soxr)."""
    path = Path(path)
    try:
        audio, rate = load_wav(path)
    except Exception as err:  # damaged headers raise assorted types (scipy: even UnboundLocalError)
        raise FormatError(path, "audio", f"not a readable WAV file ({err})") from None
    if not np.all(np.isfinite(audio)):
        raise FormatError(path, "audio", "the WAV holds NaN or infinite samples")
    if sample_rate is not None and sample_rate != rate:
        audio, rate = resample_audio(audio, rate, sample_rate), sample_rate
    return audio, int(rate)


def read_array(path) -> np.ndarray:
    """A numeric ``.npy`` array; object (pickled) arrays are refused, never unpickled."""
    path = Path(path)
    with open(path, "rb") as f:
        if f.read(6) != b"\x93NUMPY":  # np.load would take anything else for a pickle
            raise FormatError(path, "file", "not a valid .npy file (no NUMPY magic at the start)")
    try:
        array = np.load(path, allow_pickle=False)
    except ValueError as err:
        if "Object arrays" in str(err):
            raise FormatError(path, "dtype", "object array (pickled data) refused; "
                              "save a plain numeric array with np.save") from None
        raise FormatError(path, "file", f"not a valid .npy file ({err})") from None
    except (OSError, EOFError) as err:
        raise FormatError(path, "file", f"not a valid .npy file ({err})") from None
    if array.dtype.kind not in "fiu":
        raise FormatError(path, "dtype", f"expected numbers, found dtype {array.dtype}")
    return array


def check_finite(array: np.ndarray, path, what: str) -> None:
    """FormatError naming the first frame with NaN or infinity."""
    bad = ~np.isfinite(array.reshape(len(array), -1)).all(axis=1)
    if bad.any():
        frame = int(np.argmax(bad))
        raise FormatError(path, "values", f"{what} holds NaN or infinity (first at frame {frame})")


def check_weights(weights: np.ndarray, path) -> None:
    """Blendshape weights live in [0, 1]; far outside means another scale (Unity's 0..100)."""
    check_finite(weights, path, "blendshape weights")
    low, high = float(weights.min()), float(weights.max())
    if low < -0.25 or high > 1.25:
        raise FormatError(path, "values", f"blendshape weights span [{low:.3g}, {high:.3g}]; "
                          "ARKit weights lie in [0, 1]")


def align_to_audio(motion: np.ndarray, source_fps: float, fps: float, audio_seconds: float, *,
                   path, max_mismatch: float) -> tuple[np.ndarray, float]:
    """Motion resampled to ``fps`` covering exactly the audio, and the duration mismatch (s).

    ``motion`` frame ``i`` depicts time ``i / source_fps`` from the first audio sample.
    """
    motion_seconds = len(motion) / source_fps
    mismatch = motion_seconds - audio_seconds
    if abs(mismatch) > max_mismatch:
        raise FormatError(
            path, "frame count",
            f"{len(motion)} frames at {source_fps:g} fps last {motion_seconds:.3f} s but the audio "
            f"lasts {audio_seconds:.3f} s (more than {max_mismatch:g} s apart: wrong WAV or fps?)",
        )
    frames = frame_count(audio_seconds, fps)
    return resample_motion(motion, source_fps, fps, frames=frames), float(mismatch)


def find_audio(motion_path: Path, wav_path=None) -> Path:
    """The WAV that goes with a motion file: given, beside it, or in a sibling audio folder.

    Sibling folders cover the layouts the public releases use: FaceFormer's ``vertices_npy/`` +
    ``wav/`` and EmoTalk's ``blendshape/`` + ``audio/``.
    """
    if wav_path is not None:
        candidates = [Path(wav_path)]
    else:
        name = motion_path.stem + ".wav"
        candidates = [motion_path.with_suffix(".wav")]
        candidates += [motion_path.parent.parent / d / name for d in ("wav", "audio")]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    raise FormatError(motion_path, "audio", "missing WAV; looked for "
                      + ", ".join(str(c) for c in candidates))


# ---------------------------------------------------------------- whole datasets

_VERTEX_NAME = re.compile(r"^(FaceTalk_\d{6}_\d{5}_TA_sentence\d{2}|[FM]\d_e?\d{2})$")


def _loaders():
    # Imported here rather than at the top: the loader modules import the helpers above.
    from . import etf3d, livelink, vertex_sequences

    return {
        "livelink": (livelink.find_takes, livelink.load_livelink),
        "etf3d": (etf3d.find_sequences, etf3d.load_etf3d),
        "vertices": (vertex_sequences.find_sequences, vertex_sequences.load_vertex_sequence),
    }


def detect_format(root) -> str:
    """Which format a directory holds, from its contents (ValueError when none or several)."""
    from .livelink import find_takes

    root = Path(root)
    found = set()
    if find_takes(root):
        found.add("livelink")
    npys = sorted(root.rglob("*.npy"))
    if any(p.parent.name == "vertices_npy" or _VERTEX_NAME.match(p.stem) for p in npys):
        found.add("vertices")
    elif npys:
        found.add("etf3d")
    if len(found) != 1:
        what = " and ".join(sorted(found)) if found else "no Live Link Face CSV and no .npy file"
        raise ValueError(f"{root}: found {what}; pass format= one of {', '.join(FORMATS)}")
    return found.pop()


def load_dataset(
    root,
    *,
    format: str = "auto",  # "auto" | "livelink" | "etf3d" | "vertices"
    fps: float = 30.0,  # motion frame rate of the returned samples
    sample_rate: int | None = None,  # resample audio to this rate; None keeps each file's rate
    source_fps: float | None = None,  # frame rate of the files when names/timecodes cannot tell
    max_duration_mismatch: float = MAX_DURATION_MISMATCH,  # seconds audio and motion may differ
) -> LoadReport:
    """Every sequence under ``root`` that loads, and a LoadError for each one that does not."""
    root = Path(root)
    if not root.is_dir():
        raise ValueError(f"{root}: not a directory")
    if format == "auto":
        format = detect_format(root)
    if format not in FORMATS:
        raise ValueError(f"unknown format {format!r}; expected auto or one of {', '.join(FORMATS)}")
    find, load = _loaders()[format]
    report = LoadReport(format=format)
    first_by_name: dict[str, Path] = {}
    for path in find(root):
        try:
            sample = load(path, fps=fps, sample_rate=sample_rate, source_fps=source_fps,
                          max_duration_mismatch=max_duration_mismatch)
        except FormatError as err:
            report.errors.append(LoadError(err.path, err.line_or_field, err.message))
            continue
        except (ValueError, OSError) as err:  # anything else one file can do wrong
            report.errors.append(LoadError(Path(path), "file", str(err)))
            continue
        if sample.name in first_by_name:
            report.errors.append(LoadError(Path(path), "name", f"sample name {sample.name!r} "
                                           f"already used by {first_by_name[sample.name]}"))
            continue
        first_by_name[sample.name] = Path(path)
        report.samples.append(sample)
    return report
