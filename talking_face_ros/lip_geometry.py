"""How far apart the lips are, from 52 ARKit weights alone: the one lip measure the teacher's
tests, the lip-sync metrics and the evaluation share.

The measure is the vertical gap (centimetres) between the inner midline of the upper lip and of
the lower lip on the ICT-FaceKit generic face (vertices 5533 and 5517 of its packed rig). Because
a linear blendshape rig is linear in its weights, that gap is *exactly* an affine function of the
52 ARKit weights: ``gap = NEUTRAL_GAP + weights @ GAP_PER_WEIGHT``. The 52 numbers below were
computed from the rig with :func:`gap_coefficients_from_ict` (a test recomputes them when the rig
is present), so the measure works on machines without the rig. Negative gaps mean the lips press
into each other.
"""
from __future__ import annotations

import numpy as np

from .arkit import ARKIT_NAMES

UPPER_LIP_VERTEX = 5533
LOWER_LIP_VERTEX = 5517
NEUTRAL_GAP = 0.0763  # cm: ICT's neutral face has its lips lightly together
CLOSED_GAP = 0.15  # cm: at or below this the lips count as closed (1.5 mm)

# fmt: off
GAP_PER_WEIGHT = np.array([
    -0.0001, -0.0001, 0.0003, 0.0, 0.0, -0.044, 0.0185, 0.0185, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0,
    0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.1291, -0.0229, 3.2754, -0.0229, -3.8944, -0.0357,
    -0.0358, -0.0124, -0.0124, 1.3726, -0.0659, 0.3381, 0.3381, -0.1269, -0.1269, -0.0517,
    -0.0659, -0.3747, 0.182, -0.6876, 0.5256, 0.0035, 0.0035, -0.0155, -0.0155, 0.3546, 0.3546,
    0.3109, 0.3109, 0.0,
], dtype=np.float32)
# fmt: on
assert GAP_PER_WEIGHT.shape == (len(ARKIT_NAMES),)


def lip_gap(weights: np.ndarray) -> np.ndarray:
    """Lip gap in cm for ``(..., 52)`` weights (one value per frame)."""
    w = np.asarray(weights, dtype=np.float32)
    if w.shape[-1] != len(ARKIT_NAMES):
        raise ValueError(f"expected 52 ARKit weights in the last axis, got shape {w.shape}")
    return NEUTRAL_GAP + w @ GAP_PER_WEIGHT


def lips_closed(weights: np.ndarray, threshold: float = CLOSED_GAP) -> np.ndarray:
    return lip_gap(weights) <= threshold


def gap_coefficients_from_ict(npz_path) -> tuple[float, np.ndarray]:
    """Recompute (neutral gap, per-weight gap) from a packed ICT-FaceKit rig file."""
    with np.load(npz_path, allow_pickle=False) as d:
        idx = [UPPER_LIP_VERTEX, LOWER_LIP_VERTEX]
        neutral = d["neutral"][idx].astype(np.float64)
        deltas = d["deltas"][:, idx].astype(np.float64)
        per_arkit = np.einsum("ki,ivc->kvc", d["arkit_to_ict"].astype(np.float64), deltas)
    return float(neutral[0, 1] - neutral[1, 1]), (per_arkit[:, 0, 1] - per_arkit[:, 1, 1])
