"""A trained model as one folder: the network plus everything needed to feed it the same inputs.

A network alone is not usable: its speech features must come from the same encoder with the
same chunk plan it was trained on (``features.py``), its text embeddings from the same text
encoder, its identity rows mean particular voices, and its frames a particular rate. The folder
keeps them together::

    model.safetensors   the CodePredictor (with its frozen VQ-VAE) or RegressionBaseline,
                        written by model.checkpoint.save_model (weights + config, no pickle)
    bundle.json         {"format": "talking_face_bundle", "version": 1, "fps": 30.0,
                         "encoders": {"speech": {"kind": "moonshine"}, "text": {"kind": "minilm"}},
                         "plan": {"chunk_s", "left_s", "right_s"},
                         "identities": ["default", "us_f1", ...],   # row i of the identity table
                         "default_emotion": "neutral", "model_kind": "predictor" | "regression",
                         "model": {...facts for people...}, "trained": {...}}

Encoder options that only say how to run an encoder on this machine (device, threads, batch
size, cache size) are not stored; ``load_bundle`` takes them.
"""
from __future__ import annotations

import json
import math
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path

from .features import ChunkPlan
from .json_files import read_versioned_json

FORMAT = "talking_face_bundle"
VERSION = 1
MODEL_FILE = "model.safetensors"
META_FILE = "bundle.json"
DEFAULT_EMOTION = "neutral"  # the corpus' plainest neutral phrasing (corpus.emotion_text.EMOTION_PROMPTS)
RUNTIME_KEYS = ("device", "threads", "batch_size", "cache_size", "runtime")  # encoder options not stored
MODEL_KINDS = {"CodePredictor": "predictor", "RegressionBaseline": "regression"}
PRECISIONS = ("auto", "fp32", "fp16")  # auto: fp16 on CUDA, fp32 on the CPU
BACKENDS = ("torch", "onnx")  # how the engine runs the network (onnx: onnx_backend)
RESERVED = ("format", "version", "fps", "encoders", "plan", "identities", "model_kind", "model")
MIN_FPS, MAX_FPS = 1.0, 1000.0  # frame rates a bundle may declare
MAX_META_BYTES = 16 * 2**20  # a bundle.json is a few kB; a larger file is not one


@dataclass
class Bundle:
    """A loaded bundle: network (eval mode, on its device), encoders and the facts that go with them."""

    model: object  # CodePredictor or RegressionBaseline
    encoders: object  # encoders.Encoders(speech, text)
    plan: ChunkPlan
    fps: float
    identities: list[str]  # row i of the model's identity table; row 0 = unknown speaker
    meta: dict = field(default_factory=dict)  # the whole bundle.json
    folder: Path | None = None
    precision: str = "fp32"  # of the network's weights: fp32 or fp16 (resolve_precision)

    @property
    def model_kind(self) -> str:
        return self.meta.get("model_kind", MODEL_KINDS[type(self.model).__name__])

    @property
    def default_emotion(self) -> str:
        return self.meta.get("default_emotion", DEFAULT_EMOTION)

    def identity_index(self, name: str | None) -> int:
        """Row of ``name`` in the identity table; None/"" and unknown names get row 0 (unknown speaker)."""
        if name is None or name == "" or name == self.identities[0]:
            return 0
        try:
            return self.identities.index(name)
        except ValueError:
            warnings.warn(f"identity {name!r} is not one of this model's speakers "
                          f"({', '.join(self.identities[1:]) or 'none'}); using the default identity",
                          stacklevel=2)
            return 0


