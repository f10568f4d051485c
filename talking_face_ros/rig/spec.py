"""One way to name a rig, shared by the CLI, the nodes and the browser face."""
from __future__ import annotations

from pathlib import Path

from ..paths import ict_rig_path
from .ict import load_packed_ict
from .linear_rig import LinearRig
from .robot_face import robot_face


def load_rig(spec: str) -> LinearRig:
    """The rig a parameter or option names: ``"robot"`` (built in), ``"ict"`` (the packed
    ICT-FaceKit file, see :func:`talking_face_ros.paths.ict_rig_path`) or the path of a ``.npz``
    written by :meth:`LinearRig.save`. Anything else is a ValueError, checked before any file
    is opened."""
    spec = str(spec).strip()
    if spec == "robot":
        return robot_face()
    if spec == "ict":
        path = ict_rig_path()
        if path is None:
            raise ValueError("rig 'ict': ICT-FaceKit file not found (set TALKING_FACE_ICT)")
        return load_packed_ict(path)
    path = Path(spec).expanduser()
    if path.suffix != ".npz":
        raise ValueError(f"rig {spec!r}: expected 'robot', 'ict' or the path of a .npz rig file")
    if not path.exists():
        raise ValueError(f"rig {spec!r}: no such file")
    if not path.is_file():
        raise ValueError(f"rig {spec!r}: not a regular file")
    return LinearRig.load(path)
