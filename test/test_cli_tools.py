"""The user-facing commands that sit on the corpus pieces: say, lipsync, render, corpus vertices."""
import json
import shutil

import numpy as np
import pytest

from talking_face_ros import paths
from talking_face_ros.cli import main
from talking_face_ros.frames_io import load_frames


@pytest.fixture(scope="module")
def said(tmp_path_factory):
    out = tmp_path_factory.mktemp("say")
    assert main(["say", "Bob may buy a maple pie.", "--emotion", "happy", "--intensity", "3", "--out", str(out)]) == 0
    return out


def test_say_writes_speech_frames_and_phonemes(said):
    times, weights, _ = load_frames(said / "frames.csv")
    assert weights.shape[1] == 52 and len(times) == len(weights) > 30
    np.testing.assert_allclose(np.diff(times), 1 / 30, atol=1e-5)
    phones = [p["phone"] for p in json.loads((said / "phonemes.json").read_text())]
    assert {"B", "M", "P"} <= set(phones)
    smile = weights[:, [43, 44]].mean()  # mouthSmileLeft/Right
    assert smile > 0.2


def test_say_rejects_unknown_emotion_and_voice(tmp_path, capsys):
    assert main(["say", "Hi.", "--emotion", "bored", "--out", str(tmp_path)]) == 2
    assert "unknown emotion" in capsys.readouterr().err
    assert main(["say", "Hi.", "--voice", "nobody", "--out", str(tmp_path)]) == 2
    assert "unknown voice" in capsys.readouterr().err


def test_lipsync_scores_the_teacher(said, capsys):
    assert main(["lipsync", str(said / "frames.csv"), "--audio", str(said / "speech.wav"),
                 "--phonemes", str(said / "phonemes.json"), "--json"]) == 0
    r = json.loads(capsys.readouterr().out)
    assert r["bilabial_closure"] == 1.0 and r["bilabials"] >= 4
    assert abs(r["lag_frames"]) <= 1


def test_lipsync_with_forced_alignment(said, capsys):
    assert main(["lipsync", str(said / "frames.csv"), "--audio", str(said / "speech.wav"),
                 "--transcript", "Bob may buy a maple pie.", "--json"]) == 0
    r = json.loads(capsys.readouterr().out)
    assert r["bilabials"] >= 4 and r["bilabial_closure"] >= 0.5


@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="ffmpeg not installed")
def test_render_command(said, tmp_path):
    out = tmp_path / "face.mp4"
    assert main(["render", str(said / "frames.csv"), "--audio", str(said / "speech.wav"), "--out", str(out),
                 "--size", "128", "--ssaa", "1"]) == 0
    assert out.stat().st_size > 1000 and (tmp_path / "face_sheet.png").is_file()


def test_corpus_vertices_round_trip_through_the_vertex_adapter(small_corpus, tmp_path):
    if paths.ict_rig_path() is None:
        pytest.skip("ICT-FaceKit rig not available")
    from talking_face_ros.data.vertex_sequences import load_vertex_sequence
    from talking_face_ros.rig.ict import load_packed_ict

    out = tmp_path / "verts"
    assert main(["corpus", "vertices", str(small_corpus.root), "--out", str(out), "--limit", "2"]) == 0
    files = sorted((out / "vertices_npy").glob("*.npy"))
    assert len(files) == 2
    u = small_corpus.get(files[0].stem)
    s = load_vertex_sequence(files[0], template=out / "template.npy", source_fps=30.0)
    rig = load_packed_ict(paths.ict_rig_path())
    expected = rig.mesh(small_corpus.load(u).blendshapes)
    assert s.vertices.shape == expected.shape
    np.testing.assert_allclose(s.vertices, expected, atol=1e-4)
