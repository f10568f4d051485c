"""The talking face node's engine, in the node's process or in a child process of its own.

Why a child process: CPython runs one thread of a process at a time (the GIL). The engine's
Python work between two torch calls holds up the node's frame timer, which then publishes a
frame a few ms late: with the engine in a thread beside the timer, bench/node_latency.py
measured frame-interval jitter p99 of 5.6-9.6 ms on this 2-core machine (target 5 ms). In a child,
the engine has an interpreter of its own; the node's process keeps only ROS, the audio intake
and the frame timeline, and waits on a socket (GIL released) while the engine computes.

* ``EngineSettings``: what to load (the node's parameters that concern the engine).
* ``EngineHost``: the engine, its emotion labels and its move to the CPU after a GPU failure,
  called by one thread. The node uses it directly with ``engine_process: false``.
* ``EngineProcess``: the same calls, served by an ``EngineHost`` in a child Python process
  (``python -m talking_face_ros.engine_process``) over a socket pair. An exception in the child
  comes back as ``EngineCallError`` naming the child's exception and its traceback; a child that
  dies (killed, out of memory) makes every call raise ``EngineCallError`` until ``restart``.

The child ignores SIGINT (Ctrl-C reaches the whole process group; the node decides when to stop)
and ends when its socket closes, so it never outlives the node, even one killed with SIGKILL.
Messages are pickled (multiprocessing.connection): both ends are this package, on one machine.
"""
from __future__ import annotations

import dataclasses
import os
import socket
import subprocess
import sys
import traceback
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path

import numpy as np

from .device_fallback import DeviceFallback, build_on_device, describe, is_device_failure
from .emotions import clean_text
from .encoders.base import SAMPLE_RATE

START_TIMEOUT_S = 600.0  # longest wait for a child to load its models (a first ONNX/TensorRT export is slow)
STOP_WAIT_S = 2.0  # longest wait for a child to end after its socket closes, before it is killed


class EngineSetupError(ValueError):
    """A setting the engine cannot start with; the message names it (``model = '...': why``)."""


class EngineCallError(RuntimeError):
    """A call that failed in the engine's process (``kind``: the exception's type name there)."""

    def __init__(self, kind: str, message: str, *, remote_traceback: str = "", device_failure: bool = False):
        super().__init__(f"{kind}: {message}" if message else kind)
        self.kind = kind
        self.remote_traceback = remote_traceback
        self.device_failure = device_failure  # device_fallback.is_device_failure of the original


@dataclass(frozen=True)
class EngineSettings:
    model: str  # bundle folder
    device: str = "cpu"  # auto | cpu | cuda[:N]
    backend: str = "torch"  # torch | onnx
    precision: str = "auto"  # auto | fp32 | fp16
    threads: int = 1  # torch CPU threads (and a torch speech encoder's); 0: the libraries' defaults
    encoder_threads: int = 2  # CPU threads of an onnxruntime speech encoder's pass; 0: all cores
    nice: int = 0  # added to a child engine process's niceness once it has loaded (lower_priority); 0: none
    emotion_blend_s: float = 0.5
    step_frames: int = 0  # 0: the engine's choice
    identity: str = "default"
    default_emotion: str = ""  # empty: the model's


@dataclass(frozen=True)
class EngineInfo:
    """What the node needs to know of the loaded engine (plain values: it crosses processes)."""

    model_kind: str
    fps: float
    latency_s: float
    causal_features: bool
    backend: str
    device: str  # where it runs: cpu, cuda, cuda:1
    identities: tuple[str, ...]
    default_emotion: str  # settings.default_emotion cleaned, else the model's
    default_label: tuple[str, int]  # its (MEAD emotion, intensity)
    fallback: DeviceFallback | None  # why it runs on the CPU though a GPU was asked for
    pid: int  # the process it runs in


