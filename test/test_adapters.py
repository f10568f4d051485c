"""Loaders for Live Link Face CSV, EmoTalk 3D-ETF and VOCASET/BIWI vertex sequences."""
from __future__ import annotations

import numpy as np
import pytest
from adapter_fixtures import (
    APP_BLENDSHAPES, APP_HEADER, BIWI_VERTICES, VOCASET_VERTICES, column_values,
    linear_vertex_motion, write_livelink, write_obj, write_ply, write_wav,
)

from talking_face_ros.arkit import ARKIT_NAMES, INDEX
from talking_face_ros.data import FormatError, LoadError, load_dataset
from talking_face_ros.data.datasets import detect_format, read_array, read_wav
from talking_face_ros.data.etf3d import load_etf3d, parse_ravdess_name
from talking_face_ros.data.livelink import (
    HEADER, LIVELINK_ORDER, load_livelink, read_livelink_csv, write_livelink_csv,
)
from talking_face_ros.data.vertex_sequences import (
    load_vertex_sequence, parse_sequence_name, read_template,
)


def arkit_name(app_name: str) -> str:
    return app_name[0].lower() + app_name[1:]


def ramp_take(tmp_path, rows=120, fps=60, stem="take"):
    """A take whose jawOpen column is row / 200 and the rest k / 100, with a matching WAV."""
    values = column_values(rows)
    values[:, APP_BLENDSHAPES.index("JawOpen")] = np.arange(rows) / 200.0
    csv = write_livelink(tmp_path / f"{stem}.csv", values, fps=fps)
    write_wav(tmp_path / f"{stem}.wav", rows / fps)
    return csv, values


# ---------------------------------------------------------------- Live Link Face


def test_livelink_order_is_the_apps_header_and_covers_arkit():
    assert list(HEADER) == APP_HEADER.split(",")
    assert sorted(arkit_name(n) for n in LIVELINK_ORDER) == sorted(ARKIT_NAMES)
    # The app lists JawRight before JawLeft (unlike Unreal's enum); the order is not alphabetical.
    assert LIVELINK_ORDER.index("JawRight") == 15 and LIVELINK_ORDER.index("JawLeft") == 16


def test_livelink_column_k_lands_on_its_arkit_index(tmp_path):
    csv = write_livelink(tmp_path / "take.csv", column_values(90), fps=60)
    write_wav(tmp_path / "take.wav", 1.5)
    sample = load_livelink(csv, fps=60.0)
    assert sample.blendshapes.shape == (90, 52)
    for k, name in enumerate(APP_BLENDSHAPES):
        column = sample.blendshapes[:, INDEX[arkit_name(name)]]
        np.testing.assert_allclose(column, k / 100, atol=1e-7)
    # Spot checks by hand: app column 17 is JawOpen (ARKit index 24), 15 is JawRight (25).
    assert sample.blendshapes[0, 24] == pytest.approx(0.17)
    assert sample.blendshapes[0, 25] == pytest.approx(0.15)
    assert sample.meta["rotation_names"][0] == "HeadYaw"
    np.testing.assert_allclose(sample.meta["rotations"][5], 1.0 + np.arange(9) / 10, atol=1e-6)
    assert sample.meta["capture_fps"] == 60.0 and sample.meta["timecode_fps"] == 60.0
    assert sample.meta["start_timecode"] == "12:34:56:00.000"


def test_livelink_60_to_30_halves_frames_and_keeps_shared_instants(tmp_path):
    csv, values = ramp_take(tmp_path, rows=120, fps=60)
    sample = load_livelink(csv, fps=30.0)
    assert sample.frames == 60
    jaw = sample.blendshapes[:, INDEX["jawOpen"]]
    np.testing.assert_allclose(jaw, np.arange(0, 120, 2) / 200.0, atol=1e-7)
    assert sample.sample_rate == 16000 and sample.duration == pytest.approx(2.0)


