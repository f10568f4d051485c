"""ICT-FaceKit region masks and meshes from weights (skipped when the rig is not present)."""
import numpy as np
import pytest
from scipy.spatial import cKDTree

from talking_face_ros import arkit
from talking_face_ros.lip_geometry import LOWER_LIP_VERTEX, UPPER_LIP_VERTEX, lip_gap
from talking_face_ros.metrics import regions, vertex
from talking_face_ros.paths import ict_rig_path

RIG = ict_rig_path()
pytestmark = pytest.mark.skipif(RIG is None, reason="ICT-FaceKit rig not available")
FACE_AREA = 9409


@pytest.fixture(scope="module")
def rig():
    with np.load(RIG, allow_pickle=False) as d:
        return {"neutral": d["neutral"], "deltas": d["deltas"], "arkit_to_ict": d["arkit_to_ict"],
                "ict_names": [str(n) for n in d["ict_names"]]}


@pytest.fixture(scope="module")
def masks():
    return regions.ict_regions(RIG)


def test_masks_have_sensible_sizes_and_are_deterministic(masks):
    assert set(masks) == {"lips", "upper_face", "eyes_forehead"}
    assert 500 <= len(masks["lips"]) <= 2000  # documented: 1134
    assert 2000 <= len(masks["upper_face"]) <= 5000  # documented: 3549
    assert 1500 <= len(masks["eyes_forehead"]) <= 4500  # documented: 2879
    for idx in masks.values():
        assert idx.dtype == np.int64 and np.all(np.diff(idx) > 0)
        assert idx.min() >= 0 and idx.max() < FACE_AREA
    again = regions.ict_regions(RIG)
    for key in masks:
        np.testing.assert_array_equal(masks[key], again[key])


def test_lips_are_around_the_mouth(rig, masks):
    lips = rig["neutral"][masks["lips"]]
    assert UPPER_LIP_VERTEX in masks["lips"] and LOWER_LIP_VERTEX in masks["lips"]
    mouth_y = rig["neutral"][[UPPER_LIP_VERTEX, LOWER_LIP_VERTEX], 1].mean()
    assert np.all(np.abs(lips[:, 1] - mouth_y) < 2.0)  # within 2 cm vertically of the lip line
    assert np.all(np.abs(lips[:, 0]) < 4.0)  # a mouth is about 5 cm wide
    assert lips[:, 2].min() > 9.0  # on the front of the face


def test_upper_face_lies_above_the_lips(rig, masks):
    lips_top = rig["neutral"][masks["lips"], 1].max()
    assert rig["neutral"][masks["upper_face"], 1].min() > lips_top + 1.0
    # the eye/forehead mask is mostly inside the upper face
    shared = np.intersect1d(masks["eyes_forehead"], masks["upper_face"])
    assert len(shared) > 0.95 * len(masks["eyes_forehead"])


def test_masks_are_left_right_symmetric(rig, masks):
    for key, idx in masks.items():
        p = rig["neutral"][idx]
        left, right = np.sum(p[:, 0] > 1e-4), np.sum(p[:, 0] < -1e-4)
        assert abs(left - right) <= 0.02 * len(idx), key
        dist, _ = cKDTree(p).query(p * [-1.0, 1.0, 1.0])  # mirror image of every vertex
        assert np.quantile(dist, 0.99) < 0.01, key
        assert dist.max() < 0.1, key


def test_masks_follow_the_shapes_that_should_move_them(rig, masks):
    """jawOpen moves the lips far more than the upper face; browInnerUp the reverse."""
    names = rig["ict_names"]
    jaw = np.linalg.norm(rig["deltas"][names.index("jawOpen")].astype(float), axis=1)
    brow = np.linalg.norm(rig["deltas"][names.index("browInnerUp_L")].astype(float), axis=1)
    assert jaw[masks["lips"]].mean() > 10 * jaw[masks["upper_face"]].mean()
    assert brow[masks["eyes_forehead"]].mean() > 10 * brow[masks["lips"]].mean()


def test_ict_vertices_is_the_rig_model(rig):
    neutral = rig["neutral"]
    w = np.zeros((2, 52), dtype=np.float32)
    w[1, arkit.INDEX["jawOpen"]] = 1.0
    mesh = regions.ict_vertices(w, RIG)
    assert mesh.shape == (2, FACE_AREA, 3) and mesh.dtype == np.float32
    np.testing.assert_allclose(mesh[0], neutral[:FACE_AREA], atol=1e-6)
    jaw_ict = rig["arkit_to_ict"][arkit.INDEX["jawOpen"]]
    expected = neutral + np.einsum("k,kvc->vc", jaw_ict, rig["deltas"].astype(np.float32))
    np.testing.assert_allclose(mesh[1], expected[:FACE_AREA], atol=1e-4)
    full = regions.ict_vertices(w, RIG, region="full")
    assert full.shape == (2, len(neutral), 3)
    np.testing.assert_allclose(full[1], expected, atol=1e-4)


def test_ict_vertices_agrees_with_the_lip_gap_and_chunking(masks):
    w = np.random.default_rng(0).uniform(0.0, 0.5, size=(20, 52)).astype(np.float32)
    mesh = regions.ict_vertices(w, RIG, chunk_frames=7)
    gap = mesh[:, UPPER_LIP_VERTEX, 1] - mesh[:, LOWER_LIP_VERTEX, 1]
    np.testing.assert_allclose(gap, lip_gap(w), atol=3e-3)  # lip_gap's table is rounded to 1e-4
    np.testing.assert_allclose(mesh, regions.ict_vertices(w, RIG), atol=1e-5)  # BLAS order only
    # a mesh from the same weights has zero LVE; a jawOpen change shows up in LVE, not FDD
    assert vertex.lve(mesh, mesh, masks["lips"]) == 0.0
    w2 = w.copy()
    w2[:, arkit.INDEX["jawOpen"]] += 0.2
    mesh2 = regions.ict_vertices(w2, RIG)
    assert vertex.lve(mesh2, mesh, masks["lips"]) > 100 * vertex.lve(mesh2, mesh, masks["upper_face"])


def test_bad_arguments_raise(tmp_path):
    with pytest.raises(ValueError, match="region"):
        regions.ict_vertices(np.zeros((1, 52)), RIG, region="ears")
    with pytest.raises(ValueError, match="52"):
        regions.ict_vertices(np.zeros((1, 51)), RIG)
    bad = tmp_path / "not_a_rig.npz"
    np.savez(bad, neutral=np.zeros((3, 3)))
    with pytest.raises(ValueError, match="missing"):
        regions.ict_regions(bad)
    text = tmp_path / "notes.npz"
    text.write_text("not numpy")
    with pytest.raises(ValueError, match="cannot read"):
        regions.ict_vertices(np.zeros((1, 52)), text)
