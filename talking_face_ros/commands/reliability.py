"""``talking-face reliability``: soak, overload and fault scenarios of the ROS node, with figures.

    talking-face reliability [--soak-minutes 30] [--realtime-seconds 60] [--quick]
                             [--model BUNDLE] [--threads 1] [--max-queue 10]
                             [--only soak,sigint,...] [--json OUT] [--no-progress]

Runs the scenarios of ``talking_face_ros/reliability.py`` (its docstring says what each does
and what passes) against the installed talking_face_node and prints one line of figures per
scenario. A full run takes about the soak's length plus 3 minutes; ``--quick`` (a 15 s soak,
5 s at real time, max_queue 4 s) takes about a minute and is what the tests run. Exit status
0 when every scenario passes, 1 otherwise.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path


def register(sub) -> None:
    from ..reliability import QUICK, SCENARIOS

    p = sub.add_parser("reliability", help="soak, overload and fault scenarios of the ROS node, with figures",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--soak-minutes", type=float, default=None,
                   help=f"minutes of audio the soak feeds the node (default 30; --quick {QUICK['soak_minutes']:g})")
    p.add_argument("--realtime-seconds", type=float, default=None,
                   help=f"seconds of audio at real time after the soak (default 60; --quick "
                        f"{QUICK['realtime_seconds']:g})")
    p.add_argument("--quick", action="store_true", help="a short run (about a minute) for tests and CI")
    p.add_argument("--model", type=Path, default=None, help="model bundle folder (default: the shipped model)")
    p.add_argument("--threads", type=int, default=1, help="the node's threads parameter (default 1)")
    p.add_argument("--max-queue", type=float, default=None,
                   help=f"the node's max_queue parameter in seconds (default 10; --quick {QUICK['max_queue']:g})")
    p.add_argument("--only", default="", help=f"comma-separated scenarios to run (default all: {','.join(SCENARIOS)})")
    p.add_argument("--json", type=Path, default=None, help="also write every figure to this JSON file")
    p.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bars")
    p.set_defaults(func=_run)


def _run(args) -> int:
    from ..cli import UserError
    from ..reliability import QUICK, SCENARIOS, Options, run, table, to_json

    only = tuple(s.strip() for s in args.only.split(",") if s.strip())
    unknown = sorted(set(only) - set(SCENARIOS))
    if unknown:
        raise UserError(f"unknown scenario(s) {', '.join(unknown)}; known: {', '.join(SCENARIOS)}")
    base = dict(QUICK) if args.quick else {}
    for name, value in (("soak_minutes", args.soak_minutes), ("realtime_seconds", args.realtime_seconds),
                        ("max_queue", args.max_queue)):
        if value is not None:
            if not value > 0:
                raise UserError(f"--{name.replace('_', '-')} must be positive, got {value:g}")
            base[name] = value
    if args.threads < 0:
        raise UserError(f"--threads must be >= 0, got {args.threads}")
    if args.model is not None and not (args.model / "bundle.json").is_file():
        raise UserError(f"--model {args.model}: no bundle.json in that folder")
    options = Options(model=args.model, threads=args.threads, only=only, progress=args.progress, **base)
    results = run(options)
    print()
    print(table(results))
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(to_json(results, options), indent=1))
        print(f"wrote {args.json}")
    return 0 if results and all(r.passed for r in results) else 1
