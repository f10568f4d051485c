"""A linear blendshape face rig: the one mesh type the renderer, RViz and the vertex metrics share.

A rig is a neutral mesh plus one vertex offset per ARKit blendshape, so a face for 52 weights is
``neutral + weights @ deltas``: exactly linear, cheap for whole sequences, and the same model
ICT-FaceKit and ARKit avatars use.

File format (``.npz`` written by :meth:`LinearRig.save`, read with ``allow_pickle=False``):

=================  ===================  =====================================================
key                shape, dtype         meaning
=================  ===================  =====================================================
format             () str               ``"talking_face_ros.LinearRig"``
version            () int64             ``1``
name, units        () str               rig name; length unit of the vertices (``"cm"``)
shape_names        (52,) str            must equal ``arkit.ARKIT_NAMES``
neutral            (V, 3) float32       rest pose; +x = subject's left, +y up, +z forward
triangles          (F, 3) int32         vertex indices in [0, V)
deltas             (52, V, 3) float32   offset of each vertex at weight 1 of each shape
colors             (V, 3) float32       optional albedo in [0, 1]
region_names       (R,) str             names of the vertex regions
region/<name>      (n,) int32           vertex indices in [0, V), order kept
=================  ===================  =====================================================

Every rig has at least the regions ``face``, ``lips``, ``upper_face`` and ``eyes`` (possibly empty
after :meth:`LinearRig.subset`). A region ``lip_midline`` of two vertices (inner upper lip, inner
lower lip) lets :meth:`LinearRig.lip_gap` measure the mouth opening on any rig.
"""
from __future__ import annotations

import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..arkit import ARKIT_NAMES, INDEX, NUM_BLENDSHAPES

FORMAT = "talking_face_ros.LinearRig"
VERSION = 1
REQUIRED_REGIONS = ("face", "lips", "upper_face", "eyes")


