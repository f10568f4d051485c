"""What the low-latency model gives up and gains against the default model: quality and latency.

    python bench/low_latency.py --corpus out/corpus-2h [--live BUNDLE] [--default BUNDLE]
                                [--split test] [--limit N] [--seconds 10] [--out out/bench/low_latency]

For each bundle (default: the shipped ``assets/low_latency_model`` and ``assets/default_model``):

* quality: ``talking-face animate`` over the corpus split (1 thread, CPU), then ``talking-face
  evaluate``: LVE, MVE, EVE, FDD, bilabial closure, vowel openness, audio-to-motion lag, and the
  emotion classifier's accuracy on seen / held-out phrasings;
* latency: the engine's bound from a sample's arrival to its frame being final
  (``Engine.latency_s``: feature chunking + the model's lookahead) and the delay the ROS node
  publishes at with its automatic margin (``node_params.NodeParams.delay_for``);
* cost: ``--seconds`` of espeak-ng speech pushed in 20 ms pieces, as a microphone delivers them,
  on 1 thread: real-time factor and per-push time p50 / p95 / max.

Writes ``low_latency.md`` and ``low_latency.json``. bench/node_latency.py measures the node itself.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

REPO_DIR = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_DIR))

QUALITY = [("lve_mm2", "LVE mm²", "{:.2f}"), ("mve", "MVE", "{:.4f}"), ("eve_mm2", "EVE mm²", "{:.2f}"),
           ("fdd", "FDD", "{:.4f}"), ("bilabial_closure", "closure", "{:.3f}"),
           ("vowel_openness_spearman", "vowel openness", "{:.3f}"), ("lag_frames_median", "lag (frames)", "{:g}"),
           ("emotion_accuracy_seen", "emotion seen", "{:.3f}"), ("emotion_accuracy_heldout", "emotion held-out", "{:.3f}")]


def push_cost(folder: Path, seconds: float) -> dict:
    """Stream ``seconds`` of speech in 20 ms pieces through a fresh engine on 1 thread."""
    import numpy as np
    import torch

    from talking_face_ros.corpus.voices import VOICES
    from talking_face_ros.engine import Engine
    from talking_face_ros.node_params import NodeParams
    from talking_face_ros.speech.espeak import synthesize

    torch.set_num_threads(1)
    engine = Engine.from_bundle(folder, device="cpu", encoder_options={"speech": {"threads": 1}})
    sentences = ("The weather looks fine today, so we could walk along the river.",
                 "Please bring the blue folder when you come to the meeting.",
                 "My brother made a maple pie for the whole family.")
    clips, total, i = [], 0, 0
    while total < seconds * 16000:
        clips.append(synthesize(sentences[i % 3], voice=VOICES[i % 3]).audio.astype(np.float32))
        total += len(clips[-1])
        i += 1
    audio = np.concatenate(clips)[:int(seconds * 16000)]
    engine.set_emotion("calm and friendly")
    engine.push(audio[:8000])  # warm-up, then a new utterance
    engine.flush()
    engine.pull()
    times = []
    for start in range(0, len(audio), 320):
        t = time.perf_counter()
        engine.push(audio[start:start + 320])
        engine.pull()
        times.append(time.perf_counter() - t)
    t = time.perf_counter()
    engine.flush()
    engine.pull()
    times.append(time.perf_counter() - t)
    ms = np.array(times) * 1e3
    return {"latency_s": engine.latency_s, "lookahead_frames": engine.lookahead_frames,
            "node_delay_s": NodeParams().delay_for(engine.latency_s, causal=engine.causal_features),
            "rtf": float(ms.sum() / 1e3 / (len(audio) / 16000)), "push_p50_ms": float(np.percentile(ms, 50)),
            "push_p95_ms": float(np.percentile(ms, 95)), "push_max_ms": float(ms.max()), "pushes": len(ms)}


def quality(folder: Path, args, name: str) -> dict:
    exe = str(Path(sys.executable).parent / "talking-face")
    pred, report = args.out / f"pred_{name}", args.out / f"eval_{name}"
    limit = ["--limit", str(args.limit)] if args.limit else []
    t = time.perf_counter()
    subprocess.run([exe, "animate", "--corpus", str(args.corpus), "--split", args.split, "--out-dir", str(pred),
                    "--threads", "1", "--device", "cpu", "--model", str(folder)] + limit, check=True)
    animate_s = time.perf_counter() - t
    subprocess.run([exe, "evaluate", "--corpus", str(args.corpus), "--split", args.split, "--pred", str(pred),
                    "--out", str(report)] + limit, check=True)
    metrics = json.loads((report / "metrics.json").read_text())
    for split in ("seen", "heldout"):  # {"n", "emotion", ...}: the emotion's accuracy
        value = metrics.get(f"emotion_accuracy_{split}")
        metrics[f"emotion_accuracy_{split}"] = value.get("emotion") if isinstance(value, dict) else value
    return {"metrics": {k: metrics.get(k) for k, _, _ in QUALITY}, "utterances": metrics["scored"],
            "animate_s": animate_s}


def main() -> int:
    from talking_face_ros.paths import DEFAULT_MODEL_DIR, LIVE_MODEL_DIR

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--corpus", type=Path, required=True)
    p.add_argument("--live", type=Path, default=LIVE_MODEL_DIR, help="the low-latency bundle")
    p.add_argument("--default", type=Path, default=DEFAULT_MODEL_DIR, help="the default bundle")
    p.add_argument("--split", default="test")
    p.add_argument("--limit", type=int, default=None)
    p.add_argument("--seconds", type=float, default=10.0, help="speech streamed for the cost figures")
    p.add_argument("--out", type=Path, default=REPO_DIR / "out" / "bench" / "low_latency")
    args = p.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    rows = {}
    for name, folder in (("low-latency", args.live), ("default", args.default)):
        rows[name] = {"bundle": str(folder), **quality(folder, args, name), **push_cost(folder, args.seconds)}
    n = rows["default"]["utterances"]
    lines = [f"# Low-latency vs default model ({args.split} split of {args.corpus}, {n} utterances)", "",
             "| model | " + " | ".join(h for _, h, _ in QUALITY) + " |", "|---|" + "---|" * len(QUALITY)]
    for name, row in rows.items():
        cells = ["n/a" if row["metrics"][k] is None else fmt.format(row["metrics"][k]) for k, _, fmt in QUALITY]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines += ["", f"| model | engine latency bound (s) | model lookahead (frames) | node delay, auto margin (s) "
              f"| RTF, {args.seconds:g} s in 20 ms pieces | push p50 / p95 / max (ms) | animate split (s) |",
              "|---|---|---|---|---|---|---|"]
    for name, r in rows.items():
        lines.append(f"| {name} | {r['latency_s']:.3f} | {r['lookahead_frames']} | {r['node_delay_s']:.3f} "
                     f"| {r['rtf']:.3f} | {r['push_p50_ms']:.1f} / {r['push_p95_ms']:.1f} / {r['push_max_ms']:.1f} "
                     f"| {r['animate_s']:.0f} |")
    text = "\n".join(lines) + "\n"
    (args.out / "low_latency.md").write_text(text)
    (args.out / "low_latency.json").write_text(json.dumps(rows, indent=1))
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
