"""Run a bundle's exported graphs (``onnx_export``) in onnxruntime, on TensorRT, CUDA or the CPU.

``Engine.from_bundle(folder, backend="onnx")`` (node parameter ``backend: onnx``) comes here.
``OnnxMotionModel`` stands in for the PyTorch network: the same ``predict`` call, the same
receptive field and alignment, so the engine's windows, streaming and offline paths are
unchanged. The exported encoders (wav2vec2, MiniLM/CLIP text) run here too; Moonshine is an
ONNX model already and runs as its own encoder class does.

Execution providers, best first, among those the installed onnxruntime offers
(``onnxruntime.get_available_providers()``): TensorRT, CUDA, CPU. ``device: cpu`` takes the CPU
only; ``cuda`` requires a GPU provider. What a session really uses is logged.

* TensorRT builds an engine per graph at first use (can take minutes); engines and timing
  caches are kept in ``cache_dir()/tensorrt/<model>`` so later starts reuse them. Explicit
  shape profiles (1 frame up to the engine's longest window) keep TensorRT from rebuilding
  when a longer window arrives in the middle of a stream. It runs in fp32 unless
  ``precision: fp16`` asks for fp16 kernels (not checked against PyTorch here).
* CUDA runs the fp32 graphs; cuDNN's convolution search is set to heuristic because every new
  window length would otherwise start an exhaustive search.
* Temperature > 0 (code sampling) is not in the graphs: ``predict`` hands such calls to the
  PyTorch model, on the CPU.

Where the graphs come from: ``onnx_dir`` if given (exported there when it holds none yet),
else ``<bundle>/onnx`` when it holds an export of these weights, else
``cache_dir()/onnx/<weights digest>``, exported there on first use (seconds; needs the
``onnx`` package).
"""
from __future__ import annotations

import logging
import math
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from .encoders.base import SpeechEncoder, TextEncoder
from .encoders.causal_speech import HOP, WINDOW, CausalSpeechEncoder, CausalStream
from .ort_session import session_options

LOG = logging.getLogger(__name__)
TENSORRT, CUDA, CPU = "TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"
PROVIDER_ORDER = (TENSORRT, CUDA, CPU)
PRECISIONS = ("auto", "fp32", "fp16")
TEXT_BATCH = 32  # texts per text-encoder call


def choose_providers(device: str = "auto", *, precision: str = "auto", available=None,
                     cache_dir: Path | None = None, profiles: dict | None = None) -> list[tuple[str, dict]]:
    """Execution providers with options, best first: TensorRT > CUDA > CPU among ``available``.

    device: "auto" (every GPU provider there is), "cpu", "cuda" or "cuda:N" (a GPU provider
    required). available: provider names (default: what onnxruntime offers here). cache_dir:
    where TensorRT keeps its engines. profiles: TensorRT shape profiles {"min"|"opt"|"max":
    "input:1x8x416,..."}. The CPU provider is always last, for nodes no GPU provider takes.
    """
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    if available is None:
        import onnxruntime as ort

        available = ort.get_available_providers()
    available = list(available)
    if device == "cpu":
        return [(CPU, {})]
    device_id = 0
    if device not in ("auto", "cuda"):
        head, _, index = device.partition(":")
        if head != "cuda" or not index.isdigit():
            raise ValueError(f"device must be 'auto', 'cpu', 'cuda' or 'cuda:N', got {device!r}")
        device_id = int(index)
    chosen = []
    if TENSORRT in available:
        options = {"device_id": device_id, "trt_fp16_enable": precision == "fp16"}
        if cache_dir is not None:
            options.update(trt_engine_cache_enable=True, trt_engine_cache_path=str(cache_dir),
                           trt_timing_cache_enable=True, trt_timing_cache_path=str(cache_dir))
        for level in ("min", "opt", "max"):
            if profiles and profiles.get(level):
                options[f"trt_profile_{level}_shapes"] = profiles[level]
        chosen.append((TENSORRT, options))
    if CUDA in available:
        chosen.append((CUDA, {"device_id": device_id, "cudnn_conv_algo_search": "HEURISTIC"}))
    if device != "auto" and not chosen:
        raise ValueError(f"device {device!r}: onnxruntime has no CUDA or TensorRT execution provider here "
                         f"(available: {', '.join(available)}); install onnxruntime-gpu or use device cpu")
    return chosen + [(CPU, {})]


