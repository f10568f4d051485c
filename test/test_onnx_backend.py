"""ONNX export and the onnxruntime backend: parity with PyTorch on the 52 weights, at any length,
through the engine (streamed), for wav2vec2 + CLIP too; provider choice; fp16 precision.

The parity figures are printed (pytest -s shows them); the bounds are what the tests assert.
"""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

pytest.importorskip("onnx", reason="ONNX export needs the onnx package")
ort = pytest.importorskip("onnxruntime")

from talking_face_ros.bundle import load_bundle, make_random_bundle, resolve_precision  # noqa: E402
from talking_face_ros.engine import Engine  # noqa: E402
from talking_face_ros.features import ChunkPlan  # noqa: E402
from talking_face_ros.onnx_backend import (  # noqa: E402
    CPU, CUDA, TENSORRT, OnnxMotionGraphs, choose_providers, export_folder, load_onnx_bundle,
)
from talking_face_ros.onnx_export import MANIFEST, export_bundle, model_digest, read_manifest  # noqa: E402

BOUND = 1e-4  # most |onnxruntime - PyTorch| accepted on the 52 weights (fp32 on the CPU)
SR = 16000
pytestmark = pytest.mark.usefixtures("one_torch_thread")  # conftest.py


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return make_random_bundle(tmp_path_factory.mktemp("onnx") / "bundle", speakers=("v1", "v2"))


@pytest.fixture(scope="module")
def exported(folder, tmp_path_factory):
    """The motion graphs, exported by the CLI command."""
    from talking_face_ros.cli import main

    out = tmp_path_factory.mktemp("onnx") / "export"
    assert main(["onnx-export", str(folder), "--out", str(out), "--no-encoders", "--threads", "1"]) == 0
    return out


@pytest.fixture(scope="module")
def model(folder):
    return load_bundle(folder, device="cpu").model


def random_inputs(model, frames, *, batch=1, seed=0):
    g = torch.Generator().manual_seed(seed)
    speech = torch.randn(batch, frames, model.config.speech_dim, generator=g)
    text = torch.nn.functional.normalize(torch.randn(batch, frames, model.config.text_dim, generator=g), dim=-1)
    identity = torch.randint(0, model.config.num_speakers + 1, (batch,), generator=g)
    return speech, text, identity


def test_exported_graphs_match_pytorch_at_any_length(exported, model):
    manifest = read_manifest(exported)
    assert set(manifest["graphs"]) == {"predictor", "decoder"}
    assert manifest["parity"]["motion"]["max_abs_diff"] < BOUND
    runner = OnnxMotionGraphs(exported, manifest["graphs"], providers=[CPU], threads=1)
    align = model.align
    worst = 0.0
    # One graph, many lengths: 1 frame, odd lengths off the code grid, on it, and long.
    for k, frames in enumerate([1, 7, align, 3 * align + 5, 97, 250]):
        speech, text, identity = random_inputs(model, frames, seed=k)
        ref = model.predict(speech, text, identity).numpy()
        got = runner.weights(speech.numpy(), text.numpy(), identity.numpy())
        assert got.shape == ref.shape == (1, frames, 52)
        codes = model.predict_codes(speech, text, identity)
        mine = runner.codes(speech.numpy(), text.numpy(), identity.numpy())
        assert np.array_equal(mine["low"], codes["low"].numpy()) and np.array_equal(mine["high"], codes["high"].numpy())
        worst = max(worst, float(np.abs(got - ref).max()))
    print(f"\nmotion graphs vs PyTorch, 6 lengths 1..250 frames: max |diff| on the 52 weights {worst:.2e}")
    assert worst < BOUND
    # The batch axis is dynamic too: a batch of two equals the two one by one.
    speech, text, identity = random_inputs(model, 40, batch=2, seed=9)
    both = runner.weights(speech.numpy(), text.numpy(), identity.numpy())
    for b in range(2):
        alone = runner.weights(speech[b:b + 1].numpy(), text[b:b + 1].numpy(), identity[b:b + 1].numpy())
        assert np.abs(both[b] - alone[0]).max() < BOUND


