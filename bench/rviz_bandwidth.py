#!/usr/bin/env python3
"""Wire size and build time of the RViz face mesh marker (talking_face_ros.rviz_mesh).

For each mesh (robot face region full and decimated, ICT-FaceKit face area full and decimated
when the rig is present) and colour mode, prints the serialized bytes per frame, the bandwidth
at 30 fps, and the time per frame of: the vertex maths (corners), the byte path
(serialize, for Publisher.publish), the Python message (marker) and rclpy's serialization of
that message. Two more tables compare ways of building the geometry_msgs/Point list and of
doing the weights x deltas product.
Timings depend on the machine and its load (printed first).

Usage: python bench/rviz_bandwidth.py [--frames 10]
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from geometry_msgs.msg import Point  # noqa: E402
from rclpy.serialization import serialize_message  # noqa: E402

from talking_face_ros.arkit import INDEX  # noqa: E402
from talking_face_ros.paths import ict_rig_path  # noqa: E402
from talking_face_ros.rig import load_packed_ict, robot_face  # noqa: E402
from talking_face_ros.rviz_mesh import COLOR_MODES, FaceMeshMarker, _points  # noqa: E402

FPS = 30


def sequence(frames: int) -> np.ndarray:
    w = np.zeros((frames, 52), np.float32)
    t = np.linspace(0, 2 * np.pi, frames)
    w[:, INDEX["jawOpen"]] = 0.5 + 0.5 * np.sin(3 * t)
    w[:, INDEX["mouthSmileLeft"]] = w[:, INDEX["mouthSmileRight"]] = 0.5 + 0.5 * np.cos(t)
    return w


def per_frame_ms(fn, weights) -> float:
    fn(weights[0])  # warm-up
    start = time.perf_counter()
    for w in weights:
        fn(w)
    return 1000 * (time.perf_counter() - start) / len(weights)


def meshes():
    robot = robot_face()
    yield "robot face", robot, None
    yield "robot face, decimated 0.5 cm", robot, 0.5
    yield "robot face, decimated 1 cm", robot, 1.0
    if ict_rig_path() is not None:
        ict = load_packed_ict(ict_rig_path())
        yield "ICT face area", ict, None
        yield "ICT face area, decimated 0.5 cm", ict, 0.5
        yield "ICT face area, decimated 1 cm", ict, 1.0
    else:
        print("(ICT-FaceKit rig not found: its rows are left out)")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=10, help="frames timed per setting")
    args = parser.parse_args(argv)
    weights = sequence(args.frames)
    print(f"cpus {os.cpu_count()}, load average {os.getloadavg()[0]:.2f}, {args.frames} frames per setting\n")
    header = (f"{'mesh':32} {'colors':6} {'verts':>6} {'tris':>6} {'bytes/frame':>12} {'MB/s @30':>9} "
              f"{'corners ms':>10} {'serialize ms':>12} {'marker ms':>9} {'ser_msg ms':>10}")
    print(header)
    print("-" * len(header))
    largest = None
    for label, rig, cell in meshes():
        for mode in COLOR_MODES:
            face = FaceMeshMarker(rig, cell_size=cell, colors=mode)
            size = len(face.serialize(weights[0]))
            corners = per_frame_ms(face.corners, weights)
            raw = per_frame_ms(face.serialize, weights)
            marker = per_frame_ms(face.marker, weights)
            message = face.marker(weights[0])
            ser = per_frame_ms(lambda w: serialize_message(message), weights)
            print(f"{label:32} {mode:6} {face.rig.num_vertices:6d} {face.num_triangles:6d} {size:12,d} "
                  f"{size * FPS / 1e6:9.2f} {corners:10.2f} {raw:12.2f} {marker:9.1f} {ser:10.1f}")
            if largest is None or face.num_points > largest.num_points:
                largest = face
    print("\ncolors: vertex = one colour per point, face = one per triangle, none = marker colour only")
    print("marker ms includes corners ms; ser_msg = rclpy.serialization.serialize_message(marker)")

    corners = largest.corners(weights[0])
    n = len(corners)

    def constructor(_):
        xs, ys, zs = corners.T.tolist()
        return [Point(x=x, y=y, z=z) for x, y, z in zip(xs, ys, zs)]

    def bulk(_):
        return _points(corners)

    print(f"\nbuilding {n:,} geometry_msgs/Point objects ({largest.rig.name}):")
    for name, fn in (("Point(x=, y=, z=) per point", constructor), ("bulk slot fill (rviz_mesh)", bulk)):
        print(f"  {name:30} {per_frame_ms(fn, weights[:3]):8.1f} ms")

    deltas = largest._deltas
    print(f"\nweights x deltas (52 x {deltas.shape[1]:,}) for the same mesh:")
    for name, fn in (("numpy matmul (BLAS threads)", lambda w: w @ deltas),
                     ("einsum (rviz_mesh)", lambda w: np.einsum("k,kv->v", w, deltas))):
        print(f"  {name:30} {per_frame_ms(fn, np.repeat(weights, 5, axis=0)):8.2f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
