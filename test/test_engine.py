"""The streaming engine: live == offline == one model pass, continuity, emotion blends, bounded memory,
bad input, and the ``talking-face animate`` command."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from talking_face_ros.bundle import load_bundle, make_random_bundle
from talking_face_ros.data.sample import frame_count
from talking_face_ros.encoders import Encoders
from talking_face_ros.engine import Engine, Frame
from talking_face_ros.features import encode_planned

from engine_fixtures import CheapSpeech  # test/engine_fixtures.py (pytest puts test/ on sys.path)

SR = 16000
FPS = 30.0
pytestmark = pytest.mark.usefixtures("one_torch_thread")  # conftest.py


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return make_random_bundle(tmp_path_factory.mktemp("engine") / "b", speakers=("us_f1", "gb_m2"))


@pytest.fixture(scope="module")
def bundle(folder, encoders):
    return load_bundle(folder, device="cpu", encoders=encoders)


@pytest.fixture(scope="module")
def cheap_bundle(folder, encoders):
    return load_bundle(folder, device="cpu", encoders=Encoders(CheapSpeech(), encoders.text))


@pytest.fixture(scope="module")
def speech():
    """About 4 s of espeak-ng speech."""
    from talking_face_ros.corpus.voices import VOICES
    from talking_face_ros.speech.espeak import synthesize

    return synthesize("We should meet by the river before the bells ring at noon.", voice=VOICES[5]).audio


def stream(engine, audio, sizes, *, sample_rate=SR, flush=True):
    frames, i = [], 0
    for n in sizes:
        if i >= len(audio):
            break
        engine.push(audio[i:i + n], sample_rate)
        frames += engine.pull()
        i += n
    if flush:
        engine.flush()
        frames += engine.pull()
    return frames


def one_pass(bundle, audio, text, identity=0):
    """What the model gives in one pass over the planned features of the whole clip."""
    feats = encode_planned(bundle.encoders.speech, audio, bundle.plan, fps=bundle.fps)
    return bundle.model.predict(torch.from_numpy(feats), torch.tensor(text), identity).numpy()


# ------------------------------------------------------------------------------------------------
# Live == offline == one pass


def test_streamed_equals_offline_equals_one_pass(bundle, speech):
    engine = Engine(bundle)
    times, offline = engine.animate(speech, SR, emotion="happy", identity="gb_m2")
    n = frame_count(len(speech) / SR, FPS)
    assert offline.shape == (n, 52) and offline.dtype == np.float32
    assert np.array_equal(times, np.arange(n) / FPS)
    text = bundle.encoders.text.encode_one("happy")
    assert np.allclose(offline, one_pass(bundle, speech, text, identity=2), atol=1e-5)
    assert offline.std(axis=0).mean() > 0.01  # the random model does move

    rng = np.random.default_rng(1)
    engine.reset()
    engine.set_emotion("happy")
    engine.set_identity("gb_m2")
    frames = stream(engine, speech, rng.integers(1, 6000, 10_000))
    assert [f.index for f in frames] == list(range(n))
    assert all(isinstance(f, Frame) and f.time == f.index / FPS for f in frames)
    assert np.allclose(np.stack([f.weights for f in frames]), offline, atol=1e-5)
    # Small windows (the path taken when hours of audio arrive at once) give the same frames.
    small = Engine(bundle, window_s=0.4)
    assert np.allclose(small.animate(speech, SR, emotion="happy", identity="gb_m2")[1], offline, atol=1e-5)


@pytest.mark.parametrize("variant", [
    dict(vq=dict(levels=1), pred={}),  # one level: no high codes
    dict(vq=dict(high_kernel=5), pred=dict(kernel=1, high_kernel=3, high_attn_right=2, low_attn_right=0)),
    dict(vq={}, pred=dict(head="latent", low_attn_left=3, high_attn_left=2)),
    dict(vq={}, pred=dict(refine_weight=1.0)),  # a correction of each frame: the low step's state is kept
    # ... also read from a speech branch whose reach (71 frames back) is wider than the decoder's
    dict(vq={}, pred=dict(refine_weight=1.0, refine_branch_layers=2, refine_branch_dim=32)),
    dict(vq={}, pred=dict(high_layers=0, low_layers=0)),  # code heads straight on the trunk: no blocks to stage
    # causal (VQVAEConfig.causal): conv blocks read the past only, a high step is drawn from the step before
    dict(vq=dict(causal=True), pred=dict(refine_weight=1.0)),
    # ... as config/train_low_latency.yaml shapes it: no temporal convs in the predictor, a causal branch
    dict(vq=dict(causal=True, high_decoder_blocks=0),
         pred=dict(kernel=1, high_kernel=1, refine_weight=1.0, refine_branch_layers=2, refine_branch_dim=32)),
], ids=["one-level", "wide-high-reach", "latent-head", "refine", "refine-branch", "no-code-layers", "causal",
        "causal-low-latency"])
def test_code_plan_streams_one_pass_for_other_predictors(tmp_path, encoders, speech, variant):
    """The engine draws each code once (engine._CodePlan), in windows cut to each stage's own
    reach: for other shapes of predictor too, its frames are those of one pass."""
    from talking_face_ros.bundle import save_bundle
    from talking_face_ros.features import ChunkPlan
    from talking_face_ros.model import CodePredictor, HierarchicalMotionVQVAE, PredictorConfig
    from talking_face_ros.model.config import VQVAEConfig

    torch.manual_seed(3)
    common = dict(num_speakers=1, text_dim=384, identity_dim=8, cond_dim=16)
    vq = HierarchicalMotionVQVAE(VQVAEConfig(output_activation="sigmoid", frame_dim=16, dim=32, code_dim=8,
                                             low_codebook_size=32, high_codebook_size=16, **variant["vq"], **common))
    model = CodePredictor(PredictorConfig(frame_dim=16, dim=32, heads=2, dropout=0.0, **variant["pred"], **common), vq)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.1)
    folder = save_bundle(tmp_path / "b", model.eval(), encoders_cfg={"speech": {"kind": "moonshine"},
                                                                      "text": {"kind": "minilm"}},
                         plan=ChunkPlan(), fps=FPS, identities=["default", "v1"])
    b = load_bundle(folder, device="cpu", encoders=Encoders(CheapSpeech(), encoders.text))
    engine = Engine(b)
    assert engine._plan is not None and engine.lookahead_frames <= model.lookahead
    engine.set_emotion("sad")
    frames = stream(engine, speech, np.random.default_rng(5).integers(1, 4000, 10_000))
    got = np.stack([f.weights for f in frames])
    want = one_pass(b, speech, b.encoders.text.encode_one("sad"))
    assert got.shape == want.shape and np.abs(got - want).max() < 1e-5
    assert want.std(axis=0).mean() > 0.01
    assert engine.buffered()["codes"] == engine.buffered()["branch_frames"] == 0  # nothing kept across utterances
    # Windows of 12 frames, narrower than every reach: each stage still reads all it needs.
    small = Engine(b, window_s=0.4)
    small.set_emotion("sad")
    got = np.stack([f.weights for f in stream(small, speech, np.random.default_rng(6).integers(1, 4000, 10_000))])
    assert got.shape == want.shape and np.abs(got - want).max() < 1e-5
    if model.refines:  # the correction really moves the frames the engine streamed
        s = torch.from_numpy(encode_planned(b.encoders.speech, speech, b.plan, fps=b.fps))[None]
        t = torch.tensor(b.encoders.text.encode_one("sad"))[None]
        codes = model.predict_codes(s, t, torch.tensor([0]))
        bare = model.vqvae.decode_codes(codes["low"], codes["high"], frames=s.shape[1], identity=torch.tensor([0]),
                                        text=t)[0].numpy()
        assert np.abs(bare[:len(got)] - got).max() > 0.01


def test_regression_bundle_streams_too(tmp_path, encoders, speech):
    b = load_bundle(make_random_bundle(tmp_path / "reg", kind="regression"), device="cpu",
                    encoders=Encoders(CheapSpeech(), encoders.text))
    engine = Engine(b)
    _, offline = engine.animate(speech, SR, emotion="sad")
    assert np.allclose(offline, one_pass(b, speech, b.encoders.text.encode_one("sad")), atol=1e-5)
    engine.reset()
    engine.set_emotion("sad")
    frames = stream(engine, speech, np.random.default_rng(2).integers(1, 3000, 10_000))
    assert np.allclose(np.stack([f.weights for f in frames]), offline, atol=1e-5)
    with pytest.raises(ValueError, match="regression"):
        engine.set_sampling(temperature=1.0)


def test_other_sample_rates_and_channels(cheap_bundle, speech):
    from talking_face_ros.speech.audio import resample_audio

    engine = Engine(cheap_bundle)
    audio44 = resample_audio(speech, SR, 44100)
    _, ref = engine.animate(resample_audio(audio44, 44100, SR), SR)
    _, offline = engine.animate(audio44, 44100)
    assert offline.shape == ref.shape
    assert np.abs(offline - ref).mean() < 0.02  # the same speech, resampled by soxr in one go or streamed
    engine.reset()
    frames = stream(engine, audio44, np.random.default_rng(3).integers(1, 5000, 10_000), sample_rate=44100)
    assert np.allclose(np.stack([f.weights for f in frames]), offline, atol=1e-5)
    # Stereo, either layout, and integer PCM are converted, not refused.
    stereo = np.stack([speech, speech], axis=1)
    pcm = np.round(speech * 32767).astype(np.int16)
    _, mono = engine.animate(speech, SR)
    assert np.allclose(engine.animate(stereo, SR)[1], mono, atol=1e-5)
    assert np.allclose(engine.animate(stereo.T, SR)[1], mono, atol=1e-5)
    assert np.allclose(engine.animate(pcm, SR)[1], engine.animate(pcm / 32768.0, SR)[1], atol=1e-5)


# ------------------------------------------------------------------------------------------------
# Emotion, identity, sampling


def test_emotion_blends_in_over_half_a_second(cheap_bundle, speech):
    text = cheap_bundle.encoders.text
    a, b = text.encode_one("calm"), text.encode_one("furious")
    engine = Engine(cheap_bundle)  # emotion_blend_s = 0.5 s = 15 frames
    engine.set_emotion("calm")
    cut = 30000  # samples: the emotion changes when this much audio has arrived
    frames = stream(engine, speech[:cut], [7000] * 10, flush=False)
    engine.set_emotion("furious")
    assert engine.emotion == "furious"
    frames += stream(engine, speech[cut:], [7000] * 10)
    start = math.ceil(cut * FPS / SR)  # first frame at or after the newest audio when it changed
    n = len(frames)
    w = np.clip((np.arange(n) - start + 1) / 15.0, 0.0, 1.0)[:, None]
    per_frame = (a[None] * (1 - w) + b[None] * w).astype(np.float32)
    assert w[start - 1] == 0 and 0 < w[start] < 1 and w[start + 14] == 1
    expected = one_pass(cheap_bundle, speech, per_frame)
    got = np.stack([f.weights for f in frames])
    assert np.allclose(got, expected, atol=1e-5)
    # Control: the change is visible, so the comparison above sees the blend.
    assert not np.allclose(got, one_pass(cheap_bundle, speech, a), atol=1e-3)


def test_blank_emotion_means_the_default(cheap_bundle, speech):
    engine = Engine(cheap_bundle)
    clip = speech[:20000]
    _, neutral = engine.animate(clip, SR, emotion="neutral")
    for blank in ("", "   ", None):
        _, w = engine.animate(clip, SR, emotion=blank)
        assert engine.emotion == "neutral"
        assert np.array_equal(w, neutral)
    assert not np.allclose(engine.animate(clip, SR, emotion="terrified")[1], neutral, atol=1e-3)
    with pytest.raises(ValueError, match="string"):
        engine.set_emotion(3)


def test_identity_and_sampling(cheap_bundle, speech):
    engine = Engine(cheap_bundle)
    clip = speech[:24000]
    _, default = engine.animate(clip, SR)
    _, us = engine.animate(clip, SR, identity="us_f1")
    assert not np.allclose(default, us, atol=1e-3)
    with pytest.warns(UserWarning, match="not one of this model's speakers"):
        _, unknown = engine.animate(clip, SR, identity="nobody")
    assert np.array_equal(unknown, default)

    s1 = engine.animate(clip, SR, seed=1, temperature=1.0)[1]
    assert np.array_equal(s1, engine.animate(clip, SR, seed=1, temperature=1.0)[1])
    s2 = engine.animate(clip, SR, seed=2, temperature=1.0)[1]
    assert not np.allclose(s1, s2, atol=1e-3) and not np.allclose(s1, default, atol=1e-3)
    for bad in (-0.5, float("nan"), "hot"):
        with pytest.raises(ValueError, match="temperature"):
            engine.set_sampling(temperature=bad)
    with pytest.raises(ValueError, match="seed"):
        engine.set_sampling(seed=1.5)


# ------------------------------------------------------------------------------------------------
# Stream bookkeeping


def test_flush_continues_the_index_on_the_stream_clock(cheap_bundle, speech):
    engine = Engine(cheap_bundle)
    first, second = speech[:17000], speech[17000:]
    assert engine.flush() == 0 and engine.pull() == []  # nothing to flush
    f1 = stream(engine, first, [5000] * 10)
    assert engine.flush() == 0  # a second flush has nothing left
    f2 = stream(engine, second, [5000] * 20)
    n1, n2 = frame_count(len(first) / SR, FPS), frame_count(len(second) / SR, FPS)
    assert [f.index for f in f1 + f2] == list(range(n1 + n2))
    assert all(f.time == f.index / FPS for f in f2)
    # The second utterance is animated as a fresh one, starting at the frame after the first.
    fresh = Engine(cheap_bundle).animate(second, SR)[1]
    assert np.allclose(np.stack([f.weights for f in f2]), fresh, atol=1e-5)
    engine.reset()
    assert [f.index for f in stream(engine, first, [len(first)])][:3] == [0, 1, 2]


def test_memory_stays_bounded_over_a_long_stream(cheap_bundle):
    """Six minutes of noisy "speech" in 4 s pieces: no buffer grows with the stream's length."""
    engine = Engine(cheap_bundle)
    rng = np.random.default_rng(4)
    piece = 4 * SR
    pieces = 90
    reach, align, lookahead = engine.model.receptive_field, engine.model.align, engine.model.lookahead
    bound = math.ceil(reach.left / align) * align + align + lookahead + int(piece / SR * FPS) + 20
    peaks, expected_index, worst_lag = [], 0, 0.0
    for k in range(pieces):
        envelope = np.abs(np.sin(np.linspace(0, 6 * np.pi, piece)))
        engine.push((rng.standard_normal(piece) * 0.2 * envelope).astype(np.float32))
        idx, times, weights = engine.pull_arrays()
        assert np.array_equal(idx, np.arange(expected_index, expected_index + len(idx)))
        assert np.array_equal(times, idx / FPS) and np.isfinite(weights).all()
        expected_index += len(idx)
        lag = (k + 1) * piece / SR - (expected_index - 1) / FPS
        assert lag <= engine.latency_s + 1e-9
        worst_lag = max(worst_lag, lag)
        b = engine.buffered()
        assert b["model_frames"] <= bound and b["features"] <= 4 and b["unpulled_frames"] == 0
        assert b["codes"] <= bound  # codes are at most one per frame
        assert b["audio"] <= (1.92 + 0.48 + 0.192) * SR + piece
        peaks.append(b)
    engine.flush()
    expected_index += len(engine.pull_arrays()[0])
    assert expected_index == frame_count(pieces * piece / SR, FPS)
    late = max(p["model_frames"] for p in peaks[-30:])
    early = max(p["model_frames"] for p in peaks[:30])
    assert late <= early
    assert worst_lag > engine.latency_s - 4.5  # the pieces are 4 s: the bound is reached within one piece


