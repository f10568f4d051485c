"""Pictures of utterances: waveform with phonemes, lip gap with bilabials, key blendshape curves."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..arkit import INDEX
from ..lip_geometry import CLOSED_GAP, lip_gap
from ..phonemes import BILABIALS, SILENCE

KEY_CURVES = ("jawOpen", "mouthClose", "mouthFunnel", "mouthPucker", "mouthSmileLeft",
              "browInnerUp", "eyeBlinkLeft")


def plot_sample(sample, out_png, *, title: str | None = None) -> Path:
    """One PNG for one :class:`MotionSample` (needs blendshapes; phonemes drawn when known)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t_audio = np.arange(len(sample.audio)) / sample.sample_rate
    t = sample.times()
    fig, axes = plt.subplots(3, 1, figsize=(12, 7), sharex=True,
                             gridspec_kw={"height_ratios": [1.0, 1.0, 1.6]})
    ax = axes[0]
    ax.plot(t_audio, sample.audio, lw=0.4, color="0.3")
    ax.set_ylabel("audio")
    for seg in sample.phonemes or []:
        if seg.phone != SILENCE:
            ax.axvline(seg.start, color="0.8", lw=0.5)
            ax.text((seg.start + seg.end) / 2, 0.92, seg.phone, transform=ax.get_xaxis_transform(),
                    ha="center", va="top", fontsize=6,
                    color="crimson" if seg.phone in BILABIALS else "0.2")
    ax = axes[1]
    gap = lip_gap(sample.blendshapes)
    ax.plot(t, gap, color="tab:blue", label="lip gap (cm, ICT rig)")
    ax.axhline(CLOSED_GAP, color="tab:red", ls=":", lw=0.8, label="closed below")
    for seg in sample.phonemes or []:
        if seg.phone in BILABIALS:
            ax.axvspan(seg.start, seg.end, color="crimson", alpha=0.15, lw=0)
    ax.set_ylabel("lip gap")
    ax.legend(loc="upper right", fontsize=7)
    ax = axes[2]
    for name in KEY_CURVES:
        ax.plot(t, sample.blendshapes[:, INDEX[name]], lw=1, label=name)
    ax.set_ylim(-0.02, 1.02)
    ax.set_ylabel("weight")
    ax.set_xlabel("time (s)")
    ax.legend(loc="upper right", fontsize=7, ncol=4)
    fig.suptitle(title or sample.name, fontsize=9)
    fig.tight_layout()
    out_png = Path(out_png)
    out_png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out_png, dpi=110)
    plt.close(fig)
    return out_png


def plot_utterances(corpus, out_dir, *, count: int = 6) -> list[Path]:
    """Pictures of the first utterances of each emotion, up to ``count`` of them."""
    chosen, seen = [], set()
    for u in corpus.utterances:
        if u.emotion not in seen:
            seen.add(u.emotion)
            chosen.append(u)
        if len(chosen) >= count:
            break
    out = []
    for u in chosen:
        title = f"{u.id}  |  {u.voice_id}  |  {u.emotion} {u.intensity}: \"{u.emotion_text}\"\n{u.sentence}"
        out.append(plot_sample(corpus.load(u), Path(out_dir) / f"{u.id}.png", title=title))
    return out
