#!/usr/bin/env python3
"""Frames per second of the CPU renderer on the robot face (and ICT-FaceKit when present).

Renders a short jaw-and-blink sequence at each size and supersampling factor and prints one
line per setting. Timings depend on the machine and on what else runs on it (see the load
average printed first).

Usage: python bench/render_speed.py [--frames 20] [--ict]
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from talking_face_ros.arkit import INDEX  # noqa: E402
from talking_face_ros.render import fit_camera, render_frame  # noqa: E402
from talking_face_ros.rig.robot_face import robot_face  # noqa: E402


def sequence(frames: int) -> np.ndarray:
    w = np.zeros((frames, 52), np.float32)
    t = np.linspace(0, 2 * np.pi, frames)
    w[:, INDEX["jawOpen"]] = 0.5 + 0.5 * np.sin(3 * t)
    w[:, INDEX["eyeBlinkLeft"]] = w[:, INDEX["eyeBlinkRight"]] = np.clip(np.sin(t), 0, 1)
    return w


def measure(rig, weights, size: int, ssaa: int) -> float:
    camera = fit_camera(rig, (size, size))
    render_frame(rig, weights[0], camera=camera, ssaa=ssaa)  # warm-up
    start = time.perf_counter()
    for w in weights:
        render_frame(rig, w, camera=camera, ssaa=ssaa)
    return len(weights) / (time.perf_counter() - start)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=20, help="frames per setting")
    parser.add_argument("--ict", action="store_true", help="also time the ICT-FaceKit rig")
    args = parser.parse_args(argv)
    rigs = [robot_face()]
    if args.ict:
        from talking_face_ros.paths import ict_rig_path
        from talking_face_ros.rig.ict import load_packed_ict

        if ict_rig_path() is not None:
            rigs.append(load_packed_ict(ict_rig_path()))
    weights = sequence(args.frames)
    print(f"cpus {os.cpu_count()}, load average {os.getloadavg()[0]:.2f}")
    for rig in rigs:
        for size in (512, 256):
            for ssaa in (1, 2):
                fps = measure(rig, weights, size, ssaa)
                print(f"{rig.name:12s} {len(rig.triangles):6d} triangles  {size}x{size}  ssaa {ssaa}:"
                      f"  {fps:6.2f} frames/s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
