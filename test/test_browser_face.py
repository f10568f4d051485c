"""The browser face: rig encoding, the HTTP/WebSocket server, a real headless Chromium, the node.

The Chromium test drives the browser through the DevTools protocol (a WebSocket, so nothing
beyond ``websockets`` is needed) and compares its screenshots with the offline renderer's
images of the same poses: the page must draw the same face, and jawOpen must change the mouth
and nothing above it.
"""
from __future__ import annotations

import array
import base64
import contextlib
import gzip
import http.client
import io
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from talking_face_ros.arkit import ARKIT_NAMES, INDEX
from talking_face_ros.render import default_camera, fit_camera, render_frame
from talking_face_ros.rig import LinearRig, robot_face
from talking_face_ros.web import FaceServer, decode_rig, encode_rig, frame_message, load_rig
from talking_face_ros.web.server import STATIC_DIR, browser_camera

REPO = Path(__file__).resolve().parents[1]
CHROMIUM = Path("/usr/bin/chromium")
JAW_OPEN = INDEX["jawOpen"]


@pytest.fixture(scope="module")
def rig() -> LinearRig:
    return robot_face()


@pytest.fixture(scope="module")
def server(rig):
    with FaceServer(rig, port=0, allowed_origins=["http://robot.local:8765"]) as s:
        yield s


def _get(server: FaceServer, path: str, headers=None) -> tuple[int, dict, bytes]:
    """A GET with ``path`` sent exactly as written (http.client does not normalise it)."""
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    try:
        conn.request("GET", path, headers=headers or {})
        response = conn.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        conn.close()


def _ws(server: FaceServer, origin: str | None):
    headers = {} if origin is None else {"Origin": origin}
    return connect(f"ws://127.0.0.1:{server.port}/ws", additional_headers=headers, open_timeout=10)


def _receive_index(ws, index: int, *, timeout_s: float = 10.0) -> dict:
    """Frames until the one numbered ``index`` (a new client first gets the latest frame)."""
    deadline = time.monotonic() + timeout_s
    while True:
        frame = json.loads(ws.recv(timeout=max(deadline - time.monotonic(), 0.01)))
        if frame["i"] == index:
            return frame


# -- rig encoding --------------------------------------------------------------------------------


def test_rig_bin_round_trip_is_exact_up_to_quantisation(rig):
    data = encode_rig(rig)
    back = decode_rig(data)
    assert back["shape_names"] == list(ARKIT_NAMES)
    np.testing.assert_array_equal(back["neutral"], rig.neutral)
    np.testing.assert_array_equal(back["triangles"], rig.triangles)
    assert np.abs(back["colors"] / 255.0 - rig.colors).max() <= 0.5 / 255 + 1e-7
    # int16 per shape: each delta is off by at most half a step of its shape's scale (plus the
    # float32 rounding of the decoded value).
    steps = np.array(back["delta_scales"], np.float32)[:, None, None]
    assert (np.abs(back["deltas"] - rig.deltas) <= 0.5 * steps * 1.01).all()
    jaw = np.zeros(52)
    jaw[JAW_OPEN] = 1
    assert np.abs(back["neutral"] + back["deltas"][JAW_OPEN] - rig.mesh(jaw)).max() < 1e-4  # cm
    # Sparse: far smaller than 52 dense float32 offsets per vertex.
    assert len(data) < 0.25 * rig.deltas.nbytes
    # Every array starts 4-byte aligned (JavaScript typed arrays need it).
    assert all(offset % 4 == 0 for offset, _, _ in back["arrays"].values())


def test_browser_camera_frames_like_the_offline_renderer(rig):
    view = decode_rig(encode_rig(rig))["view"]
    for size in [(512, 512), (640, 360), (300, 700)]:
        ours = browser_camera(view, *size)
        reference = fit_camera(rig, size, region="face", margin=0.04)
        assert ours.focal == pytest.approx(reference.focal, rel=1e-9)
        assert ours.offset == pytest.approx(reference.offset, rel=1e-9)
        assert ours.center == pytest.approx(reference.center) and ours.distance == pytest.approx(reference.distance)
    assert browser_camera(view, 512, 512).focal == pytest.approx(default_camera(rig, (512, 512)).focal)


