"""A bundle's networks as ONNX graphs with a dynamic time axis, next to a JSON manifest.

What is exported, and why in these pieces:

=================  ==========================================================================
file               graph
=================  ==========================================================================
predictor.onnx     speech features (B, T, speech_dim) + text (B, T, text_dim) + identity (B,)
                   -> high codes (B, T'/high_stride) and low codes (B, T'/low_stride), T' = T
                   rounded up to the model's ``align``; the argmax path (temperature 0)
decoder.onnx       those codes + text + identity -> weights (B, T, 52) in [0, 1]
regression.onnx    (a regression bundle instead of the two above) speech + text + identity -> weights
speech.onnx        wav2vec2 only: 16 kHz audio (B, samples) -> hidden states (B, frames, dim).
                   Moonshine is already an onnxruntime model (moonshine-cpp's encoder_model.ort,
                   converted to ONNX in the cache folder, ``encoders/ort_format.py``); the
                   manifest says so
text.onnx          token ids + attention mask (B, tokens) -> sentence embedding (B, dim) before
                   normalisation (MiniLM: mean of the token states; CLIP: projected end token),
                   with the tokenizer as ``tokenizer.json`` beside it
=================  ==========================================================================

Predictor and decoder are separate so that other runtimes can swap the code choice (the graph
holds argmax; temperature sampling stays in PyTorch, which ``onnx_backend`` falls back to).
Inputs of any length work: the graphs pad to the code grid and mask the padding the way the
model pads a batch, so the frames equal a PyTorch pass over the unpadded input.

Two details of the TorchScript exporter (torch.onnx.export with ``dynamo=False``; the newer
exporter cannot trace the model's data-dependent input checks) are fixed while exporting, by
symbolics registered for the export only: ``Tensor.unfold`` (the band attention's key
windows) has no symbolic for an axis of unknown length, and integer ``//`` on traced sizes is
exported as truncating division, which is wrong for the negative operands of ceiling division
(``-(-T // w)``).

Every export is checked before its manifest is written: the graphs run in onnxruntime (CPU)
on a seeded random input at two lengths against PyTorch, and the figures go into the manifest
(``parity``). A folder with a manifest is complete; files are written under temporary names
first. ``talking-face onnx-export BUNDLE --out DIR`` is the command.
"""
from __future__ import annotations

import contextlib
import io
import json
import platform
import warnings
from pathlib import Path

import numpy as np

from .cache_dir import write_atomically
from .json_files import read_versioned_json

FORMAT = "talking_face_onnx"
VERSION = 1
MANIFEST = "manifest.json"
OPSET = 17
TOKENIZER_FILE = "tokenizer.json"
PARITY_BOUND = 1e-3  # most |ONNX - PyTorch| on the weights an export may show (fp32 gives ~1e-6)
MIN_CODE_AGREEMENT = 0.98  # share of codes both runtimes must pick alike on the random check input


def model_digest(bundle_folder) -> str:
    """The SHA-256 of the bundle's weights, from its checkpoint header (cheap: nothing is loaded)."""
    from safetensors import safe_open

    from .bundle import MODEL_FILE

    path = Path(bundle_folder) / MODEL_FILE
    try:
        with safe_open(str(path), framework="np") as f:
            digest = (f.metadata() or {}).get("sha256")
    except (OSError, ValueError, RuntimeError) as exc:
        raise ValueError(f"{path}: cannot read the checkpoint header ({exc})") from None
    if not digest:
        raise ValueError(f"{path}: checkpoint header holds no sha256")
    return digest


