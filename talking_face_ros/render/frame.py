"""One rendered frame of a rig: camera fitted to the face, per-vertex lighting, anti-aliasing.

The camera is fitted once to the rig's rest pose, never to the current frame, so a video does
not zoom with the jaw and two renders of the same rig can be compared pixel by pixel. The view
looks at the face from +z, so the subject's left (+x) appears on the image's right.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..rig.linear_rig import LinearRig
from .raster import rasterize

DEFAULT_SIZE = (512, 512)
_KEY_LIGHT = np.array([-0.45, 0.55, 0.70])  # from the viewer's upper left, in front
_FILL_LIGHT = np.array([0.6, -0.1, 0.8])
_AMBIENT, _KEY, _FILL, _SPECULAR, _SHININESS = 0.38, 0.55, 0.18, 0.12, 20.0
_BACKGROUND_TOP, _BACKGROUND_BOTTOM = (0.24, 0.27, 0.33), (0.10, 0.11, 0.14)
_GREY = 0.75


@dataclass(frozen=True)
class Camera:
    """A pinhole camera on the +z side of ``center`` (after turning the model by yaw/pitch)."""

    width: int
    height: int
    center: tuple  # model point the camera looks at
    distance: float  # from the camera to ``center``
    focal: float  # pixels
    offset: tuple  # pixel position of the optical axis (x, y)
    yaw: float = 0.0  # degrees; positive turns the face toward the viewer's right (its left)
    pitch: float = 0.0  # degrees; positive tilts the face down, showing more of the top

    def rotation(self) -> np.ndarray:
        a, b = np.radians(self.yaw), np.radians(self.pitch)
        ry = np.array([[np.cos(a), 0, np.sin(a)], [0, 1, 0], [-np.sin(a), 0, np.cos(a)]])
        rx = np.array([[1, 0, 0], [0, np.cos(b), -np.sin(b)], [0, np.sin(b), np.cos(b)]])
        return rx @ ry

    def to_view(self, vertices: np.ndarray) -> np.ndarray:
        """Model points -> view space (camera at (0, 0, distance), looking toward -z)."""
        return (np.asarray(vertices, np.float64) - np.asarray(self.center)) @ self.rotation().T

    def project(self, vertices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(pixel xy (V, 2), depth (V,))`` for model-space vertices."""
        q = self.to_view(vertices)
        depth = self.distance - q[:, 2]
        xy = np.stack([self.offset[0] + self.focal * q[:, 0] / depth,
                       self.offset[1] - self.focal * q[:, 1] / depth], axis=1)
        return xy, depth

    def scaled(self, factor: int) -> "Camera":
        return Camera(self.width * factor, self.height * factor, self.center, self.distance,
                      self.focal * factor, (self.offset[0] * factor, self.offset[1] * factor),
                      self.yaw, self.pitch)


def fit_camera(
    rig: LinearRig,
    size=DEFAULT_SIZE,  # (width, height) in pixels
    *,
    yaw: float = 0.0,  # degrees, see Camera
    pitch: float = 0.0,
    margin: float = 0.05,  # share of the image left free on each side
    region: str | None = None,  # fit this region of the rig instead of the whole mesh
) -> Camera:
    """A camera that frames the rig with ``margin`` to spare: its rest pose and each shape at
    full weight (so an open jaw stays in the picture)."""
    width, height = _check_size(size)
    ids = np.arange(rig.num_vertices) if region is None else rig.regions[region]
    if len(ids) == 0:
        raise ValueError(f"region {region!r} of rig {rig.name!r} is empty")
    rest, moves = rig.neutral[ids], rig.deltas[:, ids]
    # Rest pose plus, per vertex, the farthest each shape takes each coordinate (conservative).
    points = np.concatenate([rest, rest + np.minimum(moves.min(axis=0), 0),
                             rest + np.maximum(moves.max(axis=0), 0)])
    lo, hi = points.min(axis=0), points.max(axis=0)
    center = tuple(float(c) for c in (lo + hi) / 2)
    distance = 4.0 * float((hi - lo).max())  # a mild perspective, like a portrait lens
    probe = Camera(width, height, center, distance, 1.0, (0.0, 0.0), yaw, pitch)
    xy, _ = probe.project(points)
    (umin, vmin), (umax, vmax) = xy.min(axis=0), xy.max(axis=0)
    focal = min(width * (1 - 2 * margin) / max(umax - umin, 1e-9),
                height * (1 - 2 * margin) / max(vmax - vmin, 1e-9))
    offset = (width / 2 - focal * (umin + umax) / 2, height / 2 - focal * (vmin + vmax) / 2)
    return Camera(width, height, center, distance, focal, offset, yaw, pitch)


def default_camera(rig: LinearRig, size=DEFAULT_SIZE) -> Camera:
    """The framing used when none is given: the rig's ``face`` region filling the image."""
    region = "face" if len(rig.regions.get("face", ())) else None
    return fit_camera(rig, size, region=region, margin=0.04)


