"""The networks: shapes at odd lengths, masks, locality (windows == one pass), conditions,
sampling, checkpoints, configs, and a small overfit run."""
from __future__ import annotations

import math

import pytest
import torch

from talking_face_ros.arkit import INDEX
from talking_face_ros.model import (
    CodePredictor, HierarchicalMotionVQVAE, PredictorConfig, RegressionBaseline, RegressionConfig,
    VQVAEConfig, apply_in_windows, load_model, save_model,
)
from talking_face_ros.lip_geometry import lip_gap
from talking_face_ros.model.layers import LocalAttention, Reach, lip_gap_loss, upsample_linear

SPEECH_DIM, TEXT_DIM, SPEAKERS = 20, 12, 3
SMALL = dict(num_speakers=SPEAKERS, text_dim=TEXT_DIM, cond_dim=16, identity_dim=8)


def small_vq(**kw) -> HierarchicalMotionVQVAE:
    cfg = dict(frame_dim=16, dim=32, code_dim=8, low_codebook_size=32, high_codebook_size=16, **SMALL)
    cfg.update(kw)
    return HierarchicalMotionVQVAE(VQVAEConfig(**cfg))


def small_predictor(vq=None, **kw) -> CodePredictor:
    cfg = dict(speech_dim=SPEECH_DIM, frame_dim=16, dim=32, heads=2, dropout=0.0, **SMALL)
    cfg.update(kw)
    return CodePredictor(PredictorConfig(**cfg), vq if vq is not None else small_vq())


def small_baseline(**kw) -> RegressionBaseline:
    cfg = dict(speech_dim=SPEECH_DIM, frame_dim=16, dim=32, heads=2, layers=2, dropout=0.0, **SMALL)
    cfg.update(kw)
    return RegressionBaseline(RegressionConfig(**cfg))


def trained_like(model):
    """Perturb every trainable weight: FiLM layers and the null text start at zero, which would
    hide the conditions' effect; a trained model has no such zeros. (A predictor's VQ-VAE is
    frozen and keeps the weights it came with.)"""
    torch.manual_seed(123)
    with torch.no_grad():
        for p in model.parameters():
            if p.requires_grad:
                p.add_(torch.randn_like(p) * 0.1)
    return model.eval()


