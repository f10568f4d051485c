"""talking_face_node under a storm of generated input (hypothesis), in this process with real rclpy.

Thousands of AudioChunk and emotion messages, each drawn to be a little or very wrong (odd
rates and channel counts, malformed lengths, empty chunks, clipping, duplicates, stamps that
jump, go backwards or are zero, control characters, surrogates, texts of thousands of
characters, a new text for every message), go straight into the node's subscription callbacks
while its executor publishes frames. No exception may escape, the engine worker must report
no error, /diagnostics must count exactly what the messages' contract says is bad, and the
face must go on: frames keep coming, and a proper utterance afterwards is animated.

The node runs the tiny random bundle. Its Moonshine encoder is swapped for the cheap stand-in
of engine_fixtures before the worker starts: the fuzz opens and closes hundreds of utterances,
and a real encoder pass at each end would take minutes; everything between the callbacks and
the frames is the node's own code. test_node_inprocess covers the real encoder end to end.
"""
from __future__ import annotations

import array
import dataclasses
import os
import time
from collections import deque

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

rclpy = pytest.importorskip("rclpy", reason="rclpy not installed (scripts/build_ros.sh)")
msgs = pytest.importorskip("talking_face_ros.msg", reason="messages not built: scripts/build_ros.sh")

from rclpy.parameter import Parameter  # noqa: E402
from std_msgs.msg import String  # noqa: E402

from talking_face_ros.emotions import clean_text  # noqa: E402
from talking_face_ros.face_timeline import MAX_RATE, MIN_RATE, NS  # noqa: E402

from engine_fixtures import CheapSpeech  # noqa: E402  (pytest puts test/ on sys.path)
from node_fixtures import NodeUnderTest, wait_for  # noqa: E402

NAMESPACE = f"/fuzz_face_{os.getpid()}"
FUZZ = settings(max_examples=1000, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                       HealthCheck.function_scoped_fixture])


class Face(NodeUnderTest):
    """The node under test beside a recorder of its frames, spun in a background thread."""

    def __init__(self, folder):
        from talking_face_ros.bundle import load_bundle
        from talking_face_ros.encoders import Encoders
        from talking_face_ros.engine import Engine

        super().__init__(folder, namespace=NAMESPACE, tester="recorder",
                         parameters={"delay_margin": 1.5, "max_queue": 600.0, "max_clock_offset": 5.0,
                                     "utterance_timeout": 0.3,
                                     "engine_process": False})  # an engine in this process, to swap
        host = self.node.engine
        real = host.engine
        cheap = load_bundle(folder, device="cpu", encoders=Encoders(CheapSpeech(), real.bundle.encoders.text))
        host.engine = Engine(cheap, emotion_blend_s=real.emotion_blend_s)
        assert host.engine.latency_s == real.latency_s  # the same plan: the node's delay still fits
        host.set_emotion(self.node.default_emotion)
        self.spin()
        wait_for(lambda: self.frames, 20.0, "the first frame")

    def counts(self):
        return self.node.stats()["counts"]

    def drained(self):
        """Until the worker has taken every message and applied the newest emotion."""
        wait_for(lambda: self.node._work.empty() and self.node._emotion_next is None, 60.0, "the worker")
        time.sleep(0.2)  # the last item taken may still be in work


@pytest.fixture(scope="module")
def face(tmp_path_factory):
    from talking_face_ros.bundle import make_random_bundle

    f = Face(make_random_bundle(tmp_path_factory.mktemp("bundle") / "random"))
    yield f
    f.close()


def chunk_message(*, stream, sequence, utterance, start, end, stamp_ns, rate, channels, samples):
    msg = msgs.AudioChunk(stream_id=stream, sequence=sequence, utterance_id=utterance, utterance_start=start,
                          utterance_end=end, sample_rate=rate, channels=channels,
                          samples=array.array("h", np.ascontiguousarray(samples, np.int16).tobytes()))
    msg.header.stamp.sec, msg.header.stamp.nanosec = stamp_ns // NS, stamp_ns % NS
    return msg