def read_manifest(folder, *, digest: str | None = None) -> dict:
    """The manifest of an export folder, checked; ``digest``: the bundle weights it must belong to."""
    folder = Path(folder)
    path = folder / MANIFEST
    if not path.is_file():
        raise FileNotFoundError(f"no ONNX export at {folder} ({MANIFEST} missing): run "
                                f"`talking-face onnx-export BUNDLE --out {folder}`")
    manifest = read_versioned_json(path, fmt=FORMAT, version=VERSION, what="manifest")
    graphs = manifest.get("graphs")
    if not isinstance(graphs, dict) or not graphs:
        raise ValueError(f"{path}: field 'graphs' must be a non-empty object")
    for name, spec in graphs.items():
        if not isinstance(spec, dict) or not isinstance(spec.get("file"), str):
            raise ValueError(f"{path}: graph {name!r} names no file")
        if Path(spec["file"]).name != spec["file"] or not (folder / spec["file"]).is_file():
            raise ValueError(f"{path}: graph {name!r}: file {spec['file']!r} is missing from {folder}")
    if digest is not None and manifest.get("model_sha256") != digest:
        raise ValueError(f"{path}: exported from other weights than this bundle's "
                         f"(sha256 {str(manifest.get('model_sha256'))[:12]}... vs {digest[:12]}...); export again")
    return manifest


def export_bundle(bundle, out, *, opset: int = OPSET, encoders: bool = True, threads: int | None = None) -> dict:
    """Export ``bundle`` (a folder or a loaded Bundle) into folder ``out``; returns the manifest.

    ``encoders``: also export the speech (wav2vec2) and text encoders; False: the motion model
    only (the ONNX backend then runs the encoders as the bundle says). ``threads``:
    onnxruntime threads of the parity check. Raises ValueError when the check fails.
    """
    import torch

    from .bundle import Bundle, load_bundle

    _require_onnx()
    if not isinstance(bundle, Bundle):
        bundle = load_bundle(Path(bundle), device="cpu")
    if bundle.folder is None:
        raise ValueError("the bundle has no folder: export a bundle loaded with load_bundle")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    stale = out / MANIFEST
    if stale.exists():  # the folder is incomplete until the new manifest is written
        stale.unlink()
    model = bundle.model
    if next(model.parameters()).device.type != "cpu" or next(model.parameters()).dtype != torch.float32:
        model = _cpu_float32_copy(model)
    graphs, parity = {}, {}
    with _export_symbolics(opset):
        if bundle.model_kind == "predictor":
            graphs.update(_export_predictor(model, out, opset))
        else:
            graphs.update(_export_regression(model, out, opset))
        parity["motion"] = _check_motion(model, out, graphs, threads=threads)
        enc = {}
        if encoders:
            speech, parity_speech = _export_speech(bundle.encoders.speech, out, opset, threads)
            text, parity_text = _export_text(bundle.encoders.text, out, opset, threads)
            for part, (spec, check) in {"speech": (speech, parity_speech), "text": (text, parity_text)}.items():
                if "file" in spec:
                    graphs[part] = spec
                    parity[part] = check
                enc[part] = {k: v for k, v in spec.items() if k not in ("file", "inputs", "outputs")}
    c = model.config
    manifest = {
        "format": FORMAT, "version": VERSION, "model_sha256": model_digest(bundle.folder),
        "bundle": str(bundle.folder), "model_kind": bundle.model_kind, "fps": bundle.fps,
        "align": int(model.align), "receptive_field": [int(model.receptive_field.left),
                                                       int(model.receptive_field.right)],
        "lookahead": int(model.lookahead), "speech_dim": int(c.speech_dim), "text_dim": int(c.text_dim),
        "motion_dim": int(c.motion_dim if hasattr(c, "motion_dim") else model.vqvae.config.motion_dim),
        "num_speakers": int(c.num_speakers), "opset": int(opset), "graphs": graphs, "encoders": enc,
        "parity": parity, "exported_with": {"torch": torch.__version__, "python": platform.python_version()},
        "sampling": "argmax only (temperature 0); temperature > 0 runs in PyTorch",
    }
    write_atomically(out / MANIFEST, json.dumps(manifest, indent=1).encode())
    return manifest


# ---------------------------------------------------------------------------------------------
# The motion model


