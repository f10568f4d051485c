"""The corpus text: sentences (what is said) and emotion descriptions (how it is said)."""
import contextlib
import io
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse

from talking_face_ros.corpus import emotion_text as et
from talking_face_ros.corpus import sentences as cs
from talking_face_ros.emotions import EMOTIONS, INTENSITIES

ROOT = Path(__file__).resolve().parents[1]


def _key(text: str) -> str:
    return " ".join(re.sub(r"[^a-z0-9]+", " ", text.lower()).split())


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z]+", text.lower())


# --- sentences ----------------------------------------------------------------------------------

def test_enough_distinct_sentences():
    sentences = cs.all_sentences()
    assert sentences == cs.SENTENCES
    assert len(sentences) >= 1000
    assert len(set(sentences)) == len(sentences)
    assert len({_key(s) for s in sentences}) == len(sentences)  # not just punctuation apart


def test_sentences_are_clean_speakable_lengths():
    for s in cs.SENTENCES:
        assert 4 <= len(s.split()) <= 16, s
        assert s[0].isupper() and s[-1] in ".?!", s
        # numbers are spelled out; no template debris or stray spaces
        assert not re.search(r"[0-9{}|_]|\s\s|\s[,.?!]", s), s


def test_punctuation_and_phonetic_variety():
    n = len(cs.SENTENCES)

    def share(pattern):
        return sum(bool(re.search(pattern, s.lower())) for s in cs.SENTENCES) / n

    assert share(r"\?$") >= 0.15
    assert share(r"!$") >= 0.03
    assert share(",") >= 0.2
    assert share(r"[pbm]") >= 0.6  # bilabials: the lips must close
    assert share(r"[fv]") >= 0.4  # labiodentals
    assert share(r"oo|ou|ow|oa") >= 0.4  # rounded vowels
    assert share(r"\b(one|two|three|four|five|six|seven|eight|nine|ten|twenty|hundred)\b") >= 0.1


def test_splits_are_disjoint_cover_everything_and_roughly_80_10_10():
    parts = {split: cs.sentences_in(split) for split in cs.SPLITS}
    indices = [i for rows in parts.values() for i, _ in rows]
    assert sorted(indices) == list(range(len(cs.SENTENCES)))
    for split, rows in parts.items():
        assert all(cs.SENTENCES[i] == s and cs.sentence_split(i) == split for i, s in rows)
    n = len(cs.SENTENCES)
    assert 0.75 <= len(parts["train"]) / n <= 0.85
    assert 0.06 <= len(parts["val"]) / n <= 0.14
    assert 0.06 <= len(parts["test"]) / n <= 0.14
    train_keys = {_key(s) for _, s in parts["train"]}
    assert not any(_key(s) in train_keys for _, s in parts["test"] + parts["val"])


def test_split_depends_on_the_words_not_the_position():
    s = cs.SENTENCES[17]
    assert cs.split_of_text(s) == cs.split_of_text(s.upper().replace(",", ""))
    assert cs.sentence_split(17) == cs.split_of_text(s)


def test_bad_index_and_split_name_are_rejected():
    with pytest.raises(ValueError, match="out of range"):
        cs.sentence_split(len(cs.SENTENCES))
    with pytest.raises(ValueError, match="unknown split"):
        cs.sentences_in("training")


# --- emotion text --------------------------------------------------------------------------------

def test_every_class_has_many_phrasings_and_a_quarter_held_out():
    for emotion in EMOTIONS:
        for level in INTENSITIES:
            every = et.phrasings(emotion, level, split="all")
            seen = et.phrasings(emotion, level, split="seen")
            held = et.phrasings(emotion, level, split="heldout")
            assert len(every) >= 12 and len(set(every)) == len(every)
            assert sorted(seen + held) == sorted(every) and not set(seen) & set(held)
            assert len(held) / len(every) >= 0.25, (emotion, level)
            assert len(seen) >= 9
    # neutral has no expression layer at any level: one set of phrasings for all three
    assert et.phrasings("neutral", 1) == et.phrasings("neutral", 3)


def test_each_phrasing_names_exactly_one_class():
    labelled = et.all_labelled()
    assert len({_key(t) for t, _, _ in labelled}) == len(labelled)
    for text, emotion, level in labelled:
        assert et.lookup(text) == (emotion, level)
        assert et.lookup("  " + text.upper() + ". ") == (emotion, level)
        assert et.phrasing_split(text) == ("heldout" if text in et.phrasings(
            emotion, level, split="heldout") else "seen")
    assert et.lookup("purple with green spots") is None
    with pytest.raises(ValueError, match="not one of"):
        et.phrasing_split("purple with green spots")


def test_intensity_is_readable_from_the_words():
    """Weak phrasings soften, strong ones intensify, medium ones do neither; neutral has no cue."""
    for text, emotion, level in et.all_labelled():
        words = set(_words(text))
        cues = {lv: bool(words & et.INTENSITY_CUES[lv]) for lv in INTENSITIES}
        if emotion == "neutral":
            assert not any(cues.values()), text
        elif level == 1:
            assert cues[1] and not cues[2] and not cues[3], text
        elif level == 2:
            assert not cues[1] and not cues[3], text
        else:
            assert cues[3] and not cues[1] and not cues[2], text


