"""The generated corpus: format, splits, determinism and the teacher's invariants on real speech."""
import json

import numpy as np
import pytest

from talking_face_ros.arkit import INDEX
from talking_face_ros.corpus.format import Corpus, read_utterance, write_utterance
from talking_face_ros.corpus.generate import generate_corpus
from talking_face_ros.data.sample import frame_count
from talking_face_ros.metrics.lipsync import bilabial_closure_rate
from talking_face_ros.phonemes import PhonemeSegment


def test_manifest_matches_files(small_corpus):
    assert len(small_corpus) == 60
    for u in small_corpus.utterances:
        audio, bs, phonemes = read_utterance(small_corpus.root / u.file)
        assert bs.shape == (u.frames, 52) == (frame_count(u.duration, small_corpus.fps), 52)
        assert abs(len(audio) / small_corpus.sample_rate - u.duration) < 1e-4
        assert phonemes[0].start == 0 and abs(phonemes[-1].end - u.duration) < 1e-3
        assert 0.0 <= bs.min() and bs.max() <= 1.0
    assert sorted(p.name for p in (small_corpus.root / "utterances").iterdir()) == sorted(
        u.file.split("/")[1] for u in small_corpus.utterances)


def test_splits_never_share_voices_or_sentences(small_corpus):
    by = {s: small_corpus.split(s) for s in ("train", "val", "test")}
    assert [len(by[s]) for s in ("train", "val", "test")] == [48, 6, 6]
    for a, b in [("train", "val"), ("train", "test"), ("val", "test")]:
        assert not {u.voice_id for u in by[a]} & {u.voice_id for u in by[b]}
        assert not {u.sentence_id for u in by[a]} & {u.sentence_id for u in by[b]}
    assert {u.text_split for u in by["train"]} == {"seen"}
    assert {u.text_split for u in by["test"]} == {"seen", "heldout"}


def test_voice_splits_in_manifest(small_corpus):
    voices = small_corpus.voices()
    assert len(voices) >= 24
    for u in small_corpus.utterances:
        assert next(v for v in voices if v["voice_id"] == u.voice_id)["split"] == u.split


def test_generation_is_deterministic_whatever_the_workers(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    generate_corpus(a, utterances=5, seed=3, workers=1, plots=0, progress=False)
    generate_corpus(b, utterances=5, seed=3, workers=2, plots=0, progress=False)
    ma, mb = (json.loads((d / "manifest.json").read_text()) for d in (a, b))
    assert ma["utterances"] == mb["utterances"]
    for u in ma["utterances"]:
        xa, xb = read_utterance(a / u["file"]), read_utterance(b / u["file"])
        assert np.array_equal(xa[0], xb[0]) and np.array_equal(xa[1], xb[1]) and xa[2] == xb[2]
    c = tmp_path / "c"
    generate_corpus(c, utterances=5, seed=4, workers=1, plots=0, progress=False)
    mc = json.loads((c / "manifest.json").read_text())
    assert [u["id"] for u in mc["utterances"]] != [u["id"] for u in ma["utterances"]]


def test_refuses_to_overwrite_without_force(tmp_path, small_corpus):
    with pytest.raises(ValueError, match="already holds a corpus"):
        generate_corpus(small_corpus.root, utterances=1, plots=0, progress=False)


def test_lips_close_on_every_bilabial(small_corpus):
    closed = total = 0
    for u in small_corpus.utterances:
        s = small_corpus.load(u)
        r = bilabial_closure_rate(s.blendshapes, s.fps, s.phonemes)
        closed, total = closed + r.closed, total + r.total
    assert total > 50
    assert closed == total


def test_emotion_layer_is_on_the_face(small_corpus):
    def mean_of(emotion, names):
        us = [u for u in small_corpus.utterances if u.emotion == emotion]
        return np.mean([small_corpus.load(u).blendshapes[:, [INDEX[n] for n in names]].mean() for u in us])

    smile = ["mouthSmileLeft", "mouthSmileRight"]
    assert mean_of("happy", smile) > mean_of("neutral", smile) + 0.1
    assert mean_of("surprised", ["browOuterUpLeft", "browOuterUpRight"]) > mean_of("neutral", ["browOuterUpLeft"]) + 0.1
    assert mean_of("angry", ["browDownLeft", "browDownRight"]) > mean_of("neutral", ["browDownLeft"]) + 0.1
    assert mean_of("disgusted", ["noseSneerLeft", "noseSneerRight"]) > mean_of("neutral", ["noseSneerLeft"]) + 0.05


def test_plots_written(small_corpus):
    pngs = list((small_corpus.root / "plots").glob("*.png"))
    assert len(pngs) == 2 and all(p.stat().st_size > 10_000 for p in pngs)


def test_utterance_file_round_trip_and_bad_files(tmp_path):
    path = tmp_path / "u.npz"
    bs = np.random.default_rng(0).random((4, 52)).astype(np.float32)
    ph = [PhonemeSegment("SIL", 0, 0.05), PhonemeSegment("M", 0.05, 0.1)]
    write_utterance(path, audio=np.linspace(-1, 1, 1600), blendshapes=bs, phonemes=ph)
    audio, bs2, ph2 = read_utterance(path)
    assert np.array_equal(bs, bs2) and ph2 == ph and abs(audio[0] + 1) < 1e-4
    truncated = tmp_path / "t.npz"
    truncated.write_bytes(path.read_bytes()[:200])
    with pytest.raises(ValueError, match="t.npz"):
        read_utterance(truncated)
    np.savez(tmp_path / "m.npz", audio=np.zeros(3, np.int16))
    with pytest.raises(ValueError, match="missing field"):
        read_utterance(tmp_path / "m.npz")
    with pytest.raises(FileNotFoundError, match="no corpus manifest"):
        Corpus(tmp_path)
    (tmp_path / "manifest.json").write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        Corpus(tmp_path)


def test_cli_info(small_corpus, capsys):
    from talking_face_ros.cli import main

    assert main(["corpus", "info", str(small_corpus.root), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["utterances"] == 60 and info["splits"]["test"]["utterances"] == 6
    assert main(["corpus", "info", "/nonexistent/corpus"]) == 2
