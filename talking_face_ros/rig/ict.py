"""ICT-FaceKit as a :class:`LinearRig`: from the packed ``.npz`` or from the public repository's OBJs.

ICT-FaceKit (USC ICT, MIT licence) names its 53 expressions after ARKit's, with ``_L``/``_R``
for Left/Right (``_L`` = the subject's left = +x, as in ARKit) and with browInnerUp and cheekPuff
split into two halves. ARKit's tongueOut has no ICT shape, so it moves nothing here.

Which parts of the 26719-vertex model go into the rig (``parts=``): by default the face area,
the mouth socket, gums and tongue, teeth and eyeballs. Those make an open mouth dark and filled
and the eyes solid. Left out by default: the head and neck (behind the face, only adds
vertices), the eye sockets, and the lacrimal fluid, eye blend, occlusion and eyelash meshes
(thin transparent-textured layers that an untextured renderer would draw as opaque films over
the eyes).

Regions (vertex masks, documented so they can be reproduced): ``face`` is the face area
[0, 9409); ``lips`` are face-area vertices within 2.5 cm of the lip midline that the lip-shaping
expressions (mouthFunnel, mouthPucker, mouthRollUpper, mouthRollLower) move by at least half of
their largest displacement; ``upper_face`` are face-area vertices above the nose tip that some
brow or eye expression moves by at least 0.02 cm; ``eyes`` are the eyeballs plus face-area
vertices that eyeBlink or eyeSquint move by at least 0.1 cm (the lids). (The metrics use their
own, finer masks: :mod:`talking_face_ros.metrics.regions`.)
"""
from __future__ import annotations

import json
import zipfile
import zlib
from pathlib import Path

import numpy as np

from ..arkit import ARKIT_NAMES, INDEX
from ..lip_geometry import LOWER_LIP_VERTEX, UPPER_LIP_VERTEX
from .linear_rig import LinearRig

# ARKit shape -> the ICT expressions it drives (weight 1 each). The rule: ARKit's Left/Right
# suffix becomes ICT's _L/_R; whole-mouth and whole-jaw sideways moves keep their names; the
# two shapes ICT splits drive both halves; tongueOut has no ICT shape.
_WHOLE = ("mouthLeft", "mouthRight", "jawLeft", "jawRight")
_SPLIT = ("browInnerUp", "cheekPuff")


def _ict_for(arkit: str) -> tuple[str, ...]:
    if arkit == "tongueOut":
        return ()
    if arkit in _SPLIT:
        return (arkit + "_L", arkit + "_R")
    if arkit not in _WHOLE and arkit.endswith("Left"):
        return (arkit[:-4] + "_L",)
    if arkit not in _WHOLE and arkit.endswith("Right"):
        return (arkit[:-5] + "_R",)
    return (arkit,)


ARKIT_TO_ICT: dict[str, tuple[str, ...]] = {name: _ict_for(name) for name in ARKIT_NAMES}
ICT_EXPRESSIONS: tuple[str, ...] = tuple(sorted({n for v in ARKIT_TO_ICT.values() for n in v}))

# Vertex ranges of the ICT-FaceKit generic model (from its README).
ICT_NUM_VERTICES = 26719
ICT_PARTS: dict[str, tuple[int, int]] = {
    "face": (0, 9409),
    "head_neck": (9409, 11248),
    "mouth_socket": (11248, 13294),
    "eye_sockets": (13294, 14062),
    "gums_tongue": (14062, 17039),
    "teeth": (17039, 21451),
    "eyeballs": (21451, 24591),
    "eye_films": (24591, 25351),  # lacrimal fluid, eye blend, eye occlusion
    "eyelashes": (25351, 26719),
}
DEFAULT_PARTS = ("face", "mouth_socket", "gums_tongue", "teeth", "eyeballs")
_EYEBALL_RANGES = ((21451, 23021), (23021, 24591))  # left, right: sclera + iris spheres
_IRIS_DEGREES, _PUPIL_DEGREES = 32.0, 12.0  # angular radii about the eye's axis