def export_matches_pytorch(folder, tmp_path, *, seed: int, state_matters: bool = True) -> None:
    """Export ``folder``'s network and check codes, the refine state and weights against PyTorch
    (``state_matters``: the refine head is not the untrained zero map, so the state must reach it)."""
    model = load_bundle(folder, device="cpu").model
    out = tmp_path / "onnx"
    manifest = export_bundle(folder, out, encoders=False, threads=1)
    runner = OnnxMotionGraphs(out, manifest["graphs"], providers=[CPU], threads=1)
    for k, frames in enumerate([5, 64]):
        speech, text, identity = random_inputs(model, frames, seed=seed + k)
        codes = model.predict_codes(speech, text, identity)
        mine = runner.codes(speech.numpy(), text.numpy(), identity.numpy())
        assert np.array_equal(mine["low"], codes["low"].numpy()) and np.array_equal(mine["high"], codes["high"].numpy())
        if model.refines:  # the state travels from the predictor graph to the decoder graph
            assert np.abs(mine["hidden"] - codes["hidden"].numpy()).max() < BOUND
            if state_matters:
                other = runner.decode(mine | {"hidden": 0 * mine["hidden"]}, text.numpy(), identity.numpy(),
                                      speech.numpy())
                assert np.abs(other - model.predict(speech, text, identity).numpy()).max() > 0.01
        assert np.abs(runner.weights(speech.numpy(), text.numpy(), identity.numpy())
                      - model.predict(speech, text, identity).numpy()).max() < BOUND


@pytest.mark.parametrize("options", [dict(head="latent"), dict(refine=True), dict(refine=True, refine_branch=2)],
                         ids=["latent-head", "refine", "refine-branch"])
def test_other_predictors_export_with_the_same_codes(tmp_path, options):
    other = make_random_bundle(tmp_path / "bundle", **options)
    model = load_bundle(other, device="cpu").model
    assert model.config.head == options.get("head", "logits") and model.refines == options.get("refine", False)
    assert model.config.refine_branch_layers == options.get("refine_branch", 0)
    export_matches_pytorch(other, tmp_path, seed=20)


def test_the_causal_low_latency_network_exports_with_the_same_codes(tmp_path):
    """config/train_low_latency.yaml's network (VQVAEConfig.causal: shifted, held high codes)."""
    from talking_face_ros.bundle import random_bundle_of_config
    from talking_face_ros.paths import REPO_DIR

    folder = random_bundle_of_config(REPO_DIR / "config" / "train_low_latency.yaml", tmp_path / "bundle")
    model = load_bundle(folder, device="cpu").model
    assert model.causal and model.lookahead == 0
    export_matches_pytorch(folder, tmp_path, seed=30, state_matters=False)  # untrained: its refine head is zero


def assert_same_frames(torch_frames, onnx_frames, *, frames: int, what: str) -> None:
    """Two engines' ``pull_arrays``: the same ``frames`` indices, weights within BOUND."""
    (idx_t, _, w_t), (idx_o, _, w_o) = torch_frames, onnx_frames
    assert np.array_equal(idx_t, idx_o) and len(idx_t) == frames
    diff = float(np.abs(w_t - w_o).max())
    print(f"\n{what}, torch vs onnx backend, {len(idx_t)} frames: max |diff| {diff:.2e}")
    assert diff < BOUND


