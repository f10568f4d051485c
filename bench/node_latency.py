"""Latency, frame-rate jitter, start-up time and memory of talking_face_node, across processes.

    python bench/node_latency.py [--model FOLDER | --config config/train_default.yaml | --small]
                                 [--seconds 60] [--threads 1] [--json out/node_latency.json]
                                 [--set NAME:=VALUE ...] [--no-floor] [--busy N]

The node runs as its installed executable (.venv/lib/talking_face_ros/talking_face_node, with
config/talking_face.yaml); this process publishes speech as a microphone would (20 ms
AudioChunks in real time: espeak-ng sentences as utterances of about 4 s with 1 s pauses) and
records every frame. The model is --model, else the node's default (the shipped low-latency model,
else the default model), else random weights
of --config's network (default config/train_default.yaml; --small: the tiny test network).
Random weights cost what trained ones cost.

Reported:

* start-up: process start to the node's "ready" line, and to the first frame received here;
* latency from a chunk's arrival at the node to the publication of the last frame it makes
  final (the frames' ``latency`` field; one value per chunk that completed frames), p50/p95.
  By design it is about ``delay`` minus the audio that follows the frame in that chunk and
  lookahead: the node holds frames until stamp + delay. The engine's own part, arrival to
  frame final, comes from the node's diagnostics (per-second p50/p95);
* frame-interval jitter: p99 and max of |interval between frames received - 1/fps|;
  measured three ways: the node's DDS writes (source timestamps: how evenly the node publishes),
  this process's DDS reads (reception timestamps) and this process's callbacks;
* the machine's floor for the same figures, measured in the same minutes (``--no-floor``: not):
  a bare rclpy node in a third process that publishes the same message from a 30 fps ROS timer
  and does nothing else. On a virtual machine a sleeping thread may wake ms late; this shows how
  much of the node's jitter any Python ROS timer gets here at this time;
* with ``--busy N``: all of the above while N other processes compete for the CPU, as a robot's
  other software would (each multiplies matrices for 30 ms, then rests 30 ms: half a core); what
  ``engine_nice`` costs the engine there shows as late frames;
* resident memory (VmRSS, VmHWM) and CPU time of the node process with its engine process
  (parameter engine_process); real-time factor of the engine, late frames and dropped chunks
  from the diagnostics.
"""
from __future__ import annotations

import argparse
import array
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
os.environ.setdefault("FASTDDS_DEFAULT_PROFILES_FILE", str(REPO / "config" / "fastdds_localhost.xml"))

import numpy as np  # noqa: E402

NS = 1_000_000_000
SENTENCES = (
    "The weather looks fine today, so we could walk along the river.",
    "Please bring the blue folder when you come to the meeting.",
    "I never thought the old bridge would be closed for so long.",
    "My brother made a maple pie for the whole family.",
)


def utterances(seconds: float) -> list[np.ndarray]:
    """espeak-ng sentences (16 kHz int16) filling about ``seconds`` with 1 s pauses between them."""
    from talking_face_ros.corpus.voices import VOICES
    from talking_face_ros.speech.espeak import synthesize

    clips = [synthesize(s, voice=VOICES[i % 3]).audio for i, s in enumerate(SENTENCES)]
    out, total, i = [], 0.0, 0
    while total < seconds:
        clip = np.round(np.clip(clips[i % len(clips)], -1, 32767 / 32768) * 32768).astype(np.int16)
        out.append(clip)
        total += len(clip) / 16000 + 1.0
        i += 1
    return out


def pick_model(args, tmp: Path) -> tuple[Path, str]:
    from talking_face_ros.bundle import make_random_bundle, random_bundle_of_config

    from talking_face_ros.paths import LIVE_MODEL_DIR, node_default_model

    default = node_default_model()  # what the node loads with parameter model empty
    if args.model is not None:
        return args.model, f"bundle {args.model}"
    if args.small:
        return make_random_bundle(tmp / "small"), "random weights, tiny test network"
    if (default / "bundle.json").is_file() and args.config is None:
        return default, "the node's default: " + ("shipped low-latency model" if default == LIVE_MODEL_DIR
                                                   else "shipped default model")
    config = args.config or REPO / "config" / "train_default.yaml"
    return random_bundle_of_config(config, tmp / "config"), f"random weights of {config.name}"


def proc_status(pid: int) -> dict:
    """VmRSS / VmHWM (MB) and CPU seconds of a process."""
    from talking_face_ros.child_process import proc_cpu_s, proc_memory_mb

    rss, hwm = proc_memory_mb(pid)
    return {"VmRSS": rss, "VmHWM": hwm, "cpu_s": proc_cpu_s(pid)}


