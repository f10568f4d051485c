"""Face rigs: the LinearRig file format and operations, the ICT-FaceKit readers, the robot face."""
from __future__ import annotations

import json
import zipfile

import numpy as np
import pytest
from scipy.spatial import cKDTree

from talking_face_ros.arkit import ARKIT_NAMES, INDEX, mirror_name
from talking_face_ros.lip_geometry import CLOSED_GAP, lip_gap
from talking_face_ros.paths import ict_rig_path
from talking_face_ros.rig.ict import (ARKIT_TO_ICT, ICT_EXPRESSIONS, arkit_to_ict_matrix,
                                      from_ict_facekit, load_packed_ict, read_obj, triangulate)
from talking_face_ros.rig.linear_rig import LinearRig
from talking_face_ros.rig.robot_face import _build, robot_face


def weights(**named) -> np.ndarray:
    w = np.zeros(52, np.float32)
    for name, value in named.items():
        w[INDEX[name]] = value
    return w


def tiny_rig(**kw) -> LinearRig:
    """A unit square of two triangles; jawOpen drops vertex 0 by 2, eyeBlinkLeft moves vertex 3."""
    neutral = np.array([[0, 0, 0], [1, 0, 0], [1, 1, 0], [0, 1, 0]], np.float32)
    deltas = np.zeros((52, 4, 3), np.float32)
    deltas[INDEX["jawOpen"], 0] = (0, -2, 0)
    deltas[INDEX["eyeBlinkLeft"], 3] = (0.5, 0, 1)
    regions = {"face": np.arange(4), "lips": [0, 1], "upper_face": [2, 3], "eyes": [3]}
    args = dict(neutral=neutral, triangles=[[0, 1, 2], [0, 2, 3]], deltas=deltas, regions=regions,
                name="tiny", colors=np.full((4, 3), 0.5, np.float32))
    args.update(kw)
    return LinearRig(**args)


# -- LinearRig ---------------------------------------------------------------------------------


def test_mesh_is_neutral_plus_weighted_deltas():
    rig = tiny_rig()
    mesh = rig.mesh(weights(jawOpen=0.5, eyeBlinkLeft=2.0))
    np.testing.assert_allclose(mesh[0], [0, -1, 0])  # 0.5 * (0, -2, 0)
    np.testing.assert_allclose(mesh[3], [1, 1, 2])  # (0, 1, 0) + 2 * (0.5, 0, 1)
    np.testing.assert_allclose(mesh[1:3], rig.neutral[1:3])


def test_mesh_is_linear_and_batched():
    rig = robot_face()
    rng = np.random.default_rng(0)
    a, b = rng.uniform(0, 1, (2, 52)).astype(np.float32)
    lhs = rig.mesh(0.3 * a + 0.7 * b) - rig.neutral
    rhs = 0.3 * (rig.mesh(a) - rig.neutral) + 0.7 * (rig.mesh(b) - rig.neutral)
    np.testing.assert_allclose(lhs, rhs, atol=2e-5)
    batch = rig.mesh(np.stack([a, b]))
    assert batch.shape == (2, rig.num_vertices, 3)
    np.testing.assert_allclose(batch[1], rig.mesh(b), atol=1e-5)
    with pytest.raises(ValueError, match="weights"):
        rig.mesh(np.zeros(51))


def test_save_load_round_trip(tmp_path):
    rig = tiny_rig()
    path = tmp_path / "tiny.rig.npz"
    rig.save(path)
    back = LinearRig.load(path)
    for field in ("neutral", "triangles", "deltas", "colors"):
        np.testing.assert_array_equal(getattr(back, field), getattr(rig, field))
    assert back.name == "tiny" and back.units == "cm"
    assert set(back.regions) == set(rig.regions)
    for key in rig.regions:
        np.testing.assert_array_equal(back.regions[key], rig.regions[key])
    no_colors = tiny_rig(colors=None)
    no_colors.save(tmp_path / "plain.npz")
    assert LinearRig.load(tmp_path / "plain.npz").colors is None


