"""MiniLM in onnxruntime with the `tokenizers` library: the same embeddings without importing transformers.

Why: importing transformers and building a BertModel costs 3-6 s on a 2-core robot computer, the
largest part of the node's start-up. The model is exported once to ONNX (``prepare``, run by
scripts/setup.sh or on demand, seconds) into the cache folder; later runs need only
onnxruntime (already loaded for the Moonshine speech encoder) and the Rust tokenizer, which
start in a fraction of a second. The export is tested to match the transformers path to 1e-5.

    python -m talking_face_ros.encoders.minilm_onnx      # make the cached export (and phrasing embeddings) now
"""
from __future__ import annotations

import json
import sys
import warnings
from pathlib import Path

import numpy as np

from ..cache_dir import cache_dir, file_fingerprint, write_atomically

OPSET = 17


def onnx_path_for(folder: Path) -> Path:
    """Where the export of the sentence-transformers folder ``folder`` is cached."""
    folder = Path(folder)
    digest = file_fingerprint(folder / "config.json", _weights_file(folder))
    return cache_dir() / f"minilm-{digest}.onnx"


def _weights_file(folder: Path) -> Path:
    for name in ("model.safetensors", "pytorch_model.bin"):
        if (folder / name).is_file():
            return folder / name
    raise ValueError(f"MiniLM text encoder: no model.safetensors in {folder}")


def prepare(folder: Path | None = None) -> Path:
    """The cached ONNX export of ``folder`` (default: the bundled MiniLM), made now if missing."""
    from .minilm import minilm_model_path

    folder = Path(folder) if folder is not None else minilm_model_path()
    out = onnx_path_for(folder)
    if not out.is_file():
        write_atomically(out, export_onnx_bytes(folder))
    return out


def export_onnx_bytes(folder: Path) -> bytes:
    """The BERT encoder of ``folder`` as ONNX (token ids + mask -> last hidden state), dynamic batch and length."""
    import io

    import torch
    from transformers import AutoModel

    model = AutoModel.from_pretrained(str(folder), local_files_only=True, use_safetensors=True).eval()  # no pickle

    class _Hidden(torch.nn.Module):  # the export sees plain tensors in and one tensor out
        def __init__(self, bert):
            super().__init__()
            self.bert = bert

        def forward(self, input_ids, attention_mask, token_type_ids):
            return self.bert(input_ids=input_ids, attention_mask=attention_mask,
                             token_type_ids=token_type_ids).last_hidden_state

    ids = torch.ones(2, 7, dtype=torch.int64)
    buf = io.BytesIO()
    dyn = {0: "batch", 1: "tokens"}
    with warnings.catch_warnings():  # tracer notes on shape checks that hold for every length here
        warnings.simplefilter("ignore")
        torch.onnx.export(_Hidden(model), (ids, torch.ones_like(ids), torch.zeros_like(ids)), buf,
                          input_names=["input_ids", "attention_mask", "token_type_ids"], output_names=["hidden"],
                          dynamic_axes={"input_ids": dyn, "attention_mask": dyn, "token_type_ids": dyn,
                                        "hidden": {0: "batch", 1: "tokens"}},
                          opset_version=OPSET, dynamo=False)
    return buf.getvalue()


class OnnxMiniLM:
    """Texts -> mean-pooled token states, as MiniLMTextEncoder computes them with transformers."""

    def __init__(self, folder: Path, onnx_file: Path, *, max_length: int, threads: int = 1):
        import onnxruntime as ort
        from tokenizers import Tokenizer

        self.tokenizer = Tokenizer.from_file(str(Path(folder) / "tokenizer.json"))
        self.tokenizer.enable_truncation(max_length=int(max_length))
        pad_id = self.tokenizer.token_to_id("[PAD]")
        self.tokenizer.enable_padding(pad_id=0 if pad_id is None else pad_id, pad_token="[PAD]")
        options = ort.SessionOptions()
        options.intra_op_num_threads = max(int(threads), 1)
        options.inter_op_num_threads = 1
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")  # a shared CPU
        self.session = ort.InferenceSession(str(onnx_file), options, providers=["CPUExecutionProvider"])
        cfg = json.loads((Path(folder) / "config.json").read_text())
        self.dim = int(cfg["hidden_size"])

    def __call__(self, texts: list[str]) -> np.ndarray:
        batch = self.tokenizer.encode_batch(texts)
        ids = np.array([e.ids for e in batch], dtype=np.int64)
        mask = np.array([e.attention_mask for e in batch], dtype=np.int64)
        types = np.array([e.type_ids for e in batch], dtype=np.int64)
        (hidden,) = self.session.run(None, {"input_ids": ids, "attention_mask": mask, "token_type_ids": types})
        m = mask[..., None].astype(hidden.dtype)
        return (hidden * m).sum(1) / np.maximum(m.sum(1), 1e-9)


def is_warm() -> bool:
    """True when the bundled MiniLM's export and the phrasing embeddings are both cached."""
    from ..corpus.emotion_text import all_labelled
    from ..idle_face import phrasings_cache_path
    from .minilm import MiniLMTextEncoder, minilm_model_path

    folder = minilm_model_path()
    key = MiniLMTextEncoder.key_for(folder, MiniLMTextEncoder.max_length_of(folder))
    texts = [t for t, _, _ in all_labelled(split="all")]
    return onnx_path_for(folder).is_file() and phrasings_cache_path(key, texts).is_file()


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
