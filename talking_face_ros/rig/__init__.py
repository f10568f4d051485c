"""Face rigs: linear blendshape meshes driven by the 52 ARKit weights.

:class:`LinearRig` is the mesh type; :func:`robot_face` is the built-in rig made from code;
:func:`load_packed_ict` and :func:`from_ict_facekit` read ICT-FaceKit (third-party data that
never ships inside this package).
"""
from .ict import from_ict_facekit, load_packed_ict
from .linear_rig import LinearRig
from .robot_face import robot_face
from .spec import load_rig

__all__ = ["LinearRig", "from_ict_facekit", "load_packed_ict", "load_rig", "robot_face"]
