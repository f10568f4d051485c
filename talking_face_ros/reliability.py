"""Soak, overload and fault scenarios of talking_face_node, each with the figures it gives.

``talking-face reliability`` (commands/reliability.py) runs them and prints a table; the
README's Reliability section quotes a full run. Every scenario drives the real node with real
rclpy: the installed executable as a process (``.venv/lib/talking_face_ros/talking_face_node``)
where memory, exit status or a killed peer is the point, this process where a failure has to
be injected. Speech is the bundled sample sentence (``assets/sample.wav``, 3.3 s) looped, one
utterance per pass with 0.5 s pauses, in 20 ms AudioChunks stamped on the sample clock.

=============  ===========================================================================
scenario       what happens, and what passes
=============  ===========================================================================
soak           a node process fed ``soak_minutes`` of speech as fast as it takes it: the
               driver keeps the audio at most ``max_queue - 2 s`` ahead of real time (the
               node holds at most ``max_queue`` s, so that is as fast as it takes audio) and
               pauses when the node's diagnostics report more held. Resident memory sampled
               every 2 s; passes with growth under 5 % from the end of warm-up (the first
               fifth, at most 2 min of audio) to the end, no frame missing, no chunk dropped,
               no engine error
realtime       then ``realtime_seconds`` of speech at real time (a chunk leaves when its last
               sample is "captured"): passes when every frame arrives, stamps step exactly one
               period and no frame is late; arrival intervals p50/p99/max are reported
publisher      a wav_publisher process SIGKILLed mid-utterance, then started again: the face
               rests once the utterance times out, the new process is animated
subscriber     a subscriber process SIGKILLed and started again: it gets frames again; the
               node's stream meanwhile has no gap
overload       three times ``max_queue`` of speech sent 10x faster than real time (as a TTS
               answer comes): the newest audio beyond ``max_queue`` is dropped and counted, no
               more is held, frames keep coming, and the next utterance is animated
sigterm        SIGTERM while the node animates a 60 s chunk: exit status 0 within 2 s
sigint         the same with SIGINT, on a second node process
device         (this process) ``device: cuda`` where torch sees no CUDA (forced off when it
               does): the node starts on the CPU, says so once and in its diagnostics, animates
engine_error   an exception raised by the engine for one 0.1 s audio piece mid-utterance:
               the face rests, the utterance resumes with the next chunk
gpu_oom        a CUDA out-of-memory error raised by the model on a node told it runs on CUDA
               (the failure is injected; no GPU is needed): the engine is rebuilt on the CPU
               and speech goes on
=============  ===========================================================================
"""
from __future__ import annotations

import array
import os
import signal
import sys
import threading
import time
import traceback
from collections import deque
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from .child_process import Child, proc_cpu_s, proc_memory_mb
from .paths import ASSETS_DIR, DEFAULT_MODEL_DIR, REPO_DIR

NS = 1_000_000_000
SAMPLE_WAV = ASSETS_DIR / "sample.wav"
NODE_BIN = Path(sys.prefix) / "lib" / "talking_face_ros"
CHUNK_S = 0.02  # AudioChunk length, as a microphone driver sends
PAUSE_S = 0.5  # silence between the looped utterances (no chunks are sent in it)
MEMORY_TARGET_PCT = 5.0  # the bound on resident memory growth during the soak
EXIT_TARGET_S = 2.0  # the bound on the exit after SIGINT/SIGTERM
BUSY_CHUNK_S = 60.0  # the one long chunk that keeps the engine busy when the signal comes
BURST_SPEED = 10.0  # the overload burst goes out this many times faster than real time (a TTS answer)
SCENARIOS = ("soak", "realtime", "publisher", "subscriber", "overload", "sigterm", "sigint",
             "device", "engine_error", "gpu_oom")


@dataclass(frozen=True)
class Options:
    soak_minutes: float = 30.0  # minutes of audio the soak feeds the node
    realtime_seconds: float = 60.0  # seconds of audio at real time after the soak
    model: Path | None = None  # bundle folder; None: the shipped default model
    threads: int = 1  # the node's threads parameter
    max_queue: float = 10.0  # the node's max_queue parameter (seconds of audio it holds)
    only: tuple[str, ...] = ()  # scenario names to run; empty: all
    progress: bool = True  # tqdm bars for the long parts

    @property
    def model_dir(self) -> Path:
        return Path(self.model) if self.model is not None else DEFAULT_MODEL_DIR

    def wants(self, name: str) -> bool:
        return not self.only or name in self.only


QUICK = dict(soak_minutes=0.25, realtime_seconds=5.0, max_queue=4.0)  # --quick: seconds, for CI


@dataclass
class Result:
    name: str
    passed: bool
    summary: str  # one line of the main figures
    figures: dict = field(default_factory=dict)
    note: str = ""  # how the figure was obtained, or why it failed
    seconds: float = 0.0  # wall time of the scenario


# ---------------------------------------------------------------------------------------------
# Processes


def child_env() -> dict:
    """Environment of the processes started here: local discovery, unbuffered output, no hub."""
    env = dict(os.environ)
    env.update(ROS_AUTOMATIC_DISCOVERY_RANGE=env.get("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST"),
               PYTHONUNBUFFERED="1", HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    profile = REPO_DIR / "config" / "fastdds_localhost.xml"
    if profile.is_file():
        env.setdefault("FASTDDS_DEFAULT_PROFILES_FILE", str(profile))
    return env


class NodeProcess(Child):
    """The installed talking_face_node with the package's parameter file, in its own namespace."""

    def __init__(self, namespace: str, options: Options, *, name: str = "talking_face_node"):
        exe = NODE_BIN / "talking_face_node"
        if not exe.is_file():
            raise RuntimeError(f"{exe} is not installed: run scripts/build_ros.sh")
        args = [exe, "--ros-args"]
        params = REPO_DIR / "config" / "talking_face.yaml"
        if params.is_file():
            args += ["--params-file", params]
        args += ["-p", f"model:={options.model_dir}", "-p", "device:=cpu", "-p", f"threads:={options.threads}",
                 "-p", f"max_queue:={float(options.max_queue)}", "-r", f"__ns:={namespace}"]
        super().__init__(args, name=name, env=child_env())

    def wait_ready(self, timeout_s: float = 180.0) -> float:
        """Seconds from the process start to its "ready" line."""
        t, _ = self.wait_line("ready in", timeout_s)
        return t - self.started

    def memory_mb(self) -> tuple[float, float]:
        return proc_memory_mb(self.proc.pid)

    def busy_fraction(self, window_s: float = 0.3) -> float:
        """Share of one core the process used over the next ``window_s``."""
        a = proc_cpu_s(self.proc.pid)
        time.sleep(window_s)
        return (proc_cpu_s(self.proc.pid) - a) / window_s


def subscriber_main(namespace: str) -> None:
    """A bare frame subscriber (the subscriber scenario's child process): prints when it
    subscribed and when the first frame came, on the machine's monotonic clock."""
    import rclpy
    from rclpy.executors import ExternalShutdownException
    from rclpy.qos import QoSProfile, ReliabilityPolicy

    from .msg import BlendshapeFrame
    from .nodes.spinning import spin_until_shutdown

    with rclpy.init():
        node = rclpy.create_node("reliability_subscriber", namespace=namespace)
        first = []

        def on_frame(msg):
            if not first:
                first.append(msg.frame_index)
                print(f"first {time.monotonic():.6f} {msg.frame_index}", flush=True)

        node.create_subscription(BlendshapeFrame, "blendshapes", on_frame,
                                 QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE))
        print(f"subscribed {time.monotonic():.6f}", flush=True)
        try:
            spin_until_shutdown(node)
        except (KeyboardInterrupt, ExternalShutdownException):
            pass