def session(path, *, providers, threads: int | None = None):
    """An InferenceSession of ``path`` on ``providers`` (names or (name, options)); ``threads`` per op."""
    import onnxruntime as ort

    options = session_options(threads)  # a bad thread count is its own error, outside the try
    try:
        return ort.InferenceSession(str(path), options, providers=list(providers))
    except Exception as exc:  # onnxruntime raises its own types (Fail, InvalidGraph, ...)
        raise ValueError(f"{path}: onnxruntime cannot load it: {exc}") from None


def _names(providers) -> list[str]:
    return [p if isinstance(p, str) else p[0] for p in providers]


# ---------------------------------------------------------------------------------------------
# The motion model


class OnnxMotionGraphs:
    """The exported predictor + decoder (or regression) graphs, on numpy arrays with a batch axis."""

    def __init__(self, folder, graphs: dict, *, providers, threads: int | None = None):
        folder = Path(folder)
        self.kind = "predictor" if "predictor" in graphs else "regression"
        self.sessions = {}
        for name in (("predictor", "decoder") if self.kind == "predictor" else ("regression",)):
            spec = graphs.get(name)
            if spec is None:
                raise ValueError(f"{folder}: the export holds no {name} graph")
            chosen = providers(name) if callable(providers) else providers
            self.sessions[name] = session(folder / spec["file"], providers=chosen, threads=threads)
        self.code_names = [o[0] for o in graphs["predictor"]["outputs"]] if self.kind == "predictor" else []

    @property
    def providers(self) -> list[str]:
        """The providers the sessions really run on (onnxruntime drops those it could not start)."""
        return next(iter(self.sessions.values())).get_providers()

    def codes(self, speech, text, identity) -> dict[str, np.ndarray]:
        """{"high": (B, H) or absent, "low": (B, L)} int64 code indices, and "hidden" (B, L, dim)
        float32 for a refining predictor (the state its correction reads)."""
        out = self.sessions["predictor"].run(None, _motion_feed(speech, text, identity))
        return {name.removesuffix("_codes"): value for name, value in zip(self.code_names, out)}

    def decode(self, codes: dict, text, identity, speech=None) -> np.ndarray:
        """Weights of ``codes``; a refining predictor's decoder also reads ``speech`` (B, T, d)."""
        feed = {(k if k == "hidden" else f"{k}_codes"):
                np.ascontiguousarray(v, np.float32 if k == "hidden" else np.int64) for k, v in codes.items()}
        if "hidden" in codes:
            feed["speech"] = np.ascontiguousarray(speech, np.float32)
        feed.update(text=np.ascontiguousarray(text, np.float32),
                    identity=np.ascontiguousarray(identity, np.int64).reshape(-1))
        return self.sessions["decoder"].run(None, feed)[0]

    def weights(self, speech, text, identity) -> np.ndarray:
        """(B, T, motion_dim) weights of speech (B, T, d), text (B, T, D), identity (B,)."""
        if self.kind == "regression":
            return self.sessions["regression"].run(None, _motion_feed(speech, text, identity))[0]
        return self.decode(self.codes(speech, text, identity), text, identity, speech)


def _motion_feed(speech, text, identity) -> dict:
    return {"speech": np.ascontiguousarray(speech, np.float32), "text": np.ascontiguousarray(text, np.float32),
            "identity": np.ascontiguousarray(identity, np.int64).reshape(-1)}


