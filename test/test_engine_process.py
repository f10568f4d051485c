"""The engine in a child process (talking_face_ros/engine_process.py): the same frames as in this
process, errors that come back named, a child that dies is noticed and replaced, and a child
that never outlives the process that started it."""
from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

from talking_face_ros.engine_process import (EngineCallError, EngineHost, EngineProcess, EngineSettings,
                                             EngineSetupError)


@pytest.fixture(scope="module")
def settings(tmp_path_factory):
    from talking_face_ros.bundle import make_random_bundle

    folder = make_random_bundle(tmp_path_factory.mktemp("engine_process") / "bundle", speakers=("v1", "v2"))
    return EngineSettings(model=str(folder), device="cpu", threads=1, identity="v2", default_emotion="calm")


@pytest.fixture(scope="module")
def child(settings):
    engine = EngineProcess(settings)
    yield engine
    engine.close()


def voiced(seconds: float, seed: int = 0) -> np.ndarray:
    t = np.arange(int(seconds * 16000)) / 16000
    rng = np.random.default_rng(seed)
    return (0.3 * np.sin(2 * np.pi * 140 * t) * (0.6 + 0.4 * np.sin(2 * np.pi * 3 * t))
            + 0.02 * rng.standard_normal(len(t))).astype(np.float32)


def animate(engine, audio: np.ndarray, piece: int = 1600) -> tuple[np.ndarray, np.ndarray]:
    """(indices, weights) of ``audio`` after 100 samples of pad, fed piece by piece as the node feeds it."""
    engine.begin(100)
    parts = [engine.feed(audio[start:start + piece], 16000) for start in range(0, len(audio), piece)]
    parts.append(engine.finish())
    return np.concatenate([i for i, _ in parts]), np.concatenate([w for _, w in parts])


def test_the_child_makes_the_frames_this_process_makes(settings, child):
    host = EngineHost(settings)
    assert child.info.pid == child.pid != os.getpid() and host.info.pid == os.getpid()
    assert child.info == dataclasses.replace(host.info, pid=child.pid)
    assert child.info.default_emotion == "calm" and child.emotion == "calm"
    audio = voiced(1.7)
    got_index, got = animate(child, audio)
    want_index, want = animate(host, audio)
    assert got.shape == want.shape and got.shape[1] == 52 and len(got) > 40
    np.testing.assert_array_equal(got_index, want_index)
    np.testing.assert_allclose(got, want, atol=1e-5)
    assert child.set_emotion("furious") == host.set_emotion("furious") == ("angry", 3)
    assert child.emotion == "furious"


def test_an_error_in_the_child_comes_back_named_and_the_child_goes_on(child):
    with pytest.raises(EngineCallError, match="audio must be 1-D") as caught:
        child.feed(np.zeros((2, 2, 2), np.float32), 16000)
    assert caught.value.kind == "ValueError" and "Traceback" in caught.value.remote_traceback
    assert not caught.value.device_failure
    assert child.alive
    child.reset()
    assert len(animate(child, voiced(0.5))[0]) > 0


def test_a_move_to_the_cpu_keeps_the_emotion_and_says_why(child):
    """What the node asks after a GPU failure during inference (here the engine is on the CPU already)."""
    child.set_emotion("furious")
    fallback = child.move_to_cpu("OutOfMemoryError: CUDA out of memory (injected)")
    assert fallback.during == "inference" and "injected" in fallback.reason
    assert child.info.fallback == fallback and child.info.device == "cpu" and child.info.pid == child.pid
    assert child.emotion == "furious"
    assert len(animate(child, voiced(0.5))[0]) > 0


def test_a_bad_setting_is_refused_with_its_name(settings):
    with pytest.raises(EngineSetupError, match="identity = 'nobody': not one of the model's identities"):
        EngineProcess(EngineSettings(**{**settings.__dict__, "identity": "nobody"}))
    with pytest.raises(EngineSetupError, match="model = '/no/such/bundle'"):
        EngineProcess(EngineSettings(**{**settings.__dict__, "model": "/no/such/bundle"}))


