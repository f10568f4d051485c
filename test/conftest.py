"""Shared fixtures: a small corpus generated once per test session."""
from __future__ import annotations

import os

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
