"""Bad input, case by case (the README's "Behaviour on bad input" table): what each case does,
what it counts and that the message names the culprit. test_fuzz_engine and test_fuzz_node throw
thousands of generated messages; this file pins down the individual rules."""
from __future__ import annotations

import json
import shutil
import struct

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from talking_face_ros.bundle import META_FILE, MODEL_FILE, load_bundle, make_random_bundle
from talking_face_ros.emotions import MAX_TEXT_CHARS, clean_text
from talking_face_ros.face_timeline import NS, Audio, AudioIntake, Begin, Chunk, End, Grid
from talking_face_ros.node_params import SPECS, NodeParams, ParameterError, check

T0 = 1_700_000_000 * NS
FAST = settings(deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return make_random_bundle(tmp_path_factory.mktemp("bad") / "b", speakers=("us_f1",))


# ---------------------------------------------------------------------------------------------
# Audio chunks (face_timeline.AudioIntake)


def intake(**kw):
    grid = Grid(fps=30.0, t0_ns=T0)
    return AudioIntake(grid, **{"max_gap_s": 1.0, "utterance_timeout_s": 1.0, "max_clock_offset_s": 30.0, **kw})


def chunk(stamp, samples, *, seq=0, stream="s", rate=16000, channels=1, start=False, end=False, utt=1):
    return Chunk(stream, seq, utt, start, end, stamp, rate, channels, np.asarray(samples, np.int16))


def kinds(actions):
    return [type(a).__name__ for a in actions]


def test_a_chunk_delivered_twice_is_dropped_and_counted_wherever_it_falls():
    a = intake()
    voice = np.arange(320) % 200
    first = chunk(T0, voice, start=True)
    assert kinds(a.accept(first, now_ns=T0)) == ["Begin", "Audio"]
    # The start chunk again: dropped, the utterance is not restarted.
    assert a.accept(first, now_ns=T0) == [] and a.counts["duplicates"] == 1 and a.active is not None
    second = chunk(T0 + 20_000_000, voice, seq=1)
    third = chunk(T0 + 40_000_000, voice, seq=2)
    a.accept(second, now_ns=T0)
    a.accept(third, now_ns=T0)
    # An older chunk again (not the last one): a duplicate, not a stamp going backwards.
    assert a.accept(second, now_ns=T0) == []
    assert a.counts["duplicates"] == 2 and a.counts["stamps_backwards"] == 0
    last = chunk(T0 + 60_000_000, voice, seq=3, end=True)
    assert kinds(a.accept(last, now_ns=T0)) == ["Audio", "End"]
    # The closing chunk again does not open a new utterance.
    assert a.accept(last, now_ns=T0) == [] and a.active is None and a.counts["utterances"] == 1
    assert a.counts["duplicates"] == 3
    assert "duplicate" in a.warnings[-1][1]


def test_same_sequence_number_with_new_audio_is_not_a_duplicate():
    """Publishers that never count (sequence always 0) still stream: only identical deliveries drop."""
    a = intake()
    a.accept(chunk(T0, np.ones(320), start=True), now_ns=T0)
    assert kinds(a.accept(chunk(T0 + 20_000_000, np.ones(320)), now_ns=T0)) == ["Audio"]
    assert a.counts["duplicates"] == 0


def test_clipping_is_counted_and_animated_as_it_is():
    a = intake()
    square = np.where(np.arange(320) % 40 < 20, 32767, -32768)
    actions = a.accept(chunk(T0, square, start=True), now_ns=T0)
    assert kinds(actions) == ["Begin", "Audio"] and a.counts["clipped_chunks"] == 1
    np.testing.assert_allclose(actions[1].samples, square / 32768.0)
    assert a.warnings[-1][0] == "clipping" and "full scale" in a.warnings[-1][1]
    a.accept(chunk(T0 + 20_000_000, square // 2, seq=1), now_ns=T0)  # loud but not clipped
    assert a.counts["clipped_chunks"] == 1


@pytest.mark.parametrize("channels", [2, 6, 255])
def test_any_channel_count_is_averaged_to_mono(channels):
    a = intake()
    frames = np.random.default_rng(channels).integers(-20000, 20000, (160, channels)).astype(np.int16)
    _, audio = a.accept(chunk(T0, frames.reshape(-1), channels=channels, start=True), now_ns=T0)
    np.testing.assert_allclose(audio.samples, frames.mean(axis=1) / 32768.0, atol=1e-6)


def test_rates_at_the_bounds_pass_and_beyond_are_refused():
    for rate, ok in ((1000, True), (384_000, True), (999, False), (384_001, False)):
        a = intake()
        actions = a.accept(chunk(T0, np.ones(rate // 50), rate=rate, start=True), now_ns=T0)
        assert (kinds(actions) == ["Begin", "Audio"]) == ok and a.counts["bad_inputs"] == (not ok)


def test_empty_chunks_with_utterance_flags_open_and_close_utterances():
    a = intake()
    assert kinds(a.accept(chunk(T0, [], start=True), now_ns=T0)) == ["Begin"]
    assert kinds(a.accept(chunk(T0, np.ones(320), seq=1), now_ns=T0)) == ["Audio"]
    assert kinds(a.accept(chunk(T0 + 20_000_000, [], seq=2, end=True), now_ns=T0)) == ["End"]
    assert a.active is None and a.counts["bad_inputs"] == 0
    assert a.accept(chunk(T0 + 40_000_000, [], seq=3), now_ns=T0) == [] and a.counts["bad_inputs"] == 1


def test_a_chunk_of_many_seconds_is_one_audio_action_up_to_the_limit():
    a = intake()
    long = np.zeros(16000 * 60, np.int16)
    _, audio = a.accept(chunk(T0, long, start=True), now_ns=T0)
    assert isinstance(audio, Audio) and len(audio.samples) == len(long)  # the node feeds it in 0.1 s pieces
    assert a.accept(chunk(T0 + 60 * NS, np.zeros(1000 * 121, np.int16), rate=1000, seq=1), now_ns=T0) == []
    assert a.counts["bad_inputs"] == 1 and "in one chunk" in a.warnings[-1][1]


def test_a_jump_to_another_clock_starts_an_utterance_where_it_arrives():
    """A forward jump past max_gap onto a clock years away is re-stamped, not placed years ahead."""
    a = intake(max_clock_offset_s=5.0)
    a.accept(chunk(T0, np.ones(320), start=True), now_ns=T0)
    actions = a.accept(chunk(T0 + 10**9 * NS, np.ones(320), seq=1), now_ns=T0 + 20_000_000)
    assert [type(x) for x in actions] == [End, Begin, Audio]
    assert a.counts["resyncs"] == 1 and a.counts["restamped"] == 1
    assert abs(a.grid.stamp(actions[1].first_frame) - T0) < NS  # on this node's clock
    # A stream re-stamped from zero keeps its offset over a short jump: it stays on its own clock.
    b = intake(max_clock_offset_s=5.0)
    b.accept(chunk(0, np.ones(320), start=True), now_ns=T0)
    actions = b.accept(chunk(3 * NS, np.ones(320), seq=1), now_ns=T0 + 20_000_000)
    assert [type(x) for x in actions] == [End, Begin, Audio] and b.counts["restamped"] == 1
    assert b.grid.stamp(actions[1].first_frame) > T0 + 2 * NS


# ---------------------------------------------------------------------------------------------
# Emotion text


@pytest.mark.parametrize("text, expected, changed", [
    ("", "", []),
    ("  \t\n ", "", []),
    ("quietly\tirritated\n", "quietly irritated", []),
    ("fu\x00ri\x1b[31mous", "fu ri [31mous", ["control characters removed"]),
    ("sad\ud800 but calm", "sad but calm", ["control characters removed"]),
    ("怒っている、でも笑顔", "怒っている、でも笑顔", []),
    ("très content ☺ غاضب", "très content ☺ غاضب", []),
    ("happy " * 400, ("happy " * 400)[:MAX_TEXT_CHARS].rstrip(), [f"cut to {MAX_TEXT_CHARS} characters"]),
])
def test_emotion_text_is_cleaned_for_the_encoders(text, expected, changed):
    assert clean_text(text) == (expected, changed)


def test_emotion_text_of_any_script_reaches_minilm(folder, encoders):
    """Non-English, mixed scripts, emoji and control characters: embedded, each its own vector."""
    from talking_face_ros.engine import Engine

    engine = Engine(load_bundle(folder, device="cpu", encoders=encoders))
    default = engine._target.copy()
    vectors = {}
    for text in ("furious", "wütend und enttäuscht", "очень злой", "怒っている", "غاضب جدا", "😡😡 angry",
                 "happy 😊 und froh", "cal\x00m\x1b", "a\ud800b", "x" * 5000):
        engine.set_emotion(text)
        assert np.isfinite(engine._target).all()
        vectors[engine.emotion] = engine._target
    assert engine.emotion == "x" * MAX_TEXT_CHARS and "cal m" in vectors and "ab" in vectors
    assert not any(np.allclose(v, default) for v in vectors.values())
    assert len({v.tobytes() for v in vectors.values()}) == len(vectors)
    engine.set_emotion(" \n ")
    assert engine.emotion == engine.bundle.default_emotion


# ---------------------------------------------------------------------------------------------
# Parameters (node_params)

values = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True, allow_infinity=True),
                   st.text(max_size=8), st.lists(st.integers(), max_size=2), st.binary(max_size=4))


@settings(FAST, max_examples=1000)
@given(spec=st.sampled_from(SPECS), value=values)
def test_any_parameter_value_is_taken_or_refused_in_one_line(spec, value):
    try:
        assert check(spec.name, value) is value
    except ParameterError as exc:
        assert str(exc).startswith(f"parameter {spec.name}") and "\n" not in str(exc)
        return
    assert type(value) is type(spec.default) or (type(spec.default) is float and type(value) is int)


def test_parameters_that_name_files_are_checked_before_anything_is_opened(tmp_path):
    from talking_face_ros.nodes.talking_face_node import resolve_model
    from talking_face_ros.rig import load_rig

    (tmp_path / "passwd").write_text("root:x:0:0")
    for value in (str(tmp_path / "passwd"), str(tmp_path), "../../../../etc", "/dev/null"):
        with pytest.raises(ParameterError, match="no bundle.json in that folder"):
            resolve_model(value)
    for spec in (str(tmp_path / "passwd"), "/etc/passwd", "../../etc/passwd", "/dev/zero", ""):
        with pytest.raises(ValueError, match="expected 'robot', 'ict' or the path of a .npz rig file"):
            load_rig(spec)
    (tmp_path / "dir.npz").mkdir()
    with pytest.raises(ValueError, match="not a regular file"):
        load_rig(str(tmp_path / "dir.npz"))
    with pytest.raises(ValueError, match="no such file"):
        load_rig(str(tmp_path / "absent.npz"))
    assert NodeParams(model=str(tmp_path)).model == str(tmp_path)  # a string; resolved at start-up only


# ---------------------------------------------------------------------------------------------
# Checkpoints and bundles


def copy(folder, tmp_path, name):
    dest = tmp_path / name
    shutil.copytree(folder, dest)
    return dest


@pytest.mark.parametrize("name, content, message", [
    ("bad_json", "{\"format\": ", "bundle.json: not valid JSON"),
    ("not_utf8", b"\xff\xfe\x00{}", "bundle.json: not valid JSON"),
    ("a_list", "[1, 2]", "bundle.json: not a talking_face_bundle file"),
    ("encoder_kind", {"encoders": {"speech": ["moonshine"]}}, "field 'encoders': expected 'speech' and 'text'"),
    ("encoder_part", {"encoders": {"voice": "moonshine"}}, "field 'encoders': expected 'speech' and 'text'"),
    ("plan_overflow", {"plan": {"chunk_s": 1e308, "left_s": 0, "right_s": 0}}, "field 'plan'"),
    ("fps_absurd", {"fps": 1e300}, "field 'fps' must be a positive number in"),
])
def test_a_broken_bundle_json_names_the_file_and_field(tmp_path, folder, encoders, name, content, message):
    bad = copy(folder, tmp_path, name)
    path = bad / META_FILE
    if isinstance(content, dict):
        meta = json.loads(path.read_text())
        meta.update(content)
        path.write_text(json.dumps(meta))
    elif isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    with pytest.raises(ValueError, match=message) as error:
        load_bundle(bad, device="cpu", encoders=encoders)
    assert str(bad) in str(error.value)


def test_bad_encoder_options_in_bundle_json_name_the_file(tmp_path, folder):
    bad = copy(folder, tmp_path, "options")
    meta = json.loads((bad / META_FILE).read_text())
    meta["encoders"]["speech"]["bogus"] = 1
    (bad / META_FILE).write_text(json.dumps(meta))
    with pytest.raises(ValueError, match=r"bundle.json: field 'encoders': .*does not take \['bogus'\]"):
        load_bundle(bad, device="cpu")


def rewrite_checkpoint(path, change):
    """``path`` with its tensors passed through ``change`` and a checksum that matches again."""
    from safetensors import safe_open
    from safetensors.torch import save_file

    from talking_face_ros.model.checkpoint import _digest

    with safe_open(str(path), framework="pt") as f:
        metadata, state = f.metadata(), {k: f.get_tensor(k) for k in f.keys()}
    state = change(state)
    save_file(state, str(path), metadata={**metadata, "sha256": _digest(state)})


@pytest.mark.parametrize("name, change, message", [
    ("nan", lambda s: {k: (v.fill_(float("nan")) if i == 3 else v) for i, (k, v) in enumerate(s.items())},
     "holds NaN or infinite values"),
    ("shape", lambda s: {k: (torch.zeros(v.shape[0] + 1, *v.shape[1:]) if v.ndim == 2 and v.is_floating_point()
                             else v) for k, v in s.items()}, "has shape"),
    ("missing", lambda s: dict(list(s.items())[1:]), "missing"),
])
def test_a_checkpoint_with_a_valid_checksum_but_wrong_tensors_is_refused(tmp_path, folder, name, change, message):
    from talking_face_ros.model.checkpoint import load_model

    bad = copy(folder, tmp_path, name)
    rewrite_checkpoint(bad / MODEL_FILE, change)
    with pytest.raises(ValueError, match=message) as error:
        load_model(bad / MODEL_FILE)
    assert MODEL_FILE in str(error.value)


@pytest.mark.parametrize("damage", ["truncated", "bad_json"])
def test_a_damaged_bundle_stops_the_node_with_one_line_naming_the_file(tmp_path, folder, damage):
    """The node's start-up error (main prints it as the one line before exit status 2)."""
    rclpy = pytest.importorskip("rclpy")
    pytest.importorskip("talking_face_ros.msg")
    from rclpy.parameter import Parameter

    from talking_face_ros.nodes.talking_face_node import TalkingFaceNode

    bad = copy(folder, tmp_path, damage)
    if damage == "truncated":
        data = (bad / MODEL_FILE).read_bytes()
        (bad / MODEL_FILE).write_bytes(data[: len(data) // 3])
        culprit = f"{bad / MODEL_FILE}: not a readable safetensors file"
    else:
        (bad / META_FILE).write_text("{\"format\": \"talking_face_bundle\",")
        culprit = f"{bad / META_FILE}: not valid JSON"
    context = rclpy.Context()
    rclpy.init(context=context)
    try:
        with pytest.raises(ParameterError) as error:
            TalkingFaceNode(context=context, parameter_overrides=[Parameter("model", value=str(bad)),
                                                                  Parameter("device", value="cpu")])
    finally:
        rclpy.shutdown(context=context)
    message = str(error.value)
    assert message.startswith("parameter model = ") and culprit in message and "\n" not in message


# ---------------------------------------------------------------------------------------------
# WAV files with odd headers


def wav_bytes(*, rate=16000, channels=1, bits=16, frames=200, fmt=1):
    block = channels * bits // 8
    data = bytes(min(frames * block, 4096))
    fmt_chunk = struct.pack("<HHIIHH", fmt, channels, rate, rate * block % 2**32, block % 2**16, bits)
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt_chunk)) + fmt_chunk + b"data" + struct.pack(
        "<I", len(data)) + data
    return b"RIFF" + struct.pack("<I", len(body)) + body


@settings(FAST, max_examples=300)
@given(base=st.builds(wav_bytes, rate=st.sampled_from((0, 8000, 16000, 2**32 - 1)),
                      channels=st.sampled_from((0, 1, 2, 65535)), bits=st.sampled_from((0, 8, 12, 16, 24, 32, 64)),
                      frames=st.integers(0, 50), fmt=st.sampled_from((1, 3, 0xFFFE, 7, 0))),
       edits=st.lists(st.tuples(st.integers(0, 60), st.integers(0, 255)), max_size=4), cut=st.integers(0, 400))
def test_a_wav_with_any_header_loads_or_is_one_value_error_naming_it(tmp_path, base, edits, cut):
    from talking_face_ros.speech.audio import read_wav

    data = bytearray(base[:max(cut, 0) or None])
    for at, value in edits:
        if at < len(data):
            data[at] = value
    path = tmp_path / "odd.wav"
    path.write_bytes(bytes(data))
    try:
        samples, rate = read_wav(path)
    except ValueError as exc:
        assert str(path) in str(exc)
    else:
        assert samples.ndim == 2 and samples.size > 0 and rate > 0


# ---------------------------------------------------------------------------------------------
# Security: no pickle


def test_no_code_in_the_package_can_unpickle():
    """Every np.load passes allow_pickle=False, every model from_pretrained use_safetensors=True
    (load_pretrained adds it itself); nothing calls pickle / torch / joblib loaders."""
    import ast
    from pathlib import Path

    import talking_face_ros

    offenders = []
    for path in Path(talking_face_ros.__file__).parent.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
                continue
            owner = node.func.value.id if isinstance(node.func.value, ast.Name) else None
            name = f"{owner}.{node.func.attr}"
            if name in ("pickle.load", "pickle.loads", "torch.load", "joblib.load", "dill.load"):
                offenders.append(f"{path}:{node.lineno} {name}")
            if node.func.attr == "from_pretrained" and "Model" in (owner or "") and not any(
                    k.arg == "use_safetensors" and isinstance(k.value, ast.Constant) and k.value.value is True
                    for k in node.keywords):
                offenders.append(f"{path}:{node.lineno} {name} without use_safetensors=True")
            if name in ("np.load", "numpy.load") and not any(
                    k.arg == "allow_pickle" and isinstance(k.value, ast.Constant) and k.value.value is False
                    for k in node.keywords):
                offenders.append(f"{path}:{node.lineno} {name} without allow_pickle=False")
    assert not offenders, offenders


def test_encoder_weights_load_only_from_safetensors(tmp_path):
    """A Hugging Face folder whose weights are a pickle (pytorch_model.bin) is refused."""
    from transformers import Wav2Vec2Model

    from talking_face_ros.encoders.hub import load_pretrained
    from talking_face_ros.encoders.testing import save_random_wav2vec2

    folder = save_random_wav2vec2(tmp_path / "w2v", hidden_size=8, layers=1, heads=1, conv_dim=8)
    model = load_pretrained(Wav2Vec2Model.from_pretrained, folder, what="test encoder")
    (folder / "model.safetensors").unlink()
    torch.save(model.state_dict(), folder / "pytorch_model.bin")  # what an old checkpoint looks like
    with pytest.raises(ValueError, match="test encoder: cannot load model folder .*model.safetensors"):
        load_pretrained(Wav2Vec2Model.from_pretrained, folder, what="test encoder")
