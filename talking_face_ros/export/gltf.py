"""A face rig and its animation as one binary glTF 2.0 file (``.glb``), for three.js, Blender, Unity.

What the file holds:

* one mesh, one primitive (triangles): ``POSITION``, ``NORMAL``, ``COLOR_0`` (when the rig has
  colours) and the indices; a double-sided, non-metallic material whose base colour is the
  vertex colour (the rigs' parts have no consistent winding, so back faces must be drawn);
* 52 morph targets in ``ARKIT_NAMES`` order, named in ``mesh.extras.targetNames`` (the
  convention three.js' GLTFLoader and Blender's importer read to name shape keys), each a
  ``POSITION`` offset and, by default, a ``NORMAL`` offset;
* one animation, ``"talking_face"``: one LINEAR sampler from the frame times to the 52 weights
  per frame, on the node's ``"weights"`` path.

Axes and units: glTF's +Y up and +Z forward (the side a model faces), +X the model's own left,
are the rig's axes, so vertices are only scaled from rig units to glTF's metres. Rig colours
are display (sRGB) values, as the renderer uses them; ``COLOR_0`` is linear by the glTF spec,
so they are converted.

A morph target's ``NORMAL`` is the change of the vertex normal at weight 1 of that shape. Mixed
shapes get the weighted sum of those changes, which viewers renormalise: exact for one shape
at a time, a close approximation for mixes, and far better than the rest normals under an
open jaw.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pygltflib

from ..arkit import ARKIT_NAMES, NUM_BLENDSHAPES
from ..render.frame import vertex_normals
from ..rig.linear_rig import LinearRig
from . import check_frames, meters_per_unit

GENERATOR = "talking_face_ros"
ANIMATION_NAME = "talking_face"


def write_glb(
    path,
    rig: LinearRig,
    times,  # (frames,) seconds, strictly increasing, >= 0
    weights,  # (frames, 52) ARKit-order weights
    *,
    morph_normals: bool = True,  # store per-shape normal offsets (about doubles the file)
    name: str | None = None,  # mesh / node name; default the rig's name
) -> Path:
    """Write ``rig`` and the animation ``(times, weights)`` to ``path`` as a ``.glb`` file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(glb_bytes(rig, times, weights, morph_normals=morph_normals, name=name))
    return path


def glb_bytes(rig: LinearRig, times, weights, *, morph_normals: bool = True,
              name: str | None = None) -> bytes:
    """The ``.glb`` file :func:`write_glb` writes, as bytes."""
    times, weights = _check_animation(times, weights)
    scale = meters_per_unit(rig.units)
    neutral = rig.neutral.astype(np.float64) * scale
    deltas = rig.deltas.astype(np.float64) * scale

    rest_normals = _unit_normals(neutral, rig.triangles)

    doc = pygltflib.GLTF2(asset=pygltflib.Asset(version="2.0", generator=GENERATOR))
    blob = _Blob(doc)
    attributes = pygltflib.Attributes(
        POSITION=blob.accessor(neutral.astype(np.float32), "VEC3", bounds=True),
        NORMAL=blob.accessor(rest_normals.astype(np.float32), "VEC3"),
    )
    if rig.colors is not None:
        attributes.COLOR_0 = blob.accessor(_srgb_to_linear(rig.colors).astype(np.float32), "VEC3")
    index_type = np.uint16 if rig.num_vertices <= np.iinfo(np.uint16).max else np.uint32
    indices = blob.accessor(rig.triangles.astype(index_type).ravel(), "SCALAR",
                            target=pygltflib.ELEMENT_ARRAY_BUFFER)
    targets = []
    for k in range(NUM_BLENDSHAPES):
        position = blob.accessor(deltas[k].astype(np.float32), "VEC3", bounds=True)
        target = pygltflib.Attributes(POSITION=position)
        if morph_normals:
            moved = _unit_normals(neutral + deltas[k], rig.triangles)
            target.NORMAL = blob.accessor((moved - rest_normals).astype(np.float32), "VEC3")
        targets.append(target)

    doc.materials.append(pygltflib.Material(
        name="face", doubleSided=True,
        pbrMetallicRoughness=pygltflib.PbrMetallicRoughness(
            baseColorFactor=[1.0, 1.0, 1.0, 1.0], metallicFactor=0.0, roughnessFactor=0.6),
    ))
    mesh_name = name or rig.name
    doc.meshes.append(pygltflib.Mesh(
        name=mesh_name,
        primitives=[pygltflib.Primitive(attributes=attributes, indices=indices, material=0,
                                        mode=pygltflib.TRIANGLES, targets=targets)],
        weights=[0.0] * NUM_BLENDSHAPES,
        extras={"targetNames": list(ARKIT_NAMES)},
    ))
    doc.nodes.append(pygltflib.Node(name=mesh_name, mesh=0))
    doc.scenes.append(pygltflib.Scene(name=mesh_name, nodes=[0]))
    doc.scene = 0

    time_accessor = blob.accessor(times, "SCALAR", bounds=True, target=None)
    weight_accessor = blob.accessor(weights.ravel(), "SCALAR", target=None)
    doc.animations.append(pygltflib.Animation(
        name=ANIMATION_NAME,
        samplers=[pygltflib.AnimationSampler(input=time_accessor, output=weight_accessor,
                                             interpolation=pygltflib.ANIM_LINEAR)],
        channels=[pygltflib.AnimationChannel(
            sampler=0, target=pygltflib.AnimationChannelTarget(node=0, path="weights"))],
    ))
    return blob.finish()


