"""The built-in robot face: a friendly character head made from code, no third-party assets.

Parts: a rounded head (one closed surface with a hole for the mouth), big eyes in dark bezels
with sclera, iris, pupil and a catch-light, upper and lower lid shutters with lash lines, brow
bars, a nose, blush cheeks, two tube lips, teeth, a tongue, a dark mouth cavity behind the lips,
ear pods and an antenna. Units are centimetres and the axes are ICT-FaceKit's (+x = the
subject's left, +y up, +z forward), so "Left" shapes move the +x side.

How shapes are made: every ARKit shape is a :class:`Motion`, a small set of control moves
(jaw rotation or shift, offsets of the lip centre lines and lip thickness, smooth bumps of the
skin, eyelid edge heights, gaze shifts, brow moves, the tongue). One function turns a motion
into vertex offsets for all parts at once, so parts stay attached: the skin around the mouth
follows the lips, the cavity and lower teeth follow the jaw. Right-side shapes are the mirror
images of the left-side ones.

The lip gap contract: vertices ``regions["lip_midline"]`` (inner upper lip, inner lower lip on
the midline) are as far apart as :func:`talking_face_ros.lip_geometry.lip_gap` says, for every
weight vector, because each shape's midline opening is calibrated to ``GAP_PER_WEIGHT`` (ICT's).
So ``mouthClose ~ 0.84 * jawOpen`` closes the lips here as on ICT-FaceKit, and lip-sync checks
read the same on both rigs.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from functools import lru_cache

import numpy as np

from ..arkit import ARKIT_NAMES, INDEX
from ..lip_geometry import GAP_PER_WEIGHT, NEUTRAL_GAP
from .linear_rig import LinearRig

# -- layout (cm) ----------------------------------------------------------------------------------
HEAD_A, HEAD_B, HEAD_C, HEAD_BACK, HEAD_P = 9.0, 11.2, 9.0, 8.5, 2.6  # superellipsoid radii, power
HEAD_Y = 0.6  # height of the head's centre
EYE_X, EYE_Y, EYE_R = 3.5, 3.0, 2.1  # eye centres at (+-EYE_X, EYE_Y), sclera radius
MOUTH_Y, MOUTH_HALF_WIDTH = -4.2, 3.0
NOSE_Y = -0.7
CHEEK_X, CHEEK_Y = 5.7, -1.5
JAW_PIVOT = np.array([0.0, -1.0, -6.0])  # hinge line along x, far back: the jaw mostly drops

# -- colours ----------------------------------------------------------------------------------------
SKIN = (0.62, 0.80, 0.86)
LID = (0.50, 0.69, 0.77)
LASH = (0.12, 0.14, 0.20)
BEZEL = (0.20, 0.23, 0.29)
SCLERA = (0.97, 0.97, 0.97)
IRIS_IN, IRIS_OUT = (0.30, 0.72, 1.00), (0.08, 0.36, 0.78)
PUPIL = (0.02, 0.03, 0.07)
BROW = (0.16, 0.18, 0.24)
NOSE = (0.96, 0.64, 0.52)
NOSTRIL = (0.35, 0.16, 0.14)
CHEEK = (0.98, 0.62, 0.68)
LIP = (0.90, 0.40, 0.42)
CAVITY = (0.16, 0.04, 0.07)
TEETH = (0.97, 0.97, 0.93)
TONGUE = (0.88, 0.36, 0.44)
METAL = (0.55, 0.62, 0.70)
LAMP = (1.00, 0.50, 0.42)

# -- tessellation -------------------------------------------------------------------------------------
N_LIP = 21  # samples along each lip, s = -cos(pi k / 20): dense at the corners, s = 0 included
N_LIP_RING = 8  # around each lip tube; a multiple of 4 so the innermost point is a vertex
SKIN_RINGS, BACK_RINGS = 14, 6
LID_COLS = 13


def _smooth(t):
    t = np.clip(t, 0.0, 1.0)
    return t * t * (3 - 2 * t)


def head_z(x, y):
    """Front surface of the head: z of the superellipsoid at (x, y), 0 on and outside the outline."""
    u = np.abs(np.asarray(x) / HEAD_A) ** HEAD_P + np.abs((np.asarray(y) - HEAD_Y) / HEAD_B) ** HEAD_P
    return HEAD_C * np.clip(1.0 - u, 0.0, None) ** (1.0 / HEAD_P)


# -- motions -------------------------------------------------------------------------------------

S_LIP = -np.cos(np.pi * np.arange(N_LIP) / (N_LIP - 1))  # -1 (right corner) .. +1 (left corner)
S_LIP[(N_LIP - 1) // 2] = 0.0
S_LID = np.linspace(-1.0, 1.0, LID_COLS)  # -x .. +x across each eye
UPPER_LID_REST, LOWER_LID_REST = (0.78, -0.38), (-0.88, 0.25)  # lid edges, see _lid_line


def _lid_line(middle: float, ends: float) -> np.ndarray:
    """A lid edge across the eye: height ``middle`` at the centre, ``middle + ends`` at the
    sides (units of EYE_R above the eye centre); upper lids arch, lower lids dip."""
    return middle + ends * S_LID**2


@dataclass
class Motion:
    """Control moves of one shape at weight 1 (see module doc)."""

    jaw_angle: float = 0.0  # radians about JAW_PIVOT; positive opens
    jaw_shift: np.ndarray = field(default_factory=lambda: np.zeros(3))
    upper: np.ndarray = field(default_factory=lambda: np.zeros((N_LIP, 3)))  # lip centre moves
    lower: np.ndarray = field(default_factory=lambda: np.zeros((N_LIP, 3)))
    upper_r: np.ndarray = field(default_factory=lambda: np.zeros(N_LIP))  # lip radius change
    lower_r: np.ndarray = field(default_factory=lambda: np.zeros(N_LIP))
    bumps: list = field(default_factory=list)  # (x, y, sigma, (dx, dy, dz)) skin bumps
    eyes: dict = field(default_factory=dict)  # side -> EyeMove
    brows: dict = field(default_factory=dict)  # side -> (inner (3,), outer (3,)) brow end moves
    tongue_out: float = 0.0

    def mirrored(self) -> "Motion":
        """The same move on the other side of the face (x -> -x)."""
        flip = np.array([-1.0, 1.0, 1.0])
        other = {"left": "right", "right": "left"}
        return Motion(
            jaw_angle=self.jaw_angle, jaw_shift=self.jaw_shift * flip,
            upper=self.upper[::-1] * flip, lower=self.lower[::-1] * flip,
            upper_r=self.upper_r[::-1].copy(), lower_r=self.lower_r[::-1].copy(),
            bumps=[(-x, y, s, tuple(np.asarray(v) * flip)) for x, y, s, v in self.bumps],
            eyes={other[k]: e.mirrored() for k, e in self.eyes.items()},
            brows={other[k]: (np.asarray(a) * flip, np.asarray(b) * flip)
                   for k, (a, b) in self.brows.items()},
            tongue_out=self.tongue_out,
        )


@dataclass
class EyeMove:
    gaze: tuple = (0.0, 0.0)  # iris shift in units of EYE_R (+x, +y)
    upper: np.ndarray = field(default_factory=lambda: np.zeros(LID_COLS))  # lid edge dy / EYE_R
    lower: np.ndarray = field(default_factory=lambda: np.zeros(LID_COLS))

    def mirrored(self) -> "EyeMove":
        return EyeMove((-self.gaze[0], self.gaze[1]), self.upper[::-1].copy(), self.lower[::-1].copy())


def _vec(profile, v) -> np.ndarray:
    return np.outer(profile, np.asarray(v, dtype=np.float64))


_ROUND = np.sqrt(np.clip(1.0 - S_LIP**2, 0, None))  # the whole lip, ends tapering
_CORNER_L = ((1.0 + S_LIP) / 2.0) ** 4  # the left (+x) corner
_SIDE_L = np.exp(-(((S_LIP - 0.45) / 0.5) ** 2))  # the left half of a lip
_BUMP = (1.0 - S_LIP**2) ** 2  # used to calibrate the midline gap; zero at the corners


def _left_motions() -> dict[str, Motion]:
    """Every symmetric shape and the Left version of every sided one."""
    m: dict[str, Motion] = {}
    lid0 = np.zeros(LID_COLS)
    s2 = S_LID**2

    # Brows: inner end (toward the nose) and outer end moves; in between is interpolated.
    m["browDownLeft"] = Motion(brows={"left": ((-0.25, -0.95, 0.05), (0.0, -0.3, 0.0))})
    m["browInnerUp"] = Motion(brows={"left": ((-0.05, 1.0, 0.0), (0.0, 0.05, 0.0)),
                                     "right": ((0.05, 1.0, 0.0), (0.0, 0.05, 0.0))})
    m["browOuterUpLeft"] = Motion(brows={"left": ((0.0, 0.05, 0.0), (0.05, 1.0, 0.0))})

    # Eyes: lids are given as edge heights (units of EYE_R) across the eye.
    m["eyeBlinkLeft"] = Motion(eyes={"left": EyeMove(
        upper=_lid_line(-0.30, -0.05) - _lid_line(*UPPER_LID_REST),
        lower=_lid_line(-0.25, 0.05) - _lid_line(*LOWER_LID_REST))})
    # Gaze shifts keep the iris (radius 0.46) on the sclera even when two combine.
    m["eyeLookDownLeft"] = Motion(eyes={"left": EyeMove(gaze=(0.0, -0.28), upper=lid0 - 0.28,
                                                        lower=lid0 - 0.04)})
    m["eyeLookUpLeft"] = Motion(eyes={"left": EyeMove(gaze=(0.0, 0.28), upper=lid0 + 0.12)})
    m["eyeLookInLeft"] = Motion(eyes={"left": EyeMove(gaze=(-0.36, 0.0))})
    m["eyeLookOutLeft"] = Motion(eyes={"left": EyeMove(gaze=(0.36, 0.0))})
    m["eyeSquintLeft"] = Motion(eyes={"left": EyeMove(upper=lid0 - 0.12, lower=0.36 - 0.1 * s2)},
                                bumps=[(EYE_X + 0.6, EYE_Y - 2.6, 1.3, (0.0, 0.2, 0.05))])
    m["eyeWideLeft"] = Motion(eyes={"left": EyeMove(
        upper=_lid_line(1.0, -0.2) - _lid_line(*UPPER_LID_REST),
        lower=_lid_line(-1.0, 0.1) - _lid_line(*LOWER_LID_REST))})

    # Cheeks and nose: skin bumps (the blush discs and the nose ride on the skin).
    m["cheekPuff"] = Motion(
        bumps=[(5.0, MOUTH_Y + 0.9, 2.6, (0.8, 0.0, 1.1)), (-5.0, MOUTH_Y + 0.9, 2.6, (-0.8, 0.0, 1.1)),
               (7.2, MOUTH_Y + 0.6, 2.6, (1.0, 0.0, 0.3)), (-7.2, MOUTH_Y + 0.6, 2.6, (-1.0, 0.0, 0.3))],
        upper=_vec(_ROUND, (0, 0, 0.3)) + _vec(S_LIP, (0.15, 0, 0)),
        lower=_vec(_ROUND, (0, 0, 0.3)) + _vec(S_LIP, (0.15, 0, 0)))
    m["cheekSquintLeft"] = Motion(
        bumps=[(CHEEK_X - 0.4, CHEEK_Y + 0.6, 1.8, (0.0, 0.6, 0.15))],
        eyes={"left": EyeMove(lower=0.2 - 0.05 * s2)})
    m["noseSneerLeft"] = Motion(
        bumps=[(0.9, NOSE_Y - 0.2, 1.0, (0.12, 0.45, 0.05)), (2.0, NOSE_Y - 1.3, 1.3, (0.05, 0.4, 0.1))],
        upper=_vec(_SIDE_L, (0.05, 0.35, 0.0)), eyes={"left": EyeMove(lower=lid0 + 0.12)},
        brows={"left": ((0.0, -0.2, 0.0), (0.0, -0.05, 0.0))})

    # Jaw: rigid moves of everything attached to the jaw (angle solved in _Face).
    m["jawForward"] = Motion(jaw_shift=np.array([0.0, 0.0, 0.7]))
    m["jawLeft"] = Motion(jaw_shift=np.array([0.9, 0.0, 0.0]))
    m["tongueOut"] = Motion(tongue_out=1.0)

    # Mouth: lip centre lines (x, y, z per sample) and thickness.
    rounding = _vec(S_LIP, (-0.66, 0, 0)) + _vec(1 - 0.5 * S_LIP**2, (0, 0, 0.9))  # corners in, lips out
    m["mouthFunnel"] = Motion(
        upper=rounding + _vec(_ROUND, (0, 0.6, 0)), lower=rounding + _vec(_ROUND, (0, -0.75, 0)),
        upper_r=0.06 * _ROUND, lower_r=0.06 * _ROUND)
    m["mouthPucker"] = Motion(
        upper=_vec(S_LIP, (-1.25, 0, 0)) + _vec(1 - 0.4 * S_LIP**2, (0, 0, 1.1)),
        lower=_vec(S_LIP, (-1.25, 0, 0)) + _vec(1 - 0.4 * S_LIP**2, (0, 0, 1.1)),
        upper_r=0.14 * _ROUND, lower_r=0.16 * _ROUND)
    m["mouthLeft"] = Motion(
        upper=_vec(1 - 0.12 * S_LIP, (1.1, 0, 0)) + _vec(np.clip(S_LIP, 0, None), (0, 0, -0.3)),
        lower=_vec(1 - 0.12 * S_LIP, (1.1, 0, 0)) + _vec(np.clip(S_LIP, 0, None), (0, 0, -0.3)),
        bumps=[(0.0, MOUTH_Y, 2.6, (0.6, 0.0, 0.0))])
    m["mouthSmileLeft"] = Motion(
        upper=_vec(_CORNER_L, (0.55, 1.0, -0.4)), lower=_vec(_CORNER_L, (0.55, 1.0, -0.4)),
        bumps=[(4.4, MOUTH_Y + 1.4, 1.8, (0.25, 0.55, 0.15))])
    m["mouthFrownLeft"] = Motion(
        upper=_vec(_CORNER_L, (0.2, -0.9, -0.1)), lower=_vec(_CORNER_L, (0.2, -0.9, -0.1)),
        bumps=[(3.9, MOUTH_Y - 1.3, 1.5, (0.05, -0.35, 0.0))])
    m["mouthStretchLeft"] = Motion(
        upper=_vec(_CORNER_L, (0.8, -0.25, -0.3)),
        lower=_vec(_CORNER_L, (0.8, -0.25, -0.3)) + _vec(_SIDE_L, (0.1, -0.3, 0.0)),
        bumps=[(4.5, MOUTH_Y - 0.8, 1.6, (0.35, -0.25, 0.0))])
    m["mouthDimpleLeft"] = Motion(
        upper=_vec(_CORNER_L, (0.45, 0.15, -0.6)), lower=_vec(_CORNER_L, (0.45, 0.15, -0.6)),
        bumps=[(MOUTH_HALF_WIDTH + 0.9, MOUTH_Y + 0.1, 0.8, (0.1, 0.0, -0.45))])
    m["mouthPressLeft"] = Motion(
        upper=_vec(_SIDE_L, (0, -0.1, 0)), lower=_vec(_SIDE_L, (0, 0.15, 0.05)),
        upper_r=-0.14 * _SIDE_L, lower_r=-0.16 * _SIDE_L,
        bumps=[(1.5, MOUTH_Y - 2.0, 1.4, (0.0, 0.3, 0.05))])
    m["mouthRollUpper"] = Motion(upper=_vec(_ROUND, (0, -0.08, -0.3)), upper_r=-0.16 * _ROUND)
    m["mouthRollLower"] = Motion(lower=_vec(_ROUND, (0, 0.12, -0.3)), lower_r=-0.2 * _ROUND)
    m["mouthShrugUpper"] = Motion(upper=_vec(_ROUND, (0, 0.45, 0.15)),
                                  bumps=[(0.0, MOUTH_Y + 1.4, 1.3, (0.0, 0.25, 0.05))])
    m["mouthShrugLower"] = Motion(lower=_vec(_ROUND, (0, 0.6, 0.5)), lower_r=0.05 * _ROUND,
                                  bumps=[(0.0, MOUTH_Y - 2.4, 1.7, (0.0, 0.5, 0.4))])
    m["mouthUpperUpLeft"] = Motion(upper=_vec(_SIDE_L, (0.05, 0.7, 0.05)),
                                   bumps=[(1.5, MOUTH_Y + 1.4, 1.2, (0.0, 0.35, 0.0))])
    m["mouthLowerDownLeft"] = Motion(lower=_vec(_SIDE_L, (0.05, -0.75, 0.05)),
                                     bumps=[(1.5, MOUTH_Y - 1.6, 1.3, (0.0, -0.3, 0.0))])
    return m


def _all_motions(face: "_Face") -> dict[str, Motion]:
    """All 52 motions, lip-gap calibrated; Right ones mirror the calibrated Left ones."""
    left = _left_motions()
    left["jawOpen"] = Motion(jaw_angle=face.jaw_angle)
    # mouthClose: upper lip down and lower lip up along the jaw's own path, sized so that
    # mouthClose = 0.84 * jawOpen shuts the lips all along the mouth (ICT's ratio).
    ratio = float(-GAP_PER_WEIGHT[INDEX["mouthClose"]] / GAP_PER_WEIGHT[INDEX["jawOpen"]])
    jaw_u = face._rotate(face.cu, face.jaw_angle) - face.cu
    jaw_l = face._rotate(face.cl, face.jaw_angle) - face.cl
    share = np.sqrt(1 - S_LIP**2)[:, None]  # where the jaw opens the lips (0 at the corners)
    left["mouthClose"] = Motion(upper=ratio * 0.35 * share * jaw_u, lower=-ratio * 0.65 * share * jaw_l)
    left = {name: _calibrated(face, name, mo) for name, mo in left.items()}
    motions = {}
    for name in ARKIT_NAMES:
        if name in left:
            motions[name] = left[name]
        elif name.endswith("Right") and name[:-5] + "Left" in left:
            motions[name] = left[name[:-5] + "Left"].mirrored()
        else:
            raise AssertionError(f"robot face has no motion for {name}")
    return motions


# -- mesh building ---------------------------------------------------------------------------------


@dataclass
class _Part:
    name: str
    verts: np.ndarray  # (n, 3)
    tris: np.ndarray  # (m, 3) local indices
    colors: np.ndarray  # (n, 3)
    regions: tuple = ()  # extra region names this part belongs to
    params: dict = field(default_factory=dict)  # per-vertex parameters the motions need
    jaw: np.ndarray | float = 0.0  # how much each vertex follows the jaw
    skin: bool = False  # rides on the skin bumps


def _grid_tris(rows: int, cols: int, *, wrap: bool = False) -> np.ndarray:
    """Two triangles per cell of a rows x cols vertex grid (row-major); ``wrap`` joins the columns."""
    c = cols if wrap else cols - 1
    r, k = np.meshgrid(np.arange(rows - 1), np.arange(c), indexing="ij")
    a = r * cols + k
    b = r * cols + (k + 1) % cols
    return np.concatenate([np.stack([a, b, b + cols], -1), np.stack([a, b + cols, a + cols], -1)]
                          ).reshape(-1, 3)


def _disc(rings: np.ndarray, segments: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Unit-disc polar grid: (u, v) offsets of a centre vertex then rings x segments, triangles."""
    ang = 2 * np.pi * np.arange(segments) / segments
    uv = np.concatenate([[[0.0, 0.0]], (rings[:, None, None] * np.stack([np.cos(ang), np.sin(ang)], -1)
                                         ).reshape(-1, 2)])
    i = np.arange(segments)
    fan = np.stack([np.zeros(segments, int), 1 + i, 1 + (i + 1) % segments], -1)
    tris = np.concatenate([fan, 1 + _grid_tris(len(rings), segments, wrap=True)])
    return uv, tris, np.concatenate([[0.0], np.repeat(rings, segments)])


