"""What Python's cyclic garbage collector costs the node's two processes while they start, with
and without ``talking_face_ros/startup_gc.py``.

    python bench/startup_gc.py [--model FOLDER] [--repeats 3]

Each measurement runs in a fresh interpreter that does what one of the processes does at start:

* engine: the engine process's imports (torch, onnxruntime, the package's model modules) and
  ``EngineHost`` loading the model (the node's default unless ``--model``);
* node: the node process's imports (rclpy, the messages, the node's module).

``gc.callbacks`` time every collection. Reported per process, as loaded normally and as loaded
between ``startup_gc.pause()`` and ``settle()`` (what the executables do): collections, their
total and longest time in ms, the wall time of the whole load, and how long one full collection
takes afterwards (what a full collection in the steady state would stall), median of
``--repeats`` interpreters each.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

REPO_DIR = Path(__file__).resolve().parents[1]

CHILD = r"""
import gc, json, os, sys, time
sys.path.insert(0, {repo!r})
os.environ.setdefault("HF_HUB_OFFLINE", "1")
times, start = [], [0.0]
def timed(phase, info):
    if phase == "start":
        start[0] = time.perf_counter()
    else:
        times.append(time.perf_counter() - start[0])
gc.callbacks.append(timed)
t0 = time.perf_counter()
paused = {paused!r}
if paused:
    from talking_face_ros import startup_gc
    startup_gc.pause()
if {process!r} == "engine":
    import onnxruntime, torch
    from talking_face_ros import bundle, engine, idle_face, model
    from talking_face_ros.engine_process import EngineHost, EngineSettings
    host = EngineHost(EngineSettings(model={model!r}, device="cpu", threads=1))
else:
    import rclpy
    from talking_face_ros.msg import AudioChunk, BlendshapeFrame
    from talking_face_ros.nodes import talking_face_node
if paused:
    startup_gc.settle()
load = time.perf_counter() - t0
during = list(times)
t = time.perf_counter()
gc.collect()
full = time.perf_counter() - t
print(json.dumps({{"collections": len(during), "total_ms": 1e3 * sum(during),
                  "max_ms": 1e3 * max(during, default=0.0), "load_s": load, "full_after_ms": 1e3 * full}}))
"""


def measure(process: str, paused: bool, model: str) -> dict:
    code = CHILD.format(repo=str(REPO_DIR), paused=paused, process=process, model=model)
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, help="bundle folder (default: the node's default model)")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    sys.path.insert(0, str(REPO_DIR))
    from talking_face_ros.paths import node_default_model

    model = str(args.model or node_default_model())
    print(f"{'process':8s} {'start-up':22s} {'collections':>11s} {'total ms':>9s} {'max ms':>7s} "
          f"{'load s':>7s} {'full collection after, ms':>26s}")
    for process in ("engine", "node"):
        for paused in (False, True):
            runs = [measure(process, paused, model) for _ in range(args.repeats)]
            m = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
            label = "startup_gc pause/settle" if paused else "collector as usual"
            print(f"{process:8s} {label:22s} {m['collections']:11.0f} {m['total_ms']:9.1f} {m['max_ms']:7.1f} "
                  f"{m['load_s']:7.2f} {m['full_after_ms']:26.1f}")
    print(f"median of {args.repeats} interpreters each; load average {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