# Albedo per part (untextured, just enough to read as a face).
_COLORS = {
    "face": (0.86, 0.68, 0.58), "head_neck": (0.86, 0.68, 0.58), "lips": (0.78, 0.45, 0.45),
    "mouth_socket": (0.35, 0.12, 0.13), "eye_sockets": (0.70, 0.50, 0.45),
    "gums_tongue": (0.80, 0.40, 0.42), "teeth": (0.95, 0.93, 0.86), "eyeballs": (0.96, 0.96, 0.96),
    "iris": (0.30, 0.42, 0.30), "pupil": (0.05, 0.04, 0.04), "eye_films": (0.9, 0.9, 0.9),
    "eyelashes": (0.1, 0.08, 0.07),
}
_LIP_SHAPES = ("mouthFunnel", "mouthPucker", "mouthRollUpper", "mouthRollLower")


def arkit_to_ict_matrix(ict_names) -> np.ndarray:
    """``(52, K)`` matrix with ``ict_weights = arkit_weights @ M`` for the ICT names given."""
    col = {n: i for i, n in enumerate(ict_names)}
    m = np.zeros((len(ARKIT_NAMES), len(col)), dtype=np.float32)
    for a, targets in ARKIT_TO_ICT.items():
        for t in targets:
            if t in col:
                m[INDEX[a], col[t]] = 1.0
    return m


def load_packed_ict(npz_path, *, parts=DEFAULT_PARTS) -> LinearRig:
    """The rig from the packed file (see its README): polygons triangulated, deltas in ARKit order."""
    path = Path(npz_path)
    keys = ("neutral", "faces", "ict_names", "deltas", "arkit52", "arkit_to_ict")
    try:
        with np.load(path, allow_pickle=False) as d:  # a plain .npy array has no "with": TypeError
            missing = [k for k in keys if k not in d.files]
            if missing:
                raise ValueError(f"missing field(s) {missing}")
            a = {k: d[k] for k in keys}
    except FileNotFoundError:
        raise
    except (OSError, ValueError, EOFError, KeyError, TypeError, AttributeError, zipfile.BadZipFile,
            zlib.error) as e:
        raise ValueError(f"{path}: not a packed ICT-FaceKit rig ({e})") from e
    if tuple(a["arkit52"].tolist()) != ARKIT_NAMES:
        raise ValueError(f"{path}: arkit52 is not the ARKit name list in ARKIT_NAMES order")
    k, v = len(a["ict_names"]), len(a["neutral"])
    if a["deltas"].shape != (k, v, 3) or a["arkit_to_ict"].shape != (len(ARKIT_NAMES), k):
        raise ValueError(f"{path}: deltas {a['deltas'].shape} / arkit_to_ict "
                         f"{a['arkit_to_ict'].shape} do not fit {k} expressions, {v} vertices")
    deltas = np.einsum("ak,kvc->avc", a["arkit_to_ict"].astype(np.float32),
                       a["deltas"].astype(np.float32), optimize=True)
    return _build(a["neutral"], a["faces"], deltas, parts=parts, name="ict_facekit", source=path)


def from_ict_facekit(folder, *, parts=DEFAULT_PARTS) -> LinearRig:
    """The rig from a local copy of ICT-FaceKit's ``FaceXModel`` folder (or the repository root).

    Reads ``generic_neutral_mesh.obj``, the expression list of ``vertex_indices.json``
    (``"expressions"``; all 53 names when the file is absent) and one OBJ per expression,
    each a full copy of the mesh in the expression's pose.
    """
    folder = Path(folder)
    if (folder / "FaceXModel").is_dir():
        folder = folder / "FaceXModel"
    neutral, polygons = read_obj(folder / "generic_neutral_mesh.obj")
    names = list(ICT_EXPRESSIONS)
    index_file = folder / "vertex_indices.json"
    if index_file.is_file():
        try:
            names = json.loads(index_file.read_text())["expressions"]
        except (ValueError, KeyError, TypeError) as e:
            raise ValueError(f"{index_file}: no 'expressions' list ({e})") from e
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise ValueError(f"{index_file}: 'expressions' must be a list of names")
    ict = np.zeros((len(names), len(neutral), 3), dtype=np.float32)
    for i, name in enumerate(names):
        verts, _ = read_obj(folder / f"{name}.obj", faces=False)
        if verts.shape != neutral.shape:
            raise ValueError(f"{folder / (name + '.obj')}: {len(verts)} vertices, "
                             f"the neutral mesh has {len(neutral)}")
        ict[i] = verts - neutral
    deltas = np.einsum("ak,kvc->avc", arkit_to_ict_matrix(names), ict, optimize=True)
    return _build(neutral, polygons, deltas, parts=parts, name="ict_facekit", source=folder)