def _colors(n: int, color) -> np.ndarray:
    return np.tile(np.asarray(color, np.float64), (n, 1))


def _lip_centres(upper: bool) -> tuple[np.ndarray, np.ndarray]:
    """Neutral centre line (N_LIP, 3) and radius (N_LIP,) of a lip tube."""
    r0 = 0.42 if upper else 0.5
    radius = r0 * (0.28 + 0.72 * (1 - S_LIP**2) ** 0.6)
    lift = (1 - S_LIP**2) ** 0.35 * (NEUTRAL_GAP / 2 + radius)
    y = MOUTH_Y + 0.15 * S_LIP**2 + (lift if upper else -lift)  # corners turned up a little
    x = MOUTH_HALF_WIDTH * S_LIP
    z = head_z(x, y) + 0.2 + 0.3 * radius
    return np.stack([x, y, z], -1), radius


def _lip_ring() -> np.ndarray:
    """Unit cross-section offsets (N_LIP_RING, 3): alpha = 0 at the front, 90 deg at the top."""
    alpha = 2 * np.pi * np.arange(N_LIP_RING) / N_LIP_RING
    return np.stack([np.zeros_like(alpha), np.sin(alpha), 0.85 * np.cos(alpha)], -1)


class _Face:
    """Builds all parts at rest and turns a Motion into vertex offsets."""

    def __init__(self):
        self.parts: list[_Part] = []
        self.cu, self.ru = _lip_centres(True)
        self.cl, self.rl = _lip_centres(False)
        self._lips()
        self._skin()
        self._cavity()
        self._eyes()
        self._brows()
        self._nose_and_cheeks()
        self._extras()
        self.jaw_angle = self._solve_jaw_angle()

    # parts ----------------------------------------------------------------------------------------

    def add(self, part: _Part) -> _Part:
        part.verts = np.asarray(part.verts, np.float64)
        part.colors = np.asarray(part.colors, np.float64)
        self.parts.append(part)
        return part

    def _lips(self):
        ring = _lip_ring()
        for upper, centres, radius in ((True, self.cu, self.ru), (False, self.cl, self.rl)):
            verts = centres[:, None, :] + radius[:, None, None] * ring[None]
            k = np.repeat(np.arange(N_LIP), N_LIP_RING)
            p = 0.5 * (1 - np.sqrt(1 - S_LIP**2))  # jaw share: corners 0.5, middle 0 / 1
            jaw = (p if upper else 1 - p)[k]
            self.add(_Part("upper_lip" if upper else "lower_lip", verts.reshape(-1, 3),
                           _grid_tris(N_LIP, N_LIP_RING, wrap=True), _colors(len(k), LIP),
                           ("lips", "mouth", "face"), {"k": k, "ring": np.tile(ring, (N_LIP, 1))}, jaw=jaw))

    def _skin(self):
        """One surface from the mouth opening over the face and around the back of the head."""
        # Mouth-opening loop: upper lip from the left corner to the right, lower lip back.
        ku = np.arange(N_LIP - 1, -1, -1)
        kl = np.arange(1, N_LIP - 1)
        loop = np.concatenate([self.cu[ku] - [0, 0, 0.5] * self.ru[ku, None],
                               self.cl[kl] - [0, 0, 0.5] * self.rl[kl, None]])
        lip_of = np.concatenate([np.zeros(len(ku), int), np.ones(len(kl), int)])
        k_of = np.concatenate([ku, kl])
        n = len(loop)
        # Outline of the head (its widest section, z = 0), evenly spaced: the upper lip's points
        # pair with the upper half of the outline, the lower lip's with the lower half.
        phi = np.linspace(0, 2 * np.pi, 4001)
        c, sn = np.cos(phi), np.sin(phi)
        dense = np.stack([HEAD_A * np.sign(c) * np.abs(c) ** (2 / HEAD_P),
                          HEAD_Y + HEAD_B * np.sign(sn) * np.abs(sn) ** (2 / HEAD_P)], -1)
        arc = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(dense, axis=0), axis=1))])
        half = arc[2000]
        want = np.concatenate([np.linspace(0, half, len(ku)),
                               half + (arc[-1] - half) * np.arange(1, len(kl) + 1) / (len(kl) + 1)])
        outline = np.stack([np.interp(want, arc, dense[:, 0]), np.interp(want, arc, dense[:, 1])], -1)
        g = 0.5 - 0.5 * np.cos(np.pi * np.arange(SKIN_RINGS + 1) / SKIN_RINGS)  # dense at both ends
        xy = loop[None, :, :2] + g[:, None, None] * (outline - loop[:, :2])[None]
        z = head_z(xy[..., 0], xy[..., 1])
        z[0] = loop[:, 2]
        front = np.concatenate([xy, z[..., None]], -1)
        # Back: the outline shrunk toward the back pole.
        rho = np.cos(0.5 * np.pi * np.arange(1, BACK_RINGS) / BACK_RINGS)
        centre = np.array([0.0, HEAD_Y])
        bxy = centre + rho[:, None, None] * (outline - centre)[None]
        bz = -HEAD_BACK * (1 - rho**HEAD_P) ** (1 / HEAD_P)
        back = np.concatenate([bxy, np.broadcast_to(bz[:, None, None], bxy.shape[:2] + (1,))], -1)
        verts = np.concatenate([front.reshape(-1, 3), back.reshape(-1, 3), [[0.0, HEAD_Y, -HEAD_BACK]]])
        rows = SKIN_RINGS + BACK_RINGS
        pole = len(verts) - 1
        last = (rows - 1) * n + np.arange(n)
        cap = np.stack([last, np.full(n, pole), (rows - 1) * n + (np.arange(n) + 1) % n], -1)
        tris = np.concatenate([_grid_tris(rows, n, wrap=True), cap])
        j = np.tile(np.arange(n), rows)
        j = np.concatenate([j, [0]])
        # Skin near the opening follows the lips; farther out it follows its own fields.
        dist = np.linalg.norm(verts[:, :2] - loop[j, :2], axis=1)
        follow = np.exp(-((dist / 1.6) ** 2))
        follow[-1] = 0.0
        follow[len(front.reshape(-1, 3)):] = 0.0
        x, y, zz = verts.T
        mask = (_smooth(0.5 + (MOUTH_Y - y) / 3.0) * _smooth((zz + 2.0) / 5.0)
                * np.exp(-((np.clip(np.abs(x) - 4.5, 0, None) / 2.5) ** 2)))
        ring0 = k_of * N_LIP_RING  # a vertex of each lip sample's ring
        lip_jaw = np.where(lip_of == 0, self.part("upper_lip").jaw[ring0], self.part("lower_lip").jaw[ring0])
        jaw = follow * lip_jaw[j] + (1 - follow) * mask
        upper_face = (y > NOSE_Y + 1.3) & (zz > 0)
        part = self.add(_Part("skin", verts, tris, _colors(len(verts), SKIN), (),
                              {"lip": lip_of[j], "k": k_of[j], "follow": follow}, jaw=jaw, skin=True))
        part.params["face"] = zz > 0.5
        part.params["upper_face"] = upper_face

    def _cavity(self):
        """Dark mouth cavity behind the opening, teeth, tongue: seen only through the opening."""
        uv, tris, r = _disc(np.array([0.25, 0.5, 0.75, 1.0]), 24)
        x = uv[:, 0] * (MOUTH_HALF_WIDTH + 2.2)
        y = MOUTH_Y - 1.3 + uv[:, 1] * 3.6
        z = head_z(x, y) - 1.2 - 0.8 * (1 - r**2)
        self.add(_Part("mouth_interior", np.stack([x, y, z], -1), tris, _colors(len(x), CAVITY),
                       ("mouth", "face"), jaw=_smooth((MOUTH_Y + 0.3 - y) / 1.5)))
        for upper in (True, False):
            verts, faces = [], []
            for i in range(6):
                x0, x1 = -1.9 + i * 0.633 + 0.03, -1.9 + (i + 1) * 0.633 - 0.03
                # Hidden between the lips at rest (a dark line shows there, not teeth).
                ys = (MOUTH_Y + 1.0, MOUTH_Y + 0.55, MOUTH_Y + 0.12) if upper else \
                     (MOUTH_Y - 0.25, MOUTH_Y - 0.6, MOUTH_Y - 1.0)
                gx, gy = np.meshgrid([x0, x1], ys, indexing="xy")
                gz = head_z(gx, gy) - (0.6 if upper else 0.8) - 0.25 * (gx / 2.0) ** 2
                faces.append(_grid_tris(3, 2) + 6 * i)
                verts.append(np.stack([gx, gy, gz], -1).reshape(-1, 3))
            verts = np.concatenate(verts)
            self.add(_Part("teeth_upper" if upper else "teeth_lower", verts, np.concatenate(faces),
                           _colors(len(verts), TEETH), ("mouth", "face"),
                           # Teeth peek out of an open mouth: the uppers drop a little (the upper
                           # lip stretches up in a real face), the lowers lag behind the lower lip.
                           jaw=0.12 if upper else 0.85))
        lat, lon = np.linspace(0, np.pi, 9), 2 * np.pi * np.arange(16) / 16
        la, lo = np.meshgrid(lat, lon, indexing="ij")
        unit = np.stack([np.sin(la) * np.cos(lo), np.cos(la), np.sin(la) * np.sin(lo)], -1).reshape(-1, 3)
        centre = np.array([0.0, MOUTH_Y - 1.1, head_z(0.0, MOUTH_Y) - 2.3])
        verts = centre + unit * [1.75, 0.55, 1.5]
        self.add(_Part("tongue", verts, _grid_tris(9, 16, wrap=True), _colors(len(verts), TONGUE),
                       ("mouth", "face"), {"front": (unit[:, 2] + 1) / 2}, jaw=0.6))

    def _eyes(self):
        for side, sign in (("left", 1.0), ("right", -1.0)):
            cx, cy = sign * EYE_X, EYE_Y
            # z0: the eye's base plane, just in front of the head under it.
            ang = np.linspace(0, 2 * np.pi, 48)
            ring_z = head_z(cx + 1.3 * EYE_R * np.cos(ang), cy + 1.3 * EYE_R * np.sin(ang))
            z0 = float(max(ring_z.max(), head_z(cx, cy))) + 0.08
            eye = dict(cx=cx, cy=cy, z0=z0)
            tags = ("eyes", "upper_face", "face")
            # Bezel: a dark ring sloping from the eye down to the skin.
            ang = 2 * np.pi * np.arange(28) / 28
            inner = np.stack([cx + EYE_R * np.cos(ang), cy + EYE_R * np.sin(ang), np.full(28, z0 + 0.05)], -1)
            ox, oy = cx + 1.3 * EYE_R * np.cos(ang), cy + 1.3 * EYE_R * np.sin(ang)
            outer = np.stack([ox, oy, head_z(ox, oy) + 0.03], -1)
            self.add(_Part(f"bezel_{side}", np.concatenate([inner, outer]), _grid_tris(2, 28, wrap=True),
                           _colors(56, BEZEL), tags))
            # Sclera dome and the layers on it; all gaze layers follow the dome.
            uv, tris, r = _disc(np.sin(0.5 * np.pi * np.arange(1, 5) / 4), 28)
            self.add(_Part(f"sclera_{side}", self._on_dome(eye, uv * EYE_R, 0.0), tris,
                           _colors(len(uv), SCLERA), tags))
            for name, radius, lift, col in (("iris", 0.46, 0.03, None), ("pupil", 0.24, 0.05, PUPIL),
                                            ("highlight", 0.09, 0.07, (1.0, 1.0, 1.0))):
                rings = {"iris": [0.5, 1.0], "pupil": [1.0], "highlight": [1.0]}[name]
                uv, tris, r = _disc(np.array(rings), 24 if name != "highlight" else 10)
                off = np.array([-0.13, 0.15]) * EYE_R if name == "highlight" else np.zeros(2)
                local = uv * radius * EYE_R + off
                if col is None:
                    colors = np.array(IRIS_IN) + r[:, None] * (np.array(IRIS_OUT) - IRIS_IN)
                else:
                    colors = _colors(len(uv), col)
                self.add(_Part(f"{name}_{side}", self._on_dome(eye, local, lift), tris, colors, tags,
                               {"local": local, "lift": lift, "eye": eye}))
            # Lids: shutters inside a circle around the eye, above / below an edge curve.
            for upper in (True, False):
                for lash in (False, True):
                    t = np.array([0.86, 0.93, 1.0]) if lash else np.linspace(0.0, 0.9, 7)
                    edge = self._lid_edge(upper, np.zeros(LID_COLS))
                    verts = self._lid(eye, upper, edge, t)
                    if lash:
                        verts[:, 2] += 0.01
                        col = LASH if upper else tuple(0.5 * np.array(LASH) + 0.5 * np.array(LID))
                    else:
                        col = LID
                    self.add(_Part(f"{'upper' if upper else 'lower'}_lid_{side}" + ("_lash" if lash else ""),
                                   verts, _grid_tris(len(t), LID_COLS), _colors(len(verts), col), tags,
                                   {"eye": eye, "upper": upper, "t": t}))

    @staticmethod
    def _on_dome(eye, local, lift):
        """Points at ``local`` (x, y) offsets from the eye centre, on the sclera dome + ``lift``."""
        rr = np.clip((local**2).sum(-1) / EYE_R**2, 0, 1)
        z = eye["z0"] + 0.45 * np.sqrt(1 - rr) + lift
        return np.stack([eye["cx"] + local[:, 0], eye["cy"] + local[:, 1], z], -1)

    @staticmethod
    def _lid_edge(upper: bool, delta: np.ndarray) -> np.ndarray:
        """Lid edge heights (units of EYE_R above the eye centre) at rest + ``delta``."""
        return _lid_line(*(UPPER_LID_REST if upper else LOWER_LID_REST)) + delta

    @staticmethod
    def _lid(eye, upper: bool, edge: np.ndarray, t: np.ndarray) -> np.ndarray:
        """Lid vertices (rows t from the circle's far point to the edge, columns across)."""
        rl = 1.05 * EYE_R
        far = eye["cy"] + (rl if upper else -rl)
        y = far + t[:, None] * (eye["cy"] + edge[None, :] * EYE_R - far)
        half = np.sqrt(np.clip(rl**2 - (y - eye["cy"]) ** 2, 0, None))
        x = eye["cx"] + S_LID[None, :] * half
        bulge = np.sqrt(np.clip(1 - ((x - eye["cx"]) / (1.3 * EYE_R)) ** 2, 0, None))
        z = eye["z0"] + (0.14 + 0.5 * bulge if upper else 0.12 + 0.45 * bulge)
        return np.stack([x, y, z], -1).reshape(-1, 3)

    def _brows(self):
        u = np.linspace(0, 1, 12)
        ang = 2 * np.pi * np.arange(8) / 8
        for side, sign in (("left", 1.0), ("right", -1.0)):
            x = sign * (EYE_X - 0.85 * EYE_R + u * 1.85 * EYE_R)
            y = EYE_Y + 1.5 * EYE_R + 0.3 * np.sin(np.pi * u) - 0.15 * u
            z0 = max(p.verts[:, 2].max() for p in self.parts if p.name == f"upper_lid_{side}")
            z = np.maximum(head_z(x, y) + 0.35, z0 + 0.12)
            thick = 0.6 + 0.4 * np.sin(np.pi * np.clip(u * 0.9 + 0.1, 0, 1))
            ring = np.stack([np.zeros(8), 0.3 * np.sin(ang), 0.22 * np.cos(ang)], -1)
            verts = np.stack([x, y, z], -1)[:, None] + thick[:, None, None] * ring[None]
            self.add(_Part(f"brow_{side}", verts.reshape(-1, 3), _grid_tris(12, 8, wrap=True),
                           _colors(96, BROW), ("upper_face", "face"), {"u": np.repeat(u, 8)}))

    def _nose_and_cheeks(self):
        uv, tris, r = _disc(np.sin(0.5 * np.pi * np.arange(1, 6) / 5), 20)
        x, y = uv[:, 0] * 1.1, NOSE_Y + uv[:, 1] * 1.25
        z = head_z(0.0, NOSE_Y) - 0.3 + 1.0 * np.sqrt(np.clip(1 - r**2, 0, None))
        self.add(_Part("nose", np.stack([x, y, z], -1), tris, _colors(len(x), NOSE), ("face",), skin=True))
        for side, sign in (("left", 1.0), ("right", -1.0)):
            uv, tris, r = _disc(np.array([1.0]), 12)
            nx, ny = sign * 0.42 + uv[:, 0] * 0.2, NOSE_Y - 0.72 + uv[:, 1] * 0.13
            rr = (nx / 1.1) ** 2 + ((ny - NOSE_Y) / 1.25) ** 2
            nz = head_z(0.0, NOSE_Y) - 0.3 + np.sqrt(np.clip(1 - rr, 0, None)) + 0.03
            self.add(_Part(f"nostril_{side}", np.stack([nx, ny, nz], -1), tris, _colors(len(nx), NOSTRIL),
                           ("face",), skin=True))
            uv, tris, r = _disc(np.array([0.35, 0.7, 1.0]), 20)
            cx, cy = sign * CHEEK_X + uv[:, 0] * 1.35, CHEEK_Y + uv[:, 1] * 1.0
            colors = np.array(CHEEK) + (r[:, None] * 0.5) * (np.array(SKIN) - CHEEK)
            self.add(_Part(f"cheek_{side}", np.stack([cx, cy, head_z(cx, cy) + 0.05], -1), tris, colors,
                           ("face",), skin=True))

    def _extras(self):
        """Ear pods and an antenna: static, they make the head read as a robot from any side."""
        ang = 2 * np.pi * np.arange(20) / 20
        for side, sign in (("left", 1.0), ("right", -1.0)):
            circle = np.stack([np.zeros(20), 2.0 * np.cos(ang), 2.0 * np.sin(ang)], -1)
            ys, zs = HEAD_Y + 0.3 + circle[:, 1], -0.3 + circle[:, 2]
            x_in = sign * (HEAD_A * 0.93)
            x_out = sign * (HEAD_A + 0.8)
            ring_in = np.stack([np.full(20, x_in), ys, zs], -1)
            ring_out = np.stack([np.full(20, x_out), ys, zs], -1)
            cap_c = np.array([[x_out + sign * 0.05, HEAD_Y + 0.3, -0.3]])
            lamp = np.stack([np.full(20, x_out + sign * 0.06), HEAD_Y + 0.3 + 0.55 * np.cos(ang),
                             -0.3 + 0.55 * np.sin(ang)], -1)
            lamp_c = [[x_out + sign * 0.07, HEAD_Y + 0.3, -0.3]]
            verts = np.concatenate([ring_in, ring_out, cap_c, lamp, lamp_c])
            i = np.arange(20)
            tris = np.concatenate([_grid_tris(2, 20, wrap=True),
                                   np.stack([20 + i, 20 + (i + 1) % 20, np.full(20, 40)], -1),
                                   np.stack([41 + i, 41 + (i + 1) % 20, np.full(20, 61)], -1)])
            colors = np.concatenate([_colors(41, METAL), _colors(21, LAMP)])
            self.add(_Part(f"ear_{side}", verts, tris, colors, ()))
        top = HEAD_Y + HEAD_B
        ang = 2 * np.pi * np.arange(10) / 10
        ring = np.stack([0.22 * np.cos(ang), np.zeros(10), 0.22 * np.sin(ang)], -1)
        stem = np.concatenate([ring + [0, top - 0.5, 0], ring + [0, top + 2.2, 0]])
        lat, lon = np.linspace(0, np.pi, 7), 2 * np.pi * np.arange(12) / 12
        la, lo = np.meshgrid(lat, lon, indexing="ij")
        ball = np.stack([np.sin(la) * np.cos(lo), np.cos(la), np.sin(la) * np.sin(lo)], -1).reshape(-1, 3)
        verts = np.concatenate([stem, 0.75 * ball + [0, top + 2.8, 0]])
        tris = np.concatenate([_grid_tris(2, 10, wrap=True), 20 + _grid_tris(7, 12, wrap=True)])
        colors = np.concatenate([_colors(20, METAL), _colors(len(ball), LAMP)])
        self.add(_Part("antenna", verts, tris, colors, ()))

    # motions -> offsets ---------------------------------------------------------------------------

    def _solve_jaw_angle(self) -> float:
        """Jaw angle that drops the inner lower lip by ICT's jawOpen gap change."""
        lower = self.part("lower_lip")
        p = lower.verts[self.midline_index(upper=False)]
        target = float(GAP_PER_WEIGHT[INDEX["jawOpen"]])
        lo, hi = 0.0, 1.0
        for _ in range(60):
            mid = (lo + hi) / 2
            drop = p[1] - self._rotate(p[None], mid)[0, 1]
            lo, hi = (mid, hi) if drop < target else (lo, mid)
        return (lo + hi) / 2

    @staticmethod
    def _rotate(points, angle):
        c, s = np.cos(angle), np.sin(angle)
        q = points - JAW_PIVOT
        return np.stack([q[:, 0], c * q[:, 1] - s * q[:, 2], s * q[:, 1] + c * q[:, 2]], -1) + JAW_PIVOT

    def part(self, name: str) -> _Part:
        return next(p for p in self.parts if p.name == name)

    @staticmethod
    def midline_index(upper: bool) -> int:
        k = (N_LIP - 1) // 2
        return k * N_LIP_RING + (3 * N_LIP_RING // 4 if upper else N_LIP_RING // 4)

    def offsets(self, mo: Motion) -> list[np.ndarray]:
        """Per-part vertex offsets (same order as ``self.parts``) of one motion at weight 1."""
        lips = {"upper_lip": (mo.upper, mo.upper_r), "lower_lip": (mo.lower, mo.lower_r)}
        out = []
        for part in self.parts:
            v = part.verts
            d = np.zeros_like(v)
            if mo.jaw_angle or mo.jaw_shift.any():
                jaw = self._rotate(v, mo.jaw_angle) - v + mo.jaw_shift
                d += np.reshape(part.jaw, (-1, 1)) * jaw
            if part.name in lips:
                move, dr = lips[part.name]
                k = part.params["k"]
                d += move[k] + dr[k, None] * part.params["ring"]
            if part.skin:
                bump = self._bumps(mo.bumps, v)
                if part.name == "skin":
                    pr = part.params
                    at_loop = np.where(pr["lip"][:, None] == 0, mo.upper[pr["k"]], mo.lower[pr["k"]])
                    follow = pr["follow"][:, None]
                    d += follow * at_loop + (1 - follow) * bump
                else:
                    d += bump
            side = ("left" if part.name.endswith(("_left", "_left_lash"))
                    else "right" if part.name.endswith(("_right", "_right_lash")) else None)
            if part.name.startswith(("iris", "pupil", "highlight")) and side in mo.eyes:
                gx, gy = mo.eyes[side].gaze
                eye, local = part.params["eye"], part.params["local"]
                moved = self._on_dome(eye, local + np.array([gx, gy]) * EYE_R, part.params["lift"])
                d += moved - v
            if "_lid_" in part.name and side in mo.eyes:
                upper = part.params["upper"]
                e = mo.eyes[side].upper if upper else mo.eyes[side].lower
                edge = self._lid_edge(upper, e)
                moved = self._lid(part.params["eye"], upper, edge, part.params["t"])
                if part.name.endswith("_lash"):
                    moved[:, 2] += 0.01
                d += moved - v
            if part.name.startswith("brow_") and side in mo.brows:
                inner, outer = (np.asarray(a, np.float64) for a in mo.brows[side])
                u = part.params["u"][:, None]
                d += (1 - u) * inner + u * outer
            if part.name == "tongue" and mo.tongue_out:
                f = part.params["front"][:, None]
                d += mo.tongue_out * ((0.35 + 0.65 * f) * np.array([0.0, 0.0, 2.4]) + [0.0, 0.5, 0.0])
            out.append(d)
        return out

    @staticmethod
    def _bumps(bumps, v):
        """Smooth bumps centred on the skin; zero beyond 2 sigma, so a bump near the eyes never
        reaches the mouth (a Gaussian's tail would)."""
        d = np.zeros_like(v)
        for x, y, sigma, vec in bumps:
            c = np.array([x, y, float(head_z(x, y))])
            w = np.clip(1.0 - ((v - c) ** 2).sum(-1) / (2.0 * sigma) ** 2, 0.0, None) ** 3
            d += w[:, None] * np.asarray(vec, np.float64)
        return d


def _calibrated(face: _Face, name: str, mo: Motion) -> Motion:
    """``mo`` with a midline lip correction so its gap change equals ICT's ``GAP_PER_WEIGHT``.

    The correction bends the lip middle (zero at the corners); for a Left shape it leans to
    the left half, so the other side stays as designed.
    """
    up, lo = face.midline_index(True), face.midline_index(False)
    iu = [p.name for p in face.parts].index("upper_lip")
    il = [p.name for p in face.parts].index("lower_lip")
    offsets = face.offsets(mo)
    gap = offsets[iu][up, 1] - offsets[il][lo, 1]
    target = float(GAP_PER_WEIGHT[INDEX[name]])
    if abs(target) < 1e-3:  # ICT's own value is rounding noise: leave the lips alone
        target = 0.0
    error = target - gap
    if abs(error) < 1e-7:
        return mo
    k = (N_LIP - 1) // 2
    mu, ml = abs(mo.upper[k, 1]) + 1e-9, abs(mo.lower[k, 1]) + 1e-9
    share_up = mu / (mu + ml)
    profile = _BUMP * (1.0 + S_LIP) ** 2 if name.endswith("Left") else _BUMP
    upper, lower = mo.upper.copy(), mo.lower.copy()
    upper[:, 1] += share_up * error * profile
    lower[:, 1] -= (1 - share_up) * error * profile
    return replace(mo, upper=upper, lower=lower)


def _build() -> LinearRig:
    face = _Face()
    motions = _all_motions(face)

    offsets = [face.offsets(motions[n]) for n in ARKIT_NAMES]
    neutral = np.concatenate([p.verts for p in face.parts])
    deltas = np.stack([np.concatenate(o) for o in offsets])
    colors = np.concatenate([p.colors for p in face.parts])
    tris, regions, start = [], {}, 0
    for p in face.parts:
        tris.append(p.tris + start)
        ids = np.arange(start, start + len(p.verts))
        regions.setdefault(p.name.removesuffix("_lash"), [])
        regions[p.name.removesuffix("_lash")].append(ids)
        for tag in p.regions:
            regions.setdefault(tag, []).append(ids)
        if p.name == "skin":
            regions.setdefault("face", []).append(ids[p.params["face"]])
            regions.setdefault("upper_face", []).append(ids[p.params["upper_face"]])
        if p.name in ("upper_lip", "lower_lip"):  # inner edge of each lip, right corner to left
            upper = p.name == "upper_lip"
            ring = 3 * N_LIP_RING // 4 if upper else N_LIP_RING // 4
            inner = [start + ring + N_LIP_RING * np.arange(N_LIP)]
            regions["lip_inner_upper" if upper else "lip_inner_lower"] = inner
            if upper:
                upper_mid = start + face.midline_index(True)
            else:
                lower_mid = start + face.midline_index(False)
        start += len(p.verts)
    regions = {k: np.concatenate(v) if k.startswith("lip_inner") else np.sort(np.concatenate(v))
               for k, v in regions.items()}  # the inner-lip rows keep their corner-to-corner order
    regions["lip_midline"] = np.array([upper_mid, lower_mid], np.int32)
    return LinearRig(neutral=neutral, triangles=np.concatenate(tris), deltas=deltas, regions=regions,
                     name="robot_face", units="cm", colors=np.clip(colors, 0, 1))


@lru_cache(maxsize=1)
def _cached() -> LinearRig:
    return _build()


def robot_face() -> LinearRig:
    """The built-in robot face rig (built once per process; callers get their own copy)."""
    rig = _cached()
    return LinearRig(neutral=rig.neutral.copy(), triangles=rig.triangles.copy(), deltas=rig.deltas.copy(),
                     regions={k: v.copy() for k, v in rig.regions.items()}, name=rig.name,
                     units=rig.units, colors=rig.colors.copy())