def save_bundle(folder, model, *, encoders_cfg: dict, plan: ChunkPlan, fps: float, identities,
                extra: dict | None = None, dtype=None) -> Path:
    """Write ``model`` and ``bundle.json`` into ``folder`` (created); returns the folder.

    ``extra``: more top-level fields of bundle.json, e.g. ``{"trained": {"corpus": ..., "seed":
    ..., "steps": ..., "losses": {...}}, "default_emotion": "neutral"}``. ``dtype``:
    torch.float16 halves the file (for shipping); None keeps float32.
    """
    import torch

    from .model.checkpoint import save_model

    kind = MODEL_KINDS.get(type(model).__name__)
    if kind is None:
        raise ValueError(f"a bundle holds a CodePredictor or a RegressionBaseline, not {type(model).__name__}")
    if not isinstance(plan, ChunkPlan):
        raise ValueError(f"plan must be a features.ChunkPlan, got {type(plan).__name__}")
    if not (isinstance(fps, (int, float)) and math.isfinite(fps) and fps > 0):
        raise ValueError(f"fps must be a positive number, got {fps!r}")
    identities = _check_identities(list(identities), model.config.num_speakers, "identities")
    extra = dict(extra or {})
    clash = sorted(set(extra) & set(RESERVED))
    if clash:
        raise ValueError(f"extra must not set the bundle's own fields {clash}")
    meta = {
        "format": FORMAT, "version": VERSION, "fps": float(fps),
        "encoders": _stored_encoders(encoders_cfg), "plan": plan.to_dict(), "identities": identities,
        "default_emotion": DEFAULT_EMOTION, "model_kind": kind,
        "model": {"class": type(model).__name__, "parameters": sum(p.numel() for p in model.parameters()),
                  "lookahead_frames": int(model.lookahead),
                  "receptive_field_frames": [int(model.receptive_field.left), int(model.receptive_field.right)]},
    }
    meta.update(extra)
    if not isinstance(meta["default_emotion"], str):
        raise ValueError(f"default_emotion must be a string, got {meta['default_emotion']!r}")
    try:
        text = json.dumps(meta, indent=1, ensure_ascii=False)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"bundle metadata is not plain JSON: {exc}") from None
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    save_model(model, folder / MODEL_FILE, dtype=torch.float32 if dtype is None else dtype)
    tmp = folder / (META_FILE + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, folder / META_FILE)
    return folder


def read_meta(folder) -> dict:
    """bundle.json of ``folder``, checked field by field (no network is loaded)."""
    folder = Path(folder)
    path = folder / META_FILE
    if not folder.is_dir():
        raise FileNotFoundError(f"no model bundle at {folder} (a folder with {META_FILE} and {MODEL_FILE})")
    if not path.is_file():
        raise ValueError(f"{folder}: not a model bundle, {META_FILE} is missing")
    if path.stat().st_size > MAX_META_BYTES:
        raise ValueError(f"{path}: {path.stat().st_size} bytes, not a bundle file (at most {MAX_META_BYTES})")
    meta = read_versioned_json(path, fmt=FORMAT, version=VERSION, what="bundle")
    for key in ("fps", "encoders", "plan", "identities", "model_kind"):
        if key not in meta:
            raise ValueError(f"{path}: field {key!r} is missing")
    fps = meta["fps"]
    if isinstance(fps, bool) or not isinstance(fps, (int, float)) or not (MIN_FPS <= fps <= MAX_FPS):
        raise ValueError(f"{path}: field 'fps' must be a positive number in [{MIN_FPS:g}, {MAX_FPS:g}], "
                         f"got {fps!r}")
    if not isinstance(meta["encoders"], dict):
        raise ValueError(f"{path}: field 'encoders' must be an object")
    for part, c in meta["encoders"].items():
        kind = c if isinstance(c, str) else c.get("kind", "") if isinstance(c, dict) else None
        if part not in ("speech", "text") or not isinstance(kind, str):
            raise ValueError(f"{path}: field 'encoders': expected 'speech' and 'text', each a kind name or "
                             f"an object with a 'kind', got {part!r}: {c!r}")
    try:
        ChunkPlan.from_dict(meta["plan"])
    except (ValueError, TypeError, OverflowError) as exc:
        raise ValueError(f"{path}: field 'plan': {exc}") from None
    if meta["model_kind"] not in MODEL_KINDS.values():
        raise ValueError(f"{path}: field 'model_kind' must be one of {sorted(MODEL_KINDS.values())}, "
                         f"got {meta['model_kind']!r}")
    if not isinstance(meta.get("default_emotion", DEFAULT_EMOTION), str):
        raise ValueError(f"{path}: field 'default_emotion' must be a string")
    _check_identities(meta["identities"], None, f"{path}: field 'identities'")
    return meta


def resolve_precision(precision: str, torch_device: str) -> str:
    """"fp32" or "fp16" for ``precision`` on ``torch_device``; auto is fp16 on CUDA only.

    Why fp16 keeps quality on a GPU: on the default model and 10 s of speech it changes no
    code of the predictor and the weights by at most 4e-4 (bench/onnx_backend.py, run on the
    CPU; bfloat16 flips 2 % of the low codes, hence no bf16 option). On the CPU fp16 is slower
    than fp32, so auto keeps fp32 there; fp16 on the CPU is allowed for such checks.
    """
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    if precision == "auto":
        return "fp16" if str(torch_device).startswith("cuda") else "fp32"
    return precision


