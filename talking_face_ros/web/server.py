"""HTTP + WebSocket server of the browser face, in plain asyncio (no ROS needed, testable alone).

One ``websockets`` server does both jobs: its ``process_request`` hook answers plain HTTP
requests for the page, and the path ``/ws`` upgrades to a WebSocket that pushes frames. It runs
its event loop in a background thread, so a ROS callback (or any thread) calls
:meth:`FaceServer.publish` and never waits for a browser.

What it serves, and nothing else (a fixed allow-list; request paths never reach the file
system, so ``..``, encoded dots and absolute paths are just unknown names: 404):

==============  ==============================================================================
``/``           the page (``static/index.html``); ``/index.html`` too
``/face.js``    the WebGL renderer (``static/face.js``)
``/rig.bin``    the rig in the binary format below (gzip when the browser accepts it)
``/ws``         WebSocket: one JSON text message per frame,
                ``{"t": stamp_seconds, "i": frame_index, "w": [52 weights, 4 decimals]}``
==============  ==============================================================================

Security: it binds 127.0.0.1 by default. A WebSocket is not covered by the browser's same-origin
policy, so any web page open on the robot could otherwise read the face stream from
``ws://127.0.0.1:PORT/ws`` (cross-site WebSocket hijacking); the handshake therefore needs an
``Origin`` header naming this server itself (``http://127.0.0.1:PORT``, ``http://localhost:PORT``,
``http://[::1]:PORT``, the bound address) or one of ``allowed_origins``, else 403. A request
without ``Origin`` (not a browser) is refused too: a script can send the header.

Each client has a bounded queue and a small socket send buffer: when a browser (or its network)
is slower than the frames, the oldest queued frames are dropped, so memory stays bounded, other
clients are never delayed and the frames that do arrive are recent; a face only ever needs the
newest pose.

Rig format (``/rig.bin``, all numbers little-endian, every array 4-byte aligned):

===========  =====================================================================================
bytes 0-7    ``b"TFRIG1\\0\\0"``
bytes 8-11   uint32: length of the JSON header (space-padded so the arrays start 4-byte aligned)
header       JSON: name, units, shape_names (ARKit order), num_vertices, num_triangles,
             delta_counts and delta_scales (one per shape), view (camera framing), shading
             (the offline renderer's light set-up) and arrays: name -> [byte offset, dtype, count]
neutral      float32 (V*3) rest pose
triangles    uint32 (F*3)
colors       uint8 (V*3) albedo * 255
delta_vertex uint32 (N): the vertex each sparse delta moves, shape after shape
delta_value  int16 (N*3): that vertex's offset / delta_scales[shape]
===========  =====================================================================================

Deltas are sparse (a shape moves about a fifth of the robot face) and quantised to int16 with a
scale per shape (error at most half a step: about 5e-5 cm for a 3 cm move), so the built-in face
is about 0.4 MB instead of 2 MB of dense float32.
"""
from __future__ import annotations

import asyncio
import gzip
import http
import ipaddress
import json
import math
import socket
import struct
import threading
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np
from websockets.asyncio.server import ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from ..arkit import ARKIT_NAMES, NUM_BLENDSHAPES
from ..render import frame as offline  # the browser copies the offline renderer's look
from ..rig import LinearRig

STATIC_DIR = Path(__file__).resolve().parent / "static"
MAGIC = b"TFRIG1\0\0"
RIG_FORMAT_VERSION = 1
WS_PATH = "/ws"
RIG_PATH = "/rig.bin"
_STATIC_ROUTES = {"/": "index.html", "/index.html": "index.html", "/face.js": "face.js"}
_CONTENT_TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8"}
# The page loads only its own script and rig and talks only to its own server.
_CSP = ("default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
        "frame-ancestors 'none'")
_WILDCARD_ADDRESSES = ("", "0.0.0.0", "::")
_FRAMING_MARGIN = 0.04  # the offline default_camera's margin
# Bytes a slow client may have in flight (kernel send buffer; Linux doubles the value, and
# asyncio buffers up to _WRITE_LIMIT more) before its frames queue and then drop: a few dozen
# frames of about 450 bytes. Left to autotuning, loopback grows the buffer to 4 MB, which holds
# minutes of stale frames at 30 fps before a newer one could get through.
_CLIENT_SEND_BUFFER = 16 * 1024
_WRITE_LIMIT = 4096


