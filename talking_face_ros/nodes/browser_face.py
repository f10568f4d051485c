"""ROS 2 node ``browser_face``: the face on a screen, drawn by any WebGL browser.

It subscribes to BlendshapeFrame messages and forwards each frame's weights, matched by NAME to
the ARKit order, to :class:`talking_face_ros.web.FaceServer`; a browser (a kiosk screen on the
robot, a tablet) opening ``http://ADDRESS:PORT/`` shows the rig posed live. Parameters
(config/browser_face.yaml):

=====================  ==================================================================
address                interface to bind (127.0.0.1; 0.0.0.0 lets other machines in)
port                   TCP port (8765; 0 picks a free one, logged at start)
allowed_origins        extra page origins that may open the WebSocket, e.g.
                       ``["http://robot.local:8765"]`` when bound to 0.0.0.0
rig                    ``robot`` (built in), ``ict`` (the shared ICT-FaceKit file) or the
                       path of a rig ``.npz`` (LinearRig.save)
topic                  BlendshapeFrame topic (``blendshapes``)
client_queue_size      frames queued per browser before the oldest are dropped (4)
=====================  ==================================================================

The subscription is best effort (sensor-data QoS): it matches reliable and best-effort
publishers alike, and a display wants the newest frame, never a retransmitted old one.
Names the rig does not know are ignored; a frame whose names and weights differ in length or
that holds NaN/infinite weights is dropped, counted (``bad_frames``) and logged once.
"""
from __future__ import annotations

import sys

import numpy as np
import rclpy
from rcl_interfaces.msg import ParameterDescriptor
from rclpy.exceptions import ParameterUninitializedException
from rclpy.executors import ExternalShutdownException
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.qos import qos_profile_sensor_data

from talking_face_ros.arkit import INDEX, NUM_BLENDSHAPES
from talking_face_ros.msg import BlendshapeFrame
from talking_face_ros.nodes.spinning import spin_until_shutdown
from talking_face_ros.web import FaceServer, load_rig

NODE_NAME = "browser_face"


class NameMap:
    """Turns a message's (names, weights) into ARKit-order weights.

    The column lookup is cached per name list, because a publisher sends the same list in
    every frame.
    """

    def __init__(self):
        self._names: tuple[str, ...] | None = None
        self._positions = self._columns = np.zeros(0, np.int64)
        self.unknown: tuple[str, ...] = ()  # names of the current list that are not ARKit's

    def weights(self, names, values) -> np.ndarray:
        """``(52,)`` float32 in [0, 1]; ValueError for mismatched lengths or non-finite values."""
        names = tuple(names)
        w = np.asarray(values, dtype=np.float32)
        if w.ndim != 1 or len(w) != len(names):
            raise ValueError(f"{len(names)} names but {w.size} weights")
        if not np.isfinite(w).all():
            raise ValueError("NaN or infinite weights")
        if names != self._names:
            known = [(i, INDEX[n]) for i, n in enumerate(names) if n in INDEX]
            self._positions = np.array([i for i, _ in known], np.int64)
            self._columns = np.array([c for _, c in known], np.int64)
            self.unknown = tuple(n for n in names if n not in INDEX)
            self._names = names
        out = np.zeros(NUM_BLENDSHAPES, np.float32)
        out[self._columns] = w[self._positions]  # a repeated name: its last weight wins
        return np.clip(out, 0.0, 1.0)


class BrowserFaceNode(Node):
    def __init__(
        self,
        *,
        context=None,  # rclpy context; None = the default one
        parameter_overrides=None,  # list of rclpy Parameter, for tests and embedding
    ):
        super().__init__(NODE_NAME, context=context, parameter_overrides=parameter_overrides)
        address = self._declare("address", "127.0.0.1", "interface to bind; 0.0.0.0 = every one")
        port = self._declare("port", 8765, "TCP port of the page; 0 = pick a free one")
        rig_spec = self._declare("rig", "robot", "'robot', 'ict' or the path of a rig .npz")
        topic = self._declare("topic", "blendshapes", "BlendshapeFrame topic to show")
        queue_size = self._declare("client_queue_size", 4, "frames queued per browser")
        self.declare_parameter("allowed_origins", Parameter.Type.STRING_ARRAY, ParameterDescriptor(
            description="extra page origins allowed to open the WebSocket", read_only=True))
        try:
            origins = list(self.get_parameter("allowed_origins").value)
        except ParameterUninitializedException:  # rclpy cannot give a string list an empty default
            origins = []

        self.rig = load_rig(rig_spec)
        self.server = FaceServer(self.rig, address=address, port=port, allowed_origins=origins,
                                 queue_size=queue_size).start()
        self.bad_frames = 0
        self.forwarded = 0
        self._names = NameMap()
        self._reported_unknown: tuple[str, ...] = ()
        self.subscription = self.create_subscription(
            BlendshapeFrame, topic, self._on_frame, qos_profile_sensor_data)
        self.get_logger().info(
            f"browser face at {self.server.url} (rig {self.rig.name}, {self.rig.num_vertices} vertices, "
            f"topic {self.subscription.topic_name})")

    def _declare(self, name: str, default, description: str):
        return self.declare_parameter(
            name, default, ParameterDescriptor(description=description, read_only=True)).value

    def _on_frame(self, msg: BlendshapeFrame) -> None:
        try:
            weights = self._names.weights(msg.names, msg.weights)
        except ValueError as e:
            self.bad_frames += 1
            if self.bad_frames == 1:
                self.get_logger().warning(
                    f"dropped a bad BlendshapeFrame (frame_index {msg.frame_index}: {e}); "
                    "further bad frames are only counted")
            return
        if self._names.unknown and self._names.unknown != self._reported_unknown:
            self._reported_unknown = self._names.unknown
            self.get_logger().info(f"ignoring blendshape names the rig lacks: {list(self._names.unknown)}")
        stamp = msg.header.stamp.sec + 1e-9 * msg.header.stamp.nanosec
        self.server.publish(weights, stamp=stamp, index=msg.frame_index)
        self.forwarded += 1

    def destroy_node(self) -> None:
        self.server.stop()
        if self.bad_frames:
            self.get_logger().warning(f"{self.bad_frames} bad BlendshapeFrame messages were dropped")
        super().destroy_node()


def main(args=None) -> int:
    rclpy.init(args=args)
    node = None
    try:
        node = BrowserFaceNode()
        spin_until_shutdown(node)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except (ValueError, OSError) as e:  # a bad parameter or a port in use: one clear line
        rclpy.logging.get_logger(NODE_NAME).fatal(str(e))
        return 1
    finally:
        if node is not None:
            node.destroy_node()
        rclpy.try_shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