def test_engine_with_the_onnx_backend_streams_the_torch_frames(folder, exported):
    torch_engine = Engine.from_bundle(folder, device="cpu")
    onnx_engine = Engine.from_bundle(folder, device="cpu", backend="onnx", onnx_dir=exported)
    assert onnx_engine.backend == "onnxruntime (CPUExecutionProvider)"
    assert torch_engine.backend == "torch (cpu, float32)"
    # The torch engine draws each code once (engine._CodePlan), which needs a few frames less
    # than the whole network's reach that the onnx graphs are run with.
    assert torch_engine.latency_s <= onnx_engine.latency_s
    assert onnx_engine.lookahead_frames == onnx_engine.model.lookahead
    audio = (np.random.default_rng(3).standard_normal(int(2.7 * SR)) * 0.1).astype(np.float32)
    sizes = np.random.default_rng(4).integers(200, 7000, 100)
    out = []
    for engine in (torch_engine, onnx_engine):
        engine.set_emotion("furious")
        engine.set_identity("v2")
        i = 0
        for n in sizes:
            engine.push(audio[i:i + n], SR)
            i += n
            if i >= len(audio):
                break
        engine.set_emotion("calm")
        engine.flush()
        out.append(engine.pull_arrays())
    assert_same_frames(*out, frames=81, what="engine streamed")
    # temperature > 0 is not in the graphs: the PyTorch model samples them, per window (the torch
    # engine draws per code, so the two draw differently); a seed repeats a draw.
    a = onnx_engine.animate(audio, SR, temperature=1.0, seed=5)[1]
    assert np.array_equal(a, onnx_engine.animate(audio, SR, temperature=1.0, seed=5)[1])
    assert np.abs(a - onnx_engine.animate(audio, SR)[1]).max() > 1e-3


def test_export_folder_is_found_beside_the_bundle_or_made_in_the_cache(folder, exported, tmp_path, monkeypatch):
    import functools
    import shutil

    from talking_face_ros import onnx_export

    monkeypatch.setenv("TALKING_FACE_CACHE", str(tmp_path / "cache"))
    digest = model_digest(folder)
    assert export_folder(folder, exported) == exported
    # Another bundle's export is refused, naming the mismatch.
    other = make_random_bundle(tmp_path / "other", seed=1)
    with pytest.raises(ValueError, match="other weights"):
        export_folder(other, exported)
    with pytest.raises(ValueError, match="other weights"):
        read_manifest(exported, digest=model_digest(other))
    # BUNDLE/onnx is used as it is; without it the export is made once in the cache.
    copy = tmp_path / "copy"
    shutil.copytree(folder, copy)
    shutil.copytree(exported, copy / "onnx")
    assert export_folder(copy) == copy / "onnx"
    monkeypatch.setattr(onnx_export, "export_bundle", functools.partial(onnx_export.export_bundle, threads=1))
    made = export_folder(other)
    assert made.parent == tmp_path / "cache" / "onnx" and (made / MANIFEST).is_file()
    manifest = read_manifest(made)
    assert manifest["model_sha256"] == model_digest(other) != digest
    # The cache export holds the text encoder too (MiniLM, mean-pooled in the graph); Moonshine is
    # run as it is.
    assert set(manifest["graphs"]) == {"predictor", "decoder", "text"}
    assert manifest["parity"]["text"]["max_abs_diff"] < BOUND
    assert "already an onnxruntime model" in manifest["encoders"]["speech"]["note"]
    assert export_folder(other) == made  # the second time it is found, not exported again


def test_animate_command_takes_the_backend(folder, exported, tmp_path):
    import shutil

    from talking_face_ros.commands import animate
    from talking_face_ros.frames_io import load_frames
    from talking_face_ros.speech.audio import save_wav

    bundle = tmp_path / "bundle"
    shutil.copytree(folder, bundle)
    shutil.copytree(exported, bundle / "onnx")
    wav = save_wav(tmp_path / "in.wav", (np.random.default_rng(6).standard_normal(20_000) * 0.1).astype(np.float32),
                   SR)
    weights = {}
    for backend in ("torch", "onnx"):
        out = tmp_path / f"{backend}.npz"
        assert animate.main([str(wav), "--model", str(bundle), "--backend", backend, "--device", "cpu",
                             "--emotion", "sad", "--out", str(out)]) == 0
        weights[backend] = load_frames(out)[1]
    assert weights["torch"].shape == weights["onnx"].shape == (38, 52)
    assert np.abs(weights["torch"] - weights["onnx"]).max() < BOUND