def _check_animation(times, weights) -> tuple[np.ndarray, np.ndarray]:
    """float32 times and weights, or a ValueError saying what is wrong with them."""
    t, w = check_frames(times, weights)
    t32 = t.astype(np.float32)
    if t32[0] < 0 or np.any(np.diff(t32) <= 0):
        raise ValueError("times must start at >= 0 s and strictly increase in float32 (glTF animation input)")
    return t32, w.astype(np.float32)


def _unit_normals(vertices: np.ndarray, triangles: np.ndarray) -> np.ndarray:
    """Vertex normals with +Z for vertices in no triangle (glTF requires unit normals)."""
    n = vertex_normals(vertices, triangles)
    n[np.linalg.norm(n, axis=1) < 0.5] = (0.0, 0.0, 1.0)
    return n


def _srgb_to_linear(c: np.ndarray) -> np.ndarray:
    c = np.asarray(c, dtype=np.float64)
    return np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)


class _Blob:
    """The GLB's one binary buffer: one 4-byte-aligned buffer view per accessor.

    pygltflib models the JSON and the GLB container but does not pack arrays, so this does.
    """

    def __init__(self, doc: pygltflib.GLTF2):
        self.doc = doc
        self.chunks: list[bytes] = []
        self.size = 0

    def accessor(self, data: np.ndarray, kind: str, *, bounds: bool = False,
                 target: int | None = pygltflib.ARRAY_BUFFER) -> int:
        """Append ``data`` (rows of ``kind``) and return its accessor index."""
        data = np.ascontiguousarray(data)
        component = {np.dtype(np.float32): pygltflib.FLOAT, np.dtype(np.uint16): pygltflib.UNSIGNED_SHORT,
                     np.dtype(np.uint32): pygltflib.UNSIGNED_INT}[data.dtype]
        raw = data.astype(data.dtype.newbyteorder("<"), copy=False).tobytes()
        view = pygltflib.BufferView(buffer=0, byteOffset=self.size, byteLength=len(raw))
        if target is not None:
            view.target = target
        self.doc.bufferViews.append(view)
        padding = (-len(raw)) % 4
        self.chunks.append(raw + b"\0" * padding)
        self.size += len(raw) + padding
        count = len(data) if kind != "SCALAR" else data.size
        accessor = pygltflib.Accessor(bufferView=len(self.doc.bufferViews) - 1, componentType=component,
                                      count=count, type=kind)
        if bounds:  # exact float32 values, as glTF validators compare them with the data
            rows = data.reshape(count, -1)
            accessor.min = [float(v) for v in rows.min(axis=0)]
            accessor.max = [float(v) for v in rows.max(axis=0)]
        self.doc.accessors.append(accessor)
        return len(self.doc.accessors) - 1

    def finish(self) -> bytes:
        self.doc.buffers.append(pygltflib.Buffer(byteLength=self.size))
        self.doc.set_binary_blob(b"".join(self.chunks))
        return b"".join(self.doc.save_to_bytes())
