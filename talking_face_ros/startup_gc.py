"""Python's cyclic garbage collector kept off what a long-running process loaded at start-up.

Why: torch, onnxruntime, rclpy and a model make a few hundred thousand Python objects, and every
full collection walks all of them. Logged with ``gc.callbacks`` during a node run here: full
collections while starting took 10, 36 and 84 ms in the engine process and 25 ms in the node's
process (with the smaller ones, about 0.2 s and 0.06 s of start-up); one in the steady state
would stall the engine or the frame timer as long, and a node that runs for hours makes one
sooner or later. So collection pauses while a process loads (``pause``); then everything loaded
moves to the permanent generation (``settle``, ``gc.freeze``), which later collections skip:
they walk only what was made since.
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
