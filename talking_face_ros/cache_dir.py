"""Where derived files that are slow to make and cheap to remake are kept between runs.

The node's start-up budget (a few seconds) has no room for exporting a text encoder or
embedding the 500 labelled emotion phrasings, so both are made once and reused. Everything
here is derived from files the package already has: deleting the folder only costs time.
"""
from __future__ import annotations

import hashlib
import os
from pathlib import Path


def cache_dir() -> Path:
    """``$TALKING_FACE_CACHE``, else ``$XDG_CACHE_HOME/talking_face_ros``, else ``~/.cache/talking_face_ros``."""
    env = os.environ.get("TALKING_FACE_CACHE")
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base).expanduser() / "talking_face_ros"


def file_fingerprint(*paths: Path) -> str:
    """A short digest of files' names, sizes and modification times (cheap; no reading of content).

    A new wheel version or an edited model changes size or mtime, so a cached derivative of the
    old one is never picked up by mistake.
    """
    h = hashlib.sha256()
    for p in paths:
        st = Path(p).stat()
        h.update(f"{Path(p).resolve()}|{st.st_size}|{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:16]


def text_digest(*parts: str) -> str:
    h = hashlib.sha256()
    for part in parts:
        h.update(part.encode("utf-8", "surrogatepass"))
        h.update(b"\0")
    return h.hexdigest()[:16]


def write_atomically(path: Path, data: bytes) -> None:
    """Write to a temporary name, then rename: a reader never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)
