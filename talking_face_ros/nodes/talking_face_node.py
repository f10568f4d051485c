"""ROS 2 node ``talking_face_node``: speech audio + emotion text in, ARKit blendshape frames out.

Topics (names relative, so namespaces and remapping apply):

=============  ====================================  ==============================================
topic          type                                  QoS, and why
=============  ====================================  ==============================================
audio          talking_face_ros/AudioChunk (sub)     reliable, keep last 500, volatile: speech must
                                                     arrive whole (a lost 20 ms chunk becomes
                                                     silence); 500 chunks are 10 s of 20 ms
                                                     chunks that an executor stalled by a loaded
                                                     machine can take late instead of losing (50
                                                     lost audio in tests); old audio is useless
                                                     to a late joiner
emotion        std_msgs/String (sub)                 reliable, transient local, depth 1: a node
                                                     (re)started after the emotion was set still
                                                     gets it (publishers must use the same QoS)
blendshapes    talking_face_ros/BlendshapeFrame      reliable, keep last 90, volatile. A reliable
               (pub)                                 writer matches both reliable and best-effort
                                                     readers (a best-effort writer would refuse
                                                     reliable ones); a display subscribes best
                                                     effort, a recorder reliable; 90 frames (at 30
                                                     fps; 3 s at any fps) hold the largest catch-up burst, 2 s
                                                     (face_timeline.MAX_BURST_S), and 1 s more of
                                                     a slow reader: with 30, a burst could overwrite
                                                     frames a reliable reader had not yet taken
face_mesh      visualization_msgs/Marker (pub, only   reliable, keep last 2, volatile: RViz's Marker
               with publish_mesh)                    display subscribes reliable; a stale mesh is
                                                     worthless, so the queue is short
/diagnostics   diagnostic_msgs/DiagnosticArray       default (reliable, depth 10), 1 Hz
=============  ====================================  ==============================================

Timing: frame k depicts audio time ``t0 + k / fps`` (header.stamp) and is published at
``stamp + delay`` on the node's clock, idle or speaking, so stamps rise by one period through
every switch and consumers can delay their audio by ``delay`` (logged at start, and in
diagnostics) to be in sync. An utterance's frame i has the stamp of its first sample plus
``i / fps`` minus a pad of less than one frame that puts it on the grid
(``face_timeline``). Speech frames that miss their slot are dropped and counted; the slot
shows the face at rest. Emotion messages are events on the same timeline: they take effect
(blending in over ``emotion_blend_s``) at the audio time they were sent, so frames show them
``delay`` later. "Sent" is the message's DDS source timestamp when it lies within
``MAX_SEND_SKEW_S`` before the node's clock (a dialogue manager that sends an emotion just before
its speech gets the whole utterance in it, however late a busy executor runs the callback); else
(simulated time, skewed clocks) the arrival. Parameters: ``node_params`` and config/talking_face.yaml.

Audio: any sample rate (resampled) and channel count (averaged); one voice at a time; gaps up
to ``max_gap`` filled with silence; chunks stamped backwards, duplicated and malformed chunks
dropped; clipping noted; each case counted in diagnostics and logged at most every few seconds
(``face_timeline.AudioIntake`` has the rules). Emotion text: control characters removed, over
``MAX_EMOTION_CHARS`` refused, blank = ``default_emotion``; a text that arrives while another
waits for the worker replaces it (only the newest is embedded).

Threads and processes: the executor runs the subscriptions (which only queue work) and the frame
timer; one worker thread feeds the engine, so a slow encoder pass never delays a frame's
publication. The engine itself runs in a child process (``engine_process``, default true;
talking_face_ros/engine_process.py says why): the worker waits on a socket while it computes, and
the frame timer never waits for the engine's Python work.

Overload: the node holds at most ``max_queue`` seconds of audio beyond what real time
brings: the audio waiting for the engine plus the audio the engine has taken that lies ahead
of the clock (sent faster than real time, it waits in the engine or as frames for its time);
a chunk stamped further ahead than that is not taken either. With nothing held, one chunk of any
length up to ``MAX_CHUNK_S`` is taken (a whole file in one message). A chunk beyond is
dropped on arrival, newest first, counted in ``chunks_dropped``, with a warning at most every
5 s saying whether the engine is slower than the audio or the audio runs ahead of real time.
The dropped stretch becomes silence (a gap up to ``max_gap``) or starts a new utterance, and
frames keep coming at the fixed rate. A dropped utterance_end still closes the utterance
after the audio already taken, and the stream's next chunk that fits begins the utterance
again if it ended meanwhile (its start was dropped, or it timed out). The work queue holds at
most ``MAX_WORK_ITEMS`` messages, so a flood of tiny chunks is dropped the same way (counted
in ``queue_full``; an emotion text that finds it full is kept aside and applied when it
drains). Every other buffer is bounded too: the engine keeps one window of features, the
timeline only frames not yet due, the statistics windows ``STATS_WINDOW`` entries, the text
encoder's and the emotion labels' caches are LRUs.

Faults: an exception in the engine (an encoder or model error) ends the utterance: the
engine is reset, the face shows rest, the error is logged with its traceback the first time
(later ones as one throttled line) and counted in ``engine_errors``, and the stream's next
chunk starts the utterance again. An engine process that dies (killed, out of memory) is
started again the same way (counted in ``engine_restarts``); frames at rest go on meanwhile.
``device: cuda`` without a usable GPU, or a GPU failure (out of memory, CUDA error) while
loading or during inference, moves the engine to the CPU with one warning and a ``device
fallback`` diagnostics entry (``device_fallback``).
SIGINT and SIGTERM stop the engine worker between two audio pieces and end the process at
once with status 0 (the interpreter's own teardown of torch alone takes seconds).
"""
from __future__ import annotations