class OnnxMotionModel:
    """Stands in for CodePredictor / RegressionBaseline in the engine: ``predict`` on onnxruntime."""

    def __init__(self, folder, manifest: dict, *, providers, threads: int | None = None, torch_model=None):
        from .model.layers import Reach

        self.folder = Path(folder)
        self.manifest = manifest
        self.graphs = OnnxMotionGraphs(folder, manifest["graphs"], providers=providers, threads=threads)
        self.torch_model = torch_model  # for temperature > 0 (sampling is not in the graphs)
        self.config = SimpleNamespace(motion_dim=int(manifest["motion_dim"]), speech_dim=int(manifest["speech_dim"]),
                                      text_dim=int(manifest["text_dim"]), num_speakers=int(manifest["num_speakers"]))
        self.receptive_field = Reach(*manifest["receptive_field"])
        self.align = int(manifest["align"])
        self.lookahead = int(manifest["lookahead"])
        self.device = "cpu"  # where the engine puts the tensors it hands over
        self._warned_sampling = False

    @property
    def backend(self) -> str:
        return f"onnxruntime ({', '.join(self.graphs.providers)})"

    def predict(self, speech_feats, text_emb=None, identity=None, *, temperature: float = 0.0,
                top_k: int | None = None, generator=None, mask=None):
        """As ``CodePredictor.predict``: (T, motion_dim) for one sequence, (B, T, motion_dim) for a batch.

        Returns a torch tensor, as the PyTorch model does. ``mask`` is not supported (pass
        sequences of one length); ``text_emb`` is required (the graphs have no null text).
        """
        import torch

        if temperature > 0 or top_k is not None:
            if self.torch_model is None:
                raise ValueError("temperature > 0 needs the PyTorch model: the ONNX graphs hold the argmax path")
            if not self._warned_sampling:
                LOG.info("temperature > 0: codes are sampled by the PyTorch model on the CPU")
                self._warned_sampling = True
            return self.torch_model.predict(speech_feats, text_emb, identity, temperature=temperature,
                                            top_k=top_k, generator=generator, mask=mask)
        if mask is not None:
            raise ValueError("the ONNX backend takes no mask: run sequences of different lengths one by one")
        if text_emb is None:
            raise ValueError("the ONNX backend needs a text embedding (the graphs hold no null text)")
        speech = _numpy(speech_feats)
        single = speech.ndim == 2
        speech = speech[None] if single else speech
        if speech.ndim != 3 or speech.shape[2] != self.config.speech_dim or speech.shape[1] < 1:
            raise ValueError(f"speech features must be (frames >= 1, {self.config.speech_dim}) or "
                             f"(batch, frames, {self.config.speech_dim}), got {tuple(np.shape(speech_feats))}")
        batch, frames = speech.shape[:2]
        text = _numpy(text_emb)
        text = text[None] if single else text
        if text.ndim == 2:  # one embedding per sequence
            text = np.repeat(text[:, None, :], frames, axis=1)
        if text.shape != (batch, frames, self.config.text_dim):
            raise ValueError(f"text embedding must be ({self.config.text_dim},), (frames, {self.config.text_dim}) "
                             f"or batched alike, got {tuple(np.shape(text_emb))}")
        ident = np.zeros(batch, np.int64) if identity is None else np.asarray(_numpy(identity), np.int64).reshape(-1)
        if ident.shape != (batch,) or ident.min() < 0 or ident.max() > self.config.num_speakers:
            raise ValueError(f"identity must be in [0, {self.config.num_speakers}], one per sequence, got {identity!r}")
        for name, x in (("speech features", speech), ("text embedding", text)):
            if not np.all(np.isfinite(x)):
                raise ValueError(f"{name} contain NaN or inf")
        out = torch.from_numpy(np.ascontiguousarray(self.graphs.weights(speech, text, ident), np.float32))
        return out[0] if single else out


def _numpy(x) -> np.ndarray:
    if hasattr(x, "detach"):
        return x.detach().to("cpu").float().numpy() if x.is_floating_point() else x.detach().to("cpu").numpy()
    return np.asarray(x)


# ---------------------------------------------------------------------------------------------
# Encoders


class OnnxSpeechEncoder(SpeechEncoder):
    """An exported wav2vec2 (``speech.onnx``): the same frames and windows as ``Wav2Vec2Encoder``."""

    def __init__(self, folder, spec: dict, *, providers, threads: int | None = None):
        self.name = spec["name"]
        self.feature_dim = int(spec["feature_dim"])
        self.frame_stride = int(spec["frame_stride"])
        self.frame_span = int(spec["frame_span"])
        self.normalize = bool(spec.get("normalize", False))
        self._set_windows(spec["max_single_pass_s"], spec["left_context_s"], spec["right_context_s"],
                          spec["crossfade_s"])
        self.session = session(Path(folder) / spec["file"], providers=providers, threads=threads)

    def _prepare(self, audio: np.ndarray) -> np.ndarray:
        if not self.normalize:  # the feature extractor's zero-mean, unit-variance normalisation
            return audio
        return ((audio - audio.mean()) / np.sqrt(audio.var() + 1e-7)).astype(np.float32)

    def _encode_window(self, audio: np.ndarray) -> np.ndarray:
        (out,) = self.session.run(None, {"audio": np.ascontiguousarray(audio, np.float32)[None]})
        return np.asarray(out[0], np.float32)


