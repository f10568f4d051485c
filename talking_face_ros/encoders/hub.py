"""Loading Hugging Face models from a local folder or a hub id, with an error that says what to do.

Robots and CI machines here have no internet: a hub id that is not in the local cache has to
fail fast with a message naming the fix, not after half a minute of retries with a generic
connection error.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable

from .base import hub_offline


def resolve_source(source: str | Path, *, what: str) -> tuple[str, bool]:
    """``(source, is_local_folder)``; a path-like source that does not exist is an error."""
    text = str(source)
    path = Path(text).expanduser()
    if path.is_dir():
        return str(path), True
    path_like = isinstance(source, Path) or text.startswith(("/", ".", "~")) or text.count("/") > 1
    if path_like or path.exists():
        raise ValueError(f"{what}: model folder {text!r} not found (or not a folder)")
    return text, False


def load_pretrained(
    loader: Callable,  # e.g. Wav2Vec2Model.from_pretrained
    source: str | Path,  # local folder or hub id such as "facebook/wav2vec2-base-960h"
    *,
    what: str,  # names the model in error messages
    local_files_only: bool | None = None,  # None: only when HF_HUB_OFFLINE / TRANSFORMERS_OFFLINE is set
    **kwargs,
):
    """``loader(source, ...)``, turning a missing model into a ValueError that says how to get it."""
    source, local = resolve_source(source, what=what)
    if local_files_only is None:
        local_files_only = local or hub_offline()
    if _loads_weights(loader):
        # Weights only from safetensors: a pytorch_model.bin is a pickle, and unpickling runs
        # code from the file.
        kwargs.setdefault("use_safetensors", True)
    try:
        return loader(source, local_files_only=local_files_only, **kwargs)
    except OSError as err:  # transformers reports missing files and unreachable hubs as OSError
        if local:
            raise ValueError(f"{what}: cannot load model folder {source!r}: {err}") from err
        raise ValueError(
            f"{what}: cannot load {source!r}: it is not a local folder and not in the Hugging Face "
            f"cache{' (offline mode)' if local_files_only else ''}. Download it once on a machine with "
            f"internet (`hf download {source}`, or huggingface_hub.snapshot_download('{source}')), "
            "or give the path of a local folder that holds the model (save_pretrained output)."
        ) from err


def _loads_weights(loader: Callable) -> bool:
    """Whether ``loader`` is a model class's ``from_pretrained`` (not a config's or tokenizer's)."""
    from transformers import PreTrainedModel

    owner = getattr(loader, "__self__", None)
    return isinstance(owner, type) and issubclass(owner, PreTrainedModel)