class EngineHost:
    """The engine with its emotion labels, for one caller thread at a time."""

    def __init__(self, settings: EngineSettings):
        import torch

        from .encoders.base import resolve_torch_device
        from .idle_face import EmotionLabels

        self.settings = settings
        if settings.threads > 0:
            torch.set_num_threads(settings.threads)  # a busy small CPU runs torch faster on fewer threads
        try:
            # A GPU that is missing or fails while loading: the CPU, with one warning (device_fallback).
            self.engine, fallback = build_on_device(self._build, settings.device)
        except (ValueError, OSError) as exc:
            raise EngineSetupError(f"model = {settings.model!r}: {exc}".replace("\n", " ")) from None
        bundle = self.engine.bundle
        if settings.identity not in bundle.identities:
            raise EngineSetupError(f"identity = {settings.identity!r}: not one of the model's identities "
                                   f"({', '.join(bundle.identities)})")
        self.labels = EmotionLabels(bundle.encoders.text)
        self.labels.warm_up()  # embeds the labelled phrasings now, not in the middle of speech
        default = clean_text(settings.default_emotion)[0] or bundle.default_emotion
        self.engine.set_emotion(default)
        self.info = EngineInfo(
            model_kind=bundle.model_kind, fps=float(self.engine.fps), latency_s=float(self.engine.latency_s),
            causal_features=bool(self.engine.causal_features), backend=self.engine.backend,
            device="cpu" if fallback is not None else resolve_torch_device(settings.device),
            identities=tuple(bundle.identities), default_emotion=default, default_label=tuple(self.labels(default)),
            fallback=fallback, pid=os.getpid())

    def _build(self, device: str):
        from .bundle import read_meta
        from .encoders.registry import ONNXRUNTIME_SPEECH_KINDS, speech_kind
        from .engine import Engine

        s = self.settings
        kind = speech_kind(read_meta(s.model)["encoders"].get("speech"))
        threads = s.encoder_threads if kind in ONNXRUNTIME_SPEECH_KINDS else s.threads
        options = {"speech": {"threads": threads}} if threads > 0 else None
        engine = Engine.from_bundle(s.model, device=device, backend=s.backend, precision=s.precision,
                                    encoder_options=options, emotion_blend_s=s.emotion_blend_s,
                                    step_frames=s.step_frames)
        if s.identity in engine.bundle.identities:  # else __init__ refuses the setting
            engine.set_identity(s.identity)
        return engine

    # One call each for what the node does per audio piece: across processes, every call is a
    # round trip, and each wakes a sleeping process (on a virtual machine that can take ms).
    def reset(self) -> None:
        """Forget the utterance (after an engine error)."""
        self.engine.reset()

    def begin(self, pad_samples: int) -> None:
        """A new utterance, after ``pad_samples`` of silence (its first sample's place on the frame grid)."""
        self.engine.reset()
        if pad_samples:
            self.engine.push(np.zeros(pad_samples, np.float32), SAMPLE_RATE)

    def feed(self, samples: np.ndarray, sample_rate: float) -> tuple[np.ndarray, np.ndarray]:
        """Audio in; the frames it made final out: indices (n,) int64 and weights (n, 52) float32."""
        self.engine.push(samples, sample_rate)
        return self._pull()

    def finish(self) -> tuple[np.ndarray, np.ndarray]:
        """The end of the utterance: its remaining frames, as ``feed`` returns them."""
        self.engine.flush()
        return self._pull()

    def _pull(self) -> tuple[np.ndarray, np.ndarray]:
        index, _, weights = self.engine.pull_arrays()
        return index, weights

    def set_emotion(self, text: str) -> tuple[str, int]:
        """Blend towards ``text`` from the newest audio on; returns its (MEAD emotion, intensity)."""
        self.engine.set_emotion(text)
        return tuple(self.labels(text))

    @property
    def emotion(self) -> str:
        return self.engine.emotion

    def move_to_cpu(self, reason: str) -> DeviceFallback:
        """The GPU failed during inference: the engine again on the CPU, keeping its emotion (seconds)."""
        emotion = self.engine.emotion
        engine = self._build("cpu")
        engine.set_emotion(emotion)
        self.engine = engine
        self.labels.text_encoder = engine.bundle.encoders.text
        fallback = DeviceFallback(requested=self.settings.device, reason=reason, during="inference")
        self.info = dataclasses.replace(self.info, device="cpu", backend=engine.backend, fallback=fallback)
        return fallback

    @property
    def alive(self) -> bool:
        return True

    def close(self) -> None:
        pass


