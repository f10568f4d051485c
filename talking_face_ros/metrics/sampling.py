"""Metrics for models that draw several different animations for one input (ProbTalk3D's MEE, CE, Diversity).

A stochastic model can fail in two ways. It can be accurate but always give the same answer, or
it can be varied but wrong. LVE on one sample measures neither well. ProbTalk3D (Wu et al., 2024,
"ProbTalk3D: Non-Deterministic Emotion Controllable Speech-Driven 3D Facial Animation Synthesis
Using VQ-VAE") scores N samples per input, drawn with the same conditioning. The definitions below
follow its ``evaluation.py``:

* MEE (mean estimate error): LVE between the ground truth and the *mean* of the N samples. Low
  means the samples are spread around the truth.
* CE (coverage error): LVE of the *closest* sample. "Closest" means the sample whose per-frame
  LVEs have the smallest sum over the sequence. Low means the truth lies close to at least one
  sample.
* Diversity: mean per-vertex Euclidean distance between pairs of samples, ``mean_{t,v}
  ||a[t,v] - b[t,v]||``. ProbTalk3D shuffles its N = 10 samples, splits them into two halves and
  averages over the 5 pairs (i-th of one half, i-th of the other). That is ``pairing="halves"``,
  random but seeded here. ``pairing="all"`` averages over every unordered pair, as FaceDiffuser's
  ``compute_diversity`` does. It is deterministic, and its value is the expected value of the
  "halves" estimate.

Samples come as ``(N, frames, V, 3)``. All samples and the ground truth are cut to the shortest
length. MEE and CE are in the mesh unit squared (like LVE). Diversity is in the mesh unit (like
MVE). Dataset values pool frames for MEE and CE (concatenate the ``*_per_frame`` results) and
average sequences for Diversity, as ProbTalk3D does.
"""
from __future__ import annotations

import numpy as np

from .vertex import _frames, _mask, lve_per_frame


def mee_per_frame(samples: np.ndarray, gt: np.ndarray, lip_idx) -> np.ndarray:
    """Per-frame ``max_{v in lips} ||mean_n samples[n,t,v] - gt[t,v]||²`` (unit²)."""
    samples, gt = _cut(samples, gt)
    return lve_per_frame(samples.mean(axis=0), gt, lip_idx)


def mee(samples: np.ndarray, gt: np.ndarray, lip_idx) -> float:
    """MEE = LVE(mean of the N samples, gt) = ``mean_t max_{v in lips} ||s̄[t,v] - gt[t,v]||²``."""
    return float(np.mean(mee_per_frame(samples, gt, lip_idx)))


def ce_per_frame(samples: np.ndarray, gt: np.ndarray, lip_idx) -> np.ndarray:
    """Per-frame LVE of the sample ``n* = argmin_n sum_t LVE_t(samples[n], gt)``."""
    samples, gt = _cut(samples, gt)
    per_sample = np.stack([lve_per_frame(s, gt, lip_idx) for s in samples])  # (N, T)
    return per_sample[int(np.argmin(per_sample.sum(axis=1)))]


def ce(samples: np.ndarray, gt: np.ndarray, lip_idx) -> float:
    """CE = ``min_n LVE(samples[n], gt)``, the LVE of the closest of the N samples (unit²).

    The per-frame values all come from that one sample. It is not a per-frame minimum.
    """
    return float(np.mean(ce_per_frame(samples, gt, lip_idx)))


def diversity(
    samples: np.ndarray,
    *,
    pairing: str = "halves",  # "halves": ProbTalk3D's shuffled split; "all": every unordered pair
    seed: int = 0,  # shuffle seed for "halves"
    idx=None,  # vertex subset; None = all vertices, as ProbTalk3D
) -> float:
    """Mean over sample pairs (a, b) of ``mean_{t,v} ||a[t,v] - b[t,v]||`` (mesh unit).

    ``"halves"`` needs an even N (ProbTalk3D uses N = 10).
    """
    samples = _samples(samples)
    if idx is not None:
        samples = samples[:, :, _mask(idx, samples.shape[2], "idx")]
    n = len(samples)
    if n < 2:
        raise ValueError(f"diversity needs at least 2 samples, got {n}")
    if pairing == "halves":
        if n % 2:
            raise ValueError(f"pairing='halves' needs an even number of samples, got {n}")
        order = np.random.default_rng(seed).permutation(n)
        pairs = list(zip(order[: n // 2], order[n // 2 :]))
    elif pairing == "all":
        pairs = [(i, j) for i in range(n) for j in range(i + 1, n)]
    else:
        raise ValueError(f"pairing must be 'halves' or 'all', got {pairing!r}")
    dists = [np.linalg.norm(samples[i] - samples[j], axis=2).mean() for i, j in pairs]
    return float(np.mean(dists))


def _samples(samples) -> np.ndarray:
    samples = np.asarray(samples, dtype=np.float64)
    if samples.ndim != 4 or samples.shape[3] != 3:
        raise ValueError(f"samples must be (N, frames, V, 3), got shape {samples.shape}")
    if samples.shape[0] == 0 or samples.shape[1] == 0:
        raise ValueError(f"samples has no samples or no frames: shape {samples.shape}")
    return samples


def _cut(samples, gt) -> tuple[np.ndarray, np.ndarray]:
    samples, gt = _samples(samples), _frames(gt, "gt")
    if samples.shape[2] != gt.shape[1]:
        raise ValueError(f"samples have {samples.shape[2]} vertices but gt has {gt.shape[1]}")
    n = min(samples.shape[1], gt.shape[0])
    return samples[:, :n], gt[:n]