def test_latency_bound_is_tight_with_small_pushes(cheap_bundle, speech):
    engine = Engine(cheap_bundle)
    model_s = engine.lookahead_frames / FPS
    assert engine.lookahead_frames <= engine.model.lookahead  # the code plan needs no more than the reach bound
    assert engine.latency_s == pytest.approx((7680 + 3072) / SR + 384 / SR - 447 / SR + 1 / FPS + model_s)
    audio = np.tile(speech, 3)
    worst, made, pushed = 0.0, 0, 0
    for i in range(0, len(audio), 320):  # 20 ms pieces, as a microphone delivers them
        engine.push(audio[i:i + 320])
        pushed += len(audio[i:i + 320])
        made += len(engine.pull())
        if made:
            lag = pushed / SR - (made - 1) / FPS
            assert lag <= engine.latency_s + 1e-9
            worst = max(worst, lag)
    assert worst > engine.latency_s - 0.05


def test_bad_audio_never_raises(cheap_bundle, speech):
    engine = Engine(cheap_bundle)
    clip = speech[:20000].copy()
    _, clean = engine.animate(clip, SR)
    dirty = clip.copy()
    dirty[6000:9000] = np.nan  # a dropout of 0.19 s
    dirty[[100, 12000]] = [np.inf, -np.inf]
    zeroed = np.where(np.isfinite(dirty), dirty, 0.0).astype(np.float32)
    _, got = engine.animate(dirty, SR)
    assert engine.stats["nonfinite_samples"] == 3002
    assert np.array_equal(got, engine.animate(zeroed, SR)[1])
    assert not np.allclose(got, clean, atol=1e-3)  # control: the silenced span is visible
    engine.reset()
    assert engine.push(np.zeros(0, np.float32)) == 0 and engine.push([]) == 0
    assert engine.buffered()["audio"] == 0 and engine.flush() == 0
    assert engine.push(np.zeros((0, 2))) == 0
    for bad_rate in (-16000, 0, float("nan"), True, "16k"):
        with pytest.raises(ValueError, match="sample_rate"):
            engine.push(clip, bad_rate)
    with pytest.raises(ValueError, match="shape"):
        engine.push(np.zeros((2, 2, 100)))
    with pytest.raises(ValueError, match="real numbers"):
        engine.push(np.zeros(10, np.complex64))
    for bad in (dict(emotion_blend_s=-1), dict(window_s=0), dict(temperature=-1)):
        with pytest.raises(ValueError):
            Engine(cheap_bundle, **bad)


