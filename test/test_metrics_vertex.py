"""Vertex, sampling and blendshape metrics on arrays small enough to work out on paper."""
import math

import numpy as np
import pytest

from talking_face_ros import arkit
from talking_face_ros.metrics import blendshape, sampling, vertex


def two_frames():
    """gt = 0; pred errors per (frame, vertex): see the comments for each squared norm."""
    gt = np.zeros((2, 3, 3))
    pred = np.zeros((2, 3, 3))
    pred[0, 0] = (1, 0, 0)  # ||e||² = 1
    pred[0, 1] = (0, 2, 0)  # 4
    pred[0, 2] = (10, 0, 0)  # 100 (not a lip vertex)
    pred[1, 0] = (1, 1, 0)  # 2
    pred[1, 1] = (0, 0, 1)  # 1
    return pred, gt


def test_lve_is_mean_over_frames_of_worst_squared_lip_error():
    pred, gt = two_frames()
    np.testing.assert_allclose(vertex.lve_per_frame(pred, gt, [0, 1]), [4.0, 2.0])
    assert vertex.lve(pred, gt, [0, 1]) == pytest.approx(3.0)
    # a boolean mask selects the same vertices
    assert vertex.lve(pred, gt, np.array([True, True, False])) == pytest.approx(3.0)


def test_eve_uses_the_lve_form_on_its_own_vertices():
    pred, gt = two_frames()
    assert vertex.eve(pred, gt, [2]) == pytest.approx((100.0 + 0.0) / 2)


def test_mve_is_mean_of_unsquared_euclidean_distances():
    pred, gt = two_frames()
    frame0 = (1 + 2 + 10) / 3
    frame1 = (math.sqrt(2) + 1 + 0) / 3
    np.testing.assert_allclose(vertex.mve_per_frame(pred, gt), [frame0, frame1])
    assert vertex.mve(pred, gt) == pytest.approx((frame0 + frame1) / 2)
    assert vertex.mve(pred, gt, [2]) == pytest.approx(5.0)


def test_identical_sequences_score_zero():
    rng = np.random.default_rng(0)
    seq = rng.normal(size=(5, 7, 3))
    assert vertex.lve(seq, seq, [0, 3]) == 0.0
    assert vertex.mve(seq, seq) == 0.0
    assert vertex.fdd(seq, seq, [1, 2, 4], seq[0]) == 0.0


def test_constant_offset_on_the_lips():
    rng = np.random.default_rng(1)
    gt = rng.normal(size=(6, 10, 3))
    lips = [2, 3, 4, 5]
    pred = gt.copy()
    pred[:, lips] += (3.0, 4.0, 0.0)  # |offset| = 5
    assert vertex.lve(pred, gt, lips) == pytest.approx(25.0)
    assert vertex.mve(pred, gt) == pytest.approx(5.0 * len(lips) / 10)
    assert vertex.mve(pred, gt, lips) == pytest.approx(5.0)


def test_unequal_lengths_are_cut_to_the_shorter():
    pred, gt = two_frames()
    longer = np.concatenate([pred, np.full((1, 3, 3), 50.0)])  # the extra frame is ignored
    assert vertex.lve(longer, gt, [0, 1]) == pytest.approx(3.0)
    assert vertex.lve(gt, longer, [0, 1]) == pytest.approx(3.0)


def test_fdd_is_std_of_squared_displacement_gt_minus_pred():
    template = np.zeros((1, 3))
    gt = np.array([[[1.0, 0, 0]], [[2.0, 0, 0]]])  # ||m||² = 1, 4 -> population std 1.5
    still = np.array([[[1.0, 1, 0]], [[1.0, 1, 0]]])  # ||m||² = 2, 2 -> std 0
    assert vertex.upper_face_dynamics(gt - template, [0]) == pytest.approx(1.5)
    assert vertex.fdd(still, gt, [0], template) == pytest.approx(1.5)  # too still: positive
    assert vertex.fdd(gt, still, [0], template) == pytest.approx(-1.5)  # too lively: negative
    # displacement is measured from the template: from (1,0,0) the gt moves 0 then 1 -> std 0.5
    assert vertex.fdd(still, gt, [0], np.array([[1.0, 0, 0]])) == pytest.approx(0.5)


