#!/usr/bin/env python3
"""Pictures of the built-in robot face: rest pose, each of the 52 ARKit shapes, the emotions.

Writes into OUT_DIR (default: docs/images/ of this checkout):
  robot_face_neutral.png   the rest pose, front and three-quarter views
  robot_face_shapes.png    one cell per ARKit shape at full weight (mouthClose with jawOpen)
  robot_face_emotions.png  the teacher's expression layer per MEAD emotion at each intensity
With --ict, also ict_face_check.png (ICT-FaceKit neutral and jawOpen) when the rig is present;
that one is a check for the eye, not a file for the repository.

Usage: python scripts/make_rig_gallery.py [OUT_DIR] [--size 256] [--ict]
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from talking_face_ros.arkit import ARKIT_NAMES, INDEX  # noqa: E402
from talking_face_ros.render import (default_camera, fit_camera, image_grid,  # noqa: E402
                                     render_frame, save_png)
from talking_face_ros.rig.robot_face import robot_face  # noqa: E402

# Shapes shown together with another one, because alone they mean little.
COMPANIONS = {"mouthClose": {"jawOpen": 1.0}}


def shape_weights(name: str) -> np.ndarray:
    w = np.zeros(52, np.float32)
    w[INDEX[name]] = 1.0
    for other, value in COMPANIONS.get(name, {}).items():
        w[INDEX[other]] = value
    return w


def shape_label(name: str) -> str:
    extra = "".join(f" +{k}" for k in COMPANIONS.get(name, {}))
    return f"{name}{extra}"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_dir", nargs="?", default=str(REPO / "docs" / "images"),
                        help="folder for the PNGs (default: docs/images/ of this checkout)")
    parser.add_argument("--size", type=int, default=256, help="cell size in pixels")
    parser.add_argument("--ict", action="store_true", help="also render the ICT-FaceKit check image")
    args = parser.parse_args(argv)
    out = Path(args.out_dir)
    rig = robot_face()
    size = (args.size, args.size)
    front = default_camera(rig, size)

    rest = np.zeros(52, np.float32)
    views = [render_frame(rig, rest, camera=fit_camera(rig, (2 * args.size,) * 2, yaw=yaw))
             for yaw in (0.0, 35.0)]
    print(save_png(image_grid(views, ["neutral (front)", "neutral (35 deg)"], columns=2),
                   out / "robot_face_neutral.png"))

    images = [render_frame(rig, rest, camera=front)]
    labels = ["neutral"]
    for name in ARKIT_NAMES:
        images.append(render_frame(rig, shape_weights(name), camera=front))
        labels.append(shape_label(name))
    print(save_png(image_grid(images, labels, columns=8), out / "robot_face_shapes.png"))

    try:
        from talking_face_ros.emotions import EMOTIONS, INTENSITIES
        from talking_face_ros.teacher import expression_layer
    except ImportError as e:  # the teacher is optional for this script
        print(f"emotions grid skipped: {e}")
    else:
        images, labels = [], []
        for intensity in INTENSITIES:
            for emotion in EMOTIONS:
                images.append(render_frame(rig, expression_layer(emotion, intensity), camera=front))
                labels.append(f"{emotion} {intensity}")
        print(save_png(image_grid(images, labels, columns=len(EMOTIONS)), out / "robot_face_emotions.png"))

    if args.ict:
        from talking_face_ros.paths import ict_rig_path
        from talking_face_ros.rig.ict import load_packed_ict

        path = ict_rig_path()
        if path is None:
            print("ICT-FaceKit rig not found; --ict skipped")
        else:
            ict = load_packed_ict(path)
            cam = fit_camera(ict, (2 * args.size,) * 2, region="face")
            frames = [render_frame(ict, w, camera=cam) for w in (rest, shape_weights("jawOpen"))]
            print(save_png(image_grid(frames, ["ICT neutral", "ICT jawOpen"], columns=2),
                           out / "ict_face_check.png"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
