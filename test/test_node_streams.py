"""Several streams at once: two talking_face_node instances in one process, one per namespace.

This is how one machine (one GPU) serves several faces: one node per speaker, each in its own
namespace (``--ros-args -r __ns:=/left``, or several nodes in one process as here), each with
its own ``audio`` / ``emotion`` / ``blendshapes`` topics and engine. One node runs the PyTorch
backend, the other the onnxruntime one. Both speak at the same time; each must publish exactly
what its own engine makes of its own audio, and nothing of the other's.
"""
from __future__ import annotations

import array
from collections import Counter
import os
import threading
import time

import numpy as np
import pytest

rclpy = pytest.importorskip("rclpy", reason="rclpy not installed (scripts/build_ros.sh)")
msgs = pytest.importorskip("talking_face_ros.msg", reason="messages not built: scripts/build_ros.sh")
pytest.importorskip("onnx", reason="the onnx node exports its model with the onnx package")

from rclpy.executors import MultiThreadedExecutor  # noqa: E402
from rclpy.parameter import Parameter  # noqa: E402
from rclpy.qos import QoSProfile, ReliabilityPolicy  # noqa: E402

from talking_face_ros.face_timeline import ENGINE_RATE, NS  # noqa: E402

from node_fixtures import settle_heap, unsettle_heap, wait_for  # noqa: E402  (pytest puts test/ on sys.path)

pytestmark = pytest.mark.usefixtures("quick_discovery")
PREFIX = f"/streams_{os.getpid()}"  # other test runs on this machine share the DDS domain


def voiced(seconds: float, f0: float, seed: int) -> np.ndarray:
    """Amplitude-modulated harmonics, int16: a different 'voice' per stream."""
    t = np.arange(int(seconds * ENGINE_RATE)) / ENGINE_RATE
    phase = np.random.default_rng(seed).uniform(0, 6)
    envelope = np.clip(np.sin(2 * np.pi * 3.5 * t + phase), 0, None)
    x = sum(np.sin(2 * np.pi * k * f0 * t) / k for k in range(1, 5)) * envelope
    return np.round(np.clip(0.12 * x, -1, 1) * 32767).astype(np.int16)


class Stream:
    """One node's topics as seen by the tester: its audio publisher and the frames it published."""

    def __init__(self, tester, namespace: str, node):
        from talking_face_ros.nodes.talking_face_node import AUDIO_QOS

        self.node, self.frames = node, []
        recorder = QoSProfile(depth=300, reliability=ReliabilityPolicy.RELIABLE)
        tester.create_subscription(msgs.BlendshapeFrame, f"{namespace}/blendshapes", self.frames.append, recorder)
        self.audio = tester.create_publisher(msgs.AudioChunk, f"{namespace}/audio", AUDIO_QOS)

    def speak(self, pcm: np.ndarray, utterance: int, out: dict) -> None:
        """Publish ``pcm`` in 20 ms chunks, paced in real time; its first stamp goes to ``out``."""
        step = ENGINE_RATE // 50
        stamp0 = self.node.get_clock().now().nanoseconds
        out[utterance] = stamp0
        wall0 = time.monotonic()
        for start in range(0, len(pcm), step):
            block = pcm[start:start + step]
            time.sleep(max(0.0, wall0 + (start + len(block)) / ENGINE_RATE - time.monotonic()))
            msg = msgs.AudioChunk(stream_id="streams", sequence=start // step, utterance_id=utterance,
                                  utterance_start=start == 0, utterance_end=start + step >= len(pcm),
                                  sample_rate=ENGINE_RATE, channels=1,
                                  samples=array.array("h", block.tobytes()))
            stamp = stamp0 + start * NS // ENGINE_RATE
            msg.header.stamp.sec, msg.header.stamp.nanosec = stamp // NS, stamp % NS
            self.audio.publish(msg)

    def speech(self, utterance: int):
        return [f for f in self.frames if f.speaking and f.utterance_id == utterance]

    def expected(self, pcm: np.ndarray, stamp: int) -> np.ndarray:
        """The PyTorch network of the node's bundle, fed the same padded utterance offline.

        For the onnx node that checks its frames against the other backend, through the node.
        """
        from talking_face_ros.bundle import load_bundle
        from talking_face_ros.engine import Engine

        grid = self.node.grid
        pad = int(round((stamp - grid.stamp(grid.index_at_or_before(stamp))) * ENGINE_RATE / NS))
        engine = Engine(load_bundle(self.node.model_folder, device="cpu"))
        engine.push(np.zeros(pad, np.float32), ENGINE_RATE)
        engine.push(pcm.astype(np.float32) / 32768, ENGINE_RATE)
        engine.flush()
        return engine.pull_arrays()[2]


