"""Scores predicted animation against a corpus split, the way the papers report it.

Predictions are frame files (see :mod:`talking_face_ros.frames_io`) named ``<utterance id>.npz``
(or ``.csv`` / ``.json``) in one folder; an ``.npz`` may carry ``samples`` (N, frames, 52) for
the sampling metrics (MEE, CE, Diversity). ``pred_dir="gt"`` scores the corpus' own motion: the
ceiling any model can reach (lip-sync, emotion accuracy) and a check of the metrics themselves.

Pooling follows the published evaluation scripts: LVE, MVE, EVE, MEE and CE pool all frames of
the split; FDD and Diversity average per-sequence values. Vertex-space figures are on the
ICT-FaceKit face area (centimetres; LVE-like figures in cm^2, with mm^2 beside them).
"""
from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import numpy as np

from .data.resample import resample_motion
from .frames_io import FORMATS, load_frames
from .metrics import blendshape as bsm
from .metrics import lipsync, regions, sampling, vertex

GT = "gt"


def find_prediction(pred_dir: Path, utt_id: str) -> Path | None:
    for suffix in FORMATS:
        path = pred_dir / f"{utt_id}{suffix}"
        if path.is_file():
            return path
    return None


def _to_fps(times: np.ndarray, weights: np.ndarray, fps: float, frames: int) -> np.ndarray:
    """Predictions at another frame rate are resampled to the corpus rate."""
    if len(times) > 1:
        src = 1.0 / float(np.median(np.diff(times)))
        if abs(src - fps) > 0.01 * fps:
            return resample_motion(weights, src, fps, frames=frames)
    return weights


def evaluate(
    corpus,
    pred_dir,
    *,
    split: str = "test",  # corpus split to score
    ict_path=None,  # packed ICT rig for vertex-space metrics; None skips them
    classifier=None,  # EmotionClassifier for emotion accuracy; None skips it
    limit: int | None = None,  # score only the first N utterances (quick looks)
    progress: bool = True,
) -> dict:
    from tqdm import tqdm

    pred_root = None if str(pred_dir) == GT else Path(pred_dir)
    utts = corpus.split(split)[:limit] if limit else corpus.split(split)
    if ict_path is not None:
        masks = regions.ict_regions(ict_path)
        with np.load(ict_path, allow_pickle=False) as z:
            template = z["neutral"][: int(z["face_area_nverts"])].astype(np.float32)
    pooled = defaultdict(list)  # per-frame values pooled over the split
    per_seq = defaultdict(list)  # per-sequence values averaged over the split
    closure = [0, 0]
    lags, missing, errors = [], [], []
    emo_seqs, emo_labels = [], []
    curves = []  # (id, prediction, sample) of the first three scored utterances, for the report
    for u in tqdm(utts, desc="evaluate", disable=not progress):
        sample = corpus.load(u)
        gt = sample.blendshapes
        samples = None
        if pred_root is None:
            pred = gt
        else:
            path = find_prediction(pred_root, u.id)
            if path is None:
                missing.append(u.id)
                continue
            try:
                times, pred, samples = load_frames(path)
            except ValueError as exc:
                errors.append(str(exc))
                continue
            pred = _to_fps(times, pred, corpus.fps, len(gt))
        n = min(len(pred), len(gt))
        pred, gt_n = pred[:n], gt[:n]
        pooled["bs_lve"].append(bsm.lve_per_frame(pred, gt_n))
        pooled["bs_mve"].append(bsm.mve_per_frame(pred, gt_n))
        per_seq["bs_fdd"].append(bsm.fdd(pred, gt_n))
        pooled["bs_eve"].append(bsm.eve_per_frame(pred, gt_n))
        if samples is not None and len(samples) >= 2:
            s = samples[:, :n]
            per_seq["bs_mee"].append(bsm.mee(s, gt_n))
            per_seq["bs_ce"].append(bsm.ce(s, gt_n))
            per_seq["bs_diversity"].append(bsm.diversity(s, pairing="all"))
        if ict_path is not None:
            vp = regions.ict_vertices(pred, ict_path)
            vg = regions.ict_vertices(gt_n, ict_path)
            pooled["lve"].append(vertex.lve_per_frame(vp, vg, masks["lips"]))
            pooled["mve"].append(vertex.mve_per_frame(vp, vg))
            pooled["eve"].append(vertex.lve_per_frame(vp, vg, masks["eyes_forehead"]))
            per_seq["fdd"].append(vertex.fdd(vp, vg, masks["upper_face"], template))
            if samples is not None and len(samples) >= 2:
                vs = np.stack([regions.ict_vertices(x, ict_path) for x in samples[:, :n]])
                pooled["mee"].append(sampling.mee_per_frame(vs, vg, masks["lips"]))
                pooled["ce"].append(sampling.ce_per_frame(vs, vg, masks["lips"]))
                per_seq["diversity"].append(sampling.diversity(vs, pairing="all"))
        c = lipsync.bilabial_closure_rate(pred, corpus.fps, sample.phonemes)
        closure[0] += c.closed
        closure[1] += c.total
        agreement = lipsync.vowel_openness_agreement(pred, corpus.fps, sample.phonemes)
        if agreement.spearman is not None and np.isfinite(agreement.spearman):
            per_seq["vowel_openness_spearman"].append(agreement.spearman)
        lag = lipsync.audio_motion_lag(pred, corpus.fps, sample.phonemes)
        if lag.frames is not None:
            lags.append(lag.frames)
        emo_seqs.append(pred)
        emo_labels.append(u)
        if len(curves) < 3:
            curves.append((u.id, pred, sample))

    out: dict = {"split": split, "predictions": "ground truth" if pred_root is None else str(pred_root),
                 "utterances": len(utts), "scored": len(emo_seqs), "missing": missing, "errors": errors}
    for key, vals in pooled.items():
        out[key] = float(np.concatenate(vals).mean()) if vals else None
    for key, vals in per_seq.items():
        out[key] = float(np.mean(vals)) if vals else None
    for key in ("lve", "eve", "mee", "ce"):
        if out.get(key) is not None:
            out[key + "_mm2"] = out[key] * vertex.CM2_TO_MM2
    out["bilabial_closure"] = closure[0] / closure[1] if closure[1] else None
    out["bilabials"] = closure[1]
    if lags:
        out["lag_frames_median"] = float(np.median(lags))
        out["lag_frames_mean"] = float(np.mean(lags))
        out["lag_within_one_frame"] = float(np.mean(np.abs(lags) <= 1))
    if classifier is not None and emo_seqs:
        from .metrics.emotion_classifier import accuracy

        for text_split in ("seen", "heldout"):
            idx = [i for i, u in enumerate(emo_labels) if u.text_split == text_split]
            if idx:
                out[f"emotion_accuracy_{text_split}"] = accuracy(
                    classifier, [emo_seqs[i] for i in idx], [emo_labels[i].emotion for i in idx],
                    [emo_labels[i].intensity for i in idx])
    out["_curves"] = curves
    return out