def test_fdd_averages_over_upper_vertices():
    gt = np.zeros((2, 2, 3))
    gt[1, 0] = (2.0, 0, 0)  # vertex 0: ||m||² = 0, 4 -> std 2; vertex 1 never moves
    assert vertex.fdd(np.zeros_like(gt), gt, [0, 1], np.zeros((2, 3))) == pytest.approx(1.0)


def test_bad_inputs_raise():
    pred, gt = two_frames()
    with pytest.raises(ValueError, match="vertices"):
        vertex.lve(pred, gt[:, :2], [0])
    with pytest.raises(ValueError, match="outside"):
        vertex.lve(pred, gt, [3])
    with pytest.raises(ValueError, match="empty"):
        vertex.lve(pred, gt, [])
    with pytest.raises(ValueError, match="integer"):
        vertex.lve(pred, gt, [0.5])
    with pytest.raises(ValueError, match="frames, V, 3"):
        vertex.mve(pred[..., :2], gt[..., :2])
    with pytest.raises(ValueError, match="template"):
        vertex.fdd(pred, gt, [0], np.zeros((2, 3)))


# -- sampling metrics (ProbTalk3D) ------------------------------------------------------------


def test_mee_scores_the_mean_sample_and_ce_the_closest():
    gt = np.zeros((1, 1, 3))
    samples = np.array([[[[2.0, 0, 0]]], [[[0.0, 4, 0]]]])  # LVE 4 and 16; mean (1, 2, 0) -> 5
    assert sampling.mee(samples, gt, [0]) == pytest.approx(5.0)
    assert sampling.ce(samples, gt, [0]) == pytest.approx(4.0)


def test_ce_picks_one_whole_sample_not_the_per_frame_minimum():
    gt = np.zeros((2, 1, 3))
    a = np.array([[[0.0, 0, 0]], [[np.sqrt(10.0), 0, 0]]])  # per-frame LVE 0, 10 (sum 10)
    b = np.array([[[2.0, 0, 0]], [[2.0, 0, 0]]])  # 4, 4 (sum 8): the closest sample
    samples = np.stack([a, b])
    np.testing.assert_allclose(sampling.ce_per_frame(samples, gt, [0]), [4.0, 4.0])
    assert sampling.ce(samples, gt, [0]) == pytest.approx(4.0)  # a per-frame min would give 2


def test_diversity_all_pairs_and_halves():
    # four samples on a line at x = 0, 1, 2, 3 (one frame, one vertex)
    samples = np.zeros((4, 1, 1, 3))
    samples[:, 0, 0, 0] = [0, 1, 2, 3]
    assert sampling.diversity(samples, pairing="all") == pytest.approx((1 + 2 + 3 + 1 + 2 + 1) / 6)
    # the three ways to split into two pairs give 1, 2 and 2; their mean is the all-pairs value
    values = {round(sampling.diversity(samples, pairing="halves", seed=s), 9) for s in range(40)}
    assert values == {1.0, 2.0}
    with pytest.raises(ValueError, match="even"):
        sampling.diversity(samples[:3])


def test_diversity_of_equidistant_samples_does_not_depend_on_the_split():
    corners = np.array([[1, 1, 1], [1, -1, -1], [-1, 1, -1], [-1, -1, 1]], dtype=float)  # all 2√2 apart
    samples = np.repeat(corners[:, None, None, :], 3, axis=1)  # 3 frames
    for seed in range(5):
        assert sampling.diversity(samples, seed=seed) == pytest.approx(2 * math.sqrt(2))
    assert sampling.diversity(np.repeat(samples[:1], 4, axis=0)) == 0.0


