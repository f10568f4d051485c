"""What the engine's child process costs per call: the same 20 ms pieces fed to an engine in this
process and to one in a child (talking_face_ros/engine_process.py), timed in turn.

    python bench/engine_process.py [--model FOLDER] [--seconds 10] [--threads 1]

Reported: a bare round trip (a call that does nothing: the emotion text), and per 20 ms piece the
time of ``feed`` (push + pull) here and across the socket, p50 / p95 in ms, over the pieces of
``--seconds`` of espeak-ng speech; the model is the node's default unless ``--model``.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, help="bundle folder (default: the node's default model)")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()

    from talking_face_ros.corpus.voices import VOICES
    from talking_face_ros.engine_process import EngineHost, EngineProcess, EngineSettings
    from talking_face_ros.paths import node_default_model
    from talking_face_ros.speech.espeak import synthesize

    model = args.model or node_default_model()
    settings = EngineSettings(model=str(model), device="cpu", threads=args.threads)
    text = "The weather looks fine today, so we could walk along the river. " * 4
    audio = synthesize(text, voice=VOICES[0]).audio.astype(np.float32)[: int(args.seconds * 16000)]
    pieces = [audio[i:i + 320] for i in range(0, len(audio), 320)]
    here, child = EngineHost(settings), EngineProcess(settings)
    try:
        round_trip = []
        for _ in range(300):
            t = time.perf_counter()
            child.emotion  # noqa: B018 - the call is the point
            round_trip.append(time.perf_counter() - t)
        times = {"here": [], "child": []}
        for engine in (here, child):
            engine.begin(0)
        for piece in pieces:  # in turn, so that both see the same moments of the machine
            for name, engine in (("here", here), ("child", child)):
                t = time.perf_counter()
                engine.feed(piece, 16000)
                times[name].append(time.perf_counter() - t)
    finally:
        child.close()

    def ms(values, q):
        return round(float(np.percentile(values, q)) * 1000, 3)

    print(f"model {model}, {len(pieces)} pieces of 20 ms, {args.threads} thread(s)")
    print(f"bare round trip          p50 {ms(round_trip, 50)} ms  p95 {ms(round_trip, 95)} ms")
    for name in ("here", "child"):
        print(f"feed, engine {name:<6}     p50 {ms(times[name], 50)} ms  p95 {ms(times[name], 95)} ms  "
              f"mean {round(float(np.mean(times[name])) * 1000, 3)} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