def _pad_to_grid(align: int, *series):
    """Each (B, T, C) series zero-padded in time to a multiple of ``align``, then the (B, T') mask
    of the real frames; written with shape ops so that the trace keeps T dynamic."""
    import torch
    import torch.nn.functional as F

    batch, frames = series[0].shape[0], series[0].shape[1]
    padded = (frames + align - 1) // align * align
    mask = (torch.arange(padded, device=series[0].device) < frames)[None, :].expand(batch, padded)
    return (*(F.pad(x, (0, 0, 0, padded - frames)) for x in series), mask)


def _graph_modules():
    """The wrapper modules (defined lazily so that importing this file does not import torch)."""
    from torch import nn

    class PredictorGraph(nn.Module):
        def __init__(self, model):
            super().__init__()
            self.model = model

        def forward(self, speech, text, identity):
            speech, text, mask = _pad_to_grid(self.model.align, speech, text)
            codes = self.model.predict_codes(speech, text, identity, mask=mask)
            out = tuple(codes[k] for k in ("high", "low", "hidden") if codes[k] is not None)
            return out if len(out) > 1 else out[0]

    class DecoderGraph(nn.Module):
        def __init__(self, model):
            super().__init__()
            self.model, self.vqvae = model, model.vqvae
            self.hierarchical, self.refines = bool(model.hierarchical), bool(model.refines)

        def forward(self, *args):
            args = list(args)
            low = args.pop(0)
            high = args.pop(0) if self.hierarchical else None
            if self.refines:  # the low steps' state and the speech the correction reads
                hidden, speech, text, identity = args
                frames = text.shape[1]
                speech, text, mask = _pad_to_grid(self.vqvae.align, speech, text)
                codes = {"low": low, "high": high, "hidden": hidden}
                return self.model.decode(codes, speech, text, identity, mask=mask)[:, :frames]
            text, identity = args
            frames = text.shape[1]
            text, mask = _pad_to_grid(self.vqvae.align, text)
            weights = self.vqvae.decode_codes(low, high, frames=mask.shape[1], identity=identity,
                                              text=text, mask=mask)
            return weights[:, :frames]

    class RegressionGraph(nn.Module):
        def __init__(self, model):
            super().__init__()
            self.model = model

        def forward(self, speech, text, identity):
            frames = speech.shape[1]
            speech, text, mask = _pad_to_grid(self.model.align, speech, text)
            return self.model.predict(speech, text, identity, mask=mask)[:, :frames]

    return PredictorGraph, DecoderGraph, RegressionGraph


def _example_motion_inputs(model, frames: int, *, batch: int = 1, seed: int = 0):
    import torch

    g = torch.Generator().manual_seed(seed)
    c = model.config
    speech = torch.randn(batch, frames, c.speech_dim, generator=g)
    text = torch.nn.functional.normalize(torch.randn(batch, frames, c.text_dim, generator=g), dim=-1)
    identity = torch.randint(0, c.num_speakers + 1, (batch,), generator=g)
    return speech, text, identity