def test_demo_prompts_are_seen_phrasings_of_their_class():
    assert set(et.EMOTION_PROMPTS) == {(e, i) for e in EMOTIONS for i in INTENSITIES}
    for (emotion, level), prompt in et.EMOTION_PROMPTS.items():
        assert prompt in et.phrasings(emotion, level, split="seen")
        assert len(prompt.split()) <= 3
    assert et.EMOTION_PROMPTS[("angry", 3)] == "furious"
    assert et.lookup("furious") == ("angry", 3)
    assert et.lookup("slightly happy") == ("happy", 1)
    assert et.lookup("neutral") == ("neutral", 1)


def test_describe_draws_only_from_the_requested_split():
    rng = np.random.default_rng(0)
    for split in ("seen", "heldout"):
        pool = et.phrasings("sad", 3, split=split)
        drawn = {et.describe("sad", 3, rng, split=split) for _ in range(400)}
        assert drawn == set(pool)  # all of them, and nothing else
    a = [et.describe("happy", 1, np.random.default_rng(5)) for _ in range(3)]
    assert len(set(a)) == 1  # same seed, same text


def test_bad_emotion_level_or_split_is_rejected():
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="unknown emotion"):
        et.describe("bored", 1, rng)
    with pytest.raises(ValueError, match="intensity"):
        et.phrasings("happy", 4)
    with pytest.raises(ValueError, match="unknown phrasing split"):
        et.phrasings("happy", 1, split="test")


def _bag_of_words(rows, vocab):
    index = {w: i for i, w in enumerate(vocab)}
    x = np.zeros((len(rows), len(vocab)))
    for r, text in enumerate(rows):
        for w in _words(text):
            if w in index:
                x[r, index[w]] = 1.0
    return x


def _softmax_regression(x, y, n_classes, *, steps=1000, lr=1.0, l2=1e-3):
    """Plain gradient descent on a sparse design matrix: a few words per row, so no dense BLAS
    (whose threads only spin against other work on a busy machine)."""
    x = scipy.sparse.csr_matrix(x)
    xt = x.T.tocsr()
    w = np.zeros((x.shape[1], n_classes))
    b = np.zeros(n_classes)
    target = np.eye(n_classes)[y]
    for _ in range(steps):
        z = x @ w + b
        p = np.exp(np.maximum(z - z.max(axis=1, keepdims=True), -30.0))  # no slow subnormals
        p /= p.sum(axis=1, keepdims=True)
        g = (p - target) / len(y)
        w -= lr * (xt @ g + l2 * w)
        b -= lr * g.sum(axis=0)
    return w, b


def test_heldout_phrasings_are_learnable_paraphrases():
    """A plain bag-of-words classifier trained on the seen phrasings recognises the held-out ones
    (emotion and intensity, each >= 85 %, the project's target for the text encoder): they are
    paraphrases in the class's vocabulary, not strangers. Measured: 96 % and 96 %."""
    seen, held = et.all_labelled(split="seen"), et.all_labelled(split="heldout")
    vocab = sorted({w for t, _, _ in seen for w in _words(t)})
    x_seen = _bag_of_words([t for t, _, _ in seen], vocab)
    x_held = _bag_of_words([t for t, _, _ in held], vocab)
    for label in (lambda e, lv: EMOTIONS.index(e), lambda e, lv: 0 if e == "neutral" else lv):
        y_seen = np.array([label(e, lv) for _, e, lv in seen])
        y_held = np.array([label(e, lv) for _, e, lv in held])
        w, b = _softmax_regression(x_seen, y_seen, int(y_seen.max()) + 1)
        assert np.mean(np.argmax(x_seen @ w + b, axis=1) == y_seen) > 0.99
        assert np.mean(np.argmax(x_held @ w + b, axis=1) == y_held) >= 0.85


# --- determinism ---------------------------------------------------------------------------------

# Run here and in fresh interpreters: prints one hash of all text, splits and held-out choices.
_FINGERPRINT = """
import hashlib, json
from talking_face_ros.corpus import emotion_text, sentences
payload = {
    "sentences": list(sentences.SENTENCES),
    "splits": [sentences.sentence_split(i) for i in range(len(sentences.SENTENCES))],
    "heldout": [t for t, _, _ in emotion_text.all_labelled(split="heldout")],
}
print(hashlib.sha256(json.dumps(payload).encode()).hexdigest())
"""


def test_text_and_splits_do_not_depend_on_the_hash_seed():
    here = io.StringIO()
    with contextlib.redirect_stdout(here):
        exec(_FINGERPRINT, {})
    for seed in ("0", "4242"):
        env = dict(os.environ, PYTHONHASHSEED=seed, PYTHONPATH=str(ROOT))
        there = subprocess.run([sys.executable, "-c", _FINGERPRINT], cwd=ROOT, env=env,
                               check=True, capture_output=True, text=True).stdout
        assert there == here.getvalue(), f"corpus text changed under PYTHONHASHSEED={seed}"
