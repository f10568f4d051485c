"""Offline rendering: the rasteriser, frames of the robot face, contact sheets, MP4 with audio."""
from __future__ import annotations

import json
import shutil
import subprocess
import wave

import numpy as np
import pytest
from PIL import Image

from talking_face_ros.arkit import INDEX
from talking_face_ros.render import contact_sheet, fit_camera, image_grid, render_frame, render_video
from talking_face_ros.render.raster import rasterize
from talking_face_ros.rig.robot_face import robot_face


def weights(**named) -> np.ndarray:
    w = np.zeros(52, np.float32)
    for name, value in named.items():
        w[INDEX[name]] = value
    return w


# -- rasteriser --------------------------------------------------------------------------------


def test_rasterize_covers_pixel_centres_inside_and_interpolates_colours():
    xy = np.array([[0, 0], [8, 0], [0, 8]], float)
    colors = np.eye(3, dtype=np.float32)
    image, covered = rasterize(xy, np.ones(3), colors, [[0, 1, 2]], 8, 8)
    # Pixel (col i, row j) has its centre at (i + .5, j + .5): inside when i + j + 1 <= 8.
    i, j = np.meshgrid(np.arange(8), np.arange(8), indexing="xy")
    np.testing.assert_array_equal(covered, i + j <= 7)
    # At centre (0.5, 0.5) the barycentric weights are (1 - 1/8, 1/16, 1/16).
    np.testing.assert_allclose(image[0, 0], [0.875, 0.0625, 0.0625], atol=1e-6)
    np.testing.assert_allclose(image[3, 2], [1 - 6 / 8, 2.5 / 8, 3.5 / 8], atol=1e-6)  # (2.5, 3.5)
    assert not image[~covered].any()


def test_rasterize_depth_test_keeps_the_nearest_whatever_the_order():
    xy = np.array([[0, 0], [6, 0], [0, 6], [0, 0], [6, 0], [0, 6]], float)
    depth = np.array([5, 5, 5, 2, 2, 2], float)  # second triangle is nearer
    colors = np.repeat(np.eye(3, dtype=np.float32)[:2], 3, axis=0)  # red far, green near
    for tris in ([[0, 1, 2], [3, 4, 5]], [[3, 4, 5], [0, 1, 2]]):
        image, covered = rasterize(xy, depth, colors, tris, 6, 6, background=(0, 0, 1))
        assert (image[covered] == [0, 1, 0]).all()
        assert (image[~covered] == [0, 0, 1]).all()


def test_rasterize_skips_degenerate_and_offscreen_triangles():
    xy = np.array([[0, 0], [4, 4], [8, 8], [-20, -20], [-10, -20], [-20, -10]], float)
    image, covered = rasterize(xy, np.ones(6), np.ones((6, 3)), [[0, 1, 2], [3, 4, 5]], 8, 8)
    assert not covered.any()


# -- frames of the robot face ------------------------------------------------------------------


@pytest.fixture(scope="module")
def robot():
    return robot_face()


@pytest.fixture(scope="module")
def camera(robot):
    return fit_camera(robot, (160, 160))


def _rows(camera, robot, region):
    xy, _ = camera.project(robot.neutral[robot.regions[region]])
    return int(np.floor(xy[:, 1].min())), int(np.ceil(xy[:, 1].max()))


def test_fit_camera_frames_the_rig_with_margin(robot):
    cam = fit_camera(robot, (200, 120), margin=0.1)
    xy, depth = cam.project(robot.neutral)
    assert (depth > 0).all()
    assert xy[:, 0].min() >= 19.9 and xy[:, 0].max() <= 180.1
    assert xy[:, 1].min() >= 11.9 and xy[:, 1].max() <= 108.1
    # Front view: the subject's left (+x) is on the image's right.
    left_eye, _ = cam.project(robot.neutral[robot.regions["sclera_left"]])
    assert left_eye[:, 0].mean() > 100


def test_render_frame_is_a_face_on_the_background(robot, camera):
    image = render_frame(robot, weights(), camera=camera)
    assert image.shape == (160, 160, 3) and image.dtype == np.uint8
    corner, middle = image[:8, :8].astype(int), image[60:100, 60:100].astype(int)
    assert corner.std(axis=(0, 1)).max() < 3 and abs(middle.mean() - corner.mean()) > 40
    again = render_frame(robot, weights(), camera=camera)
    np.testing.assert_array_equal(image, again)  # deterministic
    with pytest.raises(ValueError, match="52"):
        render_frame(robot, np.zeros(10), camera=camera)


def test_jaw_open_changes_the_mouth_not_the_eyes(robot, camera):
    rest = render_frame(robot, weights(), camera=camera).astype(int)
    open_ = render_frame(robot, weights(jawOpen=1.0), camera=camera).astype(int)
    diff = np.abs(open_ - rest).max(axis=2)
    top, bottom = _rows(camera, robot, "lips")
    assert (diff[top:bottom + 1] > 30).sum() > 100  # the mouth region changes a lot
    eyes_bottom = _rows(camera, robot, "eyes")[1]
    assert (diff[: eyes_bottom + 1] > 2).sum() == 0  # brows and eyes do not change at all