def test_broken_exports_give_clear_errors(folder, exported, tmp_path):
    import shutil

    broken = tmp_path / "broken"
    shutil.copytree(exported, broken)
    (broken / "decoder.onnx").write_bytes(b"not a graph")
    manifest = read_manifest(broken)
    with pytest.raises(ValueError, match="decoder.onnx: onnxruntime cannot load it"):
        OnnxMotionGraphs(broken, manifest["graphs"], providers=[CPU])
    (broken / "decoder.onnx").unlink()
    with pytest.raises(ValueError, match="decoder.onnx' is missing"):
        read_manifest(broken)
    (broken / MANIFEST).write_text("{")
    with pytest.raises(ValueError, match="not valid JSON"):
        read_manifest(broken)
    with pytest.raises(FileNotFoundError, match="onnx-export"):
        read_manifest(tmp_path / "nothing")
    with pytest.raises(ValueError, match="backend must be one of torch, onnx"):
        Engine.from_bundle(folder, device="cpu", backend="tensorflow")
    with pytest.raises(ValueError, match="precision must be one of"):
        Engine.from_bundle(folder, device="cpu", precision="bf16")
    with pytest.raises(FileNotFoundError, match="no model bundle"):
        Engine.from_bundle(tmp_path / "missing", device="cpu", backend="onnx")


def test_regression_bundle_exports_as_one_graph(tmp_path):
    folder = make_random_bundle(tmp_path / "reg", kind="regression")
    manifest = export_bundle(folder, tmp_path / "out", encoders=False, threads=1)
    assert set(manifest["graphs"]) == {"regression"}
    model = load_bundle(folder, device="cpu").model
    runner = OnnxMotionGraphs(tmp_path / "out", manifest["graphs"], providers=[CPU], threads=1)
    for frames in (3, 61):
        speech, text, identity = random_inputs(model, frames, seed=frames)
        diff = np.abs(runner.weights(speech.numpy(), text.numpy(), identity.numpy())
                      - model.predict(speech, text, identity).numpy()).max()
        assert diff < BOUND


# ---------------------------------------------------------------------------------------------
# wav2vec2 + CLIP (tiny random weights in hub layout)


@pytest.fixture(scope="module")
def w2v_clip_bundle(tmp_path_factory):
    from talking_face_ros.encoders.testing import save_random_clip, save_random_wav2vec2

    root = tmp_path_factory.mktemp("w2v_clip")
    w2v = save_random_wav2vec2(root / "w2v", feat_extract_norm="layer", conv_bias=True)
    clip = save_random_clip(root / "clip", "furious angry calm relaxed happy and very the".split())
    # wav2vec2 frames are 20 ms: the plan must be whole frames
    folder = make_random_bundle(root / "bundle", speech_dim=32, text_dim=16, plan=ChunkPlan(0.48, 1.92, 0.2))
    meta = json.loads((folder / "bundle.json").read_text())
    meta["encoders"] = {"speech": {"kind": "wav2vec2", "model": str(w2v)}, "text": {"kind": "clip", "model": str(clip)}}
    (folder / "bundle.json").write_text(json.dumps(meta))
    return folder