def malformed(msg) -> bool:
    """What the AudioChunk contract rules out (msg/AudioChunk.msg; face_timeline.AudioIntake)."""
    n = len(msg.samples)
    return (not MIN_RATE <= msg.sample_rate <= MAX_RATE or msg.channels == 0 or n % msg.channels != 0
            or (n == 0 and not (msg.utterance_start or msg.utterance_end)))


def key(msg) -> tuple:
    return (msg.stream_id, msg.sequence, msg.header.stamp.sec, msg.header.stamp.nanosec, msg.sample_rate,
            msg.channels, bytes(msg.samples))


class Stream:
    """What the generator remembers between examples: the stream clock and the last messages."""

    def __init__(self, node):
        self.node = node
        self.next_stamp = 0
        self.sequence = 0
        self.sent = deque(maxlen=8)  # recent messages, for duplicates
        self.keys = deque(maxlen=64)  # keys the intake remembers (face_timeline.RECENT_CHUNKS)
        self.expected = {"chunks_received": 0, "bad_inputs": 0, "duplicates": 0, "clipped_chunks": 0}

    def now(self) -> int:
        return self.node.get_clock().now().nanoseconds


@dataclasses.dataclass(frozen=True)
class Recipe:
    """The drawn choices of one AudioChunk; the stream state turns them into a message (the
    strategy itself must not depend on that state, or hypothesis cannot replay it)."""

    repeat: int  # 0: deliver one of the last messages again
    which: int  # which of them
    rate: int
    channels: int
    frames: int
    extra: int  # samples beyond frames * channels (a malformed length when not 0)
    kind: str
    seed: int
    how: str  # where the stamp goes
    offset: int  # ns, for "jump" / "back"
    foreign: int  # ns, a stamp on another clock
    sequence: int  # 0: repeat the counter, 1: +1, else a jump
    stream: str
    utterance: int
    start: bool
    end: bool


recipes = st.builds(
    Recipe, repeat=st.integers(0, 19), which=st.integers(0, 7),
    rate=st.one_of(st.sampled_from((16000, 16000, 8000, 22050, 44100, 48000)),
                   st.sampled_from((0, 1, 999, MAX_RATE + 1, 2**32 - 1)), st.integers(MIN_RATE, MAX_RATE)),
    channels=st.one_of(st.just(1), st.sampled_from((2, 6)), st.sampled_from((0, 255))),
    frames=st.integers(0, 800), extra=st.sampled_from((0, 0, 0, 0, 1, -1)),
    kind=st.sampled_from(("speech", "speech", "silence", "full_scale", "clipped")), seed=st.integers(0, 2**32 - 1),
    how=st.sampled_from(("continue",) * 12 + ("now", "jump", "back", "zero", "foreign")),
    offset=st.integers(10**6, 3 * NS), foreign=st.integers(0, (2**31 - 1) * NS), sequence=st.integers(0, 9),
    stream=st.sampled_from(("mic",) * 8 + ("file", "")), utterance=st.integers(0, 3),
    start=st.integers(0, 49).map(lambda x: x == 0), end=st.integers(0, 49).map(lambda x: x == 0),
)


