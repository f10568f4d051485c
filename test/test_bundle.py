"""Model bundles: round trip, what is stored, identities, and the checks on bad folders."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from talking_face_ros.bundle import (
    DEFAULT_EMOTION, META_FILE, MODEL_FILE, Bundle, load_bundle, make_random_bundle, read_meta, save_bundle,
)
from talking_face_ros.features import ChunkPlan
from talking_face_ros.model.checkpoint import load_model

ENCODERS = {"speech": {"kind": "moonshine"}, "text": {"kind": "minilm"}}


@pytest.fixture(scope="module")
def random_folder(tmp_path_factory):
    return make_random_bundle(tmp_path_factory.mktemp("bundle") / "b", speakers=("us_f1", "gb_m2", "sc_f3"))


def predict(model, seed=0, frames=40):
    g = torch.Generator().manual_seed(seed)
    speech = torch.randn(frames, model.config.speech_dim, generator=g)
    text = torch.randn(model.config.text_dim, generator=g)
    return model.predict(speech, text, min(2, model.config.num_speakers))


def test_round_trip_keeps_weights_and_facts(random_folder, encoders):
    b = load_bundle(random_folder, device="cpu", encoders=encoders)
    assert isinstance(b, Bundle) and b.folder == random_folder
    assert b.identities == ["default", "us_f1", "gb_m2", "sc_f3"]
    assert b.plan == ChunkPlan() and b.fps == 30.0
    assert b.model_kind == "predictor" and b.default_emotion == DEFAULT_EMOTION == "neutral"
    assert b.meta["trained"] == {"random": True, "seed": 0}
    assert b.meta["model"]["lookahead_frames"] == b.model.lookahead
    assert not b.model.training
    # The network in the folder is the one saved: same output as loading the checkpoint alone.
    alone = load_model(random_folder / MODEL_FILE)
    out = predict(b.model)
    assert out.shape == (40, 52) and float(out.std()) > 0.01
    assert torch.equal(out, predict(alone))


def test_identity_index(random_folder, encoders):
    b = load_bundle(random_folder, device="cpu", encoders=encoders)
    assert b.identity_index("gb_m2") == 2
    assert b.identity_index("sc_f3") == 3
    for name in (None, "", "default"):
        assert b.identity_index(name) == 0
    with pytest.warns(UserWarning, match="'rp_m6' is not one of this model's speakers"):
        assert b.identity_index("rp_m6") == 0


def test_full_load_builds_the_encoders_in_the_config(random_folder):
    b = load_bundle(random_folder, device="cpu", encoder_options={"speech": {"threads": 2}})
    assert b.encoders.speech.name == "moonshine-base" and b.encoders.text.dim == 384
    assert b.encoders.speech.session.get_session_options().intra_op_num_threads == 2


def test_regression_bundle_and_fp16(tmp_path, encoders):
    folder = make_random_bundle(tmp_path / "reg", kind="regression", speakers=("a",))
    b = load_bundle(folder, device="cpu", encoders=encoders)
    assert b.model_kind == "regression" and b.identities == ["default", "a"]
    half = save_bundle(tmp_path / "half", b.model, encoders_cfg=ENCODERS, plan=b.plan, fps=25.0,
                       identities=b.identities, extra={"default_emotion": "calm"}, dtype=torch.float16)
    size = lambda f: (f / MODEL_FILE).stat().st_size
    assert size(half) < 0.6 * size(folder)
    h = load_bundle(half, device="cpu", encoders=encoders)
    assert h.fps == 25.0 and h.default_emotion == "calm"
    a, c = predict(b.model, frames=30), predict(h.model, frames=30)
    assert torch.allclose(a, c, atol=2e-2) and not torch.equal(a, c)


def test_runtime_encoder_options_are_not_stored(tmp_path, encoders):
    b = load_bundle(make_random_bundle(tmp_path / "a"), device="cpu", encoders=encoders)
    cfg = {"speech": {"kind": "moonshine", "threads": 4, "device": "cuda"}, "text": "minilm"}
    folder = save_bundle(tmp_path / "b", b.model, encoders_cfg=cfg, plan=b.plan, fps=30, identities=b.identities)
    meta = json.loads((folder / META_FILE).read_text())
    assert meta["encoders"] == ENCODERS
    assert meta["plan"] == {"chunk_s": 0.48, "left_s": 1.92, "right_s": 0.192}
    assert meta["identities"] == ["default", "v1", "v2"] and meta["fps"] == 30.0


def test_save_rejects_bad_arguments(tmp_path, encoders):
    b = load_bundle(make_random_bundle(tmp_path / "a"), device="cpu", encoders=encoders)
    ok = dict(encoders_cfg=ENCODERS, plan=b.plan, fps=30.0, identities=b.identities)
    cases = [
        (dict(identities=["default", "v1"]), "3 rows"),
        (dict(identities=["default", "v1", "v1"]), "repeat"),
        (dict(identities=[]), "non-empty list"),
        (dict(fps=0), "fps"),
        (dict(plan={"chunk_s": 0.48}), "ChunkPlan"),
        (dict(encoders_cfg={"audio": {"kind": "moonshine"}}), "unknown part"),
        (dict(encoders_cfg={"speech": {"model": "x"}}), "kind"),
        (dict(extra={"fps": 25}), "own fields"),
        (dict(extra={"trained": {"when": object()}}), "plain JSON"),
        (dict(extra={"default_emotion": 3}), "default_emotion"),
    ]
    for change, message in cases:
        with pytest.raises(ValueError, match=message):
            save_bundle(tmp_path / "bad", b.model, **{**ok, **change})
    with pytest.raises(ValueError, match="not HierarchicalMotionVQVAE"):
        save_bundle(tmp_path / "bad", b.model.vqvae, **ok)
    assert not (tmp_path / "bad" / META_FILE).exists()


def edit_meta(folder, **changes):
    meta = json.loads((folder / META_FILE).read_text())
    for k, v in changes.items():
        if v is None:
            meta.pop(k)
        else:
            meta[k] = v
    (folder / META_FILE).write_text(json.dumps(meta))


@pytest.mark.parametrize("changes, message", [
    (dict(format="other"), "not a talking_face_bundle"),
    (dict(version=2), "version 2"),
    (dict(fps=None), "'fps' is missing"),
    (dict(fps=-30), "'fps' must be a positive"),
    (dict(plan={"chunk_s": -1}), "'plan'.*chunk_s"),
    (dict(model_kind="diffusion"), "'model_kind' must be one of"),
    (dict(identities=["default", 3]), "'identities'"),
    (dict(encoders=["moonshine"]), "'encoders' must be an object"),
])
def test_read_meta_names_the_bad_field(tmp_path, random_folder, changes, message):
    import shutil

    folder = tmp_path / "b"
    shutil.copytree(random_folder, folder)
    edit_meta(folder, **changes)
    with pytest.raises(ValueError, match=message):
        read_meta(folder)


def test_load_checks_meta_against_model_and_encoders(tmp_path, random_folder, encoders):
    import shutil

    with pytest.raises(FileNotFoundError, match="no model bundle"):
        load_bundle(tmp_path / "nowhere", encoders=encoders)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="bundle.json is missing"):
        load_bundle(tmp_path / "empty", encoders=encoders)
    cases = [
        (dict(identities=["default", "a"]), "2 names for a model with 3 speakers"),
        (dict(model_kind="regression"), "holds a CodePredictor"),
        (dict(plan={"chunk_s": 0.5, "left_s": 1.92, "right_s": 0.192}), "'plan' does not suit moonshine"),
    ]
    for i, (changes, message) in enumerate(cases):
        folder = tmp_path / f"c{i}"
        shutil.copytree(random_folder, folder)
        edit_meta(folder, **changes)
        with pytest.raises(ValueError, match=message):
            load_bundle(folder, device="cpu", encoders=encoders)
    (folder / META_FILE).write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        load_bundle(folder, encoders=encoders)
    # A network made for other encoders is refused by size.
    wide = make_random_bundle(tmp_path / "wide", speech_dim=768)
    with pytest.raises(ValueError, match="768-d speech features but moonshine-base gives 416"):
        load_bundle(wide, device="cpu", encoders=encoders)
    # A corrupted checkpoint is caught by the checkpoint's own checks.
    broken = tmp_path / "broken"
    shutil.copytree(random_folder, broken)
    data = bytearray((broken / MODEL_FILE).read_bytes())
    data[-100] ^= 0xFF
    (broken / MODEL_FILE).write_bytes(bytes(data))
    with pytest.raises(ValueError, match="checksum"):
        load_bundle(broken, encoders=encoders)


def test_random_bundles_differ_by_seed(tmp_path, encoders):
    a = load_bundle(make_random_bundle(tmp_path / "a", seed=1), device="cpu", encoders=encoders)
    b = load_bundle(make_random_bundle(tmp_path / "b", seed=2), device="cpu", encoders=encoders)
    assert not np.allclose(predict(a.model).numpy(), predict(b.model).numpy(), atol=1e-3)
    with pytest.raises(ValueError, match="kind"):
        make_random_bundle(tmp_path / "c", kind="gan")