def test_encoder_threads_set_an_onnxruntime_encoder_and_threads_set_torch(settings):
    import torch

    before = torch.get_num_threads()
    try:
        host = EngineHost(dataclasses.replace(settings, threads=1, encoder_threads=2))
        speech = host.engine.bundle.encoders.speech  # Moonshine: an onnxruntime session
        assert speech.session.get_session_options().intra_op_num_threads == 2
        assert torch.get_num_threads() == 1
        host = EngineHost(dataclasses.replace(settings, threads=1, encoder_threads=1))
        assert host.engine.bundle.encoders.speech.session.get_session_options().intra_op_num_threads == 1
    finally:
        torch.set_num_threads(before)


def test_nice_lowers_the_child_s_priority_once_loaded_and_again_after_a_restart(settings, child):
    ours = os.getpriority(os.PRIO_PROCESS, 0)
    assert os.getpriority(os.PRIO_PROCESS, child.pid) == ours  # nice 0: the node's priority
    engine = EngineProcess(dataclasses.replace(settings, nice=5))
    try:
        assert os.getpriority(os.PRIO_PROCESS, engine.pid) == min(19, ours + 5)
        engine.restart()
        assert os.getpriority(os.PRIO_PROCESS, engine.pid) == min(19, ours + 5)
        assert len(animate(engine, voiced(0.5))[0]) > 0
    finally:
        engine.close()
    assert os.getpriority(os.PRIO_PROCESS, 0) == ours  # this process keeps its own


def test_a_killed_child_is_noticed_and_a_restart_keeps_the_emotion(settings):
    engine = EngineProcess(settings)
    try:
        engine.set_emotion("furious")
        os.kill(engine.pid, signal.SIGKILL)
        with pytest.raises(EngineCallError) as caught:
            engine.reset()
        assert caught.value.kind == "EngineProcessEnded" and f"exit status {-signal.SIGKILL}" in str(caught.value)
        assert not engine.alive
        old = engine.pid
        engine.restart(emotion="furious")
        assert engine.alive and engine.pid != old and engine.restarts == 1
        assert engine.emotion == "furious"
        assert len(animate(engine, voiced(0.5))[0]) > 0
    finally:
        engine.close()
    assert not engine.alive


def test_the_child_ignores_ctrl_c_and_ends_with_its_parent(settings):
    """SIGINT reaches a terminal's whole process group: the node decides when its engine stops.
    A parent killed outright (SIGKILL: no clean-up at all) still takes its child along."""
    script = textwrap.dedent(f"""
        import sys, time
        from talking_face_ros.engine_process import EngineProcess, EngineSettings
        engine = EngineProcess(EngineSettings(**{settings.__dict__!r}))
        print(engine.pid, flush=True)
        time.sleep(600)
    """)
    parent = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        pid = int(parent.stdout.readline())
        os.kill(pid, signal.SIGINT)
        time.sleep(0.5)
        assert _running(pid), "the engine process ended on SIGINT"
        parent.kill()
        parent.wait()
        deadline = time.monotonic() + 20
        while _running(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not _running(pid), "the engine process outlived its parent"
    finally:
        if parent.poll() is None:
            parent.kill()


def _running(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie, ended but not yet reaped by init, counts as ended)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_startup_gc_pauses_collection_then_keeps_what_was_loaded_out_of_it():
    import gc

    from talking_face_ros import startup_gc

    assert gc.isenabled()
    startup_gc.pause()
    try:
        assert not gc.isenabled()
        loaded = [{"model": i} for i in range(1000)]
        startup_gc.settle()
        assert gc.isenabled() and gc.get_freeze_count() >= len(loaded)
        collected_from = {id(o) for o in gc.get_objects()}  # what later collections walk
        assert not any(id(x) in collected_from for x in loaded)
    finally:
        gc.unfreeze()
        gc.enable()
