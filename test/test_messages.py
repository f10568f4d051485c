"""The generated AudioChunk / BlendshapeFrame messages: layout, serialization, a real topic.

Needs the ROS 2 wheels and the message build (scripts/build_ros.sh); a pure-Python install
without ROS skips this file.
"""
from __future__ import annotations

import array
import os
import time
from pathlib import Path

import numpy as np
import pytest

rclpy = pytest.importorskip("rclpy", reason="rclpy not installed (scripts/build_ros.sh)")
msg = pytest.importorskip("talking_face_ros.msg", reason="messages not built: scripts/build_ros.sh")

from rclpy.serialization import deserialize_message, serialize_message  # noqa: E402

from talking_face_ros.arkit import ARKIT_NAMES  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


def _frame(index: int) -> msg.BlendshapeFrame:
    frame = msg.BlendshapeFrame()
    frame.header.stamp.sec = 1_700_000_000
    frame.header.stamp.nanosec = 33_333_333 * (index % 30)
    frame.header.frame_id = "face"
    frame.frame_index = 2**40 + index  # beyond 32 bits: the field is uint64
    frame.fps = 30.0
    frame.names = list(ARKIT_NAMES)
    # array.array with the field's typecode passes the optional field checks
    # (ROS_PYTHON_CHECK_FIELDS=1), which refuse numpy scalars; a bare numpy array passes only
    # unchecked.
    weights = np.linspace(0.0, 1.0, len(ARKIT_NAMES), dtype=np.float32)
    frame.weights = array.array("f", weights.tobytes())
    frame.speaking = True
    frame.utterance_id = 7
    frame.emotion = "a little sad, but hopeful"
    frame.emotion_label = "sad"
    frame.emotion_intensity = 2
    frame.latency = 0.125
    return frame


def test_field_layout():
    assert msg.AudioChunk.get_fields_and_field_types() == {
        "header": "std_msgs/Header",
        "stream_id": "string",
        "sequence": "uint32",
        "utterance_id": "uint32",
        "utterance_start": "boolean",
        "utterance_end": "boolean",
        "sample_rate": "uint32",
        "channels": "uint8",
        "samples": "sequence<int16>",
    }
    assert msg.BlendshapeFrame.get_fields_and_field_types() == {
        "header": "std_msgs/Header",
        "frame_index": "uint64",
        "fps": "float",
        "names": "sequence<string>",
        "weights": "sequence<float>",
        "speaking": "boolean",
        "utterance_id": "uint32",
        "emotion": "string",
        "emotion_label": "string",
        "emotion_intensity": "uint8",
        "latency": "float",
    }
    assert msg.BlendshapeFrame.NUM_BLENDSHAPES == len(ARKIT_NAMES) == 52


def test_checked_fields_reject_out_of_range_values():
    # Kilted checks field values only on request (check_fields=True or ROS_PYTHON_CHECK_FIELDS=1);
    # unchecked, channels=256 goes out on the wire as 0.
    chunk = msg.AudioChunk(check_fields=True)
    with pytest.raises(AssertionError):
        chunk.channels = 256  # one past uint8
    with pytest.raises(AssertionError):
        chunk.samples = [0, 32768]  # one past int16
    frame = msg.BlendshapeFrame(check_fields=True)
    with pytest.raises(AssertionError):
        frame.frame_index = -1
    with pytest.raises(AssertionError):
        frame.names = ["jawOpen", 1.0]


def test_blendshape_frame_round_trip():
    frame = _frame(3)
    back = deserialize_message(serialize_message(frame), msg.BlendshapeFrame)
    assert back == frame
    assert tuple(back.names) == ARKIT_NAMES
    # float32 on the wire: the float32 weights come back bit for bit.
    np.testing.assert_array_equal(np.asarray(back.weights, dtype=np.float32),
                                  np.linspace(0.0, 1.0, 52, dtype=np.float32))
    assert back.frame_index == 2**40 + 3
    assert (back.header.stamp.sec, back.header.stamp.nanosec) == (1_700_000_000, 99_999_999)
    assert back.emotion == "a little sad, but hopeful"


def test_audio_chunk_round_trip_keeps_int16_extremes():
    # Stereo, interleaved: left counts up from the minimum, right down from the maximum.
    left = np.arange(-32768, -32768 + 320, dtype=np.int16)
    right = np.arange(32767, 32767 - 320, -1, dtype=np.int16)
    samples = np.stack([left, right], axis=1).reshape(-1)
    chunk = msg.AudioChunk(stream_id="mic", sequence=41, utterance_id=3, utterance_start=True,
                           utterance_end=False, sample_rate=16000, channels=2,
                           samples=array.array("h", samples.tobytes()))
    back = deserialize_message(serialize_message(chunk), msg.AudioChunk)
    assert back == chunk
    got = np.frombuffer(back.samples, dtype=np.int16).reshape(-1, back.channels)
    np.testing.assert_array_equal(got[:, 0], left)
    np.testing.assert_array_equal(got[:, 1], right)
    assert (back.sequence, back.utterance_id, back.utterance_start) == (41, 3, True)


def test_audio_samples_cost_two_bytes_each_on_the_wire():
    empty = len(serialize_message(msg.AudioChunk(sample_rate=16000, channels=1)))
    chunk = msg.AudioChunk(sample_rate=16000, channels=1, samples=array.array("h", bytes(640)))
    assert len(serialize_message(chunk)) - empty == 2 * 320


def _spin_until(executor, condition, *, timeout_s: float) -> bool:
    """Spin until condition() holds; DDS matching takes a variable time, so poll, never sleep."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            return False
        executor.spin_once(timeout_sec=0.05)
    return True


def test_publish_and_receive_a_frame(monkeypatch):
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.qos import QoSProfile, ReliabilityPolicy

    monkeypatch.setenv("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    profile = REPO / "config" / "fastdds_localhost.xml"  # quick discovery, see the file
    monkeypatch.setenv("FASTDDS_DEFAULT_PROFILES_FILE", str(profile))
    context = rclpy.Context()
    rclpy.init(context=context)
    try:
        executor = SingleThreadedExecutor(context=context)
        publisher_node = rclpy.create_node("test_blendshape_publisher", context=context)
        subscriber_node = rclpy.create_node("test_blendshape_subscriber", context=context)
        executor.add_node(publisher_node)
        executor.add_node(subscriber_node)
        # A topic of this process alone: other test runs on the machine share the domain.
        topic = f"/test_messages_{os.getpid()}/blendshapes"
        qos = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
        received = []
        publisher = publisher_node.create_publisher(msg.BlendshapeFrame, topic, qos)
        subscriber_node.create_subscription(msg.BlendshapeFrame, topic, received.append, qos)

        matched = _spin_until(executor, lambda: publisher.get_subscription_count() >= 1
                              and subscriber_node.count_publishers(topic) >= 1, timeout_s=10.0)
        assert matched, "publisher and subscription did not match within 10 s"
        sent = _frame(5)
        publisher.publish(sent)
        assert _spin_until(executor, lambda: received, timeout_s=10.0), "no frame within 10 s"
        assert received[0] == sent
        assert tuple(received[0].names) == ARKIT_NAMES
        executor.shutdown()
        publisher_node.destroy_node()
        subscriber_node.destroy_node()
    finally:
        rclpy.shutdown(context=context)