import array
import dataclasses
import math
import os
import queue
import sys
import threading
import time
import traceback
from collections import Counter, deque
from pathlib import Path

import numpy as np
import rclpy
from builtin_interfaces.msg import Time
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rclpy.executors import ExternalShutdownException
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from std_msgs.msg import String

from talking_face_ros.arkit import ARKIT_NAMES
from talking_face_ros.emotions import clean_text
from talking_face_ros.device_fallback import describe, is_device_failure
from talking_face_ros.engine_process import EngineSetupError, EngineSettings, start_engine
from talking_face_ros.face_timeline import (MAX_BURST_S, MAX_CHUNK_S, NS, Audio, AudioIntake, Begin, Chunk,
                                            Emotion, End, FaceTimeline, Grid, GridFrames)
from talking_face_ros.idle_face import IdleFace
from talking_face_ros.msg import AudioChunk, BlendshapeFrame
from talking_face_ros.node_params import NodeParams, ParameterError, declare
from talking_face_ros.nodes.spinning import spin_until_shutdown
from talking_face_ros.paths import node_default_model
from talking_face_ros import startup_gc

NODE_NAME = "talking_face_node"
AUDIO_QOS = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=500, reliability=ReliabilityPolicy.RELIABLE,
                       durability=DurabilityPolicy.VOLATILE)
EMOTION_QOS = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=1, reliability=ReliabilityPolicy.RELIABLE,
                         durability=DurabilityPolicy.TRANSIENT_LOCAL)


def frame_qos(fps: float) -> QoSProfile:
    """blendshapes' QoS: its history holds the largest catch-up burst (MAX_BURST_S) and 1 s more."""
    return QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=math.ceil((MAX_BURST_S + 1.0) * fps),
                      reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.VOLATILE)


FRAME_QOS = frame_qos(30.0)  # at the default fps: 90 frames
MESH_QOS = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=2, reliability=ReliabilityPolicy.RELIABLE,
                      durability=DurabilityPolicy.VOLATILE)
PIECE_S = 0.1  # audio is fed to the engine in pieces this long, so frames come out as they are ready
MAX_EMOTION_CHARS = 1000  # longer emotion text is refused (the encoder reads 256 tokens at most)
MAX_SEND_SKEW_S = 2.0  # an emotion's source timestamp this far before the node's clock, at most, is its time
WARN_EVERY_S = 5.0  # each kind of input warning is logged at most this often
SWITCH_INTERVAL_S = 0.001  # Python's GIL hand-over interval in the node process (default 0.005)
MAX_WORK_ITEMS = 5000  # messages waiting for the engine worker (5 ms chunks for max_queue 25 s)
STATS_WINDOW = 2000  # entries kept per statistics window (diagnostics report the last second)
STOP_JOIN_S = 1.0  # longest wait for the engine worker at shutdown (it checks between 0.1 s pieces)


def resolve_model(value: str) -> Path:
    """The bundle folder of parameter ``model``; ParameterError if it holds no bundle."""
    folder = Path(value).expanduser() if value else node_default_model()
    if not (folder / "bundle.json").is_file():
        if not value:
            raise ParameterError(f"parameter model is empty and no default model is installed at "
                                 f"{folder}: pass a bundle folder with -p model:=FOLDER")
        raise ParameterError(f"parameter model = {value!r}: no bundle.json in that folder")
    return folder


def corpus_style(identity: str):
    """The speaking style of a corpus voice (resting smile, blink rate) for the face at rest."""
    from talking_face_ros.corpus.voices import VOICES
    from talking_face_ros.style import SpeakingStyle

    return next((v.style for v in VOICES if v.voice_id == identity), SpeakingStyle())


