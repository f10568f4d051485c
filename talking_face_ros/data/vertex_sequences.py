"""VOCASET and BIWI vertex sequences, laid out as FaceFormer / CodeTalker-style training reads them.

Layout::

    <root>/vertices_npy/<name>.npy   (frames, V*3) or (frames, V, 3) float, dataset units
    <root>/wav/<name>.wav
    <root>/templates/<subject>.npy | .obj | .ply   the subject's neutral mesh (optional)

* VOCASET (FLAME topology, V = 5023) is captured at 60 fps (FaceFormer keeps every other frame
  for 30); names are ``<subject>_sentence<NN>``, e.g. ``FaceTalk_170725_00137_TA_sentence01``.
* BIWI (V = 23370) is at 25 fps; names are ``<subject>_e<NN>`` (``F2_e01``: subject F1-F8 or
  M1-M6, ``e`` for the emotional take of sentence NN; a name without ``e`` is the neutral take).

Other names load when ``source_fps`` is given; the subject is then the name up to its last ``_``.

Templates: those repositories ship all subjects' templates in one Python pickle
(``templates.pkl``). This project never unpickles (unpickling runs code from the file), so
convert it once, yourself, from a copy you trust::

    import pickle, numpy as np, pathlib
    with open("templates.pkl", "rb") as f:
        templates = pickle.load(f, encoding="latin1")
    pathlib.Path("templates").mkdir(exist_ok=True)
    for subject, mesh in templates.items():
        np.save(f"templates/{subject}.npy", np.asarray(mesh, dtype=np.float32).reshape(-1, 3))

``.obj`` (``v x y z`` lines) and ``.ply`` (ASCII, binary little- or big-endian) templates are
read by the small parsers below: only vertex positions are needed, which does not warrant a mesh
library dependency.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .datasets import (
    MAX_DURATION_MISMATCH, FormatError, align_to_audio, check_finite, find_audio, read_array,
    read_wav,
)
from .sample import MotionSample

# dataset -> (capture fps, vertices per frame)
DATASETS: dict[str, tuple[float, int]] = {"vocaset": (60.0, 5023), "biwi": (25.0, 23370)}
_VOCASET_NAME = re.compile(r"^(?P<subject>FaceTalk_\d{6}_\d{5}_TA)_sentence(?P<sentence>\d{2})$")
_BIWI_NAME = re.compile(r"^(?P<subject>[FM]\d)_(?P<emotional>e?)(?P<sentence>\d{2})$")
TEMPLATE_SUFFIXES = (".npy", ".obj", ".ply")


@dataclass(frozen=True)
class SequenceName:
    dataset: str | None  # "vocaset", "biwi" or None
    subject: str
    sentence: int | None
    emotional: bool | None  # BIWI only


def parse_sequence_name(stem: str) -> SequenceName:
    if match := _VOCASET_NAME.match(stem):
        return SequenceName("vocaset", match["subject"], int(match["sentence"]), None)
    if match := _BIWI_NAME.match(stem):
        return SequenceName("biwi", match["subject"], int(match["sentence"]),
                            match["emotional"] == "e")
    return SequenceName(None, stem.rsplit("_", 1)[0], None, None)


# ---------------------------------------------------------------- templates


def _read_obj(path: Path) -> np.ndarray:
    vertices = []
    with open(path, encoding="utf-8", errors="replace") as f:
        for line_number, line in enumerate(f, start=1):
            words = line.split()
            if not words or words[0] != "v":
                continue
            try:
                vertices.append([float(w) for w in words[1:4]])
            except ValueError:
                raise FormatError(path, f"line {line_number}", f"vertex {line.strip()!r} "
                                  "holds a value that is not a number") from None
            if len(vertices[-1]) != 3:
                raise FormatError(path, f"line {line_number}", "vertex with fewer than 3 values")
    return np.asarray(vertices, dtype=np.float32).reshape(-1, 3)


_PLY_TYPES = {"char": "i1", "int8": "i1", "uchar": "u1", "uint8": "u1", "short": "i2",
              "int16": "i2", "ushort": "u2", "uint16": "u2", "int": "i4", "int32": "i4",
              "uint": "u4", "uint32": "u4", "float": "f4", "float32": "f4", "double": "f8",
              "float64": "f8"}
_PLY_ENDIAN = {"binary_little_endian": "<", "binary_big_endian": ">"}


def _read_ply(path: Path) -> np.ndarray:
    data = path.read_bytes()
    end = data.find(b"end_header")
    if not data.startswith(b"ply") or end < 0:
        raise FormatError(path, "header", "not a PLY file (no 'ply' ... 'end_header' header)")
    body = data.index(b"\n", end) + 1 if b"\n" in data[end:] else len(data)
    fmt, elements = None, []
    for line in data[:end].decode("ascii", errors="replace").splitlines()[1:]:
        words = line.split()
        if not words or words[0] in ("comment", "obj_info"):
            continue
        if words[0] == "format" and len(words) >= 2:
            fmt = words[1]
        elif words[0] == "element" and len(words) == 3 and words[2].isdigit():
            elements.append((words[1], int(words[2]), []))
        elif words[0] == "property" and elements:
            elements[-1][2].append(words[1:])
        else:
            raise FormatError(path, "header", f"unexpected header line {line!r}")
    if not elements or elements[0][0] != "vertex":
        raise FormatError(path, "header", "the vertex element must come first")
    _, count, properties = elements[0]
    if any(p[0] == "list" or p[0] not in _PLY_TYPES or len(p) != 2 for p in properties):
        raise FormatError(path, "header", "vertex properties must be plain scalars")
    names = [p[1] for p in properties]
    if not {"x", "y", "z"} <= set(names):
        raise FormatError(path, "header", "vertex element lacks x, y or z")
    xyz = [names.index(a) for a in "xyz"]
    if fmt == "ascii":
        lines = data[body:].decode("ascii", errors="replace").split("\n")[:count]
        try:
            table = np.array([line.split() for line in lines], dtype=np.float64)
        except ValueError:
            raise FormatError(path, "vertices", "vertex lines are not all numbers of equal "
                              "count") from None
        if table.shape != (count, len(names)):
            raise FormatError(path, "vertices", f"expected {count} vertex lines of "
                              f"{len(names)} values, found {table.shape}")
        return table[:, xyz].astype(np.float32)
    if fmt not in _PLY_ENDIAN:
        raise FormatError(path, "header", f"unknown PLY format {fmt!r}")
    dtype = np.dtype([(n, _PLY_ENDIAN[fmt] + _PLY_TYPES[t]) for t, n in properties])
    if len(data) - body < count * dtype.itemsize:
        raise FormatError(path, "vertices", f"file ends before its {count} vertices")
    table = np.frombuffer(data, dtype=dtype, count=count, offset=body)
    return np.stack([table[a] for a in "xyz"], axis=1).astype(np.float32)


def read_template(path) -> np.ndarray:
    """A neutral mesh's vertex positions ``(V, 3)`` float32 from ``.npy``, ``.obj`` or ``.ply``."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".npy":
        array = read_array(path)
        if array.ndim == 1 or (array.ndim == 2 and array.shape[0] == 1):
            array = array.reshape(-1)
            if array.size % 3:
                raise FormatError(path, "shape", f"{array.size} values are not V*3 coordinates")
        elif array.ndim != 2 or array.shape[1] != 3:
            raise FormatError(path, "shape", f"expected (V, 3) vertices, found {array.shape}")
        vertices = array.reshape(-1, 3).astype(np.float32)
    elif suffix == ".obj":
        vertices = _read_obj(path)
    elif suffix == ".ply":
        vertices = _read_ply(path)
    else:
        raise FormatError(path, "file", "templates must be .npy, .obj or .ply")
    if len(vertices) == 0:
        raise FormatError(path, "vertices", "the template has no vertices")
    check_finite(vertices[None], path, "template vertices")
    return vertices


