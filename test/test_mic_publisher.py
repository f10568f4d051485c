"""mic_publisher against a virtual microphone: a private PulseAudio server with a FIFO source.

A tone is written into the FIFO at real-time pace (after the input stream is open, followed by
silence so the source keeps running); the test checks what arrives on the audio topic: the
same samples, continuous sample-clock stamps before their arrival, and utterance marks from
the level detector. Skips cleanly where PulseAudio, PortAudio or the installed executable is
missing.
"""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import pytest

rclpy = pytest.importorskip("rclpy", reason="rclpy not installed (scripts/build_ros.sh)")
msgs = pytest.importorskip("talking_face_ros.msg", reason="messages not built: scripts/build_ros.sh")

from rclpy.executors import SingleThreadedExecutor  # noqa: E402
from rclpy.qos import QoSProfile, ReliabilityPolicy  # noqa: E402

from talking_face_ros.face_timeline import NS  # noqa: E402
from talking_face_ros.nodes.mic_publisher import SampleClock, Vad  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.usefixtures("quick_discovery")
MIC = Path(sys.prefix) / "lib" / "talking_face_ros" / "mic_publisher"
NAMESPACE = f"/test_mic_{os.getpid()}"
RATE = 16000
TONE_HZ, TONE_AMPLITUDE, SILENCE_S, TONE_S = 440.0, 10000, 0.6, 1.0


# ---------------------------------------------------------------------------------------------
# Plain parts


def test_sample_clock_ignores_jitter_and_absorbs_offsets_slowly():
    rng = np.random.default_rng(0)
    true = 1_000_000_000 + np.arange(400) * 20_000_000  # capture times of 320-sample blocks
    measured = true + rng.integers(-1_500_000, 1_500_001, len(true))  # callback jitter of +-1.5 ms
    measured[0] += 9_000_000  # and a first measurement 9 ms off
    clock = SampleClock(16000)
    stamps = np.array([clock.stamp(int(m), 320) for m in measured])
    # Never more than the slew per block away from the block duration: seamless for the node.
    assert np.all(np.abs(np.diff(stamps) - 20_000_000) <= SampleClock.MAX_SLEW_NS + 1)
    # The wrong start is absorbed (9 ms at 0.1 ms per block: within 100 blocks) and the jitter
    # averages out to well under a millisecond (a frame is 33 ms).
    assert np.all(np.abs(stamps[120:] - true[120:]) < 1_000_000)


def test_vad_marks_utterances_with_preroll_and_hangover():
    vad = Vad(threshold_db=-30.0, hangover_chunks=2, preroll_chunks=1)
    loud, quiet = np.full(320, 10000, np.int16), np.zeros(320, np.int16)  # -10 dBFS and silence
    out = [vad.push(b) for b in (quiet, quiet, loud, loud, quiet, quiet, quiet, quiet)]
    flags = [(s, e) for batch in out for _, s, e in batch]
    # One chunk late (the pre-roll); the start goes on the quiet chunk before the loud one; the
    # end on the third quiet chunk (two chunks of hangover).
    assert flags == [(False, False), (True, False), (False, False), (False, False), (False, False),
                     (False, False), (False, True)]


# ---------------------------------------------------------------------------------------------
# A virtual microphone


