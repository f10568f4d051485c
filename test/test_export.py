"""Face exports: the .glb (re-read with pygltflib, trimesh and Khronos' validator) and the LLF CSV."""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pygltflib
import pytest

from talking_face_ros.arkit import ARKIT_NAMES, INDEX
from talking_face_ros.commands import export as export_command
from talking_face_ros.data.livelink import read_livelink_csv
from talking_face_ros.export import resample_frames
from talking_face_ros.export.gltf import write_glb
from talking_face_ros.export.livelink_export import export_livelink
from talking_face_ros.frames_io import save_frames
from talking_face_ros.lip_geometry import lip_gap
from talking_face_ros.paths import ict_rig_path
from talking_face_ros.rig import load_packed_ict, robot_face

REPO = Path(__file__).resolve().parents[1]
FPS = 30.0


@pytest.fixture(scope="module")
def rig():
    return robot_face()


@pytest.fixture(scope="module")
def animation():
    """45 frames (1.5 s) of random weights at 30 fps, frame 3 a pure jawOpen."""
    weights = np.random.default_rng(5).uniform(0.0, 1.0, (45, 52)).astype(np.float32)
    weights[3] = 0.0
    weights[3, INDEX["jawOpen"]] = 1.0
    return np.arange(45) / FPS, weights


@pytest.fixture(scope="module")
def glb(rig, animation, tmp_path_factory):
    path = tmp_path_factory.mktemp("glb") / "robot.glb"
    return write_glb(path, rig, *animation)


def _read(doc: pygltflib.GLTF2, index: int) -> np.ndarray:
    """An accessor's data from the reloaded GLB's binary chunk, by the spec's layout rules."""
    acc = doc.accessors[index]
    view = doc.bufferViews[acc.bufferView]
    dtype = {pygltflib.FLOAT: "<f4", pygltflib.UNSIGNED_SHORT: "<u2",
             pygltflib.UNSIGNED_INT: "<u4"}[acc.componentType]
    width = {"SCALAR": 1, "VEC3": 3, "VEC4": 4}[acc.type]
    assert view.byteStride in (None, 0)  # tightly packed
    data = np.frombuffer(doc.binary_blob(), dtype=dtype, count=acc.count * width,
                         offset=view.byteOffset + (acc.byteOffset or 0))
    return data.reshape(acc.count, width) if width > 1 else data


def test_glb_structure(glb, rig, animation):
    doc = pygltflib.GLTF2.load(glb)
    assert doc.asset.version == "2.0"
    (mesh,) = doc.meshes
    (prim,) = mesh.primitives
    assert mesh.extras["targetNames"] == list(ARKIT_NAMES)
    assert len(prim.targets) == 52 and len(mesh.weights) == 52
    assert prim.mode == pygltflib.TRIANGLES
    np.testing.assert_array_equal(_read(doc, prim.indices).reshape(-1, 3), rig.triangles)

    # glTF requires min/max on every POSITION accessor, base and morph targets alike.
    for index in [prim.attributes.POSITION] + [t["POSITION"] for t in prim.targets]:
        acc, data = doc.accessors[index], _read(doc, index)
        assert acc.count == rig.num_vertices
        assert acc.min == data.min(axis=0).tolist() and acc.max == data.max(axis=0).tolist()
    normals = _read(doc, prim.attributes.NORMAL)
    np.testing.assert_allclose(np.linalg.norm(normals, axis=1), 1.0, atol=1e-5)
    assert all("NORMAL" in t for t in prim.targets)  # reloaded targets are plain dicts

    (anim,) = doc.animations
    (sampler,) = anim.samplers
    (channel,) = anim.channels
    assert sampler.interpolation == "LINEAR"
    assert (channel.target.path, channel.target.node, channel.sampler) == ("weights", 0, 0)
    assert doc.nodes[channel.target.node].mesh == 0
    times, weights = animation
    np.testing.assert_array_equal(_read(doc, sampler.input), times.astype(np.float32))
    assert doc.accessors[sampler.input].min == [0.0]
    assert doc.accessors[sampler.input].max == [float(np.float32(44 / FPS))]
    assert doc.accessors[sampler.output].count == 45 * 52


def test_glb_morph_targets_reproduce_the_rig(glb, rig, animation):
    doc = pygltflib.GLTF2.load(glb)
    prim = doc.meshes[0].primitives[0]
    base = _read(doc, prim.attributes.POSITION).astype(np.float64)
    targets = np.stack([_read(doc, t["POSITION"]) for t in prim.targets]).astype(np.float64)
    keys = _read(doc, doc.animations[0].samplers[0].output).reshape(45, 52).astype(np.float64)
    for frame in (0, 3, 17, 44):
        vertices = base + np.tensordot(keys[frame], targets, axes=1)  # glTF morphing, in metres
        np.testing.assert_allclose(vertices * 100.0, rig.mesh(animation[1][frame]), atol=1e-4)
    # Frame 3 opens the jaw alone: the inner lips part by ICT's jawOpen gap, 0.01 m per cm.
    upper, lower = rig.regions["lip_midline"]
    opened = base + targets[INDEX["jawOpen"]]
    gap = opened[upper, 1] - opened[lower, 1]
    assert gap == pytest.approx(lip_gap(keys[3]) / 100.0, abs=1e-6)
    assert gap - (base[upper, 1] - base[lower, 1]) > 0.005  # the mouth really opened (> 5 mm)


