"""The browser face: shows a rig in any WebGL browser, posed live by blendshape frames.

A robot with a screen (or a tablet beside it) then needs no ROS install, no GPU toolkit and no
display server of its own: :class:`FaceServer` serves one page, the rig and a WebSocket of
frames; the ROS side (:mod:`talking_face_ros.nodes.browser_face`) only calls ``publish``.
"""
from ..rig import load_rig
from .server import FaceServer, decode_rig, encode_rig, frame_message

__all__ = ["FaceServer", "decode_rig", "encode_rig", "frame_message", "load_rig"]
