"""``talking-face``: the one command-line program, with a subcommand per job."""
from __future__ import annotations

import argparse
import importlib
import sys

# Subcommand modules under talking_face_ros.commands, in the order --help lists them.
COMMANDS = ("demo", "train", "animate", "say", "render", "export", "onnx-export", "lipsync", "corpus", "distill-speech", "evaluate",
            "emotion-classifier", "reliability")


class UserError(Exception):
    """A problem with the user's input: printed as one clear line, exit status 2."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="talking-face",
        description="Speech + emotion text to ARKit facial animation (talking_face_ros).",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f"talking_face_ros.commands.{name.replace('-', '_')}").register(sub)
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (UserError, FileNotFoundError, ValueError) as exc:
        print(f"talking-face {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"talking-face {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
