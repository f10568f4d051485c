"""The face mesh Marker for RViz: geometry, colours, deformation, wire size, a real topic."""
from __future__ import annotations

import math
import os
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

from talking_face_ros.arkit import INDEX
from talking_face_ros.lip_geometry import lip_gap
from talking_face_ros.rig import robot_face

try:
    from builtin_interfaces.msg import Time
    from geometry_msgs.msg import Point
    from rclpy.serialization import deserialize_message, serialize_message
    from visualization_msgs.msg import Marker

    from talking_face_ros.rviz_mesh import FaceMeshMarker
except ImportError:  # the ROS wheels are optional (scripts/build_ros.sh); the config test still runs
    FaceMeshMarker = None

needs_ros = pytest.mark.skipif(FaceMeshMarker is None, reason="rclpy / visualization_msgs not installed")

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def rig():
    return robot_face()


@pytest.fixture(scope="module")
def face(rig):
    return FaceMeshMarker(rig)


def test_rviz_config_looks_at_the_face_from_the_front():
    config = yaml.safe_load((REPO / "config" / "face.rviz").read_text())
    manager = config["Visualization Manager"]
    assert manager["Global Options"]["Fixed Frame"] == "face"
    (marker,) = [d for d in manager["Displays"] if d["Class"] == "rviz_default_plugins/Marker"]
    assert marker["Enabled"] and marker["Topic"]["Value"] == "/face_mesh"
    view = manager["Views"]["Current"]
    assert view["Class"] == "rviz_default_plugins/Orbit" and view["Target Frame"] == "<Fixed Frame>"
    focal = np.array([view["Focal Point"][k] for k in "XYZ"], dtype=float)
    d, yaw, pitch = view["Distance"], view["Yaw"], view["Pitch"]
    # RViz's orbit camera sits at focal + d (cos yaw cos pitch, sin yaw cos pitch, sin pitch).
    eye = focal + d * np.array([math.cos(yaw) * math.cos(pitch), math.sin(yaw) * math.cos(pitch),
                                math.sin(pitch)])
    # The face (rviz_mesh: centred, REP 103, +x out of the face, at most 0.3 m tall) must be in front of
    # the camera and fit in its vertical field of view.
    assert eye[0] > 0.3 and abs(eye[1]) < 0.05
    assert 2 * (eye[0] - 0.15) * math.tan(view["Field of View"] / 2) > 0.3


def _jaw(value: float) -> np.ndarray:
    w = np.zeros(52, np.float32)
    w[INDEX["jawOpen"]] = value
    return w


def _xyz(marker: Marker) -> np.ndarray:
    return np.array([(p.x, p.y, p.z) for p in marker.points])


@needs_ros
def test_marker_fields_and_geometry(face, rig):
    m = face.marker(_jaw(0.3), stamp=Time(sec=5, nanosec=7))
    assert (m.type, m.action) == (Marker.TRIANGLE_LIST, Marker.ADD)
    assert (m.header.frame_id, m.ns) == ("face", "face_mesh")
    assert (m.header.stamp.sec, m.header.stamp.nanosec) == (5, 7)
    assert (m.scale.x, m.scale.y, m.scale.z, m.pose.orientation.w) == (1.0, 1.0, 1.0, 1.0)
    sub = face.rig
    assert sub.num_vertices == len(rig.regions["face"]) < rig.num_vertices  # the face region only
    assert len(m.points) == 3 * len(sub.triangles) == face.num_points
    # Point 3k + c is corner c of triangle k: rig (x left, y up, z fwd) cm -> ROS (x fwd, y left, z up) m.
    mesh = sub.mesh(_jaw(0.3)).astype(np.float64)
    expect = mesh[sub.triangles.ravel()][:, [2, 0, 1]] * 0.01
    rest = sub.neutral[:, [2, 0, 1]].astype(np.float64) * 0.01
    expect -= (rest.min(axis=0) + rest.max(axis=0)) / 2  # centred on the rest pose's box
    np.testing.assert_allclose(_xyz(m), expect, atol=1e-6)


@needs_ros
def test_vertex_colours_match_points(face):
    m = face.marker(_jaw(0.0))
    assert len(m.colors) == len(m.points)
    got = np.array([(c.r, c.g, c.b, c.a) for c in m.colors])
    corners = face.rig.colors[face.rig.triangles.ravel()]
    np.testing.assert_allclose(got[:, :3], corners, atol=1e-7)
    np.testing.assert_array_equal(got[:, 3], 1.0)
    assert (m.color.r, m.color.g, m.color.b, m.color.a) == (1.0, 1.0, 1.0, 1.0)  # RViz multiplies alpha


@needs_ros
def test_face_colours_and_mesh_only_mode(rig):
    per_face = FaceMeshMarker(rig, colors="face").marker(_jaw(0.0))
    assert len(per_face.colors) == len(per_face.points) // 3
    tri = rig.subset(rig.regions["face"]).triangles
    albedo = rig.subset(rig.regions["face"]).colors
    np.testing.assert_allclose([per_face.colors[5].r, per_face.colors[5].g, per_face.colors[5].b],
                               albedo[tri[5]].mean(axis=0), atol=1e-6)
    plain = FaceMeshMarker(rig, colors="none", color=(0.2, 0.4, 0.6, 1.0)).marker(_jaw(0.0))
    assert len(plain.colors) == 0 and len(plain.points) == len(per_face.points)
    assert (plain.color.r, plain.color.g, plain.color.b) == pytest.approx((0.2, 0.4, 0.6))