@pytest.fixture(scope="module")
def pulse():
    if shutil.which("pulseaudio") is None:
        pytest.skip("pulseaudio is not installed")
    if not MIC.is_file():
        pytest.skip(f"{MIC} not installed (scripts/build_ros.sh)")
    try:
        import sounddevice  # noqa: F401
    except OSError as exc:
        pytest.skip(f"sounddevice cannot load PortAudio: {exc}")
    folder = Path(tempfile.mkdtemp(prefix="tfpa"))  # short: unix socket paths are limited to 107 bytes
    script = folder / "default.pa"
    script.write_text(
        f"load-module module-native-protocol-unix socket={folder}/native auth-anonymous=1\n"
        "load-module module-null-sink sink_name=silence\n"
        f"load-module module-pipe-source source_name=virtmic file={folder}/mic.fifo format=s16le "
        f"rate={RATE} channels=1\n"
        "set-default-source virtmic\n")
    env = dict(os.environ, HOME=str(folder), PULSE_RUNTIME_PATH=str(folder / "runtime"))
    # Root runs it as a per-user daemon (it warns, and works); -n: no default script.
    log = folder / "pulseaudio.log"
    server = subprocess.Popen(["pulseaudio", "-n", "-F", str(script), "--daemonize=no", "--exit-idle-time=-1",
                               "--use-pid-file=no", f"--log-target=file:{log}"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, env=env)
    deadline = time.monotonic() + 10.0
    while not (folder / "mic.fifo").exists() or not (folder / "native").exists():
        if server.poll() is not None or time.monotonic() > deadline:
            server.kill()
            tail = log.read_text(errors="replace")[-500:] if log.exists() else ""
            shutil.rmtree(folder, ignore_errors=True)
            pytest.skip(f"PulseAudio did not start: {tail}")
        time.sleep(0.05)
    yield {"server": f"unix:{folder}/native", "fifo": folder / "mic.fifo"}
    server.send_signal(signal.SIGTERM)
    try:
        server.wait(10)
    except subprocess.TimeoutExpired:
        server.kill()
    shutil.rmtree(folder, ignore_errors=True)


def child_env(pulse):
    return dict(os.environ, PULSE_SERVER=pulse["server"], PYTHONUNBUFFERED="1",
                ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST",
                FASTDDS_DEFAULT_PROFILES_FILE=str(REPO / "config" / "fastdds_localhost.xml"))


class FifoWriter(threading.Thread):
    """Feeds the virtual microphone in real time: silence, on ``play`` a tone, then silence until stopped."""

    def __init__(self, fifo: Path):
        super().__init__(daemon=True)
        self.fifo = fifo
        self.play = threading.Event()
        self.stop = threading.Event()
        t = np.arange(int(TONE_S * RATE)) / RATE
        tone = np.round(TONE_AMPLITUDE * np.sin(2 * np.pi * TONE_HZ * t)).astype(np.int16)
        self.clip = np.concatenate([np.zeros(int(SILENCE_S * RATE), np.int16), tone])

    def run(self):
        fd = os.open(self.fifo, os.O_WRONLY)
        try:
            start, written, played, block = time.monotonic(), 0, 0, 320
            while not self.stop.is_set():
                piece = np.zeros(block, np.int16)
                if self.play.is_set() and played < len(self.clip):
                    part = self.clip[played:played + block]
                    piece[:len(part)] = part
                    played += block
                time.sleep(max(0.0, start + written / RATE - time.monotonic()))
                os.write(fd, piece.tobytes())
                written += block
        finally:
            os.close(fd)


def test_list_devices_shows_the_pulse_device(pulse):
    out = subprocess.run([str(MIC), "--list-devices"], capture_output=True, text=True, env=child_env(pulse),
                         timeout=60)
    assert out.returncode == 0, out.stderr
    assert "pulse" in out.stdout


def test_microphone_chunks_carry_the_captured_audio(pulse):
    context = rclpy.Context()
    rclpy.init(context=context)
    node = rclpy.create_node("recorder", namespace=NAMESPACE, context=context)
    chunks, arrivals = [], []

    def on_chunk(msg):
        chunks.append(msg)
        arrivals.append(node.get_clock().now().nanoseconds)

    deep = QoSProfile(depth=500, reliability=ReliabilityPolicy.RELIABLE)
    node.create_subscription(msgs.AudioChunk, "audio", on_chunk, deep)
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(node)
    spinner = threading.Thread(target=executor.spin, daemon=True)
    spinner.start()
    mic = subprocess.Popen([str(MIC), "--device", "pulse", "--rate", str(RATE), "--channels", "1", "--chunk-ms", "20",
                            "--vad-db", "-30", "--vad-hangover", "0.3", "--vad-preroll", "0.2",
                            "--ros-args", "-r", f"__ns:={NAMESPACE}"],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=child_env(pulse))
    lines = []
    reader = threading.Thread(target=lambda: lines.extend(line.rstrip() for line in mic.stdout), daemon=True)
    reader.start()
    writer = FifoWriter(pulse["fifo"])
    try:
        deadline = time.monotonic() + 60.0
        while not any("ready" in line for line in lines):  # the input stream is open
            assert mic.poll() is None and time.monotonic() < deadline, "\n".join(lines)
            time.sleep(0.05)
        writer.start()  # silence: the source runs only while it is fed
        deadline = time.monotonic() + 30.0
        while not chunks:  # discovery done: chunks reach the recorder
            assert mic.poll() is None and time.monotonic() < deadline, "\n".join(lines)
            time.sleep(0.05)
        writer.play.set()
        while not any(c.utterance_end for c in chunks):  # the tone has been heard and has ended
            assert mic.poll() is None and time.monotonic() < deadline, "\n".join(lines)
            time.sleep(0.05)
        assert mic.send_signal(signal.SIGINT) is None and mic.wait(15) == 0, "\n".join(lines)
    finally:
        writer.stop.set()
        if writer.is_alive():
            writer.join(timeout=5.0)  # before the server (and its FIFO) goes away
        if mic.poll() is None:
            mic.kill()
            mic.wait(10)
        reader.join(timeout=5.0)
        mic.stdout.close()
        executor.shutdown()
        spinner.join(timeout=5.0)
        node.destroy_node()
        rclpy.shutdown(context=context)

    assert {(c.sample_rate, c.channels, len(c.samples)) for c in chunks} == {(RATE, 1, 320)}
    assert np.all(np.diff([c.sequence for c in chunks]) == 1)
    audio = np.concatenate([np.frombuffer(c.samples, np.int16) for c in chunks]).astype(np.float64)
    loud = np.flatnonzero(np.abs(audio) > TONE_AMPLITUDE / 2)
    tone = audio[loud[0]:loud[-1] + 1]
    assert len(tone) == pytest.approx(TONE_S * RATE, abs=RATE * 0.002)  # the whole second, nothing lost
    assert np.sqrt(np.mean(tone ** 2)) == pytest.approx(TONE_AMPLITUDE / np.sqrt(2), rel=0.02)
    spectrum = np.abs(np.fft.rfft(tone))
    assert np.fft.rfftfreq(len(tone), 1 / RATE)[np.argmax(spectrum)] == pytest.approx(TONE_HZ, abs=1.5)

    stamps = np.array([c.header.stamp.sec * NS + c.header.stamp.nanosec for c in chunks])
    # The sample clock: 20 ms apart, slewed by at most 0.1 ms per chunk toward the measurements.
    assert np.all(np.abs(np.diff(stamps) - 20_000_000) <= SampleClock.MAX_SLEW_NS + 1)
    # Captured before it arrived here, and not long before.
    assert np.all(stamps < np.array(arrivals))
    assert np.all(np.array(arrivals) - stamps < 2 * NS)

    # One utterance: opened 10 chunks (0.2 s pre-roll) before the first loud chunk, closed after
    # 15 quiet chunks (0.3 s hangover) following the last loud one.
    starts = [i for i, c in enumerate(chunks) if c.utterance_start]
    ends = [i for i, c in enumerate(chunks) if c.utterance_end]
    level = np.sqrt(np.mean(audio.reshape(-1, 320) ** 2, axis=1))
    first_loud, last_loud = np.flatnonzero(level >= 10 ** (-30 / 20) * 32768)[[0, -1]]
    assert starts == [first_loud - 10] and ends == [last_loud + 16]
    assert {c.utterance_id for c in chunks[starts[0]:ends[0] + 1]} == {1}
