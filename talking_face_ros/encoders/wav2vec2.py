"""Wav2Vec 2.0 speech features through transformers, for users who have the weights.

No Wav2Vec 2.0 weights ship with this project or can be fetched offline here; the default hub id
(facebook/wav2vec2-base-960h, the speech encoder FaceFormer builds on) works once it is in
the Hugging Face cache or saved to a local folder. The convolutional front end (strides
5,2,2,2,2,2,2, kernels 10,3,3,3,3,2,2 in the base models) gives a frame every 320 samples (20 ms,
50 frames/s) seeing 400 samples; 1 s of audio gives 49 frames.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .base import SpeechEncoder, resolve_torch_device
from .hub import load_pretrained, resolve_source

DTYPES = ("float32", "float16", "bfloat16")


def conv_frame_grid(kernels, strides) -> tuple[int, int]:
    """``(stride, span)`` in samples of a stack of unpadded 1-D convolutions."""
    stride, span = 1, 1
    for k, s in zip(kernels, strides):
        span += (k - 1) * stride
        stride *= s
    return stride, span


class Wav2Vec2Encoder(SpeechEncoder):
    """Hidden states of a Wav2Vec2Model (last layer by default)."""

    def __init__(
        self,
        model: str | Path = "facebook/wav2vec2-base-960h",  # hub id or local folder
        *,
        device: str = "auto",  # "auto" (CUDA if torch sees one), "cpu", "cuda"
        dtype: str = "float32",  # "float32", "float16" (CUDA only), "bfloat16"
        layer: int | None = None,  # None: last_hidden_state; k: hidden_states[k] (0 = before layer 1)
        max_single_pass_s: float = 30.0,  # longer audio is encoded in overlapping windows
        left_context_s: float = 6.0,  # assumed like Moonshine's (global attention too); unmeasured
        right_context_s: float = 6.0,
        crossfade_s: float = 1.0,
        local_files_only: bool | None = None,  # None: only when HF_HUB_OFFLINE is set
    ):
        import torch
        from transformers import Wav2Vec2FeatureExtractor, Wav2Vec2Model

        if dtype not in DTYPES:
            raise ValueError(f"dtype must be one of {DTYPES}, got {dtype!r}")
        self.device = resolve_torch_device(device)
        if dtype == "float16" and self.device == "cpu":
            raise ValueError("dtype 'float16' needs a CUDA device; use 'float32' or 'bfloat16' on CPU")
        self.dtype = getattr(torch, dtype)
        what = "wav2vec2 speech encoder"
        self.model = load_pretrained(
            Wav2Vec2Model.from_pretrained, model, what=what, local_files_only=local_files_only, dtype=self.dtype
        ).to(self.device).eval()
        self.source, local = resolve_source(model, what=what)
        # The feature extractor's settings say whether the model was trained on normalised audio;
        # a folder without preprocessor_config.json gets the library default (normalise).
        if local and not (Path(self.source) / "preprocessor_config.json").is_file():
            extractor = Wav2Vec2FeatureExtractor()
        else:
            extractor = load_pretrained(
                Wav2Vec2FeatureExtractor.from_pretrained, model, what=what, local_files_only=local_files_only
            )
        if extractor.sampling_rate != self.sample_rate:
            raise ValueError(f"{what}: {model} expects {extractor.sampling_rate} Hz audio, not 16 kHz")
        self.normalize = bool(extractor.do_normalize)

        config = self.model.config
        self.frame_stride, self.frame_span = conv_frame_grid(config.conv_kernel, config.conv_stride)
        self.feature_dim = int(config.hidden_size)
        layers = int(config.num_hidden_layers)
        if layer is not None and not -(layers + 1) <= layer <= layers:
            raise ValueError(f"{what}: layer must be in [-{layers + 1}, {layers}] for {layers} layers, got {layer}")
        self.layer = layer
        self.name = f"wav2vec2:{Path(self.source).name}" + ("" if layer is None else f"@{layer}")
        self._set_windows(max_single_pass_s, left_context_s, right_context_s, crossfade_s)

    def _prepare(self, audio: np.ndarray) -> np.ndarray:
        # Normalise once over the whole utterance, as the feature extractor does, so that every
        # window of a long input sees the same gain.
        if not self.normalize:
            return audio
        from transformers import Wav2Vec2FeatureExtractor

        return Wav2Vec2FeatureExtractor.zero_mean_unit_var_norm([audio], attention_mask=None)[0].astype(np.float32)

    def _encode_window(self, audio: np.ndarray) -> np.ndarray:
        import torch

        x = torch.from_numpy(np.ascontiguousarray(audio))[None].to(self.device, self.dtype)
        with torch.inference_mode():
            out = self.model(x, output_hidden_states=self.layer is not None)
        hidden = out.last_hidden_state if self.layer is None else out.hidden_states[self.layer]
        return hidden[0].float().cpu().numpy()