def load_bundle(folder, *, device: str = "auto", encoder_options: dict | None = None,
                encoders=None, precision: str = "auto") -> Bundle:
    """The bundle in ``folder`` with its network on ``device`` and its encoders built.

    ``encoder_options``: how to run the encoders here, e.g. ``{"speech": {"threads": 2}}``.
    ``encoders``: already built Encoders to reuse (tests, batch jobs that load several bundles);
    they must match the bundle's (kinds and sizes are checked). ``precision``: of the network
    (``resolve_precision``); in fp16 on CUDA a wav2vec2 speech encoder runs in fp16 too. Text
    encoders stay fp32: they run once per new emotion text (then cached), so fp16 would save
    nothing and only move the condition.
    """
    from .encoders import build_encoders
    from .encoders.base import resolve_torch_device
    from .model.checkpoint import load_model

    folder = Path(folder)
    meta = read_meta(folder)
    torch_device = resolve_torch_device(device)
    dtype = resolve_precision(precision, torch_device)
    model = load_model(folder / MODEL_FILE, device=torch_device)
    if dtype == "fp16":
        import torch

        model = model.to(torch.float16)
    kind = MODEL_KINDS.get(type(model).__name__)
    if kind != meta["model_kind"]:
        raise ValueError(f"{folder}: bundle.json says model_kind {meta['model_kind']!r} but "
                         f"{MODEL_FILE} holds a {type(model).__name__}")
    identities = _check_identities(meta["identities"], model.config.num_speakers,
                                   f"{folder / META_FILE}: field 'identities'")
    unknown = sorted(set(encoder_options or {}) - {"speech", "text"})
    if unknown or not all(isinstance(v, dict) for v in (encoder_options or {}).values()):
        raise ValueError(f"encoder_options must map 'speech' and/or 'text' to option dicts, got {encoder_options!r}")
    if encoders is None:
        cfg = {part: dict(c) if isinstance(c, dict) else {"kind": c} for part, c in meta["encoders"].items()}
        for part in ("speech", "text"):
            cfg.setdefault(part, {"kind": "moonshine" if part == "speech" else "minilm"})
            cfg[part].setdefault("device", device)
            if part == "speech" and cfg[part].get("kind") == "wav2vec2" and dtype == "fp16" \
                    and torch_device.startswith("cuda"):
                cfg[part].setdefault("dtype", "float16")
            cfg[part].update((encoder_options or {}).get(part, {}))
        try:
            encoders = build_encoders(cfg)
        except Exception as exc:  # noqa: BLE001 - bad options, missing files: any library's error
            why = str(exc) if isinstance(exc, ValueError) else f"{type(exc).__name__}: {exc}"
            raise ValueError(f"{folder / META_FILE}: field 'encoders': {why}") from None
    plan = ChunkPlan.from_dict(meta["plan"])
    try:
        plan.samples(encoders.speech)
    except (ValueError, OverflowError) as exc:
        raise ValueError(f"{folder / META_FILE}: field 'plan' does not suit {encoders.speech.name}: "
                         f"{exc}") from None
    if encoders.speech.feature_dim != model.config.speech_dim:
        raise ValueError(f"{folder}: the model takes {model.config.speech_dim}-d speech features but "
                         f"{encoders.speech.name} gives {encoders.speech.feature_dim}")
    if encoders.text.dim != model.config.text_dim:
        raise ValueError(f"{folder}: the model takes {model.config.text_dim}-d text embeddings but "
                         f"{encoders.text.name} gives {encoders.text.dim}")
    return Bundle(model=model, encoders=encoders, plan=plan, fps=float(meta["fps"]), identities=identities,
                  meta=meta, folder=folder, precision=dtype)


def random_bundle_of_config(config, folder, *, encoders: dict | None = None, speech_dim: int = 416,
                            text_dim: int = 384, speakers: int = 18) -> Path:
    """The network a training config builds, untrained, saved as a bundle with ``speakers`` voices.

    For benchmarks of configs nobody trained here (random weights cost what trained ones cost).
    ``encoders``: the bundle's encoder config with the matching ``speech_dim`` / ``text_dim``;
    None takes the config's own, which must then be the offline Moonshine (or the causal encoder
    distilled from it) + MiniLM (416 / 384).
    """
    from . import train
    from .features import ChunkPlan

    cfg = train.load_config(config)
    if encoders is None:
        encoders = cfg["encoders"]
        kinds = (encoders.get("speech", {}).get("kind", "moonshine"), encoders.get("text", {}).get("kind", "minilm"))
        if kinds[0] not in ("moonshine", "causal") or kinds[1] != "minilm":  # the 416 / 384 sizes
            raise ValueError(f"{config}: encoders {kinds}: pass encoders= with their feature sizes")
    dims = dict(num_speakers=speakers, speech_dim=speech_dim, text_dim=text_dim)
    if cfg["model"] == "predictor":
        model = train.build_model(cfg, "predictor", vqvae=train.build_model(cfg, "vqvae", **dims), **dims)
    else:
        model = train.build_model(cfg, "regression", **dims)
    return save_bundle(folder, model.eval(), encoders_cfg=encoders, plan=ChunkPlan(**cfg["plan"]), fps=30.0,
                       identities=["default"] + [f"v{i}" for i in range(speakers)])