class OnnxCausalSpeechEncoder(CausalSpeechEncoder):
    """The exported causal encoder (``speech_step.onnx``): the same frames and streams as
    ``CausalSpeechEncoder``, each stream carrying its state through the graph's inputs and outputs."""

    # Not CausalSpeechEncoder.__init__: that loads the torch weights this class replaces.
    def __init__(self, folder, spec: dict, *, providers, threads: int | None = None):
        self.name = spec["name"]
        self.feature_dim = int(spec["feature_dim"])
        self.frame_stride, self.frame_span = int(spec["frame_stride"]), int(spec["frame_span"])
        self.n_mels, self.layers, self.dim = int(spec["n_mels"]), int(spec["layers"]), int(spec["dim"])
        self.model_path = Path(folder) / spec["file"]
        self.max_single_pass_s = math.inf  # as CausalSpeechEncoder: ``encode`` streams
        self.left_context_s = self.right_context_s = self.crossfade_s = 0.0
        self.session = session(self.model_path, providers=providers, threads=threads)

    def new_stream(self) -> "OnnxCausalStream":
        return OnnxCausalStream(self)


class OnnxCausalStream(CausalStream):
    """One utterance through ``speech_step.onnx``: the stem's last mel frames and the GRU state
    are the graph's outputs of one call and its inputs at the next."""

    def __init__(self, encoder: OnnxCausalSpeechEncoder):  # not CausalStream's: that one takes a torch network
        self.encoder = encoder
        self.feature_dim = encoder.feature_dim
        self.reset()

    def _step(self, audio: np.ndarray) -> np.ndarray:
        e = self.encoder
        past = np.zeros((1, 2, e.n_mels), np.float32) if self._past is None else self._past
        state = np.zeros((e.layers, 1, e.dim), np.float32) if self._state is None else self._state
        feats, self._past, self._state = e.session.run(
            None, {"audio": np.ascontiguousarray(audio, np.float32)[None], "past": past, "state": state})
        return feats[0]


class TextGraph:
    """A text graph (token ids + attention mask -> one vector per text, ``onnx_export.export_text_graph``)
    with its ``tokenizers`` tokenizer: texts in, vectors out, without transformers.

    Runs the bundle exports (``OnnxTextEncoder``) and MiniLM's cached export (``encoders.minilm_onnx``).
    """

    def __init__(self, graph, tokenizer_file, *, max_length: int, pad_token: str, pad_id: int | None = None,
                 providers, threads: int | None = None):
        from tokenizers import Tokenizer

        self.tokenizer = Tokenizer.from_file(str(tokenizer_file))
        self.tokenizer.enable_truncation(max_length=int(max_length))
        if pad_id is None:  # the tokenizer's own id of pad_token
            pad_id = self.tokenizer.token_to_id(pad_token)
        self.tokenizer.enable_padding(pad_id=0 if pad_id is None else int(pad_id), pad_token=pad_token)
        self.session = session(graph, providers=providers, threads=threads)

    def __call__(self, texts: list[str]) -> np.ndarray:
        batch = self.tokenizer.encode_batch(texts)
        ids = np.array([e.ids for e in batch], np.int64)
        mask = np.array([e.attention_mask for e in batch], np.int64)
        return self.session.run(None, {"input_ids": ids, "attention_mask": mask})[0]