@pytest.fixture(scope="module")
def two_nodes(tmp_path_factory):
    from talking_face_ros.bundle import make_random_bundle
    from talking_face_ros.nodes.talking_face_node import TalkingFaceNode
    from talking_face_ros.onnx_export import export_bundle

    folder = make_random_bundle(tmp_path_factory.mktemp("streams") / "bundle")
    export_bundle(folder, folder / "onnx", encoders=False, threads=1)  # BUNDLE/onnx: found by backend onnx
    context = rclpy.Context()
    rclpy.init(context=context)
    nodes, streams = [], []
    tester = rclpy.create_node("streams_tester", namespace=PREFIX, context=context)
    for name, backend in (("left", "torch"), ("right", "onnx")):
        overrides = [Parameter("model", value=str(folder)), Parameter("device", value="cpu"),
                     Parameter("backend", value=backend), Parameter("speech_blend_s", value=0.0),
                     # 4 s above the longest stall below (test_a_node_whose_executor_stalls...): the
                     # backlog that stall leaves must be computed before its frames fall due, by two
                     # engines at once on a loaded 2-core machine, in a test process whose heap the
                     # whole suite has grown (0.5 s above was too little once in CI, 1.5 s once).
                     Parameter("delay_margin", value=5.0),
                     # A loaded test machine can stall the talker or the executor for a second; a
                     # timeout then would split the utterance (a new engine state), which this
                     # test is not about.
                     Parameter("utterance_timeout", value=10.0)]
        node = TalkingFaceNode(context=context, namespace=f"{PREFIX}/{name}", parameter_overrides=overrides)
        nodes.append(node)
        streams.append(Stream(tester, f"{PREFIX}/{name}", node))
    settle_heap()
    executor = MultiThreadedExecutor(num_threads=2, context=context)
    for n in (*nodes, tester):
        executor.add_node(n)
    spinner = threading.Thread(target=executor.spin, daemon=True)
    spinner.start()
    wait_for(lambda: all(s.audio.get_subscription_count() and s.frames for s in streams), 15.0,
             "both nodes' subscriptions and first frames")
    yield streams
    executor.shutdown()
    spinner.join(timeout=5.0)
    for n in nodes:
        n.close()
        n.destroy_node()
    tester.destroy_node()
    rclpy.shutdown(context=context)
    unsettle_heap()


def speak_together(streams, pcm: dict, utterance: int) -> dict:
    """Both streams speak ``pcm[name]`` at once; returns each one's first stamp."""
    stamps: dict = {}
    talkers = [threading.Thread(target=s.speak, args=(pcm[name], utterance, stamps.setdefault(name, {})))
               for s, name in zip(streams, ("left", "right"))]
    for t in talkers:
        t.start()
    for t in talkers:
        t.join()

    def finished(s):
        speech = s.speech(utterance)
        return speech and any(f.frame_index > speech[-1].frame_index and not f.speaking for f in s.frames)

    wait_for(lambda: all(finished(s) for s in streams), 30.0, "both utterances published")
    return {name: stamps[name][utterance] for name in ("left", "right")}


def assert_exact(s: Stream, name: str, pcm: np.ndarray, utterance: int, stamp: int, counts0: dict) -> None:
    """Every chunk arrived, one utterance, and the frames are what the offline network makes of it."""
    counts = Counter(s.node.stats()["counts"])
    counts.subtract(counts0)
    assert counts["chunks_lost"] == 0, (name, "audio lost between publisher and node", counts)
    assert counts["utterances"] == 1 and counts["resyncs"] == 0 and counts["chunks_dropped"] == 0, (name, counts)
    assert counts["late_frames"] == 0 and counts["engine_errors"] == 0, (name, counts)
    got = np.array([f.weights for f in s.speech(utterance)])
    want = s.expected(pcm, stamp)
    assert got.shape == want.shape, name
    per_frame = np.abs(got - want).max(axis=1)
    first = [f.frame_index for f in s.speech(utterance)][:1]
    assert per_frame.max() < 1e-4, (name, first, np.round(per_frame, 4).tolist(), counts)