def test_wav2vec2_and_clip_export_and_run_in_onnxruntime(w2v_clip_bundle, tmp_path):
    out = tmp_path / "export"
    manifest = export_bundle(w2v_clip_bundle, out, threads=1)
    assert set(manifest["graphs"]) == {"predictor", "decoder", "speech", "text"}
    print(f"\nwav2vec2 export: max |diff| {manifest['parity']['speech']['max_abs_diff']:.2e}; "
          f"CLIP text: {manifest['parity']['text']['max_abs_diff']:.2e}")
    assert manifest["parity"]["speech"]["max_abs_diff"] < BOUND
    assert manifest["parity"]["text"]["max_abs_diff"] < BOUND
    torch_bundle = load_bundle(w2v_clip_bundle, device="cpu")
    onnx_bundle, onnx_model = load_onnx_bundle(w2v_clip_bundle, device="cpu", onnx_dir=out, threads=1)
    assert type(onnx_bundle.encoders.speech).__name__ == "OnnxSpeechEncoder"
    assert type(onnx_bundle.encoders.text).__name__ == "OnnxTextEncoder"
    # Two lengths of audio through the one speech graph (dynamic length), odd sample counts.
    rng = np.random.default_rng(0)
    for n in (5_001, 20_123):
        audio = (rng.standard_normal(n) * 0.2).astype(np.float32)
        ref = torch_bundle.encoders.speech.encode(audio)
        got = onnx_bundle.encoders.speech.encode(audio)
        assert got.shape == ref.shape and np.abs(got - ref).max() < BOUND
    texts = ["furious", "very calm and relaxed", "happy"]  # different token counts: padding in one batch
    assert np.abs(onnx_bundle.encoders.text.encode(texts) - torch_bundle.encoders.text.encode(texts)).max() < BOUND
    audio = (rng.standard_normal(int(1.9 * SR)) * 0.2).astype(np.float32)
    a = Engine(torch_bundle).animate(audio, SR, emotion="angry")[1]
    b = Engine(onnx_bundle, model=onnx_model).animate(audio, SR, emotion="angry")[1]
    assert a.shape == b.shape and np.abs(a - b).max() < BOUND


# ---------------------------------------------------------------------------------------------
# Execution providers (lists as onnxruntime-gpu / a TensorRT build would report them)


def test_providers_are_chosen_tensorrt_then_cuda_then_cpu(tmp_path):
    every = [TENSORRT, CUDA, CPU]
    chosen = choose_providers("auto", available=every, cache_dir=tmp_path,
                              profiles={"min": "speech:1x1x416", "max": "speech:1x900x416"})
    assert [name for name, _ in chosen] == [TENSORRT, CUDA, CPU]
    trt = chosen[0][1]
    assert trt["trt_fp16_enable"] is False  # fp32 unless fp16 is asked for
    assert trt["trt_engine_cache_enable"] and trt["trt_engine_cache_path"] == str(tmp_path)
    assert trt["trt_profile_min_shapes"] == "speech:1x1x416" and "trt_profile_opt_shapes" not in trt
    assert chosen[1][1]["cudnn_conv_algo_search"] == "HEURISTIC"
    assert choose_providers("cuda", precision="fp16", available=every)[0][1]["trt_fp16_enable"] is True
    assert [n for n, _ in choose_providers("auto", available=[CUDA, CPU])] == [CUDA, CPU]
    assert choose_providers("cuda:1", available=[CUDA, CPU])[0] == (CUDA, {"device_id": 1,
                                                                           "cudnn_conv_algo_search": "HEURISTIC"})
    assert choose_providers("cpu", available=every) == [(CPU, {})]
    assert choose_providers("auto", available=["AzureExecutionProvider", CPU]) == [(CPU, {})]
    with pytest.raises(ValueError, match="no CUDA or TensorRT execution provider"):
        choose_providers("cuda", available=[CPU])
    with pytest.raises(ValueError, match="device must be"):
        choose_providers("gpu", available=every)
    with pytest.raises(ValueError, match="precision must be"):
        choose_providers("auto", precision="int8", available=every)
    # What this machine's onnxruntime offers decides when no list is given.
    assert [n for n, _ in choose_providers("auto")][-1] == CPU


def test_tensorrt_profiles_cover_every_window_the_engine_runs(folder, exported):
    from talking_face_ros.onnx_backend import _motion_profiles

    manifest = read_manifest(exported)
    profiles = _motion_profiles(manifest, window_frames=900)
    left, right = manifest["receptive_field"]
    align = manifest["align"]

    def frames(spec):
        return int(spec.split(",")[0].split(":")[1].split("x")[1])

    assert frames(profiles["predictor"]["min"]) == 1
    assert frames(profiles["predictor"]["max"]) >= 900 + left + right + align - 1
    assert frames(profiles["predictor"]["max"]) % align == 0
    low, high = profiles["decoder"]["max"].split(",")[:2]
    steps = manifest["graphs"]["predictor"]["steps"]
    assert low == f"low_codes:1x{frames(profiles['predictor']['max']) // steps['low_stride']}"
    assert high == f"high_codes:1x{frames(profiles['predictor']['max']) // steps['high_stride']}"