def read_obj(path, *, faces: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """``(vertices (V, 3) float32, polygons (F, N) int32 padded with -1)`` from a Wavefront OBJ.

    Only ``v`` and ``f`` records matter here (texture and normal indices after ``/`` are
    ignored); polygon indices are 1-based in the file and 0-based in the result.
    """
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError as e:
        raise FileNotFoundError(f"{path}: cannot read ({e})") from e
    v_rows, f_rows = [], []
    for number, line in enumerate(lines, 1):
        if line.startswith("v "):
            v_rows.append((number, line[2:]))
        elif faces and line.startswith("f "):
            f_rows.append((number, line[2:]))
    try:
        verts = np.array(" ".join(t for _, t in v_rows).split(), dtype=np.float32)
    except ValueError as e:
        raise ValueError(f"{path}: bad vertex record ({e})") from e
    if len(verts) != 3 * len(v_rows):
        bad = next(n for n, t in v_rows if len(t.split()) != 3)
        raise ValueError(f"{path}, line {bad}: a vertex needs exactly 3 coordinates")
    verts = verts.reshape(-1, 3)
    if not np.isfinite(verts).all():
        raise ValueError(f"{path}: vertex coordinates contain NaN or infinity")
    if not faces:
        return verts, np.zeros((0, 3), dtype=np.int32)
    polys = []
    for number, text in f_rows:
        try:
            idx = [int(tok.split("/")[0]) - 1 for tok in text.split()]
        except ValueError:
            raise ValueError(f"{path}, line {number}: bad face record {text!r}") from None
        if len(idx) < 3 or min(idx) < 0 or max(idx) >= len(verts):
            raise ValueError(f"{path}, line {number}: face needs >= 3 vertex indices in "
                             f"1..{len(verts)}")
        polys.append(idx)
    width = max((len(p) for p in polys), default=3)
    out = np.full((len(polys), width), -1, dtype=np.int32)
    for i, p in enumerate(polys):
        out[i, :len(p)] = p
    return verts, out


def triangulate(polygons: np.ndarray) -> np.ndarray:
    """Fan-triangulate ``(F, N)`` polygons padded with -1 (quads -> 2 triangles)."""
    polygons = np.asarray(polygons)
    tris = []
    for k in range(1, polygons.shape[1] - 1):
        t = polygons[:, [0, k, k + 1]]
        tris.append(t[(t >= 0).all(axis=1)])
    return np.concatenate(tris).astype(np.int32) if tris else np.zeros((0, 3), np.int32)


def _build(neutral, polygons, deltas, *, parts, name, source) -> LinearRig:
    neutral = np.asarray(neutral, dtype=np.float32)
    v = len(neutral)
    tris = triangulate(polygons)
    if tris.size and tris.max() >= v:
        raise ValueError(f"{source}: faces index vertex {tris.max()} of {v}")
    full_model = v == ICT_NUM_VERTICES
    part_of = np.full(v, "face", dtype=object)
    if full_model:
        for part, (lo, hi) in ICT_PARTS.items():
            part_of[lo:hi] = part
        unknown = [p for p in parts if p not in ICT_PARTS]
        if unknown:
            raise ValueError(f"unknown ICT part(s) {unknown}; known: {', '.join(ICT_PARTS)}")
    face_n = ICT_PARTS["face"][1] if full_model else v
    regions = _regions(neutral, deltas, face_n, full_model)
    colors = np.array([_COLORS[p] for p in part_of], dtype=np.float32)
    if full_model:
        _paint_eyes(neutral, colors)
    _paint_lips(neutral, deltas, face_n, full_model, colors)
    rig = LinearRig(neutral=neutral, triangles=tris, deltas=deltas, regions=regions,
                    name=name, units="cm", colors=colors)
    if not full_model:
        return rig
    keep = np.concatenate([np.arange(*ICT_PARTS[p]) for p in parts])
    out = rig.subset(keep)
    out.name = name
    return out


def _paint_eyes(neutral, colors) -> None:
    """Iris and pupil as discs about each eyeball's axis (the model's texture is not shipped)."""
    for lo, hi in _EYEBALL_RANGES:
        p = neutral[lo:hi].astype(np.float64)
        # Least-squares sphere: |p|^2 = 2 c.p + k, radius^2 = k + |c|^2.
        fit = np.linalg.lstsq(np.c_[2 * p, np.ones(len(p))], (p * p).sum(axis=1), rcond=None)[0]
        r = p - fit[:3]
        axis = r[np.argmax(p[:, 2])] / np.linalg.norm(r[np.argmax(p[:, 2])])  # looks along +z
        angle = np.degrees(np.arccos(np.clip((r @ axis) / np.linalg.norm(r, axis=1), -1, 1)))
        colors[lo:hi][angle < _IRIS_DEGREES] = _COLORS["iris"]
        colors[lo:hi][angle < _PUPIL_DEGREES] = _COLORS["pupil"]


def _paint_lips(neutral, deltas, face_n, full_model, colors) -> None:
    """Lip colour fading in with how much the lip-shaping expressions move the surface."""
    motion = np.linalg.norm(deltas[[INDEX[n] for n in _LIP_SHAPES], :face_n], axis=2).max(axis=0)
    share = motion / max(float(motion.max()), 1e-9)
    alpha = np.clip((share - 0.55) / 0.3, 0.0, 1.0)
    if full_model:
        mid = neutral[[UPPER_LIP_VERTEX, LOWER_LIP_VERTEX]].mean(axis=0)
        alpha[np.linalg.norm(neutral[:face_n] - mid, axis=1) > 2.5] = 0.0
    alpha = (alpha * alpha * (3 - 2 * alpha))[:, None]
    colors[:face_n] = (1 - alpha) * colors[:face_n] + alpha * np.array(_COLORS["lips"])


def _regions(neutral, deltas, face_n, full_model) -> dict[str, np.ndarray]:
    face = np.arange(face_n, dtype=np.int32)
    moved = np.linalg.norm(deltas[:, :face_n], axis=2)  # (52, face_n)

    def most(names):
        return moved[[INDEX[n] for n in names]].max(axis=0)

    regions = {"face": face}
    if full_model:
        mid = neutral[[UPPER_LIP_VERTEX, LOWER_LIP_VERTEX]].mean(axis=0)
        regions["lip_midline"] = np.array([UPPER_LIP_VERTEX, LOWER_LIP_VERTEX], np.int32)
    else:
        mid = neutral[:face_n].mean(axis=0)
    lip_motion = most(_LIP_SHAPES)
    near = np.linalg.norm(neutral[:face_n] - mid, axis=1) < 2.5 if full_model else True
    regions["lips"] = face[near & (lip_motion >= 0.5 * lip_motion.max()) & (lip_motion > 0)]
    upper_names = [n for n in ARKIT_NAMES if n.startswith(("brow", "eye"))]
    nose_tip_y = neutral[np.argmax(neutral[:face_n, 2]), 1] if face_n else 0.0
    regions["upper_face"] = face[(neutral[:face_n, 1] > nose_tip_y) & (most(upper_names) >= 0.02)]
    lids = face[most(["eyeBlinkLeft", "eyeBlinkRight", "eyeSquintLeft", "eyeSquintRight"]) >= 0.1]
    eyeballs = np.arange(*ICT_PARTS["eyeballs"], dtype=np.int32) if full_model else []
    regions["eyes"] = np.concatenate([lids, eyeballs]).astype(np.int32)
    return regions
