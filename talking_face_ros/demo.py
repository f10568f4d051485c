"""The README's main job: the ROS node animating a sample utterance fed through the real audio topic.

Nothing here calls the model directly. ``run_demo`` starts the installed ``talking_face_node`` as
its own process in a private namespace, subscribes to its ``blendshapes`` (and ``audio``) from
this process, plays the WAV through the installed ``wav_publisher`` at real-time pace, records
until the utterance's speech frames and half a second of the face at rest after them have been
published, and stops the node with SIGINT as a user would. What a person looks at is then
written from the recorded frames: frames.csv, speech.wav, curves.png and (unless disabled)
face.mp4 + contact_sheet.png, all on one clock whose zero is the first frame written.

The bundled sample (assets/sample.wav, assets/sample.txt) is the project's own espeak-ng speech,
made by :func:`write_sample`.
"""
from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .arkit import ARKIT_NAMES
from .child_process import Child
from .cli import UserError
from .paths import ASSETS_DIR, REPO_DIR, node_default_model

PACKAGE = "talking_face_ros"
SAMPLE_WAV = ASSETS_DIR / "sample.wav"
SAMPLE_TEXT = ASSETS_DIR / "sample.txt"
SAMPLE_SENTENCE = "Hi, I'm Bobby! Maybe we can bake a big blueberry pie."  # bilabials: m, b, p
SAMPLE_VOICE = "us_annie"  # a corpus voice (train split); the sample speaks with its happy prosody
DEFAULT_MODEL = node_default_model()  # what the node runs by default: the low-latency model when shipped
DEFAULT_EMOTION = "cheerful and friendly"
NS = 1_000_000_000
IDLE_BEFORE_S = 0.5  # the face at rest kept before the first speech frame
IDLE_AFTER_S = 0.5  # ... and after the last one
READY_TIMEOUT_S = 180.0  # loading both encoders on a busy two-core machine takes tens of seconds
STOP_TIMEOUT_S = 15.0  # a node that has not exited this long after SIGINT did not stop cleanly
# Key channels for the plot: the jaw and the lip shapes speech drives, the smile an emotion
# drives, a brow and a blink for the face at rest.
CURVES = ("jawOpen", "mouthClose", "mouthFunnel", "mouthPucker", "mouthSmileLeft", "mouthStretchLeft",
          "browInnerUp", "eyeBlinkLeft")


class DemoError(UserError):
    """The demo cannot run or its graph misbehaved: one clear message (exit status 2)."""


# ---------------------------------------------------------------------------------------------
# The bundled sample


def write_sample(folder: Path = ASSETS_DIR) -> Path:
    """Speak SAMPLE_SENTENCE with espeak-ng into ``folder``/sample.wav (16 kHz mono int16) + sample.txt."""
    from .corpus.voices import voice_by_id
    from .speech.audio import save_wav
    from .speech.espeak import synthesize
    from .speech.prosody import emotion_prosody

    voice = voice_by_id(SAMPLE_VOICE)
    speech = synthesize(SAMPLE_SENTENCE, voice=voice, prosody=emotion_prosody("happy", 2, voice), sample_rate=16000)
    folder = Path(folder)
    (folder / "sample.txt").write_text(SAMPLE_SENTENCE + "\n")
    return save_wav(folder / "sample.wav", speech.audio, speech.sample_rate)


# ---------------------------------------------------------------------------------------------
# Finding the installed package


def installed_executable(name: str) -> Path:
    """``lib/talking_face_ros/<name>`` of this prefix (the venv) or of the ament index."""
    candidates = [Path(sys.prefix) / "lib" / PACKAGE / name]
    try:
        from ament_index_python.packages import get_package_prefix

        candidates.append(Path(get_package_prefix(PACKAGE)) / "lib" / PACKAGE / name)
    except (ImportError, LookupError, OSError, ValueError):  # no ament index: the venv prefix only
        pass
    for path in candidates:
        if path.is_file() and os.access(path, os.X_OK):
            return path
    raise DemoError(f"the ROS node executable {name!r} is not installed (looked in "
                    f"{', '.join(str(c.parent) for c in candidates)}): run bash scripts/setup.sh")


