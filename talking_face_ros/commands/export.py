"""``talking-face export``: a frame file to a glTF 2.0 face (.glb) or a Live Link Face CSV take."""
from __future__ import annotations

from pathlib import Path

FORMATS = {".glb": "glb", ".csv": "livelink"}  # output suffix -> format when --format is left out


def register(sub) -> None:
    p = sub.add_parser(
        "export", help="export frames (.csv/.npz/.json) as a .glb face (three.js, Blender) or a "
                       "Live Link Face CSV (Unreal / MetaHuman)")
    p.add_argument("frames", type=Path, help="frame file written by say / animate / evaluate")
    p.add_argument("--out", required=True, type=Path, help="output file (.glb or .csv)")
    p.add_argument("--format", choices=sorted(set(FORMATS.values())), default=None,
                   help="glb or livelink (default: from the --out suffix)")
    p.add_argument("--rig", default="robot", help="glb: 'robot' (built-in, default), 'ict' or a rig .npz")
    p.add_argument("--fps", type=float, default=None,
                   help="resample to this frame rate (default: the frames' own); livelink: also the "
                        "timecode rate, 60 matches the Live Link Face app")
    p.add_argument("--start-timecode", default="00:00:00:00",
                   help="livelink: HH:MM:SS:FF timecode of the first row")
    p.add_argument("--no-morph-normals", action="store_true",
                   help="glb: leave out per-shape normal offsets (about half the file size)")
    p.set_defaults(func=_run)


def output_format(out: Path, requested: str | None) -> str:
    """The format to write: ``requested``, else the one ``out``'s suffix names."""
    if requested is not None:
        return requested
    try:
        return FORMATS[out.suffix.lower()]
    except KeyError:
        raise ValueError(f"{out}: cannot tell the format from the suffix {out.suffix!r}; "
                         f"give --format ({' or '.join(sorted(set(FORMATS.values())))})") from None


def _run(args) -> int:
    from ..export import frame_rate, resample_frames
    from ..frames_io import load_frames

    fmt = output_format(args.out, args.format)
    times, weights, _ = load_frames(args.frames)
    if fmt == "livelink":
        from ..export.livelink_export import export_livelink

        export_livelink(args.out, times, weights, fps=args.fps, start_timecode=args.start_timecode)
        rate = args.fps or frame_rate(times)
        print(f"wrote {args.out}: Live Link Face take at {rate:g} fps")
        return 0

    from ..export.gltf import write_glb
    from ..rig import load_rig

    if args.fps is not None:
        times, weights = resample_frames(times, weights, args.fps)
    rig = load_rig(args.rig)
    write_glb(args.out, rig, times, weights, morph_normals=not args.no_morph_normals)
    size = args.out.stat().st_size / 1e6
    print(f"wrote {args.out}: {rig.name}, {rig.num_vertices} vertices, 52 morph targets, "
          f"{len(times)} frames ({size:.1f} MB)")
    return 0
