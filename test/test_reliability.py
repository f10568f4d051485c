"""Device fallback rules, and ``talking-face reliability --quick`` run end to end.

The quick report drives the installed node and this package's in-process node through every
scenario of ``talking_face_ros/reliability.py`` (soak, real time, killed publisher and
subscriber, SIGTERM/SIGINT while busy, CUDA missing, an engine error, a GPU out-of-memory
error, an overload burst); here its figures are checked with bounds loose enough for a
shared, loaded machine. The figures themselves are the report's, quoted in the README.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from talking_face_ros.device_fallback import DeviceFallback, build_on_device, is_device_failure

REPO = Path(__file__).resolve().parents[1]


def test_device_failures_are_told_apart_from_other_errors():
    import torch

    device_failures = [
        torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB"),
        AssertionError("Torch not compiled with CUDA enabled"),
        RuntimeError("CUDA error: an illegal memory access was encountered"),
        RuntimeError("cuDNN error: CUDNN_STATUS_NOT_INITIALIZED"),
        RuntimeError("[ONNXRuntimeError] : 1 : FAIL : CUDA failure 2: out of memory"),
        ValueError("device 'cuda': torch sees no CUDA GPU here; use 'cpu' or 'auto'"),
        ValueError("device 'cuda': onnxruntime has no CUDAExecutionProvider here"),
    ]
    others = [
        RuntimeError("mat1 and mat2 shapes cannot be multiplied (3x4 and 5x6)"),
        ValueError("/models/cuda_runs/bundle.json: field 'fps' must be a number"),  # a path, not CUDA
        KeyError("CUDA"),
        OSError("No space left on device"),
        AssertionError("frames must be continuous"),
    ]
    assert [is_device_failure(e) for e in device_failures] == [True] * len(device_failures)
    assert [is_device_failure(e) for e in others] == [False] * len(others)


def test_build_on_device_falls_back_to_the_cpu_only_for_device_failures(monkeypatch):
    import torch

    built = []

    def build(device):
        built.append(device)
        if device != "cpu" and failure is not None:
            raise failure
        return f"engine on {device}"

    # No CUDA at all: never tried, the CPU with the reason.
    failure = None
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    result, fallback = build_on_device(build, "cuda")
    assert (result, built) == ("engine on cpu", ["cpu"])
    assert fallback == DeviceFallback("cuda", "torch sees no CUDA GPU here", "loading")
    assert "running on the CPU" in fallback.message()
    # "auto" without CUDA and "cpu" are plain CPU work, no fallback to report.
    built.clear()
    assert build_on_device(build, "auto") == ("engine on auto", None)
    assert build_on_device(build, "cpu") == ("engine on cpu", None)

    # A GPU that runs out of memory while loading: tried, then the CPU.
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    monkeypatch.setattr(torch.cuda, "empty_cache", lambda: None)
    built.clear()
    failure = torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")
    result, fallback = build_on_device(build, "cuda:0", during="inference")
    assert (result, built) == ("engine on cpu", ["cuda:0", "cpu"])
    assert fallback.during == "inference" and fallback.reason.startswith("OutOfMemoryError: CUDA out of memory")
    # A device index this machine lacks is never tried.
    built.clear()
    assert build_on_device(build, "cuda:3")[1].reason == "no CUDA device 3 (this machine has 1)"
    assert built == ["cpu"]
    # Anything else (a broken bundle, a bug) is raised as itself.
    failure = ValueError("bundle.json: field 'plan' is missing")
    with pytest.raises(ValueError, match="field 'plan'"):
        build_on_device(build, "cuda")


def test_reliability_quick_report_runs_every_scenario(tmp_path):
    pytest.importorskip("rclpy", reason="rclpy not installed (scripts/build_ros.sh)")
    if not (Path(sys.prefix) / "lib" / "talking_face_ros" / "talking_face_node").is_file():
        pytest.skip("node executables not installed (scripts/build_ros.sh)")
    out = tmp_path / "reliability.json"
    env = dict(os.environ, ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST", HF_HUB_OFFLINE="1",
               FASTDDS_DEFAULT_PROFILES_FILE=str(REPO / "config" / "fastdds_localhost.xml"))
    run = subprocess.run([sys.executable, "-m", "talking_face_ros.cli", "reliability", "--quick", "--no-progress",
                          "--json", str(out)], capture_output=True, text=True, timeout=900, env=env, cwd=REPO)
    assert run.returncode in (0, 1) and out.is_file(), run.stdout[-3000:] + run.stderr[-3000:]
    assert "scenario" in run.stdout and "soak" in run.stdout  # the table
    report = json.loads(out.read_text())["scenarios"]
    assert set(report) == {"soak", "realtime", "publisher", "subscriber", "sigterm", "sigint",
                           "device", "engine_error", "gpu_oom", "overload"}
    fig = {name: r["figures"] for name, r in report.items()}
    notes = {name: r["note"] for name, r in report.items()}
    # Behaviour, whatever the machine's load:
    for name in ("publisher", "subscriber", "device", "engine_error", "gpu_oom", "overload"):
        assert report[name]["passed"], (name, report[name]["summary"], notes[name])
    soak = fig["soak"]
    assert soak["frames_missing"] == 0 and soak["chunks_dropped"] == 0 and soak["engine_errors"] == 0, soak
    assert soak["speech_frames"] > 100 and soak["rss_growth_pct"] < 25  # 15 s measure warm-up, not leaks
    rt = fig["realtime"]
    assert rt["frames_missing"] == 0 and rt["frame_stamp_steps_off"] == 0 and rt["speech_frames"] > 50, rt
    for name in ("sigterm", "sigint"):  # the report holds the real time; < 2 s is its target
        assert fig[name]["exit_status"] == 0 and fig[name]["exit_s"] < 10, (name, fig[name], notes[name])
    device = fig["device"]
    assert device["device"] == "cpu" and ("no CUDA" in device["reason"] or device["cuda_forced_off"]), device
    assert fig["engine_error"]["engine_errors"] == 1 and fig["engine_error"]["utterances_resumed"] == 1
    assert fig["gpu_oom"]["during"] == "inference" and fig["gpu_oom"]["device"] == "cpu"
    assert fig["overload"]["chunks_dropped"] > 0 and fig["overload"]["newest_audio_taken_ahead_s"] <= 4.1
