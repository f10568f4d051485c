"""Rendered sequences as files: labelled image grids, contact sheets (PNG) and MP4 videos.

Videos are encoded by the system's ffmpeg (Debian's ``/usr/bin/ffmpeg``), fed raw RGB frames on
its standard input, with the speech audio muxed in as AAC so the result plays anywhere.
"""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont
from tqdm import tqdm

from ..rig.linear_rig import LinearRig
from .frame import DEFAULT_SIZE, Camera, _check_size, default_camera, render_mesh

_LABEL_BG = (24, 26, 32)
_LABEL_FG = (235, 235, 235)


def _font(size: int):
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1 has only the fixed bitmap font
        return ImageFont.load_default()


def image_grid(images, labels=None, *, columns: int = 6, label_height: int | None = None,
               gap: int = 4) -> np.ndarray:
    """Images of one size in a grid, each with an optional caption strip below it."""
    images = [np.asarray(im, dtype=np.uint8) for im in images]
    if not images:
        raise ValueError("image_grid needs at least one image")
    h, w = images[0].shape[:2]
    if any(im.shape != images[0].shape for im in images):
        raise ValueError("image_grid: all images must have the same shape")
    if labels is not None and len(labels) != len(images):
        raise ValueError(f"image_grid: {len(labels)} labels for {len(images)} images")
    columns = max(1, min(int(columns), len(images)))
    rows = -(-len(images) // columns)
    lh = (label_height or max(14, h // 11)) if labels is not None else 0
    canvas = Image.new("RGB", (columns * w + (columns + 1) * gap, rows * (h + lh) + (rows + 1) * gap),
                       _LABEL_BG)
    draw = ImageDraw.Draw(canvas)
    size = max(10, int(lh * 0.72))
    for i, im in enumerate(images):
        x = gap + (i % columns) * (w + gap)
        y = gap + (i // columns) * (h + lh + gap)
        canvas.paste(Image.fromarray(im), (x, y))
        if labels is not None:
            text = str(labels[i])
            font = _font(size)
            while draw.textlength(text, font=font) > w - 4 and getattr(font, "size", 0) > 8:
                font = _font(font.size - 1)  # long labels shrink to fit their cell
            tx = x + (w - draw.textlength(text, font=font)) / 2
            ty = y + h + (lh - getattr(font, "size", 10)) / 2 - 1
            draw.text((tx, ty), text, fill=_LABEL_FG, font=font)
    return np.asarray(canvas)


def save_png(image: np.ndarray, path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.asarray(image, dtype=np.uint8)).save(path)
    return path


def _weights_2d(weights) -> np.ndarray:
    w = np.asarray(weights, dtype=np.float32)
    if w.ndim != 2 or w.shape[1] != 52:
        raise ValueError(f"weights must be (frames, 52), got shape {w.shape}")
    if len(w) == 0:
        raise ValueError("weights has no frames")
    return w


def contact_sheet(
    rig: LinearRig,
    weights,  # (T, 52)
    fps: float,
    out_png,
    *,
    columns: int = 6,  # cells per row
    every: int | None = None,  # frames between cells; default spreads about 24 cells over the clip
    cell_size=(256, 256),  # (width, height) of each rendered frame
    camera: Camera | None = None,
    ssaa: int = 2,
) -> Path:
    """A PNG grid of frames of a sequence, each captioned with its time (frame i at i / fps)."""
    w = _weights_2d(weights)
    if not fps > 0:
        raise ValueError(f"fps must be > 0, got {fps}")
    every = int(every) if every is not None else max(1, -(-len(w) // 24))
    if every < 1:
        raise ValueError(f"every must be >= 1, got {every}")
    camera = camera or default_camera(rig, cell_size)
    frames = range(0, len(w), every)
    images = [render_mesh(rig.mesh(w[i]), rig.triangles, rig.colors, camera, ssaa=ssaa) for i in frames]
    labels = [f"{i / fps:.2f} s  (#{i})" for i in frames]
    return save_png(image_grid(images, labels, columns=columns), out_png)


def render_video(
    rig: LinearRig,
    weights,  # (T, 52)
    fps: float,
    out_mp4,
    *,
    audio_wav=None,  # speech to mux in (any format ffmpeg reads); None = silent video
    size=DEFAULT_SIZE,  # (width, height), both even (H.264 with 4:2:0 chroma)
    camera: Camera | None = None,  # default: default_camera(rig, size)
    ssaa: int = 2,  # supersampling per axis; 1 is about 3x faster
    crf: int = 20,  # x264 quality (lower = better, bigger)
    progress: bool = True,  # tqdm bar on stderr
    ffmpeg: str | None = None,  # path of the ffmpeg program; default: found on PATH
) -> Path:
    """Render every frame and encode an H.264 MP4 (with AAC audio when ``audio_wav`` is given).

    The video has exactly one frame per weight row; the audio is not cut or padded, so a clip
    and its speech line up from time zero.
    """
    w = _weights_2d(weights)
    if not fps > 0:
        raise ValueError(f"fps must be > 0, got {fps}")
    width, height = _check_size(size if camera is None else (camera.width, camera.height))
    if width % 2 or height % 2:
        raise ValueError(f"video size must be even, got {width}x{height}")
    if audio_wav is not None and not Path(audio_wav).is_file():
        raise FileNotFoundError(f"audio file not found: {audio_wav}")
    exe = ffmpeg or shutil.which("ffmpeg") or "/usr/bin/ffmpeg"
    if not Path(exe).is_file():
        raise FileNotFoundError("ffmpeg not found (Debian: apt-get install ffmpeg)")
    camera = camera or default_camera(rig, (width, height))
    out = Path(out_mp4)
    out.parent.mkdir(parents=True, exist_ok=True)
    cmd = [exe, "-y", "-loglevel", "error", "-f", "rawvideo", "-pix_fmt", "rgb24",
           "-s", f"{width}x{height}", "-r", f"{fps:g}", "-i", "-"]
    if audio_wav is not None:
        cmd += ["-i", str(audio_wav), "-map", "0:v:0", "-map", "1:a:0", "-c:a", "aac", "-b:a", "128k"]
    cmd += ["-c:v", "libx264", "-preset", "veryfast", "-crf", str(int(crf)), "-pix_fmt", "yuv420p",
            "-movflags", "+faststart", str(out)]
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        for i in tqdm(range(len(w)), desc=f"render {out.name}", unit="frame", disable=not progress):
            frame = render_mesh(rig.mesh(w[i]), rig.triangles, rig.colors, camera, ssaa=ssaa)
            proc.stdin.write(frame.tobytes())
        proc.stdin.close()
    except BrokenPipeError:  # ffmpeg stopped early; its message is read below
        try:
            proc.stdin.close()
        except BrokenPipeError:
            pass
    except BaseException:
        proc.kill()
        proc.wait()
        raise
    err = proc.stderr.read().decode(errors="replace")
    if proc.wait() != 0:
        raise RuntimeError(f"ffmpeg failed writing {out}: {err.strip() or 'no message'}")
    return out
