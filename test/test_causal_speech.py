"""The causal speech encoder (encoders/causal_speech.py) and its distillation (distill_speech.py)."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from talking_face_ros.encoders import build_speech_encoder
from talking_face_ros.encoders.causal_speech import (
    FRAME_SPAN, FRAME_STRIDE, CausalSpeechConfig, CausalSpeechEncoder, build_network, mel_filterbank,
    save_network,
)
from talking_face_ros.features import ChunkPlan, StreamingFeatures, encode_planned

SR = 16000
PLAN = ChunkPlan(chunk_s=0.02, left_s=0.0, right_s=0.02)  # config/train_low_latency.yaml's


@pytest.fixture(scope="module")
def small_net(tmp_path_factory):
    """A small random network saved as a model folder (trained weights are not the point here)."""
    torch.manual_seed(0)
    net = build_network(CausalSpeechConfig(dim=24, layers=2, feature_dim=12))
    with torch.no_grad():
        net.feature_std.fill_(2.0)
        net.feature_mean.fill_(0.5)
    return save_network(net, tmp_path_factory.mktemp("causal") / "net")


def speech_like(seconds: float, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SR)) / SR
    tone = 0.3 * np.sin(2 * np.pi * (150 + 80 * np.sin(2 * np.pi * 1.5 * t)) * t)
    return (tone * (0.5 + 0.5 * np.sin(2 * np.pi * 3 * t)) + 0.02 * rng.standard_normal(len(t))).astype(np.float32)


def test_frames_follow_the_declared_grid(small_net):
    enc = CausalSpeechEncoder(model_path=small_net)
    assert (enc.frame_stride, enc.frame_span, enc.feature_dim) == (FRAME_STRIDE, FRAME_SPAN, 12)
    for n in (560, 879, 880, 1039, 1200, 16000, 16001):
        assert enc.encode(speech_like(n / SR)[:n]).shape == (enc.num_frames(n), 12)
    assert enc.frame_offset_s == pytest.approx(0.0175, abs=1e-4)


def test_no_frame_reads_later_audio(small_net):
    """Frame g depends on no sample at or after 320 g + 560 (17.5 ms after the time it depicts)."""
    enc = CausalSpeechEncoder(model_path=small_net)
    audio = speech_like(1.0)
    ref = enc.encode(audio)
    k = 8000
    other = audio.copy()
    other[k:] = np.random.default_rng(1).standard_normal(len(audio) - k).astype(np.float32)
    changed = np.nonzero(np.abs(enc.encode(other) - ref).max(axis=1) > 0)[0]
    assert changed.min() == (k - FRAME_SPAN) // FRAME_STRIDE + 1  # the first frame whose span holds sample k


def test_streaming_in_any_pieces_equals_one_pass(small_net):
    enc = CausalSpeechEncoder(model_path=small_net)
    audio = speech_like(2.3, seed=2)
    whole = enc.encode(audio)
    stream = enc.new_stream()
    cuts = np.cumsum(np.random.default_rng(3).integers(1, 900, 200))
    pieces = np.split(audio, cuts[cuts < len(audio)])
    got = np.concatenate([stream.push(p) for p in pieces])
    assert got.shape == whole.shape and np.abs(got - whole).max() < 1e-5


def test_streaming_features_feed_each_sample_once_and_match_offline(small_net):
    """features.StreamingFeatures streams a causal encoder through its state (no re-encoded context):
    pushed in pieces, its motion-rate frames equal encode_planned's, and they are final 76 ms
    (StreamingFeatures.latency_s) after their audio at most."""
    enc = CausalSpeechEncoder(model_path=small_net)
    audio = speech_like(1.7, seed=4)
    offline = encode_planned(enc, audio, PLAN, fps=30.0)
    live = StreamingFeatures(enc, PLAN, fps=30.0)
    assert live.latency_s == pytest.approx(0.02 + 0.02 + 0.02 - 0.0175 + 1 / 30, abs=1e-3)
    out, n = [], 0
    for piece in np.array_split(audio, 85):  # 20 ms pieces, as a microphone sends them
        new = live.push(piece)
        n += len(piece)
        out.append(new)
        emitted = live.frames_emitted
        assert n / SR - (emitted - 1) / 30 <= live.latency_s + 1e-9  # the newest frame is at most this old
        assert live.buffered()["audio"] <= 2 * FRAME_STRIDE  # each sample is given to the stream once
    out.append(live.flush())
    got = np.concatenate(out)
    assert got.shape == offline.shape and np.abs(got - offline).max() < 1e-5


def test_a_causal_plan_needs_no_left_context(small_net):
    enc = CausalSpeechEncoder(model_path=small_net)
    with pytest.raises(ValueError, match="left_s must be 0"):
        StreamingFeatures(enc, ChunkPlan(chunk_s=0.02, left_s=0.2, right_s=0.02), fps=30.0)


def test_registry_and_bad_model_folders(small_net, tmp_path):
    enc = build_speech_encoder({"kind": "causal", "model_path": str(small_net), "threads": 1})
    assert isinstance(enc, CausalSpeechEncoder) and enc.causal
    with pytest.raises(ValueError, match="no readable config.json"):
        CausalSpeechEncoder(model_path=tmp_path / "missing")
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "config.json").write_text(json.dumps({"format": "something else"}))
    with pytest.raises(ValueError, match="not a causal speech encoder"):
        CausalSpeechEncoder(model_path=bad)
    meta = json.loads((small_net / "config.json").read_text())
    meta["config"]["dim"] = 32  # weights of another shape
    wrong = tmp_path / "wrong"
    wrong.mkdir()
    (wrong / "config.json").write_text(json.dumps(meta))
    (wrong / "model.safetensors").write_bytes((small_net / "model.safetensors").read_bytes())
    with pytest.raises(ValueError, match="does not fit|size mismatch"):
        CausalSpeechEncoder(model_path=wrong)
    with pytest.raises(ValueError, match="device"):
        CausalSpeechEncoder(model_path=small_net, device="cuda")
    meta["config"]["dim"] = "wide"  # a field of the wrong type: named, not a crash later
    (wrong / "config.json").write_text(json.dumps(meta))
    with pytest.raises(ValueError, match="CausalSpeechConfig.dim: expected int"):
        CausalSpeechEncoder(model_path=wrong)


def test_mel_filterbank_covers_the_band():
    fb = mel_filterbank(80, f_min=20.0, f_max=7600.0)
    assert fb.shape == (80, 201) and (fb >= 0).all() and (fb.max(axis=1) > 0.3).all()  # no empty band
    peaks = fb.argmax(axis=1)  # 40 Hz FFT bins: the lowest bands share bins
    assert (np.diff(peaks) >= 0).all() and peaks[0] <= 2 and peaks[-1] == 184  # the top band peaks near 7.4 kHz


def test_the_shipped_encoder_loads_and_imitates_moonshine():
    enc = CausalSpeechEncoder()
    assert enc.feature_dim == 416
    meta = json.loads((enc.model_path / "config.json").read_text())
    assert meta["trained"]["val"]["relative"] < 0.6  # imitates Moonshine (distill_speech.py reports it)
    assert enc.encode(speech_like(1.0)).shape == (enc.num_frames(SR), 416)


def test_distillation_lowers_the_error_and_saves_a_loadable_encoder(small_corpus, tmp_path):
    from talking_face_ros.distill_speech import TEACHER_PLAN, distill, find_teacher_cache
    from talking_face_ros.feature_cache import build_feature_cache
    from talking_face_ros.train import read_log

    with pytest.raises(FileNotFoundError, match="no complete Moonshine cache"):
        find_teacher_cache(tmp_path)
    cache = build_feature_cache(small_corpus, encoders_cfg={"speech": {"kind": "moonshine", "device": "cpu"},
                                                            "text": {"kind": "minilm", "device": "cpu"}},
                                plan=ChunkPlan(**TEACHER_PLAN), fps=small_corpus.fps, root=tmp_path / "cache",
                                progress=False)
    out = tmp_path / "student"
    best = distill(small_corpus.root, out, steps=40, batch_size=4, lr=1e-2, warmup=5, eval_every=20, log_every=10,
                   val_utterances=4, config=CausalSpeechConfig(dim=32, layers=1), cache=cache, progress=False)
    log = read_log(out / "log.csv")
    train = [float(r["value"]) for r in log if r["split"] == "train" and r["metric"] == "mse"]
    val = [float(r["value"]) for r in log if r["split"] == "val" and r["metric"] == "mse"]
    assert len(train) == 4 and train[-1] < 0.96 * train[0]  # 40 steps of a tiny network: a start
    assert len(val) == 2 and val[-1] < val[0] and best["mse"] == min(val)
    assert (out / "log.png").is_file()
    enc = CausalSpeechEncoder(model_path=out)
    assert enc.encode(speech_like(0.5)).shape[1] == 416
    assert json.loads((out / "config.json").read_text())["trained"]["best_step"] in (20, 40)


def test_a_causal_bundle_streams_in_microphone_pieces_with_no_model_lookahead(small_net, tmp_path, encoders):
    """The engine on a causal encoder and a causal model (config/train_low_latency.yaml's shape):
    frames streamed in 20 ms pieces equal the offline ones, and a frame is final at most
    StreamingFeatures.latency_s (76 ms) after its audio, with no lookahead of the model."""
    from talking_face_ros.bundle import load_bundle, save_bundle
    from talking_face_ros.encoders import Encoders
    from talking_face_ros.engine import Engine
    from talking_face_ros.model import CodePredictor, HierarchicalMotionVQVAE, PredictorConfig
    from talking_face_ros.model.config import VQVAEConfig

    torch.manual_seed(4)
    common = dict(num_speakers=1, text_dim=384, identity_dim=8, cond_dim=16)
    vq = HierarchicalMotionVQVAE(VQVAEConfig(frame_dim=16, dim=32, code_dim=8, low_codebook_size=32,
                                             high_codebook_size=16, causal=True, low_stride=1, high_stride=4,
                                             kernel=3, high_kernel=3, high_decoder_blocks=0, **common))
    model = CodePredictor(PredictorConfig(speech_dim=12, frame_dim=16, dim=32, heads=2, dropout=0.0, kernel=1,
                                          high_kernel=1, high_attn_right=0, low_attn_right=0, refine_weight=1.0,
                                          refine_branch_layers=2, refine_branch_dim=32, **common), vq)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.1)
    folder = save_bundle(tmp_path / "b", model.eval(), encoders_cfg={"speech": {"kind": "causal",
                                                                                 "model_path": str(small_net)},
                                                                      "text": {"kind": "minilm"}},
                         plan=PLAN, fps=30.0, identities=["default", "v1"])
    b = load_bundle(folder, device="cpu", encoders=Encoders(CausalSpeechEncoder(model_path=small_net), encoders.text))
    assert Engine(b, step_frames=1).latency_s == pytest.approx(0.0758, abs=1e-3)  # every frame: no model lookahead
    engine = Engine(b)  # step_frames auto: the network runs every second frame, one frame more latency
    assert engine.step_frames == 2 and engine.lookahead_frames == 0
    assert engine.latency_s == pytest.approx(0.0758 + 1 / 30, abs=1e-3)
    audio = speech_like(3.0, seed=5)
    _, offline = engine.animate(audio, SR, emotion="sad")
    engine.reset()
    engine.set_emotion("sad")
    got, n = [], 0
    for piece in np.array_split(audio, 150):  # 20 ms
        engine.push(piece, SR)
        n += len(piece)
        new = engine.pull()
        got += new
        if got:
            assert n / SR - got[-1].time <= engine.latency_s + 1e-9
    engine.flush()
    got += engine.pull()
    weights = np.stack([f.weights for f in got])
    assert weights.shape == offline.shape and np.abs(weights - offline).max() < 1e-5
    assert offline.std(axis=0).mean() > 0.01


def test_the_shipped_low_latency_model_streams_the_sample_as_it_animates_it():
    """assets/low_latency_model (what the node loads by default): no model lookahead, a 76 ms
    latency bound, and the bundled sample streamed in 20 ms pieces gives the offline frames."""
    from scipy.io import wavfile

    from talking_face_ros.arkit import INDEX
    from talking_face_ros.engine import Engine
    from talking_face_ros.paths import ASSETS_DIR, LIVE_MODEL_DIR, node_default_model

    assert node_default_model() == LIVE_MODEL_DIR
    assert (LIVE_MODEL_DIR / "model.safetensors").stat().st_size <= 30e6
    torch.set_num_threads(1)
    engine = Engine.from_bundle(LIVE_MODEL_DIR, device="cpu", encoder_options={"speech": {"threads": 1}})
    assert engine.causal_features and engine.lookahead_frames == 0 and engine.step_frames == 2
    assert engine.latency_s == pytest.approx(0.0758 + 1 / 30, abs=1e-3)
    rate, sample = wavfile.read(ASSETS_DIR / "sample.wav")
    audio = sample.astype(np.float32) / 32768.0
    _, offline = engine.animate(audio, rate, emotion="cheerful and friendly")
    engine.reset()
    engine.set_emotion("cheerful and friendly")
    got = []
    for piece in np.array_split(audio, max(1, len(audio) // 320)):
        engine.push(piece, rate)
        got += engine.pull()
    engine.flush()
    got += engine.pull()
    weights = np.stack([f.weights for f in got])
    assert weights.shape == offline.shape and np.abs(weights - offline).max() < 1e-4
    assert offline[:, INDEX["jawOpen"]].max() > 0.1  # the mouth moves
