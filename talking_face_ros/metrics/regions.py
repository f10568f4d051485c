"""Lip, upper-face and eye/forehead vertex masks for the ICT-FaceKit rig, and meshes from weights.

ICT-FaceKit ships no region masks, so they are derived here from the rig itself. The rule is:
a region is where its shapes move the surface, near the feature it belongs to. Each rule is
geometric and has one or two thresholds, so it is reproducible, and it would carry over to
another linear rig. Counts below are for the packed generic face (9409 face-area vertices),
inspected in front and side scatter plots when the thresholds were chosen:

* ``lips`` (1134 vertices), used for LVE. The *mouth opening* is the boundary loop of the
  face-area surface nearest the lip midline (74 vertices, x in ±2.3 cm). A lip vertex lies within
  ``LIP_RADIUS`` = 1.0 cm of that loop AND moves at least ``LIP_MOTION_SHARE`` = 0.6 of the
  largest displacement that the lip-shaping expressions cause (mouthFunnel, mouthPucker,
  mouthRollUpper, mouthRollLower; 1.42 cm at most, so the threshold is 0.85 cm). Jaw shapes
  are left out of this rule because they move the whole chin, not the lips in particular. The
  radius keeps the red of the lips and their inner surface (y from -4.8 to -2.4 cm, the loop
  lies at -3.9 to -2.8). The motion share drops the cheek fans beside the mouth corners.
* ``upper_face`` (3549 vertices), used for FDD. These are vertices of the *narrow* face area
  [0, 6706) that lie above the nose tip (the frontmost vertex, y = 0.09 cm) and move at least
  ``UPPER_MOTION`` = 0.02 cm under some brow or eye expression. The narrow area leaves out the
  ears and scalp, which the brows hardly move. Without the motion test, vertices that never
  move would dilute the mean.
* ``eyes_forehead`` (2879 vertices), used for EVE. These are narrow-face vertices that move at
  least ``EYE_MOTION`` = 0.1 cm (1 mm) under some brow or eye expression (browDown, browInnerUp,
  browOuterUp, eyeBlink, eyeLook*, eyeSquint, eyeWide). That covers the lids, the brows, the
  forehead and the bridge of the nose.

Indices point into the face area [0, 9409). Because that area is the start of the full vertex
array, the same indices are valid for meshes from :func:`ict_vertices` with any ``region``.
"""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from scipy.spatial import cKDTree

from ..arkit import ARKIT_NAMES
from ..lip_geometry import LOWER_LIP_VERTEX, UPPER_LIP_VERTEX

LIP_SHAPES = ("mouthFunnel", "mouthPucker", "mouthRollUpper", "mouthRollLower")
UPPER_SHAPE_PREFIXES = ("brow", "eye")
LIP_RADIUS = 1.0  # cm from the mouth opening
LIP_MOTION_SHARE = 0.6  # of the largest lip-shape displacement
UPPER_MOTION = 0.02  # cm
EYE_MOTION = 0.1  # cm

_REQUIRED = ("neutral", "faces", "ict_names", "deltas", "arkit52", "arkit_to_ict",
             "face_area_nverts", "narrow_face_nverts")


def ict_regions(npz_path) -> dict[str, np.ndarray]:
    """``{"lips", "upper_face", "eyes_forehead"}``: sorted int64 vertex indices (see module doc)."""
    return {k: v.copy() for k, v in _regions(str(Path(npz_path).resolve())).items()}


def ict_vertices(
    weights: np.ndarray,
    npz_path,
    *,
    region: str = "face",  # "face" [0, 9409), "narrow_face" [0, 6706) or "full" (all 26719)
    chunk_frames: int = 256,  # frames per matrix product, to keep temporaries small
) -> np.ndarray:
    """``(T, 52)`` ARKit weights -> ``(T, V, 3)`` float32 ICT meshes in cm.

    mesh = neutral + (weights @ arkit_to_ict) @ deltas, which is the rig's own linear model. The
    default region keeps memory at 113 kB per frame instead of 320 kB for the full head.
    """
    w = np.asarray(weights, dtype=np.float32)
    if w.ndim != 2 or w.shape[1] != len(ARKIT_NAMES):
        raise ValueError(f"weights must be (frames, 52) ARKit weights, got shape {w.shape}")
    if chunk_frames < 1:
        raise ValueError(f"chunk_frames must be >= 1, got {chunk_frames}")
    neutral, basis = _basis(str(Path(npz_path).resolve()), region)
    out = np.empty((len(w), neutral.size), dtype=np.float32)
    for start in range(0, len(w), chunk_frames):
        out[start : start + chunk_frames] = neutral + w[start : start + chunk_frames] @ basis
    return out.reshape(len(w), -1, 3)


# -- rig loading and region rules --------------------------------------------------------------