# ---------------------------------------------------------------------------------------------
# This process' side of the graph


class FrameWatch:
    """Every frame received, summed up cheaply (hours of frames); records kept only when asked."""

    def __init__(self):
        self._lock = threading.Lock()
        self.count = 0
        self.speaking = 0
        self.missing = 0  # frame indices never received
        self.bad_steps = 0  # consecutive frames whose stamps differ by more or less than one period
        self.max_interval = 0.0  # longest time between two frames arriving (s)
        self.intervals: list[float] | None = None  # arrival intervals while recording them
        self.records: deque | None = None  # (arrival, index, stamp_ns, speaking, utterance_id) while keeping
        self.last: tuple[float, int, int] | None = None  # (arrival, index, stamp_ns)
        self.last_arrival = 0.0
        self.period_ns = 0

    def on_frame(self, msg) -> None:
        arrival = time.monotonic()
        stamp = msg.header.stamp.sec * NS + msg.header.stamp.nanosec
        index = int(msg.frame_index)
        with self._lock:
            self.period_ns = int(round(NS / msg.fps)) if msg.fps > 0 else 0
            if self.last is not None:
                a, i, s = self.last
                step = index - i
                self.missing += max(step - 1, 0)
                if step != 1 or stamp - s != self.period_ns:
                    self.bad_steps += 1
                interval = arrival - a
                self.max_interval = max(self.max_interval, interval)
                if self.intervals is not None:
                    self.intervals.append(interval)
            self.last = (arrival, index, stamp)
            self.last_arrival = arrival
            self.count += 1
            self.speaking += bool(msg.speaking)
            if self.records is not None:
                self.records.append((arrival, index, stamp, bool(msg.speaking), int(msg.utterance_id)))

    def snapshot(self) -> dict:
        with self._lock:
            return {"count": self.count, "speaking": self.speaking, "missing": self.missing,
                    "bad_steps": self.bad_steps, "max_interval": self.max_interval}

    def keep(self, on: bool) -> None:
        with self._lock:
            self.records = deque(maxlen=100_000) if on else None

    def record_intervals(self, on: bool) -> list[float] | None:
        with self._lock:
            out, self.intervals = self.intervals, ([] if on else None)
            self.max_interval = 0.0 if on else self.max_interval
        return out

    def kept(self) -> list:
        with self._lock:
            return list(self.records or [])


class Driver:
    """A node in this process, in the namespace under test: publishes audio, watches frames,
    diagnostics and (when asked) the audio topic. Its own context and spinning thread."""

    def __init__(self, namespace: str):
        import rclpy
        from diagnostic_msgs.msg import DiagnosticArray
        from rclpy.executors import SingleThreadedExecutor
        from rclpy.qos import QoSProfile, ReliabilityPolicy
        from std_msgs.msg import String

        from .msg import AudioChunk, BlendshapeFrame
        from .nodes.wav_publisher import AUDIO_QOS, EMOTION_QOS

        self.namespace = namespace
        self.context = rclpy.Context()
        rclpy.init(context=self.context)
        self.node = rclpy.create_node("reliability_driver", namespace=namespace, context=self.context)
        self.frames = FrameWatch()
        deep = QoSProfile(depth=300, reliability=ReliabilityPolicy.RELIABLE)
        self.node.create_subscription(BlendshapeFrame, "blendshapes", self.frames.on_frame, deep)
        self.node.create_subscription(DiagnosticArray, "/diagnostics", self._on_diagnostics, 10)
        self.node.create_subscription(AudioChunk, "audio", self._on_audio,
                                      QoSProfile(depth=200, reliability=ReliabilityPolicy.RELIABLE))
        self.audio_pub = self.node.create_publisher(AudioChunk, "audio", AUDIO_QOS)
        self.emotion_pub = self.node.create_publisher(String, "emotion", EMOTION_QOS)
        self.diagnostics: dict[str, str] = {}  # the newest diagnostics values of the node under test
        self.diagnostics_message = ""
        self.audio_seen: deque = deque(maxlen=20_000)  # (arrival, stream_id, sequence) of others' chunks
        self._msg = AudioChunk
        self.emotion_msg = String
        self.sequence = 0
        self.utterance = 0
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self._spinner = threading.Thread(target=self._spin, name="reliability_driver", daemon=True)
        self._spinner.start()

    def _spin(self):
        from rclpy.executors import ExternalShutdownException

        try:
            self.executor.spin()
        except ExternalShutdownException:
            pass

    def _on_diagnostics(self, msg) -> None:
        for status in msg.status:
            if status.name.startswith(self.namespace + "/"):
                self.diagnostics = {kv.key: kv.value for kv in status.values}
                self.diagnostics_message = status.message

    def _on_audio(self, msg) -> None:
        if msg.stream_id != "reliability":  # only other publishers' chunks are of interest
            self.audio_seen.append((time.monotonic(), msg.stream_id, int(msg.sequence)))

    def now_ns(self) -> int:
        return self.node.get_clock().now().nanoseconds

    def diag_float(self, key: str, default: float = 0.0) -> float:
        try:
            return float(self.diagnostics.get(key, default))
        except ValueError:
            return default

    def diag_count(self, key: str) -> int:
        return int(self.diag_float(key.replace("_", " ")))

    def wait_subscribers(self, timeout_s: float = 60.0) -> None:
        # Two subscriptions on audio: the node's and this driver's own.
        wait_for(lambda: self.audio_pub.get_subscription_count() >= 2 and self.frames.count > 0, timeout_s,
                 "the node's audio subscription and its first frame")

    def publish(self, samples: np.ndarray, stamp_ns: int, *, start: bool, end: bool, rate: int = 16000,
                stream_id: str = "reliability") -> None:
        msg = self._msg()
        msg.header.stamp.sec, msg.header.stamp.nanosec = stamp_ns // NS, stamp_ns % NS
        msg.stream_id = stream_id
        msg.sequence = self.sequence % 2**32
        msg.utterance_id = self.utterance % 2**32
        msg.utterance_start, msg.utterance_end = start, end
        msg.sample_rate, msg.channels = rate, 1
        msg.samples = array.array("h", np.ascontiguousarray(samples, dtype=np.int16).tobytes())
        self.audio_pub.publish(msg)
        self.sequence += 1

    def acked(self, timeout_s: float = 5.0) -> bool:
        from rclpy.duration import Duration

        return self.audio_pub.wait_for_all_acked(Duration(seconds=timeout_s))

    def close(self) -> None:
        import rclpy

        self.executor.shutdown()
        self._spinner.join(timeout=5.0)
        self.node.destroy_node()
        rclpy.try_shutdown(context=self.context)


