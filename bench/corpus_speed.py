"""Benchmark: how fast the corpus generator makes speech + motion on this machine.

    .venv/bin/python bench/corpus_speed.py --hours 2            # the issue's figure (2 h corpus)
    .venv/bin/python bench/corpus_speed.py --hours 0.1          # a quick look

Prints wall time, hours of speech per minute of wall time, and whether the 2-hour corpus fits in
15 minutes (extrapolated linearly when a smaller corpus is asked for).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--hours", type=float, default=2.0)
    ap.add_argument("--workers", type=int, default=0, help="0 = one per core")
    ap.add_argument("--out", help="keep the corpus here (default: a temporary folder, deleted)")
    ap.add_argument("--json", help="also write the figures to this JSON file")
    args = ap.parse_args()

    from talking_face_ros.corpus.generate import generate_corpus

    with tempfile.TemporaryDirectory() as tmp:
        out = args.out or tmp
        t0 = time.perf_counter()
        m = generate_corpus(out, hours=args.hours, workers=args.workers, plots=0, overwrite=True)
        wall = time.perf_counter() - t0
    speech_h = sum(u["duration"] for u in m["utterances"]) / 3600
    minutes_for_2h = wall / 60 * (2.0 / speech_h)
    result = {
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
        "workers": m["generator"]["workers"],
        "utterances": len(m["utterances"]),
        "speech_hours": round(speech_h, 3),
        "wall_seconds": round(wall, 1),
        "speech_hours_per_wall_minute": round(speech_h / (wall / 60), 3),
        "minutes_for_2h_corpus": round(minutes_for_2h, 2),
        "target_minutes_for_2h": 15,
    }
    for k, v in result.items():
        print(f"{k:32s} {v}")
    print("PASS" if minutes_for_2h <= 15 else "FAIL", "(2-hour corpus within 15 minutes)")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
