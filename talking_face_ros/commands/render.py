"""``talking-face render``: a blendshape sequence (and its speech) to an MP4 and a contact sheet."""
from __future__ import annotations

from pathlib import Path


def register(sub) -> None:
    p = sub.add_parser("render", help="render frames (.csv/.npz/.json) to an MP4 with audio + a PNG contact sheet")
    p.add_argument("frames", type=Path, help="frame file written by animate / say / evaluate predictions")
    p.add_argument("--audio", type=Path, default=None, help="speech WAV to mux into the video")
    p.add_argument("--out", required=True, type=Path, help="output .mp4")
    p.add_argument("--sheet", type=Path, default=None, help="contact sheet PNG (default: next to --out)")
    p.add_argument("--rig", default="robot", help="'robot' (built-in, default), 'ict' or a rig .npz")
    p.add_argument("--size", type=int, default=512, help="video width and height in pixels (even)")
    p.add_argument("--ssaa", type=int, default=2, help="supersampling per axis (1 = faster)")
    p.set_defaults(func=_run)


def render_outputs(weights, fps, audio, out_mp4, sheet_png, *, rig_spec="robot", size=512, ssaa=2):
    from ..render import contact_sheet, render_video
    from ..rig import load_rig

    rig = load_rig(rig_spec)
    render_video(rig, weights, fps, out_mp4, audio_wav=audio, size=(size, size), ssaa=ssaa)
    contact_sheet(rig, weights, fps, sheet_png)
    print(f"wrote {out_mp4} and {sheet_png}")


def _run(args) -> int:
    import numpy as np

    from ..frames_io import load_frames

    times, weights, _ = load_frames(args.frames)
    fps = 1.0 / float(np.median(np.diff(times))) if len(times) > 1 else 30.0
    sheet = args.sheet or args.out.with_name(args.out.stem + "_sheet.png")
    render_outputs(weights, round(fps, 3), args.audio, args.out, sheet, rig_spec=args.rig, size=args.size,
                   ssaa=args.ssaa)
    return 0