def test_glb_colours_are_linear(glb, rig):
    doc = pygltflib.GLTF2.load(glb)
    colors = _read(doc, doc.meshes[0].primitives[0].attributes.COLOR_0)
    # sRGB 0.5 is linear 0.214; the conversion is the standard sRGB curve.
    srgb = rig.colors.astype(np.float64)
    expect = np.where(srgb <= 0.04045, srgb / 12.92, ((srgb + 0.055) / 1.055) ** 2.4)
    np.testing.assert_allclose(colors, expect, atol=1e-6)
    assert ((0.5 + 0.055) / 1.055) ** 2.4 == pytest.approx(0.2140, abs=1e-4)


def test_glb_without_morph_normals_is_smaller(rig, animation, tmp_path, glb):
    small = write_glb(tmp_path / "small.glb", rig, *animation, morph_normals=False)
    doc = pygltflib.GLTF2.load(small)
    assert all("NORMAL" not in t for t in doc.meshes[0].primitives[0].targets)
    saved = len(pygltflib.GLTF2.load(glb).binary_blob()) - len(doc.binary_blob())
    assert saved == 52 * rig.num_vertices * 12  # one float32 VEC3 per vertex and shape


def test_glb_read_by_trimesh(glb, rig):
    trimesh = pytest.importorskip("trimesh")
    scene = trimesh.load(glb, process=False)
    (geometry,) = scene.geometry.values()
    np.testing.assert_allclose(geometry.vertices, rig.neutral * 0.01, atol=1e-7)
    np.testing.assert_array_equal(geometry.faces, rig.triangles)
    assert geometry.metadata["targetNames"] == list(ARKIT_NAMES)
    assert geometry.visual.vertex_attributes["color"].shape == (rig.num_vertices, 3)


def _validator() -> tuple[str, Path] | None:
    """node and a folder holding node_modules/gltf-validator (the project's .venv by default)."""
    node = shutil.which("node")
    folder = Path(os.environ.get("GLTF_VALIDATOR_PREFIX", REPO / ".venv"))
    if node is None or not (folder / "node_modules" / "gltf-validator").is_dir():
        return None
    return node, folder / "node_modules"


VALIDATE_JS = """
const fs = require('fs');
const validator = require('gltf-validator');
validator.validateBytes(new Uint8Array(fs.readFileSync(process.argv[1])), {maxIssues: 20})
  .then((r) => console.log(JSON.stringify(r.issues)), (e) => { console.error(e); process.exit(2); });
"""


def _validate(path: Path) -> dict:
    found = _validator()
    if found is None:
        pytest.skip("node or gltf-validator missing (npm install --prefix .venv gltf-validator)")
    node, modules = found
    out = subprocess.run([node, "-e", VALIDATE_JS, str(path)], capture_output=True, text=True, timeout=60,
                         env={**os.environ, "NODE_PATH": str(modules)}, check=True)
    return json.loads(out.stdout)


def test_glb_passes_khronos_validator(glb, tmp_path):
    issues = _validate(glb)
    assert (issues["numErrors"], issues["numWarnings"]) == (0, 0), issues["messages"]
    # The validator does check what this file relies on: a wrong POSITION max is an error.
    doc = pygltflib.GLTF2.load(glb)
    doc.accessors[doc.meshes[0].primitives[0].attributes.POSITION].max[1] += 0.5
    broken = tmp_path / "broken.glb"
    broken.write_bytes(b"".join(doc.save_to_bytes()))
    codes = {m["code"] for m in _validate(broken)["messages"]}
    assert "ACCESSOR_MAX_MISMATCH" in codes


def test_glb_bad_input(rig, tmp_path):
    times = np.arange(4) / FPS
    with pytest.raises(ValueError, match=r"weights must be \(frames, 52\)"):
        write_glb(tmp_path / "a.glb", rig, times, np.zeros((4, 51)))
    with pytest.raises(ValueError, match="times must be"):
        write_glb(tmp_path / "a.glb", rig, times[:3], np.zeros((4, 52)))
    with pytest.raises(ValueError, match="strictly increase"):
        write_glb(tmp_path / "a.glb", rig, times[::-1], np.zeros((4, 52)))
    with pytest.raises(ValueError, match=">= 0 s"):
        write_glb(tmp_path / "a.glb", rig, times - 1.0, np.zeros((4, 52)))
    weird = robot_face()
    weird.units = "furlong"
    with pytest.raises(ValueError, match="furlong"):
        write_glb(tmp_path / "a.glb", weird, times, np.zeros((4, 52)))
    assert not (tmp_path / "a.glb").exists()