def config_file(name: str) -> Path:
    """``config/<name>`` as installed in share/, else from the source checkout."""
    candidates = [Path(sys.prefix) / "share" / PACKAGE / "config" / name]
    try:
        from ament_index_python.packages import get_package_share_directory

        candidates.append(Path(get_package_share_directory(PACKAGE)) / "config" / name)
    except (ImportError, LookupError, OSError, ValueError):
        pass
    candidates.append(REPO_DIR / "config" / name)
    for path in candidates:
        if path.is_file():
            return path
    raise DemoError(f"config/{name} not found (looked in {', '.join(str(c.parent) for c in candidates)}): "
                    f"run bash scripts/setup.sh")


def resolve_model(model: Path | None) -> Path:
    folder = Path(model).expanduser() if model is not None else DEFAULT_MODEL
    if not (folder / "bundle.json").is_file():
        if model is None:
            raise DemoError(f"no default model is installed at {folder}: pass a model bundle with --model FOLDER "
                            f"(talking-face train writes one)")
        raise DemoError(f"--model {folder}: no bundle.json in that folder")
    return folder.resolve()


def graph_environment() -> dict[str, str]:
    """Discovery on this machine only, with the project's quick-announcement Fast DDS profile."""
    return {"ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST",
            "FASTDDS_DEFAULT_PROFILES_FILE": str(config_file("fastdds_localhost.xml"))}


@contextmanager
def _environment(values: dict[str, str]):
    """``os.environ`` with ``values`` while this process creates its DDS participant."""
    before = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in before.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


# ---------------------------------------------------------------------------------------------
# Child processes and the recorder


def _stamp(msg) -> int:
    return msg.header.stamp.sec * NS + msg.header.stamp.nanosec


