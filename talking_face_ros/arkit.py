"""The 52 ARKit blendshape names: the one channel layout every array in the project uses.

Every motion array is ``(frames, 52)`` float32 with columns in ``ARKIT_NAMES`` order (Apple's
alphabetical order, the order ICT-FaceKit's packed rig and most exporters use). Other orders
(Live Link Face CSV, for one) are mapped onto it on load, never carried through the code.
"""
from __future__ import annotations

import numpy as np

ARKIT_NAMES: tuple[str, ...] = (
    "browDownLeft", "browDownRight", "browInnerUp", "browOuterUpLeft", "browOuterUpRight",
    "cheekPuff", "cheekSquintLeft", "cheekSquintRight", "eyeBlinkLeft", "eyeBlinkRight",
    "eyeLookDownLeft", "eyeLookDownRight", "eyeLookInLeft", "eyeLookInRight", "eyeLookOutLeft",
    "eyeLookOutRight", "eyeLookUpLeft", "eyeLookUpRight", "eyeSquintLeft", "eyeSquintRight",
    "eyeWideLeft", "eyeWideRight", "jawForward", "jawLeft", "jawOpen", "jawRight", "mouthClose",
    "mouthDimpleLeft", "mouthDimpleRight", "mouthFrownLeft", "mouthFrownRight", "mouthFunnel",
    "mouthLeft", "mouthLowerDownLeft", "mouthLowerDownRight", "mouthPressLeft", "mouthPressRight",
    "mouthPucker", "mouthRight", "mouthRollLower", "mouthRollUpper", "mouthShrugLower",
    "mouthShrugUpper", "mouthSmileLeft", "mouthSmileRight", "mouthStretchLeft", "mouthStretchRight",
    "mouthUpperUpLeft", "mouthUpperUpRight", "noseSneerLeft", "noseSneerRight", "tongueOut",
)
NUM_BLENDSHAPES = len(ARKIT_NAMES)
INDEX: dict[str, int] = {name: i for i, name in enumerate(ARKIT_NAMES)}

# Channel groups used by the blendshape-space metrics (analogues of the lip / upper-face vertex
# masks) and by the teacher. "Lower face" is everything that moves the mouth, jaw and cheeks.
LOWER_FACE: tuple[str, ...] = tuple(
    n for n in ARKIT_NAMES if n.startswith(("jaw", "mouth", "cheek", "tongue"))
)
LIPS: tuple[str, ...] = tuple(n for n in ARKIT_NAMES if n.startswith(("jaw", "mouth")))
UPPER_FACE: tuple[str, ...] = tuple(n for n in ARKIT_NAMES if n.startswith(("brow", "eye", "nose")))
EYES_AND_BROWS: tuple[str, ...] = tuple(n for n in ARKIT_NAMES if n.startswith(("brow", "eye")))


def indices(names) -> np.ndarray:
    """Column indices of ``names`` in the canonical order (KeyError names the unknown one)."""
    return np.array([INDEX[n] for n in names], dtype=np.int64)


def mirror_name(name: str) -> str:
    """The same shape on the other side of the face (``eyeBlinkLeft`` -> ``eyeBlinkRight``)."""
    if name.endswith("Left"):
        return name[:-4] + "Right"
    if name.endswith("Right"):
        return name[:-5] + "Left"
    return name


def zeros(frames: int) -> np.ndarray:
    return np.zeros((frames, NUM_BLENDSHAPES), dtype=np.float32)