@pytest.mark.skipif(ict_rig_path() is None, reason="ICT-FaceKit rig not available")
def test_glb_of_the_ict_rig(tmp_path):
    ict = load_packed_ict(ict_rig_path())
    weights = np.zeros((2, 52), np.float32)
    weights[1, INDEX["jawOpen"]] = 1.0
    path = write_glb(tmp_path / "ict.glb", ict, np.array([0.0, 0.5]), weights, morph_normals=False)
    doc = pygltflib.GLTF2.load(path)
    prim = doc.meshes[0].primitives[0]
    assert ict.num_vertices < 65536 and doc.accessors[prim.indices].componentType == pygltflib.UNSIGNED_SHORT
    opened = _read(doc, prim.attributes.POSITION) + _read(doc, prim.targets[INDEX["jawOpen"]]["POSITION"])
    upper, lower = ict.regions["lip_midline"]
    assert opened[upper, 1] - opened[lower, 1] == pytest.approx(lip_gap(weights[1]) / 100.0, abs=1e-5)


# ---------------------------------------------------------------- Live Link Face


def test_livelink_round_trip_keeps_frames(animation, tmp_path):
    times, weights = animation
    path = export_livelink(tmp_path / "take.csv", times, weights)
    take = read_livelink_csv(path)
    assert take.timecode_fps == 30 and take.capture_fps == 30
    np.testing.assert_allclose(take.times, times, atol=1e-9)
    np.testing.assert_allclose(take.weights, weights, atol=1e-7)
    np.testing.assert_array_equal(take.rotations, 0.0)
    assert take.start_timecode == "00:00:00:00.000"


def test_livelink_at_60_fps_interpolates_between_frames(animation, tmp_path):
    times, weights = animation
    path = export_livelink(tmp_path / "take60.csv", times, weights, fps=60, start_timecode="01:02:03:58")
    take = read_livelink_csv(path)
    assert take.timecode_fps == 60 and take.capture_fps == 60 and len(take.times) == 89
    assert take.start_timecode == "01:02:03:58.000"
    np.testing.assert_allclose(take.times, np.arange(89) / 60, atol=1e-9)
    np.testing.assert_allclose(take.weights[::2], weights, atol=1e-6)  # even rows: the frames
    np.testing.assert_allclose(take.weights[1::2], (weights[:-1] + weights[1:]) / 2, atol=1e-6)  # midpoints


def test_resample_handles_irregular_times():
    times = np.array([0.0, 0.1, 0.3])  # a dropped frame between 0.1 and 0.3
    weights = np.zeros((3, 52))
    weights[:, 0] = [0.0, 1.0, 0.0]
    grid, out = resample_frames(times, weights, 10.0)
    np.testing.assert_allclose(grid, [0.0, 0.1, 0.2, 0.3])
    np.testing.assert_allclose(out[:, 0], [0.0, 1.0, 0.5, 0.0])
    with pytest.raises(ValueError, match="fps must be positive"):
        resample_frames(times, weights, 0.0)


# ---------------------------------------------------------------- command line


def _cli(argv):
    parser = argparse.ArgumentParser()
    export_command.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["export", *argv])
    return args.func(args)


def test_export_command_writes_both_formats(animation, tmp_path, capsys):
    frames = save_frames(tmp_path / "frames.csv", *animation)
    assert _cli([str(frames), "--out", str(tmp_path / "face.glb")]) == 0
    doc = pygltflib.GLTF2.load(tmp_path / "face.glb")
    assert doc.accessors[doc.animations[0].samplers[0].input].count == 45
    assert _cli([str(frames), "--out", str(tmp_path / "face60.glb"), "--fps", "60"]) == 0
    doc = pygltflib.GLTF2.load(tmp_path / "face60.glb")
    assert doc.accessors[doc.animations[0].samplers[0].input].count == 89
    take_path = tmp_path / "take.txt"
    assert _cli([str(frames), "--format", "livelink", "--fps", "60", "--out", str(take_path)]) == 0
    take = read_livelink_csv(tmp_path / "take.txt")
    assert take.timecode_fps == 60 and len(take.times) == 89
    np.testing.assert_allclose(take.weights[::2], animation[1], atol=2e-5)  # frame CSV: 5 decimals
    assert "Live Link Face take at 60 fps" in capsys.readouterr().out
    with pytest.raises(ValueError, match="cannot tell the format"):
        _cli([str(frames), "--out", str(tmp_path / "face.fbx")])
