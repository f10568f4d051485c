"""Reading the package's own versioned JSON files (a bundle's bundle.json, an ONNX export's manifest.json).

Both say what they are in ``format`` and ``version``; one reader gives a damaged or foreign
file the same clear messages wherever it is opened.
"""
from __future__ import annotations

import json
from pathlib import Path


def read_versioned_json(path: Path, *, fmt: str, version: int, what: str) -> dict:
    """The JSON object in ``path`` whose ``format`` is ``fmt`` and ``version`` is ``version``, else a
    ValueError naming ``path``; ``what`` names the file's kind in the version message ("bundle")."""
    try:
        data = json.loads(Path(path).read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(data, dict) or data.get("format") != fmt:
        raise ValueError(f"{path}: not a {fmt} file")
    if data.get("version") != version:
        raise ValueError(f"{path}: {what} version {data.get('version')!r}, this code reads {version}")
    return data