def test_frame_message_rounds_and_refuses_bad_weights():
    w = np.zeros(52)
    w[JAW_OPEN] = 0.123456
    assert json.loads(frame_message(w, stamp=1.5, index=9)) == {
        "t": 1.5, "i": 9, "w": [0.1235 if i == JAW_OPEN else 0.0 for i in range(52)]}
    with pytest.raises(ValueError, match="shape"):
        frame_message(np.zeros(51))
    w[3] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        frame_message(w)


def test_load_rig_validates_the_parameter(tmp_path, rig):
    assert load_rig("robot").num_vertices == rig.num_vertices
    path = tmp_path / "small.npz"
    rig.subset(rig.regions["lips"]).save(path)
    assert load_rig(str(path)).num_vertices == len(rig.regions["lips"])
    with pytest.raises(ValueError, match="no such file"):
        load_rig(str(tmp_path / "missing.npz"))
    (tmp_path / "folder.npz").mkdir()
    with pytest.raises(ValueError, match="not a regular file"):
        load_rig(str(tmp_path / "folder.npz"))
    with pytest.raises(ValueError, match="expected 'robot'"):
        load_rig(str(REPO / "setup.py"))


# -- HTTP ----------------------------------------------------------------------------------------


def test_serves_its_own_files(server):
    for path, name, kind in [("/", "index.html", "text/html"), ("/index.html?x=1", "index.html", "text/html"),
                             ("/face.js", "face.js", "text/javascript")]:
        status, headers, body = _get(server, path)
        assert status == 200, path
        assert headers["Content-Type"].startswith(kind)
        assert body == (STATIC_DIR / name).read_bytes()
        assert "default-src 'self'" in headers["Content-Security-Policy"]
    status, headers, plain = _get(server, "/rig.bin")
    assert status == 200 and "Content-Encoding" not in headers
    assert decode_rig(plain)["num_vertices"] == robot_face().num_vertices
    status, headers, packed = _get(server, "/rig.bin", {"Accept-Encoding": "gzip, deflate"})
    assert headers["Content-Encoding"] == "gzip" and gzip.decompress(packed) == plain
    assert len(packed) < len(plain)


@pytest.mark.parametrize("path", [
    "/../setup.py", "/%2e%2e/setup.py", "/%2E%2E/%2e%2e/etc/passwd", "/static/../../x",
    "/static/index.html", "/static/face.js", "//etc/passwd", "/face.js/..", "/./face.js",
    "/web/server.py", "/server.py", "/index.htm", "/%66ace.js", "/favicon.ico",
])
def test_anything_else_is_not_found(server, path):
    status, _, body = _get(server, path)
    assert status == 404 and body == b"Not found.\n"


def test_only_get(server):
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    conn.request("POST", "/", body=b"")
    assert conn.getresponse().status == 405
    conn.close()


# -- WebSocket -----------------------------------------------------------------------------------


@pytest.mark.parametrize("origin", [None, "http://evil.example", "http://127.0.0.1:1",
                                    "https://127.0.0.1:{port}", "null", "http://127.0.0.1.evil.example:{port}"])
def test_websocket_from_another_origin_is_refused(server, origin):
    origin = None if origin is None else origin.format(port=server.port)
    with pytest.raises(InvalidStatus) as refused:
        _ws(server, origin)
    assert refused.value.response.status_code == 403


@pytest.mark.parametrize("origin", ["http://127.0.0.1:{port}", "http://localhost:{port}",
                                    "HTTP://LocalHost:{port}", "http://robot.local:8765"])
def test_websocket_from_own_or_listed_origin_gets_frames(server, origin):
    with _ws(server, origin.format(port=server.port)) as ws:
        w = np.zeros(52)
        w[JAW_OPEN], w[INDEX["eyeBlinkLeft"]] = 0.5, 0.25
        server.publish(w, stamp=12.25, index=4242)
        frame = _receive_index(ws, 4242)
    assert frame["t"] == 12.25
    np.testing.assert_array_equal(frame["w"], w)


