"""ROS 2 node ``wav_publisher``: a WAV file as AudioChunk messages, paced like a live source.

    wav_publisher speech.wav [--emotion "calm and friendly"] [--rate 1.0 | --fast]
                  [--chunk-ms 20] [--loop [--loop-gap 1.0]] [--stream-id wav]
                  [--wait 10] [--subscribers 1]
                  [--ros-args -r audio:=/robot/audio ...]

The samples go out as they are in the file: its sample rate and channel count, 16-bit PCM
interleaved (8/24/32-bit and float files are converted to 16-bit), so the face node sees
whatever a real source would send. Each pass over the file is one utterance: the first chunk
carries utterance_start, the last utterance_end. Stamps follow the sample clock: chunk n of a
pass is stamped with the pass's start time plus its sample offset, whatever the pacing;
``--rate 2`` sends twice as fast as real time (the audio then runs ahead of the clock, which
the node absorbs), ``--fast`` sends without pausing.

With ``--emotion`` the text goes out first on ``emotion`` (std_msgs/String, reliable +
transient local, as the node subscribes), 0.1 s before the audio's first stamp: the node
applies an emotion from the time it was sent (its source timestamp), so the whole utterance is
spoken with it. The publisher waits up to ``--wait`` seconds for
``--subscribers`` subscribers on ``audio`` (and one on ``emotion``) before it starts (0: no
wait), and before it exits until every chunk is acknowledged. Without ``--loop`` it exits when
the file is done (status 0); a missing or unreadable file is one line on stderr and status 2.
"""
from __future__ import annotations

import argparse
import array
import sys
import time

import numpy as np
import rclpy
from rclpy.duration import Duration
from rclpy.executors import ExternalShutdownException
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from rclpy.utilities import remove_ros_args
from std_msgs.msg import String

from talking_face_ros.msg import AudioChunk
from talking_face_ros.speech.audio import read_wav, to_int16

NODE_NAME = "wav_publisher"
# The face node's subscription profiles (nodes/talking_face_node.py explains them); the
# publisher's history is deeper so that --fast bursts are never overwritten before delivery.
AUDIO_QOS = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=200, reliability=ReliabilityPolicy.RELIABLE,
                       durability=DurabilityPolicy.VOLATILE)
EMOTION_QOS = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=1, reliability=ReliabilityPolicy.RELIABLE,
                         durability=DurabilityPolicy.TRANSIENT_LOCAL)
FAST_BATCH = 25  # with --fast, wait for acknowledgements after this many chunks
EMOTION_LEAD_S = 0.1  # the emotion goes out this long before the first chunk's stamp
NS = 1_000_000_000


def read_wav_int16(path) -> tuple[np.ndarray, int]:
    """``(frames, channels)`` int16 samples and the sample rate of a WAV file, channels kept.

    ``speech.audio.load_wav`` gives float mono for analysis; a publisher must send what the file
    holds, so this keeps the channels and converts only the sample format (by full scale).
    Every problem is a ValueError naming the file (the caller prints it as one line).
    """
    try:
        data, rate = read_wav(path)
    except FileNotFoundError as exc:
        raise ValueError(str(exc)) from None
    if not 1 <= data.shape[1] <= 255:
        raise ValueError(f"{path}: {data.shape[1]} channels (AudioChunk carries 1 to 255)")
    return to_int16(data, path), rate


def parse_args(argv):
    p = argparse.ArgumentParser(prog=NODE_NAME, description="Publish a WAV file as AudioChunk messages.")
    p.add_argument("wav", help="WAV file (any sample rate and channel count)")
    p.add_argument("--emotion", help="emotion text published on 'emotion' before the audio")
    pace = p.add_mutually_exclusive_group()
    pace.add_argument("--rate", type=float, default=1.0, help="pace relative to real time (default 1.0)")
    pace.add_argument("--fast", action="store_true", help="publish as fast as delivery allows")
    p.add_argument("--chunk-ms", type=float, default=20.0, help="chunk length in milliseconds (default 20)")
    p.add_argument("--loop", action="store_true", help="repeat the file until stopped, one utterance per pass")
    p.add_argument("--loop-gap", type=float, default=1.0, help="seconds of silence between passes (default 1)")
    p.add_argument("--stream-id", default="wav", help="AudioChunk.stream_id (default 'wav')")
    p.add_argument("--frame-id", default="wav", help="header.frame_id (default 'wav')")
    p.add_argument("--wait", type=float, default=10.0,
                   help="seconds to wait for subscribers on 'audio' before starting; 0: do not wait")
    p.add_argument("--subscribers", type=int, default=1,
                   help="how many 'audio' subscribers to wait for, e.g. 2 for the face node and a recorder")
    args = p.parse_args(argv)
    if args.subscribers < 1:
        p.error(f"--subscribers must be at least 1, got {args.subscribers}")
    for name, positive in (("rate", True), ("chunk_ms", True), ("loop_gap", False), ("wait", False)):
        value = getattr(args, name)
        if not np.isfinite(value) or value < 0 or (positive and value == 0):
            kind = "positive" if positive else "non-negative"
            p.error(f"--{name.replace('_', '-')} must be a {kind} number, got {value}")
    return args