def make_random_bundle(folder, *, small: bool = True, kind: str = "predictor", speakers=("v1", "v2"),
                       seed: int = 0, plan: ChunkPlan | None = None, fps: float = 30.0,
                       speech_dim: int = 416, text_dim: int = 384, head: str = "logits",
                       refine: bool = False, refine_branch: int = 0) -> Path:
    """A bundle with random weights (Moonshine + MiniLM), for tests and benchmarks.

    ``small``: a tiny network (fast tests); False: the default network sizes with the small
    right-side attention a live model uses. Every weight is perturbed (FiLM layers and the null
    text start at zero in an untrained network, which would hide the conditions), and the output
    is a sigmoid so that the random output moves instead of sitting clamped at 0. ``head``: the
    code predictor's output head (``PredictorConfig.head``); ``refine``: with its refine head
    (``PredictorConfig.refine_weight``), ``refine_branch``: that head's speech branch layers.
    """
    import torch

    from .model import CodePredictor, HierarchicalMotionVQVAE, PredictorConfig, RegressionBaseline
    from .model.config import RegressionConfig, VQVAEConfig

    n = len(speakers)
    common = dict(num_speakers=n, text_dim=text_dim)
    torch.manual_seed(seed)
    if kind == "predictor":
        vq_sizes = dict(frame_dim=16, dim=32, code_dim=8, low_codebook_size=32, high_codebook_size=16,
                        identity_dim=8, cond_dim=16) if small else {}
        pred_sizes = dict(frame_dim=16, dim=32, heads=2, identity_dim=8, cond_dim=16) if small else {}
        vq = HierarchicalMotionVQVAE(VQVAEConfig(output_activation="sigmoid", **vq_sizes, **common))
        model = CodePredictor(PredictorConfig(speech_dim=speech_dim, high_attn_right=0, low_attn_right=1,
                                              dropout=0.0, head=head, refine_weight=1.0 if refine else 0.0,
                                              refine_branch_layers=refine_branch,
                                              **({"refine_branch_dim": 32} if small and refine_branch else {}),
                                              **pred_sizes, **common), vq)
    elif kind == "regression":
        sizes = dict(frame_dim=16, dim=32, heads=2, layers=2, identity_dim=8, cond_dim=16) if small else {}
        model = RegressionBaseline(RegressionConfig(speech_dim=speech_dim, output_activation="sigmoid",
                                                    attn_right=1, dropout=0.0, **sizes, **common))
    else:
        raise ValueError(f"kind must be 'predictor' or 'regression', got {kind!r}")
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.1)
    encoders_cfg = {"speech": {"kind": "moonshine"}, "text": {"kind": "minilm"}}
    return save_bundle(folder, model.eval(), encoders_cfg=encoders_cfg,
                       plan=plan or ChunkPlan(), fps=fps, identities=["default", *speakers],
                       extra={"trained": {"random": True, "seed": seed}})


# ---------------------------------------------------------------------------------------------


def _stored_encoders(cfg) -> dict:
    if not isinstance(cfg, dict):
        raise ValueError(f"encoders_cfg must be a mapping like {{'speech': {{'kind': 'moonshine'}}}}, "
                         f"got {type(cfg).__name__}")
    out = {}
    for part, c in cfg.items():
        if part not in ("speech", "text"):
            raise ValueError(f"encoders_cfg: unknown part {part!r}; expected 'speech' and/or 'text'")
        c = {"kind": c} if isinstance(c, str) else c
        if not isinstance(c, dict) or "kind" not in c:
            raise ValueError(f"encoders_cfg.{part}: expected a mapping with a 'kind', got {c!r}")
        out[part] = {k: (str(v) if isinstance(v, Path) else v) for k, v in c.items() if k not in RUNTIME_KEYS}
    return out


def _check_identities(identities, num_speakers: int | None, where: str) -> list[str]:
    if not isinstance(identities, list) or not identities or not all(isinstance(s, str) and s for s in identities):
        raise ValueError(f"{where}: expected a non-empty list of names, row 0 for the unknown speaker")
    if len(set(identities)) != len(identities):
        raise ValueError(f"{where}: names repeat")
    if num_speakers is not None and len(identities) != num_speakers + 1:
        raise ValueError(f"{where}: {len(identities)} names for a model with {num_speakers} speakers "
                         f"(+ row 0, the unknown speaker) = {num_speakers + 1} rows")
    return list(identities)