class OnnxTextEncoder(TextEncoder):
    """An exported MiniLM or CLIP text tower (``text.onnx``) with its ``tokenizer.json``."""

    def __init__(self, folder, spec: dict, *, providers, threads: int | None = None, cache_size: int = 1024):
        super().__init__(cache_size=cache_size)
        folder = Path(folder)
        self.name, self.dim = spec["name"], int(spec["dim"])
        self.max_length = int(spec["max_length"])
        self.graph = TextGraph(folder / spec["file"], folder / spec["tokenizer"], max_length=self.max_length,
                               pad_token=spec["pad_token"], pad_id=int(spec["pad_id"]), providers=providers,
                               threads=threads)
        from .cache_dir import file_fingerprint

        # same graph, same settings, same vectors: callers may keep embeddings on disk (idle_face)
        self.cache_key = f"onnx-text|{file_fingerprint(folder / spec['file'])}|{self.max_length}"

    def _embed(self, texts: list[str]) -> np.ndarray:
        out = [self.graph(texts[i:i + TEXT_BATCH]) for i in range(0, len(texts), TEXT_BATCH)]
        return np.concatenate(out).astype(np.float32)


# ---------------------------------------------------------------------------------------------
# Loading


def export_folder(bundle_folder, onnx_dir=None) -> Path:
    """The folder with this bundle's export (see the module doc), exported now if needed."""
    from .cache_dir import cache_dir
    from .onnx_export import MANIFEST, export_bundle, model_digest, read_manifest

    bundle_folder = Path(bundle_folder)
    digest = model_digest(bundle_folder)
    if onnx_dir is not None:
        onnx_dir = Path(onnx_dir)
        if (onnx_dir / MANIFEST).is_file():
            read_manifest(onnx_dir, digest=digest)
            return onnx_dir
        target = onnx_dir
    else:
        beside = bundle_folder / "onnx"
        if _holds_export(beside, digest, otherwise="ignoring"):
            return beside
        target = cache_dir() / "onnx" / digest[:16]
        if _holds_export(target, digest, otherwise="exporting again into"):
            return target
    LOG.info("exporting %s to ONNX in %s (once)", bundle_folder, target)
    export_bundle(bundle_folder, target)
    return target


def _holds_export(folder: Path, digest: str, *, otherwise: str) -> bool:
    """True when ``folder`` holds a sound export of the weights ``digest``; a broken or stale one
    is logged as "``otherwise`` folder: why" and passed over."""
    from .onnx_export import MANIFEST, read_manifest

    if not (folder / MANIFEST).is_file():
        return False
    try:
        read_manifest(folder, digest=digest)
        return True
    except ValueError as exc:
        LOG.warning("%s %s: %s", otherwise, folder, exc)
        return False


def load_onnx_bundle(folder, *, device: str = "auto", precision: str = "auto", onnx_dir=None,
                     encoder_options: dict | None = None, threads: int | None = None,
                     window_s: float | None = None):
    """(Bundle whose exported encoders run in onnxruntime, OnnxMotionModel) for bundle ``folder``.

    The bundle's PyTorch network is loaded too, on the CPU: the engine reads its facts from it
    and temperature > 0 samples with it. ``window_s``: the engine's window (sets the longest
    input of TensorRT's shape profiles); ``threads``: onnxruntime threads per session.
    """
    from .bundle import load_bundle, read_meta
    from .cache_dir import cache_dir
    from .encoders.registry import Encoders, build_speech_encoder, build_text_encoder
    from .onnx_export import model_digest, read_manifest

    folder = Path(folder)
    read_meta(folder)  # a clear error for a folder that is no bundle, before anything is exported
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    where = export_folder(folder, onnx_dir)
    manifest = read_manifest(where, digest=model_digest(folder))
    trt_cache = cache_dir() / "tensorrt" / manifest["model_sha256"][:16]
    options = encoder_options or {}
    meta_encoders = read_meta(folder)["encoders"]

    def providers_for(profiles=None):
        chosen = choose_providers(device, precision=precision, cache_dir=trt_cache, profiles=profiles)
        if any(name == TENSORRT for name, _ in chosen):
            trt_cache.mkdir(parents=True, exist_ok=True)
        return chosen

    graphs = manifest["graphs"]
    part_threads = {part: options.get(part, {}).get("threads", threads) for part in ("speech", "text")}
    if "speech" in graphs and graphs["speech"]["kind"] == "causal":
        speech = OnnxCausalSpeechEncoder(where, graphs["speech"], threads=part_threads["speech"],
                                         providers=providers_for(_causal_speech_profiles(graphs["speech"])))
    elif "speech" in graphs:
        speech = OnnxSpeechEncoder(where, graphs["speech"], threads=part_threads["speech"],
                                   providers=providers_for(_speech_profiles(graphs["speech"])))
    else:
        speech = build_speech_encoder(_encoder_config(meta_encoders, "speech", device, options))
    if "text" in graphs:
        text = OnnxTextEncoder(where, graphs["text"], providers=providers_for(_text_profiles(graphs["text"])),
                               threads=part_threads["text"],
                               cache_size=options.get("text", {}).get("cache_size", 1024))
    else:
        text = build_text_encoder(_encoder_config(meta_encoders, "text", device, options))
    bundle = load_bundle(folder, device="cpu", encoders=Encoders(speech, text))
    profiles = _motion_profiles(manifest, None if window_s is None else int(round(window_s * bundle.fps)))
    model = OnnxMotionModel(where, manifest, threads=threads, torch_model=bundle.model,
                            providers=lambda name: providers_for(profiles.get(name)))
    LOG.info("ONNX backend: %s from %s", model.backend, where)
    return bundle, model


