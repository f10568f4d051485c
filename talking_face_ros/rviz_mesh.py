"""The deforming face as a ``visualization_msgs/Marker`` (TRIANGLE_LIST) for RViz.

A TRIANGLE_LIST marker carries three points per triangle (corners are not shared) and either
one colour per point, one per triangle, or none (then ``marker.color`` paints the whole mesh).
RViz draws coloured markers unlit and single-coloured ones lit with flat face normals, so the
single-colour mode ("none") shows the shape best and also sends the fewest bytes.

Everything that does not change between frames is prepared once: the region cut and
decimation, the corner index expansion, the axis change, the colours and a serialized
template of the message. A frame is then one matrix product (52 weights x the deltas) and a
gather of the corners; :meth:`FaceMeshMarker.serialize` copies those into the template's bytes
(for ``Publisher.publish``, which takes serialized bytes), while :meth:`FaceMeshMarker.marker`
builds the Python message, whose thousands of ``geometry_msgs/Point`` objects cost far more
than the maths (see ``bench/rviz_bandwidth.py``).

Frame: points are in metres in ROS axes (REP 103: +x forward out of the face, +y the face's
left, +z up), centred on the rest pose's bounding box, so a ``face`` TF frame at the middle of
the face looking forward shows it upright (``config/face.rviz``).

In a node::

    face = FaceMeshMarker(robot_face(), cell_size=0.5)
    publisher = node.create_publisher(Marker, "face_mesh", 1)
    publisher.publish(face.serialize(weights, stamp=node.get_clock().now().to_msg()))
"""
from __future__ import annotations

import struct
from collections import deque
from itertools import repeat

import numpy as np
from builtin_interfaces.msg import Time
from geometry_msgs.msg import Point
from rclpy.serialization import serialize_message
from std_msgs.msg import ColorRGBA
from visualization_msgs.msg import Marker

from .arkit import NUM_BLENDSHAPES
from .export import meters_per_unit
from .rig.linear_rig import LinearRig

COLOR_MODES = ("vertex", "face", "none")
DEFAULT_COLOR = (0.85, 0.72, 0.62, 1.0)  # skin-like grey-beige for the single-colour mode
_RIG_TO_ROS = [2, 0, 1]  # ROS (x fwd, y left, z up) = rig (z fwd, x left, y up)
_SENTINEL = 1234.5678901234567  # first point's x in the template, found again in its bytes
# Points are made by setting their slots directly (no per-point Python call): only when the
# generated class has the slots this relies on; otherwise the constructor is used.
_BULK_POINTS = {"_x", "_y", "_z", "_check_fields"} <= set(getattr(Point, "__slots__", ()))