# ------------------------------------------------------------------------------------------------
# talking-face animate


def test_animate_command_writes_frames_and_samples(tmp_path, folder, speech):
    from talking_face_ros.commands import animate
    from talking_face_ros.frames_io import load_frames
    from talking_face_ros.speech.audio import resample_audio, save_wav

    speech = speech[:24000]
    wav = save_wav(tmp_path / "in.wav", np.stack([resample_audio(speech, SR, 22050)] * 2, axis=1), 22050)
    out = tmp_path / "out.npz"
    code = animate.main([str(wav), "--emotion", "overjoyed", "--identity", "us_f1", "--model", str(folder),
                         "--samples", "3", "--seed", "5", "--out", str(out), "--device", "cpu"])
    assert code == 0
    times, weights, samples = load_frames(out)
    n = frame_count(len(speech) / SR, FPS)
    assert weights.shape == (n, 52) and samples.shape == (3, n, 52)
    assert np.array_equal(times, np.arange(n) / FPS)
    assert not np.allclose(samples[0], samples[1], atol=1e-3)
    for suffix in (".csv", ".json"):
        assert animate.main([str(wav), "--model", str(folder), "--out", str(tmp_path / f"o{suffix}")]) == 0
        t, w, _ = load_frames(tmp_path / f"o{suffix}")
        assert w.shape == (n, 52) and np.allclose(t, times, atol=1e-6)
    assert json.loads((tmp_path / "o.json").read_text())["fps"] == FPS
    with pytest.raises(ValueError, match="samples.*npz"):
        animate.main([str(wav), "--model", str(folder), "--samples", "2", "--out", str(tmp_path / "x.csv")])