def wait_until(condition, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


class Recorder:
    """``blendshapes`` and ``audio`` of one namespace, recorded in this process (its own rclpy context)."""

    def __init__(self, namespace: str):
        import rclpy
        from rclpy.executors import SingleThreadedExecutor
        from rclpy.qos import QoSProfile, ReliabilityPolicy
        from rclpy.signals import SignalHandlerOptions

        from .msg import AudioChunk, BlendshapeFrame

        self.frames: list = []  # BlendshapeFrame messages, in arrival order
        self.chunks: list = []  # AudioChunk messages
        self._rclpy = rclpy
        self.context = rclpy.Context()
        # No rclpy signal handlers: Ctrl-C stays a KeyboardInterrupt, so the children get stopped.
        rclpy.init(context=self.context, signal_handler_options=SignalHandlerOptions.NO)
        self.node = rclpy.create_node("demo_recorder", namespace=namespace, context=self.context)
        # Reliable with a deep queue: the recording must be complete even while Python is busy.
        deep = QoSProfile(depth=1000, reliability=ReliabilityPolicy.RELIABLE)
        self.node.create_subscription(BlendshapeFrame, "blendshapes", self.frames.append, deep)
        self.node.create_subscription(AudioChunk, "audio", self.chunks.append, deep)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self._spinner = threading.Thread(target=self.executor.spin, daemon=True)
        self._spinner.start()

    def close(self) -> None:
        self.executor.shutdown()
        self._spinner.join(timeout=5.0)
        self.node.destroy_node()
        self._rclpy.shutdown(context=self.context)


# ---------------------------------------------------------------------------------------------
# The recording, as arrays


@dataclass
class Recording:
    """Recorded frames as arrays (arrival order = publication order)."""

    index: np.ndarray  # (n,) frame_index
    stamp_ns: np.ndarray  # (n,) int64 header.stamp
    speaking: np.ndarray  # (n,) bool
    utterance: np.ndarray  # (n,) utterance_id
    label: list[str]  # (n,) "emotion_label intensity"
    emotion: list[str]  # (n,) the emotion text in force
    weights: np.ndarray  # (n, 52) float32, in ARKIT_NAMES order
    fps: float

    @classmethod
    def of(cls, frames) -> "Recording":
        if not frames:
            raise DemoError("no blendshape frames were received from the node")
        for f in frames:
            if list(f.names) != list(ARKIT_NAMES):
                raise DemoError(f"frame {f.frame_index}: names are not the 52 ARKit names in ARKit order")
        return cls(index=np.array([f.frame_index for f in frames], np.int64),
                   stamp_ns=np.array([_stamp(f) for f in frames], np.int64),
                   speaking=np.array([f.speaking for f in frames], bool),
                   utterance=np.array([f.utterance_id for f in frames], np.int64),
                   label=[f"{f.emotion_label} {f.emotion_intensity}" for f in frames],
                   emotion=[f.emotion for f in frames],
                   weights=np.array([np.asarray(f.weights, np.float32) for f in frames], np.float32),
                   fps=float(frames[0].fps))

    @property
    def period_ns(self) -> int:
        return int(round(NS / self.fps))  # as the node's grid rounds it

    def speech(self, utterance_id: int) -> np.ndarray:
        """Positions of the speech frames of one utterance."""
        return np.flatnonzero(self.speaking & (self.utterance == utterance_id))

    def window(self, utterance_id: int, *, before_s: float = IDLE_BEFORE_S, after_s: float = IDLE_AFTER_S) -> slice:
        """The utterance's speech frames plus up to ``before_s`` / ``after_s`` of the frames around them."""
        speech = self.speech(utterance_id)
        if len(speech) == 0:
            raise DemoError(f"the node published no speech frames for utterance {utterance_id}")
        first, last = int(speech[0]), int(speech[-1])
        lo = self.stamp_ns[first] - int(round(before_s * NS))
        hi = self.stamp_ns[last] + int(round(after_s * NS))
        start = first
        while start > 0 and self.stamp_ns[start - 1] >= lo:
            start -= 1
        stop = last + 1
        while stop < len(self.stamp_ns) and self.stamp_ns[stop] <= hi:
            stop += 1
        return slice(start, stop)

    def continuous(self, part: slice) -> bool:
        """Frame indices +1 and stamps +1 period from each frame to the next (nothing lost or shifted)."""
        return bool(np.all(np.diff(self.index[part]) == 1) and np.all(np.diff(self.stamp_ns[part]) == self.period_ns))


def place_audio(audio: np.ndarray, rate: int, *, first_sample_ns: int, start_ns: int, end_ns: int) -> np.ndarray:
    """``audio`` (first sample stamped ``first_sample_ns``) on the clock that starts at ``start_ns``.

    Silence in front and behind, so that output sample n has the stamp ``start_ns + n / rate``
    and the output lasts until ``end_ns``: a video whose frame i depicts ``start_ns + i / fps``
    then plays each frame with the sound it depicts.
    """
    lead = int(round((first_sample_ns - start_ns) * rate / NS))
    if lead < 0:
        raise ValueError(f"the audio starts {-lead / rate:.3f} s before the clock's start")
    total = max(lead + len(audio), int(round((end_ns - start_ns) * rate / NS)))
    out = np.zeros(total, np.float32)
    out[lead:lead + len(audio)] = audio
    return out


# ---------------------------------------------------------------------------------------------
# The demo


@dataclass
class DemoResult:
    out: Path
    written: list[Path]
    frames_received: int
    frames_written: int
    speaking_frames: int
    speech_start_s: float  # time in frames.csv of the first speech frame
    labels: list[str]  # emotion labels of the speech frames, in order of appearance
    continuous: bool  # frame indices and stamps continuous over the frames written
    node_exit: int | None  # exit status of the node after SIGINT; None: it had to be killed
    ready_line: str
    warnings: list[str] = field(default_factory=list)  # the node's WARN / ERROR lines

    def summary(self) -> str:
        return (f"{self.frames_received} frames received, {self.frames_written} written "
                f"({self.speaking_frames} speaking from t={self.speech_start_s:.3f} s), "
                f"emotion {' -> '.join(self.labels)}, stamps {'continuous' if self.continuous else 'NOT continuous'}, "
                f"node stopped {'cleanly (exit 0)' if self.node_exit == 0 else f'with status {self.node_exit}'}")


def run_demo(*, wav: Path = SAMPLE_WAV, emotion: str = DEFAULT_EMOTION, model: Path | None = None,
             out: Path = Path("out/demo"),
             size: int = 512,  # video width and height in pixels
             video: bool = True,  # False: frames.csv, speech.wav and curves.png only
             log=print) -> DemoResult:
    """Run node + recorder + wav_publisher, then write the outputs (see the module docstring)."""
    from .nodes.wav_publisher import read_wav_int16

    model = resolve_model(model)
    try:
        pcm, rate = read_wav_int16(wav)
    except ValueError as exc:
        raise DemoError(str(exc)) from None
    if video and (size < 16 or size % 2):
        raise DemoError(f"--size must be an even number of pixels, at least 16, got {size}")
    node_exe, publisher_exe = installed_executable("talking_face_node"), installed_executable("wav_publisher")
    env = graph_environment()
    namespace = f"/demo_{os.getpid()}"
    duration_s = len(pcm) / rate

    log(f"starting talking_face_node in {namespace} (model {model})")
    with _environment(env):
        recorder = Recorder(namespace)
    node = publisher = None
    try:
        node = Child([node_exe, "--ros-args", "--params-file", config_file("talking_face.yaml"),
                      "-p", f"model:={model}", "-p", "threads:=1", "-r", f"__ns:={namespace}"],
                     env={**os.environ, **env})
        if not wait_until(lambda: node.find_line("]: ready in ") or node.proc.poll() is not None, READY_TIMEOUT_S):
            raise DemoError(f"talking_face_node was not ready after {READY_TIMEOUT_S:g} s; its output:\n"
                            f"{node.output()}")
        ready = node.find_line("]: ready in ")
        if ready is None:
            raise DemoError(f"talking_face_node exited with status {node.proc.poll()}; its output:\n{node.output()}")
        ready = ready[1].split("]: ", 1)[1]
        log(f"node {ready}")

        # Some face at rest before the speech (and proof that the recorder hears the node).
        def rested():
            frames = recorder.frames
            return node.proc.poll() is not None or (
                len(frames) > 1 and _stamp(frames[-1]) - _stamp(frames[0]) >= IDLE_BEFORE_S * NS)
        if not wait_until(rested, 30.0) or node.proc.poll() is not None:
            raise DemoError(f"no frames on {namespace}/blendshapes within 30 s of the node being ready; "
                            f"its output:\n{node.output()}")

        log(f"publishing {wav} ({duration_s:.2f} s) on {namespace}/audio with emotion {emotion!r}")
        publisher = Child([publisher_exe, wav, "--emotion", emotion, "--wait", "30", "--subscribers", "2",
                           "--ros-args", "-r", f"__ns:={namespace}"], env={**os.environ, **env})
        try:
            status = publisher.proc.wait(duration_s + 60.0)
        except subprocess.TimeoutExpired:
            status = None
        if status != 0:
            raise DemoError(f"wav_publisher {'did not finish' if status is None else f'exited with status {status}'}"
                            f"; its output:\n{publisher.output()}")
        if not wait_until(lambda: any(c.utterance_end for c in recorder.chunks), 10.0):
            raise DemoError("the recorder did not receive the whole utterance on the audio topic")
        first_chunk = next(c for c in recorder.chunks if c.utterance_start)
        utterance_id = first_chunk.utterance_id
        first_sample_ns = _stamp(first_chunk)
        audio_end_ns = first_sample_ns + int(round(duration_s * NS))

        def finished():  # the utterance's last speech frame and IDLE_AFTER_S of rest after it are in
            frames = recorder.frames
            if node.proc.poll() is not None:
                return True
            if not frames or _stamp(frames[-1]) < audio_end_ns:
                return False
            spoken = next((f for f in reversed(frames) if f.speaking and f.utterance_id == utterance_id), None)
            return spoken is not None and _stamp(frames[-1]) >= _stamp(spoken) + IDLE_AFTER_S * NS

        if not wait_until(finished, 60.0) or node.proc.poll() is not None:
            raise DemoError(f"the node did not publish the utterance's frames within 60 s; its output:\n"
                            f"{node.output()}")
    finally:
        node_exit = node.stop(timeout_s=STOP_TIMEOUT_S) if node is not None else None
        if publisher is not None and publisher.proc.poll() is None:
            publisher.stop(timeout_s=STOP_TIMEOUT_S)
        recorder.close()
    log(f"node stopped with SIGINT: {'exit 0' if node_exit == 0 else f'status {node_exit}'}")

    rec = Recording.of(recorder.frames)
    part = rec.window(utterance_id)
    result = write_outputs(rec, part, utterance_id=utterance_id, pcm=pcm, rate=rate,
                           first_sample_ns=first_sample_ns, out=Path(out), size=size, video=video, log=log)
    result.node_exit, result.ready_line = node_exit, ready
    result.warnings = [line for line in node.text_lines() if "[WARN]" in line or "[ERROR]" in line]
    return result


def write_outputs(rec: Recording, part: slice, *, utterance_id: int, pcm: np.ndarray, rate: int,
                  first_sample_ns: int, out: Path, size: int, video: bool, log=print) -> DemoResult:
    """frames.csv, speech.wav, curves.png (+ face.mp4, contact_sheet.png) of the frames in ``part``."""
    from .frames_io import save_frames
    from .speech.audio import save_wav, to_mono

    out.mkdir(parents=True, exist_ok=True)
    stamps = rec.stamp_ns[part]
    times = (stamps - stamps[0]) / NS  # one clock for every output: zero is the first frame written
    weights = rec.weights[part]
    speaking = rec.speaking[part] & (rec.utterance[part] == utterance_id)
    written = [save_frames(out / "frames.csv", times, weights)]
    audio = place_audio(to_mono(pcm.astype(np.float32) / 32768.0), rate, first_sample_ns=first_sample_ns,
                        start_ns=int(stamps[0]), end_ns=int(stamps[-1]) + rec.period_ns)
    written.append(save_wav(out / "speech.wav", audio, rate))
    written.append(plot_curves(out / "curves.png", times, weights, speaking, audio, rate,
                               title=f"talking_face_node, emotion {rec.emotion[part.stop - 1]!r}"))
    if video:
        from .commands.render import render_outputs

        render_outputs(weights, rec.fps, written[1], out / "face.mp4", out / "contact_sheet.png", size=size)
        written += [out / "face.mp4", out / "contact_sheet.png"]
    labels = [rec.label[i] for i in range(part.start, part.stop) if rec.speaking[i]]
    return DemoResult(out=out, written=written, frames_received=len(rec.index), frames_written=len(times),
                      speaking_frames=int(speaking.sum()), speech_start_s=float(times[np.argmax(speaking)]),
                      labels=list(dict.fromkeys(labels)), continuous=rec.continuous(part), node_exit=None,
                      ready_line="")


def plot_curves(path: Path, times, weights, speaking, audio, rate: int, *, title: str) -> Path:
    """Key blendshapes, the lip gap and the waveform over time, the speaking span shaded."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .lip_geometry import CLOSED_GAP, lip_gap

    period = float(np.median(np.diff(times))) if len(times) > 1 else 1 / 30
    spoken = np.flatnonzero(speaking)
    fig, axes = plt.subplots(3, 1, figsize=(11, 7.5), sharex=True, gridspec_kw={"height_ratios": [3, 1.3, 1]})
    for name in CURVES:
        axes[0].plot(times, weights[:, ARKIT_NAMES.index(name)], label=name, lw=1.3)
    axes[0].set_ylabel("weight")
    axes[0].set_ylim(-0.02, 1.02)
    axes[0].legend(ncol=4, fontsize=8, loc="upper right")
    axes[1].plot(times, lip_gap(weights), color="k", lw=1.3)
    axes[1].axhline(CLOSED_GAP, color="tab:red", ls="--", lw=1, label=f"closed (<= {CLOSED_GAP} cm)")
    axes[1].set_ylabel("lip gap (cm)")
    axes[1].legend(fontsize=8, loc="upper right")
    axes[2].plot(np.arange(len(audio)) / rate, audio, color="0.4", lw=0.5)
    axes[2].set_ylabel("audio")
    axes[2].set_xlabel("time (s)")
    for ax in axes:
        if len(spoken):
            ax.axvspan(times[spoken[0]], times[spoken[-1]] + period, color="tab:orange", alpha=0.12, lw=0)
        ax.grid(alpha=0.3)
    axes[0].set_title(f"{title} (speaking shaded)")
    axes[2].set_xlim(times[0], times[-1] + period)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Path(path)