def test_two_nodes_in_one_process_animate_their_own_audio_at_once(two_nodes):
    left, right = two_nodes
    assert left.node.engine.info.backend.startswith("torch")
    assert right.node.engine.info.backend.startswith("onnxruntime")
    pcm = {"left": voiced(1.1, 130.0, seed=1), "right": voiced(1.3, 210.0, seed=2)}
    counts0 = {name: dict(s.node.stats()["counts"]) for s, name in ((left, "left"), (right, "right"))}
    stamps = speak_together(two_nodes, pcm, 7)
    for s, name in ((left, "left"), (right, "right")):
        assert_exact(s, name, pcm[name], 7, stamps[name], counts0[name])
    # Different audio, different faces: nothing crossed between the namespaces.
    n = min(len(left.speech(7)), len(right.speech(7)))
    assert np.abs(np.array([f.weights for f in left.speech(7)[:n]])
                  - np.array([f.weights for f in right.speech(7)[:n]])).max() > 0.01


def test_a_node_whose_executor_stalls_takes_the_waiting_audio_late_and_loses_none(two_nodes):
    """A loaded machine can hold a node's callbacks back for seconds (seen in CI with a 1 s queue).

    A callback of the right node's own (mutually exclusive) callback group sleeps 1 s while its
    audio streams in: the chunks must wait in the subscription's queue, not be lost from it. The
    sleep holds up that node's frame timer too, which then has a second of frames to catch up;
    past 2 s behind it would skip frames (face_timeline.MAX_BURST_S). 1 s leaves room for this
    busy test process's own pauses: with 1.5 s, CI met 32 skipped frames.
    """
    left, right = two_nodes
    pcm = {"left": voiced(1.0, 150.0, seed=3), "right": voiced(2.0, 180.0, seed=4)}
    counts0 = {name: dict(s.node.stats()["counts"]) for s, name in ((left, "left"), (right, "right"))}
    stalled = threading.Event()

    def stall():
        if not stalled.is_set() and right.node.counts["chunks_received"] - counts0["right"]["chunks_received"] > 5:
            stalled.set()
            time.sleep(1.0)

    timer = right.node.create_timer(0.01, stall)
    try:
        stamps = speak_together(two_nodes, pcm, 8)
    finally:
        timer.cancel()  # not destroyed while the executor spins (see the emotion test below)
    assert stalled.is_set()
    for s, name in ((left, "left"), (right, "right")):
        assert_exact(s, name, pcm[name], 8, stamps[name], counts0[name])


def test_an_emotion_sent_just_before_speech_covers_it_however_late_the_node_reads_it(two_nodes):
    """A dialogue manager sends the emotion, then the speech (wav_publisher leads by 0.1 s). The
    node takes the emotion at its send time (the DDS source timestamp), not when a busy executor
    gets round to the callback: here the left node's callbacks stall 0.6 s from the moment the
    emotion is sent, so the text is read after the utterance's first chunks' stamps, and still
    every speech frame shows it."""
    from std_msgs.msg import String

    from talking_face_ros.nodes.talking_face_node import EMOTION_QOS

    left, _ = two_nodes
    emotion = left.node.create_publisher(String, "emotion", EMOTION_QOS)
    wait_for(lambda: emotion.get_subscription_count() > 0, 10.0, "the node's emotion subscription")
    stall_now = threading.Event()

    def stall():
        if stall_now.is_set():
            stall_now.clear()
            time.sleep(0.6)

    timer = left.node.create_timer(0.01, stall)
    try:
        stall_now.set()
        time.sleep(0.05)  # the stall has begun: the emotion callback waits behind it
        emotion.publish(String(data="furious"))
        time.sleep(0.1)
        left.speak(voiced(1.0, 140.0, seed=5), 9, {})
        wait_for(lambda: left.speech(9) and left.frames[-1].frame_index > left.speech(9)[-1].frame_index,
                 30.0, "the utterance's frames")
        assert {f.emotion for f in left.speech(9)} == {"furious"}
    finally:
        # Cancelled, not destroyed: destroying a timer or publisher while the executor's thread
        # builds its wait set raised InvalidHandle in that thread (rclpy). The node's teardown
        # destroys both.
        timer.cancel()
        emotion.publish(String(data=""))  # back to the default for the module's other tests
        wait_for(lambda: left.frames[-1].emotion != "furious", 30.0, "the default emotion back")
