"""The field's vertex-space metrics (LVE, MVE, FDD, EVE), computed the way the published code does.

Speech-driven 3D face papers (FaceFormer, CodeTalker, FaceDiffuser, ProbTalk3D, ...) compare
methods with numbers from one shared evaluation script. Its conventions are easy to get wrong:
LVE squares the error and takes a maximum, and FDD takes the standard deviation of a *squared*
displacement. So this module follows that code (CodeTalker's ``cal_metric.py``, reused as
FaceDiffuser's ``compute_objective_metrics.py`` and ProbTalk3D's ``evaluation.py``). Then our
numbers can be compared with theirs, as long as the units match.

Inputs are ``(frames, V, 3)`` arrays of prediction and ground truth on the same mesh, plus
vertex index masks (:mod:`talking_face_ros.metrics.regions` derives them for the ICT-FaceKit rig).
When the two sequences have different lengths, both are cut to the shorter one, as the published
scripts do.

Units: every result is in the mesh's length unit (MVE) or that unit squared (LVE, EVE, FDD).
For ICT-FaceKit meshes that is cm and cm². The papers report VOCASET in m² and BIWI in mm², with
a power of ten in the table header. Convert with :data:`CM2_TO_MM2` (×100) or
:data:`CM2_TO_M2` (×1e-4) rather than assuming a unit.

Dataset-level numbers: the published scripts pool the frames of all test sequences before taking
the mean, so long sequences count more. To reproduce that, concatenate the ``*_per_frame`` results
of every sequence and take one mean. FDD is instead averaged over sequences.
"""
from __future__ import annotations

import numpy as np

CM_TO_MM = 10.0
CM2_TO_MM2 = 100.0  # LVE / EVE / FDD in cm² -> mm²
CM2_TO_M2 = 1e-4  # LVE / EVE / FDD in cm² -> m² (VOCASET's unit)


def lve_per_frame(pred: np.ndarray, gt: np.ndarray, lip_idx) -> np.ndarray:
    """Lip vertex error of each frame: ``max_{v in lips} ||pred[t,v] - gt[t,v]||²`` (unit²).

    It is a maximum because a lip-sync failure shows where the lips are worst, not on average.
    """
    pred, gt = _paired(pred, gt)
    idx = _mask(lip_idx, pred.shape[1], "lip_idx")
    sq = np.sum(np.square(pred[:, idx] - gt[:, idx]), axis=2)  # (T, |lips|)
    return sq.max(axis=1)


def lve(pred: np.ndarray, gt: np.ndarray, lip_idx) -> float:
    """LVE = ``mean_t max_{v in lips} ||pred[t,v] - gt[t,v]||²`` (unit²; cm² for ICT meshes)."""
    return float(np.mean(lve_per_frame(pred, gt, lip_idx)))


def eve(pred: np.ndarray, gt: np.ndarray, eye_idx) -> float:
    """Eye-and-forehead vertex error: LVE's formula over the eye/forehead vertices.

    ``EVE = mean_t max_{v in eyes+forehead} ||pred[t,v] - gt[t,v]||²`` (unit²). This catches a
    missed blink or brow raise, which MVE averages away.
    """
    return lve(pred, gt, eye_idx)


def mve_per_frame(pred: np.ndarray, gt: np.ndarray, idx=None) -> np.ndarray:
    """Mean per-vertex Euclidean distance of each frame, ``mean_v ||pred[t,v] - gt[t,v]||`` (unit)."""
    pred, gt = _paired(pred, gt)
    if idx is not None:
        sel = _mask(idx, pred.shape[1], "idx")
        pred, gt = pred[:, sel], gt[:, sel]
    return np.linalg.norm(pred - gt, axis=2).mean(axis=1)


def mve(pred: np.ndarray, gt: np.ndarray, idx=None) -> float:
    """MVE = ``mean_{t,v} ||pred[t,v] - gt[t,v]||``: the mean of per-vertex Euclidean distances.

    The distances are not squared (unlike LVE). The mean runs over all vertices, or over ``idx``
    when given. Unit: the mesh's length unit.
    """
    return float(np.mean(mve_per_frame(pred, gt, idx)))


def upper_face_dynamics(motion: np.ndarray, upper_idx) -> float:
    """``mean_{v in upper} std_t ||motion[t,v]||²`` for a displacement-from-template sequence.

    This is how much the upper face moves. Following CodeTalker, the per-frame displacement is
    the *squared* norm, and ``std`` is the population standard deviation (numpy's default,
    ddof=0). Unit: the mesh unit squared.
    """
    motion = _frames(motion, "motion")
    idx = _mask(upper_idx, motion.shape[1], "upper_idx")
    sq = np.sum(np.square(motion[:, idx]), axis=2)  # (T, |upper|)
    return float(np.std(sq, axis=0).mean())


def fdd(pred: np.ndarray, gt: np.ndarray, upper_idx, template: np.ndarray) -> float:
    """Upper-face dynamics deviation, signed as in CodeTalker.

    ``FDD = D(gt - template) - D(pred - template)``, where
    ``D(m) = mean_{v in upper} std_t ||m[t,v]||²`` (see :func:`upper_face_dynamics`).

    Positive means the prediction's upper face is stiller than the ground truth's; negative means
    it moves too much. The published tables average this signed value over sequences (a ``|.|``
    variant also exists in FaceDiffuser's script; take ``abs`` yourself if you want that). Unit:
    the mesh unit squared.
    """
    pred, gt = _paired(pred, gt)
    template = np.asarray(template, dtype=np.float64)
    if template.shape != pred.shape[1:]:
        raise ValueError(f"template must be (V, 3) = {pred.shape[1:]}, got {template.shape}")
    return upper_face_dynamics(gt - template, upper_idx) - upper_face_dynamics(pred - template, upper_idx)


# -- input checks shared with the sampling and blendshape metrics ------------------------------


def _frames(a, name: str) -> np.ndarray:
    a = np.asarray(a, dtype=np.float64)
    if a.ndim != 3 or a.shape[2] != 3:
        raise ValueError(f"{name} must be (frames, V, 3), got shape {a.shape}")
    if a.shape[0] == 0:
        raise ValueError(f"{name} has no frames")
    return a


def _paired(pred, gt) -> tuple[np.ndarray, np.ndarray]:
    """Both sequences as float64, cut to the shorter length (what the published scripts do)."""
    pred, gt = _frames(pred, "pred"), _frames(gt, "gt")
    if pred.shape[1] != gt.shape[1]:
        raise ValueError(f"pred has {pred.shape[1]} vertices but gt has {gt.shape[1]}")
    n = min(len(pred), len(gt))
    return pred[:n], gt[:n]


def _mask(idx, num_vertices: int, name: str) -> np.ndarray:
    """Vertex indices from an index list or a boolean mask; ValueError when empty or out of range."""
    idx = np.asarray(idx)
    if idx.dtype == bool:
        if idx.shape != (num_vertices,):
            raise ValueError(f"{name}: boolean mask has shape {idx.shape}, expected ({num_vertices},)")
        idx = np.flatnonzero(idx)
    if idx.size == 0:
        raise ValueError(f"{name} is empty")
    if not np.issubdtype(idx.dtype, np.integer):
        raise ValueError(f"{name} must hold integer vertex indices, got dtype {idx.dtype}")
    idx = idx.astype(np.int64, copy=False).ravel()
    if idx.min() < 0 or idx.max() >= num_vertices:
        raise ValueError(f"{name} has indices outside [0, {num_vertices})")
    return idx
