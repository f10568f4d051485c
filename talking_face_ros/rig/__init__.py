"""Face rigs: linear blendshape meshes driven by the 52 ARKit weights."""
from .linear_rig import LinearRig

__all__ = ["LinearRig"]