class EngineProcess:
    """``EngineHost``'s calls, run by a child process (see the module docstring for why)."""

    def __init__(self, settings: EngineSettings, *, timeout_s: float = START_TIMEOUT_S):
        self.settings = settings
        self.restarts = 0
        self._start(timeout_s, prestarted=_take_prestarted())

    def _start(self, timeout_s: float, *, prestarted=None) -> None:
        self._proc, self._conn = prestarted or _spawn()
        self._conn.send(dataclasses.asdict(self.settings))
        if not self._conn.poll(timeout_s):
            self._kill()
            raise EngineCallError("TimeoutError", f"the engine process did not load in {timeout_s:g} s")
        reply = self._receive()
        if reply[0] == "setup_error":
            self._kill()
            raise EngineSetupError(reply[1])
        self.info: EngineInfo = _info_from(reply[1])

    def _receive(self):
        try:
            reply = self._conn.recv()
        except (EOFError, OSError):
            code = self._proc.wait()  # the socket closed: the child has ended, or is about to
            raise EngineCallError("EngineProcessEnded", f"the engine process ended (exit status {code})") from None
        if reply[0] == "error":
            _, kind, message, remote, device_failure = reply
            raise EngineCallError(kind, message, remote_traceback=remote, device_failure=device_failure)
        return reply

    def _call(self, name: str, *args):
        if self._proc.poll() is not None:
            raise EngineCallError("EngineProcessEnded", f"the engine process ended (exit status "
                                                        f"{self._proc.returncode})")
        try:
            self._conn.send((name, args))
        except OSError:
            code = self._proc.wait()
            raise EngineCallError("EngineProcessEnded", f"the engine process ended (exit status {code})") from None
        return self._receive()[1]

    def reset(self) -> None:
        self._call("reset")

    def begin(self, pad_samples: int) -> None:
        self._call("begin", int(pad_samples))

    def feed(self, samples: np.ndarray, sample_rate: float) -> tuple[np.ndarray, np.ndarray]:
        return self._call("feed", np.ascontiguousarray(samples), float(sample_rate))

    def finish(self) -> tuple[np.ndarray, np.ndarray]:
        return self._call("finish")

    def set_emotion(self, text: str) -> tuple[str, int]:
        return self._call("set_emotion", text)

    @property
    def emotion(self) -> str:
        return self._call("emotion")

    def move_to_cpu(self, reason: str) -> DeviceFallback:
        fallback = self._call("move_to_cpu", reason)
        self.info = self._call("info")  # its device, backend and fallback changed
        return fallback

    @property
    def alive(self) -> bool:
        return self._proc.poll() is None

    @property
    def pid(self) -> int:
        return self._proc.pid

    def restart(self, *, emotion: str | None = None) -> None:
        """A fresh child after this one died (seconds: it loads the models again)."""
        self.close()
        self._start(START_TIMEOUT_S)
        self.restarts += 1
        if emotion:
            self.set_emotion(emotion)

    def close(self) -> None:
        """End the child: its socket closes, it returns from its wait and exits; killed if it lingers."""
        try:
            self._conn.close()
        except OSError:
            pass
        try:
            self._proc.wait(STOP_WAIT_S)
        except subprocess.TimeoutExpired:
            self._kill()

    def _kill(self) -> None:
        self._proc.kill()
        self._proc.wait()


def start_engine(settings: EngineSettings, *, in_process: bool):
    """An ``EngineHost`` here (``in_process``) or an ``EngineProcess``; both raise EngineSetupError."""
    if in_process:
        discard_prestarted()
        return EngineHost(settings)
    return EngineProcess(settings)


_prestarted: tuple[subprocess.Popen, Connection] | None = None


def prestart() -> None:
    """Start an engine process now, before its settings are known: it imports torch and the
    engine (about 2 s of a node's start-up) while the node's own modules load. The next
    ``EngineProcess`` takes it over; one never taken ends with this process (its socket closes)."""
    global _prestarted
    if _prestarted is None:
        _prestarted = _spawn()