def test_robot_face_round_trip_keeps_region_order(tmp_path):
    rig = robot_face()
    rig.save(tmp_path / "robot.npz")
    back = LinearRig.load(tmp_path / "robot.npz")
    np.testing.assert_array_equal(back.regions["lip_inner_upper"], rig.regions["lip_inner_upper"])
    np.testing.assert_array_equal(back.mesh(weights(jawOpen=1)), rig.mesh(weights(jawOpen=1)))


def _arrays(rig: LinearRig, tmp_path) -> dict:
    rig.save(tmp_path / "ok.npz")
    with np.load(tmp_path / "ok.npz") as d:
        return {k: d[k] for k in d.files}


@pytest.mark.parametrize("field, bad, message", [
    ("version", np.array(2), "version"),
    ("format", np.array("something else"), "format"),
    ("deltas", np.zeros((52, 3, 3), np.float32), "deltas"),
    ("triangles", np.array([[0, 1, 9]], np.int32), "triangles"),
    ("neutral", np.full((4, 3), np.nan, np.float32), "neutral"),
    ("colors", np.full((4, 3), 2.0, np.float32), "colors"),
    ("shape_names", np.array(ARKIT_NAMES[::-1]), "shape_names"),
    ("region/lips", np.array([0, 7]), "region/lips"),
])
def test_load_rejects_bad_fields_naming_them(tmp_path, field, bad, message):
    arrays = _arrays(tiny_rig(), tmp_path)
    arrays[field] = bad
    path = tmp_path / "bad.npz"
    np.savez(path, **arrays)
    with pytest.raises(ValueError, match=message) as info:
        LinearRig.load(path)
    assert "bad.npz" in str(info.value)


def test_load_rejects_missing_field_and_region(tmp_path):
    arrays = _arrays(tiny_rig(), tmp_path)
    del arrays["deltas"]
    np.savez(tmp_path / "a.npz", **arrays)
    with pytest.raises(ValueError, match="deltas: missing"):
        LinearRig.load(tmp_path / "a.npz")
    arrays = _arrays(tiny_rig(), tmp_path)
    arrays["region_names"] = np.array(["face", "lips", "upper_face"])  # no "eyes"
    np.savez(tmp_path / "b.npz", **arrays)
    with pytest.raises(ValueError, match="eyes"):
        LinearRig.load(tmp_path / "b.npz")


