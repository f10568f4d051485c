"""Cost of animating speech end to end (speech + text encoders and network): time, memory, size.

    python bench/animate_speed.py [--model FOLDER | --config config/train_default.yaml | --small]
                                  [--seconds 10] [--repeats 3] [--threads 1] [--device cpu]

The model is, in this order of preference: --model; --config (random weights of that training
config's network); the shipped default model when present; random weights of the default
network sizes (bundle.make_random_bundle(small=False)). Random weights cost the same as trained
ones. The speech is espeak-ng sentences of one corpus voice, repeated to --seconds.

Rows: the planned speech features alone (encode_planned with the bundle's plan, 1 and 2
onnxruntime threads), the whole offline ``Engine.animate``, and the same audio streamed in 20 ms
pieces (as a microphone delivers it), with the longest single push: the stall a live caller
sees. Wall times on a shared machine vary with its load; CPU time (summed over threads) less.
"""
from __future__ import annotations

import argparse
import os
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

SENTENCES = (
    "The weather looks fine today, so we could walk along the river.",
    "Please bring the blue folder when you come to the meeting.",
    "I never thought the old bridge would be closed for so long.",
)


def speech(seconds: float) -> np.ndarray:
    from talking_face_ros.corpus.voices import VOICES
    from talking_face_ros.speech.espeak import synthesize

    audio = np.concatenate([synthesize(s, voice=VOICES[0]).audio for s in SENTENCES])
    return np.resize(audio, round(seconds * 16000)).astype(np.float32)


def timed(fn, repeats: int) -> tuple[float, float]:
    """Median (wall, CPU) seconds of ``fn()`` after one warm-up call."""
    fn()
    wall, cpu = [], []
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        fn()
        wall.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    return statistics.median(wall), statistics.median(cpu)


def pick_model(args, tmp: Path) -> tuple[Path, str]:
    from talking_face_ros.bundle import make_random_bundle, random_bundle_of_config
    from talking_face_ros.commands.animate import DEFAULT_MODEL

    if args.model is not None:
        return args.model, f"bundle {args.model}"
    if args.config is not None:
        return random_bundle_of_config(args.config, tmp / "config"), f"random weights of {args.config}"
    if (DEFAULT_MODEL / "bundle.json").is_file() and not args.small:
        return DEFAULT_MODEL, "shipped default model"
    small = bool(args.small)
    return (make_random_bundle(tmp / "random", small=small, speakers=tuple(f"v{i}" for i in range(18))),
            "random weights, " + ("tiny test network" if small else "default network sizes, live lookahead"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, help="bundle folder")
    parser.add_argument("--config", type=Path, help="training config: random weights of its network")
    parser.add_argument("--small", action="store_true", help="the tiny random test network")
    parser.add_argument("--seconds", type=float, default=10.0, help="audio length")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per row (median reported)")
    parser.add_argument("--threads", type=int, default=1, help="torch and Moonshine CPU threads of the engine")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or auto")
    args = parser.parse_args()

    import torch

    from talking_face_ros.bundle import MODEL_FILE, load_bundle
    from talking_face_ros.encoders.moonshine import MoonshineEncoder
    from talking_face_ros.engine import Engine
    from talking_face_ros.features import encode_planned

    torch.set_num_threads(args.threads)
    audio = speech(args.seconds)
    with tempfile.TemporaryDirectory() as tmp:
        folder, what = pick_model(args, Path(tmp))
        t0 = time.perf_counter()
        bundle = load_bundle(folder, device=args.device, encoder_options={"speech": {"threads": args.threads}})
        load_s = time.perf_counter() - t0
        size_mb = (Path(folder) / MODEL_FILE).stat().st_size / 1e6
    engine = Engine(bundle)
    model = bundle.model
    params = sum(p.numel() for p in model.parameters())
    secs = len(audio) / 16000

    rows = []  # (what, wall s, CPU s, worst push ms or "")
    for threads in (1, 2):
        enc = MoonshineEncoder(device="cpu" if args.device == "cpu" else "auto", threads=threads)
        wall, cpu = timed(lambda: encode_planned(enc, audio, bundle.plan, fps=bundle.fps), args.repeats)
        name = f"speech features (encode_planned, {threads} onnx thread{'s' * (threads > 1)})"
        rows.append((name, wall, cpu, ""))
    wall, cpu = timed(lambda: engine.animate(audio, 16000, emotion="slightly happy"), args.repeats)
    rows.append(("Engine.animate, whole clip", wall, cpu, ""))

    def streamed():
        engine.reset()
        worst = 0.0
        for i in range(0, len(audio), 320):
            t = time.perf_counter()
            engine.push(audio[i:i + 320])
            engine.pull()
            worst = max(worst, time.perf_counter() - t)
        engine.flush()
        engine.pull()
        return worst

    streamed()
    t0, c0 = time.perf_counter(), time.process_time()
    worst = streamed()
    rows.append(("Engine.push in 20 ms pieces + flush", time.perf_counter() - t0, time.process_time() - c0,
                 f"{worst * 1e3:.0f}"))
    t0 = time.perf_counter()
    bundle.encoders.text.encode(["a text never seen before, slightly worried"])
    text_ms = (time.perf_counter() - t0) * 1e3
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    print(f"model: {what}; {type(model).__name__}, {params / 1e6:.2f} M parameters, {size_mb:.1f} MB file")
    print(f"audio: {secs:.1f} s of speech; torch threads {args.threads}; device {args.device}; "
          f"bundle load (encoders included) {load_s:.1f} s")
    print(f"lookahead {engine.lookahead_frames} frames ({engine.lookahead_frames / bundle.fps:.2f} s; "
          f"the network's reach bound {model.lookahead}); "
          f"engine latency bound {engine.latency_s:.2f} s; plan {bundle.plan.to_dict()}")
    print()
    print(f"| {'what':58s} | wall s | CPU s | real-time factor | worst push ms |")
    print(f"|{'-' * 60}|--------|-------|------------------|---------------|")
    for name, wall, cpu, worst_ms in rows:
        print(f"| {name:58s} | {wall:6.2f} | {cpu:5.2f} | {wall / secs:16.3f} | {worst_ms:>13s} |")
    print()
    print(f"new emotion text (MiniLM, uncached): {text_ms:.0f} ms; peak memory (max RSS): {peak_mb:.0f} MB")


if __name__ == "__main__":
    main()