# -- the rig for the browser ---------------------------------------------------------------------


def encode_rig(rig: LinearRig) -> bytes:
    """``rig`` in the ``/rig.bin`` format (see the module docstring)."""
    v = rig.num_vertices
    colors = rig.colors if rig.colors is not None else np.full((v, 3), offline._GREY, np.float32)
    vertex_ids, values, counts, scales = [], [], [], []
    for delta in rig.deltas:
        scale = float(np.abs(delta).max()) / 32767.0
        scale = scale if scale > 0 else 1.0
        q = np.rint(delta.astype(np.float64) / scale).astype(np.int16)
        moved = np.nonzero(np.any(q != 0, axis=1))[0]
        vertex_ids.append(moved.astype(np.uint32))
        values.append(q[moved])
        counts.append(len(moved))
        scales.append(scale)
    arrays = {
        "neutral": np.ascontiguousarray(rig.neutral, "<f4"),
        "triangles": np.ascontiguousarray(rig.triangles, "<u4"),
        "colors": np.rint(np.clip(colors, 0, 1) * 255).astype(np.uint8),
        "delta_vertex": np.concatenate(vertex_ids).astype("<u4"),
        "delta_value": np.concatenate(values).astype("<i2"),
    }
    header = {
        "format": "talking_face_ros.rig.bin", "version": RIG_FORMAT_VERSION, "name": rig.name,
        "units": rig.units, "shape_names": list(ARKIT_NAMES), "num_vertices": v,
        "num_triangles": int(len(rig.triangles)), "delta_counts": counts, "delta_scales": scales,
        "view": _view(rig), "shading": _shading(),
    }
    # Offsets depend on the header's length and the header lists the offsets: lay out the arrays
    # with room for the largest header this can be (offsets of at most 12 digits).
    placeholder = {k: [10**12, str(a.dtype.name), int(a.size)] for k, a in arrays.items()}
    header_len = _padded(len(json.dumps({**header, "arrays": placeholder})), 12)
    offset, table, blobs = 12 + header_len, {}, []
    for key, a in arrays.items():
        table[key] = [offset, a.dtype.name, int(a.size)]
        blob = a.tobytes()
        blobs.append(blob + b"\0" * (_padded(len(blob), offset) - len(blob)))
        offset += len(blobs[-1])
    text = json.dumps({**header, "arrays": table}).encode()
    text += b" " * (header_len - len(text))
    return MAGIC + struct.pack("<I", header_len) + text + b"".join(blobs)


def decode_rig(data: bytes) -> dict:
    """The reference reader of ``/rig.bin`` (the page's parser does the same in JavaScript).

    Returns the header plus ``neutral (V, 3)``, ``triangles (F, 3)``, ``colors (V, 3)`` uint8
    and ``deltas (52, V, 3)`` float32 rebuilt from the sparse quantised form.
    """
    if data[:8] != MAGIC:
        raise ValueError("rig.bin: bad magic bytes")
    (header_len,) = struct.unpack_from("<I", data, 8)
    header = json.loads(data[12:12 + header_len])
    if header.get("version") != RIG_FORMAT_VERSION:
        raise ValueError(f"rig.bin: version {header.get('version')!r}, expected {RIG_FORMAT_VERSION}")
    a = {k: np.frombuffer(data, np.dtype(t).newbyteorder("<"), n, off)
         for k, (off, t, n) in header["arrays"].items()}
    v = header["num_vertices"]
    deltas = np.zeros((NUM_BLENDSHAPES, v, 3), np.float32)
    ids, values = a["delta_vertex"], a["delta_value"].reshape(-1, 3)
    start = 0
    for s, (count, scale) in enumerate(zip(header["delta_counts"], header["delta_scales"])):
        deltas[s, ids[start:start + count]] = values[start:start + count] * np.float32(scale)
        start += count
    return {**header, "neutral": a["neutral"].reshape(v, 3), "colors": a["colors"].reshape(v, 3),
            "triangles": a["triangles"].reshape(-1, 3), "deltas": deltas}


