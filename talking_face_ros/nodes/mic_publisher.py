"""ROS 2 node ``mic_publisher``: a live microphone (PortAudio, through sounddevice) as AudioChunks.

    mic_publisher --list-devices
    mic_publisher [--device NAME_OR_INDEX] [--rate 16000] [--channels 1] [--chunk-ms 20]
                  [--vad-db -40 [--vad-hangover 0.5] [--vad-preroll 0.2]] [--stream-id mic]
                  [--ros-args -r audio:=/robot/audio ...]

Stamps are capture times on the ROS clock: PortAudio reports when the first sample of each
block reached the converter (``inputBufferAdcTime``, on the stream's own clock); the offset
between the stream clock and the ROS clock, read in the same callback, converts it. Those
measurements jitter by milliseconds, so chunks follow the sample clock (samples / rate), slewed
slowly toward the measurements (``SampleClock``): consecutive chunks join seamlessly and the
stamps stay within a fraction of a millisecond of the capture time over hours.

Utterances: without ``--vad-db`` the stream carries no utterance marks and the face node
animates everything it hears. With ``--vad-db`` a chunk whose level (RMS, dBFS) reaches the
threshold opens an utterance and ``--vad-hangover`` seconds below it close it. Chunks are held
back by ``--vad-preroll`` seconds so that the utterance can start before the chunk that
tripped the detector (a soft onset is quieter than the vowel after it); this adds the
pre-roll to the latency. Chunks between utterances are still published (silence, unmarked).

sounddevice's PortAudio is Debian's libportaudio2; a PulseAudio or PipeWire server is reached
through ALSA's ``pulse`` device. Exits on Ctrl-C / SIGTERM, closing the stream.
"""
from __future__ import annotations

import argparse
import array
import math
import queue
import sys
from collections import deque

import numpy as np

NODE_NAME = "mic_publisher"
NS = 1_000_000_000


def parse_args(argv):
    p = argparse.ArgumentParser(prog=NODE_NAME, description="Publish a microphone as AudioChunk messages.")
    p.add_argument("--list-devices", action="store_true", help="print the audio devices and exit")
    p.add_argument("--device", default=None, help="input device index or name (substring); default: the system's")
    p.add_argument("--rate", type=int, default=16000, help="sample rate in Hz (default 16000)")
    p.add_argument("--channels", type=int, default=1, help="channels to capture (default 1)")
    p.add_argument("--chunk-ms", type=float, default=20.0, help="chunk length in milliseconds (default 20)")
    p.add_argument("--vad-db", type=float, default=None,
                   help="mark utterances: a chunk at or above this RMS level (dBFS, e.g. -40) opens one")
    p.add_argument("--vad-hangover", type=float, default=0.5, help="seconds below the level that close an utterance")
    p.add_argument("--vad-preroll", type=float, default=0.2, help="seconds of audio kept before the detected onset")
    p.add_argument("--stream-id", default="mic", help="AudioChunk.stream_id (default 'mic')")
    p.add_argument("--frame-id", default="mic", help="header.frame_id (default 'mic')")
    args = p.parse_args(argv)
    if not 1000 <= args.rate <= 384000:
        p.error(f"--rate must be within 1000..384000 Hz, got {args.rate}")
    if not 1 <= args.channels <= 255:
        p.error(f"--channels must be within 1..255, got {args.channels}")
    if not (math.isfinite(args.chunk_ms) and 1.0 <= args.chunk_ms <= 1000.0):
        p.error(f"--chunk-ms must be within 1..1000, got {args.chunk_ms}")
    if args.vad_db is not None and not (math.isfinite(args.vad_db) and args.vad_db <= 0):
        p.error(f"--vad-db is a level in dBFS (<= 0), got {args.vad_db}")
    for name in ("vad_hangover", "vad_preroll"):
        if not (math.isfinite(getattr(args, name)) and getattr(args, name) >= 0):
            p.error(f"--{name.replace('_', '-')} must be >= 0")
    if args.device == "":  # launch files pass an empty string for "the default device"
        args.device = None
    if args.device is not None and args.device.isdigit():
        args.device = int(args.device)
    return args


class SampleClock:
    """Capture stamps (ns, ROS clock) of consecutive blocks: the sample clock, slewed toward measurements.

    Stamps advance by the samples' duration, corrected by at most ``MAX_SLEW_NS`` per block
    toward the median measured capture time of the last ``WINDOW`` blocks. A single late
    callback moves nothing; a steady offset (a wrong first measurement, the device crystal
    against the system clock) is absorbed gradually, and consecutive stamps never differ from
    the block duration by more than the slew, which the face node takes as continuous audio.
    """

    WINDOW = 25  # blocks in the median (0.5 s of 20 ms blocks)
    MAX_SLEW_NS = 100_000  # 0.1 ms per block: 0.5 % of a 20 ms block

    def __init__(self, rate: int):
        self.rate = rate
        self.anchor_ns: int | None = None  # capture time of sample 0 (integers: floats lose 256 ns at 2e18)
        self.samples = 0  # samples stamped so far
        self.errors: deque = deque(maxlen=self.WINDOW)  # measured - stamp, for the last blocks

    def stamp(self, measured_ns: int, frames: int) -> int:
        """Stamp of the next block of ``frames`` samples whose capture time was measured as ``measured_ns``."""
        if self.anchor_ns is None:
            self.anchor_ns = int(measured_ns)
        predicted = self.anchor_ns + self.samples * NS // self.rate
        self.errors.append(int(measured_ns) - predicted)
        step = int(np.clip(np.median(self.errors), -self.MAX_SLEW_NS, self.MAX_SLEW_NS))
        self.anchor_ns += step
        self.errors = deque((e - step for e in self.errors), maxlen=self.WINDOW)
        self.samples += frames
        return predicted + step


