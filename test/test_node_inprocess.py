"""talking_face_node in this process with real rclpy: audio in, frames out, on one timeline.

One node (random model bundle) runs for the whole module, spun in a background thread beside
a test node that publishes audio and emotion and records every frame. The tests run in file
order on the same stream of frames; the last one checks that the whole recording, through
idle stretches, utterances, emotion changes and bad input, is one unbroken timeline.
"""
from __future__ import annotations

import array
import os
import time
from pathlib import Path

import numpy as np
import pytest

rclpy = pytest.importorskip("rclpy", reason="rclpy not installed (scripts/build_ros.sh)")
msgs = pytest.importorskip("talking_face_ros.msg", reason="messages not built: scripts/build_ros.sh")

from diagnostic_msgs.msg import DiagnosticArray  # noqa: E402
from std_msgs.msg import String  # noqa: E402

from talking_face_ros.arkit import ARKIT_NAMES, INDEX  # noqa: E402
from talking_face_ros.face_timeline import ENGINE_RATE, NS  # noqa: E402

from node_fixtures import NodeUnderTest, wait_for  # noqa: E402  (pytest puts test/ on sys.path)

REPO = Path(__file__).resolve().parents[1]
NAMESPACE = f"/test_face_{os.getpid()}"  # other test runs on this machine share the DDS domain


def stamp_ns(frame) -> int:
    return frame.header.stamp.sec * NS + frame.header.stamp.nanosec


class Session(NodeUnderTest):
    """The node under test, a test node with its publishers, and everything received."""

    def __init__(self, folder: Path):
        from talking_face_ros.nodes.talking_face_node import AUDIO_QOS, EMOTION_QOS

        super().__init__(folder, namespace=NAMESPACE, tester="tester",
                         parameters={"speech_blend_s": 0.0,  # speech frames exactly as the engine made them
                                     "delay_margin": 1.5,  # a shared 2-core machine: keep frames on time
                                     "max_gap": 0.5})
        self.diagnostics = []
        self.tester.create_subscription(DiagnosticArray, "/diagnostics", self._on_diagnostics, 10)
        self.audio = self.tester.create_publisher(msgs.AudioChunk, "audio", AUDIO_QOS)
        self.emotion = self.tester.create_publisher(String, "emotion", EMOTION_QOS)
        self.spin()
        wait_for(lambda: self.audio.get_subscription_count() and self.emotion.get_subscription_count()
                 and self.frames, 10.0, "the node's subscriptions and first frame")
        self.sequence = 0
        self.utterance = 0

    def _on_diagnostics(self, msg):
        self.diagnostics += [s for s in msg.status if s.name.startswith(NAMESPACE)]

    def now_ns(self) -> int:
        return self.node.get_clock().now().nanoseconds

    def chunk(self, samples: np.ndarray, stamp: int, *, rate=16000, channels=1, start=False, end=False):
        msg = msgs.AudioChunk(stream_id="test", sequence=self.sequence % 2**32, utterance_id=self.utterance,
                              utterance_start=start, utterance_end=end, sample_rate=rate, channels=channels,
                              samples=array.array("h", np.ascontiguousarray(samples, dtype=np.int16).tobytes()))
        msg.header.stamp.sec, msg.header.stamp.nanosec = stamp // NS, stamp % NS
        self.sequence += 1
        self.audio.publish(msg)

    def speak(self, pcm: np.ndarray, *, rate=16000, chunk_s=0.02) -> tuple[int, int]:
        """Publish ``(frames, channels)`` int16 as one utterance, paced in real time; (utterance id, stamp)."""
        self.utterance += 1
        step = int(rate * chunk_s)
        stamp0 = self.now_ns()
        wall0 = time.monotonic()
        for start in range(0, len(pcm), step):
            block = pcm[start:start + step]
            time.sleep(max(0.0, wall0 + (start + len(block)) / rate - time.monotonic()))
            self.chunk(block.reshape(-1), stamp0 + start * NS // rate, rate=rate, channels=pcm.shape[1],
                       start=start == 0, end=start + step >= len(pcm))
        return self.utterance, stamp0

    def speech_frames(self, utterance: int):
        return [f for f in self.frames if f.speaking and f.utterance_id == utterance]

    def wait_utterance_done(self, utterance: int, timeout_s: float = 30.0):
        """Until idle frames follow the utterance's speech frames."""
        def done():
            speech = self.speech_frames(utterance)
            return speech and any(f.frame_index > speech[-1].frame_index and not f.speaking for f in self.frames)
        wait_for(done, timeout_s, f"the frames of utterance {utterance}")
        return self.speech_frames(utterance)


@pytest.fixture(scope="module")
def session(tmp_path_factory):
    from talking_face_ros.bundle import make_random_bundle

    folder = make_random_bundle(tmp_path_factory.mktemp("bundle") / "random")
    s = Session(folder)
    yield s
    s.close()