class TalkingFaceNode(Node):
    def __init__(self, **node_options):
        super().__init__(NODE_NAME, **node_options)
        started = time.monotonic()
        self.params: NodeParams = declare(self)
        p = self.params
        self._load_engine(p)
        info = self.engine.info
        self.delay_s = p.delay_for(info.latency_s, causal=info.causal_features)
        self.default_emotion = info.default_emotion
        label = info.default_label

        now = self.get_clock().now().nanoseconds
        self.grid = Grid(fps=p.fps, t0_ns=now - int(round(self.delay_s * NS)))
        idle = IdleFace(style=corpus_style(p.identity), seed=p.seed, emotion=label[0], intensity=label[1],
                        blend_s=p.emotion_blend_s)
        self.timeline = FaceTimeline(self.grid, idle, delay_ns=int(round(self.delay_s * NS)),
                                     speech_blend_s=p.speech_blend_s, emotion=Emotion(self.default_emotion, *label))
        self.intake = AudioIntake(self.grid, max_gap_s=p.max_gap, utterance_timeout_s=p.utterance_timeout,
                                  max_clock_offset_s=p.max_clock_offset)
        self._lock = threading.Lock()  # the timeline: worker vs timer
        self._work: queue.Queue = queue.Queue(maxsize=MAX_WORK_ITEMS)
        self._queued_ns = 0  # audio waiting in _work, in integer ns (float sums would never return to 0)
        self._queue_lock = threading.Lock()
        self._emotion_aside: tuple | None = None  # the newest emotion that found _work full
        self._audio_until_ns = 0  # node-clock time of the end of the newest audio handed to the engine
        self._frames: GridFrames | None = None  # engine -> grid frames of the open utterance
        self._utterance = 0
        self._resume_streams: set[str] = set()  # streams whose next chunk starts their utterance again
        self._dropped_from: set[str] = set()  # streams with a chunk dropped since their last one taken
        self._lag_now_ns: int | None = None  # arrival of the last chunk taken while more wait (_poll_time)
        self._errors_logged: set[str] = set()  # exception kinds logged with a traceback
        self.counts: Counter = Counter()  # node-side counters (the intake and timeline keep theirs)
        self._compute = deque(maxlen=STATS_WINDOW)  # (monotonic, engine seconds, audio seconds)
        self._final_latency = deque(maxlen=STATS_WINDOW)  # (monotonic, arrival -> frame final, s)
        self._publish_latency = deque(maxlen=STATS_WINDOW)  # (monotonic, arrival -> frame published, s)
        self._last_warned: dict[str, float] = {}
        self._held_back: Counter = Counter()  # messages _warn did not log, by kind
        self._emotion_next: tuple | None = None  # (text, at_ns): the newest emotion not yet applied
        self._diag_before: Counter = Counter()
        self._names = list(ARKIT_NAMES)
        self._stop = threading.Event()

        self.frame_pub = self.create_publisher(BlendshapeFrame, "blendshapes", frame_qos(p.fps))
        self.diag_pub = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self.mesh = self._face_mesh(p)
        if self.mesh is not None:
            from visualization_msgs.msg import Marker

            self.mesh_pub = self.create_publisher(Marker, "face_mesh", MESH_QOS)
        self.create_subscription(AudioChunk, "audio", self._on_audio, AUDIO_QOS)
        # Two parameters: rclpy then passes the message info (its source timestamp) too.
        self.create_subscription(String, "emotion", lambda msg, info: self._on_emotion(msg, info), EMOTION_QOS)
        # Started by the first tick, once the grid is anchored to the timer's phase.
        self._worker = threading.Thread(target=self._run_worker, name="talking_face_engine", daemon=True)
        self._worker_started = False
        self._frame_timer = self.create_timer(self.grid.period_ns / NS, self._tick)
        self.create_timer(1.0, self._publish_diagnostics)
        self.load_s = time.monotonic() - started
        self.get_logger().info(
            f"ready in {self.load_s:.1f} s: model {self.model_folder} ({info.model_kind}), "
            f"device {self.device}, {info.backend}, engine latency {info.latency_s:.3f} s, "
            f"engine {'in process ' + str(self.engine.pid) if p.engine_process else 'in a thread'}, "
            f"delay {self.delay_s:.3f} s, "
            f"{p.fps:g} fps, emotion {self.default_emotion!r} -> {label[0]} {label[1]}")

    @staticmethod
    def _face_mesh(p: NodeParams):
        """The RViz mesh builder when publish_mesh is on (ParameterError for a bad rig or region)."""
        if not p.publish_mesh:
            return None
        from talking_face_ros.rig import load_rig
        from talking_face_ros.rviz_mesh import FaceMeshMarker

        try:
            return FaceMeshMarker(load_rig(p.mesh_rig), region=None if p.mesh_region == "all" else p.mesh_region,
                                  cell_size=p.mesh_decimate or None, frame_id=p.frame_id, colors=p.mesh_colors)
        except (ValueError, KeyError) as exc:
            raise ParameterError(f"face_mesh: {exc}") from None

    def _load_engine(self, p: NodeParams) -> None:
        self.model_folder = resolve_model(p.model)
        settings = EngineSettings(model=str(self.model_folder), device=p.device, backend=p.backend,
                                  precision=p.precision, threads=p.threads,
                                  encoder_threads=p.encoder_threads, nice=p.engine_nice,
                                  emotion_blend_s=p.emotion_blend_s,
                                  step_frames=p.step_frames, identity=p.identity, default_emotion=p.default_emotion)
        try:
            self.engine = start_engine(settings, in_process=not p.engine_process)
        except EngineSetupError as exc:
            raise ParameterError(f"parameter {exc}") from None
        info = self.engine.info
        self.device, self.device_fallback = info.device, info.fallback
        if self.device_fallback is not None:
            self.get_logger().warning(self.device_fallback.message())
        if info.fps != p.fps:
            self.get_logger().info(f"the model animates at {info.fps:g} fps; frames are interpolated "
                                   f"to {p.fps:g} fps")

    # ------------------------------------------------------------------ callbacks (executor)

    def _on_audio(self, msg: AudioChunk) -> None:
        arrival = time.monotonic()
        now_ns = self.get_clock().now().nanoseconds
        chunk = Chunk(stream_id=msg.stream_id, sequence=msg.sequence, utterance_id=msg.utterance_id,
                      utterance_start=msg.utterance_start, utterance_end=msg.utterance_end,
                      stamp_ns=msg.header.stamp.sec * NS + msg.header.stamp.nanosec,
                      sample_rate=msg.sample_rate, channels=msg.channels,
                      samples=np.frombuffer(msg.samples, dtype=np.int16).copy())
        self.counts["chunks_received"] += 1
        seconds = chunk.frames / chunk.sample_rate if chunk.sample_rate > 0 else 0.0
        # Overload (module docstring): beyond max_queue seconds held, drop the newest audio; its
        # utterance flags still count. An absurdly long chunk goes on to be refused as bad.
        waiting, ahead = max(self._queued_s, 0.0), self._ahead_s(now_ns)
        # With nothing held, one chunk of any length up to MAX_CHUNK_S is taken (a whole file
        # published as one message): the worker feeds it to the engine in PIECE_S pieces.
        over = waiting + ahead > 1e-3 and waiting + ahead + seconds > self.params.max_queue  # 1 ms: float dust
        # Stamped further ahead than max_queue: held that long before it shows (a burst that
        # DDS thinned out would otherwise pass as the few seconds that arrived).
        early = self._stamp_ahead_s(chunk, now_ns)
        over = over or early > self.params.max_queue
        if over and seconds <= MAX_CHUNK_S:
            self.counts["chunks_dropped"] += 1
            why = ("the engine is slower than the audio" if waiting >= max(ahead, early) else
                   "the audio runs ahead of real time")
            self._warn("queue", f"dropped an audio chunk stamped {early:.1f} s ahead: {waiting:.1f} s of audio "
                                f"wait for the engine, {ahead:.1f} s taken wait for their time (max_queue "
                                f"{self.params.max_queue:g} s); {why}")
            # An end closes the utterance after the audio already taken; otherwise the stream's
            # next chunk that fits begins the utterance again if it has ended (timed out) meanwhile.
            if chunk.utterance_end:
                self._enqueue(("close", chunk.stream_id))
                self._dropped_from.discard(chunk.stream_id)
            else:
                if len(self._dropped_from) >= 1000:  # bound memory against streams with random ids
                    self._dropped_from.clear()
                self._dropped_from.add(chunk.stream_id)
            return
        if chunk.stream_id in self._dropped_from:
            self._dropped_from.discard(chunk.stream_id)
            self._enqueue(("resume", chunk.stream_id))
        if seconds > MAX_CHUNK_S:
            seconds = 0.0  # refused as bad by the intake, never encoded: it must not hold others back
        with self._queue_lock:
            self._queued_ns += _ns(seconds)
        if not self._enqueue(("chunk", chunk, arrival, now_ns, seconds)):
            with self._queue_lock:
                self._queued_ns -= _ns(seconds)

    def _on_emotion(self, msg: String, info: dict | None = None) -> None:
        # The send time goes with the text: the worker may reach it only after encoding audio.
        at_ns = self.get_clock().now().nanoseconds
        sent = (info or {}).get("source_timestamp", 0)
        if 0 <= at_ns - sent <= MAX_SEND_SKEW_S * NS:
            at_ns = sent
        self.counts["emotions_received"] += 1
        if len(msg.data) > MAX_EMOTION_CHARS:  # refused here, before any work is queued for it
            self.counts["bad_emotions"] += 1
            self._warn("emotion", f"ignored an emotion text of {len(msg.data)} characters (at most "
                                  f"{MAX_EMOTION_CHARS}); the emotion stays as it was")
            return
        text, changes = clean_text(msg.data)
        if changes:
            self.counts["emotions_cleaned"] += 1
            self._warn("emotion_text", f"emotion text {text[:80]!r}: {', '.join(changes)}")
        # A new text every frame must not stall the worker: at most one emotion waits, the
        # newest; those it replaced are counted (emotions_superseded) and never embedded.
        with self._queue_lock:
            waiting, self._emotion_next = self._emotion_next is not None, (text, at_ns)
        if waiting:
            self.counts["emotions_superseded"] += 1
            return
        item = ("emotion", text, at_ns)
        queued = self._enqueue(item)
        with self._queue_lock:
            if queued:
                self._emotion_aside = None  # this newer text supersedes one set aside
            else:
                self._emotion_next = None
                self._emotion_aside = item  # the newest text wins; applied once the queue drains

    def _enqueue(self, item) -> bool:
        """Hand ``item`` to the engine worker; False (dropped, counted) when MAX_WORK_ITEMS wait."""
        try:
            self._work.put_nowait(item)
            return True
        except queue.Full:
            self.counts["queue_full"] += 1
            self._warn("queue_full", f"dropped a message: {MAX_WORK_ITEMS} messages already wait for the "
                                     f"engine (a flood of tiny chunks or emotion texts)")
            return False

    @property
    def _queued_s(self) -> float:
        """Seconds of audio waiting for the engine worker."""
        return self._queued_ns / NS

    def _stamp_ahead_s(self, chunk: Chunk, now_ns: int) -> float:
        """How far ahead of this node's clock a chunk's first sample is stamped; 0 for stamps off
        by more than max_clock_offset, which the intake replaces with the arrival time."""
        ahead = chunk.stamp_ns - now_ns
        return ahead / NS if 0 < ahead <= self.params.max_clock_offset * NS else 0.0

    def _ahead_s(self, now_ns: int) -> float:
        """Seconds of audio taken by the engine that lie ahead of the clock (sent faster than real
        time): they wait, in the engine or as frames, for their time to be shown."""
        return max(0.0, (self._audio_until_ns - now_ns) / NS)

    def _tick(self) -> None:
        now_ns = self.get_clock().now().nanoseconds
        # The time this tick was due: rcl has already moved the timer on by one period. A tick
        # that runs late (a busy executor, a machine slow to wake a sleeping thread) publishes
        # exactly the frames due at its scheduled time, so frames go out one per tick.
        until_next = self._frame_timer.time_until_next_call()
        tick_ns = now_ns
        if until_next is not None:
            tick_ns = min(now_ns, now_ns + until_next - self._frame_timer.timer_period_ns)
        if not self._worker_started:
            # First tick: frame k falls due exactly on the timer's tick k, so frames leave at
            # stamp + delay. Anchored to when the tick was due, not to when it ran: the first
            # one runs late more often (start-up), and a late anchor would put every later tick
            # early against the grid, publishing 0 and 2 frames in turn. No audio has been placed
            # on the grid yet: the worker starts now.
            self.grid.t0_ns = tick_ns - self.timeline.delay_ns
            self._worker_started = True
            self._worker.start()
        with self._lock:
            frames = self.timeline.due(tick_ns)
        for f in frames:
            msg = BlendshapeFrame()
            msg.header.stamp = Time(sec=f.stamp_ns // NS, nanosec=f.stamp_ns % NS)
            msg.header.frame_id = self.params.frame_id
            msg.frame_index = f.index
            msg.fps = float(self.params.fps)
            msg.names = self._names
            msg.weights = array.array("f", f.weights.tobytes())
            msg.speaking = f.speaking
            msg.utterance_id = f.utterance_id
            msg.emotion = f.emotion.text
            msg.emotion_label = f.emotion.label
            msg.emotion_intensity = f.emotion.intensity
            if f.arrival is not None:
                msg.latency = float(time.monotonic() - f.arrival)
                self._publish_latency.append((time.monotonic(), msg.latency))
            self.frame_pub.publish(msg)
            if self.mesh is not None:
                # Pre-serialized: one matmul and one byte copy per frame (rviz_mesh has the numbers).
                self.mesh_pub.publish(self.mesh.serialize(f.weights, stamp=msg.header.stamp))

    # ------------------------------------------------------------------ the engine worker

    def _run_worker(self) -> None:
        while not self._stop.is_set():
            try:
                item = self._work.get(timeout=0.05)
            except queue.Empty:
                item = self._take_emotion_aside()
            if item is not None and item[0] == "stop":
                break
            stream = None
            try:
                if item is not None and item[0] == "chunk":
                    _, chunk, arrival, now_ns, seconds = item
                    with self._queue_lock:
                        self._queued_ns -= _ns(seconds)
                    stream = chunk.stream_id
                    actions = self.intake.accept(self._resumed(chunk), now_ns=now_ns)
                    if self.intake.active is not None:  # where its audio ends on this node's clock
                        self._audio_until_ns = max(self._audio_until_ns, int(self.intake.active.expected_ns))
                    late = sum(self._do(action, arrival) for action in actions)
                    if late:
                        self.counts["chunks_late"] += 1
                elif item is not None and item[0] == "emotion":
                    self._set_emotion(item[1], item[2])
                elif item is not None and item[0] == "close":  # the end of an utterance whose last audio was dropped
                    active = self.intake.active
                    if active is not None and active.stream_id == item[1]:
                        for action in self.intake.close():
                            self._do(action, time.monotonic())
                elif item is not None and item[0] == "resume":  # chunks of this stream were dropped
                    self._resume(item[1])
                for action in self.intake.poll(now_ns=self._poll_time(item)):
                    self._do(action, time.monotonic())
            except Exception as exc:  # noqa: BLE001 - no engine error may stop the face
                self._engine_failed(exc, stream)
            for key, message in self.intake.warnings:
                self._warn(key, message)
            self.intake.warnings.clear()

    def _poll_time(self, item) -> int:
        """The time against which an utterance's timeout is judged: now, or, while work still
        waits in the queue (the engine lags behind the audio), when the last item taken arrived,
        so that an utterance whose chunks wait in the queue does not time out."""
        if item is not None and item[0] == "chunk" and not self._work.empty():
            self._lag_now_ns = item[3]
        elif self._work.empty():
            self._lag_now_ns = None
        return self._lag_now_ns if self._lag_now_ns is not None else self.get_clock().now().nanoseconds

    def _take_emotion_aside(self):
        with self._queue_lock:
            item, self._emotion_aside = self._emotion_aside, None
        return item

    def _resume(self, stream: str) -> None:
        if len(self._resume_streams) >= 1000:  # bound memory against streams with random ids
            self._resume_streams.clear()
        self._resume_streams.add(stream)

    def _resumed(self, chunk: Chunk) -> Chunk:
        """The next chunk of a stream whose utterance an engine error ended, or that had chunks
        dropped, starts the utterance again when it is no longer open.

        A stream that marks utterances would otherwise have the rest of that utterance ignored
        as silence between utterances; a stream that does not begins anew by itself.
        """
        if chunk.stream_id not in self._resume_streams:
            return chunk
        self._resume_streams.discard(chunk.stream_id)
        active = self.intake.active
        if chunk.utterance_start or chunk.stream_id not in self.intake.marked or (
                active is not None and active.stream_id == chunk.stream_id):
            return chunk
        self.counts["utterances_resumed"] += 1
        return dataclasses.replace(chunk, utterance_start=True)

    def _engine_failed(self, exc: Exception, stream: str | None) -> None:
        """End the utterance (the face rests), log once, count; a GPU failure moves to the CPU."""
        self.counts["engine_errors"] += 1
        kind = getattr(exc, "kind", None) or type(exc).__name__
        if kind not in self._errors_logged and len(self._errors_logged) < 100:
            self._errors_logged.add(kind)
            self.get_logger().error(f"engine failure ({kind}): the utterance ends, the face rests, the next "
                                    f"chunk starts again (logged once per kind, counted in engine_errors):\n"
                                    + (getattr(exc, "remote_traceback", "") or traceback.format_exc()))
        else:
            self._warn("engine_error", f"engine failure again ({describe(exc)}); "
                                       f"{self.counts['engine_errors']} so far")
        self.intake.close()
        self._frames = None
        if stream is not None:
            self._resume(stream)
        if not self.engine.alive:
            self._restart_engine()
        elif self.device != "cpu" and (getattr(exc, "device_failure", False) or is_device_failure(exc)):
            self._fall_back_to_cpu(exc)
        try:
            self.engine.reset()
        except Exception:  # noqa: BLE001 - a reset that fails leaves the next Begin to reset again
            self.counts["engine_errors"] += 1

    def _fall_back_to_cpu(self, exc: Exception) -> None:
        """The GPU failed during inference: rebuild the engine on the CPU (seconds; audio queues meanwhile)."""
        started = time.monotonic()
        try:
            self.device_fallback = self.engine.move_to_cpu(describe(exc))
        except Exception:  # noqa: BLE001 - keep the GPU engine; the next failure tries again
            self.get_logger().error("moving the engine to the CPU failed:\n" + traceback.format_exc())
            return
        self.device = "cpu"
        self.counts["device_fallbacks"] += 1
        self.get_logger().warning(f"{self.device_fallback.message()}; the engine reloaded in "
                                  f"{time.monotonic() - started:.1f} s")

    def _restart_engine(self) -> None:
        """The engine's process died (killed, out of memory): start another (seconds; audio queues meanwhile)."""
        started = time.monotonic()
        try:
            self.engine.restart(emotion=self.timeline.emotion.text)
        except Exception:  # noqa: BLE001 - the next failure tries again; the face rests meanwhile
            self.get_logger().error("restarting the engine process failed:\n" + traceback.format_exc())
            return
        self.counts["engine_restarts"] += 1
        self.get_logger().warning(f"the engine process died; a new one (pid {self.engine.pid}) took over in "
                                  f"{time.monotonic() - started:.1f} s")

    def _do(self, action, arrival: float) -> int:
        """Run one intake action on the engine; returns how many frames came out too late."""
        if isinstance(action, Begin):
            self.engine.begin(action.pad_samples)  # its pad is silence at ENGINE_RATE
            self._frames = GridFrames(action.first_frame, model_fps=self.engine.info.fps, grid_fps=self.params.fps)
            self._utterance = action.utterance_id
            return 0
        if self._frames is None:  # audio before any Begin cannot happen; be safe
            return 0
        if isinstance(action, Audio):
            step = max(1, int(PIECE_S * action.sample_rate))
            late = 0
            for i in range(0, len(action.samples), step):
                if self._stop.is_set():  # shutting down: do not finish a long chunk
                    break
                piece = action.samples[i:i + step]
                t = time.perf_counter()
                made = self.engine.feed(piece, action.sample_rate)
                self._compute.append((time.monotonic(), time.perf_counter() - t, len(piece) / action.sample_rate))
                late += self._deliver(made, arrival)
            return late
        if isinstance(action, End):
            t = time.perf_counter()
            made = self.engine.finish()
            self._compute.append((time.monotonic(), time.perf_counter() - t, 0.0))
            late = self._deliver(made, arrival)
            self._frames = None
            return late
        raise TypeError(f"unknown intake action {action!r}")

    def _deliver(self, made: tuple[np.ndarray, np.ndarray], arrival: float) -> int:
        index, weights = made
        if not len(index):
            return 0
        ready = time.monotonic()
        grid = [kw for i, w in zip(index.tolist(), weights) for kw in self._frames.add(i, w)]
        with self._lock:
            late = sum(not self.timeline.add_speech(k, w, utterance_id=self._utterance, arrival=arrival)
                       for k, w in grid)
        self._final_latency.append((ready, ready - arrival))
        return late

    def _set_emotion(self, text: str, at_ns: int) -> None:
        with self._queue_lock:  # a newer text that arrived while this one waited replaces it
            if self._emotion_next is not None:
                text, at_ns = self._emotion_next
            self._emotion_next = None
        text = clean_text(text)[0] or self.default_emotion  # (_on_emotion cleaned it already)
        label = self.engine.set_emotion(text)  # blends in from the newest audio: about now on the audio clock
        with self._lock:
            k = self.timeline.set_emotion(Emotion(text, *label), at_ns=at_ns)
        self._warn("emotion_set", f"emotion {text!r} -> {label[0]} {label[1]} from frame {k}", info=True)

    # ------------------------------------------------------------------ diagnostics

    def stats(self, window_s: float = 1.0) -> dict:
        """Counters and the last window's figures (for diagnostics and tests)."""
        now = time.monotonic()
        compute = [(c, a) for t, c, a in list(self._compute) if now - t <= window_s]
        audio = sum(a for _, a in compute)
        final = [v for t, v in list(self._final_latency) if now - t <= window_s]
        published = [v for t, v in list(self._publish_latency) if now - t <= window_s]
        with self._lock:
            counts = _snapshot(self.counts) + _snapshot(self.intake.counts) + _snapshot(self.timeline.counts)
            pending = self.timeline.pending()
            emotion = self.timeline.emotion
        return {
            "counts": counts,
            "real_time_factor": sum(c for c, _ in compute) / audio if audio > 0 else 0.0,
            "final_latency_p50": _percentile(final, 50), "final_latency_p95": _percentile(final, 95),
            "publish_latency_p50": _percentile(published, 50), "publish_latency_p95": _percentile(published, 95),
            "queued_audio_s": max(self._queued_s, 0.0), "pending_frames": pending,
            "ahead_s": self._ahead_s(self.get_clock().now().nanoseconds), "queued_items": self._work.qsize(),
            "emotion": emotion.text, "emotion_label": f"{emotion.label} {emotion.intensity}",
        }

    def _publish_diagnostics(self) -> None:
        s = self.stats()
        counts = s["counts"]
        problems = [k for k in ("late_frames", "chunks_dropped", "chunks_late", "bad_inputs", "bad_emotions",
                                "frames_skipped", "engine_errors", "stamps_backwards", "restamped", "queue_full",
                                "duplicates", "clipped_chunks", "emotions_cleaned")
                    if counts[k] > self._diag_before[k]]
        self._diag_before = Counter(counts)
        level, message = DiagnosticStatus.OK, "ok"
        if problems or s["real_time_factor"] > 1.0:
            level = DiagnosticStatus.WARN
            message = ", ".join(problems + (["slower than real time"] if s["real_time_factor"] > 1.0 else []))
        if "engine_errors" in problems:
            level = DiagnosticStatus.ERROR
        if self.device_fallback is not None:  # degraded for as long as it lasts, not for one second
            level = max(level, DiagnosticStatus.WARN)
            message = f"on the CPU: {self.params.device} failed" + ("" if message == "ok" else f"; {message}")
        values = {
            "engine latency (s)": f"{self.engine.info.latency_s:.3f}", "delay (s)": f"{self.delay_s:.3f}",
            "audio arrival to frame final p50 (s)": _fmt(s["final_latency_p50"]),
            "audio arrival to frame final p95 (s)": _fmt(s["final_latency_p95"]),
            "audio arrival to frame published p50 (s)": _fmt(s["publish_latency_p50"]),
            "audio arrival to frame published p95 (s)": _fmt(s["publish_latency_p95"]),
            "real-time factor": f"{s['real_time_factor']:.3f}",
            "queued audio (s)": f"{s['queued_audio_s']:.3f}", "pending frames": str(s["pending_frames"]),
            "audio ahead of the clock (s)": f"{s['ahead_s']:.3f}", "max queue (s)": f"{self.params.max_queue:g}",
            "engine process": str(self.engine.pid) if self.params.engine_process else "none (a thread)",
            "device": self.device, "device requested": self.params.device,
            "device fallback": "none" if self.device_fallback is None else self.device_fallback.message(),
            "emotion": s["emotion"], "emotion label": s["emotion_label"],
        }
        for key in ("frames_published", "speech_frames", "idle_frames", "late_frames", "frames_skipped",
                    "chunks_received", "chunks_dropped", "chunks_late", "chunks_lost", "duplicates",
                    "gaps_filled", "stamps_backwards", "resyncs", "restamped", "bad_inputs", "bad_emotions",
                    "utterances", "utterances_timed_out", "engine_errors", "utterances_resumed", "queue_full",
                    "device_fallbacks", "engine_restarts", "clipped_chunks", "emotions_received", "emotions_superseded",
                    "emotions_cleaned"):
            values[key.replace("_", " ")] = str(counts[key])
        status = DiagnosticStatus(level=level, name=f"{self.get_fully_qualified_name()}: face", message=message,
                                  hardware_id=self.device,
                                  values=[KeyValue(key=k, value=v) for k, v in values.items()])
        array_msg = DiagnosticArray(status=[status])
        array_msg.header.stamp = self.get_clock().now().to_msg()
        self.diag_pub.publish(array_msg)

    def _warn(self, key: str, message: str, *, info: bool = False) -> None:
        """Log ``message`` unless one of the same kind went out less than WARN_EVERY_S ago.

        A flood of bad input is one line per kind every few seconds, and the next line says how
        many were held back; diagnostics count every one of them.
        """
        now = time.monotonic()
        if now - self._last_warned.get(key, -math.inf) < WARN_EVERY_S:
            self._held_back[key] += 1
            return
        self._last_warned[key] = now
        held = self._held_back.pop(key, 0)
        if held:
            message += f" (and {held} more like this since the last such message)"
        if info:  # two call sites: rclpy refuses two severities from one line
            self.get_logger().info(message)
        else:
            self.get_logger().warning(message)

    def close(self) -> None:
        """Stop the engine worker (before destroy_node); it stops between two 0.1 s audio pieces."""
        self._stop.set()
        try:
            self._work.put_nowait(("stop",))
        except queue.Full:  # the worker sees _stop after its current piece anyway
            pass
        if self._worker.is_alive():
            self._worker.join(timeout=STOP_JOIN_S)
        if not self._worker.is_alive():  # else the worker still uses it; the process's end closes it
            self.engine.close()


def _snapshot(counter: Counter) -> Counter:
    """A copy of a counter another thread may be adding keys to (dict() copies it in one C call)."""
    return Counter(dict(counter))


def _ns(seconds: float) -> int:
    return int(round(seconds * NS))


def _percentile(values, q: float) -> float | None:
    return float(np.percentile(values, q)) if values else None


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def main(args=None, *, end_process: bool = True) -> int:
    """Run the node until SIGINT/SIGTERM; exit status 0, 2 for a bad parameter.

    ``end_process``: after a clean shutdown (worker stopped, node destroyed, context shut
    down, output flushed) end the process at once instead of returning: Python's teardown of
    torch, transformers and onnxruntime modules takes 1-2 s more, which a robot's launch
    system would otherwise wait for (or escalate to SIGKILL). False returns the status.
    """
    status = 0
    # The frame timer waits for the GIL while the engine worker runs Python code; by default a
    # waiting thread gets it after up to 5 ms, which showed as frame-interval jitter. 1 ms
    # bounds that wait at a cost of more frequent thread switches (not measurable here).
    sys.setswitchinterval(SWITCH_INTERVAL_S)
    try:
        with rclpy.init(args=args):
            try:
                node = TalkingFaceNode()
                if end_process:  # this process is the node's: what it loaded stays (startup_gc)
                    startup_gc.settle()
            except ParameterError as exc:
                print(f"{NODE_NAME}: {exc}", file=sys.stderr)
                status = 2
            else:
                try:
                    spin_until_shutdown(node)
                except Exception:  # noqa: BLE001
                    # A publish that raced the signal's shutdown of the context raises RCLError
                    # ("context is invalid"): that is the shutdown itself. Anything else is a bug.
                    if rclpy.ok(context=node.context):
                        raise
                finally:
                    node.close()
                    node.destroy_node()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    if end_process:
        _end_process(status)
    return status


def _end_process(status: int) -> None:
    """Exit now with ``status``: at-exit handlers run and output is flushed, module teardown is skipped."""
    import atexit
    import logging

    atexit._run_exitfuncs()
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe: nothing left to flush into
            pass
    os._exit(status)


if __name__ == "__main__":
    sys.exit(main())