def jitter_figures(received, middleware, fps: float) -> dict:
    """p99 and max of |frame interval - 1/fps| in ms: at the DDS writer (the publisher's source
    timestamps), at this process's DDS reader (reception timestamps) and at its callbacks."""
    stamps = np.array(middleware, dtype=np.int64)
    series = {"written": np.diff(stamps[:, 0]) / NS, "dds_read": np.diff(stamps[:, 1]) / NS,
              "callback": np.diff(np.asarray(received, dtype=np.float64))}
    out = {}
    for name, intervals in series.items():
        dev = np.abs(intervals - 1.0 / fps) * 1000
        out[f"frame_interval_jitter_{name}_p99_ms"] = round(pct(dev, 99), 2)
        out[f"frame_interval_jitter_{name}_max_ms"] = round(float(dev.max()), 2)
    return out


def bare_publisher() -> int:
    """The control: BlendshapeFrame from a 30 fps ROS timer, nothing else (until SIGINT)."""
    import rclpy
    from rclpy.executors import ExternalShutdownException

    from talking_face_ros.arkit import ARKIT_NAMES
    from talking_face_ros.msg import BlendshapeFrame
    from talking_face_ros.nodes.talking_face_node import FRAME_QOS

    rclpy.init()
    node = rclpy.create_node("bare_publisher")
    pub = node.create_publisher(BlendshapeFrame, "blendshapes", FRAME_QOS)
    weights = array.array("f", bytes(4 * len(ARKIT_NAMES)))
    count = [0]

    def tick():
        msg = BlendshapeFrame(frame_index=count[0], fps=30.0, names=list(ARKIT_NAMES), weights=weights)
        msg.header.stamp = node.get_clock().now().to_msg()
        pub.publish(msg)
        count[0] += 1

    node.create_timer(1 / 30, tick)
    try:
        rclpy.spin(node)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    return 0


