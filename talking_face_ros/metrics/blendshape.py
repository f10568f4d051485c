"""LVE, MVE, FDD, EVE and the sampling metrics in blendshape space, on ``(frames, 52)`` weights.

Many of our sources (Live Link Face captures, the teacher, the model itself) have no mesh. So
each metric is also defined on the 52 ARKit weights. Each channel is treated as a 1-D "vertex"
whose position is its weight, and the vertex formulas are applied unchanged:

* LVE_bs = ``mean_t max_{c in LIPS} (pred[t,c] - gt[t,c])²``, over :data:`arkit.LIPS` (jaw* and
  mouth*).
* EVE_bs = the same form over :data:`arkit.EYES_AND_BROWS`.
* MVE_bs = ``mean_{t,c} |pred[t,c] - gt[t,c]|``, over all 52 channels unless ``channels`` is given.
* FDD_bs = ``D(gt) - D(pred)`` with ``D(w) = mean_{c in UPPER_FACE} std_t (w[t,c]²)``. The
  template is the neutral face, weight 0, so the displacement is the weight itself.
* MEE / CE / Diversity as in :mod:`.sampling`, with LIPS as the lip set.

Units: weights are unitless in [0, 1], so LVE_bs, EVE_bs, FDD_bs, MEE_bs and CE_bs are in
weight², and MVE_bs and Diversity_bs are in weight. These numbers cannot be compared with
vertex-space numbers. For those, turn the weights into ICT meshes with
:func:`talking_face_ros.metrics.regions.ict_vertices` first.
"""
from __future__ import annotations

import numpy as np

from .. import arkit
from . import sampling, vertex

LIP_CHANNELS = arkit.indices(arkit.LIPS)
UPPER_FACE_CHANNELS = arkit.indices(arkit.UPPER_FACE)
EYE_CHANNELS = arkit.indices(arkit.EYES_AND_BROWS)


def lve(pred: np.ndarray, gt: np.ndarray) -> float:
    """``mean_t max_{c in LIPS} (pred[t,c] - gt[t,c])²`` (weight²)."""
    return vertex.lve(_as_points(pred, "pred"), _as_points(gt, "gt"), LIP_CHANNELS)


def lve_per_frame(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    return vertex.lve_per_frame(_as_points(pred, "pred"), _as_points(gt, "gt"), LIP_CHANNELS)


def eve(pred: np.ndarray, gt: np.ndarray) -> float:
    """``mean_t max_{c in EYES_AND_BROWS} (pred[t,c] - gt[t,c])²`` (weight²)."""
    return vertex.lve(_as_points(pred, "pred"), _as_points(gt, "gt"), EYE_CHANNELS)


def eve_per_frame(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    return vertex.lve_per_frame(_as_points(pred, "pred"), _as_points(gt, "gt"), EYE_CHANNELS)


def mve_per_frame(pred: np.ndarray, gt: np.ndarray, *, channels=None) -> np.ndarray:
    return vertex.mve_per_frame(_as_points(pred, "pred"), _as_points(gt, "gt"), channels)


def mve(pred: np.ndarray, gt: np.ndarray, *, channels=None) -> float:
    """``mean_{t,c} |pred[t,c] - gt[t,c]|`` (weight); ``channels``: column indices, default all 52."""
    return vertex.mve(_as_points(pred, "pred"), _as_points(gt, "gt"), channels)


def fdd(pred: np.ndarray, gt: np.ndarray) -> float:
    """``mean_c std_t gt[t,c]² - mean_c std_t pred[t,c]²`` over UPPER_FACE (weight²); positive = too still."""
    zero = np.zeros((arkit.NUM_BLENDSHAPES, 3))
    return vertex.fdd(_as_points(pred, "pred"), _as_points(gt, "gt"), UPPER_FACE_CHANNELS, zero)


def mee(samples: np.ndarray, gt: np.ndarray) -> float:
    """LVE_bs of the mean of ``(N, frames, 52)`` samples against gt (weight²)."""
    return sampling.mee(_as_sample_points(samples), _as_points(gt, "gt"), LIP_CHANNELS)


def ce(samples: np.ndarray, gt: np.ndarray) -> float:
    """LVE_bs of the sample closest to gt (smallest summed per-frame LVE_bs) (weight²)."""
    return sampling.ce(_as_sample_points(samples), _as_points(gt, "gt"), LIP_CHANNELS)


def diversity(
    samples: np.ndarray,
    *,
    pairing: str = "halves",  # see sampling.diversity
    seed: int = 0,
    channels=None,  # column subset; None = all 52
) -> float:
    """Mean over sample pairs of ``mean_{t,c} |a[t,c] - b[t,c]|`` (weight)."""
    return sampling.diversity(_as_sample_points(samples), pairing=pairing, seed=seed, idx=channels)


def _as_points(weights, name: str) -> np.ndarray:
    """``(T, 52)`` -> ``(T, 52, 3)`` with the weight in x and 0 in y, z.

    The norm of a 3-vector ``(w, 0, 0)`` is ``|w|``, so the vertex formulas apply unchanged.
    """
    w = np.asarray(weights, dtype=np.float64)
    if w.ndim != 2 or w.shape[1] != arkit.NUM_BLENDSHAPES:
        raise ValueError(f"{name} must be (frames, 52) ARKit weights, got shape {w.shape}")
    out = np.zeros(w.shape + (3,))
    out[..., 0] = w
    return out


def _as_sample_points(samples) -> np.ndarray:
    s = np.asarray(samples, dtype=np.float64)
    if s.ndim != 3 or s.shape[2] != arkit.NUM_BLENDSHAPES:
        raise ValueError(f"samples must be (N, frames, 52) ARKit weights, got shape {s.shape}")
    out = np.zeros(s.shape + (3,))
    out[..., 0] = s
    return out