def _encoder_config(meta_encoders: dict, part: str, device: str, options: dict) -> dict:
    """An encoder the export does not hold (Moonshine), configured as ``load_bundle`` does."""
    c = meta_encoders.get(part, {"kind": "moonshine" if part == "speech" else "minilm"})
    cfg = dict(c) if isinstance(c, dict) else {"kind": c}
    cfg.setdefault("device", device.split(":")[0])  # Moonshine takes auto / cpu / cuda
    cfg.update(options.get(part, {}))
    return cfg


def _motion_profiles(manifest: dict, window_frames: int | None) -> dict[str, dict[str, str]]:
    """TensorRT shape profiles of the motion graphs: 1 frame, a streaming window, the longest window.

    An engine call covers its ``window_frames`` plus the receptive field on both sides, the
    left side rounded down to the code grid (``Engine._run``).
    """
    align = int(manifest["align"])
    left, right = manifest["receptive_field"]
    longest = (window_frames or 30 * align) + left + right + align
    lengths = {"min": 1, "opt": _ceil(left + right + align, align), "max": _ceil(longest, align)}
    d_s, d_t = manifest["speech_dim"], manifest["text_dim"]
    strides = {"low_codes": None, "high_codes": None}
    steps = manifest["graphs"].get("predictor", {}).get("steps", {})
    strides["low_codes"], strides["high_codes"] = steps.get("low_stride"), steps.get("high_stride")
    out: dict[str, dict[str, str]] = {}
    for level, frames in lengths.items():
        motion = f"speech:1x{frames}x{d_s},text:1x{frames}x{d_t},identity:1"
        out.setdefault("predictor", {})[level] = motion
        out.setdefault("regression", {})[level] = motion
        codes = [f"{n}:1x{_ceil(frames, align) // s}" for n, s in strides.items() if s]  # padded to the grid
        out.setdefault("decoder", {})[level] = ",".join(codes + [f"text:1x{frames}x{d_t}", "identity:1"])
    return out


def _speech_profiles(spec: dict) -> dict[str, str]:
    shortest = int(spec["frame_span"]) + int(spec["frame_stride"])
    # the last window of a long input runs to its end: up to one frame longer than the others
    longest = int(round(float(spec["max_single_pass_s"]) * 16000)) + int(spec["frame_stride"])
    return {"min": f"audio:1x{shortest}", "opt": f"audio:1x{min(longest, 3 * 16000)}", "max": f"audio:1x{longest}"}


def _causal_speech_profiles(spec: dict) -> dict[str, str]:
    """One feature frame (a pair of mel frames), a 0.1 s piece, the 60 s block ``encode`` feeds."""
    def shape(pairs: int) -> str:
        return (f"audio:1x{(2 * pairs - 1) * HOP + WINDOW},past:1x2x{spec['n_mels']},"
                f"state:{spec['layers']}x1x{spec['dim']}")

    return {"min": shape(1), "opt": shape(5), "max": shape(3000)}


def _text_profiles(spec: dict) -> dict[str, str]:
    def both(batch, tokens):
        return f"input_ids:{batch}x{tokens},attention_mask:{batch}x{tokens}"

    return {"min": both(1, 1), "opt": both(1, 16), "max": both(TEXT_BATCH, int(spec["max_length"]))}


def _ceil(n: int, multiple: int) -> int:
    return int(math.ceil(n / multiple) * multiple)
