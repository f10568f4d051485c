"""The onnxruntime session settings every graph of this package runs with (Moonshine, MiniLM, exports)."""
from __future__ import annotations


def session_options(threads: int | None):
    """``onnxruntime.SessionOptions``: ``threads`` per op and one inter-op thread (None: onnxruntime's
    default, all cores); idle pool threads sleep instead of spinning.

    Why no spinning: a robot's CPU is shared, and spinning workers starved everything else on a
    loaded 2-core machine (bench/peers.py).
    """
    import onnxruntime as ort

    options = ort.SessionOptions()
    if threads is not None:
        if threads < 1:
            raise ValueError(f"threads must be >= 1 or None, got {threads}")
        options.intra_op_num_threads = int(threads)
        options.inter_op_num_threads = 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return options