def test_livelink_rate_detected_from_a_30fps_take(tmp_path):
    csv, values = ramp_take(tmp_path, rows=45, fps=30)
    take = read_livelink_csv(csv)
    assert take.timecode_fps == 30.0 and take.capture_fps == 30.0
    np.testing.assert_allclose(take.times, np.arange(45) / 30.0, atol=1e-9)
    sample = load_livelink(csv, fps=30.0)
    np.testing.assert_allclose(sample.blendshapes[:, INDEX["jawOpen"]], np.arange(45) / 200.0,
                               atol=1e-7)


def test_livelink_fractional_subframes_give_true_times(tmp_path):
    # 59.94 fps rows counted on a 60 fps timecode: each row is 1.001 timecode frames on.
    rows = 150
    csv = write_livelink(tmp_path / "ntsc.csv", column_values(rows), fps=60,
                         frames=np.arange(rows) * 1.001)
    take = read_livelink_csv(csv)
    assert take.timecode_fps == 60.0
    assert take.capture_fps == pytest.approx(59.94, abs=1e-3)
    np.testing.assert_allclose(take.times, np.arange(rows) * 1.001 / 60, atol=1e-6)


def test_livelink_dropped_row_is_interpolated(tmp_path):
    values = column_values(80)
    values[:, APP_BLENDSHAPES.index("JawOpen")] = np.arange(80) / 100.0
    keep = np.arange(80) != 10
    csv = write_livelink(tmp_path / "drop.csv", values[keep], fps=60, frames=np.arange(80)[keep])
    write_wav(tmp_path / "drop.wav", 80 / 60)
    sample = load_livelink(csv, fps=60.0)
    assert sample.frames == 80
    assert sample.blendshapes[10, INDEX["jawOpen"]] == pytest.approx(0.10, abs=1e-6)


def test_livelink_audio_offset_pads_or_cuts_the_audio(tmp_path):
    csv, _ = ramp_take(tmp_path, rows=120, fps=60)
    signal = write_wav(tmp_path / "take.wav", 1.75)
    later = load_livelink(csv, audio_offset=0.25)  # audio starts a quarter second in
    assert later.duration == pytest.approx(2.0)
    assert np.all(later.audio[:4000] == 0)
    np.testing.assert_allclose(later.audio[4000:], signal, atol=1e-6)
    earlier = load_livelink(tmp_path / "take.csv", wav_path=tmp_path / "take.wav",
                            audio_offset=-0.1, max_duration_mismatch=0.5)
    np.testing.assert_allclose(earlier.audio, signal[1600:], atol=1e-6)


def test_livelink_stereo_audio_is_downmixed_and_resampled(tmp_path):
    csv, _ = ramp_take(tmp_path, rows=120, fps=60)
    write_wav(tmp_path / "take.wav", 2.0, rate=48000, channels=2)
    sample = load_livelink(csv, sample_rate=16000)
    assert sample.sample_rate == 16000 and sample.audio.shape == (32000,)
    # A 220 Hz tone at amplitude 0.5 keeps its RMS (0.5 / sqrt 2) through soxr.
    rms = np.sqrt(np.mean(sample.audio[1000:-1000] ** 2))
    assert rms == pytest.approx(0.5 / np.sqrt(2), rel=1e-3)


def test_livelink_writer_round_trip(tmp_path):
    rng = np.random.default_rng(3)
    weights = rng.uniform(0, 1, size=(50, 52)).astype(np.float32)
    rotations = rng.uniform(-0.5, 0.5, size=(50, 9)).astype(np.float32)
    path = write_livelink_csv(tmp_path / "out.csv", weights, 30.0, rotations=rotations,
                              start_timecode="23:59:59:10")
    assert path.read_text().splitlines()[0] == APP_HEADER
    assert path.read_text().splitlines()[1].startswith("23:59:59:10.000,61,")
    take = read_livelink_csv(path)  # crosses midnight on its way
    assert take.timecode_fps == 30.0
    np.testing.assert_allclose(take.times, np.arange(50) / 30.0, atol=1e-9)
    np.testing.assert_allclose(take.weights, weights, atol=1e-8)
    np.testing.assert_allclose(take.rotations, rotations, atol=1e-8)
    write_wav(tmp_path / "out.wav", 50 / 30)
    sample = load_livelink(path, fps=30.0)
    np.testing.assert_allclose(sample.blendshapes, weights, atol=1e-7)