# ---------------------------------------------------------------------------------------------
# Precision


@pytest.mark.parametrize("refine", [0, 1, 2], ids=["codes", "refine-head", "refine-branch"])
def test_precision_auto_is_fp16_on_cuda_only_and_fp16_keeps_the_weights(folder, tmp_path, refine):
    assert resolve_precision("auto", "cpu") == "fp32"
    assert resolve_precision("auto", "cuda") == resolve_precision("auto", "cuda:1") == "fp16"
    assert resolve_precision("fp32", "cuda") == "fp32" and resolve_precision("fp16", "cpu") == "fp16"
    with pytest.raises(ValueError, match="precision must be one of auto, fp32, fp16"):
        resolve_precision("half", "cpu")
    if refine:  # the engine keeps the refine head's state (and its branch's motion) between its stages
        folder = make_random_bundle(tmp_path / "bundle", refine=True, refine_branch=2 if refine == 2 else 0)
    full = Engine.from_bundle(folder, device="cpu")
    half = Engine.from_bundle(folder, device="cpu", precision="fp16")  # fp16 on the CPU: slow but same numbers
    assert half.bundle.precision == "fp16" and next(half.model.parameters()).dtype == torch.float16
    assert half.backend == "torch (cpu, float16)" and full.bundle.precision == "fp32"
    audio = (np.random.default_rng(8).standard_normal(int(2.2 * SR)) * 0.1).astype(np.float32)
    a = full.animate(audio, SR, emotion="calm")[1]
    b = half.animate(audio, SR, emotion="calm")[1]
    assert b.dtype == np.float32
    print(f"\nfp16 vs fp32 (CPU), {len(a)} frames: max |diff| {np.abs(a - b).max():.2e}")
    assert np.abs(a - b).max() < 5e-3


def test_upsampling_positions_stay_exact_in_fp16_past_2048_frames():
    from talking_face_ros.model.layers import upsample_linear

    x = torch.randn(1, 400, 4)  # 3,200 frames at stride 8: beyond what fp16 can count
    full = upsample_linear(x, 8, torch.tensor([400]))
    half = upsample_linear(x.half(), 8, torch.tensor([400])).float()
    assert (full - half).abs().max() < 1e-2


def test_the_low_latency_model_runs_its_causal_encoder_in_onnxruntime(tmp_path):
    """The shipped low-latency model exported whole, its causal speech encoder included
    (``speech_step.onnx``, state in and out): streamed in 20 ms pieces, the same frames as PyTorch."""
    from talking_face_ros.onnx_backend import OnnxCausalSpeechEncoder
    from talking_face_ros.paths import LIVE_MODEL_DIR

    out = tmp_path / "onnx"
    manifest = export_bundle(LIVE_MODEL_DIR, out, threads=1)
    assert manifest["graphs"]["speech"]["kind"] == "causal"
    assert manifest["parity"]["speech"]["max_abs_diff"] < 1e-4
    assert {i[0] for i in manifest["graphs"]["speech"]["inputs"]} == {"audio", "past", "state"}
    torch_engine = Engine.from_bundle(LIVE_MODEL_DIR, device="cpu")
    onnx_engine = Engine.from_bundle(LIVE_MODEL_DIR, device="cpu", backend="onnx", onnx_dir=out)
    assert isinstance(onnx_engine.bundle.encoders.speech, OnnxCausalSpeechEncoder)
    assert onnx_engine.causal_features and onnx_engine.latency_s == pytest.approx(torch_engine.latency_s)
    audio = (np.random.default_rng(7).standard_normal(int(2.3 * SR)) * 0.1).astype(np.float32)
    out_frames = []
    for engine in (torch_engine, onnx_engine):
        for i in range(0, len(audio), 320):
            engine.push(audio[i:i + 320], SR)
        engine.flush()
        out_frames.append(engine.pull_arrays())
    assert_same_frames(*out_frames, frames=69, what="low-latency model streamed")