def find_template(subject: str, where) -> Path | None:
    """``where/<subject>.npy|.obj|.ply`` if ``where`` is a folder, ``where`` itself if a file."""
    where = Path(where)
    if where.is_file():
        return where
    for suffix in TEMPLATE_SUFFIXES:
        candidate = where / f"{subject}{suffix}"
        if candidate.is_file():
            return candidate
    return None


# ---------------------------------------------------------------- sequences


def find_sequences(root) -> list[Path]:
    """``.npy`` files in ``vertices_npy`` folders under ``root``, or all when there are none."""
    root = Path(root)
    npys = sorted(root.rglob("*.npy"))
    in_folders = [p for p in npys if p.parent.name == "vertices_npy"]
    return in_folders or [p for p in npys if p.parent.name != "templates"]


def load_vertex_sequence(
    npy_path,
    *,
    wav_path=None,  # default: same stem in a sibling wav/ (or audio/) folder, or beside the .npy
    template=None,  # a template file, or a folder of <subject>.npy/.obj/.ply; None: <root>/templates
    fps: float = 30.0,  # motion frame rate of the sample
    source_fps: float | None = None,  # frame rate of the .npy; None: from the dataset (60 / 25)
    sample_rate: int | None = None,  # resample the audio; None keeps the file's rate
    max_duration_mismatch: float = MAX_DURATION_MISMATCH,  # seconds audio and motion may differ
) -> MotionSample:
    """One vertex sequence with its audio and (when found) its subject's template."""
    path = Path(npy_path)
    name = parse_sequence_name(path.stem)
    expected_vertices = None
    if name.dataset is not None:
        dataset_fps, expected_vertices = DATASETS[name.dataset]
        source_fps = source_fps or dataset_fps
    if source_fps is None:
        raise FormatError(path, "file name", "not a VOCASET or BIWI name, so the frame rate is "
                          "unknown; pass source_fps")
    array = read_array(path)
    if array.ndim == 2 and array.shape[1] % 3 == 0 and array.shape[1] > 0:
        array = array.reshape(len(array), -1, 3)
    if array.ndim != 3 or array.shape[2] != 3 or len(array) == 0:
        raise FormatError(path, "shape", f"expected (frames, V*3) or (frames, V, 3) vertices, "
                          f"found {array.shape}")
    if expected_vertices is not None and array.shape[1] != expected_vertices:
        raise FormatError(path, "shape", f"{name.dataset} meshes have {expected_vertices} "
                          f"vertices, found {array.shape[1]}")
    check_finite(array, path, "vertices")
    template_path = find_template(name.subject, template or path.parent.parent / "templates")
    mesh = None
    if template_path is not None:
        mesh = read_template(template_path)
        if mesh.shape != array.shape[1:]:
            raise FormatError(template_path, "template", f"template has {len(mesh)} vertices, "
                              f"the sequence {path.name} has {array.shape[1]}")
    wav = find_audio(path, wav_path)
    audio, rate = read_wav(wav, sample_rate=sample_rate)
    motion, mismatch = align_to_audio(array.astype(np.float32), source_fps, fps, len(audio) / rate,
                                      path=path, max_mismatch=max_duration_mismatch)
    return MotionSample(
        name=path.stem, audio=audio, sample_rate=rate, fps=fps, vertices=motion, template=mesh,
        speaker=name.subject,
        meta={"format": "vertices", "dataset": name.dataset, "source": str(path),
              "audio_source": str(wav), "template_source": str(template_path) if mesh is not None
              else None, "sentence_id": name.sentence, "emotional": name.emotional,
              "source_fps": source_fps, "duration_mismatch": mismatch},
    )