def _load(path: str) -> dict[str, np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as d:
            rig = {k: d[k] for k in _REQUIRED if k in d.files}
    except (OSError, ValueError) as e:  # missing file, not an .npz, or pickled content
        raise ValueError(f"{path}: cannot read the ICT-FaceKit rig ({e})") from e
    missing = [k for k in _REQUIRED if k not in rig]
    if missing:
        raise ValueError(f"{path}: not a packed ICT-FaceKit rig, missing fields {missing}")
    if tuple(str(n) for n in rig["arkit52"]) != ARKIT_NAMES:
        raise ValueError(f"{path}: field arkit52 is not the canonical ARKit order")
    k, v = len(rig["ict_names"]), len(rig["neutral"])
    if rig["deltas"].shape != (k, v, 3) or rig["arkit_to_ict"].shape != (len(ARKIT_NAMES), k):
        raise ValueError(f"{path}: fields deltas {rig['deltas'].shape} / arkit_to_ict "
                         f"{rig['arkit_to_ict'].shape} do not match {k} shapes, {v} vertices")
    return rig


@lru_cache(maxsize=4)
def _basis(path: str, region: str) -> tuple[np.ndarray, np.ndarray]:
    """(neutral (V*3,), per-ARKit-weight displacement (52, V*3)) float32 for one region."""
    rig = _load(path)
    counts = {"face": int(rig["face_area_nverts"]), "narrow_face": int(rig["narrow_face_nverts"]),
              "full": len(rig["neutral"])}
    if region not in counts:
        raise ValueError(f"region must be one of {sorted(counts)}, got {region!r}")
    n = counts[region]
    deltas = rig["deltas"][:, :n].astype(np.float32).reshape(len(rig["ict_names"]), -1)
    basis = rig["arkit_to_ict"].astype(np.float32) @ deltas
    return rig["neutral"][:n].astype(np.float32).ravel(), basis


@lru_cache(maxsize=2)
def _regions(path: str) -> dict[str, np.ndarray]:
    rig = _load(path)
    face_n, narrow_n = int(rig["face_area_nverts"]), int(rig["narrow_face_nverts"])
    names = [str(n) for n in rig["ict_names"]]
    neutral = rig["neutral"][:face_n].astype(np.float64)
    motion = np.linalg.norm(rig["deltas"][:, :face_n].astype(np.float64), axis=2)  # (K, face_n)

    # Lips: near the mouth opening and moved by the lip-shaping expressions.
    lip_rows = [i for i, n in enumerate(names) if n in LIP_SHAPES]
    if len(lip_rows) != len(LIP_SHAPES):
        raise ValueError(f"{path}: field ict_names lacks some of {LIP_SHAPES}")
    lip_motion = motion[lip_rows].max(axis=0)
    opening = _mouth_opening(rig["faces"], neutral, face_n)
    dist_to_opening, _ = cKDTree(neutral[opening]).query(neutral)
    lips = (dist_to_opening <= LIP_RADIUS) & (lip_motion >= LIP_MOTION_SHARE * lip_motion.max())

    # Upper face and eyes/forehead: moved by the brow and eye expressions.
    upper_rows = [i for i, n in enumerate(names) if n.startswith(UPPER_SHAPE_PREFIXES)]
    upper_motion = motion[upper_rows].max(axis=0)
    narrow = np.arange(face_n) < narrow_n
    nose_tip_y = neutral[np.argmax(neutral[:, 2]), 1]
    upper = narrow & (neutral[:, 1] > nose_tip_y) & (upper_motion >= UPPER_MOTION)
    eyes = narrow & (upper_motion >= EYE_MOTION)
    return {"lips": np.flatnonzero(lips), "upper_face": np.flatnonzero(upper),
            "eyes_forehead": np.flatnonzero(eyes)}


def _mouth_opening(faces: np.ndarray, neutral: np.ndarray, face_n: int) -> np.ndarray:
    """Vertices of the face-area boundary loop nearest the lip midline (the inner lip rim).

    A boundary edge belongs to exactly one polygon. Written by hand because the only thing
    needed is the edge count; a mesh library would be a heavy dependency for that.
    """
    faces = faces[np.all(faces < face_n, axis=1)]  # polygons wholly inside the face area
    nxt = np.roll(faces, -1, axis=1)
    tri = faces[:, 3] < 0  # triangles: the third corner links back to the first
    nxt[tri, 2] = faces[tri, 0]
    a, b = faces.ravel(), nxt.ravel()
    keep = (a >= 0) & (b >= 0)
    edges = np.sort(np.stack([a[keep], b[keep]], axis=1), axis=1)
    uniq, count = np.unique(edges, axis=0, return_counts=True)
    border = uniq[count == 1]
    graph = coo_matrix((np.ones(len(border)), (border[:, 0], border[:, 1])), shape=(face_n, face_n))
    _, label = connected_components(graph, directed=False)
    on_border = np.unique(border)
    midline = 0.5 * (neutral[UPPER_LIP_VERTEX] + neutral[LOWER_LIP_VERTEX])
    nearest = on_border[np.argmin(np.linalg.norm(neutral[on_border] - midline, axis=1))]
    return on_border[label[on_border] == label[nearest]]
