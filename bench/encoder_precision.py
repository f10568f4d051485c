"""What Moonshine in 8 bits costs in quality and gains in speed: the default model on a test split.

    python bench/encoder_precision.py --corpus out/corpus-2h [--model BUNDLE] [--limit N] [--out out/bench/precision]

Animates the corpus split with the speech encoder in fp32 and in int8 (``talking-face animate
--speech-precision``; the model itself is unchanged and was trained on fp32 features), scores
both with ``talking-face evaluate`` and times one streaming pass (2.1 s) of each encoder.
Writes ``precision.md`` and ``precision.json``.
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO_DIR = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_DIR))

METRICS = [("lve_mm2", "LVE mm²", "{:.3f}"), ("mve", "MVE", "{:.4f}"), ("eve_mm2", "EVE mm²", "{:.3f}"),
           ("fdd", "FDD", "{:.4f}"), ("bilabial_closure", "closure", "{:.3f}"),
           ("vowel_openness_spearman", "vowel openness rho", "{:.3f}"), ("lag_frames_median", "lag frames", "{:g}")]


def pass_ms(repeats: int = 30) -> dict[str, float]:
    """Median milliseconds of one 2.112 s Moonshine pass on 1 thread, fp32 and int8 in turn
    (alternating, so that the host's drifting speed weighs on both alike)."""
    import numpy as np

    from talking_face_ros.encoders.moonshine import MoonshineEncoder

    encoders = {p: MoonshineEncoder(threads=1, device="cpu", precision=p) for p in ("fp32", "int8")}
    audio = (np.random.default_rng(0).normal(0, 0.1, 33792)).astype(np.float32)
    times = {p: [] for p in encoders}
    for enc in encoders.values():
        enc.encode(audio)
    for _ in range(repeats):
        for p, enc in encoders.items():
            t = time.perf_counter()
            enc.encode(audio)
            times[p].append(time.perf_counter() - t)
    return {p: 1e3 * statistics.median(v) for p, v in times.items()}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--corpus", type=Path, required=True)
    p.add_argument("--model", type=Path, default=None, help="bundle (default: the shipped default model)")
    p.add_argument("--split", default="test")
    p.add_argument("--limit", type=int, default=None)
    p.add_argument("--out", type=Path, default=REPO_DIR / "out" / "bench" / "precision")
    args = p.parse_args()
    exe = str(Path(sys.executable).parent / "talking-face")
    rows = {}
    for precision in ("fp32", "int8"):
        pred, report = args.out / f"pred_{precision}", args.out / f"eval_{precision}"
        extra = (["--model", str(args.model)] if args.model else []) + \
            (["--limit", str(args.limit)] if args.limit else [])
        t = time.perf_counter()
        subprocess.run([exe, "animate", "--corpus", str(args.corpus), "--split", args.split, "--out-dir", str(pred),
                        "--threads", "1", "--device", "cpu", "--speech-precision", precision] + extra, check=True)
        animate_s = time.perf_counter() - t
        subprocess.run([exe, "evaluate", "--corpus", str(args.corpus), "--split", args.split, "--pred", str(pred),
                        "--out", str(report)] + (["--limit", str(args.limit)] if args.limit else []), check=True)
        metrics = json.loads((report / "metrics.json").read_text())
        rows[precision] = {"metrics": {k: metrics[k] for k, _, _ in METRICS}, "utterances": metrics["scored"],
                           "animate_s": animate_s}
    for precision, ms in pass_ms().items():
        rows[precision]["pass_ms"] = ms
    lines = [f"# Moonshine fp32 vs int8 ({args.split} split of {args.corpus}, {rows['fp32']['utterances']} utterances)",
             "", "| encoder | " + " | ".join(h for _, h, _ in METRICS)
             + " | ms per 2.1 s pass (1 thread, median) | animate s (whole split, 1 thread) |",
             "|---|" + "---|" * (len(METRICS) + 2)]
    for precision, row in rows.items():
        cells = [fmt.format(row["metrics"][k]) for k, _, fmt in METRICS]
        lines.append(f"| {precision} | " + " | ".join(cells) + f" | {row['pass_ms']:.1f} | {row['animate_s']:.0f} |")
    text = "\n".join(lines) + "\n"
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "precision.md").write_text(text)
    (args.out / "precision.json").write_text(json.dumps(rows, indent=1))
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