@needs_ros
def test_jaw_open_moves_lower_lip_down(face):
    upper, lower = face.rig.regions["lip_midline"]
    tris = face.rig.triangles.ravel()
    lower_points = np.flatnonzero(tris == lower)
    upper_points = np.flatnonzero(tris == upper)
    assert len(lower_points) and len(upper_points)
    closed, opened = _xyz(face.marker(_jaw(0.0))), _xyz(face.marker(_jaw(1.0)))
    drop = closed[lower_points, 2] - opened[lower_points, 2]
    assert np.all(drop > 0.005)  # every copy of the lower-lip vertex goes down more than 5 mm
    # The lips part by exactly ICT's jawOpen gap (lip_geometry, in cm).
    gap = opened[upper_points[0], 2] - opened[lower_points[0], 2]
    rest = closed[upper_points[0], 2] - closed[lower_points[0], 2]
    assert gap - rest == pytest.approx((lip_gap(_jaw(1.0)) - lip_gap(_jaw(0.0))) / 100.0, abs=1e-6)


@needs_ros
def test_serialized_bytes_equal_the_marker(rig):
    for colors in ("vertex", "face", "none"):
        face = FaceMeshMarker(rig, colors=colors, cell_size=0.8, frame_id="head", marker_id=3)
        w = np.random.default_rng(1).uniform(0.0, 1.0, 52)
        stamp = Time(sec=1_700_000_000, nanosec=123_456_789)
        raw = face.serialize(w, stamp=stamp)
        assert isinstance(raw, bytes)
        back = deserialize_message(raw, Marker)
        assert back == face.marker(w, stamp=stamp)
        assert len(raw) == len(serialize_message(back))
        assert back.header.frame_id == "head" and back.id == 3


@needs_ros
def test_points_pass_checked_fields(face):
    checked = Marker(check_fields=True)
    checked.points = face.marker(_jaw(0.5)).points  # isinstance checks of the checked setter
    assert all(type(p) is Point for p in checked.points)
    assert checked.points[0] == Point(x=checked.points[0].x, y=checked.points[0].y, z=checked.points[0].z)


@needs_ros
def test_wire_size(rig):
    full = FaceMeshMarker(rig)
    plain = FaceMeshMarker(rig, colors="none")
    small = FaceMeshMarker(rig, cell_size=0.8)
    w = _jaw(0.2)
    n = full.num_points
    # CDR: a point is 3 float64 (24 bytes), a colour 4 float32 (16 bytes).
    assert len(full.serialize(w)) - len(plain.serialize(w)) == 16 * n
    assert len(plain.serialize(w)) < 0.61 * len(full.serialize(w))
    assert small.num_points < 0.7 * n
    assert len(small.serialize(w)) < 0.7 * len(full.serialize(w))


@needs_ros
def test_other_regions_and_whole_rig(rig):
    lips = FaceMeshMarker(rig, region="lips")
    whole = FaceMeshMarker(rig, region=None)
    assert lips.num_triangles < FaceMeshMarker(rig).num_triangles < whole.num_triangles == len(rig.triangles)


@needs_ros
def test_bad_input(face, rig):
    with pytest.raises(ValueError, match=r"shape \(52,\), got shape \(51,\)"):
        face.marker(np.zeros(51))
    with pytest.raises(ValueError, match=r"got shape \(2, 52\)"):
        face.serialize(np.zeros((2, 52)))
    with pytest.raises(ValueError, match="finite"):
        face.corners(np.full(52, np.nan))
    with pytest.raises(ValueError, match="no region 'hair'.*lips"):
        FaceMeshMarker(rig, region="hair")
    with pytest.raises(ValueError, match="colors must be one of"):
        FaceMeshMarker(rig, colors="rainbow")
    with pytest.raises(ValueError, match="RGBA"):
        FaceMeshMarker(rig, colors="none", color=(1.0, 0.5, 2.0, 1.0))


def _spin_until(executor, condition, *, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            return False
        executor.spin_once(timeout_sec=0.05)
    return True


@needs_ros
def test_publish_serialized_marker(monkeypatch, rig):
    """Publisher.publish(bytes) from serialize() arrives as the Marker that marker() builds."""
    import rclpy
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.qos import QoSProfile, ReliabilityPolicy

    monkeypatch.setenv("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    monkeypatch.setenv("FASTDDS_DEFAULT_PROFILES_FILE", str(REPO / "config" / "fastdds_localhost.xml"))
    face = FaceMeshMarker(rig, cell_size=0.8)
    context = rclpy.Context()
    rclpy.init(context=context)
    try:
        executor = SingleThreadedExecutor(context=context)
        node = rclpy.create_node("test_face_mesh", context=context)
        executor.add_node(node)
        topic = f"/test_rviz_mesh_{os.getpid()}/face_mesh"  # this process's own topic
        qos = QoSProfile(depth=5, reliability=ReliabilityPolicy.RELIABLE)
        received = []
        publisher = node.create_publisher(Marker, topic, qos)
        node.create_subscription(Marker, topic, received.append, qos)
        assert _spin_until(executor, lambda: publisher.get_subscription_count() >= 1, timeout_s=10.0)
        publisher.publish(face.serialize(_jaw(0.7)))
        assert _spin_until(executor, lambda: received, timeout_s=10.0), "no marker within 10 s"
        assert received[0] == face.marker(_jaw(0.7))
        executor.shutdown()
        node.destroy_node()
    finally:
        rclpy.shutdown(context=context)
