"""A GPU that is missing or fails -> the CPU, with one warning, instead of a face that stops.

A robot's face node must keep moving when its GPU is taken by another job, its driver is
missing, or its memory runs out: the default model runs several times faster than real time on
one CPU core (README, Benchmarks), so the CPU is a working fallback, not a degraded toy. Only
accelerator failures fall back; any other error (a broken bundle, a bug) still surfaces as itself.

* ``is_device_failure(exc)``: whether an exception is the accelerator failing (CUDA out of
  memory, a CUDA/cuDNN/cuBLAS runtime error, a torch build without CUDA, onnxruntime without its
  CUDA provider), judged by type first and by torch's and onnxruntime's own message words else.
* ``build_on_device(build, device)``: ``build(device)``, or ``build("cpu")`` when ``device``
  cannot be used at all or building on it fails that way; returns what was built and a
  ``DeviceFallback`` (None when nothing fell back) for the caller to log once and report.

Failures during inference are the caller's to catch (``is_device_failure``) and answer with
``build_on_device(build, "cpu")``: the talking face node does that in its engine worker.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass

# Words torch and onnxruntime put in the messages of accelerator failures (case matters:
# "CUDA" as torch and onnxruntime write it, not a folder called cuda_models).
DEVICE_ERROR_MARKERS = ("CUDA", "cuDNN", "CUDNN", "CUBLAS", "cuBLAS", "NCCL", "out of memory",
                        "ExecutionProvider", "device-side assert")


@dataclass(frozen=True)
class DeviceFallback:
    """Why work asked for one device runs on the CPU."""

    requested: str  # the device asked for ("cuda", "cuda:1", "auto")
    reason: str  # one line: what failed
    during: str  # "loading" or "inference"

    def message(self) -> str:
        return (f"device {self.requested!r} failed during {self.during} ({self.reason}); "
                f"running on the CPU instead")


def is_device_failure(exc: BaseException) -> bool:
    """True when ``exc`` is an accelerator failure that the CPU would not have."""
    torch = sys.modules.get("torch")
    if torch is not None:
        kinds = tuple(k for k in (getattr(torch, "OutOfMemoryError", None), getattr(torch, "AcceleratorError", None))
                      if isinstance(k, type))
        if kinds and isinstance(exc, kinds):
            return True
    # RuntimeError: torch's and onnxruntime's runtime failures; AssertionError: "Torch not
    # compiled with CUDA enabled"; ValueError: encoders.base.resolve_torch_device and
    # encoders.moonshine.onnx_providers refusing a device this machine lacks.
    if isinstance(exc, (RuntimeError, AssertionError, ValueError)):
        text = str(exc)
        return any(marker in text for marker in DEVICE_ERROR_MARKERS)
    return False


def unusable_reason(device: str) -> str | None:
    """Why ``device`` cannot be used on this machine at all, or None (cpu, auto, a present GPU)."""
    if not isinstance(device, str) or not (device == "cuda" or device.startswith("cuda:")):
        return None
    import torch

    if not torch.cuda.is_available():
        return "torch sees no CUDA GPU here"
    index = device.partition(":")[2]
    if index and (not index.isdigit() or int(index) >= torch.cuda.device_count()):
        return f"no CUDA device {index} (this machine has {torch.cuda.device_count()})"
    return None


def release_gpu_memory() -> None:
    """Hand back what a failed attempt left cached on the GPU (a no-op without CUDA)."""
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available():
        try:
            torch.cuda.empty_cache()
        except RuntimeError:  # a broken CUDA context cannot even do that; the CPU path goes on
            pass


def build_on_device(build, device: str, *, during: str = "loading"):
    """``(build(device), None)``, or ``(build("cpu"), DeviceFallback)`` when ``device`` fails.

    ``build``: a function of one device string ("cpu", "cuda", ...) that loads whatever runs
    there (a bundle, an engine). Asking for "cpu" never falls back: its errors are raised.
    """
    if device == "cpu":
        return build("cpu"), None
    reason = unusable_reason(device)
    if reason is None:
        try:
            return build(device), None
        except Exception as exc:  # noqa: BLE001 - only accelerator failures are caught, others re-raised
            if not is_device_failure(exc):
                raise
            reason = describe(exc)
        release_gpu_memory()
    return build("cpu"), DeviceFallback(requested=device, reason=reason, during=during)


def describe(exc: BaseException) -> str:
    """The exception in one short line (type and the first line of its message)."""
    first = (str(exc).strip().splitlines() or [""])[0]
    if len(first) > 200:
        first = first[:197] + "..."
    return f"{type(exc).__name__}: {first}" if first else type(exc).__name__
