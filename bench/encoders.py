"""CPU cost of the speech and text encoders: milliseconds per second of audio / per sentence.

    python bench/encoders.py [--seconds 10] [--repeats 5] [--threads 1 2] [--moonshine-only]

Wav2Vec2 and CLIP have random weights (none can be fetched offline); their cost depends only on
their sizes. The speech is the moonshine-cpp wheel's 10 s recording, repeated to --seconds.
Moonshine is timed three times: the wheel's ``.ort`` file as shipped, its ONNX conversion
(``encoders/ort_format.py``) and that conversion in 8 bits (what the package runs on the CPU,
``moonshine.quantize_int8``), over --seconds and over one pass of the default model's streaming
plan (0.96 s chunk + 0.96 s left + 0.192 s right context); int8 also as two such passes side by
side (what a push that completes two chunks runs), on the one-thread twin session that a
multi-threaded encoder keeps for that and on its own session; with the difference of their
features from the shipped file's (``bench/encoder_precision.py`` measures what int8 does to the
animation).
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import wave
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from talking_face_ros.encoders.moonshine import MoonshineEncoder, moonshine_model_path  # noqa: E402

SENTENCES = [
    "furious", "seething with rage", "calm and relaxed", "a slightly happy voice",
    "she sounds sad and tired", "very angry and loud", "with a surprised expression",
    "neutral and calm", "happy and excited", "afraid and tense",
]


def load_speech(seconds: float) -> np.ndarray:
    with wave.open(str(moonshine_model_path().parents[2] / "test-data" / "beckett.wav")) as f:
        pcm = np.frombuffer(f.readframes(f.getnframes()), dtype="<i2").astype(np.float32) / 32768.0
    return np.resize(pcm, round(seconds * 16000))


def median_seconds(fn, repeats: int) -> tuple[float, float]:
    """Median (wall, CPU) seconds of ``fn()``. CPU time is the process's, summed over threads:
    on a machine shared with other work it stays near the uncontended cost where wall time does not."""
    fn()  # warm-up: first calls allocate and pick kernels
    wall, cpu = [], []
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        fn()
        wall.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    return statistics.median(wall), statistics.median(cpu)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="audio length per pass")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per row (median reported)")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2], help="CPU thread counts")
    parser.add_argument("--moonshine-only", action="store_true", help="time only the Moonshine rows")
    args = parser.parse_args()

    import torch

    from talking_face_ros.encoders import build_speech_encoder, build_text_encoder
    from talking_face_ros.encoders.testing import save_random_clip, save_random_wav2vec2

    audio = load_speech(args.seconds)
    plan_pass = load_speech(0.96 + 0.96 + 0.192)
    rows = []  # (encoder, threads, wall s, CPU s, unit)
    differences = []
    built = []  # (threads, resident MB the int8 encoder added)
    for threads in args.threads:
        shipped = MoonshineEncoder(threads=threads, device="cpu", model_path=moonshine_model_path())
        converted = MoonshineEncoder(threads=threads, device="cpu", precision="fp32")
        quantized = MoonshineEncoder(threads=threads, device="cpu", precision="int8")
        built.append((threads, built_mb(threads)))  # with several threads: and its one-thread twin
        for label, enc in (("moonshine-base .ort as shipped", shipped), ("moonshine-base ONNX conversion", converted),
                           ("moonshine-base ONNX int8", quantized)):
            wall, cpu = median_seconds(lambda: enc.encode(audio), args.repeats)
            rows.append((label, threads, wall / args.seconds, cpu / args.seconds, "per s audio"))
            wall, cpu = median_seconds(lambda: enc.encode(plan_pass), 4 * args.repeats)
            rows.append((label, threads, wall, cpu, "per streaming pass (2.112 s)"))
        # Two passes side by side, as StreamingFeatures runs them when one push completes two
        # chunks: on the encoder's one-thread twin (what runs), and on its own session.
        with ThreadPoolExecutor(2) as pool:
            for label, enc in (("moonshine-base ONNX int8", quantized.concurrent()),
                               ("  the same on its own session", quantized)):
                if label.startswith("  ") and quantized.concurrent() is quantized:
                    continue  # one thread already: no twin
                wall, cpu = median_seconds(lambda: list(pool.map(enc.encode, [plan_pass, plan_pass])),
                                           4 * args.repeats)
                rows.append((label, threads, wall, cpu, "two streaming passes side by side"))
        reference = shipped.encode(audio)
        differences.append([float(np.abs(enc.encode(audio) - reference).max()) for enc in (converted, quantized)]
                           + [float(np.linalg.norm(quantized.encode(audio) - reference) / np.linalg.norm(reference))])
    if args.moonshine_only:
        report(args, rows, differences, built)
        return

    with tempfile.TemporaryDirectory() as tmp:
        tiny = save_random_wav2vec2(Path(tmp) / "w2v-tiny")
        base = save_random_wav2vec2(Path(tmp) / "w2v-base", full_size=True)
        clip = save_random_clip(Path(tmp) / "clip-base", " ".join(SENTENCES).split(), full_size=True)
        speech_models = [
            ("wav2vec2 tiny random (2x32)", {"kind": "wav2vec2", "model": str(tiny), "device": "cpu"}),
            ("wav2vec2-base random (12x768)", {"kind": "wav2vec2", "model": str(base), "device": "cpu"}),
        ]
        text_models = [
            ("MiniLM-L6 (all-MiniLM-L6-v2)", {"kind": "minilm", "device": "cpu", "cache_size": 0}),
            ("CLIP ViT-B/32 text random (12x512)", {"kind": "clip", "model": str(clip), "device": "cpu",
                                                     "cache_size": 0}),
        ]
        for threads in args.threads:
            torch.set_num_threads(threads)
            for label, cfg in speech_models:
                enc = build_speech_encoder(cfg)
                wall, cpu = median_seconds(lambda: enc.encode(audio), args.repeats)
                rows.append((label, threads, wall / args.seconds, cpu / args.seconds, "per s audio"))
            for label, cfg in text_models:
                enc = build_text_encoder(cfg)
                per = [median_seconds(lambda t=t: enc.encode([t]), args.repeats) for t in SENTENCES]
                rows.append((label, threads, statistics.median(p[0] for p in per),
                             statistics.median(p[1] for p in per), "per sentence"))

    report(args, rows, differences, built)


def built_mb(threads: int) -> float:
    """Resident MB that building the int8 encoder and one pass add, in a fresh interpreter (in
    this one, memory the other encoders freed would be reused)."""
    import subprocess

    code = ("import os, numpy as np\n"
            "from talking_face_ros.encoders.moonshine import MoonshineEncoder\n"
            "rss = lambda: next(int(l.split()[1]) for l in open(f'/proc/{os.getpid()}/status')"
            " if l.startswith('VmRSS')) / 1024\n"
            "before = rss()\n"
            f"enc = MoonshineEncoder(threads={threads}, device='cpu', precision='int8')\n"
            "enc.encode(np.zeros(33792, np.float32))\n"
            "print(rss() - before)\n")
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True,
                         cwd=Path(__file__).resolve().parents[1]).stdout
    return float(out.split()[-1])


def report(args, rows, differences, built) -> None:
    import torch

    print(f"\nCPU: {os.cpu_count()} cores visible, torch {torch.__version__}, audio {args.seconds:g} s per pass, "
          f"median of {args.repeats}")
    print(f"{'encoder':38s} {'threads':>7s} {'wall ms':>9s} {'CPU ms':>9s}  unit")
    for label, threads, wall, cpu, unit in rows:
        print(f"{label:38s} {threads:7d} {1000 * wall:9.1f} {1000 * cpu:9.1f}  {unit}")
    print(f"Moonshine features against the shipped .ort file's: ONNX conversion max abs difference "
          f"{max(d[0] for d in differences):.1e}; int8 max abs {max(d[1] for d in differences):.2f}, "
          f"relative (norm of the difference / norm) {max(d[2] for d in differences):.3f}")
    print("resident memory the int8 encoder added when built: " + ", ".join(
        f"{mb:.0f} MB with {t} thread{'s' if t > 1 else ''}" + (" (and its one-thread twin)" if t != 1 else "")
        for t, mb in built))
    print(f"load average while measuring: {os.getloadavg()[0]:.1f} (wall times are inflated above {os.cpu_count()})")


if __name__ == "__main__":
    main()