def start_bare_publisher(namespace: str) -> subprocess.Popen:
    """``bare_publisher`` in a process of its own, publishing on ``namespace``/blendshapes."""
    return subprocess.Popen([sys.executable, __file__, "--bare-publisher", "--ros-args", "-r", f"__ns:={namespace}"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)


BUSY_BURST_S, BUSY_REST_S = 0.03, 0.03


def busy() -> int:
    """``--busy``'s child: matrix products in bursts, half a core, until SIGINT or SIGTERM."""
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    a = np.random.default_rng(0).random((256, 256), dtype=np.float32)
    try:
        while True:
            until = time.monotonic() + BUSY_BURST_S
            while time.monotonic() < until:
                a = a @ a
                a /= np.abs(a).max()
            time.sleep(BUSY_REST_S)
    except KeyboardInterrupt:
        return 0


def start_busy(count: int) -> list[subprocess.Popen]:
    one = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    return [subprocess.Popen([sys.executable, __file__, "--busy-child"], env={**os.environ, **one})
            for _ in range(count)]


def stop(child: subprocess.Popen) -> None:
    if child.poll() is None:
        child.send_signal(signal.SIGINT)
        try:
            child.wait(20)
        except subprocess.TimeoutExpired:
            child.kill()


def pct(values, q) -> float:
    return float(np.percentile(values, q)) if len(values) else float("nan")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, help="bundle folder")
    parser.add_argument("--config", type=Path, help="training config: random weights of its network")
    parser.add_argument("--small", action="store_true", help="the tiny random test network")
    parser.add_argument("--seconds", type=float, default=60.0, help="seconds of streamed audio (and of jitter)")
    parser.add_argument("--threads", type=int, default=1, help="the node's threads parameter")
    parser.add_argument("--device", default="cpu", help="the node's device parameter")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--no-floor", action="store_true", help="without the bare-timer control")
    parser.add_argument("--set", action="append", default=[], metavar="NAME:=VALUE",
                        help="another node parameter (repeatable), e.g. --set engine_process:=false")
    parser.add_argument("--busy", type=int, default=0, metavar="N",
                        help="N other processes busy half a core each while the audio streams")
    if "--bare-publisher" in sys.argv[1:2]:  # start_bare_publisher's child: the control itself
        return bare_publisher()
    if "--busy-child" in sys.argv[1:2]:
        return busy()
    args = parser.parse_args()
    if args.busy < 0:
        parser.error(f"--busy {args.busy}: 0 or more processes")

    import rclpy
    from diagnostic_msgs.msg import DiagnosticArray
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.qos import QoSProfile, ReliabilityPolicy

    from talking_face_ros.msg import AudioChunk, BlendshapeFrame
    from talking_face_ros.nodes.talking_face_node import AUDIO_QOS

    executable = Path(sys.prefix) / "lib" / "talking_face_ros" / "talking_face_node"
    if not executable.is_file():
        raise SystemExit(f"{executable} not found: run scripts/build_ros.sh")
    namespace = f"/bench_{os.getpid()}"
    speech = utterances(args.seconds)
    tmp = tempfile.TemporaryDirectory()
    folder, what = pick_model(args, Path(tmp.name))
    print(f"model: {what}")

    rclpy.init()
    bench = rclpy.create_node("bench", namespace=namespace)
    frames, diagnostics = [], []  # (receipt monotonic, message, receipt ROS time)
    middleware = []  # (source, received) timestamps in ns: the node's DDS write and this process's DDS read

    def on_frame(msg, info):  # two parameters: rclpy passes the middleware's message info too
        frames.append((time.monotonic(), msg, bench.get_clock().now().nanoseconds))
        middleware.append((info["source_timestamp"], info["received_timestamp"]))

    def on_diagnostics(msg):
        diagnostics.extend({v.key: v.value for v in s.values} for s in msg.status if s.name.startswith(namespace))

    bench.create_subscription(BlendshapeFrame, "blendshapes", on_frame,
                              QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE))
    bench.create_subscription(DiagnosticArray, "/diagnostics", on_diagnostics, 10)
    floor_frames: list = []  # (receipt monotonic, (source, received) timestamps) of the control
    bench.create_subscription(BlendshapeFrame, "floor/blendshapes",
                              lambda msg, info: floor_frames.append(
                                  (time.monotonic(), (info["source_timestamp"], info["received_timestamp"]))),
                              QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE))
    audio_pub = bench.create_publisher(AudioChunk, "audio", AUDIO_QOS)
    executor = SingleThreadedExecutor()
    executor.add_node(bench)
    spinner = threading.Thread(target=executor.spin, daemon=True)
    spinner.start()

    busy_procs: list[subprocess.Popen] = []
    control = None if args.no_floor else start_bare_publisher(f"{namespace}/floor")
    started = time.monotonic()
    node = subprocess.Popen([str(executable), "--ros-args", "--params-file", str(REPO / "config" / "talking_face.yaml"),
                             "-p", f"model:={folder}", "-p", f"device:={args.device}", "-p", f"threads:={args.threads}",
                             *[arg for value in args.set for arg in ("-p", value)],
                             "-r", f"__ns:={namespace}"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: list[str] = []
    ready_at = []

    def read():
        for line in node.stdout:
            lines.append(line.rstrip())
            if "ready" in line and not ready_at:
                ready_at.append(time.monotonic())
    threading.Thread(target=read, daemon=True).start()
    try:
        while not (ready_at and frames and audio_pub.get_subscription_count() and (control is None or floor_frames)):
            if node.poll() is not None or time.monotonic() - started > 300:
                raise SystemExit("the node did not come up:\n" + "\n".join(lines[-20:]))
            time.sleep(0.01)
        ready_s = ready_at[0] - started
        first_frame_s = frames[0][0] - started
        print(f"ready after {ready_s:.2f} s, first frame after {first_frame_s:.2f} s")
        stats_before = proc_status(node.pid)
        busy_procs = start_busy(args.busy)

        # Stream the utterances in real time, stamped on the sample clock.
        first_streamed = len(frames)
        clock = bench.get_clock()
        t0_ns, wall0 = clock.now().nanoseconds, time.monotonic()
        offset, sequence = 0, 0  # samples since t0, including the pauses
        for u, clip in enumerate(speech):
            for start in range(0, len(clip), 320):
                block = clip[start:start + 320]
                at = offset + start
                time.sleep(max(0.0, wall0 + (at + len(block)) / 16000 - time.monotonic()))
                msg = AudioChunk(stream_id="bench", sequence=sequence, utterance_id=u,
                                 utterance_start=start == 0, utterance_end=start + 320 >= len(clip),
                                 sample_rate=16000, channels=1, samples=array.array("h", block.tobytes()))
                stamp = t0_ns + at * NS // 16000
                msg.header.stamp.sec, msg.header.stamp.nanosec = stamp // NS, stamp % NS
                audio_pub.publish(msg)
                sequence += 1
            offset += len(clip) + 16000  # 1 s pause: nothing is sent, the face idles
        streamed_s = offset / 16000
        time.sleep(max(0.0, wall0 + streamed_s - time.monotonic()) + 6.0)  # let the last frames out
        stats_after = proc_status(node.pid)
        wall = time.monotonic() - wall0
    finally:
        for child in busy_procs:
            stop(child)
        stop(node)
        if control is not None:
            stop(control)
        executor.shutdown()
        bench.destroy_node()
        rclpy.try_shutdown()
        tmp.cleanup()

    recorded = frames[first_streamed:]
    fps = recorded[0][1].fps
    received = np.array([t for t, _, _ in recorded])
    index = np.array([m.frame_index for _, m, _ in recorded])
    delay_ns = round(float(diagnostics[-1]["delay (s)"]) * NS) if diagnostics else 0
    # The contract: the frame for audio time t leaves at t + delay. How late it got here:
    behind = np.array([now - (m.header.stamp.sec * NS + m.header.stamp.nanosec) - delay_ns
                       for _, m, now in recorded]) / 1e6
    jitter = jitter_figures(received, middleware[first_streamed:], fps)
    floor = {}
    if control is not None:  # the control's frames over the same minutes
        same = [(t, m) for t, m in floor_frames if received[0] <= t <= received[-1]]
        floor = jitter_figures([t for t, _ in same], [m for _, m in same], 30.0)
    # One value per chunk that completed frames: the last (newest) frame of each arrival.
    last_of_chunk: dict[int, float] = {}
    for t, m, _ in recorded:
        if m.speaking:
            arrival_ms = int(round((t - m.latency) * 1000))
            last_of_chunk[arrival_ms] = m.latency  # frames come in order: the last one wins
    chunk_latency = np.array(list(last_of_chunk.values()))
    diag = [d for d in diagnostics if d.get("audio arrival to frame final p50 (s)", "n/a") != "n/a"]
    final_p50 = [float(d["audio arrival to frame final p50 (s)"]) for d in diag]
    final_p95 = [float(d["audio arrival to frame final p95 (s)"]) for d in diag]
    rtf = [float(d["real-time factor"]) for d in diagnostics if float(d["real-time factor"]) > 0]
    last = diagnostics[-1] if diagnostics else {}
    results = {
        "model": what, "seconds_streamed": round(streamed_s, 1), "busy_processes": args.busy,
        "ready_s": round(ready_s, 2), "first_frame_s": round(first_frame_s, 2),
        "engine_latency_s": float(last.get("engine latency (s)", "nan")),
        "delay_s": float(last.get("delay (s)", "nan")),
        "chunk_to_last_frame_published_p50_s": round(pct(chunk_latency, 50), 3),
        "chunk_to_last_frame_published_p95_s": round(pct(chunk_latency, 95), 3),
        "chunk_to_frame_final_p50_s": round(float(np.median(final_p50)), 3) if final_p50 else None,
        "chunk_to_frame_final_p95_s": round(pct(final_p95, 95), 3) if final_p95 else None,
        **jitter,
        **{f"floor_{k}": v for k, v in floor.items()},
        "received_after_stamp_plus_delay_p50_ms": round(pct(behind, 50), 2),
        "received_after_stamp_plus_delay_p99_ms": round(pct(behind, 99), 2),
        "frames_received": len(recorded), "frame_index_gaps": int(np.sum(np.diff(index) != 1)),
        "real_time_factor_median": round(float(np.median(rtf)), 3) if rtf else None,
        "late_frames": int(last.get("late frames", 0)), "chunks_dropped": int(last.get("chunks dropped", 0)),
        "rss_mb": round(stats_after["VmRSS"], 1), "peak_rss_mb": round(stats_after["VmHWM"], 1),
        "cpu_percent_while_streaming": round(100 * (stats_after["cpu_s"] - stats_before["cpu_s"]) / wall, 1),
    }
    if args.json:  # the raw series, for a closer look
        raw = args.json.with_suffix(".intervals.json")
        raw.parent.mkdir(parents=True, exist_ok=True)
        raw.write_text(json.dumps({"interval_ms": (np.diff(received) * 1000).round(3).tolist(),
                                   "speaking": [bool(m.speaking) for _, m, _ in recorded],
                                   "behind_ms": behind.round(3).tolist(),
                                   "received_monotonic_s": received.round(6).tolist(),
                                   "frame_index": index.tolist()}))
    width = max(len(k) for k in results)
    for key, value in results.items():
        print(f"{key:<{width}}  {value}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
