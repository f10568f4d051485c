"""``talking-face distill-speech``: train the causal (low-latency) speech encoder on a corpus."""
from __future__ import annotations


def register(sub) -> None:
    from ..distill_speech import add_arguments

    p = sub.add_parser("distill-speech", help="train the causal speech encoder to imitate Moonshine's features")
    add_arguments(p)
    p.set_defaults(func=_run)


def _run(args) -> int:
    from ..distill_speech import run_from_args

    return run_from_args(args)