def wait_for(condition, timeout_s: float, what: str, *, step_s: float = 0.02):
    deadline = time.monotonic() + timeout_s
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out after {timeout_s:g} s waiting for {what}")
        time.sleep(step_s)


# ---------------------------------------------------------------------------------------------
# Speech


def sample_speech() -> np.ndarray:
    """The bundled sample sentence as 16 kHz mono int16."""
    from .speech.audio import load_wav

    audio, rate = load_wav(SAMPLE_WAV)
    if rate != 16000:
        import soxr

        audio = soxr.resample(audio, rate, 16000)
    return np.round(np.clip(audio, -1, 32767 / 32768) * 32768).astype(np.int16)


def looped(pcm: np.ndarray, seconds: float) -> np.ndarray:
    n = int(round(seconds * 16000))
    return np.tile(pcm, -(-n // len(pcm)))[:n]


class SpeechFeed:
    """Utterances of the sample sentence, one pass each, in 20 ms chunks on one sample clock.

    Chunk c of the stream is due at the wall time its last sample would have been captured;
    ``send`` publishes every chunk due up to ``lead_s`` seconds early. Lead 0 is a live
    microphone; a lead of a few seconds is a source running that far ahead of real time.
    """

    def __init__(self, driver: Driver, pcm: np.ndarray, *, stream_id: str = "reliability", emotions=None):
        self.driver, self.pcm, self.stream_id = driver, pcm, stream_id
        self.emotions = emotions  # utterance number -> emotion text sent before it, or None
        self.utterances = 0
        self.step = int(16000 * CHUNK_S)
        self.stamp0 = driver.now_ns() + NS // 20  # audio clock of the stream's first sample
        self.wall0 = time.monotonic() + 0.05  # the same instant on this process' monotonic clock
        self.offset_s = 0.0  # stream time of the current utterance's first sample
        self.pos = 0  # next sample of the current utterance
        self.sent_s = 0.0  # audio seconds published

    def send(self, seconds: float, *, lead_s: float, finish: bool = True, hold_s: float | None = None,
             on_step=None, progress=None, stop=None) -> None:
        """Publish ``seconds`` of speech (whole chunks); ``finish``: then the rest of the utterance.

        ``hold_s``: also wait while the node's diagnostics report more audio held than this.
        ``on_step`` is called while waiting; ``stop`` returning True ends the sending early.
        """
        target = self.sent_s + seconds
        while self.sent_s < target - 1e-9 or (finish and self.pos > 0):
            first = self.pos
            block = self.pcm[first:first + self.step]
            if first == 0:
                self.driver.utterance += 1
                self.utterances += 1
                text = self.emotions(self.utterances) if self.emotions is not None else None
                if text is not None:
                    self.driver.emotion_pub.publish(self.driver.emotion_msg(data=text))
            due = self.wall0 + self.offset_s + (first + len(block)) / 16000 - lead_s
            while True:
                now = time.monotonic()
                held = (self.driver.diag_float("queued audio (s)")
                        + self.driver.diag_float("audio ahead of the clock (s)"))
                if now >= due and (hold_s is None or held <= hold_s):
                    break
                if on_step is not None:
                    on_step()
                if stop is not None and stop():
                    return
                time.sleep(min(0.01, max(due - now, 0.001)))
            end = first + len(block) >= len(self.pcm)
            stamp = self.stamp0 + int(round((self.offset_s + first / 16000) * NS))
            self.driver.publish(block, stamp, start=first == 0, end=end, stream_id=self.stream_id)
            self.sent_s += len(block) / 16000
            self.pos = 0 if end else first + len(block)
            if end:
                self.offset_s += len(self.pcm) / 16000 + PAUSE_S
            if progress is not None:  # (tqdm drops its total when n passes it: the last utterance is finished)
                progress.update(min(len(block) / 16000, max(0.0, progress.total - progress.n)))

    def end_wall(self) -> float:
        """Monotonic time at which the audio sent so far has been spoken (its last sample's time)."""
        if self.pos:
            return self.wall0 + self.offset_s + self.pos / 16000
        return self.wall0 + self.offset_s - (PAUSE_S if self.offset_s else 0.0)


def _progress(options: Options, total: float, what: str):
    if not options.progress:
        return None
    from tqdm import tqdm

    return tqdm(total=round(total, 1), desc=what, unit="s audio", leave=False, dynamic_ncols=True,
                bar_format="{desc}: {percentage:3.0f}%|{bar}| {n:.0f}/{total:.0f} s audio [{elapsed}<{remaining}]")


def _pct(values, q) -> float:
    return float(np.percentile(values, q)) if len(values) else float("nan")


# ---------------------------------------------------------------------------------------------
# Scenarios against a node process


def soak(node: NodeProcess, driver: Driver, speech: np.ndarray, options: Options, log=None) -> Result:
    seconds = options.soak_minutes * 60.0
    warm_s = min(120.0, seconds / 5)
    lead = max(options.max_queue - 2.0, 1.0)
    feed = SpeechFeed(driver, speech, emotions=soak_emotion)
    samples: list[tuple[float, float, float]] = []  # (audio seconds sent, RSS MB, monotonic)
    next_sample, next_log = [0.0], [time.monotonic() + 300.0]

    def sample():
        now = time.monotonic()
        if now >= next_sample[0]:
            next_sample[0] = now + 2.0
            samples.append((feed.sent_s, node.memory_mb()[0], now))
        if log is not None and now >= next_log[0]:  # a line every 5 min for logs without a bar
            next_log[0] = now + 300.0
            log(f"   soak: {feed.sent_s / 60:.1f} of {seconds / 60:g} min of audio, RSS {samples[-1][1]:.0f} MB, "
                f"{driver.frames.snapshot()['missing']} frames missing, "
                f"{driver.diag_count('chunks_dropped')} chunks dropped")

    before = driver.frames.snapshot()
    counts0 = {k: driver.diag_count(k) for k in ("chunks_dropped", "late_frames", "engine_errors", "queue_full")}
    started = time.monotonic()
    bar = _progress(options, seconds, "soak")
    try:
        feed.send(seconds, lead_s=lead, hold_s=lead + 1.0, on_step=sample, progress=bar,
                  stop=lambda: node.proc.poll() is not None)
    finally:
        if bar is not None:
            bar.close()
    if node.proc.poll() is not None:
        raise RuntimeError(f"the node exited during the soak:\n{node.output()}")
    # Until the last frame of the soak has been shown (and diagnostics counted it).
    while time.monotonic() < feed.end_wall() + node_delay(driver) + 1.5:
        sample()
        time.sleep(0.1)
    wall = time.monotonic() - started
    sample()
    after = driver.frames.snapshot()
    counts = {k: driver.diag_count(k) - v for k, v in counts0.items()}
    rss = np.array([r for _, r, _ in samples])
    sent = np.array([s for s, _, _ in samples])
    warm = rss[sent >= warm_s]
    window = max(3, len(warm) // 10)
    start_mb, end_mb = float(np.median(warm[:window])), float(np.median(rss[-window:]))
    growth = 100.0 * (end_mb - start_mb) / start_mb
    hours = (np.array([t for _, _, t in samples])[sent >= warm_s] - started) / 3600
    slope = float(np.polyfit(hours, warm, 1)[0]) if len(warm) >= 3 and np.ptp(hours) > 0 else float("nan")
    peak = node.memory_mb()[1]
    missing = after["missing"] - before["missing"]
    figures = {
        "audio_s": round(feed.sent_s, 1), "wall_s": round(wall, 1), "warm_up_audio_s": round(warm_s, 1),
        "rss_after_warm_up_mb": round(start_mb, 1), "rss_end_mb": round(end_mb, 1),
        "rss_growth_pct": round(growth, 2), "rss_slope_mb_per_h": round(slope, 1), "rss_peak_mb": round(peak, 1),
        "rss_samples": len(samples), "frames": after["count"] - before["count"],
        "speech_frames": after["speaking"] - before["speaking"], "frames_missing": missing,
        "frame_stamp_steps_off": after["bad_steps"] - before["bad_steps"], "chunks_dropped": counts["chunks_dropped"],
        "late_frames": counts["late_frames"], "engine_errors": counts["engine_errors"],
        "queue_full": counts["queue_full"], "lead_s": lead,
        "rss_trace_mb": [[round(s, 1), round(r, 1)] for s, r, _ in samples[::max(1, len(samples) // 200)]],
    }
    passed = (growth < MEMORY_TARGET_PCT and missing == 0 and counts["chunks_dropped"] == 0
              and counts["engine_errors"] == 0)
    summary = (f"{feed.sent_s / 60:.1f} min of audio in {wall / 60:.1f} min; RSS {start_mb:.0f} -> {end_mb:.0f} MB "
               f"({growth:+.2f} %, target < {MEMORY_TARGET_PCT:g} %), peak {peak:.0f} MB; "
               f"{figures['frames']} frames, {missing} missing; {counts['chunks_dropped']} chunks dropped, "
               f"{counts['late_frames']} late frames")
    return Result("soak", passed, summary, figures,
                  note=f"audio kept at most {lead:g} s ahead of real time (max_queue {options.max_queue:g} s); "
                       f"an emotion text before every utterance, every fourth one new; RSS medians of the "
                       f"first and last {window} samples after {warm_s:.0f} s of audio")


SOAK_EMOTIONS = ("calm and friendly", "beaming with joy", "quietly irritated", "on the verge of tears",
                 "a little surprised", "neutral")


def soak_emotion(n: int) -> str:
    """The soak's emotion text before utterance n: six phrasings in turn, and every fourth
    utterance a text never seen before (the text encoder and label caches must stay bounded)."""
    return f"calm, take {n}" if n % 4 == 0 else SOAK_EMOTIONS[n % len(SOAK_EMOTIONS)]


def node_delay(driver: Driver) -> float:
    return driver.diag_float("delay (s)", 3.0)


def realtime(node: NodeProcess, driver: Driver, speech: np.ndarray, options: Options) -> Result:
    feed = SpeechFeed(driver, speech)
    counts0 = {k: driver.diag_count(k) for k in ("chunks_dropped", "late_frames")}
    before = driver.frames.snapshot()
    driver.frames.record_intervals(True)
    bar = _progress(options, options.realtime_seconds, "real time")
    try:
        feed.send(options.realtime_seconds, lead_s=0.0, progress=bar)
    finally:
        if bar is not None:
            bar.close()
    wait_for(lambda: time.monotonic() > feed.end_wall() + node_delay(driver) + 1.5, 60.0, "the last frames")
    intervals = np.array(driver.frames.record_intervals(False) or [])
    after = driver.frames.snapshot()
    period = driver.frames.period_ns / NS
    counts = {k: driver.diag_count(k) - v for k, v in counts0.items()}
    missing, bad = after["missing"] - before["missing"], after["bad_steps"] - before["bad_steps"]
    figures = {
        "audio_s": round(feed.sent_s, 1), "frames": after["count"] - before["count"],
        "speech_frames": after["speaking"] - before["speaking"], "frames_missing": missing,
        "frame_stamp_steps_off": bad, "max_stamp_gap_periods": 1 if bad == 0 else None,
        "late_frames": counts["late_frames"], "chunks_dropped": counts["chunks_dropped"],
        "period_ms": round(period * 1e3, 3),
        "arrival_interval_p50_ms": round(_pct(intervals, 50) * 1e3, 2),
        "arrival_interval_p99_ms": round(_pct(intervals, 99) * 1e3, 2),
        "arrival_interval_max_ms": round(float(intervals.max()) * 1e3, 2) if len(intervals) else None,
        "arrival_intervals_over_1_5_periods": int((intervals > 1.5 * period).sum()),
    }
    passed = missing == 0 and bad == 0 and counts["late_frames"] == 0 and figures["speech_frames"] > 0
    summary = (f"{figures['frames']} frames, {missing} missing, stamps step one period ({bad} off), "
               f"{counts['late_frames']} late; arrival interval p50 {figures['arrival_interval_p50_ms']} ms, "
               f"p99 {figures['arrival_interval_p99_ms']} ms, max {figures['arrival_interval_max_ms']} ms "
               f"(period {figures['period_ms']:g} ms)")
    return Result("realtime", passed, summary, figures,
                  note="stamps and indices are the node's published timeline; arrival intervals are measured in "
                       "the receiving process and include DDS delivery and its scheduling")


def publisher_restart(node: NodeProcess, driver: Driver, options: Options) -> Result:
    ns = driver.namespace
    args = [NODE_BIN / "wav_publisher", SAMPLE_WAV, "--loop", "--loop-gap", "0.5", "--stream-id", "restarted",
            "--subscribers", "2", "--wait", "60", "--ros-args", "-r", f"__ns:={ns}"]
    driver.frames.keep(True)
    children = []
    try:
        first = Child(args, name="wav_publisher", env=child_env())
        children.append(first)
        t_chunk = wait_for(lambda: next((t for t, s, _ in list(driver.audio_seen) if s == "restarted"), None),
                           90.0, "the first publisher's audio")
        time.sleep(max(0.0, t_chunk + 1.5 - time.monotonic()))  # mid-utterance: the sample is 3.3 s long
        first.kill()  # SIGKILL: no goodbye, no utterance_end
        t_kill = time.monotonic()
        last_chunk = max(t for t, s, _ in list(driver.audio_seen) if s == "restarted")
        wait_for(lambda: any(r[3] and r[0] > t_chunk for r in driver.frames.kept()), 30.0,
                 "speech frames of the audio sent before the kill")

        def rested():
            kept = driver.frames.kept()
            speech = [r for r in kept if r[3]]
            if not speech:
                return None
            last = speech[-1]
            after = [r for r in kept if r[1] > last[1]]
            return after[0][0] if len(after) >= 30 and last[0] > t_kill - 10 else None
        t_rest = wait_for(rested, 30.0, "the face at rest after the kill")

        t_start = time.monotonic()
        second = Child(args, name="wav_publisher", env=child_env())
        children.append(second)
        t_chunk2 = wait_for(lambda: next((t for t, s, q in list(driver.audio_seen)
                                          if s == "restarted" and t > t_start and q == 0), None),
                            90.0, "the restarted publisher's audio")
        t_speech2 = wait_for(lambda: next((r[0] for r in driver.frames.kept() if r[3] and r[0] > t_chunk2), None),
                             30.0, "speech frames of the restarted publisher")
        status, _ = second.signal_and_wait(signal.SIGINT, 15.0)
    finally:
        for c in children:
            c.kill()
        driver.frames.keep(False)
    delay = node_delay(driver)
    figures = {
        "kill_to_face_at_rest_s": round(t_rest - t_kill, 2), "last_chunk_to_kill_s": round(t_kill - last_chunk, 3),
        "restart_to_first_chunk_s": round(t_chunk2 - t_start, 2),
        "first_chunk_to_speech_frame_s": round(t_speech2 - t_chunk2, 2), "node_delay_s": delay,
        "publisher_exit_status": status,
        "utterances_timed_out": driver.diag_count("utterances_timed_out"),
    }
    passed = status == 0 and t_speech2 > t_chunk2
    summary = (f"killed mid-utterance: face at rest {figures['kill_to_face_at_rest_s']} s later "
               f"(utterance_timeout + delay {delay:g} s); restarted: first chunk after "
               f"{figures['restart_to_first_chunk_s']} s (process start + discovery), animated "
               f"{figures['first_chunk_to_speech_frame_s']} s after it (the node's delay)")
    return Result("publisher", passed, summary, figures)


def subscriber_restart(node: NodeProcess, driver: Driver, options: Options) -> Result:
    before = driver.frames.snapshot()
    driver.frames.record_intervals(True)
    code = "import sys; from talking_face_ros.reliability import subscriber_main; subscriber_main(sys.argv[1])"
    times, statuses = [], []
    for attempt in range(2):
        child = Child([sys.executable, "-c", code, driver.namespace], name="subscriber", env=child_env())
        try:
            _, line = child.wait_line("subscribed", 90.0)
            subscribed = float(line.split()[1])
            _, line = child.wait_line("first", 30.0)
            times.append(float(line.split()[1]) - subscribed)
            if attempt == 0:
                child.kill()  # SIGKILL: its DDS participant vanishes without a goodbye
                statuses.append("killed")
            else:
                statuses.append(child.signal_and_wait(signal.SIGINT, 15.0)[0])
        finally:
            child.kill()
    after = driver.frames.snapshot()
    missing = after["missing"] - before["missing"]
    intervals = driver.frames.record_intervals(False) or [0.0]
    figures = {"first_subscription_to_frame_s": round(times[0], 3),
               "restarted_subscription_to_frame_s": round(times[1], 3),
               "node_frames_missing_meanwhile": missing,
               "max_frame_interval_meanwhile_ms": round(max(intervals) * 1e3, 1),
               "second_subscriber_exit_status": statuses[1]}
    passed = missing == 0 and len(times) == 2
    summary = (f"frames {figures['first_subscription_to_frame_s']} s after subscribing; after a SIGKILL and a "
               f"new process {figures['restarted_subscription_to_frame_s']} s; {missing} frames missing "
               f"meanwhile at this process' own subscriber")
    return Result("subscriber", passed, summary, figures)


def signal_while_busy(node: NodeProcess, driver: Driver, speech: np.ndarray, sig, name: str) -> Result:
    """``sig`` while the node animates one 60 s chunk; exit status and seconds to exit."""
    driver.utterance += 1
    driver.publish(looped(speech, BUSY_CHUNK_S), driver.now_ns(), start=True, end=True)
    driver.acked(10.0)
    # Busy: the node's CPU time grows by a quarter of a core or more (the machine may be shared).
    busy = wait_for(lambda: (lambda f: f if f > 0.25 else None)(node.busy_fraction()), 30.0,
                    "the node busy animating", step_s=0.0)
    status, seconds = node.signal_and_wait(sig, 30.0)
    figures = {"exit_status": status, "exit_s": round(seconds, 3), "cpu_share_before_signal": round(busy, 2),
               "busy_chunk_s": BUSY_CHUNK_S}
    passed = status == 0 and seconds <= EXIT_TARGET_S
    summary = (f"exit status {status} {seconds:.2f} s after {signal.Signals(sig).name} (target < {EXIT_TARGET_S:g} s); "
               f"the node used {busy:.0%} of a core animating a {BUSY_CHUNK_S:g} s chunk when it came")
    return Result(name, passed, summary, figures)


# ---------------------------------------------------------------------------------------------
# Scenarios in this process (failures are injected)


class InProcessNode:
    """talking_face_node in this process, spun by the driver's executor (same context), with its
    engine in this process too (engine_process false), where the scenarios inject their faults."""

    def __init__(self, driver: Driver, options: Options, *, device: str):
        from rclpy.parameter import Parameter

        from .nodes.talking_face_node import TalkingFaceNode

        overrides = [Parameter("model", value=str(options.model_dir)), Parameter("device", value=device),
                     Parameter("threads", value=options.threads),
                     Parameter("max_queue", value=float(options.max_queue)),
                     Parameter("engine_process", value=False)]
        started = time.monotonic()
        self.node = TalkingFaceNode(context=driver.context, namespace=driver.namespace,
                                    parameter_overrides=overrides)
        self.load_s = time.monotonic() - started
        driver.executor.add_node(self.node)
        driver.wait_subscribers()

    def close(self, driver: Driver) -> None:
        driver.executor.remove_node(self.node)
        self.node.close()
        self.node.destroy_node()


def device_fallback(driver: Driver, options: Options, speech: np.ndarray) -> tuple[Result, InProcessNode]:
    import torch

    forced = torch.cuda.is_available()
    original = torch.cuda.is_available
    if forced:  # a machine with a GPU: make torch report none while the node loads
        torch.cuda.is_available = lambda: False
    try:
        face = InProcessNode(driver, options, device="cuda")
    finally:
        torch.cuda.is_available = original
    node = face.node
    wait_for(lambda: driver.diagnostics.get("device fallback", "none") != "none", 10.0,
             "the device fallback entry in the diagnostics")
    before = driver.frames.snapshot()["speaking"]
    feed = SpeechFeed(driver, speech)
    feed.send(len(speech) / 16000, lead_s=0.0)
    wait_for(lambda: driver.frames.snapshot()["speaking"] > before + 30, 30.0, "speech frames on the CPU")
    fallback = node.device_fallback
    figures = {"requested": "cuda", "device": node.device, "reason": fallback.reason if fallback else None,
               "diagnostics_entry": driver.diagnostics.get("device fallback"),
               "diagnostics_message": driver.diagnostics_message, "load_s": round(face.load_s, 2),
               "cuda_forced_off": forced}
    passed = node.device == "cpu" and fallback is not None and fallback.during == "loading"
    summary = (f"device cuda -> {node.device} ({figures['reason']}); one warning, diagnostics "
               f"{driver.diagnostics_message!r}; loaded in {face.load_s:.1f} s and animated")
    return Result("device", passed, summary, figures,
                  note="torch here has no CUDA" if not forced else "torch.cuda.is_available forced to False"), face


def engine_error(face: InProcessNode, driver: Driver, speech: np.ndarray) -> Result:
    node = face.node
    engine = node.engine.engine  # the Engine inside the node's EngineHost
    original = engine.push
    state = {"armed": False, "failed": None, "recovered": None}

    def push(audio, sample_rate=16000):
        if state["armed"] and state["failed"] is None:
            state["failed"] = time.monotonic()
            raise RuntimeError("encoder failure injected by the reliability engine_error scenario")
        made = original(audio, sample_rate)
        if state["failed"] is not None and state["recovered"] is None and made > 0:
            state["recovered"] = time.monotonic()
        return made

    errors0, resumed0 = node.counts["engine_errors"], node.counts["utterances_resumed"]
    engine.push = push
    driver.frames.keep(True)
    try:
        feed = SpeechFeed(driver, speech, stream_id="reliability")
        utterance = driver.utterance + 1
        armed_at = 1.2  # seconds into the utterance
        feed.send(armed_at, lead_s=0.0, finish=False)
        state["armed"] = True
        feed.send(0.0, lead_s=0.0)  # the rest of the same utterance
        wait_for(lambda: state["recovered"] is not None, 30.0, "the engine to make frames again")
        wait_for(lambda: time.monotonic() > feed.end_wall() + node_delay(driver) + 1.0, 30.0, "the last frames")
        kept = driver.frames.kept()
    finally:
        del engine.push  # the instance attribute; the class method again
        driver.frames.keep(False)
    mine = [r for r in kept if r[3] and r[4] in (utterance, utterance + 1)]
    # The rest between the speech before the failure and the speech after it.
    gaps = [(a, b) for a, b in zip(mine, mine[1:]) if b[1] - a[1] > 1]
    rest = gaps[0] if gaps else None
    at_rest = [r for r in kept if rest and rest[0][1] < r[1] < rest[1][1]]
    figures = {
        "engine_errors": node.counts["engine_errors"] - errors0,
        "utterances_resumed": node.counts["utterances_resumed"] - resumed0,
        "failure_to_frames_again_s": round(state["recovered"] - state["failed"], 2),
        "failure_to_resumed_frame_published_s": round(rest[1][0] - state["failed"], 2) if rest else None,
        "speech_at_rest_s": round((rest[1][2] - rest[0][2]) / NS, 2) if rest else None,
        "frames_at_rest": len(at_rest), "rest_frames_all_idle": all(not r[3] for r in at_rest),
        "speech_frames_after": sum(1 for r in mine if rest and r[1] >= rest[1][1]),
    }
    passed = (figures["engine_errors"] == 1 and figures["utterances_resumed"] == 1 and rest is not None
              and figures["rest_frames_all_idle"] and figures["speech_frames_after"] > 10)
    summary = (f"1 error injected {armed_at:g} s into an utterance: {figures['frames_at_rest']} frames at rest "
               f"({figures['speech_at_rest_s']} s of speech), frames again {figures['failure_to_frames_again_s']} s "
               f"after the error (the engine's lookahead), resumed speech published after "
               f"{figures['failure_to_resumed_frame_published_s']} s")
    return Result("engine_error", passed, summary, figures,
                  note="Engine.push raised RuntimeError for one 0.1 s piece; the stream's next chunk restarted it")


def gpu_oom(face: InProcessNode, driver: Driver, speech: np.ndarray) -> Result:
    import torch

    node = face.node
    host = node.engine  # an EngineHost: move_to_cpu replaces its Engine
    old = host.engine
    state = {"failed": None}

    def predict(*args, **kwargs):
        state["failed"] = state["failed"] or time.monotonic()
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB (injected by the "
                                     "reliability gpu_oom scenario)")

    node.device = "cuda"  # what a node on a GPU believes; the engine is on the CPU here
    # The engine's first network call on new audio: the speech trunk of a code predictor's staged
    # plan, else the whole network's predict.
    entry = "speech_trunk" if hasattr(old.model, "speech_trunk") else "predict"
    setattr(old.model, entry, predict)
    before = driver.frames.snapshot()["speaking"]
    try:
        feed = SpeechFeed(driver, speech)
        feed.send(len(speech) / 16000, lead_s=0.0)
        wait_for(lambda: host.engine is not old, 60.0, "the engine rebuilt on the CPU")
        t_swap = time.monotonic()
        # The next utterance, on the new engine, stamped from now (the first one's stamps are long past).
        SpeechFeed(driver, speech).send(len(speech) / 16000, lead_s=0.0)
        wait_for(lambda: driver.frames.snapshot()["speaking"] > before + 30, 30.0, "speech frames again")
    finally:
        try:
            delattr(old.model, entry)
        except AttributeError:
            pass
    fallback = node.device_fallback
    figures = {"device": node.device, "during": fallback.during if fallback else None,
               "reason": fallback.reason if fallback else None,
               "failure_to_cpu_engine_s": round(t_swap - state["failed"], 2) if state["failed"] else None,
               "device_fallbacks": node.counts["device_fallbacks"],
               "diagnostics_entry": driver.diagnostics.get("device fallback")}
    passed = node.device == "cpu" and fallback is not None and fallback.during == "inference"
    summary = (f"CUDA OOM in the model -> engine rebuilt on the CPU in {figures['failure_to_cpu_engine_s']} s "
               f"(polled), speech animated again; diagnostics: {figures['diagnostics_entry']!r}")
    return Result("gpu_oom", passed, summary, figures,
                  note=f"no GPU here: the node was told it ran on CUDA and the model's {entry} raised "
                       "torch.OutOfMemoryError")


def overload(node: NodeProcess, driver: Driver, speech: np.ndarray, options: Options) -> Result:
    burst_s = 3 * options.max_queue
    keys = ("chunks_received", "chunks_dropped", "queue_full", "chunks_lost", "late_frames")
    wait_for(lambda: driver.diag_float("queued audio (s)") + driver.diag_float("audio ahead of the clock (s)") == 0,
             60.0, "the node to hold no audio")
    counts0 = {k: driver.diag_count(k) for k in keys}
    before = driver.frames.snapshot()
    driver.frames.keep(True)
    held, rss = [], []
    try:
        driver.utterance += 1
        pcm = looped(speech, burst_s)
        step = int(16000 * CHUNK_S)
        stamp0, t0 = driver.now_ns(), time.monotonic()
        starts = list(range(0, len(pcm), step))
        sent_at = []  # seconds after the first chunk
        for c, first in enumerate(starts):
            time.sleep(max(0.0, t0 + c * CHUNK_S / BURST_SPEED - time.monotonic()))
            driver.publish(pcm[first:first + step], stamp0 + first * NS // 16000, start=c == 0,
                           end=c == len(starts) - 1)
            sent_at.append(time.monotonic() - t0)
        driver.acked(5.0)
        sent_wall = time.monotonic() - t0

        def shown():  # what the node held has been shown and counted (diagnostics come each second)
            held.append(driver.diag_float("queued audio (s)") + driver.diag_float("audio ahead of the clock (s)"))
            rss.append(node.memory_mb()[0])
            return time.monotonic() > t0 + burst_s + node_delay(driver) + 1.5 and held[-1] == 0
        wait_for(shown, 120.0, "the held audio to be shown", step_s=0.2)
        kept = driver.frames.kept()
        counts = {k: driver.diag_count(k) - v for k, v in counts0.items()}
        # Then the node takes the next utterance as usual.
        speaking = driver.frames.snapshot()["speaking"]
        SpeechFeed(driver, speech).send(len(speech) / 16000, lead_s=0.0)
        wait_for(lambda: driver.frames.snapshot()["speaking"] > speaking + 30, 30.0, "the next utterance")
    finally:
        driver.frames.keep(False)
    after = driver.frames.snapshot()
    burst = [r for r in kept if r[3] and stamp0 - NS <= r[2] <= stamp0 + int((burst_s + 1) * NS)]
    shown_s = len(burst) / 30.0
    # How far ahead of real time the newest audio taken was when it arrived: the end of the
    # speech shown minus the time its chunk was sent (the burst's clock starts with stamp0).
    last_s = (burst[-1][2] - stamp0) / NS + 1 / 30 if burst else 0.0
    last_chunk = min(len(starts) - 1, max(0, int(last_s / CHUNK_S) - 1))
    ahead_s = last_s - sent_at[last_chunk]
    dropped_s = counts["chunks_dropped"] * CHUNK_S
    lost = len(starts) - counts["chunks_received"]
    figures = {
        "burst_audio_s": burst_s, "speed": BURST_SPEED, "sent_in_s": round(sent_wall, 2),
        "max_queue_s": options.max_queue, "chunks_sent": len(starts), "chunks_received": counts["chunks_received"],
        "chunks_lost_in_transport": lost, "chunks_dropped": counts["chunks_dropped"],
        "dropped_audio_s": round(dropped_s, 2), "queue_full": counts["queue_full"],
        "late_frames": counts["late_frames"], "speech_shown_s": round(shown_s, 2),
        "newest_audio_taken_ahead_s": round(ahead_s, 2),
        "max_held_reported_s": round(max(held), 2), "max_rss_mb": round(max(rss), 1),
        "frames_missing": after["missing"] - before["missing"],
    }
    passed = (counts["chunks_dropped"] > 0 and ahead_s <= options.max_queue + 0.1
              and figures["frames_missing"] == 0)
    summary = (f"{burst_s:g} s of speech sent in {sent_wall:.1f} s: the node took audio up to {ahead_s:.1f} s ahead "
               f"of real time (max_queue {options.max_queue:g} s), animated {shown_s:.1f} s and dropped the newest "
               f"{dropped_s:.1f} s ({counts['chunks_dropped']} chunks; {lost} lost in transport); frames missing "
               f"{figures['frames_missing']}; the next utterance animated")
    return Result("overload", passed, summary, figures,
                  note=f"speech frames of the burst / 30 fps; a {burst_s:g} s burst {BURST_SPEED:g}x faster than "
                       f"real time as one utterance of 20 ms chunks")


# ---------------------------------------------------------------------------------------------
# The report


def run(options: Options, *, log=print) -> list[Result]:
    """Run the chosen scenarios; one Result each (a scenario that raises is a failed Result)."""
    for key, value in child_env().items():  # this process' own DDS participants, as the children's
        if key in ("ROS_AUTOMATIC_DISCOVERY_RANGE", "FASTDDS_DEFAULT_PROFILES_FILE"):
            os.environ.setdefault(key, value)
    unknown = sorted(set(options.only) - set(SCENARIOS))
    if unknown:
        raise ValueError(f"unknown scenarios {unknown}; known: {', '.join(SCENARIOS)}")
    import importlib

    importlib.import_module(".nodes.talking_face_node", __package__)  # now: the in-process part runs this code
    speech = sample_speech()
    results: list[Result] = []
    tag = f"/reliability_{os.getpid()}"

    def attempt(name, fn, *args):
        if not options.wants(name):
            return None
        log(f"-- {name}")
        started = time.monotonic()
        try:
            result = fn(*args)
            extra = None
            if isinstance(result, tuple):
                result, extra = result
        except Exception as exc:  # noqa: BLE001 - one failed scenario must not hide the others
            result, extra = Result(name, False, f"did not complete: {exc}".splitlines()[0],
                                   note=traceback.format_exc()), None
        result.seconds = round(time.monotonic() - started, 1)
        results.append(result)
        log(f"   {'pass' if result.passed else 'FAIL'}: {result.summary}")
        return extra

    process_part = [n for n in ("soak", "realtime", "publisher", "subscriber", "overload", "sigterm")
                    if options.wants(n)]
    if process_part:
        driver = Driver(tag + "_a")
        node = None
        try:
            node = NodeProcess(driver.namespace, options)
            ready = node.wait_ready()
            log(f"node process ready in {ready:.1f} s")
            driver.wait_subscribers()
            attempt("soak", soak, node, driver, speech, options, None if options.progress else log)
            attempt("realtime", realtime, node, driver, speech, options)
            attempt("publisher", publisher_restart, node, driver, options)
            attempt("subscriber", subscriber_restart, node, driver, options)
            attempt("overload", overload, node, driver, speech, options)
            attempt("sigterm", signal_while_busy, node, driver, speech, signal.SIGTERM, "sigterm")
        except Exception as exc:  # noqa: BLE001 - the node did not start: every scenario of it fails
            for name in process_part:
                if not any(r.name == name for r in results):
                    results.append(Result(name, False, f"node process failed: {exc}".splitlines()[0], note=str(exc)))
        finally:
            if node is not None:
                node.kill()
            driver.close()
    if options.wants("sigint"):
        driver = Driver(tag + "_b")
        node = None
        try:
            node = NodeProcess(driver.namespace, options)
            node.wait_ready()
            driver.wait_subscribers()
            attempt("sigint", signal_while_busy, node, driver, speech, signal.SIGINT, "sigint")
        except Exception as exc:  # noqa: BLE001
            if not any(r.name == "sigint" for r in results):
                results.append(Result("sigint", False, f"node process failed: {exc}".splitlines()[0], note=str(exc)))
        finally:
            if node is not None:
                node.kill()
            driver.close()
    in_process = [n for n in ("device", "engine_error", "gpu_oom") if options.wants(n)]
    if in_process:
        driver = Driver(tag + "_c")
        face = None
        try:
            if options.wants("device"):
                face = attempt("device", device_fallback, driver, options, speech)
            if face is None:
                face = InProcessNode(driver, options, device="cpu")
            attempt("engine_error", engine_error, face, driver, speech)
            attempt("gpu_oom", gpu_oom, face, driver, speech)  # last: it replaces the engine
        except Exception as exc:  # noqa: BLE001
            for name in in_process:
                if not any(r.name == name for r in results):
                    results.append(Result(name, False, f"in-process node failed: {exc}".splitlines()[0],
                                          note=str(exc)))
        finally:
            if face is not None:
                face.close(driver)
            driver.close()
    order = {n: i for i, n in enumerate(SCENARIOS)}
    return sorted(results, key=lambda r: order[r.name])


def table(results: list[Result]) -> str:
    """The results as a plain-text table: scenario, pass/FAIL, wall time, the figures in one line."""
    width = max((len(r.name) for r in results), default=8)
    lines = [f"{'scenario':<{width}}  result  wall     figures"]
    for r in results:
        lines.append(f"{r.name:<{width}}  {'pass' if r.passed else 'FAIL':<6}  {r.seconds:>6.0f} s  {r.summary}")
    return "\n".join(lines)


def to_json(results: list[Result], options: Options) -> dict:
    opts = {k: (str(v) if isinstance(v, Path) else list(v) if isinstance(v, tuple) else v)
            for k, v in vars(options).items()}
    opts["model"] = str(options.model_dir)
    return {"options": opts, "passed": all(r.passed for r in results),
            "scenarios": {r.name: {"passed": r.passed, "summary": r.summary, "figures": r.figures,
                                   "note": r.note, "seconds": r.seconds} for r in results}}


def quick_options(**overrides) -> Options:
    return replace(Options(**QUICK), **overrides)