@pytest.fixture(autouse=True)
def one_thread():
    """One intra-op thread: on the shared 2-core machine two OpenMP threads competing with other
    processes spin-wait and run many times slower; results do not depend on the thread count."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def gen(seed):
    return torch.Generator().manual_seed(seed)


# ---------------------------------------------------------------------------------------------
# Shapes, ranges, masks


@pytest.mark.parametrize("levels", [1, 2])
def test_vqvae_shapes_and_range_at_odd_lengths(levels):
    torch.manual_seed(0)
    vq = small_vq(levels=levels)
    align = vq.align
    for T in (1, 7, 31, 301):
        motion = torch.rand(2, T, 52, generator=gen(T))
        vq.train()
        losses = vq(motion, identity=torch.tensor([0, 3]), text=torch.randn(2, TEXT_DIM),
                    emotion=torch.tensor([1, -1]))
        assert all(math.isfinite(v.item()) for v in losses.values()), losses
        losses["loss"].backward()
        vq.eval()
        codes = vq.encode_codes(motion)
        padded = -(-T // align) * align
        assert codes["low"].shape == (2, padded // 2)
        assert (codes["high"] is None) == (levels == 1)
        if levels == 2:
            assert codes["high"].shape == (2, padded // 8)
        out = vq.reconstruct(motion)
        assert out.shape == (2, T, 52)
        assert float(out.min()) >= 0.0 and float(out.max()) <= 1.0


def test_predictor_and_baseline_shapes_at_odd_lengths():
    for levels in (1, 2):
        pred = small_predictor(small_vq(levels=levels))
        base = small_baseline()
        for T in (1, 7, 31, 301):
            speech = torch.randn(2, T, SPEECH_DIM, generator=gen(T))
            motion = torch.rand(2, T, 52, generator=gen(T + 1))
            for model in (pred.train(), base.train()):
                losses = model(speech, motion=motion, identity=torch.tensor([1, 0]),
                               text=torch.randn(2, TEXT_DIM))
                assert all(math.isfinite(v.item()) for v in losses.values()), losses
                losses["loss"].backward()
                out = model.predict(speech[0])
                assert out.shape == (T, 52)
                assert float(out.min()) >= 0.0 and float(out.max()) <= 1.0
            codes = pred.predict_codes(speech)
            assert codes["low"].shape == (2, -(-T // pred.align) * pred.align // 2)
            assert (codes["high"] is None) == (levels == 1)


@torch.no_grad()
def test_output_clamped_to_unit_range_while_raw_output_is_not():
    vq = trained_like(small_vq())
    codes = vq.encode_codes(torch.rand(1, 40, 52, generator=gen(1)))
    weights = vq.decode_codes(codes["low"], codes["high"], frames=40)
    parts = vq.decode(vq.vq_low.lookup(codes["low"]), vq.vq_high.lookup(codes["high"]), frames=40,
                      return_parts=True)
    raw = parts["raw"]
    assert float(raw.min()) < 0.0 or float(raw.max()) > 1.0  # the clamp has work to do
    assert torch.equal(weights, raw.clamp(0, 1))
    assert torch.allclose(parts["raw"], parts["fine"] + parts["coarse"])
    sig = trained_like(small_vq(output_activation="sigmoid"))
    parts = sig.decode(sig.vq_low.lookup(codes["low"]), sig.vq_high.lookup(codes["high"]), frames=40,
                       return_parts=True)
    assert torch.equal(parts["weights"], torch.sigmoid(parts["raw"]))


def test_padded_batch_equals_single_sequences():
    vq = trained_like(small_vq())
    pred = trained_like(small_predictor(vq))
    base = trained_like(small_baseline())
    lengths = (37, 20)
    motion = torch.rand(2, 37, 52, generator=gen(2))
    speech = torch.randn(2, 37, SPEECH_DIM, generator=gen(3))
    text = torch.randn(2, TEXT_DIM, generator=gen(4))
    identity = torch.tensor([1, 2])
    mask = torch.zeros(2, 37, dtype=torch.bool)
    for i, n in enumerate(lengths):
        mask[i, :n] = True
    motion[1, 20:] = 5.0  # garbage in the padding must not leak
    speech[1, 20:] = -9.0

    rec = vq.reconstruct(motion, mask=mask, identity=identity, text=text)
    out = pred.predict(speech, text, identity, mask=mask)
    reg = base.predict(speech, text, identity, mask=mask)
    for i, n in enumerate(lengths):
        one = vq.reconstruct(motion[i:i + 1, :n], identity=identity[i:i + 1], text=text[i:i + 1])
        assert torch.allclose(rec[i:i + 1, :n], one, atol=1e-5)
        single = pred.predict(speech[i, :n], text[i], int(identity[i]))
        assert torch.allclose(out[i, :n], single, atol=1e-5)
        assert torch.allclose(reg[i, :n], base.predict(speech[i, :n], text[i], int(identity[i])), atol=1e-5)


def test_losses_ignore_padded_frames():
    vq = trained_like(small_vq())
    pred = trained_like(small_predictor(vq))
    motion = torch.rand(2, 30, 52, generator=gen(5))
    speech = torch.randn(2, 30, SPEECH_DIM, generator=gen(6))
    mask = torch.ones(2, 30, dtype=torch.bool)
    mask[0, 17:] = False
    other_motion, other_speech = motion.clone(), speech.clone()
    other_motion[0, 17:] = 0.9
    other_speech[0, 17:] = 3.0
    with torch.no_grad():  # eval mode: no codebook update, no dropout
        a, b = vq(motion, mask=mask), vq(other_motion, mask=mask)
        c, d = pred(speech, motion=motion, mask=mask), pred(other_speech, motion=other_motion, mask=mask)
        e = vq(other_motion)  # control: without the mask the padding counts
    for k in ("recon", "velocity", "coarse", "commit"):
        assert float(a[k]) == pytest.approx(float(b[k]), rel=1e-5), k
    for k in ("ce_high", "ce_low"):
        assert float(c[k]) == pytest.approx(float(d[k]), rel=1e-5), k
    assert float(e["recon"]) != pytest.approx(float(b["recon"]), rel=1e-3)


def test_bad_inputs_raise_clear_errors():
    vq = small_vq()
    with pytest.raises(ValueError, match="motion must be"):
        vq(torch.rand(2, 10, 51))
    with pytest.raises(ValueError, match="identity must be in"):
        vq(torch.rand(2, 10, 52), identity=torch.tensor([0, SPEAKERS + 1]))
    with pytest.raises(ValueError, match="text embedding"):
        vq(torch.rand(2, 10, 52), text=torch.randn(2, TEXT_DIM + 1))
    with pytest.raises(ValueError, match="prefix"):
        vq(torch.rand(1, 4, 52), mask=torch.tensor([[True, False, True, False]]))
    with pytest.raises(ValueError, match="same \\(batch, frames\\)"):
        small_predictor(vq)(torch.randn(1, 10, SPEECH_DIM), motion=torch.rand(1, 11, 52))


# ---------------------------------------------------------------------------------------------
# Locality: receptive field and windowed processing


def changed_frames(a, b):
    """Frames where two outputs differ at all: with the same shapes, CPU kernels give bitwise
    equal results for unaffected frames, and influence at the edge of a reach can be tiny."""
    diff = (a - b).abs().amax(dim=-1).reshape(-1)
    return torch.nonzero(diff > 0).reshape(-1)


def test_local_attention_matches_a_full_band_mask_and_ignores_steps_outside_it():
    torch.manual_seed(8)
    attn = LocalAttention(8, heads=2, left=3, right=1).eval()
    with torch.no_grad():
        attn.rel_bias.normal_()
    x = torch.randn(1, 11, 8)
    mask = torch.ones(1, 11, dtype=torch.bool)
    with torch.no_grad():
        y = attn(x, mask)
        # Reference: plain softmax attention with a T x T band, written out.
        q, k, v = attn.qkv(attn.norm(x)).reshape(1, 11, 3, 2, 4).permute(2, 0, 3, 1, 4)
        offset = torch.arange(11)[None, :] - torch.arange(11)[:, None]  # key - query
        band = (offset >= -3) & (offset <= 1)
        bias = attn.rel_bias[:, (offset + 3).clamp(0, 4)]
        scores = (q @ k.transpose(-1, -2)) / 2.0 + bias
        scores = scores.masked_fill(~band, float("-inf"))
        ref = (scores.softmax(-1) @ v).transpose(1, 2).reshape(1, 11, 8)
        ref = x + attn.out(ref)
        assert torch.allclose(y, ref, atol=1e-5)
        x2 = x.clone()
        x2[0, 6] += torch.randn(8) * 3.0
        changed = changed_frames(attn(x2, mask), y)
        assert changed.tolist() == [5, 6, 7, 8, 9]  # queries t with t - 3 <= 6 <= t + 1


def test_upsample_linear_interpolates_between_step_centres():
    x = torch.tensor([[[0.0], [8.0]]])
    out = upsample_linear(x, 4, torch.tensor([2]))
    # Centres at frames 1.5 and 5.5; constant beyond them.
    assert out.reshape(-1).tolist() == [0.0, 0.0, 1.0, 3.0, 5.0, 7.0, 8.0, 8.0]
    out = upsample_linear(x, 4, torch.tensor([1]))  # the second step is padding
    assert out.reshape(-1).tolist() == [0.0] * 8


def test_decoder_reach_bounds_the_influence_of_one_code():
    vq = trained_like(small_vq())
    reach = vq.decode_receptive_field
    T = 96
    low = vq.vq_low.lookup(torch.randint(32, (1, 48), generator=gen(9)))
    high = vq.vq_high.lookup(torch.randint(16, (1, 12), generator=gen(10)))
    with torch.no_grad():
        ref = vq.decode(low, high, frames=T)
        for level, j, stride in (("low", 24, 2), ("high", 6, 8)):
            l2, h2 = low.clone(), high.clone()
            (l2 if level == "low" else h2)[0, j] += 3.0
            changed = changed_frames(vq.decode(l2, h2, frames=T), ref)
            anchor = j * stride
            assert len(changed) > 0
            # Output t reads anchors in [t - left, t + right]: this code reaches [anchor - right, anchor + left].
            assert changed.min() >= anchor - reach.right, (level, changed)
            assert changed.max() <= anchor + reach.left, (level, changed)
        # Text given per frame is read through the per-step condition means.
        text = torch.randn(1, T, TEXT_DIM, generator=gen(33))
        ref = vq.decode(low, high, frames=T, text=text)
        t2 = text.clone()
        t2[0, 49] += 3.0
        changed = changed_frames(vq.decode(low, high, frames=T, text=t2), ref)
        assert len(changed) > 0
        assert changed.min() >= 49 - reach.right and changed.max() <= 49 + reach.left, changed


@torch.no_grad()
def test_predictor_code_reach_bounds_the_influence_of_one_speech_frame():
    pred = trained_like(small_predictor())
    reaches = pred.code_receptive_fields
    T, p = 400, 200
    speech = torch.randn(1, T, SPEECH_DIM, generator=gen(31))
    high_codes = torch.randint(16, (1, T // 8), generator=gen(32))  # fixed, so the path is continuous
    s2 = speech.clone()
    s2[0, p] += 5.0
    ref, out = pred.logits(speech, high_codes=high_codes), pred.logits(s2, high_codes=high_codes)
    for level, stride, reach in (("high", 8, reaches["high"]), ("low", 2, reaches["low_given_high"])):
        anchors = changed_frames(out[level], ref[level]) * stride
        assert len(anchors) > 0
        assert anchors.min() >= p - reach.right and anchors.max() <= p + reach.left, (level, anchors)
    assert reaches["low"] + pred.vqvae.decode_receptive_field == pred.receptive_field


def test_baseline_reach_bounds_the_influence_of_one_speech_frame():
    base = trained_like(small_baseline())
    reach = base.receptive_field
    speech = torch.randn(1, 150, SPEECH_DIM, generator=gen(11))
    ref = base.predict(speech)
    s2 = speech.clone()
    s2[0, 75] += 5.0
    changed = changed_frames(base.predict(s2), ref)
    assert len(changed) > 0
    assert changed.min() >= 75 - reach.right and changed.max() <= 75 + reach.left


@pytest.mark.parametrize("options", [dict(head="logits"), dict(head="latent"), dict(refine_weight=1.0),
                                     dict(refine_weight=1.0, refine_branch_layers=2, refine_branch_dim=32)],
                         ids=["logits", "latent", "refine", "refine-branch"])
def test_windowed_processing_equals_one_pass(options):
    vq = trained_like(small_vq())
    pred = trained_like(small_predictor(vq, **options))
    base = trained_like(small_baseline())
    T = 301
    motion = torch.rand(1, T, 52, generator=gen(12))
    speech = torch.randn(1, T, SPEECH_DIM, generator=gen(13))
    text = torch.randn(1, TEXT_DIM, generator=gen(14))
    frame_text = text[:, None, :].repeat(1, T, 1)
    frame_text[:, 150:] = torch.randn(TEXT_DIM, generator=gen(15))  # the emotion changes mid-way
    identity = torch.tensor([2])

    cases = [
        (lambda motion: vq.reconstruct(motion, identity=identity, text=text), {"motion": motion}, vq),
        (lambda speech, text: pred.predict(speech, text, identity), {"speech": speech, "text": frame_text},
         pred),
        (lambda speech, text: base.predict(speech, text, identity), {"speech": speech, "text": frame_text},
         base),
    ]
    for fn, series, model in cases:
        whole = fn(**series)
        windowed = apply_in_windows(fn, series, reach=model.receptive_field, align=model.align, window=40)
        assert windowed.shape == whole.shape == (1, T, 52)
        assert torch.allclose(windowed, whole, atol=1e-5), type(model).__name__
        # Control: without context the windows do not match, so the margins above matter.
        cut = apply_in_windows(fn, series, reach=Reach(0, 0), align=model.align, window=40)
        assert not torch.allclose(cut, whole, atol=1e-3)


def causal_models():
    """A causal VQ-VAE and predictor shaped as config/train_low_latency.yaml (small)."""
    vq = trained_like(small_vq(causal=True, low_stride=1, high_stride=4, kernel=3, high_kernel=3,
                               high_decoder_blocks=0))
    pred = trained_like(small_predictor(vq, kernel=1, high_kernel=1, high_attn_right=0, low_attn_right=0,
                                        refine_weight=1.0, refine_branch_layers=2, refine_branch_dim=32))
    return vq, pred


@torch.no_grad()
def test_causal_models_never_read_later_frames():
    """VQVAEConfig.causal: an input frame changes no output frame before it, so a frame can be
    shown once its own speech is in (lookahead 0); a high code comes from the step before."""
    vq, pred = causal_models()
    assert vq.decode_receptive_field.right == 0 and pred.lookahead == pred.receptive_field.right == 0
    assert pred.refine_branch.receptive_field.right == 0
    assert pred.code_receptive_fields["high"].right == -1  # high code u reads speech before frame 4u
    T, p = 160, 81
    speech = torch.randn(1, T, SPEECH_DIM, generator=gen(40))
    motion = torch.rand(1, T, 52, generator=gen(41))
    text = torch.randn(1, T, TEXT_DIM, generator=gen(42))
    s2, m2, t2 = speech.clone(), motion.clone(), text.clone()
    s2[0, p] += 5.0
    m2[0, p] += 0.5
    t2[0, p] += 3.0
    identity = torch.tensor([1])
    for name, ref, out in (
            ("speech", pred.predict(speech, text, identity), pred.predict(s2, text, identity)),
            ("text", pred.predict(speech, text, identity), pred.predict(speech, t2, identity)),
            ("motion", vq.reconstruct(motion, text=text), vq.reconstruct(m2, text=text))):
        changed = changed_frames(out, ref)
        assert len(changed) > 0 and changed.min() >= p, (name, changed[:5])
    # The high codes: the one at anchor 4u reads speech up to frame 4u - 1, no further.
    ref, out = pred.logits(speech, text), pred.logits(s2, text)
    anchors = changed_frames(out["high"], ref["high"]) * 4
    assert len(anchors) > 0 and anchors.min() == 84  # the step after the one frame 81 lies in


def test_causal_windows_equal_one_pass():
    vq, pred = causal_models()
    T = 203
    speech = torch.randn(1, T, SPEECH_DIM, generator=gen(43))
    text = torch.randn(1, TEXT_DIM, generator=gen(44))
    fn = lambda speech: pred.predict(speech, text, torch.tensor([2]))  # noqa: E731
    whole = fn(speech)
    windowed = apply_in_windows(fn, {"speech": speech}, reach=pred.receptive_field, align=pred.align, window=40)
    assert torch.allclose(windowed, whole, atol=1e-5)


# ---------------------------------------------------------------------------------------------
# Conditions and the internal condition


def test_internal_condition_off_removes_the_high_codes_from_the_low_decoder():
    for internal in (False, True):
        vq = trained_like(small_vq(internal_condition=internal))
        low = vq.vq_low.lookup(torch.randint(32, (1, 20), generator=gen(16)))
        high_a = vq.vq_high.lookup(torch.randint(16, (1, 5), generator=gen(17)))
        high_b = vq.vq_high.lookup(torch.randint(16, (1, 5), generator=gen(18)))
        with torch.no_grad():
            a = vq.decode(low, high_a, frames=40, return_parts=True)
            b = vq.decode(low, high_b, frames=40, return_parts=True)
        assert not torch.allclose(a["weights"], b["weights"], atol=1e-4)  # high codes still matter ...
        if internal:
            assert not torch.allclose(a["fine"], b["fine"], atol=1e-4)  # ... through the low decoder
        else:
            assert torch.equal(a["fine"], b["fine"])  # ... only through the coarse path


def test_identity_and_text_change_the_output():
    vq = trained_like(small_vq())
    pred = trained_like(small_predictor(vq))
    speech = torch.randn(50, SPEECH_DIM, generator=gen(19))
    text_a, text_b = torch.randn(TEXT_DIM, generator=gen(20)), torch.randn(TEXT_DIM, generator=gen(21))
    ref = pred.predict(speech, text_a, 1)
    assert not torch.allclose(ref, pred.predict(speech, text_a, 2), atol=1e-4)
    assert not torch.allclose(ref, pred.predict(speech, text_b, 1), atol=1e-4)
    assert not torch.allclose(ref, pred.predict(speech, None, 1), atol=1e-4)
    assert torch.equal(pred.predict(speech, None, None), pred.predict(speech, None, 0))  # None = unknown
    codes = vq.encode_codes(torch.rand(1, 50, 52, generator=gen(22)))
    dec = [vq.decode_codes(codes["low"], codes["high"], frames=50, identity=torch.tensor([i]), text=t)
           for i, t in ((1, text_a[None]), (2, text_a[None]), (1, text_b[None]))]
    assert not torch.allclose(dec[0], dec[1], atol=1e-4)
    assert not torch.allclose(dec[0], dec[2], atol=1e-4)


def test_training_dropouts_only_in_training_mode():
    vq = trained_like(small_vq(identity_dropout=0.5, text_dropout=0.5))
    motion = torch.rand(4, 24, 52, generator=gen(23))
    args = dict(identity=torch.tensor([1, 2, 3, 1]), text=torch.randn(4, TEXT_DIM, generator=gen(24)))
    with torch.no_grad():
        a, b = vq(motion, **args)["recon"], vq(motion, **args)["recon"]
        assert float(a) == float(b)
        vq.train()  # no codebook update either: gradients are off
        drawn = {round(float(vq(motion, **args)["recon"]), 6) for _ in range(6)}
    assert len(drawn) > 1


def test_time_mask_zeroes_speech_frames_in_training_only():
    vq = trained_like(small_vq())
    pred = trained_like(small_predictor(vq, time_mask=0.5))
    speech, motion = torch.randn(2, 32, SPEECH_DIM, generator=gen(25)), torch.rand(2, 32, 52, generator=gen(26))
    with torch.no_grad():
        a, b = pred(speech, motion=motion)["ce_low"], pred(speech, motion=motion)["ce_low"]
        assert float(a) == float(b)  # eval: no masking
        pred.train()
        torch.manual_seed(0)
        drawn = {round(float(pred(speech, motion=motion)["ce_low"]), 6) for _ in range(4)}
        pred.config.time_mask = 0.0
        torch.manual_seed(0)
        unmasked = {round(float(pred(speech, motion=motion)["ce_low"]), 6) for _ in range(4)}
    assert len(drawn) > 1 and drawn != unmasked


# ---------------------------------------------------------------------------------------------
# Inference: determinism and sampling


def test_temperature_zero_is_deterministic_and_sampling_is_seeded():
    vq = trained_like(small_vq())
    pred = trained_like(small_predictor(vq))
    speech = torch.randn(80, SPEECH_DIM, generator=gen(25))
    assert torch.equal(pred.predict(speech, None, 1), pred.predict(speech, None, 1))
    s0 = pred.predict(speech, None, 1, temperature=1.5, generator=gen(0))
    s0_again = pred.predict(speech, None, 1, temperature=1.5, generator=gen(0))
    s1 = pred.predict(speech, None, 1, temperature=1.5, generator=gen(1))
    assert torch.equal(s0, s0_again)
    assert not torch.allclose(s0, s1, atol=1e-4)
    # Top-1 sampling has only one choice: the argmax.
    top1 = pred.predict(speech, None, 1, temperature=1.5, top_k=1, generator=gen(2))
    assert torch.equal(top1, pred.predict(speech, None, 1))
    with pytest.raises(ValueError, match="temperature"):
        pred.predict(speech, None, 1, temperature=-1.0)


def test_models_are_deterministic_given_the_seed():
    torch.manual_seed(26)
    a = small_predictor()
    torch.manual_seed(26)
    b = small_predictor()
    for (name, p), q in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.equal(p, q), name


# ---------------------------------------------------------------------------------------------
# Predictor training details


def test_low_head_input_follows_teacher_forcing_and_code_noise():
    pred = small_predictor(teacher_forcing=1.0, code_noise=0.0).train()
    torch.manual_seed(27)
    true = torch.randint(16, (64, 10))
    logits = torch.randn(64, 10, 16)
    assert torch.equal(pred._fed_high_codes(true, logits), true)
    pred.config.teacher_forcing = 0.0
    assert torch.equal(pred._fed_high_codes(true, logits), logits.argmax(-1))
    pred.config.teacher_forcing, pred.config.code_noise = 1.0, 0.5
    changed = (pred._fed_high_codes(true, logits) != true).float().mean()
    assert 0.4 < float(changed) < 0.55  # half replaced, 1/16 of those by the same code
    pred.eval()
    assert torch.equal(pred._fed_high_codes(true, logits), logits.argmax(-1))  # inference-like


def test_predictor_keeps_vqvae_frozen_and_motion_loss_trains_through_straight_through():
    vq = trained_like(small_vq())
    pred = small_predictor(vq, motion_loss_weight=1.0).train()
    assert not vq.training and not any(p.requires_grad for p in vq.parameters())
    codebook = vq.vq_low.codebook.clone()
    out = pred(torch.randn(2, 40, SPEECH_DIM), motion=torch.rand(2, 40, 52), identity=torch.tensor([1, 0]))
    assert out["motion"].item() > 0
    out["motion"].backward()
    assert float(pred.low_head[1].weight.grad.abs().sum()) > 0  # the decoded-motion loss reaches the logits
    assert all(p.grad is None for p in vq.parameters())
    assert torch.equal(vq.vq_low.codebook, codebook)


def test_lip_gap_loss_measures_the_gap_metric_and_weights_closed_frames():
    target = torch.rand(1, 6, 52, generator=gen(7)) * 0.3
    target[0, 2, INDEX["jawOpen"]] = 0.0
    target[0, 2, INDEX["mouthClose"]] = 0.05  # lips together on frame 2 only
    closed = lip_gap(target.numpy()[0]) <= 0.15
    assert closed.tolist().count(True) >= 1
    pred = target.clone()
    pred[..., INDEX["jawOpen"]] += 0.1  # every frame opens by 0.1 * (gap per jawOpen)
    mask = torch.ones(1, 6, dtype=torch.bool)
    expected_err = torch.as_tensor(lip_gap(pred.numpy()[0]) - lip_gap(target.numpy()[0])).abs()
    weights = 1 + 3.0 * torch.as_tensor(closed, dtype=torch.float32)
    loss = lip_gap_loss(pred, target, mask, closed_weight=3.0)
    assert float(loss) == pytest.approx(float((expected_err * weights).mean()), rel=1e-5)
    assert float(lip_gap_loss(target, target, mask, closed_weight=3.0)) == 0.0
    assert float(lip_gap_loss(pred, target, mask, closed_weight=3.0)) > float(
        lip_gap_loss(pred, target, mask, closed_weight=0.0))
    assert float(lip_gap_loss(torch.rand(1, 6, 9), torch.rand(1, 6, 9), mask, closed_weight=3.0)) == 0.0


@pytest.mark.parametrize("which", ["vqvae", "predictor", "baseline"])
def test_gap_weight_adds_the_lip_gap_loss_and_its_gradient(which):
    torch.manual_seed(0)
    speech, motion = torch.randn(2, 24, SPEECH_DIM), torch.rand(2, 24, 52)
    if which == "vqvae":
        off, on = small_vq(), small_vq(gap_weight=2.0)
        on.load_state_dict(off.state_dict())
        run = lambda m: m.eval()(motion)  # noqa: E731
    elif which == "predictor":
        vq = trained_like(small_vq())
        off, on = small_predictor(vq, motion_loss_weight=1.0), small_predictor(vq, motion_loss_weight=1.0,
                                                                               gap_weight=2.0)
        on.load_state_dict(off.state_dict())
        run = lambda m: m.eval()(speech, motion=motion)  # noqa: E731
    else:
        off, on = small_baseline(), small_baseline(gap_weight=2.0)
        on.load_state_dict(off.state_dict())
        run = lambda m: m.eval()(speech, motion=motion)  # noqa: E731
    a, b = run(off), run(on)
    assert b["loss"].item() > a["loss"].item()
    b["loss"].backward()
    assert any(p.grad is not None and float(p.grad.abs().sum()) > 0 for p in on.parameters() if p.requires_grad)


def test_latent_head_picks_the_nearest_code_and_learns_the_code_vector():
    vq = trained_like(small_vq())
    pred = trained_like(small_predictor(vq, head="latent"))
    speech, motion = torch.randn(2, 40, SPEECH_DIM, generator=gen(31)), torch.rand(2, 40, 52, generator=gen(32))
    with torch.no_grad():
        speech_in, masks, conds, _ = pred._prepare(speech, None, None, None, drop=False)
        logits, latent = pred._low_logits(pred._trunk(speech_in, masks, conds), None, masks, conds)
    nearest = torch.cdist(latent, vq.vq_low.codebook[None].expand(2, -1, -1)).argmin(-1)
    assert torch.equal(logits.argmax(-1), nearest)
    assert pred.predict_codes(speech)["low"].shape == (2, 20)
    out = pred.train()(speech, motion=motion)
    assert out["latent"].item() > 0
    out["loss"].backward()
    assert float(pred.low_head[1].weight.grad.abs().sum()) > 0 and pred.low_scale.grad is not None
    assert all(p.grad is None for p in vq.parameters())
    with pytest.raises(ValueError, match="head"):
        PredictorConfig(head="soft")


# ---------------------------------------------------------------------------------------------
# Checkpoints and configs


def test_checkpoint_round_trip_is_exact(tmp_path):
    vq = trained_like(small_vq())
    models = [vq, trained_like(small_predictor(vq)), trained_like(small_predictor(vq, head="latent")),
              trained_like(small_baseline())]
    speech = torch.randn(33, SPEECH_DIM, generator=gen(28))
    for model in models:
        path = save_model(model, tmp_path / f"{type(model).__name__}.safetensors")
        loaded = load_model(path)
        assert type(loaded) is type(model)
        assert loaded.config == model.config
        for (k, v), w in zip(model.state_dict().items(), loaded.state_dict().values()):
            assert torch.equal(v, w), k
        if isinstance(model, HierarchicalMotionVQVAE):
            m = torch.rand(1, 33, 52, generator=gen(29))
            assert torch.equal(model.reconstruct(m), loaded.reconstruct(m))
        else:
            assert torch.equal(model.predict(speech), loaded.predict(speech))
    half = load_model(save_model(models[1], tmp_path / "half.safetensors", dtype=torch.float16))
    w = models[1].speech_in.weight
    assert torch.equal(half.speech_in.weight, w.half().float())
    full = (tmp_path / "CodePredictor.safetensors").stat().st_size
    assert (tmp_path / "half.safetensors").stat().st_size < 0.6 * full


def test_default_models_fit_the_size_budget(tmp_path):
    vq = HierarchicalMotionVQVAE(VQVAEConfig())
    pred = CodePredictor(PredictorConfig(), vq)
    size = save_model(pred, tmp_path / "default.safetensors").stat().st_size
    assert size <= 30e6  # both stages, fp32
    assert pred.receptive_field.right == pred.lookahead > 0
    # The shipped default (all three stages, stored in fp16) fits too and loads as fp32.
    from talking_face_ros.bundle import load_bundle
    from talking_face_ros.paths import DEFAULT_MODEL_DIR

    assert (DEFAULT_MODEL_DIR / "model.safetensors").stat().st_size <= 30e6
    shipped = load_bundle(DEFAULT_MODEL_DIR, device="cpu").model
    assert shipped.refine_branch is not None and next(shipped.parameters()).dtype == torch.float32


def test_corrupted_checkpoints_raise_value_error(tmp_path):
    path = save_model(small_vq(), tmp_path / "vq.safetensors")
    data = path.read_bytes()
    flipped = bytearray(data)
    flipped[-100] ^= 0xFF  # inside the tensor data
    cases = {"flipped.safetensors": bytes(flipped), "truncated.safetensors": data[: len(data) // 2],
             "garbage.safetensors": b"\x00\x01not a checkpoint" * 10, "empty.safetensors": b""}
    for name, content in cases.items():
        bad = tmp_path / name
        bad.write_bytes(content)
        with pytest.raises(ValueError, match=name):
            load_model(bad)
    with pytest.raises(FileNotFoundError):
        load_model(tmp_path / "missing.safetensors")


def test_configs_round_trip_and_validate():
    for cfg in (VQVAEConfig(levels=1, internal_condition=False), PredictorConfig(dropout=0.2),
                RegressionConfig()):
        assert type(cfg).from_dict(cfg.to_dict()) == cfg
    assert VQVAEConfig.from_dict({"dim": 64}).dim == 64  # missing fields take defaults
    with pytest.raises(ValueError, match="unknown field"):
        VQVAEConfig.from_dict({"dimm": 64})
    with pytest.raises(ValueError, match="VQVAEConfig.dim: expected int"):
        VQVAEConfig.from_dict({"dim": "64"})
    with pytest.raises(ValueError, match="levels"):
        VQVAEConfig(levels=3)
    with pytest.raises(ValueError, match="high_stride"):
        VQVAEConfig(low_stride=3, high_stride=8)
    with pytest.raises(ValueError, match="kernel must be odd"):
        VQVAEConfig(kernel=4)
    with pytest.raises(ValueError, match="divisible by heads"):
        PredictorConfig(dim=30, heads=4)
    with pytest.raises(ValueError, match="num_speakers"):
        CodePredictor(PredictorConfig(num_speakers=2), HierarchicalMotionVQVAE(VQVAEConfig(num_speakers=3)))


# ---------------------------------------------------------------------------------------------
# Learning


def synthetic_batch(batch=4, frames=64):
    """Sinusoidal mouth motion at per-sequence rates plus a constant expression per sequence."""
    t = torch.arange(frames, dtype=torch.float32) / 30.0
    motion = torch.zeros(batch, frames, 52)
    emotion = torch.arange(batch) % 2  # 0: neutral-ish, 1: smiling
    for b in range(batch):
        phase = 2 * math.pi * (2.0 + b) * t
        motion[b, :, INDEX["jawOpen"]] = 0.35 + 0.3 * torch.sin(phase)
        motion[b, :, INDEX["mouthClose"]] = 0.15 + 0.1 * torch.cos(phase)
        if emotion[b] == 1:
            motion[b, :, INDEX["mouthSmileLeft"]] = 0.6
            motion[b, :, INDEX["mouthSmileRight"]] = 0.6
            motion[b, :, INDEX["cheekSquintLeft"]] = 0.4
        else:
            motion[b, :, INDEX["browDownLeft"]] = 0.5
            motion[b, :, INDEX["browDownRight"]] = 0.5
    return motion, emotion


def test_vqvae_overfits_a_small_batch():
    torch.manual_seed(30)
    motion, emotion = synthetic_batch()
    vq = small_vq(frame_dim=32, dim=48, code_dim=16, low_codebook_size=64, high_codebook_size=16,
                  identity_dropout=0.0, text_dropout=0.0)
    opt = torch.optim.Adam(vq.parameters(), lr=3e-3)
    vq.train()
    first = None
    for _ in range(200):
        out = vq(motion, emotion=emotion)
        opt.zero_grad()
        out["loss"].backward()
        opt.step()
        first = out["recon"].item() if first is None else first
    vq.eval()
    with torch.no_grad():
        final = vq(motion, emotion=emotion)
    assert final["recon"].item() < first / 5, (first, final["recon"].item())
    assert final["emotion_accuracy"].item() == 1.0  # the high codes carry the expression ...
    assert final["perplexity_high"].item() >= 2.0  # ... so at least two high codes stay in use
    error = (vq.reconstruct(motion) - motion).abs().mean()
    assert error.item() < 0.03


def test_predictor_learns_codes_that_speech_determines():
    torch.manual_seed(40)
    motion, _ = synthetic_batch()
    vq = small_vq()
    with torch.enable_grad():
        vq.train()(motion)  # one training pass puts the codebooks on the data; then frozen
    speech = motion @ torch.randn(52, SPEECH_DIM, generator=gen(41))  # features that determine the motion
    pred = small_predictor(vq, label_smoothing=0.0)
    opt = torch.optim.Adam([p for p in pred.parameters() if p.requires_grad], lr=3e-3)
    pred.train()
    first = None
    for _ in range(120):
        out = pred(speech, motion=motion)
        opt.zero_grad()
        out["loss"].backward()
        opt.step()
        first = out["loss"].item() if first is None else first
    pred.eval()
    with torch.no_grad():
        final = pred(speech, motion=motion)  # eval: the low head sees predicted high codes
    assert final["loss"].item() < first / 10
    assert final["accuracy_high"].item() >= 0.95 and final["accuracy_low"].item() >= 0.95
    # With the right codes, predict() gives what the VQ-VAE reconstructs from the true codes.
    error = (pred.predict(speech) - vq.reconstruct(motion)).abs().mean()
    assert error.item() < 0.02


def few_codes(seed: int):
    """(motion, a VQ-VAE with too few codes to say everything, speech that a network can read the
    motion off): what a refine head is for."""
    torch.manual_seed(seed)
    motion, _ = synthetic_batch()
    vq = small_vq(low_codebook_size=4, high_codebook_size=2)
    with torch.enable_grad():
        vq.train()(motion)
    return motion, vq.eval(), motion @ torch.randn(52, SPEECH_DIM, generator=gen(seed + 1))


def test_refine_head_starts_at_the_codes_and_learns_what_they_miss():
    """The refine head (refine_weight > 0) starts at zero, so an untrained one changes nothing;
    trained, it brings the output closer to the motion than the decoded codes alone, while the
    codes it corrects are still the predicted ones."""
    motion, vq, speech = few_codes(50)
    pred = small_predictor(vq, refine_weight=10.0, label_smoothing=0.0)
    assert pred.refines and not small_predictor(vq).refines

    def bare(model):  # the decoded predicted codes without the correction
        codes = model.predict_codes(speech)
        assert codes["hidden"] is not None and codes["hidden"].shape == (4, 32, 32)
        return vq.decode_codes(codes["low"], codes["high"], frames=motion.shape[1])

    assert torch.equal(pred.predict(speech), bare(pred))  # zero-initialised: the codes alone
    opt = torch.optim.Adam([p for p in pred.parameters() if p.requires_grad], lr=3e-3)
    pred.train()
    for _ in range(150):
        out = pred(speech, motion=motion)
        opt.zero_grad()
        out["loss"].backward()
        opt.step()
    pred.eval()
    with torch.no_grad():
        refined = (pred.predict(speech) - motion).abs().mean().item()
        codes_only = (bare(pred) - motion).abs().mean().item()
        assert pred(speech, motion=motion)["refine"].item() > 0
    print(f"refined {refined:.4f}, codes only {codes_only:.4f}")
    assert refined < codes_only / 2, (refined, codes_only)


def test_stage_three_trains_only_the_refine_modules_and_the_gate_follows_the_better_branch():
    """``refine_forward`` (stage 3) reaches the head, its speech branch and its gate and nothing
    else; where the branch can say what the few codes cannot, the gated output comes close to it,
    far closer than the codes alone."""
    motion, vq, speech = few_codes(52)
    pred = small_predictor(vq, refine_weight=1.0, refine_branch_layers=1, refine_branch_dim=32,
                           refine_temperature=1.0, label_smoothing=0.0)
    assert [type(m).__name__ for m in pred.refine_modules()][-3:] == ["RegressionBaseline", "Linear", "Sequential"]
    pred.requires_grad_(False)
    for module in pred.refine_modules():
        module.requires_grad_(True)
    trainable = {n for n, p in pred.named_parameters() if p.requires_grad}
    frozen = {n: p.clone() for n, p in pred.named_parameters() if not p.requires_grad}
    assert trainable and all(n.startswith("refine_") for n in trainable)
    opt = torch.optim.Adam([p for p in pred.parameters() if p.requires_grad], lr=3e-3)
    pred.train()
    first = None
    for _ in range(150):
        out = pred.refine_forward(speech, motion=motion)
        assert set(out) == {"loss", "refine", "branch", "branch_recon"}
        first = first if first is not None else out["loss"].item()
        opt.zero_grad()
        out["loss"].backward()
        opt.step()
    pred.eval()
    assert all(torch.equal(p, frozen[n]) for n, p in pred.named_parameters() if n in frozen)
    with torch.no_grad():
        codes = pred.predict_codes(speech)
        bare = vq.decode_codes(codes["low"], codes["high"], frames=motion.shape[1])
        gated = pred.predict(speech)
        branch = pred.speech_branch(speech, None, None)
        kept = pred.decode({**codes, "branch": branch}, speech)
        blind = pred.decode({**codes, "branch": torch.zeros_like(branch)}, speech)  # the same head, no branch
        error, codes_only = (gated - motion).abs().mean().item(), (bare - motion).abs().mean().item()
        without = (blind - motion).abs().mean().item()
    print(f"loss {first:.4f} -> {out['loss'].item():.4f}; gated {error:.4f}, without the branch {without:.4f}, "
          f"codes only {codes_only:.4f}")
    assert without > 3 * error  # the output leans on the branch
    assert out["loss"].item() < first / 2
    assert error < codes_only / 2, (error, codes_only)
    assert (kept - gated).abs().max() < 1e-5  # a caller's kept branch motion decodes the same
