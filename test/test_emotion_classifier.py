"""The motion emotion classifier behind 'emotion accuracy'."""
import numpy as np
import pytest

from talking_face_ros.metrics.emotion_classifier import (
    DEFAULT_PATH,
    EmotionClassifier,
    accuracy,
    train_emotion_classifier,
)


def test_train_save_load_round_trip(small_corpus, tmp_path):
    clf, report = train_emotion_classifier(small_corpus, epochs=2, progress=False)
    assert set(report) == {"val", "test"} and report["test"]["n"] == 6
    clf.save(tmp_path / "c.safetensors")
    again = EmotionClassifier.load(tmp_path / "c.safetensors")
    seqs = [small_corpus.load(u).blendshapes for u in small_corpus.utterances[:5]]
    e1, k1 = clf.predict_proba(seqs)
    e2, k2 = again.predict_proba(seqs)
    np.testing.assert_allclose(e1, e2, atol=1e-6)
    np.testing.assert_allclose(k1, k2, atol=1e-6)


def test_shipped_classifier_reads_emotion_from_motion(small_corpus):
    clf = EmotionClassifier.load(DEFAULT_PATH)
    us = small_corpus.utterances
    acc = accuracy(clf, [small_corpus.load(u).blendshapes for u in us], [u.emotion for u in us],
                   [u.intensity for u in us])
    assert acc["n"] == 60
    assert acc["emotion"] >= 0.85  # chance is 1/8
    assert acc["intensity"] >= 0.6  # chance is 1/3


def test_a_face_at_rest_is_not_read_as_a_strong_emotion():
    clf = EmotionClassifier.load(DEFAULT_PATH)
    emotion, _ = clf.predict([np.zeros((90, 52), np.float32)])
    assert emotion == ["neutral"]


def test_missing_weights_say_how_to_make_them(tmp_path):
    with pytest.raises(FileNotFoundError, match="emotion-classifier train"):
        EmotionClassifier.load(tmp_path / "none.safetensors")