ROWS = [
    ("lve_mm2", "LVE (mm², ICT lips)", "{:.3f}"),
    ("mve", "MVE (cm, ICT face)", "{:.4f}"),
    ("fdd", "FDD (cm², ICT upper face)", "{:.5f}"),
    ("eve_mm2", "EVE (mm², ICT eyes+forehead)", "{:.3f}"),
    ("mee_mm2", "MEE (mm²)", "{:.3f}"),
    ("ce_mm2", "CE (mm²)", "{:.3f}"),
    ("diversity", "Diversity (cm)", "{:.4f}"),
    ("bs_lve", "LVE (weight², lip channels)", "{:.4f}"),
    ("bs_mve", "MVE (weight, all channels)", "{:.4f}"),
    ("bs_fdd", "FDD (weight², upper channels)", "{:.5f}"),
    ("bs_eve", "EVE (weight², eye/brow channels)", "{:.4f}"),
    ("bs_mee", "MEE (weight²)", "{:.4f}"),
    ("bs_ce", "CE (weight²)", "{:.4f}"),
    ("bs_diversity", "Diversity (weight)", "{:.4f}"),
    ("bilabial_closure", "bilabial closure rate", "{:.3f}"),
    ("vowel_openness_spearman", "vowel openness agreement (Spearman)", "{:.3f}"),
    ("lag_frames_median", "audio-to-motion lag, median (frames)", "{:.1f}"),
    ("lag_within_one_frame", "utterances with lag within ±1 frame", "{:.3f}"),
]


def write_report(result: dict, out_dir) -> tuple[Path, Path]:
    """``metrics.json``, ``report.md`` and pictures in ``out_dir``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    curves = result.pop("_curves", [])
    (out / "metrics.json").write_text(json.dumps(result, indent=1))
    lines = [f"# Evaluation: {result['predictions']} on the {result['split']} split", "",
             f"{result['scored']} of {result['utterances']} utterances scored"
             + (f"; {len(result['missing'])} missing" if result["missing"] else "")
             + (f"; {len(result['errors'])} unreadable" if result["errors"] else "") + ".", "",
             "| metric | value |", "|---|---|"]
    for key, label, fmt in ROWS:
        if result.get(key) is not None:
            lines.append(f"| {label} | {fmt.format(result[key])} |")
    for text_split in ("seen", "heldout"):
        acc = result.get(f"emotion_accuracy_{text_split}")
        if acc:
            lines.append(f"| emotion accuracy, {text_split} phrasings (n={acc['n']}) | {acc['emotion']:.3f} |")
            lines.append(f"| intensity accuracy, {text_split} phrasings | {acc['intensity']:.3f} |")
    pics = _plot_curves(curves, out)
    if pics:
        lines += ["", "## Lip gap, prediction against ground truth", ""]
        lines += [f"![{p.stem}]({p.name})" for p in pics]
    md = out / "report.md"
    md.write_text("\n".join(lines) + "\n")
    return out / "metrics.json", md


def _plot_curves(curves, out: Path) -> list[Path]:
    if not curves:
        return []
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .lip_geometry import lip_gap
    from .phonemes import BILABIALS

    paths = []
    for utt_id, pred, sample in curves:
        fig, ax = plt.subplots(figsize=(10, 2.6))
        t = np.arange(len(sample.blendshapes)) / sample.fps
        ax.plot(t, lip_gap(sample.blendshapes), label="ground truth", color="0.4")
        ax.plot(t[: len(pred)], lip_gap(pred), label="prediction", color="tab:orange")
        for seg in sample.phonemes or []:
            if seg.phone in BILABIALS:
                ax.axvspan(seg.start, seg.end, color="crimson", alpha=0.15, lw=0)
        ax.set_xlabel("time (s)")
        ax.set_ylabel("lip gap (cm)")
        ax.set_title(f"{utt_id}: {sample.emotion_text}", fontsize=8)
        ax.legend(fontsize=7, loc="upper right")
        fig.tight_layout()
        p = out / f"lipgap_{utt_id}.png"
        fig.savefig(p, dpi=100)
        plt.close(fig)
        paths.append(p)
    return paths
