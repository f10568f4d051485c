"""Shared fixtures: a small corpus generated once per test session."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")

SMALL_CORPUS_UTTERANCES = 60


@pytest.fixture(scope="session")
def small_corpus(tmp_path_factory):
    """60 utterances (48 train / 6 val / 6 test), made by the real generator with 2 workers."""
    from talking_face_ros.corpus.format import Corpus
    from talking_face_ros.corpus.generate import generate_corpus

    root = tmp_path_factory.mktemp("corpus")
    generate_corpus(root, utterances=SMALL_CORPUS_UTTERANCES, seed=7, workers=2, plots=2, progress=False)
    return Corpus(root)


@pytest.fixture(scope="module")
def quick_discovery():
    """The project's Fast DDS profile (config/fastdds_localhost.xml) for this process and the
    processes its tests start: discovery in well under a second instead of stalls of seconds."""
    before = os.environ.get("FASTDDS_DEFAULT_PROFILES_FILE")
    os.environ["FASTDDS_DEFAULT_PROFILES_FILE"] = str(Path(__file__).resolve().parents[1] / "config"
                                                      / "fastdds_localhost.xml")
    yield
    if before is None:
        del os.environ["FASTDDS_DEFAULT_PROFILES_FILE"]
    else:
        os.environ["FASTDDS_DEFAULT_PROFILES_FILE"] = before


@pytest.fixture(scope="module")
def one_torch_thread():
    """One torch thread for a module (use with ``pytest.mark.usefixtures``): small windows on a
    shared 2-core machine, where two OpenMP threads spin-wait on each other."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def encoders():
    """The default bundle's real encoders (Moonshine speech, MiniLM text) on the CPU, one set per module."""
    from talking_face_ros.encoders import build_encoders

    return build_encoders({"speech": {"kind": "moonshine", "device": "cpu"},
                           "text": {"kind": "minilm", "device": "cpu"}})