class WavPublisher(Node):
    def __init__(self, args, pcm: np.ndarray, rate: int, **node_options):
        super().__init__(NODE_NAME, **node_options)
        self.args, self.pcm, self.rate = args, pcm, rate
        self.step = max(1, int(round(rate * args.chunk_ms / 1000.0)))
        self.audio_pub = self.create_publisher(AudioChunk, "audio", AUDIO_QOS)
        self.emotion_pub = self.create_publisher(String, "emotion", EMOTION_QOS) if args.emotion is not None else None
        self.sequence = 0
        self.utterance = 0
        self.published_s = 0.0

    def wait_for_subscribers(self, timeout_s: float) -> bool:
        deadline = time.monotonic() + timeout_s
        def matched():
            return self.audio_pub.get_subscription_count() >= self.args.subscribers and (
                self.emotion_pub is None or self.emotion_pub.get_subscription_count() > 0)

        while not matched():
            if time.monotonic() > deadline or not rclpy.ok(context=self.context):
                return False
            time.sleep(0.02)
        return True

    def run(self) -> None:
        args = self.args
        if args.wait > 0 and not self.wait_for_subscribers(args.wait):
            self.get_logger().warning(f"fewer than {args.subscribers} subscriber(s) on "
                                      f"{self.audio_pub.topic_name} after {args.wait:g} s; publishing anyway")
        if self.emotion_pub is not None:
            # The node applies an emotion from the time it was sent: send it a little ahead,
            # so that the whole utterance is spoken with it.
            self.emotion_pub.publish(String(data=args.emotion))
            time.sleep(EMOTION_LEAD_S)
        duration = len(self.pcm) / self.rate
        pass_start = self.get_clock().now().nanoseconds  # stamp of the first sample of this pass
        wall_start = time.monotonic()
        while True:
            self._publish_pass(pass_start, wall_start)
            if not rclpy.ok(context=self.context):
                return
            self.audio_pub.wait_for_all_acked(Duration(seconds=5.0))
            if not args.loop:
                return
            self.utterance += 1
            pass_start += int(round((duration + args.loop_gap) * NS))
            wall_start += (duration + args.loop_gap) / (1.0 if args.fast else args.rate)

    def _publish_pass(self, stamp0: int, wall0: float) -> None:
        frames = len(self.pcm)
        pace = None if self.args.fast else self.args.rate
        for i, start in enumerate(range(0, frames, self.step)):
            if pace is not None:  # chunk n leaves once its last sample has been "captured"
                wait = wall0 + min(start + self.step, frames) / self.rate / pace - time.monotonic()
                if wait > 0:
                    time.sleep(wait)
            if not rclpy.ok(context=self.context):  # SIGTERM / Ctrl-C shut the context down
                return
            block = self.pcm[start:start + self.step]
            msg = AudioChunk()
            t = stamp0 + start * NS // self.rate
            msg.header.stamp.sec, msg.header.stamp.nanosec = t // NS, t % NS
            msg.header.frame_id = self.args.frame_id
            msg.stream_id = self.args.stream_id
            msg.sequence = self.sequence % 2**32
            msg.utterance_id = self.utterance % 2**32
            msg.utterance_start = start == 0
            msg.utterance_end = start + self.step >= frames
            msg.sample_rate = self.rate
            msg.channels = block.shape[1]
            msg.samples = array.array("h", block.tobytes())
            if not self._publish(msg):
                return
            self.sequence += 1
            self.published_s += len(block) / self.rate
            if pace is None and i % FAST_BATCH == FAST_BATCH - 1:
                self.audio_pub.wait_for_all_acked(Duration(seconds=5.0))

    def _publish(self, msg) -> bool:
        """Publish; False when a signal shut the context down meanwhile (then nothing is sent)."""
        try:
            self.audio_pub.publish(msg)
        except Exception:
            if rclpy.ok(context=self.context):
                raise
            return False
        return True


def main(args=None) -> int:
    argv = sys.argv if args is None else args
    options = parse_args(remove_ros_args(argv)[1:])
    try:
        pcm, rate = read_wav_int16(options.wav)
    except ValueError as exc:
        print(f"{NODE_NAME}: {exc}", file=sys.stderr)
        return 2
    try:
        with rclpy.init(args=argv):
            node = WavPublisher(options, pcm, rate)
            try:
                started = time.monotonic()
                node.run()
                summary = (f"published {node.sequence} chunks ({node.published_s:.2f} s of audio, {rate} Hz, "
                           f"{pcm.shape[1]} channel(s)) from {options.wav} in {time.monotonic() - started:.2f} s")
                if rclpy.ok(context=node.context):
                    node.get_logger().info(summary)
                else:  # stopped by a signal: /rosout is gone with the context
                    print(f"[{NODE_NAME}] stopped: {summary}", file=sys.stderr)
            finally:
                node.destroy_node()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