def _view(rig: LinearRig) -> dict:
    """Camera framing of the offline renderer's default_camera, independent of the image size.

    The page turns it into a camera for its own canvas size: focal = min(W * (1 - 2 margin) /
    (umax - umin), H * (1 - 2 margin) / (vmax - vmin)) and optical axis at (W / 2 - focal *
    (umin + umax) / 2, H / 2 - focal * (vmin + vmax) / 2), as render.frame.fit_camera does;
    :func:`browser_camera` is the same formula in Python.
    """
    ids = rig.regions.get("face")
    ids = ids if ids is not None and len(ids) else np.arange(rig.num_vertices)
    rest, moves = rig.neutral[ids], rig.deltas[:, ids]
    points = np.concatenate([rest, rest + np.minimum(moves.min(axis=0), 0),
                             rest + np.maximum(moves.max(axis=0), 0)])
    lo, hi = points.min(axis=0), points.max(axis=0)
    center = (lo + hi) / 2
    distance = 4.0 * float((hi - lo).max())
    probe = offline.Camera(1, 1, tuple(center), distance, 1.0, (0.0, 0.0))
    xy, _ = probe.project(points)
    (umin, vmin), (umax, vmax) = xy.min(axis=0), xy.max(axis=0)
    return {"center": [float(c) for c in center], "distance": distance,
            "bounds": [float(umin), float(umax), float(vmin), float(vmax)], "margin": _FRAMING_MARGIN}


def browser_camera(view: dict, width: int, height: int) -> offline.Camera:
    """The camera the page uses for a ``width`` x ``height`` canvas (see :func:`_view`)."""
    umin, umax, vmin, vmax = view["bounds"]
    m = view["margin"]
    focal = min(width * (1 - 2 * m) / max(umax - umin, 1e-9), height * (1 - 2 * m) / max(vmax - vmin, 1e-9))
    offset = (width / 2 - focal * (umin + umax) / 2, height / 2 - focal * (vmin + vmax) / 2)
    return offline.Camera(width, height, tuple(view["center"]), view["distance"], focal, offset)


def _shading() -> dict:
    """The offline renderer's lights and background, so both draw the same picture."""
    def unit(vec):
        return [float(x) for x in np.asarray(vec) / np.linalg.norm(vec)]

    key = np.asarray(offline._KEY_LIGHT) / np.linalg.norm(offline._KEY_LIGHT)
    half = key + np.array([0.0, 0.0, 1.0])
    return {"key_light": unit(key), "fill_light": unit(offline._FILL_LIGHT), "half_vector": unit(half),
            "ambient": offline._AMBIENT, "key": offline._KEY, "fill": offline._FILL,
            "specular": offline._SPECULAR, "shininess": offline._SHININESS,
            "background_top": list(offline._BACKGROUND_TOP),
            "background_bottom": list(offline._BACKGROUND_BOTTOM)}


def _padded(length: int, start: int) -> int:
    """``length`` grown so that ``start + length`` is a multiple of 4."""
    return length + (-(start + length)) % 4


# -- frames --------------------------------------------------------------------------------------


def frame_message(weights, *, stamp: float = 0.0, index: int = 0) -> str:
    """The WebSocket text of one frame: 52 weights in ARKit order, rounded to 4 decimals."""
    w = np.asarray(weights, dtype=np.float64)
    if w.shape != (NUM_BLENDSHAPES,):
        raise ValueError(f"weights: expected shape (52,), got {w.shape}")
    if not np.isfinite(w).all() or not math.isfinite(stamp):
        raise ValueError("weights/stamp: NaN or infinite values")
    return json.dumps({"t": round(float(stamp), 6), "i": int(index), "w": [round(x, 4) for x in w.tolist()]},
                      separators=(",", ":"))


@dataclass(eq=False)
class _Client:
    queue: asyncio.Queue
    dropped: int = 0
    sent: int = 0


@dataclass
class _Counters:
    published: int = 0
    dropped: int = 0  # over all clients, including those gone
    clients: set = field(default_factory=set)