def test_sampling_cuts_to_the_shortest():
    gt = np.zeros((2, 1, 3))
    samples = np.zeros((2, 3, 1, 3))
    samples[:, :, 0, 0] = 1.0
    samples[:, 2, 0, 0] = 100.0  # a third frame that gt does not have: ignored
    assert sampling.mee(samples, gt, [0]) == pytest.approx(1.0)
    assert sampling.ce(samples, gt, [0]) == pytest.approx(1.0)


# -- blendshape space -------------------------------------------------------------------------


def col(name):
    return arkit.INDEX[name]


def test_blendshape_lve_eve_mve():
    pred = np.zeros((2, 52))
    gt = np.zeros((2, 52))
    gt[0, col("jawOpen")] = 0.5  # lip channel: 0.25
    gt[1, col("mouthClose")] = 0.2  # lip channel: 0.04
    gt[0, col("eyeBlinkLeft")] = 0.9  # eye channel: 0.81
    assert blendshape.lve(pred, gt) == pytest.approx((0.25 + 0.04) / 2)
    np.testing.assert_allclose(blendshape.lve_per_frame(pred, gt), [0.25, 0.04])
    assert blendshape.eve(pred, gt) == pytest.approx(0.81 / 2)
    assert blendshape.mve(pred, gt) == pytest.approx((0.5 + 0.2 + 0.9) / (2 * 52))
    assert blendshape.mve(pred, gt, channels=[col("jawOpen")]) == pytest.approx(0.25)


def test_blendshape_fdd():
    gt = np.zeros((2, 52))
    gt[1, col("browInnerUp")] = 1.0  # w² = 0, 1 -> std 0.5 on one of the upper-face channels
    gt[:, col("jawOpen")] = [0.0, 1.0]  # not upper face: ignored
    expected = 0.5 / len(arkit.UPPER_FACE)
    assert blendshape.fdd(np.zeros((2, 52)), gt) == pytest.approx(expected)
    assert blendshape.fdd(gt, np.zeros((2, 52))) == pytest.approx(-expected)


def test_blendshape_sampling_metrics():
    gt = np.zeros((1, 52))
    gt[0, col("jawOpen")] = 0.6
    samples = np.zeros((2, 1, 52))
    samples[0, 0, col("jawOpen")] = 0.2
    samples[1, 0, col("jawOpen")] = 0.6
    assert blendshape.mee(samples, gt) == pytest.approx(0.2**2)  # mean 0.4 vs 0.6
    assert blendshape.ce(samples, gt) == pytest.approx(0.0)  # the second sample is exact
    assert blendshape.diversity(samples) == pytest.approx(0.4 / 52)


def test_blendshape_rejects_other_layouts():
    with pytest.raises(ValueError, match="52"):
        blendshape.lve(np.zeros((2, 51)), np.zeros((2, 51)))
    with pytest.raises(ValueError, match="52"):
        blendshape.mee(np.zeros((2, 3, 50)), np.zeros((3, 52)))


def test_blendshape_per_frame_forms_pool_to_the_sequence_figures():
    from talking_face_ros.metrics import blendshape as bsm

    rng = np.random.default_rng(3)
    pred, gt = rng.random((7, 52)), rng.random((7, 52))
    assert np.mean(bsm.eve_per_frame(pred, gt)) == pytest.approx(bsm.eve(pred, gt))
    assert np.mean(bsm.mve_per_frame(pred, gt)) == pytest.approx(bsm.mve(pred, gt))
    # one frame, all eye/brow channels off by 0.1 except one off by 0.3: EVE = 0.3²
    p, g = np.zeros((1, 52)), np.zeros((1, 52))
    p[0, bsm.EYE_CHANNELS] = 0.1
    p[0, bsm.EYE_CHANNELS[2]] = 0.3
    assert bsm.eve_per_frame(p, g)[0] == pytest.approx(0.09)
