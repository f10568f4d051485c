"""The installed executables as separate processes: talking_face_node fed by wav_publisher.

Uses what the message build installs (.venv/lib/talking_face_ros/*) with the package's own
parameter file, a random model bundle and a namespace of this test run; every wait is for an
event (a log line, a match, a frame) with a timeout, never a fixed sleep.
"""
from __future__ import annotations

import os
import signal
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

rclpy = pytest.importorskip("rclpy", reason="rclpy not installed (scripts/build_ros.sh)")
msgs = pytest.importorskip("talking_face_ros.msg", reason="messages not built: scripts/build_ros.sh")

from rclpy.executors import SingleThreadedExecutor  # noqa: E402
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy  # noqa: E402
from scipy.io import wavfile  # noqa: E402
from std_msgs.msg import String  # noqa: E402

from talking_face_ros.child_process import Child, process_tree  # noqa: E402
from talking_face_ros.data.sample import frame_count  # noqa: E402
from talking_face_ros.face_timeline import ENGINE_RATE, NS  # noqa: E402

from node_fixtures import wait_for  # noqa: E402  (pytest puts test/ on sys.path)

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.prefix) / "lib" / "talking_face_ros"
NAMESPACE = f"/test_procs_{os.getpid()}"
pytestmark = [
    pytest.mark.skipif(not (BIN / "talking_face_node").is_file(),
                       reason=f"node executables not installed in {BIN} (scripts/build_ros.sh)"),
    pytest.mark.usefixtures("quick_discovery"),
]


def env():
    e = dict(os.environ)
    e.update(ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST", PYTHONUNBUFFERED="1",
             FASTDDS_DEFAULT_PROFILES_FILE=str(REPO / "config" / "fastdds_localhost.xml"))
    return e


def running(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie, ended but not yet reaped, counts as ended)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def start_process(*args) -> Child:
    """An installed executable with local discovery, its output collected."""
    return Child(args, env=env())


def stamp_ns(msg) -> int:
    return msg.header.stamp.sec * NS + msg.header.stamp.nanosec


@pytest.fixture(scope="module")
def graph(quick_discovery):
    """A test node in this process that records frames and audio of the test namespace."""
    context = rclpy.Context()
    rclpy.init(context=context)
    node = rclpy.create_node("recorder", namespace=NAMESPACE, context=context)
    record = {"frames": [], "audio": []}
    deep = QoSProfile(depth=500, reliability=ReliabilityPolicy.RELIABLE)
    node.create_subscription(msgs.BlendshapeFrame, "blendshapes", record["frames"].append, deep)
    node.create_subscription(msgs.AudioChunk, "audio", record["audio"].append, deep)
    latched = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL)
    record["emotion"] = node.create_publisher(String, "emotion", latched)
    record["node"] = node
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(node)
    spinner = threading.Thread(target=executor.spin, daemon=True)
    spinner.start()
    yield record
    executor.shutdown()
    spinner.join(timeout=5.0)
    node.destroy_node()
    rclpy.shutdown(context=context)


def test_a_bad_parameter_exits_with_one_clear_line(tmp_path):
    p = start_process(BIN / "talking_face_node", "--ros-args", "--params-file", REPO / "config" / "talking_face.yaml",
                      "-p", "fps:=500.0", "-p", f"model:={tmp_path}")
    assert p.proc.wait(60) == 2
    lines = [line for line in p.text_lines() if line.strip()]
    assert lines == ["talking_face_node: parameter fps = 500.0 is outside [1, 120]: Frames per second "
                     "published on blendshapes, idle or speaking"]


