"""Picture the teacher's curves for one made-up timeline ("hello world, maybe soon").

    python scripts/plot_teacher.py [--emotion happy] [--intensity 3] [--out /tmp/teacher.png]

Top: lip gap on the ICT rig (cm) with bilabials shaded and the closed threshold; then the
main speech shapes, the expression and brow shapes, and the eyes. Writes a PNG under /tmp.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from talking_face_ros.arkit import INDEX  # noqa: E402
from talking_face_ros.emotions import EMOTIONS  # noqa: E402
from talking_face_ros.lip_geometry import CLOSED_GAP, lip_gap  # noqa: E402
from talking_face_ros.phonemes import BILABIALS, SILENCE, PhonemeSegment  # noqa: E402
from talking_face_ros.teacher import phonemes_to_blendshapes  # noqa: E402

# (phone, seconds): "hello world, maybe soon" with espeak-like durations.
TIMELINE = [
    ("SIL", 0.25), ("HH", 0.06), ("AH", 0.07), ("L", 0.06), ("OW", 0.2), ("W", 0.06), ("ER", 0.12),
    ("L", 0.06), ("D", 0.08), ("SIL", 0.3), ("M", 0.07), ("EY", 0.13), ("B", 0.06), ("IY", 0.12),
    ("S", 0.1), ("UW", 0.22), ("N", 0.08), ("SIL", 0.4),
]
PANELS = {
    "speech": ["jawOpen", "mouthClose", "mouthPucker", "mouthFunnel", "mouthStretchLeft", "mouthRollLower"],
    "expression": ["mouthSmileLeft", "mouthSmileRight", "browInnerUp", "browOuterUpLeft", "browDownLeft",
                   "cheekSquintLeft"],
    "eyes": ["eyeBlinkLeft", "eyeLookOutLeft", "eyeLookInLeft", "eyeLookDownLeft", "eyeWideLeft"],
}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--emotion", default="happy", choices=EMOTIONS)
    parser.add_argument("--intensity", type=int, default=2, choices=(1, 2, 3))
    parser.add_argument("--fps", type=float, default=30.0)
    parser.add_argument("--out", default="/tmp/teacher.png")
    args = parser.parse_args(argv)
    if not str(Path(args.out).resolve()).startswith("/tmp/"):
        raise SystemExit("plot_teacher: write the picture under /tmp")

    segments, t = [], 0.0
    for phone, d in TIMELINE:
        segments.append(PhonemeSegment(phone, t, t + d))
        t += d
    motion = phonemes_to_blendshapes(segments, duration=t, fps=args.fps, emotion=args.emotion,
                                     intensity=args.intensity)
    times = np.arange(len(motion)) / args.fps

    fig, axes = plt.subplots(4, 1, figsize=(12, 10), sharex=True)
    ax = axes[0]
    ax.plot(times, lip_gap(motion), color="black", marker=".", lw=1)
    ax.axhline(CLOSED_GAP, color="tab:red", ls=":", lw=0.8)
    for seg in segments:
        if seg.phone in BILABIALS:
            ax.axvspan(seg.start, seg.end, color="tab:red", alpha=0.15)
        if seg.phone != SILENCE:
            ax.text(0.5 * (seg.start + seg.end), ax.get_ylim()[1] * 0.92, seg.phone, ha="center", fontsize=8)
    ax.set_ylabel("lip gap (cm)")
    ax.set_title(f"teacher: {args.emotion} {args.intensity}, {args.fps:g} fps")
    for ax, (title, names) in zip(axes[1:], PANELS.items()):
        for name in names:
            ax.plot(times, motion[:, INDEX[name]], label=name, lw=1.2)
        ax.set_ylabel(title)
        ax.set_ylim(-0.02, 1.0)
        ax.legend(loc="upper right", fontsize=7, ncol=3)
    axes[-1].set_xlabel("time (s)")
    fig.tight_layout()
    fig.savefig(args.out, dpi=110)
    print(args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