def discard_prestarted() -> None:
    global _prestarted
    if _prestarted is not None:
        proc, conn = _prestarted
        _prestarted = None
        conn.close()  # the child sees the socket close and exits
        try:
            proc.wait(STOP_WAIT_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _take_prestarted():
    global _prestarted
    taken, _prestarted = _prestarted, None
    if taken is not None and taken[0].poll() is not None:  # it died meanwhile
        return None
    return taken


def _spawn() -> tuple[subprocess.Popen, Connection]:
    """A child running ``serve`` on one end of a socket pair; this process keeps the other end."""
    ours, theirs = socket.socketpair()
    package_root = str(Path(__file__).resolve().parents[1])  # found however this process found it
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (package_root, os.environ.get("PYTHONPATH")) if p)}
    with theirs:
        proc = subprocess.Popen([sys.executable, "-m", "talking_face_ros.engine_process", str(theirs.fileno())],
                                pass_fds=(theirs.fileno(),), env=env, stdin=subprocess.DEVNULL)
    return proc, Connection(ours.detach())


def _info_from(fields: dict) -> EngineInfo:
    fallback = fields.pop("fallback")
    return EngineInfo(**{**fields, "fallback": None if fallback is None else DeviceFallback(**fallback),
                         "identities": tuple(fields["identities"]),
                         "default_label": tuple(fields["default_label"])})


CALLS = {"reset", "begin", "feed", "finish", "set_emotion", "emotion", "move_to_cpu", "info"}


def lower_priority(nice: int) -> None:
    """Raise this process's niceness by ``nice`` (any user may lower their own priority).

    Why: the node's frame timer wakes for about a millisecond every frame, while the engine
    computes in bursts. Below the node's priority, the engine gives way sooner when a frame falls
    due. It is a trade, hence off by default (the node's ``engine_nice`` 0), with
    ``bench/node_latency.py --seconds 60`` runs, ``--set engine_nice:=10`` against 0:
    with the node the machine's only load (four alternating pairs), frame-interval jitter p99 at
    the node's writes was 1.12-1.55 ms against 1.40-3.18 ms, no late frame either way; beside
    three other busy processes (``--busy 3``, two pairs), jitter was the same (writes 6.2-6.4
    against 5.5-6.6 ms) but 10 and 4 frames came late against none, as the engine lost CPU to
    them. Applied after loading, so that start-up is not slowed."""
    if nice > 0:
        try:
            os.nice(nice)
        except OSError:  # a sandbox that forbids it: run at the inherited priority
            pass


def serve(conn: Connection) -> int:
    """The child's side: load, then answer calls until the socket closes."""
    import signal

    from . import startup_gc

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C goes to the node, which closes the socket
    startup_gc.pause()  # until the engine is loaded
    # The slow imports first, while the node process still starts (about 2.5 s here, of which
    # torch 1.9 s): only loading the bundle named in the settings is left for after them.
    import onnxruntime  # noqa: F401 - Moonshine and MiniLM run in it
    import torch  # noqa: F401

    from . import bundle, engine, idle_face, model  # noqa: F401
    from .encoders import registry  # noqa: F401
    try:
        settings = EngineSettings(**conn.recv())
    except (EOFError, OSError):
        return 0
    try:
        host = EngineHost(settings)
    except EngineSetupError as exc:
        conn.send(("setup_error", str(exc)))
        return 0
    except Exception as exc:  # noqa: BLE001 - a load failure goes back to the node, which names it
        conn.send(("setup_error", f"model = {settings.model!r}: {describe(exc)}"))
        return 0
    startup_gc.settle()
    lower_priority(settings.nice)
    conn.send(("ready", dataclasses.asdict(host.info)))
    while True:
        try:
            name, args = conn.recv()
        except (EOFError, OSError):
            return 0
        try:
            if name not in CALLS:
                raise ValueError(f"no engine call {name!r}")
            value = getattr(host, name)
            reply = ("ok", value(*args) if callable(value) else value)
        except Exception as exc:  # noqa: BLE001 - every error goes back to the caller
            reply = ("error", type(exc).__name__, str(exc), traceback.format_exc(), is_device_failure(exc))
        try:
            conn.send(reply)
        except OSError:
            return 0


if __name__ == "__main__":
    # This module under its package name, not as __main__: what it sends (an EngineInfo) must
    # unpickle in the node as talking_face_ros.engine_process.EngineInfo.
    from talking_face_ros.engine_process import serve as serve_by_name

    sys.exit(serve_by_name(Connection(int(sys.argv[1]))))