def _export_predictor(model, out: Path, opset: int) -> dict:
    PredictorGraph, DecoderGraph, _ = _graph_modules()
    hierarchical, refines = bool(model.hierarchical), model.refines
    frames = 3 * model.align + 5  # not on the code grid, so that the padding is traced as shape ops
    speech, text, identity = _example_motion_inputs(model, frames)
    dyn_t = {0: "batch", 1: "frames"}
    code_names = (["high_codes", "low_codes"] if hierarchical else ["low_codes"]) + (["hidden"] if refines else [])
    code_axes = {"high_codes": {0: "batch", 1: "high_steps"}, "low_codes": {0: "batch", 1: "low_steps"},
                 "hidden": {0: "batch", 1: "low_steps"}}
    _export(PredictorGraph(model), (speech, text, identity), out / "predictor.onnx", opset,
            ["speech", "text", "identity"], code_names,
            {"speech": dyn_t, "text": dyn_t, "identity": {0: "batch"}, **{n: code_axes[n] for n in code_names}})
    codes = model.predict_codes(speech, text, identity)
    code_inputs = tuple(codes[k] for k in ("low", "high", "hidden") if codes[k] is not None) \
        + ((speech,) if refines else ())
    decoder_names = ["low_codes"] + (["high_codes"] if hierarchical else []) \
        + (["hidden", "speech"] if refines else []) + ["text", "identity"]
    _export(DecoderGraph(model), (*code_inputs, text, identity), out / "decoder.onnx", opset,
            decoder_names, ["weights"],
            {**{n: code_axes[n] for n in code_names}, "text": dyn_t, "identity": {0: "batch"},
             "weights": dyn_t, **({"speech": dyn_t} if refines else {})})
    v = model.vqvae.config
    speech_in = [["speech", "float32", ["batch", "frames", int(model.config.speech_dim)]],
                 ["text", "float32", ["batch", "frames", int(model.config.text_dim)]],
                 ["identity", "int64", ["batch"]]]
    code_specs = {"high_codes": ["high_codes", "int64", ["batch", "high_steps"]],
                  "low_codes": ["low_codes", "int64", ["batch", "low_steps"]],
                  "hidden": ["hidden", "float32", ["batch", "low_steps", int(model.config.dim)]],
                  "speech": speech_in[0]}
    return {
        "predictor": {"file": "predictor.onnx", "inputs": speech_in,
                      "outputs": [code_specs[n] for n in code_names],
                      "steps": {"low_stride": int(v.low_stride), "high_stride": int(v.high_stride) if hierarchical
                                else None}},
        "decoder": {"file": "decoder.onnx",
                    "inputs": [code_specs[n] for n in decoder_names[:-2]] + speech_in[1:],
                    "outputs": [["weights", "float32", ["batch", "frames", int(v.motion_dim)]]]},
    }


def _export_regression(model, out: Path, opset: int) -> dict:
    _, _, RegressionGraph = _graph_modules()
    frames = 3 * model.align + 5
    speech, text, identity = _example_motion_inputs(model, frames)
    dyn_t = {0: "batch", 1: "frames"}
    _export(RegressionGraph(model), (speech, text, identity), out / "regression.onnx", opset,
            ["speech", "text", "identity"], ["weights"],
            {"speech": dyn_t, "text": dyn_t, "identity": {0: "batch"}, "weights": dyn_t})
    c = model.config
    return {"regression": {
        "file": "regression.onnx",
        "inputs": [["speech", "float32", ["batch", "frames", int(c.speech_dim)]],
                   ["text", "float32", ["batch", "frames", int(c.text_dim)]], ["identity", "int64", ["batch"]]],
        "outputs": [["weights", "float32", ["batch", "frames", int(c.motion_dim)]]]}}


def _check_motion(model, out: Path, graphs: dict, *, threads: int | None) -> dict:
    """Exported graphs vs PyTorch on random inputs at two lengths (one off the code grid)."""
    from .onnx_backend import OnnxMotionGraphs

    runner = OnnxMotionGraphs(out, graphs, providers=["CPUExecutionProvider"], threads=threads)
    lengths = [5 * model.align + 3, 16 * model.align + 1]
    worst, worst_given_codes, agree, total = 0.0, 0.0, 0, 0
    for k, frames in enumerate(lengths):
        speech, text, identity = _example_motion_inputs(model, frames, seed=100 + k)
        ref = model.predict(speech, text, identity).numpy()
        got = runner.weights(speech.numpy(), text.numpy(), identity.numpy())
        worst = max(worst, float(np.abs(got - ref).max()))
        if "predictor" in graphs:
            codes = model.predict_codes(speech, text, identity)
            mine = runner.codes(speech.numpy(), text.numpy(), identity.numpy())
            for name, value in codes.items():
                if value is not None and name != "hidden":  # codes agree; the state is in the weights
                    agree += int((mine[name] == value.numpy()).sum())
                    total += value.numel()
            given = runner.decode({n: v.numpy() for n, v in codes.items() if v is not None},
                                  text.numpy(), identity.numpy(), speech.numpy())
            worst_given_codes = max(worst_given_codes, float(np.abs(given - ref).max()))
        else:
            worst_given_codes = worst
    report = {"lengths": lengths, "max_abs_diff": worst, "max_abs_diff_same_codes": worst_given_codes,
              "code_agreement": agree / total if total else 1.0, "runtime": "onnxruntime CPU",
              "input": "seeded random features, text and identity"}
    if worst_given_codes > PARITY_BOUND or report["code_agreement"] < MIN_CODE_AGREEMENT:
        raise ValueError(f"ONNX export of the motion model does not match PyTorch: {report}")
    return report