def test_livelink_writer_fractional_rate_keeps_true_times(tmp_path):
    weights = np.full((60, 52), 0.25, dtype=np.float32)
    path = write_livelink_csv(tmp_path / "ntsc.csv", weights, 29.97)
    take = read_livelink_csv(path)
    assert take.timecode_fps == 30.0 and take.capture_fps == pytest.approx(29.97, abs=1e-3)
    np.testing.assert_allclose(take.times, np.arange(60) / 29.97, atol=2e-5)


def test_livelink_writer_rejects_bad_input(tmp_path):
    with pytest.raises(ValueError, match="52"):
        write_livelink_csv(tmp_path / "x.csv", np.zeros((3, 51)), 30.0)
    with pytest.raises(ValueError, match="finite"):
        write_livelink_csv(tmp_path / "x.csv", np.full((3, 52), np.nan), 30.0)


def _lines(path):
    return path.read_text().splitlines()


def test_livelink_truncated_line_names_its_line(tmp_path):
    csv, _ = ramp_take(tmp_path)
    lines = _lines(csv)
    lines[3] = lines[3][: len(lines[3]) // 2]
    csv.write_text("\n".join(lines) + "\n")
    with pytest.raises(FormatError) as err:
        load_livelink(csv)
    assert err.value.line_or_field == "line 4"
    assert "truncated" in err.value.message


def test_livelink_extra_field_is_a_wrong_column_count(tmp_path):
    csv, _ = ramp_take(tmp_path)
    lines = _lines(csv)
    lines[6] += ",0.5"
    csv.write_text("\n".join(lines) + "\n")
    with pytest.raises(FormatError, match="64 fields where the header has 63") as err:
        read_livelink_csv(csv)
    assert err.value.line_or_field == "line 7"


def test_livelink_non_numeric_value_names_line_and_column(tmp_path):
    csv, _ = ramp_take(tmp_path)
    lines = _lines(csv)
    cells = lines[4].split(",")
    cells[19] = "abc"  # column 20 = JawOpen (Timecode, BlendShapeCount, then app index 17)
    lines[4] = ",".join(cells)
    csv.write_text("\n".join(lines) + "\n")
    with pytest.raises(FormatError, match="'abc' is not a number") as err:
        read_livelink_csv(csv)
    assert err.value.line_or_field == "line 5, column 20 (JawOpen)"


@pytest.mark.parametrize("bad", ["nan", "inf", "-inf"])
def test_livelink_non_finite_value_names_line_and_column(tmp_path, bad):
    csv, _ = ramp_take(tmp_path)
    lines = _lines(csv)
    cells = lines[2].split(",")
    cells[2] = bad
    lines[2] = ",".join(cells)
    csv.write_text("\n".join(lines) + "\n")
    with pytest.raises(FormatError, match="non-finite") as err:
        read_livelink_csv(csv)
    assert err.value.line_or_field == "line 3, column 3 (EyeBlinkLeft)"


def test_livelink_unknown_and_missing_header_columns(tmp_path):
    values = column_values(70)
    write_livelink(tmp_path / "a.csv", values, header=APP_HEADER.replace("CheekPuff", "CheekPuf"))
    with pytest.raises(FormatError, match="unknown column") as err:
        read_livelink_csv(tmp_path / "a.csv")
    assert err.value.line_or_field == "line 1, column 49 (CheekPuf)"
    no_blink = APP_HEADER.replace("EyeBlinkLeft,", "")
    write_livelink(tmp_path / "b.csv", values[:, 1:], header=no_blink)
    with pytest.raises(FormatError, match="missing blendshape columns: eyeBlinkLeft"):
        read_livelink_csv(tmp_path / "b.csv")
    write_livelink(tmp_path / "c.csv", values, header=APP_HEADER.replace("Timecode", "Time"))
    with pytest.raises(FormatError, match="not a Live Link Face header"):
        read_livelink_csv(tmp_path / "c.csv")


def test_livelink_bad_and_backwards_timecodes(tmp_path):
    csv, _ = ramp_take(tmp_path)
    lines = _lines(csv)
    lines[8] = "12:34:xx:07.000" + lines[8][15:]
    csv.write_text("\n".join(lines) + "\n")
    with pytest.raises(FormatError, match="not a HH:MM:SS:FF timecode") as err:
        read_livelink_csv(csv)
    assert err.value.line_or_field == "line 9, column 1 (Timecode)"
    lines = _lines(ramp_take(tmp_path)[0])
    lines[8], lines[9] = lines[9], lines[8]
    csv.write_text("\n".join(lines) + "\n")
    with pytest.raises(FormatError, match="does not come after") as err:
        read_livelink_csv(csv)
    assert err.value.line_or_field == "line 10, column 1 (Timecode)"


def test_livelink_missing_wav_and_duration_mismatch(tmp_path):
    csv, _ = ramp_take(tmp_path)
    (tmp_path / "take.wav").unlink()
    with pytest.raises(FormatError, match="missing WAV") as err:
        load_livelink(csv)
    assert err.value.line_or_field == "audio"
    write_wav(tmp_path / "take.wav", 1.5)  # the take lasts 2 s
    with pytest.raises(FormatError, match="2.000 s but the audio lasts 1.500 s") as err:
        load_livelink(csv)
    assert err.value.line_or_field == "frame count"
    write_wav(tmp_path / "take.wav", 1.9)  # within the 0.25 s tolerance: motion fits the audio
    sample = load_livelink(csv)
    assert sample.frames == 57 and sample.meta["duration_mismatch"] == pytest.approx(0.1)


# ---------------------------------------------------------------- EmoTalk 3D-ETF


def etf3d_tree(root, names, frames=45, fps=30.0):
    """RAVDESS/blendshape/*.npy with column c = c / 100 + frame / 1000, and RAVDESS/audio/*.wav."""
    for name in names:
        weights = np.arange(52) / 100.0 + np.arange(frames)[:, None] / 1000.0
        (root / "RAVDESS" / "blendshape").mkdir(parents=True, exist_ok=True)
        np.save(root / "RAVDESS" / "blendshape" / f"{name}.npy", weights.astype(np.float32))
        write_wav(root / "RAVDESS" / "audio" / f"{name}.wav", frames / fps)
    return root


def test_ravdess_names():
    label = parse_ravdess_name("01-01-05-02-01-02-12")
    assert (label.emotion, label.mead_emotion, label.intensity, label.mead_intensity) == (
        "angry", "angry", 2, 3)
    assert (label.statement, label.repetition, label.actor) == (1, 2, 12)
    calm = parse_ravdess_name("02-01-02-01-02-01-07")
    assert (calm.mead_emotion, calm.mead_intensity) == ("neutral", 1)
    assert parse_ravdess_name("01-01-07-01-01-01-03").mead_emotion == "disgusted"
    assert parse_ravdess_name("WDA_BarackObama_000") is None
    with pytest.raises(FormatError, match="emotion 09"):
        parse_ravdess_name("01-01-09-01-01-01-01")
    with pytest.raises(FormatError, match="intensity 02"):
        parse_ravdess_name("01-01-01-02-01-01-01")  # neutral has no strong intensity


def test_etf3d_columns_are_arkit_order_and_labelled(tmp_path):
    etf3d_tree(tmp_path, ["01-01-03-02-02-01-08"])
    sample = load_etf3d(tmp_path / "RAVDESS" / "blendshape" / "01-01-03-02-02-01-08.npy")
    assert sample.frames == 45 and sample.fps == 30.0
    np.testing.assert_allclose(sample.blendshapes[0], np.arange(52) / 100.0, atol=1e-7)
    assert sample.blendshapes[10, INDEX["jawOpen"]] == pytest.approx(0.24 + 0.010)
    assert (sample.emotion, sample.intensity, sample.emotion_text) == ("happy", 3, "very happy")
    assert sample.speaker == "ravdess_actor08"
    assert sample.sentence == "Dogs are sitting by the door"


def test_etf3d_hdtf_speaker_and_resampling_to_60(tmp_path):
    (tmp_path / "HDTF").mkdir()
    np.save(tmp_path / "HDTF" / "WDA_BarackObama_000.npy", np.tile(np.arange(30)[:, None] / 100.0,
                                                                     (1, 52)))
    write_wav(tmp_path / "HDTF" / "WDA_BarackObama_000.wav", 1.0)
    sample = load_etf3d(tmp_path / "HDTF" / "WDA_BarackObama_000.npy", fps=60.0)
    assert sample.speaker == "WDA_BarackObama" and sample.emotion is None
    assert sample.frames == 60
    # 30 -> 60 fps: even frames are the originals, odd frames the midpoints.
    np.testing.assert_allclose(sample.blendshapes[0:58:2, 0], np.arange(29) / 100.0, atol=1e-7)
    np.testing.assert_allclose(sample.blendshapes[1:58:2, 0], (np.arange(29) + 0.5) / 100.0,
                               atol=1e-7)


@pytest.mark.parametrize("array, field, message", [
    (np.zeros((30, 51)), "shape", "expected \\(frames, 52\\)"),
    (np.zeros((30, 52, 1)), "shape", "expected \\(frames, 52\\)"),
    (np.full((30, 52), 50.0), "values", "ARKit weights lie in \\[0, 1\\]"),
    (np.where(np.arange(30)[:, None] == 7, np.nan, np.zeros((30, 52))), "values",
     "first at frame 7"),
    (np.array(["a"] * 52), "dtype", "expected numbers"),
])
def test_etf3d_bad_arrays(tmp_path, array, field, message):
    path = tmp_path / "01-01-03-01-01-01-01.npy"
    np.save(path, array)
    write_wav(tmp_path / "01-01-03-01-01-01-01.wav", 1.0)
    with pytest.raises(FormatError, match=message) as err:
        load_etf3d(path)
    assert err.value.line_or_field == field


def test_npy_corrupted_or_pickled_is_refused(tmp_path):
    corrupted = tmp_path / "corrupted.npy"
    corrupted.write_bytes(np.random.default_rng(0).bytes(300))
    with pytest.raises(FormatError, match="not a valid .npy") as err:
        read_array(corrupted)
    assert err.value.line_or_field == "file"
    pickled = tmp_path / "pickled.npy"
    np.save(pickled, np.array([{"vertices": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(FormatError, match="pickled data\\) refused") as err:
        read_array(pickled)
    assert err.value.line_or_field == "dtype"


def test_wav_damaged_is_a_format_error(tmp_path):
    (tmp_path / "x.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk")
    with pytest.raises(FormatError, match="not a readable WAV") as err:
        read_wav(tmp_path / "x.wav")
    assert err.value.line_or_field == "audio"


# ---------------------------------------------------------------- VOCASET / BIWI


def test_sequence_names():
    voca = parse_sequence_name("FaceTalk_170725_00137_TA_sentence01")
    assert (voca.dataset, voca.subject, voca.sentence) == ("vocaset", "FaceTalk_170725_00137_TA", 1)
    biwi = parse_sequence_name("F2_e01")
    assert (biwi.dataset, biwi.subject, biwi.sentence, biwi.emotional) == ("biwi", "F2", 1, True)
    assert parse_sequence_name("M6_40").emotional is False
    assert parse_sequence_name("speakerA_take3").dataset is None


def test_vocaset_60_to_30_with_npy_template(tmp_path):
    name = "FaceTalk_170725_00137_TA_sentence02"
    template, motion, _ = linear_vertex_motion(20, VOCASET_VERTICES, 60.0)
    (tmp_path / "vertices_npy").mkdir()
    np.save(tmp_path / "vertices_npy" / f"{name}.npy", motion.reshape(20, -1))
    (tmp_path / "templates").mkdir()
    np.save(tmp_path / "templates" / "FaceTalk_170725_00137_TA.npy", template)
    write_wav(tmp_path / "wav" / f"{name}.wav", 20 / 60)
    sample = load_vertex_sequence(tmp_path / "vertices_npy" / f"{name}.npy")
    assert sample.vertices.shape == (10, VOCASET_VERTICES, 3)
    np.testing.assert_array_equal(sample.vertices, motion[::2])  # what FaceFormer's [::2] keeps
    np.testing.assert_array_equal(sample.template, template)
    assert sample.speaker == "FaceTalk_170725_00137_TA" and sample.meta["sentence_id"] == 2


def test_biwi_25_to_30_with_binary_ply_template(tmp_path):
    template, motion, velocity = linear_vertex_motion(10, BIWI_VERTICES, 25.0)
    (tmp_path / "vertices_npy").mkdir()
    np.save(tmp_path / "vertices_npy" / "F2_e01.npy", motion.reshape(10, -1))
    write_ply(tmp_path / "templates" / "F2.ply", template, fmt="binary_little_endian")
    write_wav(tmp_path / "wav" / "F2_e01.wav", 0.4)
    sample = load_vertex_sequence(tmp_path / "vertices_npy" / "F2_e01.npy")
    assert sample.frames == 12 and sample.speaker == "F2" and sample.meta["emotional"] is True
    np.testing.assert_array_equal(sample.template, template)
    # Linear motion interpolates exactly: frame k shows time k / 30 while inside the capture.
    t = (np.arange(11) / 30.0)[:, None, None]
    np.testing.assert_allclose(sample.vertices[:11], template + t * velocity, atol=1e-5)
    np.testing.assert_allclose(sample.vertices[11], motion[-1], atol=1e-6)  # held past the end


@pytest.mark.parametrize("kind", ["obj", "ascii", "binary_little_endian", "binary_big_endian"])
def test_template_readers(tmp_path, kind):
    vertices = np.random.default_rng(1).normal(size=(7, 3)).astype(np.float32)
    path = (write_obj(tmp_path / "t.obj", vertices) if kind == "obj"
            else write_ply(tmp_path / "t.ply", vertices, fmt=kind))
    np.testing.assert_array_equal(read_template(path), vertices)


def test_template_errors(tmp_path):
    (tmp_path / "a.ply").write_text("ply\nformat ascii 1.0\nelement face 1\n"
                                    "property list uchar int vertex_indices\nend_header\n3 0 1 2\n")
    with pytest.raises(FormatError, match="vertex element must come first"):
        read_template(tmp_path / "a.ply")
    vertices = np.zeros((4, 3), dtype=np.float32)
    data = write_ply(tmp_path / "b.ply", vertices, fmt="binary_little_endian").read_bytes()
    (tmp_path / "b.ply").write_bytes(data[: len(data) - 40])
    with pytest.raises(FormatError, match="ends before its 4 vertices"):
        read_template(tmp_path / "b.ply")
    (tmp_path / "c.obj").write_text("v 1 2 3\nv 1 x 3\n")
    with pytest.raises(FormatError, match="not a number") as err:
        read_template(tmp_path / "c.obj")
    assert err.value.line_or_field == "line 2"


def test_vertex_sequence_errors(tmp_path):
    (tmp_path / "vertices_npy").mkdir()
    np.save(tmp_path / "vertices_npy" / "F1_e03.npy", np.zeros((10, 300)))
    write_wav(tmp_path / "wav" / "F1_e03.wav", 0.4)
    with pytest.raises(FormatError, match="biwi meshes have 23370 vertices, found 100") as err:
        load_vertex_sequence(tmp_path / "vertices_npy" / "F1_e03.npy")
    assert err.value.line_or_field == "shape"
    np.save(tmp_path / "vertices_npy" / "talker_01.npy", np.zeros((10, 300)))
    write_wav(tmp_path / "wav" / "talker_01.wav", 0.4)
    with pytest.raises(FormatError, match="pass source_fps"):
        load_vertex_sequence(tmp_path / "vertices_npy" / "talker_01.npy")
    write_obj(tmp_path / "templates" / "talker.obj", np.zeros((99, 3)))
    with pytest.raises(FormatError, match="template has 99 vertices") as err:
        load_vertex_sequence(tmp_path / "vertices_npy" / "talker_01.npy", source_fps=25.0)
    assert err.value.line_or_field == "template"
    write_obj(tmp_path / "templates" / "talker.obj", np.ones((100, 3)))
    sample = load_vertex_sequence(tmp_path / "vertices_npy" / "talker_01.npy", source_fps=25.0)
    assert sample.speaker == "talker" and sample.template.shape == (100, 3)


# ---------------------------------------------------------------- whole datasets


def test_detect_format(tmp_path):
    ramp_take(tmp_path / "ll")
    assert detect_format(tmp_path / "ll") == "livelink"
    etf3d_tree(tmp_path / "etf", ["01-01-03-01-01-01-01"])
    assert detect_format(tmp_path / "etf") == "etf3d"
    (tmp_path / "voca" / "vertices_npy").mkdir(parents=True)
    np.save(tmp_path / "voca" / "vertices_npy" / "x.npy", np.zeros((3, 9)))
    assert detect_format(tmp_path / "voca") == "vertices"
    ramp_take(tmp_path / "etf")
    with pytest.raises(ValueError, match="etf3d and livelink"):
        detect_format(tmp_path / "etf")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="pass format="):
        load_dataset(tmp_path / "empty")


def test_livelink_dataset_keeps_loading_past_bad_takes(tmp_path):
    for stem in ("good1", "good2"):
        ramp_take(tmp_path, stem=stem)
    bad, _ = ramp_take(tmp_path, stem="bad_value")
    lines = _lines(bad)
    cells = lines[5].split(",")
    cells[19] = "zero"
    lines[5] = ",".join(cells)
    bad.write_text("\n".join(lines) + "\n")
    ramp_take(tmp_path, stem="no_wav")
    (tmp_path / "no_wav.wav").unlink()
    (tmp_path / "notes.csv").write_text("not,a,take\n")  # not a Live Link file: ignored
    report = load_dataset(tmp_path, fps=30.0)
    assert report.format == "livelink"
    assert [s.name for s in report.samples] == ["good1", "good2"]
    assert all(s.frames == 60 for s in report.samples)
    assert report.errors == [
        LoadError(tmp_path / "bad_value.csv", "line 6, column 20 (JawOpen)",
                  "'zero' is not a number"),
        LoadError(tmp_path / "no_wav.csv", "audio", report.errors[1].message),
    ]
    assert "missing WAV" in report.errors[1].message


def test_etf3d_dataset_reports_each_bad_file_by_field(tmp_path):
    good = ["01-01-03-01-01-01-01", "01-01-04-02-01-01-02"]
    etf3d_tree(tmp_path, good + ["01-01-05-01-01-01-03"])
    blend, audio = tmp_path / "RAVDESS" / "blendshape", tmp_path / "RAVDESS" / "audio"
    np.save(blend / "01-01-05-01-01-01-03.npy", np.zeros((45, 50)))  # wrong shape
    (blend / "corrupt.npy").write_bytes(np.random.default_rng(1).bytes(500))
    np.save(blend / "pickled.npy", np.array([None, 1], dtype=object), allow_pickle=True)
    np.save(blend / "no_audio.npy", np.zeros((30, 52)))
    np.save(blend / "too_long.npy", np.zeros((90, 52)))  # 3 s of motion
    write_wav(audio / "too_long.wav", 1.0)
    report = load_dataset(tmp_path, sample_rate=8000)
    assert report.format == "etf3d"
    assert sorted(s.name for s in report.samples) == good
    assert all(s.sample_rate == 8000 and s.frames == 45 for s in report.samples)
    fields = {e.path.name: e.line_or_field for e in report.errors}
    assert fields == {"01-01-05-01-01-01-03.npy": "shape", "corrupt.npy": "file",
                      "pickled.npy": "dtype", "no_audio.npy": "audio",
                      "too_long.npy": "frame count"}


def test_vertex_dataset_and_duplicate_names(tmp_path):
    template, motion, _ = linear_vertex_motion(12, VOCASET_VERTICES, 60.0)
    for subset in ("a", "b"):
        (tmp_path / subset / "vertices_npy").mkdir(parents=True)
        np.save(tmp_path / subset / "vertices_npy" / "FaceTalk_170725_00137_TA_sentence01.npy",
                motion.reshape(12, -1))
        write_wav(tmp_path / subset / "wav" / "FaceTalk_170725_00137_TA_sentence01.wav", 0.2)
    report = load_dataset(tmp_path)
    assert report.format == "vertices" and len(report.samples) == 1
    assert report.samples[0].template is None and report.samples[0].frames == 6
    assert [(e.path.parent.parent.name, e.line_or_field) for e in report.errors] == [("b", "name")]