def test_wav_publisher_drives_the_installed_node(graph, tmp_path):
    from talking_face_ros.bundle import make_random_bundle

    bundle = make_random_bundle(tmp_path / "bundle")
    # Set before the node exists: transient local hands it to the node when it joins.
    graph["emotion"].publish(String(data="slightly sad"))
    node = start_process(BIN / "talking_face_node", "--ros-args", "--params-file", REPO / "config" / "talking_face.yaml",
                         "-p", f"model:={bundle}", "-p", "fps:=25.0", "-p", "device:=cpu", "-p", "delay_margin:=1.5",
                         "-p", "engine_nice:=3",
                         "-r", f"__ns:={NAMESPACE}")
    try:
        node.wait_line("ready", 120.0)
        frames = graph["frames"]
        wait_for(lambda: any(f.emotion == "slightly sad" for f in frames), 15.0, "the late-joining emotion")
        assert next(f for f in frames if f.emotion == "slightly sad").emotion_label == "sad"

        # A 22.05 kHz stereo WAV, 1 s: the publisher sends it as it is, the node resamples and mixes.
        rate, seconds = 22050, 1.0
        t = np.arange(int(rate * seconds)) / rate
        left = 0.3 * np.sin(2 * np.pi * 180 * t) * np.clip(np.sin(2 * np.pi * 3 * t), 0, None)
        pcm = np.round(np.stack([left, 0.5 * left], axis=1) * 32767).astype(np.int16)
        wav = tmp_path / "speech.wav"
        wavfile.write(wav, rate, pcm)
        publisher = start_process(BIN / "wav_publisher", wav, "--emotion", "furious", "--wait", "30", "--subscribers", "2",
                                  "--ros-args", "-r", f"__ns:={NAMESPACE}")
        assert publisher.proc.wait(90) == 0, publisher.output()

        chunks = graph["audio"]
        wait_for(lambda: chunks and chunks[-1].utterance_end, 10.0, "the whole WAV on the audio topic")
        got = np.concatenate([np.frombuffer(c.samples, np.int16) for c in chunks]).reshape(-1, 2)
        np.testing.assert_array_equal(got, pcm)
        step = 441  # 20 ms at 22.05 kHz
        assert [c.sequence for c in chunks] == list(range(len(chunks))) == list(range(-(-len(pcm) // step)))
        assert [c.utterance_start for c in chunks] == [True] + [False] * (len(chunks) - 1)
        assert {(c.sample_rate, c.channels) for c in chunks} == {(rate, 2)}
        stamp0 = stamp_ns(chunks[0])
        assert [stamp_ns(c) - stamp0 for c in chunks] == [i * step * NS // rate for i in range(len(chunks))]

        def utterance_done():
            speech = [f for f in frames if f.speaking]
            return speech and frames[-1].frame_index > speech[-1].frame_index
        wait_for(utterance_done, 30.0, "the utterance's frames")
        speech = [f for f in frames if f.speaking]
        assert {f.emotion for f in speech} == {"furious"}
        # On the grid: the first speech frame is the grid frame at or before the first sample.
        period = NS // 25
        assert 0 <= stamp0 - stamp_ns(speech[0]) < period
        # The model makes 30 fps frames of the padded utterance; the 25 fps grid takes those
        # its times cover (frame j at model position 1.2 j).
        pad = round((stamp0 - stamp_ns(speech[0])) * ENGINE_RATE / NS)
        model_frames = frame_count((pad + ENGINE_RATE * seconds) / ENGINE_RATE, 30.0)
        assert len(speech) == int(np.floor((model_frames - 1) / 1.2 + 1e-9)) + 1

        index = np.array([f.frame_index for f in frames])
        stamps = np.array([stamp_ns(f) for f in frames])
        assert np.all(np.diff(index) == 1) and np.all(np.diff(stamps) == period)
        assert {f.fps for f in frames} == {25.0}
        # The engine runs in a child process (engine_process: true in the YAML), which ends with the node.
        engines = [p for p in process_tree(node.proc.pid)[1:]
                   if b"talking_face_ros.engine_process" in Path(f"/proc/{p}/cmdline").read_bytes()]
        assert len(engines) == 1, process_tree(node.proc.pid)
        # ... engine_nice (3, from -p) below the node's priority.
        node_nice = os.getpriority(os.PRIO_PROCESS, node.proc.pid)
        assert os.getpriority(os.PRIO_PROCESS, engines[0]) == min(19, node_nice + 3)
        assert node.stop(signal.SIGTERM) == 0, node.output()
        wait_for(lambda: not running(engines[0]), 10.0, "the engine process to end with the node")
    finally:
        if node.proc.poll() is None:
            node.proc.kill()


def test_wav_publisher_fast_and_a_bad_file(graph, tmp_path):
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk")
    p = start_process(BIN / "wav_publisher", bad, "--wait", "0")
    assert p.proc.wait(60) == 2
    assert [line for line in p.text_lines() if line.strip()][-1].startswith(f"wav_publisher: {bad}: not a readable WAV file")

    # 8-bit mono at 8 kHz, 0.3 s, as fast as delivery allows, to the recorder alone.
    rate = 8000
    pcm8 = (128 + 100 * np.sin(2 * np.pi * 300 * np.arange(int(0.3 * rate)) / rate)).astype(np.uint8)
    wav = tmp_path / "u8.wav"
    wavfile.write(wav, rate, pcm8)
    before = len(graph["audio"])
    p = start_process(BIN / "wav_publisher", wav, "--fast", "--chunk-ms", "50", "--stream-id", "fast",
                      "--ros-args", "-r", f"__ns:={NAMESPACE}")
    assert p.proc.wait(60) == 0, p.output()
    wait_for(lambda: any(c.stream_id == "fast" and c.utterance_end for c in graph["audio"][before:]), 10.0,
             "the fast stream")
    chunks = [c for c in graph["audio"][before:] if c.stream_id == "fast"]
    assert [len(c.samples) for c in chunks] == [400] * 6  # 50 ms at 8 kHz, 0.3 s
    got = np.concatenate([np.frombuffer(c.samples, np.int16) for c in chunks])
    np.testing.assert_array_equal(got, (pcm8.astype(np.int16) - 128) * 256)  # 8-bit PCM by full scale


def test_launch_files_parse_and_name_what_is_installed():
    import ast

    for name in ("talking_face.launch.py", "mic_demo.launch.py"):
        tree = ast.parse((REPO / "launch" / name).read_text(), name)
        calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call) and getattr(n.func, "id", "") == "Node"]
        executables = {kw.value.value for c in calls for kw in c.keywords if kw.arg == "executable"}
        assert executables and all((BIN / e).is_file() for e in executables), executables
        strings = {n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)}
        configs = {s for s in strings if s.endswith(".yaml")}
        assert configs and all((REPO / "config" / c).is_file() for c in configs), configs