# ---------------------------------------------------------------------------------------------
# Encoders


def _export_speech(encoder, out: Path, opset: int, threads: int | None) -> tuple[dict, dict | None]:
    import torch
    from torch import nn

    kind = type(encoder).__name__
    common = {"name": encoder.name, "feature_dim": int(encoder.feature_dim),
              "frame_stride": int(encoder.frame_stride), "frame_span": int(encoder.frame_span),
              "max_single_pass_s": encoder.max_single_pass_s, "left_context_s": encoder.left_context_s,
              "right_context_s": encoder.right_context_s, "crossfade_s": encoder.crossfade_s}
    if kind == "MoonshineEncoder":
        return {"kind": "moonshine", **common,
                "note": "already an onnxruntime model (moonshine-cpp's encoder_model.ort), run from its ONNX conversion "
                        "in the cache folder"}, None
    if kind in ("CausalSpeechEncoder", "OnnxCausalSpeechEncoder"):
        if kind == "OnnxCausalSpeechEncoder":  # a bundle loaded by the ONNX backend: nothing in torch to export
            return {"kind": "causal", "note": "not exported: the encoder given runs in onnxruntime already"}, None
        return _export_causal_speech(encoder, out, opset, threads)
    if kind != "Wav2Vec2Encoder":
        return {"kind": kind, "note": "not exported: no ONNX export for this encoder"}, None

    class SpeechGraph(nn.Module):
        def __init__(self, hf_model, layer):
            super().__init__()
            self.model, self.layer = hf_model, layer

        def forward(self, audio):
            result = self.model(audio, output_hidden_states=self.layer is not None)
            return result.last_hidden_state if self.layer is None else result.hidden_states[self.layer]

    hf = encoder.model
    if next(hf.parameters()).dtype != torch.float32 or next(hf.parameters()).device.type != "cpu":
        import copy

        hf = copy.deepcopy(hf).to("cpu", torch.float32)
    audio = torch.randn(1, 16000 + 123, generator=torch.Generator().manual_seed(1)) * 0.1
    _export(SpeechGraph(hf, encoder.layer), (audio,), out / "speech.onnx", opset, ["audio"], ["features"],
            {"audio": {0: "batch", 1: "samples"}, "features": {0: "batch", 1: "frames"}})
    spec = {"kind": "wav2vec2", **common, "file": "speech.onnx", "normalize": bool(encoder.normalize),
            "inputs": [["audio", "float32", ["batch", "samples"]]],
            "outputs": [["features", "float32", ["batch", "frames", int(encoder.feature_dim)]]]}
    from .onnx_backend import session

    sess = session(out / "speech.onnx", providers=["CPUExecutionProvider"], threads=threads)
    worst = 0.0
    lengths = [12_345, 23_457]
    for k, n in enumerate(lengths):
        x = np.random.default_rng(k).standard_normal(n).astype(np.float32) * 0.1
        x = encoder._prepare(x)
        (got,) = sess.run(None, {"audio": x[None]})
        worst = max(worst, float(np.abs(got[0] - encoder._encode_window(x)).max()))
    check = {"lengths_samples": lengths, "max_abs_diff": worst, "runtime": "onnxruntime CPU"}
    if worst > 1e-3:
        raise ValueError(f"ONNX export of the speech encoder does not match PyTorch: {check}")
    return spec, check


