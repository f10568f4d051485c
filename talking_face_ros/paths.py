"""Where the project finds things that are not inside the package."""
from __future__ import annotations

import os
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
REPO_DIR = PACKAGE_DIR.parent  # meaningful in a source checkout only
ASSETS_DIR = PACKAGE_DIR / "assets"  # small files shipped with the package (checkpoints, ...)
DEFAULT_MODEL_DIR = ASSETS_DIR / "default_model"  # the shipped model bundle (Moonshine + MiniLM)
# The shipped low-latency bundle (causal speech encoder, causal model): what the node runs by default.
LIVE_MODEL_DIR = ASSETS_DIR / "low_latency_model"


def node_default_model() -> Path:
    """The bundle ``talking_face_node`` loads when parameter ``model`` is empty: the low-latency
    model when it is installed, else the default model."""
    return LIVE_MODEL_DIR if (LIVE_MODEL_DIR / "bundle.json").is_file() else DEFAULT_MODEL_DIR


def ict_rig_path() -> Path | None:
    """The packed ICT-FaceKit rig (``ict_facekit_arkit.npz``), or None when absent.

    ``TALKING_FACE_ICT`` names it explicitly; otherwise the shared data folder next to a source
    checkout is used. The rig is third-party data and never ships inside this package.
    """
    env = os.environ.get("TALKING_FACE_ICT")
    candidates = [Path(env)] if env else []
    candidates.append(REPO_DIR.parent / "shared" / "data" / "ict_facekit" / "ict_facekit_arkit.npz")
    for path in candidates:
        if path.is_file():
            return path
    return None
