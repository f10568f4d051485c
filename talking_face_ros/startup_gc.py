"""Python's cyclic garbage collector kept off what a long-running process loaded at start-up.

Why: torch, onnxruntime, rclpy and a model make a few hundred thousand Python objects, and every
full collection walks all of them: ``bench/startup_gc.py`` measured 229 ms of collections while
the engine process loads (the longest 82 ms) and 33 ms in the node's, and 87 and 14 ms for one
full collection afterwards. One in the steady state stalls the engine or the frame timer that
long, and a node that runs for hours meets one sooner or later. So collection pauses while a
process loads (``pause``); then everything loaded moves to the permanent generation (``settle``,
``gc.freeze``), which later collections skip: they walk only what was made since.
"""
from __future__ import annotations

import gc


def pause() -> None:
    """No cyclic collection until ``settle`` (reference counting still frees nearly everything)."""
    gc.disable()


def settle() -> None:
    """What exists now is kept out of every later collection; collection resumes."""
    gc.freeze()
    gc.enable()