@dataclass(eq=False)
class LinearRig:
    neutral: np.ndarray  # (V, 3) float32 rest pose
    triangles: np.ndarray  # (F, 3) int32
    deltas: np.ndarray  # (52, V, 3) float32 in ARKIT_NAMES order
    regions: dict[str, np.ndarray] = field(default_factory=dict)  # name -> int32 vertex ids
    name: str = "rig"
    units: str = "cm"
    colors: np.ndarray | None = None  # (V, 3) float32 albedo in [0, 1], None = uniform grey

    def __post_init__(self):
        self.neutral = _float_array(self.neutral, "neutral", (None, 3))
        v = self.neutral.shape[0]
        self.triangles = _index_array(self.triangles, "triangles", v, (None, 3))
        self.deltas = _float_array(self.deltas, "deltas", (NUM_BLENDSHAPES, v, 3))
        if self.colors is not None:
            self.colors = _float_array(self.colors, "colors", (v, 3))
            if self.colors.min(initial=0.0) < 0.0 or self.colors.max(initial=0.0) > 1.0:
                raise ValueError("colors: values must lie in [0, 1]")
        regions = {}
        for key, ids in self.regions.items():
            if not isinstance(key, str) or not key or "/" in key:
                raise ValueError(f"regions: bad region name {key!r}")
            regions[key] = _index_array(ids, f"region/{key}", v, (None,))
        missing = [r for r in REQUIRED_REGIONS if r not in regions]
        if missing:
            raise ValueError(f"regions: missing required region(s) {missing}")
        self.regions = regions
        self.name, self.units = str(self.name), str(self.units)
        self._flat = self.deltas.reshape(NUM_BLENDSHAPES, -1)

    @property
    def num_vertices(self) -> int:
        return int(self.neutral.shape[0])

    def mesh(self, weights) -> np.ndarray:
        """Vertices for ``(52,)`` weights -> ``(V, 3)``, or ``(T, 52)`` -> ``(T, V, 3)``."""
        w = np.asarray(weights, dtype=np.float32)
        if w.shape[-1:] != (NUM_BLENDSHAPES,) or w.ndim not in (1, 2):
            raise ValueError(f"weights must be (52,) or (T, 52), got shape {w.shape}")
        flat = w @ self._flat
        return (flat.reshape(w.shape[:-1] + self.neutral.shape) + self.neutral).astype(np.float32)

    def shape_delta(self, name: str) -> np.ndarray:
        """The ``(V, 3)`` offset of one ARKit shape at weight 1 (KeyError names an unknown one)."""
        return self.deltas[INDEX[name]]

    def lip_gap(self, weights) -> np.ndarray:
        """Vertical distance from the inner lower lip up to the inner upper lip (rig units).

        Needs the ``lip_midline`` region; on the built-in robot face it equals
        :func:`talking_face_ros.lip_geometry.lip_gap` by construction.
        """
        pair = self.regions.get("lip_midline")
        if pair is None or len(pair) != 2:
            raise ValueError(f"rig {self.name!r} has no two-vertex 'lip_midline' region")
        w = np.asarray(weights, dtype=np.float32)
        y = self.neutral[pair, 1] + w @ self.deltas[:, pair, 1]
        return y[..., 0] - y[..., 1]

    # -- cutting down ---------------------------------------------------------------------------

    def subset(self, vertex_ids) -> "LinearRig":
        """The rig restricted to ``vertex_ids`` (kept in ascending order), triangles re-indexed.

        Triangles with any corner outside the subset are dropped; regions keep their surviving
        vertices in their own order. Used to send only a region (the face, the lips) to RViz.
        """
        ids = np.unique(_index_array(vertex_ids, "vertex_ids", self.num_vertices, (None,)))
        new_index = np.full(self.num_vertices, -1, dtype=np.int64)
        new_index[ids] = np.arange(len(ids))
        tri = new_index[self.triangles]
        tri = tri[(tri >= 0).all(axis=1)].astype(np.int32)
        regions = {}
        for key, reg in self.regions.items():
            mapped = new_index[reg]
            regions[key] = mapped[mapped >= 0].astype(np.int32)
        return LinearRig(
            neutral=self.neutral[ids], triangles=tri, deltas=self.deltas[:, ids], regions=regions,
            name=f"{self.name}[subset]", units=self.units,
            colors=None if self.colors is None else self.colors[ids],
        )

    def decimate(
        self,
        cell_size: float,  # cluster size in rig units
        *,
        probes=("jawOpen", "eyeBlinkLeft", "eyeBlinkRight"),  # poses that must keep parts apart
    ) -> "LinearRig":
        """A lighter rig by vertex clustering: one kept vertex per occupied cell of ``cell_size``.

        Kept vertices are original vertices, so their deltas stay exact. Vertices only share a
        cluster when they share a cell at rest AND in each probe pose, so parts that touch at
        rest but move apart (upper and lower lip, the two eyelids) are never welded together.
        Triangles that collapse are dropped.
        """
        if not cell_size > 0:
            raise ValueError(f"cell_size must be > 0, got {cell_size}")
        poses = [self.neutral] + [self.neutral + self.shape_delta(p) for p in probes]
        keys = np.concatenate([np.floor(p / cell_size).astype(np.int64) for p in poses], axis=1)
        _, cluster, counts = np.unique(keys, axis=0, return_inverse=True, return_counts=True)
        cluster = cluster.ravel()
        # Representative: the member nearest its cluster's mean rest position.
        sums = np.zeros((len(counts), 3))
        np.add.at(sums, cluster, self.neutral)
        dist = np.linalg.norm(self.neutral - (sums / counts[:, None])[cluster], axis=1)
        order = np.lexsort((dist, cluster))
        first = np.ones(len(order), dtype=bool)
        first[1:] = cluster[order][1:] != cluster[order][:-1]
        rep_of_cluster = np.empty(len(counts), dtype=np.int64)
        rep_of_cluster[cluster[order][first]] = order[first]
        tri = rep_of_cluster[cluster][self.triangles]
        keep = (tri[:, 0] != tri[:, 1]) & (tri[:, 1] != tri[:, 2]) & (tri[:, 0] != tri[:, 2])
        reps = np.sort(rep_of_cluster)
        tri = tri[keep]
        out = LinearRig(
            neutral=self.neutral, triangles=tri, deltas=self.deltas, regions=self.regions,
            name=self.name, units=self.units, colors=self.colors,
        ).subset(reps)
        out.name = f"{self.name}[decimated {cell_size:g}]"
        return out

    # -- files ----------------------------------------------------------------------------------

    def save(self, path) -> None:
        """Write the documented ``.npz`` format (compressed, no pickled objects)."""
        arrays = {
            "format": np.array(FORMAT), "version": np.array(VERSION, dtype=np.int64),
            "name": np.array(self.name), "units": np.array(self.units),
            "shape_names": np.array(ARKIT_NAMES), "neutral": self.neutral,
            "triangles": self.triangles, "deltas": self.deltas,
            "region_names": np.array(sorted(self.regions), dtype=str).reshape(-1),
        }
        if self.colors is not None:
            arrays["colors"] = self.colors
        for key, ids in self.regions.items():
            arrays[f"region/{key}"] = ids
        with open(path, "wb") as f:  # a file object keeps numpy from appending ".npz"
            np.savez_compressed(f, **arrays)

    @classmethod
    def load(cls, path) -> "LinearRig":
        """Read a rig written by :meth:`save`; any damage gives a ValueError naming file and field."""
        path = Path(path)
        damaged = (OSError, ValueError, EOFError, KeyError, TypeError, zipfile.BadZipFile, zlib.error)
        try:
            data = np.load(path, allow_pickle=False)
        except FileNotFoundError:
            raise
        except damaged as e:
            raise ValueError(f"{path}: not a readable rig file ({type(e).__name__}: {e})") from e
        if not isinstance(data, np.lib.npyio.NpzFile):
            raise ValueError(f"{path}: not an .npz archive")
        try:
            arrays = {key: data[key] for key in data.files}
        except damaged as e:  # members are read (and decompressed) only here
            raise ValueError(f"{path}: damaged rig file ({type(e).__name__}: {e})") from e
        finally:
            data.close()
        try:
            return cls._from_arrays(arrays)
        except ValueError as e:
            raise ValueError(f"{path}: {e}") from e

    @classmethod
    def _from_arrays(cls, a: dict) -> "LinearRig":
        def get(key):
            if key not in a:
                raise ValueError(f"{key}: missing")
            return a[key]

        if _scalar_str(get("format"), "format") != FORMAT:
            raise ValueError(f"format: expected {FORMAT!r}")
        version = get("version")
        if version.shape != () or version.dtype.kind not in "iu" or int(version) != VERSION:
            raise ValueError(f"version: expected {VERSION}, got {version!r}")
        names = get("shape_names")
        if names.dtype.kind != "U" or tuple(names.tolist()) != ARKIT_NAMES:
            raise ValueError("shape_names: not the 52 ARKit names in ARKIT_NAMES order")
        region_names = get("region_names")
        if region_names.dtype.kind != "U" or region_names.ndim != 1:
            raise ValueError("region_names: expected a 1-D string array")
        regions = {str(r): get(f"region/{r}") for r in region_names.tolist()}
        return cls(
            neutral=get("neutral"), triangles=get("triangles"), deltas=get("deltas"),
            regions=regions, name=_scalar_str(get("name"), "name"),
            units=_scalar_str(get("units"), "units"), colors=a.get("colors"),
        )