def test_blink_left_changes_the_image_right_half_only(robot, camera):
    rest = render_frame(robot, weights(), camera=camera).astype(int)
    blink = render_frame(robot, weights(eyeBlinkLeft=1.0), camera=camera).astype(int)
    diff = np.abs(blink - rest).max(axis=2) > 2
    half = camera.width // 2
    assert diff[:, half:].sum() > 100  # the subject's left eye is on the image's right
    assert diff[:, :half].sum() == 0
    # ... and closing it covers the white of that eye with the lid.
    lo, hi = _rows(camera, robot, "sclera_left")
    white = lambda im: (im[lo:hi, half:] > 225).all(axis=2).sum()  # noqa: E731
    assert white(blink) < 0.2 * white(rest)


# -- grids, sheets, video ------------------------------------------------------------------------


def test_image_grid_layout():
    tiles = [np.full((10, 20, 3), v, np.uint8) for v in (10, 20, 30)]
    grid = image_grid(tiles, columns=2, gap=2)
    assert grid.shape == (2 * 10 + 3 * 2, 2 * 20 + 3 * 2, 3)
    assert (grid[2:12, 2:22] == 10).all() and (grid[14:24, 2:22] == 30).all()
    labelled = image_grid(tiles, ["a", "b", "c"], columns=3, label_height=14, gap=0)
    assert labelled.shape == (24, 60, 3)
    with pytest.raises(ValueError, match="labels"):
        image_grid(tiles, ["a"])


def test_contact_sheet(tmp_path, robot):
    w = np.zeros((10, 52), np.float32)
    w[:, INDEX["jawOpen"]] = np.linspace(0, 1, 10)
    out = contact_sheet(robot, w, 30.0, tmp_path / "sheet.png", columns=3, every=4,
                        cell_size=(48, 48), ssaa=1)
    sheet = np.asarray(Image.open(out))
    label = max(14, 48 // 11)
    assert sheet.shape == (48 + label + 2 * 4, 3 * 48 + 4 * 4, 3)  # one row: frames 0, 4, 8
    out = contact_sheet(robot, w, 30.0, tmp_path / "sheet2.png", columns=2, every=3,
                        cell_size=(48, 48), ssaa=1)
    assert np.asarray(Image.open(out)).shape[0] == 2 * (48 + label) + 3 * 4  # frames 0, 3 | 6, 9
    with pytest.raises(ValueError, match="frames, 52"):
        contact_sheet(robot, np.zeros(52), 30.0, tmp_path / "x.png")


def _write_wav(path, seconds, rate=16000):
    t = np.arange(int(seconds * rate)) / rate
    samples = (0.2 * np.sin(2 * np.pi * 220 * t) * 32767).astype(np.int16)
    with wave.open(str(path), "wb") as f:
        f.setnchannels(1)
        f.setsampwidth(2)
        f.setframerate(rate)
        f.writeframes(samples.tobytes())


@pytest.mark.skipif(shutil.which("ffmpeg") is None or shutil.which("ffprobe") is None,
                    reason="ffmpeg/ffprobe not installed")
def test_render_video_has_every_frame_and_the_audio(tmp_path, robot):
    frames, fps = 12, 30.0
    w = np.zeros((frames, 52), np.float32)
    w[:, INDEX["jawOpen"]] = np.sin(np.linspace(0, np.pi, frames))
    _write_wav(tmp_path / "speech.wav", frames / fps)
    out = render_video(robot, w, fps, tmp_path / "clip.mp4", audio_wav=tmp_path / "speech.wav",
                       size=(64, 64), ssaa=1, progress=False)
    probe = subprocess.run(
        ["ffprobe", "-v", "error", "-count_frames", "-show_entries",
         "stream=codec_type,codec_name,nb_read_frames,width,height", "-of", "json", str(out)],
        capture_output=True, text=True, check=True)
    streams = {s["codec_type"]: s for s in json.loads(probe.stdout)["streams"]}
    assert streams["video"]["codec_name"] == "h264"
    assert int(streams["video"]["nb_read_frames"]) == frames
    assert (streams["video"]["width"], streams["video"]["height"]) == (64, 64)
    assert streams["audio"]["codec_name"] == "aac"


def test_render_video_rejects_bad_input(tmp_path, robot):
    w = np.zeros((3, 52), np.float32)
    with pytest.raises(ValueError, match="even"):
        render_video(robot, w, 30.0, tmp_path / "a.mp4", size=(63, 64), progress=False)
    with pytest.raises(ValueError, match="fps"):
        render_video(robot, w, 0.0, tmp_path / "a.mp4", size=(64, 64), progress=False)
    with pytest.raises(FileNotFoundError, match="audio"):
        render_video(robot, w, 30.0, tmp_path / "a.mp4", audio_wav=tmp_path / "none.wav",
                     size=(64, 64), progress=False)
