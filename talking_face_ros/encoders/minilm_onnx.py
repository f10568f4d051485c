"""MiniLM in onnxruntime with the `tokenizers` library: the same embeddings without importing transformers.

Why: importing transformers and building a BertModel took 3.5-9.6 s on this 2-core machine (half busy to heavily loaded), the
largest part of the node's start-up. The model is exported once to ONNX (``prepare``, run by
scripts/setup.sh or on demand, seconds) into the cache folder, as the graph a bundle's
``text.onnx`` holds (``onnx_export.export_text_graph``: token ids + mask -> mean-pooled token
states); later runs need only onnxruntime (already loaded for the Moonshine speech encoder) and
the Rust tokenizer (``onnx_backend.TextGraph``), which start in a fraction of a second. The
export is tested to match the transformers path to 1e-5.

    python -m talking_face_ros.encoders.minilm_onnx      # make the cached export (and phrasing embeddings) now
"""
from __future__ import annotations

import sys
from pathlib import Path

from ..cache_dir import cache_dir, file_fingerprint


def weights_fingerprint(folder: Path) -> str:
    """A digest of the sentence-transformers folder's config and weights files (names, sizes, times)."""
    folder = Path(folder)
    return file_fingerprint(folder / "config.json", _weights_file(folder))


def onnx_path_for(folder: Path) -> Path:
    """Where the export of the sentence-transformers folder ``folder`` is cached.

    "pooled": the graph ends in the mean over tokens; the token-state graphs that earlier
    versions cached as ``minilm-<digest>.onnx`` are never read.
    """
    return cache_dir() / f"minilm-pooled-{weights_fingerprint(folder)}.onnx"


def _weights_file(folder: Path) -> Path:
    path = folder / "model.safetensors"  # the only weights torch_parts loads (no pickle)
    if not path.is_file():
        raise ValueError(f"MiniLM text encoder: no model.safetensors in {folder}")
    return path


def prepare(folder: Path | None = None) -> Path:
    """The cached ONNX export of ``folder`` (default: the bundled MiniLM), made now if missing."""
    from .minilm import minilm_model_path

    folder = Path(folder) if folder is not None else minilm_model_path()
    out = onnx_path_for(folder)
    if not out.is_file():
        from ..onnx_export import export_text_graph

        export_text_graph(*torch_parts(folder), out, pooling="mean")  # written under a temporary name first
    return out


def torch_parts(folder: Path):
    """(tokenizer, BertModel in eval mode) of the sentence-transformers ``folder``: what the export traces."""
    from transformers import AutoModel, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
    model = AutoModel.from_pretrained(str(folder), local_files_only=True, use_safetensors=True)  # no pickle
    return tokenizer, model.eval()


def is_warm() -> bool:
    """True when the bundled MiniLM's export and the phrasing embeddings are both cached."""
    from ..idle_face import phrasings_cache_path
    from .minilm import MiniLMTextEncoder, minilm_model_path

    folder = minilm_model_path()
    key = MiniLMTextEncoder.key_for(folder, MiniLMTextEncoder.max_length_of(folder))
    return onnx_path_for(folder).is_file() and phrasings_cache_path(key).is_file()


def warm() -> None:
    """Make the export and the node's embeddings of the labelled emotion phrasings (scripts/setup.sh)."""
    from ..idle_face import EmotionLabels
    from .minilm import MiniLMTextEncoder

    path = prepare()
    EmotionLabels(MiniLMTextEncoder(device="cpu", runtime="onnx")).warm_up()
    print(f"MiniLM: {path} and its phrasing embeddings are cached")


if __name__ == "__main__":
    if "--check" in sys.argv:  # exit status only: 0 when already warm
        sys.exit(0 if is_warm() else 1)
    warm()
    sys.exit(0)