def test_slow_client_drops_old_frames_and_never_blocks_others(rig):
    queue_size = 3
    with FaceServer(rig, port=0, queue_size=queue_size) as server:
        # A client that completes the handshake and then never reads, with a tiny receive
        # buffer: the server's socket to it backs up after a few dozen frames.
        slow = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 2048)
        slow.settimeout(10)
        slow.connect(("127.0.0.1", server.port))
        slow.sendall((f"GET /ws HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\nUpgrade: websocket\r\n"
                      "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                      f"Sec-WebSocket-Version: 13\r\nOrigin: http://127.0.0.1:{server.port}\r\n\r\n").encode())
        reply = b""
        while b"\r\n\r\n" not in reply:
            reply += slow.recv(1)  # byte by byte: nothing after the headers is read
        assert reply.startswith(b"HTTP/1.1 101")
        with _ws(server, f"http://127.0.0.1:{server.port}") as fast:
            w = np.zeros(52)
            for index in range(1, 1001):
                w[JAW_OPEN] = (index % 100) / 100
                server.publish(w, index=index)
                # Every frame reaches the reading client while the other one is stuck.
                assert json.loads(fast.recv(timeout=10))["i"] == index
                if index % 100 == 0 and min(server.stats()["sent"]) < index - 200:
                    break
            stats = server.stats()
        slow.close()
    assert stats["clients"] == 2 and stats["published"] == index
    assert max(stats["sent"]) == index  # the reading client got them all
    stuck = min(stats["sent"])
    assert stuck < index - 200, "the non-reading client never backed up"
    assert stuck < 300  # the send buffer is kept small: few stale frames wait in the kernel
    # Of the frames it did not get, queue_size wait in its queue and one in the blocked send;
    # every other one was dropped.
    assert stats["dropped"] == index - stuck - queue_size - 1
    assert sorted(stats["queued"]) == [0, queue_size]  # memory stays bounded


# -- a real browser ------------------------------------------------------------------------------


class _DevTools:
    """Headless Chromium driven over the DevTools protocol (one page, flat sessions)."""

    def __init__(self, profile: Path, log: Path):
        args = [str(CHROMIUM), "--headless=new", "--no-sandbox", "--disable-gpu", "--use-angle=swiftshader",
                "--enable-unsafe-swiftshader", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                f"--user-data-dir={profile}", "--window-size=512,512", "--remote-debugging-port=0",
                "about:blank"]
        self._log = open(log, "wb")
        self.process = subprocess.Popen(args, stdout=self._log, stderr=subprocess.STDOUT)
        port_file = profile / "DevToolsActivePort"
        deadline = time.monotonic() + 30
        while not (port_file.exists() and len(port_file.read_text().splitlines()) >= 2):
            if time.monotonic() > deadline or self.process.poll() is not None:
                self.close()
                raise RuntimeError(f"Chromium did not start; see {log}")
            time.sleep(0.05)
        port, path = port_file.read_text().splitlines()[:2]
        self._exit = contextlib.ExitStack()
        self._ws = self._exit.enter_context(
            connect(f"ws://127.0.0.1:{port}{path}", max_size=None, open_timeout=10))
        self._next_id = 0
        target = self.call("Target.createTarget", url="about:blank")["targetId"]
        self.session = self.call("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]

    def call(self, method: str, *, session: str | None = None, **params) -> dict:
        self._next_id += 1
        message = {"id": self._next_id, "method": method, "params": params}
        if session:
            message["sessionId"] = session
        self._ws.send(json.dumps(message))
        while True:  # events arrive in between; only the answer to this call matters
            reply = json.loads(self._ws.recv(timeout=30))
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply["result"]

    def page(self, method: str, **params) -> dict:
        return self.call(method, session=self.session, **params)

    def evaluate(self, expression: str):
        return self.page("Runtime.evaluate", expression=expression, returnByValue=True)["result"].get("value")

    def wait_for(self, expression: str, *, timeout_s: float = 20.0):
        deadline = time.monotonic() + timeout_s
        while not (value := self.evaluate(expression)):
            if time.monotonic() > deadline:
                state = self.evaluate("JSON.stringify(window.faceState || null)")
                raise AssertionError(f"timed out waiting for {expression}; faceState = {state}")
            time.sleep(0.05)
        return value

    def screenshot(self) -> np.ndarray:
        from PIL import Image

        data = base64.b64decode(self.page("Page.captureScreenshot", format="png")["data"])
        return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))

    def close(self) -> None:
        if getattr(self, "_ws", None) is not None:
            try:
                self.call("Browser.close")
            except Exception:  # noqa: BLE001 - the browser is going away either way
                pass
            self._exit.close()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self._log.close()


@pytest.mark.skipif(not CHROMIUM.exists(), reason="needs /usr/bin/chromium")
def test_headless_chromium_draws_the_face_opens_the_jaw_and_reconnects(rig, tmp_path):
    from PIL import Image
    from scipy.ndimage import binary_dilation

    size = (512, 512)
    rest, jaw = np.zeros(52), np.zeros(52)
    jaw[JAW_OPEN] = 1.0
    server = FaceServer(rig, port=0).start()
    browser = None
    try:
        browser = _DevTools(tmp_path / "profile", tmp_path / "chromium.log")
        browser.page("Emulation.setDeviceMetricsOverride", width=size[0], height=size[1],
                     deviceScaleFactor=1, mobile=False)
        browser.page("Page.navigate", url=server.url)
        browser.wait_for("window.faceState && faceState.rig && faceState.connected")
        assert browser.evaluate("document.title") == "face: connected"
        assert browser.evaluate("faceState.error") is None
        shots = {}
        for index, (name, weights) in enumerate([("rest", rest), ("jaw", jaw)], start=1):
            server.publish(weights, stamp=index / 30, index=index)
            browser.wait_for(f"faceState.drawnIndex === {index}")
            shots[name] = browser.screenshot()
            Image.fromarray(shots[name]).save(tmp_path / f"browser_{name}.png")

        # The server goes away (a node restart): the page says so, keeps retrying, and picks
        # up the new server's frames on the same port.
        port = server.port
        server.stop()
        browser.wait_for("!faceState.connected && document.title === 'face: waiting for the face server'")
        server = FaceServer(rig, port=port).start()
        server.publish(rest, index=3)
        browser.wait_for("faceState.connected && faceState.drawnIndex === 3")
    finally:
        server.stop()
        if browser is not None:
            browser.close()

    offline = {"rest": render_frame(rig, rest, size=size), "jaw": render_frame(rig, jaw, size=size)}
    for name in ("rest", "jaw"):
        assert shots[name].shape == (size[1], size[0], 3)
        # The same face as the offline renderer: pixels differ only along anti-aliased edges.
        diff = np.abs(shots[name].astype(int) - offline[name].astype(int)).max(axis=2)
        assert diff.mean() < 2.0, f"{name}: mean difference {diff.mean():.2f} from the offline render"
        assert (diff > 40).mean() < 0.01, f"{name}: {(diff > 40).mean():.2%} of pixels differ"

    # jawOpen changes the browser's image where it changes the offline image (the mouth and
    # chin), and not a single pixel above the nose.
    changed = np.abs(shots["jaw"].astype(int) - shots["rest"].astype(int)).max(axis=2) > 30
    expected = np.abs(offline["jaw"].astype(int) - offline["rest"].astype(int)).max(axis=2) > 30
    assert changed.sum() > 0.5 * expected.sum() > 1000
    assert (changed & ~binary_dilation(expected, iterations=3)).sum() <= 0.01 * changed.sum()
    camera = default_camera(rig, size)
    nose_top = camera.project(rig.neutral[rig.regions["nose"]])[0][:, 1].min()
    assert not changed[: int(nose_top)].any()


# -- the ROS node --------------------------------------------------------------------------------


def _ros():
    rclpy = pytest.importorskip("rclpy", reason="rclpy not installed (scripts/build_ros.sh)")
    msg = pytest.importorskip("talking_face_ros.msg", reason="messages not built: scripts/build_ros.sh")
    return rclpy, msg


@pytest.fixture
def ros_context(monkeypatch):
    rclpy, _ = _ros()
    monkeypatch.setenv("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    monkeypatch.setenv("FASTDDS_DEFAULT_PROFILES_FILE", str(REPO / "config" / "fastdds_localhost.xml"))
    context = rclpy.Context()
    rclpy.init(context=context)
    yield context
    rclpy.shutdown(context=context)


def _frame(msg, names, weights, index):
    frame = msg.BlendshapeFrame()
    frame.header.stamp.sec, frame.header.stamp.nanosec = 100, 500_000_000
    frame.frame_index = index
    frame.fps = 30.0
    frame.names = list(names)
    frame.weights = array.array("f", np.asarray(weights, np.float32).tobytes())
    return frame


def test_node_forwards_frames_by_name_and_counts_bad_ones(ros_context, monkeypatch):
    rclpy, msg = _ros()
    monkeypatch.setenv("ROS_PYTHON_CHECK_FIELDS", "1")
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.parameter import Parameter
    from rclpy.qos import QoSProfile, ReliabilityPolicy

    from talking_face_ros.nodes.browser_face import BrowserFaceNode

    topic = f"/test_browser_face_{os.getpid()}/blendshapes"
    node = BrowserFaceNode(context=ros_context, parameter_overrides=[
        Parameter("port", value=0), Parameter("topic", value=topic)])
    source = rclpy.create_node("test_blendshape_source", context=ros_context)
    executor = SingleThreadedExecutor(context=ros_context)
    executor.add_node(node)
    executor.add_node(source)
    try:
        publisher = source.create_publisher(msg.BlendshapeFrame, topic,
                                            QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE))
        deadline = time.monotonic() + 10
        while publisher.get_subscription_count() < 1:
            assert time.monotonic() < deadline, "node did not subscribe within 10 s"
            executor.spin_once(timeout_sec=0.05)

        # Names in reverse order, one the rig lacks, a weight above 1 (clipped).
        names = list(reversed(ARKIT_NAMES)) + ["notAShape"]
        weights = np.zeros(len(names), np.float32)
        weights[names.index("jawOpen")] = 0.75
        weights[names.index("eyeBlinkLeft")] = 0.25
        weights[names.index("mouthSmileRight")] = 1.5
        weights[-1] = 0.9
        bad_length = _frame(msg, names, weights[:-2], index=1)
        nan_weights = weights.copy()
        nan_weights[0] = np.nan
        bad_nan = _frame(msg, names, nan_weights, index=2)
        good = _frame(msg, names, weights, index=3)

        with _ws(node.server, node.server.url.rstrip("/")) as ws:
            received, republish_at = None, 0.0
            deadline = time.monotonic() + 15
            while received is None or node.bad_frames < 2:
                now = time.monotonic()
                assert now < deadline, f"after 15 s: received {received}, {node.bad_frames} bad frames"
                if now >= republish_at:  # best effort: what the first moments lose is sent again
                    for frame in (bad_length, bad_nan, good):
                        publisher.publish(frame)
                    republish_at = now + 2.0
                executor.spin_once(timeout_sec=0.05)
                if received is None:
                    with contextlib.suppress(TimeoutError):
                        received = json.loads(ws.recv(timeout=0.01))
        assert received["i"] == 3 and received["t"] == pytest.approx(100.5)
        expected = np.zeros(52)
        expected[JAW_OPEN], expected[INDEX["eyeBlinkLeft"]], expected[INDEX["mouthSmileRight"]] = 0.75, 0.25, 1.0
        np.testing.assert_array_equal(received["w"], expected)
        assert node.forwarded >= 1
    finally:
        executor.shutdown()
        source.destroy_node()
        node.destroy_node()
    # destroy_node stopped the server.
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", node.server.port), timeout=2).close()


def test_node_refuses_a_bad_rig_parameter(ros_context, tmp_path):
    _ros()
    from rclpy.parameter import Parameter

    from talking_face_ros.nodes.browser_face import BrowserFaceNode

    with pytest.raises(ValueError, match="no such file"):
        BrowserFaceNode(context=ros_context, parameter_overrides=[
            Parameter("port", value=0), Parameter("rig", value=str(tmp_path / "nope.npz"))])


def test_node_main_serves_with_the_config_file_and_stops_on_sigterm():
    _ros()
    env = dict(os.environ, ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST", PYTHONUNBUFFERED="1",
               PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]))
    code = "import sys; from talking_face_ros.nodes.browser_face import main; sys.exit(main())"
    process = subprocess.Popen(
        [sys.executable, "-c", code, "--ros-args", "--params-file", str(REPO / "config" / "browser_face.yaml"),
         "-p", "port:=0"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        line = ""
        deadline = time.monotonic() + 30
        while "browser face at " not in line:
            assert time.monotonic() < deadline and process.poll() is None, f"node did not start: {line!r}"
            line = process.stdout.readline()
        url = line.split("browser face at ", 1)[1].split()[0]
        assert url.startswith("http://127.0.0.1:")  # address from the config file
        host, port = url.removeprefix("http://").rstrip("/").split(":")
        conn = http.client.HTTPConnection(host, int(port), timeout=10)
        conn.request("GET", "/")
        assert conn.getresponse().status == 200
        conn.close()
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=15) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        process.stdout.close()
