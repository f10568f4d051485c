"""PyTorch vs onnxruntime backend on the CPU: parity on the 52 weights, speed, and fp16's effect.

    python bench/onnx_backend.py [--model FOLDER] [--seconds 10] [--repeats 3] [--threads 1]

The model defaults to the shipped default model. It is exported with ``onnx_export`` into a
temporary folder (timed), then the same speech (espeak-ng sentences, as bench/animate_speed.py)
goes through ``Engine`` with backend torch and backend onnx, both on the CPU with --threads:

* network only: one ``predict`` over the planned features of the whole clip;
* end to end: ``Engine.animate`` (speech encoder + text + network), and streamed in 20 ms pieces;
* max |onnx - torch| of the weights of each path;
* fp16 (the precision ``auto`` picks on CUDA) run on the CPU: max |fp16 - fp32| and the share
  of predicted codes that stay the same. On the CPU fp16 is slow; the figure is about numbers.

Wall times on a shared machine vary with its load; CPU time (summed over threads) less.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402


def timed(fn, repeats: int):
    """(median wall s, median CPU s, last result) of ``fn()`` after one warm-up call."""
    fn()
    wall, cpu = [], []
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        result = fn()
        wall.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    return statistics.median(wall), statistics.median(cpu), result


def streamed(engine, audio, emotion):
    engine.reset()
    engine.set_emotion(emotion)
    step = 320  # 20 ms at 16 kHz
    for i in range(0, len(audio), step):
        engine.push(audio[i:i + step], 16000)
    engine.flush()
    return engine.pull_arrays()[2]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, default=None, help="bundle folder (default: the shipped model)")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()

    import torch

    from animate_speed import speech
    from talking_face_ros.engine import Engine
    from talking_face_ros.features import encode_planned
    from talking_face_ros.onnx_export import export_bundle
    from talking_face_ros.paths import DEFAULT_MODEL_DIR

    torch.set_num_threads(args.threads)
    folder = args.model or DEFAULT_MODEL_DIR
    emotion = "cheerful and friendly"
    audio = speech(args.seconds)
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        manifest = export_bundle(folder, tmp, threads=args.threads)
        export_s = time.perf_counter() - t0
        sizes = {spec["file"]: (Path(tmp) / spec["file"]).stat().st_size / 1e6 for spec in manifest["graphs"].values()}
        torch_engine = Engine.from_bundle(folder, device="cpu")
        onnx_engine = Engine.from_bundle(folder, device="cpu", backend="onnx", onnx_dir=tmp, threads=args.threads)
        half_engine = Engine.from_bundle(folder, device="cpu", precision="fp16")

        bundle = torch_engine.bundle
        feats = encode_planned(bundle.encoders.speech, audio, bundle.plan, fps=bundle.fps)
        text = np.repeat(bundle.encoders.text.encode_one(emotion)[None], len(feats), axis=0)
        s, x = torch.from_numpy(feats), torch.from_numpy(text)
        rows = []
        net_t = timed(lambda: torch_engine.model.predict(s, x, 1).numpy(), args.repeats)
        net_o = timed(lambda: onnx_engine.model.predict(s, x, 1).numpy(), args.repeats)
        rows.append(("network only", net_t, net_o, np.abs(net_t[2] - net_o[2]).max()))
        end_t = timed(lambda: torch_engine.animate(audio, 16000, emotion=emotion)[1], args.repeats)
        end_o = timed(lambda: onnx_engine.animate(audio, 16000, emotion=emotion)[1], args.repeats)
        rows.append(("Engine.animate", end_t, end_o, np.abs(end_t[2] - end_o[2]).max()))
        str_t = timed(lambda: streamed(torch_engine, audio, emotion), 1)
        str_o = timed(lambda: streamed(onnx_engine, audio, emotion), 1)
        rows.append(("streamed, 20 ms pieces", str_t, str_o, np.abs(str_t[2] - str_o[2]).max()))

        half = half_engine.model.predict(s, x, 1).float().numpy()
        codes_full = torch_engine.model.predict_codes(s[None], x[None], torch.tensor([1]))
        codes_half = half_engine.model.predict_codes(s[None], x[None], torch.tensor([1]))
        same = [float((codes_full[k] == codes_half[k]).float().mean()) for k in ("high", "low")
                if codes_full[k] is not None]

    print(f"model {folder}: {len(audio) / 16000:g} s of speech, {len(feats)} frames, {args.threads} thread(s), "
          f"onnxruntime providers {', '.join(onnx_engine.model.graphs.providers)}")
    print(f"export: {export_s:.1f} s; " + ", ".join(f"{k} {v:.2f} MB" for k, v in sizes.items()))
    print("export check (random input): " + "; ".join(
        f"{k} max |diff| {v['max_abs_diff']:.1e}" for k, v in manifest["parity"].items()))
    print(f"{'path':<24} {'torch wall / CPU s':>20} {'onnx wall / CPU s':>20} {'max |onnx - torch|':>20}")
    for name, a, b, diff in rows:
        print(f"{name:<24} {a[0]:>11.3f} / {a[1]:.3f} {b[0]:>11.3f} / {b[1]:.3f} {diff:>20.2e}")
    print(f"fp16 on the CPU vs fp32, network only: max |diff| {np.abs(half - net_t[2]).max():.2e}, "
          f"codes unchanged {', '.join(f'{v:.3f}' for v in same)} (high, low)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
