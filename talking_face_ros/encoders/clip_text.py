"""CLIP's text tower as the emotion-text encoder, for users who have CLIP weights.

CLIP text embeddings are a common emotion/style condition in text-driven face animation. No
CLIP weights can be fetched offline here; the default hub id works once cached, as does any
local folder saved by ``save_pretrained`` from a full CLIPModel (the vision tower is skipped)
or a CLIPTextModelWithProjection.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .base import TextEncoder, resolve_torch_device
from .hub import load_pretrained, resolve_source

CLIP_CONTEXT = 77  # tokens CLIP's text tower was trained with, start and end tokens included


class ClipTextEncoder(TextEncoder):
    """Projected, L2-normalised CLIP text embedding (512-d for ViT-B/32)."""

    def __init__(
        self,
        model: str | Path = "openai/clip-vit-base-patch32",  # hub id or local folder
        *,
        device: str = "auto",  # "auto", "cpu", "cuda"
        batch_size: int = 32,  # texts per model call
        cache_size: int = 1024,  # texts kept in the LRU cache
        local_files_only: bool | None = None,  # None: only when HF_HUB_OFFLINE is set
    ):
        from transformers import AutoConfig, AutoTokenizer, CLIPConfig, CLIPTextModelWithProjection
        from transformers.utils import logging as hf_logging

        super().__init__(cache_size=cache_size)
        what = "CLIP text encoder"
        self.device = resolve_torch_device(device)
        config = load_pretrained(AutoConfig.from_pretrained, model, what=what, local_files_only=local_files_only)
        if isinstance(config, CLIPConfig):
            # A full CLIP checkpoint: its text config does not carry the projection size.
            text_config = config.text_config
            text_config.projection_dim = config.projection_dim
        elif config.model_type == "clip_text_model" and "CLIPTextModelWithProjection" in (config.architectures or []):
            text_config = config
        else:
            raise ValueError(
                f"{what}: {model!r} is a {type(config).__name__} ({config.architectures}); "
                "expected a CLIPModel or CLIPTextModelWithProjection checkpoint"
            )
        self.tokenizer = load_pretrained(AutoTokenizer.from_pretrained, model, what=what,
                                         local_files_only=local_files_only)
        verbosity = hf_logging.get_verbosity()
        hf_logging.set_verbosity_error()  # a full CLIP checkpoint's vision weights are skipped on purpose
        try:
            self.model = load_pretrained(CLIPTextModelWithProjection.from_pretrained, model, what=what,
                                         local_files_only=local_files_only, config=text_config)
        finally:
            hf_logging.set_verbosity(verbosity)
        self.model = self.model.to(self.device).eval()
        self.max_length = min(CLIP_CONTEXT, int(text_config.max_position_embeddings))
        self.batch_size = int(batch_size)
        self.dim = int(text_config.projection_dim)
        self.source, _ = resolve_source(model, what=what)
        self.name = f"clip:{Path(self.source).name}"

    def _embed(self, texts: list[str]) -> np.ndarray:
        import torch

        out = []
        for i in range(0, len(texts), self.batch_size):
            batch = self.tokenizer(
                texts[i : i + self.batch_size], padding=True, truncation=True, max_length=self.max_length,
                return_tensors="pt",
            ).to(self.device)
            with torch.inference_mode():
                emb = self.model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).text_embeds
            out.append(emb.float().cpu().numpy())
        return np.concatenate(out)
