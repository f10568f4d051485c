"""talking_face_node with publish_mesh: the deforming face reaches RViz's topic as a Marker."""
from __future__ import annotations

import os
import threading
import time

import numpy as np
import pytest

rclpy = pytest.importorskip("rclpy", reason="rclpy not installed (scripts/build_ros.sh)")
pytest.importorskip("talking_face_ros.msg", reason="messages not built: scripts/build_ros.sh")

from rclpy.executors import SingleThreadedExecutor  # noqa: E402
from rclpy.parameter import Parameter  # noqa: E402
from rclpy.qos import QoSProfile, ReliabilityPolicy  # noqa: E402
from visualization_msgs.msg import Marker  # noqa: E402

NAMESPACE = f"/test_mesh_{os.getpid()}"


def test_face_mesh_published_with_frames(tmp_path):
    from talking_face_ros.bundle import make_random_bundle
    from talking_face_ros.nodes.talking_face_node import TalkingFaceNode
    from talking_face_ros.rig import robot_face
    from talking_face_ros.rviz_mesh import FaceMeshMarker

    folder = make_random_bundle(tmp_path / "bundle")
    context = rclpy.Context()
    rclpy.init(context=context)
    try:
        node = TalkingFaceNode(context=context, namespace=NAMESPACE, parameter_overrides=[
            Parameter("model", value=str(folder)), Parameter("device", value="cpu"),
            Parameter("publish_mesh", value=True), Parameter("mesh_decimate", value=0.5),
            Parameter("mesh_colors", value="none")])
        tester = rclpy.create_node("mesh_tester", namespace=NAMESPACE, context=context)
        markers = []
        tester.create_subscription(Marker, "face_mesh", markers.append,
                                   QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE))
        executor = SingleThreadedExecutor(context=context)
        executor.add_node(node)
        executor.add_node(tester)
        stop = threading.Event()

        def spin():  # spin_once in a loop: stops cleanly, unlike spin() racing shutdown()
            while not stop.is_set():
                executor.spin_once(timeout_sec=0.05)

        spinner = threading.Thread(target=spin, daemon=True)
        spinner.start()
        deadline = time.monotonic() + 20
        while len(markers) < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(markers) >= 3, "no face_mesh markers within 20 s"
        expected = FaceMeshMarker(robot_face(), cell_size=0.5, colors="none")
        m = markers[-1]
        assert m.type == Marker.TRIANGLE_LIST and m.header.frame_id == "face"
        assert len(m.points) == expected.num_points == 3 * expected.num_triangles
        assert not m.colors  # single-colour mode
        pts = np.array([[p.x, p.y, p.z] for p in m.points])
        assert np.isfinite(pts).all() and np.ptp(pts, axis=0).max() > 0.05  # a face-sized mesh, in metres
        stamps = [(x.header.stamp.sec, x.header.stamp.nanosec) for x in markers]
        assert stamps == sorted(stamps) and len(set(stamps)) == len(stamps)
    finally:
        stop.set()
        spinner.join(timeout=5.0)
        executor.shutdown()
        node.close()
        node.destroy_node()
        tester.destroy_node()
        rclpy.try_shutdown(context=context)


def test_bad_mesh_rig_is_a_parameter_error(tmp_path):
    from talking_face_ros.node_params import NodeParams, ParameterError
    from talking_face_ros.nodes.talking_face_node import TalkingFaceNode

    with pytest.raises(ParameterError, match="face_mesh"):
        TalkingFaceNode._face_mesh(NodeParams(publish_mesh=True, mesh_rig=str(tmp_path / "x.txt")))
    with pytest.raises(ParameterError, match="expected true or false"):
        NodeParams(publish_mesh="yes")