class FaceMeshMarker:
    """Builds the face mesh marker of a rig for any 52 weights.

    ``rig``, after the region cut and decimation, is kept as ``self.rig``.
    """

    def __init__(
        self,
        rig: LinearRig,
        *,
        region: str | None = "face",  # vertex region to show; None = the whole rig
        cell_size: float | None = None,  # decimation cluster size in rig units; None = full mesh
        frame_id: str = "face",  # TF frame of the points
        ns: str = "face_mesh",  # marker namespace
        marker_id: int = 0,
        colors: str = "vertex",  # "vertex", "face" (one per triangle, fewer bytes) or "none"
        color=DEFAULT_COLOR,  # RGBA of the mesh in the "none" mode
    ):
        if colors not in COLOR_MODES:
            raise ValueError(f"colors must be one of {COLOR_MODES}, got {colors!r}")
        if region is not None:
            if region not in rig.regions:
                raise ValueError(f"rig {rig.name!r} has no region {region!r}; "
                                 f"it has: {', '.join(sorted(rig.regions))}")
            rig = rig.subset(rig.regions[region])
        if cell_size is not None:
            rig = rig.decimate(cell_size)
        if len(rig.triangles) == 0:
            raise ValueError(f"rig {rig.name!r} has no triangles to show")
        self.rig = rig
        self.colors = colors

        # Static geometry in ROS axes and metres, centred on the rest pose's bounding box.
        scale = meters_per_unit(rig.units)
        neutral = rig.neutral[:, _RIG_TO_ROS].astype(np.float64) * scale
        self._center = (neutral.min(axis=0) + neutral.max(axis=0)) / 2
        self._neutral = (neutral - self._center).astype(np.float32)  # (V, 3)
        deltas = rig.deltas[:, :, _RIG_TO_ROS].astype(np.float64) * scale
        self._deltas = deltas.reshape(NUM_BLENDSHAPES, -1).astype(np.float32)  # (52, V * 3)
        self._corners = np.ascontiguousarray(rig.triangles.ravel(), dtype=np.intp)  # (3F,)

        # Colours are float32 on the wire: rounded here so a message equals its round trip.
        rgba = np.asarray(color, dtype=np.float32)
        if rgba.shape != (4,) or not np.all((rgba >= 0.0) & (rgba <= 1.0)):
            raise ValueError(f"color must be 4 values (RGBA) in [0, 1], got {color!r}")
        rgba = rgba.tolist() if colors == "none" else [1.0, 1.0, 1.0, 1.0]
        self._header = (str(frame_id), str(ns), int(marker_id), rgba)
        self._color_list = self._make_colors(colors)
        self._layout = self._find_layout()

    @property
    def num_triangles(self) -> int:
        return int(len(self.rig.triangles))

    @property
    def num_points(self) -> int:
        return 3 * self.num_triangles

    # -- per frame --------------------------------------------------------------------------

    def corners(self, weights) -> np.ndarray:
        """``(3 * triangles, 3)`` float64 corner positions (metres, ROS axes) for 52 weights."""
        w = _check_weights(weights)
        # einsum, not @: a 52-row product is too small for BLAS, whose thread pool costs 10x
        # more than the maths on a busy machine (bench/rviz_bandwidth.py measured both).
        vertices = np.einsum("k,kv->v", w, self._deltas).reshape(-1, 3)
        vertices += self._neutral
        return vertices.take(self._corners, axis=0).astype(np.float64)

    def marker(self, weights, *, stamp: Time | None = None) -> Marker:
        """A new Marker for ``weights``; ``stamp`` None = time zero (RViz: latest transform)."""
        corners = self.corners(weights)
        m = self._new_marker()
        if stamp is not None:
            m.header.stamp = stamp
        m.points = _points(corners)
        return m

    def serialize(self, weights, *, stamp: Time | None = None) -> bytes:
        """The same message as :meth:`marker`, serialized (CDR) for ``Publisher.publish``."""
        if self._layout is None:  # unknown wire layout: take the slow, always-correct path
            return serialize_message(self.marker(weights, stamp=stamp))
        head, tail = self._layout
        corners = self.corners(weights)
        if stamp is not None:
            head = head[:4] + struct.pack("<iI", stamp.sec, stamp.nanosec) + head[12:]
        return b"".join((head, corners.astype("<f8", copy=False).tobytes(), tail))

    # -- static parts -----------------------------------------------------------------------

    def _new_marker(self) -> Marker:
        """A Marker with every field but the points and the stamp filled in."""
        frame_id, ns, marker_id, rgba = self._header
        m = Marker()
        m.header.frame_id = frame_id
        m.ns, m.id = ns, marker_id
        m.type, m.action = Marker.TRIANGLE_LIST, Marker.ADD
        m.pose.orientation.w = 1.0
        m.scale.x = m.scale.y = m.scale.z = 1.0  # RViz scales the whole triangle list by this
        # With point colours RViz multiplies their alpha by marker.color.a, so that stays 1.
        m.color.r, m.color.g, m.color.b, m.color.a = rgba
        m.colors = self._color_list  # shared by all messages, never modified
        return m

    def _make_colors(self, mode: str) -> list:
        if mode == "none":
            return []
        albedo = self.rig.colors if self.rig.colors is not None else np.full((self.rig.num_vertices, 3), 0.7)
        rgb = albedo[self.rig.triangles].astype(np.float64)  # (F, 3 corners, 3)
        rgb = (rgb.reshape(-1, 3) if mode == "vertex" else rgb.mean(axis=1)).astype(np.float32)
        return [ColorRGBA(r=r, g=g, b=b, a=1.0) for r, g, b in rgb.tolist()]

    def _find_layout(self) -> tuple[bytes, bytes] | None:
        """The serialized message split around the points' coordinates (head, tail).

        CDR puts the point doubles in one run, 8-byte aligned, after the sequence length; the
        run is found by the sentinel written into the template's first point. None when the
        bytes do not look as expected (big-endian, unknown encoding): serialize then falls back.
        """
        corners = np.zeros((self.num_points, 3))
        corners[0, 0] = _SENTINEL
        m = self._new_marker()
        m.points = _points(corners)
        raw = serialize_message(m)
        key = struct.pack("<d", _SENTINEL)
        start = raw.find(key)
        if raw[:2] != b"\x00\x01" or start < 0 or raw.find(key, start + 1) >= 0:
            return None
        length = struct.pack("<I", self.num_points)
        if raw[start - 4:start] != length and raw[start - 8:start - 4] != length:
            return None
        end = start + 24 * self.num_points
        return raw[:start], raw[end:]


def _check_weights(weights) -> np.ndarray:
    w = np.asarray(weights, dtype=np.float32)
    if w.shape != (NUM_BLENDSHAPES,):
        raise ValueError(f"weights must be the {NUM_BLENDSHAPES} ARKit weights of one frame, "
                         f"shape ({NUM_BLENDSHAPES},), got shape {w.shape}")
    if not np.isfinite(w).all():
        raise ValueError("weights must be finite (got NaN or infinity)")
    return w


def _points(corners: np.ndarray) -> list:
    """``geometry_msgs/Point`` objects for ``(N, 3)`` coordinates, built in bulk.

    The generated constructor runs Python code per point (keyword handling, three property
    setters); here the objects are allocated and their slots filled by C-level ``map`` calls,
    2 to 4 times faster (bench/rviz_bandwidth.py). The values are Python floats, as the
    checked setters would require.
    """
    xs, ys, zs = np.asarray(corners, dtype=np.float64).T.tolist()
    if not _BULK_POINTS:
        return [Point(x=x, y=y, z=z) for x, y, z in zip(xs, ys, zs)]
    n = len(xs)
    checked = Point()._check_fields  # as the constructor would set it (ROS_PYTHON_CHECK_FIELDS)
    points = list(map(Point.__new__, repeat(Point, n)))
    for slot, values in (("_check_fields", repeat(checked, n)), ("_x", xs), ("_y", ys), ("_z", zs)):
        deque(map(getattr(Point, slot).__set__, points, values), maxlen=0)
    return points