def test_animate_command_takes_the_speech_encoders_precision(tmp_path, folder, speech):
    from talking_face_ros.commands import animate
    from talking_face_ros.frames_io import load_frames
    from talking_face_ros.speech.audio import save_wav

    wav = save_wav(tmp_path / "in.wav", speech[:24000], SR)
    weights = {}
    for precision in ("fp32", "int8", None):  # None: auto, which is int8 on this CPU
        out = tmp_path / f"{precision}.npz"
        flag = ["--speech-precision", precision] if precision else []
        assert animate.main([str(wav), "--model", str(folder), "--out", str(out), "--device", "cpu"] + flag) == 0
        weights[precision] = load_frames(out)[1]
    assert weights["fp32"].shape == weights["int8"].shape
    assert not np.array_equal(weights["fp32"], weights["int8"])  # the option reached the encoder
    np.testing.assert_array_equal(weights[None], weights["int8"])


def test_animate_command_without_a_model_says_what_to_do(tmp_path, monkeypatch, speech):
    from talking_face_ros.commands import animate
    from talking_face_ros.speech.audio import save_wav

    monkeypatch.setattr(animate, "DEFAULT_MODEL", tmp_path / "no_model_here")
    wav = save_wav(tmp_path / "in.wav", speech, SR)
    with pytest.raises(ValueError, match="talking-face train"):
        animate.main([str(wav), "--out", str(tmp_path / "o.npz")])
    with pytest.raises(ValueError, match="either INPUT.wav"):
        animate.main(["--out", str(tmp_path / "o.npz"), "--model", str(tmp_path)])


def test_animate_command_on_a_corpus_split(tmp_path, small_corpus, folder):
    from talking_face_ros.commands import animate
    from talking_face_ros.evaluation import evaluate
    from talking_face_ros.frames_io import load_frames

    out = tmp_path / "pred"
    assert animate.main(["--corpus", str(small_corpus.root), "--split", "test", "--out-dir", str(out),
                         "--model", str(folder), "--samples", "2", "--limit", "2", "--device", "cpu"]) == 0
    utts = small_corpus.split("test")[:2]
    assert sorted(p.stem for p in out.glob("*.npz")) == sorted(u.id for u in utts)
    for u in utts:
        _, w, s = load_frames(out / f"{u.id}.npz")
        assert len(w) == u.frames and s.shape == (2, u.frames, 52)
    result = evaluate(small_corpus, out, split="test", limit=2, progress=False)
    assert result["scored"] == 2 and result["missing"] == [] and result["bs_mee"] is not None