def cook(r: Recipe, stream: Stream):
    """One AudioChunk from a recipe: mostly plausible, every field sometimes wrong, sometimes a repeat."""
    if r.repeat == 0 and stream.sent:
        return stream.sent[-1 - r.which % len(stream.sent)]  # delivered again
    frames = min(r.frames, max(0, r.rate // 40))  # at most 25 ms
    n = max(frames * max(r.channels, 1) + r.extra, 0)
    rng = np.random.default_rng(r.seed)
    if r.kind == "silence":
        samples = np.zeros(n, np.int16)
    elif r.kind == "full_scale":
        samples = rng.integers(-32768, 32768, n).astype(np.int16)
    elif r.kind == "clipped":
        samples = np.clip(rng.normal(0, 40000, n), -32768, 32767).astype(np.int16)
    else:
        samples = rng.normal(0, 3000, n).astype(np.int16)
    now = stream.now()
    stamp = {"continue": stream.next_stamp or now, "now": now, "jump": stream.next_stamp + r.offset,
             "back": stream.next_stamp - r.offset, "zero": 0, "foreign": r.foreign}[r.how]
    stamp = min(max(stamp, 0), (2**31 - 1) * NS)  # header.stamp.sec is an int32
    sequence = (stream.sequence + (r.sequence if r.sequence < 2 else 1 + r.sequence * 7)) % 2**32
    msg = chunk_message(stream=r.stream, sequence=sequence, utterance=r.utterance, start=r.start, end=r.end,
                        stamp_ns=stamp, rate=r.rate, channels=r.channels, samples=samples)
    stream.sequence = sequence
    if r.rate > 0 and r.channels > 0:
        stream.next_stamp = stamp + (n // r.channels) * NS // r.rate
    return msg


def test_a_thousand_generated_audio_chunks(face):
    stream = Stream(face.node)
    before = face.counts()
    node_before = dict(face.node.counts)
    first_frame = len(face.frames)

    @FUZZ
    @given(recipe=recipes)
    def feed(recipe):
        msg = cook(recipe, stream)
        face.node._on_audio(msg)
        stream.sent.append(msg)
        e = stream.expected
        e["chunks_received"] += 1
        if malformed(msg):
            e["bad_inputs"] += 1
        elif key(msg) in stream.keys:
            e["duplicates"] += 1
        else:
            stream.keys.append(key(msg))
            if len(msg.samples) and (max(msg.samples) == 32767 or min(msg.samples) == -32768):
                e["clipped_chunks"] += 1

    feed()
    face.drained()
    counts = face.counts()
    assert face.node.counts["engine_errors"] == node_before.get("engine_errors", 0)
    # Nothing was dropped before the intake (max_queue 600 s), so its counts are exact.
    assert face.node.counts["chunks_dropped"] == node_before.get("chunks_dropped", 0)
    assert face.node.counts["queue_full"] == node_before.get("queue_full", 0)
    assert stream.expected["chunks_received"] >= 1000
    for name, n in stream.expected.items():
        assert counts[name] - before[name] == n, (name, counts[name] - before[name], n)
    assert counts["utterances"] > before["utterances"] and counts["gaps_filled"] + counts["resyncs"] > 0
    # The face went on all along: one frame per period, every weight in [0, 1].
    frames = face.frames[first_frame:]
    index = np.array([f.frame_index for f in frames])
    assert len(frames) > 0 and np.all(np.diff(index) >= 1)
    w = np.array([f.weights for f in frames])
    assert np.isfinite(w).all() and w.min() >= 0 and w.max() <= 1
    wait_for(lambda: any(f.speaking for f in face.frames[first_frame:]), 15.0, "speech frames of the storm")


emotion_texts = st.one_of(
    st.text(st.characters(exclude_categories=()), max_size=60),  # any code point, lone surrogates too
    st.text(st.sampled_from("ab \t\n\x00\x1b\x7f\u200b\u3000é怒😡ب"), max_size=30),
    st.builds(lambda c, n: c * n, st.sampled_from(("a", "sad ", " ", "怒")), st.integers(900, 1100)),
    st.sampled_from(("", "   ", "furious", "beaming with joy", "悲しい", "очень рад", "fröhlich 😊")),
)


def test_a_thousand_generated_emotion_texts_one_per_message(face):
    before = face.counts()
    node_before = dict(face.node.counts)
    sent = []
    first_frame = len(face.frames)

    @FUZZ
    @given(text=emotion_texts)
    def feed(text):
        face.node._on_emotion(String(data=text))
        sent.append(text)

    feed()
    face.drained()
    counts = face.counts()
    refused = [t for t in sent if len(t) > 1000]
    taken = [t for t in sent if len(t) <= 1000]
    assert len(sent) >= 1000 and refused and taken
    assert counts["emotions_received"] - before["emotions_received"] == len(sent)
    assert counts["bad_emotions"] - before["bad_emotions"] == len(refused)
    assert counts["emotions_cleaned"] - before["emotions_cleaned"] == sum(bool(clean_text(t)[1]) for t in taken)
    # Texts that arrived while another waited were replaced, never embedded: the worker kept up.
    superseded = counts["emotions_superseded"] - before["emotions_superseded"]
    assert 0 < superseded < len(taken)
    assert face.node.counts["engine_errors"] == node_before.get("engine_errors", 0)
    # The newest text is the one in force (blank: the default emotion).
    newest = clean_text(taken[-1])[0] or face.node.default_emotion
    assert face.node.timeline.emotion.text == newest  # frames show it `delay` after it arrived
    assert len(face.frames) > first_frame


def test_the_face_goes_on_after_the_storm(face):
    """Frames keep their period, and a clean utterance is animated as usual."""
    face.node._on_emotion(String(data="calm"))
    time.sleep(0.5)  # utterance_timeout: whatever the storm left open closes
    start = len(face.frames)
    wait_for(lambda: len(face.frames) >= start + 20, 10.0, "frames")
    recent = face.frames[start:start + 20]
    assert np.all(np.diff([f.frame_index for f in recent]) == 1)
    stamp = face.node.get_clock().now().nanoseconds
    t = np.arange(16000) / 16000
    pcm = (8000 * np.sin(2 * np.pi * 150 * t) * np.clip(np.sin(2 * np.pi * 3 * t), 0, None)).astype(np.int16)
    for i in range(0, 16000, 320):
        face.node._on_audio(chunk_message(stream="after", sequence=i // 320, utterance=77, start=i == 0,
                                          end=i + 320 >= 16000, stamp_ns=stamp + i * NS // 16000, rate=16000,
                                          channels=1, samples=pcm[i:i + 320]))

    def spoken():
        return [f for f in face.frames[start:] if f.speaking and f.utterance_id == 77]
    wait_for(lambda: spoken() and face.frames[-1].frame_index > spoken()[-1].frame_index + 5, 30.0,
             "the clean utterance")
    spoken = spoken()
    assert len(spoken) >= 29  # one second at 30 fps
    assert {f.emotion for f in spoken} == {"calm"}


# ---------------------------------------------------------------------------------------------
# Long chunks, parameters


def test_a_chunk_of_many_seconds_is_taken_whole(face):
    """A whole 4 s file in one message (more than max_queue 2 s): animated, in 0.1 s pieces."""
    node = face.node
    saved = node.params
    node.params = dataclasses.replace(saved, max_queue=2.0)
    try:
        before = face.counts()
        wait_for(lambda: node.timeline.pending() == 0 and node._queued_s < 1e-3, 20.0, "nothing held")
        stamp = node.get_clock().now().nanoseconds
        pcm = np.random.default_rng(4).normal(0, 3000, 4 * 8000).astype(np.int16)
        # No utterance flags (those always pass): taken because nothing else is held.
        node._on_audio(chunk_message(stream="long", sequence=0, utterance=88, start=False, end=False,
                                     stamp_ns=stamp, rate=8000, channels=1, samples=pcm))
        face.drained()
        counts = face.counts()
        assert counts["chunks_dropped"] == before["chunks_dropped"]
        assert counts["bad_inputs"] == before["bad_inputs"]
        # Animated at once: its frames (4 s at 30 fps) wait in the timeline for their time.
        wait_for(lambda: node.timeline.pending() >= 4 * 30 - 30, 20.0, "the frames of the 4 s")
    finally:
        node.params = saved


@pytest.mark.parametrize("name, value, message", [
    ("fps", "fast", "parameter fps: expected a floating-point number"),
    ("fps", 30, "write 30.0, not 30"),
    ("threads", 1.5, "parameter threads: expected an integer"),
    ("publish_mesh", "yes", "parameter publish_mesh: expected true or false"),
    ("max_gap", -1.0, "parameter max_gap = -1.0 is outside [0, 60]"),
    ("device", "tpu", "parameter device = 'tpu': expected one of auto, cpu, cuda"),
    ("model", "/nonexistent/bundle", "no bundle.json in that folder"),
])
def test_a_bad_parameter_is_one_clear_error_before_anything_loads(name, value, message):
    from talking_face_ros.node_params import ParameterError
    from talking_face_ros.nodes.talking_face_node import TalkingFaceNode

    context = rclpy.Context()
    rclpy.init(context=context)
    try:
        with pytest.raises(ParameterError) as error:
            TalkingFaceNode(context=context, parameter_overrides=[Parameter(name, value=value)])
        assert message in str(error.value) and "\n" not in str(error.value)
    finally:
        rclpy.shutdown(context=context)