def offline(session, audio16k: np.ndarray, pad: int, rate: int = ENGINE_RATE) -> np.ndarray:
    """The engine fed the same padded utterance at once (after the node is idle: no concurrent use)."""
    from talking_face_ros.bundle import load_bundle
    from talking_face_ros.engine import Engine

    engine = Engine(load_bundle(session.node.model_folder, device="cpu"))
    engine.push(np.zeros(pad, np.float32), ENGINE_RATE)
    engine.push(audio16k, rate)
    engine.flush()
    return engine.pull_arrays()[2]


def pad_of(session, stamp: int) -> int:
    grid = session.node.grid
    return int(round((stamp - grid.stamp(grid.index_at_or_before(stamp))) * ENGINE_RATE / NS))


def speech_like(seconds: float, rate: int, seed: int) -> np.ndarray:
    """Syllable-rate amplitude-modulated harmonics (a voiced-speech stand-in), float in [-0.5, 0.5]."""
    t = np.arange(int(seconds * rate)) / rate
    rng = np.random.default_rng(seed)
    f0 = 120 + 20 * np.sin(2 * np.pi * 0.7 * t)
    voice = sum(np.sin(2 * np.pi * k * np.cumsum(f0) / rate) / k for k in range(1, 6))
    envelope = np.clip(np.sin(2 * np.pi * 4.0 * t + rng.uniform(0, 6)), 0, None)
    return (0.3 * voice * envelope / 2.3).astype(np.float32)


def to_pcm(x: np.ndarray) -> np.ndarray:
    return np.round(np.clip(x, -1, 32767 / 32768) * 32768).astype(np.int16)


# ---------------------------------------------------------------------------------------------


def test_idle_face_is_published_before_any_audio(session):
    first = len(session.frames)
    wait_for(lambda: len(session.frames) >= first + 30, 10.0, "a second of idle frames")
    idle = session.frames[first:first + 30]
    assert not any(f.speaking for f in idle)
    assert all(tuple(f.names) == ARKIT_NAMES and len(f.weights) == 52 and f.fps == 30.0 for f in idle)
    w = np.array([f.weights for f in idle])
    assert np.all((w >= 0) & (w <= 1))
    # A living face: the gaze drifts, so no two consecutive frames are equal.
    assert np.all(np.abs(np.diff(w, axis=0)).sum(axis=1) > 0)
    assert {f.emotion for f in idle} == {"neutral"} and {f.emotion_label for f in idle} == {"neutral"}


def test_speech_frames_are_the_engines_frames_on_the_grid(session):
    audio = speech_like(1.2, 16000, seed=1)
    utterance, stamp0 = session.speak(to_pcm(audio)[:, None])
    # A second utterance right after, at 44.1 kHz in stereo (left and right differ): resampled
    # and averaged by the node.
    stereo = np.stack([speech_like(0.8, 44100, seed=2), 0.5 * speech_like(0.8, 44100, seed=3)], axis=1)
    second, stamp1 = session.speak(to_pcm(stereo), rate=44100)
    frames = session.wait_utterance_done(second)
    first = session.speech_frames(utterance)

    pad = pad_of(session, stamp0)
    expected = offline(session, to_pcm(audio).astype(np.float32) / 32768, pad)
    # The second utterance starts on the grid frame holding its first sample; when that frame
    # also holds the end of the first utterance, the later utterance takes the slot.
    kept = min(len(expected), frames[0].frame_index - first[0].frame_index)
    assert len(expected) - 1 <= kept and len(first) == kept
    np.testing.assert_allclose(np.array([f.weights for f in first]), expected[:kept], atol=1e-5)
    # Frame i of the utterance depicts its first sample's time - pad + i / fps.
    origin = stamp0 - round(pad * NS / ENGINE_RATE)
    assert abs(stamp_ns(first[0]) - origin) <= NS // ENGINE_RATE
    assert all(0 < f.latency < 10 for f in first)

    downmix = to_pcm(stereo).astype(np.float32).mean(axis=1) / 32768
    expected = offline(session, downmix, pad_of(session, stamp1), rate=44100)
    assert len(frames) == len(expected)
    np.testing.assert_allclose(np.array([f.weights for f in frames]), expected, atol=1e-4)


def test_emotion_changes_blend_in_and_empty_text_restores_the_default(session):
    session.emotion.publish(String(data="furious"))
    # The change is an event at the audio time it arrived: frames show it `delay` later.
    wait_for(lambda: session.frames[-1].emotion == "furious", 15.0, "frames with the new emotion")
    changed = len(session.frames)
    first = session.frames[changed - 1]
    assert session.frames[changed - 2].emotion == "neutral"  # switches exactly at one frame
    wait_for(lambda: len(session.frames) >= changed + 30, 10.0, "a second of frames")  # blend: 0.5 s
    angry = session.frames[changed + 20:changed + 30]
    assert {(f.emotion_label, f.emotion_intensity) for f in angry} == {("angry", 3)}
    brow = INDEX["browDownLeft"]
    before = [f.weights[brow] for f in session.frames[:changed - 30] if f.emotion == "neutral" and not f.speaking]
    # The angry layer lowers the brows by 0.8 at full intensity (teacher.expression).
    assert np.mean([f.weights[brow] for f in angry]) > np.max(before) + 0.5
    assert first.weights[brow] < np.max(before) + 0.05  # the blend starts at the switch
    session.emotion.publish(String(data=""))
    wait_for(lambda: session.frames[-1].emotion == "neutral", 15.0, "the default emotion again")
    assert session.frames[-1].emotion_label == "neutral"


