"""The networks: hierarchical motion VQ-VAE, non-autoregressive code predictor, regression baseline.

Typical use (training loops live elsewhere; every ``forward`` returns a dict with ``loss``)::

    vq = HierarchicalMotionVQVAE(VQVAEConfig(num_speakers=n))   # stage 1: motion -> codes -> motion
    predictor = CodePredictor(PredictorConfig(num_speakers=n), vq)  # stage 2: speech -> codes (vq frozen)
    weights = predictor.predict(speech_feats, text_emb, identity)  # (T, 52) in [0, 1]
    save_model(predictor, "model.safetensors"); predictor = load_model("model.safetensors")

All networks are temporally local; ``apply_in_windows`` runs them over long input in windows with
the same result as one pass (``receptive_field``, ``align`` give the margins).
"""
from .baselines import RegressionBaseline
from .checkpoint import load_model, save_model
from .config import PredictorConfig, RegressionConfig, VQVAEConfig
from .layers import Reach, apply_in_windows
from .motion_vqvae import HierarchicalMotionVQVAE
from .predictor import CodePredictor
from .quantizer import Quantized, VectorQuantizerEMA

__all__ = [
    "CodePredictor", "HierarchicalMotionVQVAE", "PredictorConfig", "Quantized", "Reach",
    "RegressionBaseline", "RegressionConfig", "VQVAEConfig", "VectorQuantizerEMA", "apply_in_windows",
    "load_model", "save_model",
]
