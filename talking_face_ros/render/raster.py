"""A z-buffered triangle rasteriser in numpy, with colours interpolated across each triangle.

Written by hand because nothing light renders meshes on a CPU without a display here: OpenGL
paths (moderngl, pyrender, VTK, Open3D) need EGL/OSMesa drivers and a GPU-less build of them,
and matplotlib's 3-D plots sort whole polygons (no depth buffer, no smooth shading). Shading is
done per vertex by the caller (Gouraud), so this module only covers screen space.

Scan conversion is vectorised in two steps: every (triangle, pixel row) pair gets the span of
pixel centres the triangle covers on that row, then the spans are expanded to fragments. Depth
and colour are affine in screen x and y over a triangle, so each fragment needs only a few
multiply-adds. Depth testing uses ``np.minimum.at`` into the depth buffer; each chunk of
fragments then claims the pixels where it equals the buffer, so a later, nearer chunk takes a
pixel over and a farther one never does. Colours are computed last, once per pixel, from the
plane of the triangle that owns it.
"""
from __future__ import annotations

import numpy as np

_CHUNK = 1 << 21  # fragments per numpy pass (bounds memory)


def rasterize(
    xy: np.ndarray,  # (V, 2) pixel coordinates, x right, y down; pixel centres at i + 0.5
    depth: np.ndarray,  # (V,) distance from the camera: smaller is nearer
    colors: np.ndarray,  # (V, C) values interpolated across triangles (e.g. shaded RGB)
    triangles: np.ndarray,  # (F, 3) vertex indices
    width: int,
    height: int,
    *,
    background=None,  # (H, W, C) or (C,) values where nothing is drawn; default zeros
) -> tuple[np.ndarray, np.ndarray]:
    """``(image (H, W, C) float32, coverage (H, W) bool)``."""
    colors = np.asarray(colors, dtype=np.float32)
    channels = colors.shape[1]
    image = np.zeros((height * width, channels), dtype=np.float32)
    if background is not None:
        bg = np.broadcast_to(np.asarray(background, np.float32), (height, width, channels))
        image[:] = bg.reshape(-1, channels)
    zbuf = np.full(height * width, np.inf, dtype=np.float32)
    covered = np.zeros(height * width, dtype=bool)

    tri = np.asarray(triangles, dtype=np.int64)
    p = np.asarray(xy, dtype=np.float64)[tri]  # (F, 3, 2)
    px, py = p[..., 0], p[..., 1]
    area = (px[:, 1] - px[:, 0]) * (py[:, 2] - py[:, 0]) - (px[:, 2] - px[:, 0]) * (py[:, 1] - py[:, 0])
    row0 = np.maximum(np.ceil(py.min(axis=1) - 0.5), 0).astype(np.int64)
    row1 = np.minimum(np.floor(py.max(axis=1) - 0.5), height - 1).astype(np.int64)
    live = (np.abs(area) > 1e-12) & (row1 >= row0) & (px.max(axis=1) >= 0) & (px.min(axis=1) <= width)
    ids = np.nonzero(live)[0]
    if len(ids) == 0:
        return image.reshape(height, width, channels), covered.reshape(height, width)

    # Planes: value(x, y) = a * x + b * y + c over each triangle, for depth and each channel.
    values = np.concatenate([np.asarray(depth, np.float64)[tri[ids]][..., None],
                             colors[tri[ids]].astype(np.float64)], axis=2)  # (n, 3, 1 + C)
    planes = _planes(px[ids], py[ids], area[ids], values)  # (n, 3, 1 + C)
    zplane, cplanes = np.ascontiguousarray(planes[:, :, 0]), np.ascontiguousarray(planes[:, :, 1:])

    # (triangle, row) pairs and the span of pixel centres covered on each row.
    heights = row1[ids] - row0[ids] + 1
    t_of_row = np.repeat(np.arange(len(ids)), heights)
    row = row0[ids][t_of_row] + np.arange(len(t_of_row)) - np.repeat(np.cumsum(heights) - heights, heights)
    x0, x1 = _spans(px[ids][t_of_row], py[ids][t_of_row], row + 0.5)
    col0 = np.maximum(np.ceil(x0 - 0.5), 0).astype(np.int64)
    col1 = np.minimum(np.floor(x1 - 0.5), width - 1).astype(np.int64)
    counts = np.maximum(col1 - col0 + 1, 0)
    keep = counts > 0
    t_of_row, row, col0, counts = t_of_row[keep], row[keep], col0[keep], counts[keep]

    ends = np.cumsum(counts)
    owner = np.full(height * width, -1, dtype=np.int64)  # nearest triangle at each pixel
    start = 0
    while start < len(counts):
        base = ends[start - 1] if start else 0
        stop = max(int(np.searchsorted(ends, base + _CHUNK, side="right")), start + 1)
        n = counts[start:stop]
        local = np.arange(int(n.sum())) - np.repeat(ends[start:stop] - n - base, n)
        x = np.repeat(col0[start:stop], n) + local
        y = np.repeat(row[start:stop], n)
        t = np.repeat(t_of_row[start:stop], n)
        z = zplane[t, 0] * (x + 0.5).astype(np.float32) + zplane[t, 1] * (y + 0.5).astype(np.float32) \
            + zplane[t, 2]
        pix = y * width + x
        np.minimum.at(zbuf, pix, z)
        win = z <= zbuf[pix]
        owner[pix[win]] = t[win]
        start = stop
    # Colours once per covered pixel, from the plane of the triangle that won it.
    pix = np.nonzero(owner >= 0)[0]
    pl = cplanes[owner[pix]]
    xc = (pix % width + 0.5).astype(np.float32)[:, None]
    yc = (pix // width + 0.5).astype(np.float32)[:, None]
    image[pix] = pl[:, 0] * xc + pl[:, 1] * yc + pl[:, 2]
    covered[pix] = True
    return image.reshape(height, width, channels), covered.reshape(height, width)


def _planes(px, py, area, values) -> np.ndarray:
    """Coefficients (a, b, c) with value = a x + b y + c through each triangle's three corners."""
    v0, v1, v2 = values[:, 0], values[:, 1], values[:, 2]
    dx1, dy1 = (px[:, 1] - px[:, 0])[:, None], (py[:, 1] - py[:, 0])[:, None]
    dx2, dy2 = (px[:, 2] - px[:, 0])[:, None], (py[:, 2] - py[:, 0])[:, None]
    inv = 1.0 / area[:, None]
    a = ((v1 - v0) * dy2 - (v2 - v0) * dy1) * inv
    b = ((v2 - v0) * dx1 - (v1 - v0) * dx2) * inv
    c = v0 - a * px[:, :1] - b * py[:, :1]
    return np.stack([a, b, c], axis=1).astype(np.float32)


def _spans(px, py, yc) -> tuple[np.ndarray, np.ndarray]:
    """Where the line y = yc enters and leaves each triangle (x0 > x1 when it misses)."""
    lo = np.full(len(yc), np.inf)
    hi = np.full(len(yc), -np.inf)
    for a, b in ((0, 1), (1, 2), (2, 0)):
        ya, yb = py[:, a], py[:, b]
        crosses = (np.minimum(ya, yb) <= yc) & (yc <= np.maximum(ya, yb)) & (ya != yb)
        with np.errstate(divide="ignore", invalid="ignore"):
            x = px[:, a] + (yc - ya) * (px[:, b] - px[:, a]) / (yb - ya)
        lo = np.where(crosses, np.minimum(lo, x), lo)
        hi = np.where(crosses, np.maximum(hi, x), hi)
    return lo, hi