def _scalar_str(value: np.ndarray, field_name: str) -> str:
    if value.shape != () or value.dtype.kind != "U":
        raise ValueError(f"{field_name}: expected a string")
    return str(value)


def _float_array(value, field_name: str, shape: tuple) -> np.ndarray:
    arr = np.asarray(value)
    if arr.dtype.kind not in "fiu":
        raise ValueError(f"{field_name}: expected numbers, got dtype {arr.dtype}")
    _check_shape(arr, field_name, shape)
    arr = arr.astype(np.float32)
    if not np.isfinite(arr).all():
        raise ValueError(f"{field_name}: contains NaN or infinite values")
    return arr


def _index_array(value, field_name: str, num_vertices: int, shape: tuple) -> np.ndarray:
    arr = np.asarray(value)
    if arr.size == 0:
        arr = arr.astype(np.int64)
    if arr.dtype.kind not in "iu":
        raise ValueError(f"{field_name}: expected integer vertex indices, got dtype {arr.dtype}")
    _check_shape(arr, field_name, shape)
    if arr.size and (arr.min() < 0 or arr.max() >= num_vertices):
        raise ValueError(f"{field_name}: vertex index out of range [0, {num_vertices})")
    return arr.astype(np.int32)


def _check_shape(arr: np.ndarray, field_name: str, shape: tuple) -> None:
    ok = arr.ndim == len(shape) and all(s is None or s == n for s, n in zip(shape, arr.shape))
    if not ok:
        want = "(" + ", ".join("N" if s is None else str(s) for s in shape) + ")"
        raise ValueError(f"{field_name}: expected shape {want}, got {arr.shape}")