class FaceServer:
    """Serves the browser face; ``publish`` from any thread pushes a frame to every browser.

    Use as a context manager or call :meth:`start` / :meth:`stop`.
    """

    def __init__(
        self,
        rig: LinearRig,
        *,
        address: str = "127.0.0.1",  # interface to bind; "0.0.0.0" exposes it to the network
        port: int = 8765,  # 0 = a free port, read back from .port after start()
        allowed_origins=(),  # extra page origins allowed to open /ws, e.g. "http://robot.local:8765"
        queue_size: int = 4,  # frames buffered per client before the oldest are dropped
    ):
        if not 0 <= int(port) <= 65535:
            raise ValueError(f"port: expected 0..65535, got {port}")
        if int(queue_size) < 1:
            raise ValueError(f"queue_size: expected >= 1, got {queue_size}")
        self._address, self._requested_port = str(address), int(port)
        self._extra_origins = tuple(_normalize_origin(o, strict=True) for o in allowed_origins)
        self._queue_size = int(queue_size)
        self._rig_body = encode_rig(rig)
        self._rig_gzip = gzip.compress(self._rig_body, compresslevel=6, mtime=0)
        self._static = {}
        for route, name in _STATIC_ROUTES.items():
            self._static[route] = ((STATIC_DIR / name).read_bytes(), _CONTENT_TYPES[Path(name).suffix])
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop_event: asyncio.Event | None = None
        self._ready = threading.Event()
        self._start_error: BaseException | None = None
        self._port: int | None = None
        self._origins: frozenset[str] = frozenset()
        self._latest: str | None = None
        self._counters = _Counters()

    # -- life cycle -----------------------------------------------------------------------------

    def start(self, *, timeout: float = 10.0) -> "FaceServer":
        """Bind and serve in a background thread; OSError when the address cannot be bound."""
        if self._thread is not None:
            raise RuntimeError("FaceServer already started")
        self._thread = threading.Thread(target=lambda: asyncio.run(self._run()), name="face-server",
                                        daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout):
            raise TimeoutError(f"face server did not start within {timeout} s")
        if self._start_error is not None:
            self._thread.join()
            raise self._start_error
        return self

    def stop(self, *, timeout: float = 5.0) -> None:
        """Close every connection and the listening socket, and end the thread."""
        loop, event = self._loop, self._stop_event
        if loop is not None and event is not None:
            with suppress(RuntimeError):  # the loop already ended
                loop.call_soon_threadsafe(event.set)
        if self._thread is not None:
            self._thread.join(timeout)

    def __enter__(self) -> "FaceServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("FaceServer not started")
        return self._port

    @property
    def url(self) -> str:
        host = self._address if self._address not in _WILDCARD_ADDRESSES else "127.0.0.1"
        return f"http://{_url_host(host)}:{self.port}/"

    @property
    def origins(self) -> frozenset[str]:
        """Origins whose pages may open ``/ws`` (known once started)."""
        return self._origins

    # -- frames ---------------------------------------------------------------------------------

    def publish(self, weights, *, stamp: float = 0.0, index: int = 0) -> None:
        """Send ``(52,)`` ARKit-order weights to every client (thread-safe, never blocks).

        ValueError for a wrong shape or non-finite values; ignored while the server is stopped.
        """
        text = frame_message(weights, stamp=stamp, index=index)
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        with suppress(RuntimeError):  # the loop closed in between: shutting down
            loop.call_soon_threadsafe(self._broadcast, text)

    def stats(self) -> dict:
        """Counts for monitoring: clients, frames published and dropped, per client queued and sent."""
        loop = self._loop
        if loop is None or loop.is_closed():
            return {"clients": 0, "published": self._counters.published,
                    "dropped": self._counters.dropped, "queued": [], "sent": []}

        async def collect():
            c = self._counters
            return {"clients": len(c.clients), "published": c.published, "dropped": c.dropped,
                    "queued": [k.queue.qsize() for k in c.clients],
                    "sent": [k.sent for k in c.clients]}

        return asyncio.run_coroutine_threadsafe(collect(), loop).result(timeout=5.0)

    def _broadcast(self, text: str) -> None:
        self._latest = text
        self._counters.published += 1
        for client in self._counters.clients:
            if client.queue.full():
                client.queue.get_nowait()
                client.dropped += 1
                self._counters.dropped += 1
            client.queue.put_nowait(text)

    # -- asyncio side ---------------------------------------------------------------------------

    async def _run(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop_event = asyncio.Event()
        try:
            server = await serve(
                self._serve_client, self._address or None, self._requested_port,
                process_request=self._process_request,
                compression=None,  # frames are tiny; deflate would cost CPU per client
                max_size=4096,  # clients send nothing the server uses
                write_limit=_WRITE_LIMIT,
                close_timeout=2,  # bounds stop() when a client never answers the close
                server_header=None,
            )
        except BaseException as e:  # noqa: BLE001 - handed to start() in the caller's thread
            self._start_error = e
            self._ready.set()
            return
        self._port = int(server.sockets[0].getsockname()[1])
        self._origins = frozenset(self._own_origins() + self._extra_origins)
        self._ready.set()
        async with server:  # closes the listener and every connection on exit
            await self._stop_event.wait()

    def _own_origins(self) -> tuple[str, ...]:
        hosts = ["127.0.0.1", "localhost", "::1"]
        if self._address not in _WILDCARD_ADDRESSES:
            hosts.append(self._address)
        return tuple(_normalize_origin(f"http://{_url_host(h)}:{self._port}") for h in hosts)

    def _process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        if request.method != "GET":
            response = connection.respond(http.HTTPStatus.METHOD_NOT_ALLOWED, "Only GET.\n")
            response.headers["Allow"] = "GET"
            return response
        path = request.path.split("?", 1)[0]  # compared as sent: never decoded, never joined
        if path == WS_PATH:
            origin = request.headers.get("Origin")
            if origin is None or _normalize_origin(origin) not in self._origins:
                return connection.respond(http.HTTPStatus.FORBIDDEN, "Origin not allowed.\n")
            return None  # the WebSocket handshake goes on
        if path == RIG_PATH:
            gz = "gzip" in request.headers.get("Accept-Encoding", "").lower()
            body = self._rig_gzip if gz else self._rig_body
            extra = [("Content-Encoding", "gzip")] if gz else []
            return _response(body, "application/octet-stream", extra + [("Vary", "Accept-Encoding")])
        item = self._static.get(path)
        if item is None:
            return connection.respond(http.HTTPStatus.NOT_FOUND, "Not found.\n")
        return _response(*item)

    async def _serve_client(self, ws: ServerConnection) -> None:
        sock = ws.transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, _CLIENT_SEND_BUFFER)
        client = _Client(asyncio.Queue(self._queue_size))
        if self._latest is not None:  # a new page shows the current pose at once
            client.queue.put_nowait(self._latest)
        self._counters.clients.add(client)
        pump = asyncio.create_task(self._pump(ws, client))
        try:
            async for _ in ws:  # reading keeps close handling going; messages are ignored
                pass
        except ConnectionClosed:
            pass
        finally:
            self._counters.clients.discard(client)
            pump.cancel()
            with suppress(asyncio.CancelledError):
                await pump

    @staticmethod
    async def _pump(ws: ServerConnection, client: _Client) -> None:
        try:
            while True:
                text = await client.queue.get()
                await ws.send(text)  # waits only for this client's socket
                client.sent += 1
        except ConnectionClosed:
            pass


def _response(body: bytes, content_type: str, extra=()) -> Response:
    headers = Headers([
        ("Content-Type", content_type), ("Content-Length", str(len(body))),
        ("Cache-Control", "no-cache"), ("X-Content-Type-Options", "nosniff"),
        ("Content-Security-Policy", _CSP), ("Connection", "close"), *extra,
    ])
    return Response(200, "OK", headers, body)


def _url_host(host: str) -> str:
    """``host`` as written in a URL (IPv6 literals in brackets)."""
    try:
        return f"[{host}]" if ipaddress.ip_address(host).version == 6 else host
    except ValueError:
        return host


def _normalize_origin(origin: str, *, strict: bool = False) -> str:
    """``scheme://host[:port]`` in lower case; with ``strict``, ValueError for anything else."""
    text = str(origin).strip()
    parts = urlsplit(text)
    ok = parts.scheme in ("http", "https") and parts.netloc and parts.path in ("", "/") \
        and not parts.query and not parts.fragment and "@" not in parts.netloc
    if not ok:
        if strict:
            raise ValueError(f"allowed_origins: {origin!r} is not an origin like http://host:port")
        return text.lower()
    return f"{parts.scheme}://{parts.netloc}".lower()