class Vad:
    """Energy detector: which chunks start and end utterances, with hangover and pre-roll."""

    def __init__(self, *, threshold_db: float, hangover_chunks: int, preroll_chunks: int):
        self.threshold = 10.0 ** (threshold_db / 20.0)
        self.hangover = hangover_chunks
        self.held: deque = deque()  # chunks waiting for the pre-roll
        self.preroll = preroll_chunks
        self.active = False
        self.quiet = 0

    def push(self, block: np.ndarray) -> list[tuple[np.ndarray, bool, bool]]:
        """Chunks now ready to go: ``(block, utterance_start, utterance_end)``, ``preroll`` chunks late."""
        level = float(np.sqrt(np.mean((block.astype(np.float64) / 32768.0) ** 2))) if block.size else 0.0
        out = []
        start = end = False
        if level >= self.threshold:
            self.quiet = 0
            if not self.active:
                self.active, start = True, True
        elif self.active:
            self.quiet += 1
            if self.quiet > self.hangover:
                self.active, end = False, True
        self.held.append([block, False, False])
        if start:  # open the utterance at the oldest held chunk (the pre-roll)
            self.held[0][1] = True
        if end:
            self.held[-1][2] = True
        while len(self.held) > self.preroll:
            out.append(tuple(self.held.popleft()))
        return out


def list_devices() -> int:
    import sounddevice as sd

    print(sd.query_devices())
    return 0


def main(args=None) -> int:
    argv = sys.argv if args is None else args
    from rclpy.utilities import remove_ros_args

    options = parse_args(remove_ros_args(argv)[1:])
    try:
        import sounddevice as sd
    except OSError as exc:  # no PortAudio library
        print(f"{NODE_NAME}: {exc} (install libportaudio2)", file=sys.stderr)
        return 2
    if options.list_devices:
        return list_devices()

    import rclpy
    from rclpy.executors import ExternalShutdownException
    from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy

    from talking_face_ros.msg import AudioChunk

    qos = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=500, reliability=ReliabilityPolicy.RELIABLE,
                     durability=DurabilityPolicy.VOLATILE)
    step = max(1, int(round(options.rate * options.chunk_ms / 1000.0)))
    blocks: queue.Queue = queue.Queue()
    status_flags: list[str] = []
    try:
        with rclpy.init(args=argv):
            node = rclpy.create_node(NODE_NAME)
            pub = node.create_publisher(AudioChunk, "audio", qos)
            clock = node.get_clock()
            sample_clock = SampleClock(options.rate)

            def callback(indata, frames, time_info, status):
                # PortAudio's thread: convert the capture time, hand the block to the main thread.
                ros_now = clock.now().nanoseconds
                adc = time_info.inputBufferAdcTime
                current = time_info.currentTime
                if adc > 0 and current > 0 and math.isfinite(adc) and math.isfinite(current):
                    measured = ros_now - int(round((current - adc) * NS))
                else:  # host API without timing information: the block ended just now
                    measured = ros_now - frames * NS // options.rate
                if status:
                    status_flags.append(str(status))
                blocks.put((indata.copy(), sample_clock.stamp(measured, frames)))

            vad = None
            if options.vad_db is not None:
                chunk_s = step / options.rate
                vad = Vad(threshold_db=options.vad_db, hangover_chunks=int(round(options.vad_hangover / chunk_s)),
                          preroll_chunks=int(round(options.vad_preroll / chunk_s)))
            try:
                stream = sd.InputStream(device=options.device, samplerate=options.rate, channels=options.channels,
                                        dtype="int16", blocksize=step, callback=callback)
            except (sd.PortAudioError, ValueError) as exc:
                print(f"{NODE_NAME}: cannot open input device {options.device!r}: {exc}", file=sys.stderr)
                return 2
            sequence, utterance = 0, 0
            stamps: deque = deque()  # stamps of chunks held by the VAD's pre-roll
            with stream:
                node.get_logger().info(
                    f"ready: capturing {options.channels} channel(s) at {options.rate} Hz from "
                    f"{sd.query_devices(stream.device)['name']!r}, {step} samples per chunk")
                while rclpy.ok(context=node.context):
                    try:
                        block, stamp = blocks.get(timeout=0.1)
                    except queue.Empty:
                        continue
                    if status_flags:
                        node.get_logger().warning(f"PortAudio: {', '.join(status_flags)}")
                        status_flags.clear()
                    if vad is None:
                        ready = [(block, stamp, False, False)]
                    else:
                        stamps.append(stamp)
                        ready = [(b, stamps.popleft(), s, e) for b, s, e in vad.push(block)]
                    for b, t, start, end in ready:
                        msg = AudioChunk()
                        msg.header.stamp.sec, msg.header.stamp.nanosec = t // NS, t % NS
                        msg.header.frame_id = options.frame_id
                        msg.stream_id = options.stream_id
                        msg.sequence = sequence % 2**32
                        if start:
                            utterance += 1
                        msg.utterance_id = utterance % 2**32
                        msg.utterance_start, msg.utterance_end = start, end
                        msg.sample_rate = options.rate
                        msg.channels = options.channels
                        msg.samples = array.array("h", np.ascontiguousarray(b).tobytes())
                        try:
                            pub.publish(msg)
                        except Exception:  # rclpy's RCLError: Ctrl-C shut the context between checks
                            if rclpy.ok(context=node.context):
                                raise
                            break
                        sequence += 1
            node.destroy_node()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