def test_bad_audio_is_counted_and_the_face_goes_on(session):
    now = session.now_ns()
    bad_before = session.node.stats()["counts"]["bad_inputs"]
    session.utterance += 1
    session.chunk(np.zeros(0), now)  # empty, no flags
    session.chunk(np.ones(3), now, channels=2)  # 3 samples in 2 channels
    session.chunk(np.ones(320), now, channels=0)
    session.chunk(np.ones(320), now, rate=0)
    session.chunk(np.zeros(121_000), now, rate=1000)  # 121 s in one chunk
    # Full-scale random int16 (NaN cannot occur in int16, but noise can be as loud as it gets),
    # 3 s in one single chunk, at 8 kHz.
    noise = np.random.default_rng(0).integers(-32768, 32768, 24000).astype(np.int16)
    session.utterance += 1
    stamp = session.now_ns()
    session.chunk(noise, stamp, rate=8000, start=True, end=True)
    frames = session.wait_utterance_done(session.utterance)
    w = np.array([f.weights for f in frames])
    assert np.all(np.isfinite(w)) and np.all((w >= 0) & (w <= 1))
    expected = offline(session, noise.astype(np.float32) / 32768, pad_of(session, stamp), rate=8000)
    assert len(frames) == len(expected)  # 3 s at 30 fps, + the pad
    np.testing.assert_allclose(w, expected, atol=1e-4)
    assert session.node.stats()["counts"]["bad_inputs"] == bad_before + 5
    wait_for(lambda: any(int(dict((v.key, v.value) for v in s.values)["bad inputs"]) >= bad_before + 5
                         for s in session.diagnostics), 5.0, "diagnostics counting the bad inputs")


def test_everything_received_is_one_unbroken_timeline(session):
    frames = list(session.frames)
    index = np.array([f.frame_index for f in frames])
    stamps = np.array([stamp_ns(f) for f in frames])
    period = session.node.grid.period_ns
    counts = session.node.stats()["counts"]
    assert np.all(np.diff(index) == 1), f"frames missing or repeated: {counts}"
    assert np.all(np.diff(stamps) == period), "stamps must rise by exactly one period"
    # idle -> speech (two utterances back to back) -> idle -> speech (noise) -> idle, on one grid
    speaking = np.array([f.speaking for f in frames])
    # Back-to-back utterances whose stamps leave a sliver of silence (scheduling jitter of the
    # publishing test) show one or two idle frames between them: that is the audio, not a break.
    for start in np.flatnonzero(np.diff(speaking.astype(int)) == -1) + 1:
        end = start
        while end < len(speaking) and not speaking[end]:
            end += 1
        if end < len(speaking) and end - start <= 2:
            speaking[start:end] = True
    switches = np.flatnonzero(np.diff(speaking))
    assert len(switches) == 4, (switches, counts)
    utterances = [f.utterance_id for f in frames if f.speaking]
    assert len(set(utterances)) == 3 and utterances == sorted(utterances)
    assert counts["late_frames"] == 0 and counts["frames_skipped"] == 0, counts
    status = session.diagnostics[-1]
    values = {v.key: v.value for v in status.values}
    assert int(values["frames published"]) >= len(frames) - 40
    assert float(values["delay (s)"]) == pytest.approx(session.node.delay_s, abs=1e-3)



def test_an_engine_process_that_dies_is_replaced_and_the_face_goes_on(session):
    """Runs last: it ends an utterance on purpose. The engine's child process is killed outright
    (as the kernel's out-of-memory killer would); the node notices at the next audio, starts a
    new one, never stops publishing, and animates the next utterance as before."""
    import signal

    engine = session.node.engine
    old = engine.pid
    before = dict(session.node.stats()["counts"])
    first = len(session.frames)
    os.kill(old, signal.SIGKILL)
    session.speak(to_pcm(speech_like(0.4, 16000, seed=4))[:, None])
    wait_for(lambda: session.node.stats()["counts"]["engine_restarts"] == before.get("engine_restarts", 0) + 1,
             60.0, "a new engine process")
    assert engine.alive and engine.pid != old
    counts = session.node.stats()["counts"]
    assert counts["engine_errors"] > before.get("engine_errors", 0)

    utterance, stamp = session.speak(to_pcm(speech_like(1.0, 16000, seed=5))[:, None])
    frames = session.wait_utterance_done(utterance)
    expected = offline(session, to_pcm(speech_like(1.0, 16000, seed=5)).astype(np.float32) / 32768,
                       pad_of(session, stamp))
    assert len(frames) == len(expected)
    np.testing.assert_allclose(np.array([f.weights for f in frames]), expected, atol=1e-4)
    index = np.array([f.frame_index for f in session.frames[first:]])
    assert np.all(np.diff(index) == 1), "frames stopped or repeated while the engine restarted"