def vertex_normals(vertices: np.ndarray, triangles: np.ndarray) -> np.ndarray:
    """Area-weighted unit normals (zero for vertices in no triangle)."""
    v = np.asarray(vertices, np.float64)
    t = np.asarray(triangles, np.int64)
    face = np.cross(v[t[:, 1]] - v[t[:, 0]], v[t[:, 2]] - v[t[:, 0]])
    normals = np.zeros_like(v)
    for corner in range(3):
        for axis in range(3):
            normals[:, axis] += np.bincount(t[:, corner], weights=face[:, axis], minlength=len(v))
    length = np.linalg.norm(normals, axis=1, keepdims=True)
    return normals / np.where(length > 0, length, 1.0)


def shade(view_vertices: np.ndarray, triangles: np.ndarray, albedo: np.ndarray) -> np.ndarray:
    """Per-vertex colour: ambient + key and fill Lambert terms + a soft Blinn highlight.

    Lighting is two-sided (normals are turned toward the viewer), because open parts such as
    lids and lips have no consistent winding and their back is never meant to be dark.
    """
    n = vertex_normals(view_vertices, triangles)
    n *= np.where(n[:, 2:3] < 0, -1.0, 1.0)
    key = _KEY_LIGHT / np.linalg.norm(_KEY_LIGHT)
    fill = _FILL_LIGHT / np.linalg.norm(_FILL_LIGHT)
    half = key + np.array([0.0, 0.0, 1.0])
    half /= np.linalg.norm(half)
    diffuse = _AMBIENT + _KEY * np.clip(n @ key, 0, None) + _FILL * np.clip(n @ fill, 0, None)
    spec = _SPECULAR * np.clip(n @ half, 0, None) ** _SHININESS
    return np.clip(albedo * diffuse[:, None] + spec[:, None], 0.0, 1.0)


def background_image(width: int, height: int, color=None) -> np.ndarray:
    """``(H, W, 3)`` float: a flat colour, or by default a dark vertical gradient."""
    if color is not None:
        return np.broadcast_to(np.asarray(color, np.float32)[:3], (height, width, 3))
    t = np.linspace(0.0, 1.0, height, dtype=np.float32)[:, None, None]
    top, bottom = np.array(_BACKGROUND_TOP, np.float32), np.array(_BACKGROUND_BOTTOM, np.float32)
    return np.broadcast_to(top + t * (bottom - top), (height, width, 3))


def render_mesh(
    vertices: np.ndarray,  # (V, 3) model space
    triangles: np.ndarray,  # (F, 3)
    albedo: np.ndarray | None,  # (V, 3) in [0, 1], None = grey
    camera: Camera,
    *,
    ssaa: int = 2,  # supersampling factor per axis (1 = no anti-aliasing)
    background=None,  # RGB in [0, 1]; default a dark gradient
) -> np.ndarray:
    """``(H, W, 3)`` uint8 image of any mesh seen by ``camera``."""
    if int(ssaa) < 1:
        raise ValueError(f"ssaa must be >= 1, got {ssaa}")
    ssaa = int(ssaa)
    cam = camera.scaled(ssaa) if ssaa > 1 else camera
    if albedo is None:
        albedo = np.full((len(vertices), 3), _GREY, np.float32)
    view = cam.to_view(vertices)
    xy, depth = cam.project(vertices)
    colors = shade(view, triangles, albedo)
    bg = background_image(cam.width, cam.height, background)
    image, _ = rasterize(xy, depth, colors, triangles, cam.width, cam.height, background=bg)
    if ssaa > 1:  # box filter: the mean of each ssaa x ssaa block (strided sums are fastest)
        image = sum(image[i::ssaa, j::ssaa] for i in range(ssaa) for j in range(ssaa)) / ssaa**2
    return np.clip(image * 255.0 + 0.5, 0, 255).astype(np.uint8)


def render_frame(
    rig: LinearRig,
    weights,  # (52,) ARKit weights
    *,
    size=DEFAULT_SIZE,  # (width, height); ignored when ``camera`` is given
    camera: Camera | None = None,  # default: default_camera(rig, size)
    ssaa: int = 2,  # supersampling factor per axis
    background=None,  # RGB in [0, 1]; default a dark gradient
) -> np.ndarray:
    """``(H, W, 3)`` uint8 front view of the rig posed by ``weights``."""
    w = np.asarray(weights, dtype=np.float32)
    if w.shape != (52,):
        raise ValueError(f"render_frame needs (52,) weights, got shape {w.shape}")
    camera = camera or default_camera(rig, size)
    return render_mesh(rig.mesh(w), rig.triangles, rig.colors, camera, ssaa=ssaa,
                       background=background)


def _check_size(size) -> tuple[int, int]:
    try:
        width, height = (int(s) for s in size)
    except (TypeError, ValueError):
        raise ValueError(f"size must be (width, height), got {size!r}") from None
    if width < 8 or height < 8:
        raise ValueError(f"size must be at least 8x8 pixels, got {width}x{height}")
    return width, height
