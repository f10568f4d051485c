"""Save and load the networks as one safetensors file with their config as JSON in its header.

Why one file: weights and config cannot drift apart, and a copy is atomic. No pickle is
involved (safetensors holds raw tensors, the header plain strings); ``torch.load`` is never
used. A SHA-256 of all tensor bytes is stored too, because safetensors checks the layout of a
file but not its contents: a flipped byte in the weights would otherwise load silently.

Header fields: ``format`` = "talking_face_ros.model", ``version``, ``model`` (class name),
``config`` (JSON of the model's config), ``vqvae_config`` (for a CodePredictor, which contains
its VQ-VAE), ``sha256``. The codebook EMA statistics are saved too, so training can resume.
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file
from torch import nn

from .baselines import RegressionBaseline
from .config import PredictorConfig, RegressionConfig, VQVAEConfig
from .motion_vqvae import HierarchicalMotionVQVAE
from .predictor import CodePredictor

FORMAT = "talking_face_ros.model"
VERSION = "1"
MODEL_CLASSES = ("HierarchicalMotionVQVAE", "CodePredictor", "RegressionBaseline")


def save_model(model: nn.Module, path, *, dtype: torch.dtype = torch.float32) -> Path:
    """Write ``model`` to ``path`` (.safetensors); float tensors are stored as ``dtype`` (fp32/fp16)."""
    name = type(model).__name__
    if name not in MODEL_CLASSES:
        raise ValueError(f"can only save {', '.join(MODEL_CLASSES)}, not {name}")
    if dtype not in (torch.float32, torch.float16):
        raise ValueError(f"dtype must be torch.float32 or torch.float16, got {dtype}")
    state = {k: (v.detach().to("cpu", dtype) if v.is_floating_point() else v.detach().to("cpu")).contiguous()
             for k, v in model.state_dict().items()}
    metadata = {"format": FORMAT, "version": VERSION, "model": name,
                "config": json.dumps(model.config.to_dict(), sort_keys=True), "sha256": _digest(state)}
    if isinstance(model, CodePredictor):
        metadata["vqvae_config"] = json.dumps(model.vqvae.config.to_dict(), sort_keys=True)
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    save_file(state, str(tmp), metadata=metadata)
    os.replace(tmp, path)  # readers never see a half-written checkpoint
    return path


def load_model(path, *, device: str | torch.device = "cpu") -> nn.Module:
    """The model saved at ``path``, in eval mode, float32, on ``device``.

    Raises ValueError naming the file for anything that is not an intact checkpoint of this
    project: unreadable or truncated file, foreign header, bad config, checksum mismatch,
    NaN or infinite weights, missing, unexpected or mis-shaped tensors.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    try:
        with safe_open(str(path), framework="pt") as f:
            metadata = f.metadata() or {}
            state = {k: f.get_tensor(k) for k in f.keys()}
    except (SafetensorError, OSError, RuntimeError, ValueError) as e:
        raise ValueError(f"{path}: not a readable safetensors file (truncated or corrupted?): {e}") from None

    if metadata.get("format") != FORMAT:
        raise ValueError(f"{path}: not a {FORMAT} checkpoint (format={metadata.get('format')!r})")
    if metadata.get("version") != VERSION:
        raise ValueError(f"{path}: checkpoint version {metadata.get('version')!r}, this code reads {VERSION!r}")
    if metadata.get("sha256") != _digest(state):
        raise ValueError(f"{path}: checksum mismatch, the weights are corrupted")
    for k, v in state.items():
        if v.is_floating_point() and not bool(torch.isfinite(v).all()):
            raise ValueError(f"{path}: tensor {k} holds NaN or infinite values (a diverged training?)")
    model = _build(path, metadata)

    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    if missing or unexpected:
        raise ValueError(f"{path}: tensors do not match a {metadata['model']} with this config; "
                         f"missing {missing[:5]}{'...' if len(missing) > 5 else ''}, "
                         f"unexpected {unexpected[:5]}{'...' if len(unexpected) > 5 else ''}")
    for k, v in expected.items():
        if tuple(state[k].shape) != tuple(v.shape):
            raise ValueError(f"{path}: tensor {k} has shape {tuple(state[k].shape)}, expected {tuple(v.shape)}")
        if state[k].is_floating_point() != v.is_floating_point():
            raise ValueError(f"{path}: tensor {k} has dtype {state[k].dtype}, expected {v.dtype}")
    model.load_state_dict({k: state[k].to(expected[k].dtype) for k in expected}, strict=True)
    return model.to(device).eval()


def _build(path: Path, metadata: dict) -> nn.Module:
    name = metadata.get("model")
    if name not in MODEL_CLASSES:
        raise ValueError(f"{path}: unknown model class {name!r}")
    try:
        config = json.loads(metadata["config"])
        if name == "HierarchicalMotionVQVAE":
            return HierarchicalMotionVQVAE(VQVAEConfig.from_dict(config))
        if name == "RegressionBaseline":
            return RegressionBaseline(RegressionConfig.from_dict(config))
        vqvae = HierarchicalMotionVQVAE(VQVAEConfig.from_dict(json.loads(metadata["vqvae_config"])))
        return CodePredictor(PredictorConfig.from_dict(config), vqvae)
    except KeyError as e:
        raise ValueError(f"{path}: header lacks {e}") from None
    except (json.JSONDecodeError, ValueError, TypeError, OverflowError, RuntimeError, MemoryError) as e:
        raise ValueError(f"{path}: bad config in header: {e}") from None


def _digest(state: dict[str, torch.Tensor]) -> str:
    h = hashlib.sha256()
    for k in sorted(state):
        t = state[k].contiguous().reshape(-1)
        h.update(f"{k}|{t.dtype}|{tuple(state[k].shape)}|".encode())
        h.update(t.view(torch.uint8).numpy().tobytes())
    return h.hexdigest()