def _export_causal_speech(encoder, out: Path, opset: int, threads: int | None) -> tuple[dict, dict]:
    """The causal encoder's streaming step (``speech_step.onnx``): audio holding 2G mel frames and
    the stream's state in; G feature frames and the new state out (``encoders.causal_speech``).

    The spectrum is a strided convolution with the windowed DFT basis instead of torch.stft, so
    that the graph holds only Conv, MatMul and GRU, which every execution provider runs.
    """
    import math

    import torch
    from torch import nn

    from .encoders.causal_speech import HOP, N_FFT, WINDOW, CausalStream

    net = encoder.net
    c = net.config

    class StepGraph(nn.Module):
        def __init__(self, net):
            super().__init__()
            self.net = net
            n = torch.arange(N_FFT, dtype=torch.float64)
            k = torch.arange(N_FFT // 2 + 1, dtype=torch.float64)[:, None]
            window = torch.nn.functional.pad(net.window.double(), ((N_FFT - WINDOW) // 2, (N_FFT - WINDOW + 1) // 2))
            angle = 2 * math.pi * k * n / N_FFT
            basis = torch.cat([torch.cos(angle) * window, -torch.sin(angle) * window])  # (2 (N_FFT/2 + 1), N_FFT)
            self.register_buffer("basis", basis.float()[:, None, :])

        def forward(self, audio, past, state):
            spec = torch.nn.functional.conv1d(audio[:, None, :], self.basis, stride=HOP)  # (1, 2 bins, M)
            bins = spec.shape[1] // 2
            power = spec[:, :bins].square() + spec[:, bins:].square()
            mel = torch.log(torch.matmul(self.net.mel_fb, power) + 1e-6).transpose(1, 2)
            return self.net.step((mel - self.net.mel_mean) / self.net.mel_std, past, state)

    pairs = 7
    audio = torch.randn(1, (2 * pairs - 1) * HOP + WINDOW, generator=torch.Generator().manual_seed(1)) * 0.1
    past = torch.zeros(1, 2, c.n_mels)
    state = torch.zeros(c.layers, 1, c.dim)
    _export(StepGraph(net), (audio, past, state), out / "speech_step.onnx", opset, ["audio", "past", "state"],
            ["features", "past_out", "state_out"],
            {"audio": {1: "samples"}, "features": {1: "frames"}})
    spec = {"kind": "causal", "name": encoder.name, "feature_dim": int(encoder.feature_dim),
            "frame_stride": int(encoder.frame_stride), "frame_span": int(encoder.frame_span),
            "n_mels": int(c.n_mels), "layers": int(c.layers), "dim": int(c.dim), "file": "speech_step.onnx",
            "inputs": [["audio", "float32", [1, "samples"]], ["past", "float32", [1, 2, int(c.n_mels)]],
                       ["state", "float32", [int(c.layers), 1, int(c.dim)]]],
            "outputs": [["features", "float32", [1, "frames", int(encoder.feature_dim)]],
                        ["past_out", "float32", [1, 2, int(c.n_mels)]],
                        ["state_out", "float32", [int(c.layers), 1, int(c.dim)]]]}
    from .onnx_backend import OnnxCausalSpeechEncoder

    exported = OnnxCausalSpeechEncoder(out, spec, providers=["CPUExecutionProvider"], threads=threads)
    rng = np.random.default_rng(0)
    x = (rng.standard_normal(16000 * 3) * 0.1).astype(np.float32)
    cuts = np.sort(rng.integers(0, len(x), 20))  # streamed in uneven pieces, as a microphone sends them
    want = CausalStream(net)
    got = exported.new_stream()
    a = np.concatenate([want.push(piece) for piece in np.split(x, cuts)])
    b = np.concatenate([got.push(piece) for piece in np.split(x, cuts)])
    check = {"samples": len(x), "pieces": len(cuts) + 1, "frames": len(a),
             "max_abs_diff": float(np.abs(a - b).max()) if len(a) == len(b) else math.inf,
             "runtime": "onnxruntime CPU"}
    if len(a) != len(b) or check["max_abs_diff"] > 1e-3:
        raise ValueError(f"ONNX export of the causal speech encoder does not match PyTorch: {check}")
    return spec, check


def _export_text(encoder, out: Path, opset: int, threads: int | None) -> tuple[dict, dict | None]:
    kind = type(encoder).__name__
    if kind not in ("MiniLMTextEncoder", "ClipTextEncoder"):
        return {"kind": kind, "note": "not exported: no ONNX export for this encoder"}, None
    tokenizer, hf = _text_parts(encoder)
    pooling = "mean" if kind == "MiniLMTextEncoder" else "clip_projection"
    export_text_graph(tokenizer, hf, out / "text.onnx", pooling=pooling, opset=opset)
    if not getattr(tokenizer, "is_fast", False):
        raise ValueError(f"{encoder.name}: its tokenizer has no fast (tokenizers) version to save")
    tokenizer.backend_tokenizer.save(str(out / TOKENIZER_FILE))
    spec = {"kind": "minilm" if pooling == "mean" else "clip", "name": encoder.name, "dim": int(encoder.dim),
            "file": "text.onnx", "tokenizer": TOKENIZER_FILE, "max_length": int(encoder.max_length),
            "pad_id": int(tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0),
            "pad_token": str(tokenizer.pad_token or ""), "pooling": pooling,
            "inputs": [["input_ids", "int64", ["batch", "tokens"]], ["attention_mask", "int64", ["batch", "tokens"]]],
            "outputs": [["embedding", "float32", ["batch", int(encoder.dim)]]]}
    from .onnx_backend import OnnxTextEncoder

    onnx_text = OnnxTextEncoder(out, spec, providers=["CPUExecutionProvider"], threads=threads)
    texts = ["on the verge of tears", "furious", "beaming with joy, laughing out loud at every word"]
    worst = float(np.abs(onnx_text._embed(texts) - _torch_text_embed(tokenizer, hf, texts, pooling)).max())
    check = {"texts": len(texts), "max_abs_diff": worst, "runtime": "onnxruntime CPU"}
    if worst > 1e-3:
        raise ValueError(f"ONNX export of the text encoder does not match PyTorch: {check}")
    return spec, check


def export_text_graph(tokenizer, model, path: Path, *, pooling: str, opset: int = OPSET) -> None:
    """The transformers text ``model`` as graph ``path``: token ids + attention mask (B, tokens) ->
    one vector per text (B, dim) before normalisation.

    ``pooling``: "mean" (MiniLM: mean of the token states under the mask) or "clip_projection"
    (CLIP: its projected end token). The bundle export's ``text.onnx`` and MiniLM's cached export
    (``encoders.minilm_onnx``) are both made here; ``onnx_backend.TextGraph`` runs them.
    """
    from torch import nn

    class TextModel(nn.Module):
        def __init__(self, model):
            super().__init__()
            self.model = model

        def forward(self, input_ids, attention_mask):
            if pooling == "clip_projection":
                return self.model(input_ids=input_ids, attention_mask=attention_mask).text_embeds
            hidden = self.model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
            weight = attention_mask[..., None].to(hidden.dtype)
            return (hidden * weight).sum(1) / weight.sum(1).clamp(min=1e-9)

    # Two texts of different lengths: the padded one makes the attention-mask path part of the graph.
    example = tokenizer(["calm and friendly", "furious"], padding=True, return_tensors="pt")
    dyn = {0: "batch", 1: "tokens"}
    _export(TextModel(model), (example["input_ids"], example["attention_mask"]), Path(path), opset,
            ["input_ids", "attention_mask"], ["embedding"],
            {"input_ids": dyn, "attention_mask": dyn, "embedding": {0: "batch"}})


def _text_parts(encoder):
    """(fast tokenizer, transformers model) of a MiniLM or CLIP encoder, on the CPU in float32."""
    import torch
    from transformers import AutoTokenizer

    tokenizer = getattr(encoder, "tokenizer", None)
    model = getattr(encoder, "model", None)
    if type(encoder).__name__ == "MiniLMTextEncoder" and (model is None or tokenizer is None):
        from .encoders.minilm_onnx import torch_parts

        tokenizer, model = torch_parts(encoder.folder)  # the encoder runs on onnxruntime itself
    if not getattr(tokenizer, "is_fast", False):
        tokenizer = AutoTokenizer.from_pretrained(encoder.source, local_files_only=True, use_fast=True)
    if next(model.parameters()).dtype != torch.float32 or next(model.parameters()).device.type != "cpu":
        import copy

        model = copy.deepcopy(model).to("cpu", torch.float32)
    return tokenizer, model.eval()


def _torch_text_embed(tokenizer, model, texts, pooling) -> np.ndarray:
    import torch

    batch = tokenizer(texts, padding=True, truncation=True, return_tensors="pt")
    with torch.inference_mode():
        result = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
        if pooling == "clip_projection":
            return result.text_embeds.numpy()
        weight = batch["attention_mask"][..., None].to(result.last_hidden_state.dtype)
        return ((result.last_hidden_state * weight).sum(1) / weight.sum(1).clamp(min=1e-9)).numpy()


# ---------------------------------------------------------------------------------------------
# Export machinery


def _require_onnx() -> None:
    try:
        import onnx  # noqa: F401  (torch.onnx.export needs it)
    except ImportError:
        raise ValueError("ONNX export needs the 'onnx' package: pip install onnx") from None


def _export(module, args, path: Path, opset: int, inputs, outputs, dynamic_axes) -> None:
    """torch.onnx.export (TorchScript exporter) to ``path``, written under a temporary name first."""
    import torch

    buffer = io.BytesIO()
    with warnings.catch_warnings():
        # Tracer warnings name the input checks that become constants in the graph (they hold
        # for every valid input); the exporter's deprecation notice concerns its default mode.
        warnings.simplefilter("ignore")
        with torch.no_grad():
            torch.onnx.export(module.eval(), args, buffer, input_names=list(inputs), output_names=list(outputs),
                              dynamic_axes=dynamic_axes, opset_version=opset, dynamo=False,
                              do_constant_folding=True)
    write_atomically(path, buffer.getvalue())


@contextlib.contextmanager
def _export_symbolics(opset: int):
    """Register the two symbolics of the module doc for the duration of an export."""
    import torch
    from torch.onnx import symbolic_helper as sh

    @sh.parse_args("v", "i", "i", "i")
    def unfold(g, x, dimension, size, step):
        # Windows as one Gather: index [k * step + j] for window k, offset j; then the window
        # axis goes last, as Tensor.unfold puts it.
        rank = sh._get_tensor_rank(x)
        dim = dimension % rank

        def const(value):
            return g.op("Constant", value_t=torch.tensor(value, dtype=torch.int64))

        length = g.op("Gather", g.op("Shape", x), const(dim), axis_i=0)
        count = g.op("Add", g.op("Div", g.op("Sub", length, const(size)), const(step)), const(1))
        starts = g.op("Mul", g.op("Range", const(0), count, const(1)), const(step))
        index = g.op("Add", g.op("Unsqueeze", starts, const([1])), const([list(range(size))]))
        windows = g.op("Gather", x, index, axis_i=dim)
        perm = list(range(rank + 1))
        perm.append(perm.pop(dim + 1))
        return g.op("Transpose", windows, perm_i=perm)

    def floordiv(g, a, b):
        if sh._is_fp(a) or sh._is_fp(b):
            return g.op("Floor", g.op("Div", a, b))
        # a - (a mod b) is a multiple of b (Mod with fmod=0 takes the divisor's sign, as Python does)
        return g.op("Div", g.op("Sub", a, g.op("Mod", a, b, fmod_i=0)), b)

    names = {"aten::unfold": unfold, "aten::floordiv": floordiv, "aten::floor_divide": floordiv}
    for name, fn in names.items():
        torch.onnx.register_custom_op_symbolic(name, fn, opset)
    try:
        yield
    finally:
        for name in names:
            torch.onnx.unregister_custom_op_symbolic(name, opset)


def _cpu_float32_copy(model):
    import copy

    import torch

    return copy.deepcopy(model).to("cpu", torch.float32).eval()