def test_load_damaged_files_give_value_error(tmp_path):
    good = tmp_path / "good.npz"
    tiny_rig().save(good)
    data = good.read_bytes()
    (tmp_path / "truncated.npz").write_bytes(data[: len(data) // 2])
    (tmp_path / "noise.npz").write_bytes(np.random.default_rng(1).bytes(2000))
    with open(tmp_path / "array.npz", "wb") as f:  # a plain .npy array, not an archive
        np.save(f, np.zeros(3))
    corrupt = bytearray(data)  # flip bytes inside the compressed deltas: CRC / zlib error
    start = data.find(b"deltas.npy") + 200
    corrupt[start:start + 64] = bytes(64)
    (tmp_path / "corrupt.npz").write_bytes(bytes(corrupt))
    for name in ("truncated.npz", "noise.npz", "array.npz", "corrupt.npz"):
        with pytest.raises(ValueError, match=name):
            LinearRig.load(tmp_path / name)
    with pytest.raises(FileNotFoundError):
        LinearRig.load(tmp_path / "absent.npz")


def test_load_never_unpickles(tmp_path):
    """An object array (which would need pickle to load) is refused, not executed."""
    arrays = _arrays(tiny_rig(), tmp_path)
    arrays["name"] = np.array([{"payload": 1}], dtype=object)
    path = tmp_path / "pickled.npz"
    np.savez(path, **arrays)  # numpy pickles the object array inside the archive
    with zipfile.ZipFile(path) as z:
        assert "name.npy" in z.namelist()
    with pytest.raises(ValueError, match="pickled.npz"):
        LinearRig.load(path)


def test_constructor_validates():
    with pytest.raises(ValueError, match="missing required region"):
        tiny_rig(regions={"face": [0]})
    with pytest.raises(ValueError, match="deltas"):
        tiny_rig(deltas=np.zeros((51, 4, 3)))


def test_subset_reindexes_triangles_and_regions():
    rig = tiny_rig()
    sub = rig.subset([3, 2, 0])  # kept in ascending order: 0, 2, 3
    np.testing.assert_array_equal(sub.neutral, rig.neutral[[0, 2, 3]])
    assert sub.triangles.tolist() == [[0, 1, 2]]  # only triangle (0, 2, 3) survives
    assert sub.regions["lips"].tolist() == [0] and sub.regions["eyes"].tolist() == [2]
    w = weights(jawOpen=1, eyeBlinkLeft=1)
    np.testing.assert_allclose(sub.mesh(w), rig.mesh(w)[[0, 2, 3]])


def test_subset_of_robot_lips_and_decimate_keep_exact_vertices():
    rig = robot_face()
    lips = rig.subset(rig.regions["lips"])
    assert lips.num_vertices == len(rig.regions["lips"]) and len(lips.triangles) > 0
    np.testing.assert_allclose(lips.lip_gap(weights(jawOpen=1)), rig.lip_gap(weights(jawOpen=1)), atol=1e-6)

    small = rig.decimate(0.6)
    assert small.num_vertices < 0.8 * rig.num_vertices
    w = weights(jawOpen=0.7, mouthSmileLeft=1)
    full_tree = cKDTree(rig.mesh(w))
    dist, _ = full_tree.query(small.mesh(w))
    assert dist.max() < 1e-5  # every kept vertex is an original one, posed exactly
    # The lips are never welded where they part: no triangle joins the upper and the lower lip
    # except at the corners, where the two tubes meet in every pose anyway.
    middle = set(np.nonzero(np.abs(small.neutral[:, 0]) < 2.5)[0].tolist())
    upper = set(small.regions["upper_lip"].tolist()) & middle
    lower = set(small.regions["lower_lip"].tolist()) & middle
    joins = [t for t in small.triangles.tolist() if set(t) & upper and set(t) & lower]
    assert joins == []
    assert len(upper) > 10 and len(lower) > 10


# -- ICT-FaceKit ------------------------------------------------------------------------------


def test_ict_mapping_table():
    assert set(ARKIT_TO_ICT) == set(ARKIT_NAMES)
    assert ARKIT_TO_ICT["tongueOut"] == ()
    assert ARKIT_TO_ICT["browInnerUp"] == ("browInnerUp_L", "browInnerUp_R")
    assert ARKIT_TO_ICT["cheekPuff"] == ("cheekPuff_L", "cheekPuff_R")
    assert ARKIT_TO_ICT["eyeBlinkLeft"] == ("eyeBlink_L",)
    assert ARKIT_TO_ICT["mouthSmileRight"] == ("mouthSmile_R",)
    assert ARKIT_TO_ICT["mouthLeft"] == ("mouthLeft",) and ARKIT_TO_ICT["jawRight"] == ("jawRight",)
    assert len(ICT_EXPRESSIONS) == 53
    used = [n for v in ARKIT_TO_ICT.values() for n in v]
    assert sorted(used) == sorted(ICT_EXPRESSIONS)  # each ICT expression driven exactly once


def _write_obj(path, verts, faces=()):
    lines = ["# test mesh", "mtllib none.mtl"] + [f"v {x:g} {y:g} {z:g}" for x, y, z in verts]
    lines += ["vt 0 0"] + ["f " + " ".join(f"{i + 1}/1" for i in f) for f in faces]
    path.write_text("\n".join(lines) + "\n")


NEUTRAL = np.array([[0, 0, 0], [1, 0, 0], [1, 1, 0], [0, 1, 0], [2, 0.5, 0]], np.float32)
FACES = [(0, 1, 2, 3), (1, 4, 2)]


@pytest.fixture
def facekit(tmp_path):
    folder = tmp_path / "FaceXModel"
    folder.mkdir()
    _write_obj(folder / "generic_neutral_mesh.obj", NEUTRAL, FACES)
    moves = {"browInnerUp_L": (3, (0, 0.5, 0)), "browInnerUp_R": (2, (0, 0.25, 0)),
             "eyeBlink_L": (4, (0, -1, 0)), "jawOpen": (0, (0, -2, 0.5)), "mouthLeft": (1, (0.3, 0, 0))}
    for name, (vertex, move) in moves.items():
        verts = NEUTRAL.copy()
        verts[vertex] += move
        _write_obj(folder / f"{name}.obj", verts, FACES)
    (folder / "vertex_indices.json").write_text(json.dumps({"expressions": list(moves)}))
    return folder


def test_read_obj_and_triangulate(facekit):
    verts, polys = read_obj(facekit / "generic_neutral_mesh.obj")
    np.testing.assert_array_equal(verts, NEUTRAL)
    assert polys.tolist() == [[0, 1, 2, 3], [1, 4, 2, -1]]
    assert triangulate(polys).tolist() == [[0, 1, 2], [1, 4, 2], [0, 2, 3]]


def test_from_ict_facekit_fixture(facekit):
    rig = from_ict_facekit(facekit.parent)  # the repository root works as well as FaceXModel/
    assert rig.num_vertices == 5 and len(rig.triangles) == 3
    d = rig.deltas
    close = dict(atol=1e-6)
    np.testing.assert_allclose(d[INDEX["browInnerUp"], 3], [0, 0.5, 0], **close)  # both halves
    np.testing.assert_allclose(d[INDEX["browInnerUp"], 2], [0, 0.25, 0], **close)
    np.testing.assert_allclose(d[INDEX["eyeBlinkLeft"], 4], [0, -1, 0], **close)
    np.testing.assert_allclose(d[INDEX["jawOpen"], 0], [0, -2, 0.5], **close)
    np.testing.assert_allclose(d[INDEX["mouthLeft"], 1], [0.3, 0, 0], **close)
    for absent in ("eyeBlinkRight", "tongueOut", "mouthRight"):
        assert not d[INDEX[absent]].any()
    np.testing.assert_allclose(rig.mesh(weights(jawOpen=0.5))[0], [0, -1, 0.25], **close)


def test_from_ict_facekit_bad_input(facekit):
    _write_obj(facekit / "jawOpen.obj", NEUTRAL[:4], FACES[:1])
    with pytest.raises(ValueError, match="jawOpen.obj"):
        from_ict_facekit(facekit)
    _write_obj(facekit / "jawOpen.obj", NEUTRAL, FACES)
    text = (facekit / "generic_neutral_mesh.obj").read_text().replace("f 2/1 5/1 3/1", "f 2/1 x/1 3/1")
    (facekit / "generic_neutral_mesh.obj").write_text(text)
    with pytest.raises(ValueError, match=r"generic_neutral_mesh.obj, line \d+"):
        from_ict_facekit(facekit)
    _write_obj(facekit / "generic_neutral_mesh.obj", NEUTRAL, FACES)
    (facekit / "eyeBlink_L.obj").unlink()
    with pytest.raises(FileNotFoundError, match="eyeBlink_L.obj"):
        from_ict_facekit(facekit)


needs_ict = pytest.mark.skipif(ict_rig_path() is None, reason="ICT-FaceKit rig not available")


@needs_ict
def test_load_packed_ict():
    path = ict_rig_path()
    with np.load(path) as d:
        np.testing.assert_array_equal(arkit_to_ict_matrix(d["ict_names"].tolist()), d["arkit_to_ict"])
    rig = load_packed_ict(path)
    assert rig.num_vertices == 9409 + 2046 + 2977 + 4412 + 3140  # face, socket, gums, teeth, eyes
    assert rig.regions["face"].tolist() == list(range(9409))
    assert min(len(rig.regions[r]) for r in ("lips", "upper_face", "eyes")) > 300
    # The rig's own midline pair is the one lip_geometry measures: the two gaps agree.
    rng = np.random.default_rng(3)
    w = rng.uniform(0, 1, (20, 52)).astype(np.float32)
    np.testing.assert_allclose(rig.lip_gap(w), lip_gap(w), atol=2e-3)
    blink = np.linalg.norm(rig.shape_delta("eyeBlinkLeft"), axis=1)
    assert rig.neutral[blink > 0.3, 0].min() > 0  # ICT's _L is the subject's left, +x
    assert rig.shape_delta("jawOpen")[rig.regions["lip_midline"][1], 1] < -2.0
    assert not rig.shape_delta("tongueOut").any()


# -- the robot face -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def robot():
    return robot_face()


def test_robot_face_is_deterministic_and_light(robot):
    again = _build()
    np.testing.assert_array_equal(again.neutral, robot.neutral)
    np.testing.assert_array_equal(again.deltas, robot.deltas)
    assert len(robot.triangles) <= 6000
    assert robot.colors is not None and robot.colors.shape == (robot.num_vertices, 3)
    lips = robot.colors[robot.regions["lips"]].mean(axis=0)
    assert lips[0] > lips[1] + 0.3  # lips are red, not grey
    assert robot.colors[robot.regions["sclera_left"]].min() > 0.9  # white eyes
    assert robot.colors[robot.regions["mouth_interior"]].max() < 0.2  # dark mouth


def test_robot_lip_gap_matches_lip_geometry(robot):
    rng = np.random.default_rng(7)
    w = rng.uniform(0, 1, (50, 52)).astype(np.float32)
    np.testing.assert_allclose(robot.lip_gap(w), lip_gap(w), atol=1e-3)
    np.testing.assert_allclose(robot.lip_gap(np.eye(52, dtype=np.float32)), lip_gap(np.eye(52)), atol=1e-3)


def test_robot_lips_close_with_mouth_close_along_the_whole_mouth(robot):
    upper, lower = robot.regions["lip_inner_upper"], robot.regions["lip_inner_lower"]
    for jaw in (0.3, 1.0):
        mesh = robot.mesh(weights(jawOpen=jaw, mouthClose=0.84 * jaw))
        assert (mesh[upper, 1] - mesh[lower, 1]).max() <= CLOSED_GAP
        mesh = robot.mesh(weights(jawOpen=jaw))
        assert (mesh[upper, 1] - mesh[lower, 1]).max() > 3.0 * jaw  # open without mouthClose


def _mirror_map(rig):
    dist, idx = cKDTree(rig.neutral).query(rig.neutral * [-1, 1, 1])
    return dist < 1e-3, idx


def test_robot_right_shapes_mirror_left_and_symmetric_shapes_are_symmetric(robot):
    has_mirror, mirror = _mirror_map(robot)
    # Everything but the catch-lights (both lit from the same side) is mirror symmetric.
    assert has_mirror.mean() > 0.95
    flip = np.array([-1, 1, 1])
    for name in ARKIT_NAMES:
        d, m = robot.shape_delta(name), robot.shape_delta(mirror_name(name))
        err = np.abs(d[has_mirror] - (m[mirror] * flip)[has_mirror]).max()
        assert err < 5e-4, name


def _moved(rig, name, threshold=1e-4):
    return np.linalg.norm(rig.shape_delta(name), axis=1) > threshold


def test_robot_every_shape_moves_and_sided_shapes_move_their_side(robot):
    x = robot.neutral[:, 0]
    for name in ARKIT_NAMES:
        size = np.linalg.norm(robot.shape_delta(name), axis=1)
        assert size.max() > 0.3, f"{name} barely moves"
        if name.endswith(("Left", "Right")) and not name.startswith(("jaw", "mouthLeft", "mouthRight")):
            sign = 1 if name.endswith("Left") else -1
            # Most of the motion is on the +x side for Left, -x for Right.
            assert sign * (size * x).sum() > 0.5 * (size * np.abs(x)).sum(), name


def test_robot_eye_and_brow_shapes_leave_the_other_side_and_the_mouth_alone(robot):
    lower_face = robot.neutral[:, 1] < -2.5
    for name in ARKIT_NAMES:
        if not name.startswith(("eye", "brow")):
            continue
        moved = _moved(robot, name)
        assert not (moved & lower_face).any(), name
        if name.endswith("Left"):
            assert not (moved & (robot.neutral[:, 0] < 0)).any(), name
        if name.endswith("Right"):
            assert not (moved & (robot.neutral[:, 0] > 0)).any(), name


def _mean(rig, name, region, axis, where=None):
    ids = rig.regions[region]
    if where is not None:
        ids = ids[where(rig.neutral[ids])]
    return float(rig.shape_delta(name)[ids, axis].mean())


def _corner(rig, side):
    """The lip vertices at the mouth corner on ``side`` (+1 = left = +x)."""
    ids = rig.regions["lips"]
    x = rig.neutral[ids, 0] * side
    return ids[x > x.max() - 0.3]


X, Y, Z = 0, 1, 2
LEFT, RIGHT = (lambda p: p[:, 0] > 0.3), (lambda p: p[:, 0] < -0.3)
INNER_BROW = (lambda p: np.abs(p[:, 0]) < 2.3)
OUTER_BROW = (lambda p: np.abs(p[:, 0]) > 5.0)
CHIN = (lambda p: (np.abs(p[:, 0]) < 1.5) & (p[:, 1] < -6.5) & (p[:, 2] > 4))

# (shape, region, axis, where, lower bound on the signed mean move in cm); negative bound means
# "at most" (the move must be below it).
EXPECTED_MOVES = [
    ("browDownLeft", "brow_left", Y, None, -0.3), ("browDownRight", "brow_right", Y, None, -0.3),
    ("browInnerUp", "brow_left", Y, INNER_BROW, 0.5), ("browInnerUp", "brow_right", Y, INNER_BROW, 0.5),
    ("browOuterUpLeft", "brow_left", Y, OUTER_BROW, 0.5), ("browOuterUpRight", "brow_right", Y, OUTER_BROW, 0.5),
    ("cheekPuff", "cheek_left", X, None, 0.3), ("cheekPuff", "cheek_right", X, None, -0.3),
    ("cheekPuff", "cheek_left", Z, None, 0.3),
    ("cheekSquintLeft", "cheek_left", Y, None, 0.3), ("cheekSquintRight", "cheek_right", Y, None, 0.3),
    ("eyeBlinkLeft", "upper_lid_left", Y, None, -0.7), ("eyeBlinkLeft", "lower_lid_left", Y, None, 0.2),
    ("eyeBlinkRight", "upper_lid_right", Y, None, -0.7),
    ("eyeLookDownLeft", "pupil_left", Y, None, -0.4), ("eyeLookDownRight", "pupil_right", Y, None, -0.4),
    ("eyeLookUpLeft", "pupil_left", Y, None, 0.4), ("eyeLookUpRight", "pupil_right", Y, None, 0.4),
    ("eyeLookInLeft", "pupil_left", X, None, -0.5), ("eyeLookInRight", "pupil_right", X, None, 0.5),
    ("eyeLookOutLeft", "pupil_left", X, None, 0.5), ("eyeLookOutRight", "pupil_right", X, None, -0.5),
    ("eyeSquintLeft", "lower_lid_left", Y, None, 0.3), ("eyeSquintRight", "lower_lid_right", Y, None, 0.3),
    ("eyeWideLeft", "upper_lid_left", Y, None, 0.2), ("eyeWideRight", "upper_lid_right", Y, None, 0.2),
    ("jawForward", "lower_lip", Z, None, 0.4), ("jawForward", "teeth_lower", Z, None, 0.4),
    ("jawLeft", "lower_lip", X, None, 0.5), ("jawRight", "lower_lip", X, None, -0.5),
    ("jawOpen", "lower_lip", Y, None, -2.0), ("jawOpen", "skin", Y, CHIN, -1.5),
    ("jawOpen", "teeth_lower", Y, None, -2.0), ("jawOpen", "tongue", Y, None, -1.0),
    ("mouthClose", "lower_lip", Y, None, 1.0), ("mouthClose", "upper_lip", Y, None, -0.3),
    ("mouthFunnel", "upper_lip", Z, None, 0.4), ("mouthFunnel", "lower_lip", Z, None, 0.4),
    ("mouthFunnel", "lip_inner_upper", Y, None, 0.2), ("mouthFunnel", "lip_inner_lower", Y, None, -0.3),
    ("mouthLeft", "lips", X, None, 0.7), ("mouthRight", "lips", X, None, -0.7),
    ("mouthLowerDownLeft", "lower_lip", Y, LEFT, -0.3), ("mouthLowerDownRight", "lower_lip", Y, RIGHT, -0.3),
    ("mouthPucker", "lips", Z, None, 0.5),
    ("mouthRollLower", "lower_lip", Z, None, -0.15), ("mouthRollUpper", "upper_lip", Z, None, -0.15),
    ("mouthShrugLower", "lower_lip", Y, None, 0.3), ("mouthShrugLower", "skin", Y, CHIN, 0.1),
    ("mouthShrugUpper", "upper_lip", Y, None, 0.25),
    ("mouthUpperUpLeft", "upper_lip", Y, LEFT, 0.3), ("mouthUpperUpRight", "upper_lip", Y, RIGHT, 0.3),
    ("noseSneerLeft", "nose", Y, LEFT, 0.15), ("noseSneerRight", "nose", Y, RIGHT, 0.15),
    ("tongueOut", "tongue", Z, None, 1.0),
]


@pytest.mark.parametrize("name, region, axis, where, bound", EXPECTED_MOVES,
                         ids=[f"{e[0]}-{e[1]}-{'xyz'[e[2]]}" for e in EXPECTED_MOVES])
def test_robot_shape_moves_its_part_the_named_way(robot, name, region, axis, where, bound):
    move = _mean(robot, name, region, axis, where)
    assert (move >= bound) if bound > 0 else (move <= bound), f"{name}: {region} moved {move:.3f}"


@pytest.mark.parametrize("side, suffix", [(1, "Left"), (-1, "Right")])
def test_robot_mouth_corner_shapes(robot, side, suffix):
    corner, other = _corner(robot, side), _corner(robot, -side)

    def move(name, ids, axis):
        return float(robot.shape_delta(name + suffix)[ids, axis].mean())

    assert move("mouthSmile", corner, Y) > 0.6 and abs(move("mouthSmile", other, Y)) < 0.05
    assert move("mouthFrown", corner, Y) < -0.5 and abs(move("mouthFrown", other, Y)) < 0.05
    assert side * move("mouthStretch", corner, X) > 0.4  # pulled outward
    assert move("mouthDimple", corner, Z) < -0.3  # pulled back into the cheek
    pucker = robot.shape_delta("mouthPucker")[corner, X].mean()
    assert side * pucker < -0.5  # pucker draws both corners toward the middle
    # mouthPress thins the lips on its side only: the lips' total height there shrinks.
    for ids_side, expect_change in ((side, True), (-side, False)):
        lips = robot.regions["lips"]
        sel = lips[(robot.neutral[lips, 0] * ids_side > 1.0) & (robot.neutral[lips, 0] * ids_side < 2.5)]
        before = np.ptp(robot.neutral[sel, 1])
        after = np.ptp(robot.mesh(weights(**{"mouthPress" + suffix: 1.0}))[sel, 1])
        assert (before - after > 0.1) == expect_change
