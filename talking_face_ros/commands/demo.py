"""``talking-face demo``: the ROS node animating a sample utterance fed through the audio topic.

    talking-face demo [--wav WAV] [--emotion "cheerful and friendly"] [--model BUNDLE]
                      [--out out/demo] [--size 512] [--no-video]

Starts the installed talking_face_node, plays the WAV (default: the bundled sample sentence)
through wav_publisher in real time, records the blendshape frames the node publishes and stops
the node with SIGINT. Writes frames.csv, speech.wav (the WAV on the frames' clock), curves.png
and, without --no-video, face.mp4 (the robot face with the speech) and contact_sheet.png.
"""
from __future__ import annotations

import argparse
from pathlib import Path


def register(sub) -> None:
    from ..demo import DEFAULT_EMOTION, DEFAULT_MODEL, SAMPLE_WAV

    p = sub.add_parser("demo", help="run the ROS node on a sample utterance -> out/demo/face.mp4, frames.csv, curves",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--wav", type=Path, default=SAMPLE_WAV, help="speech WAV to play (default: the bundled sample)")
    p.add_argument("--emotion", default=DEFAULT_EMOTION, help=f"emotion text (default {DEFAULT_EMOTION!r})")
    p.add_argument("--model", type=Path, default=None, help=f"model bundle folder (default {DEFAULT_MODEL})")
    p.add_argument("--out", type=Path, default=Path("out/demo"), help="output folder (default out/demo)")
    p.add_argument("--size", type=int, default=512, help="video width and height in pixels (even, default 512)")
    p.add_argument("--no-video", dest="video", action="store_false", help="skip face.mp4 and contact_sheet.png")
    p.set_defaults(func=_run)


def _run(args) -> int:
    from ..demo import run_demo

    result = run_demo(wav=args.wav, emotion=args.emotion, model=args.model, out=args.out, size=args.size,
                      video=args.video)
    for line in result.warnings:
        print(f"node: {line}")
    print("wrote " + ", ".join(str(p) for p in result.written))
    print(result.summary())
    return 0 if result.node_exit == 0 and result.continuous else 1
