"""``talking-face demo``: the installed node animating the bundled sample fed through the audio topic.

The pure pieces (audio placement, the recorded window, continuity) on hand-made values; then
one real run of the command with a random model bundle: node and wav_publisher as processes,
the recorder in this process.
"""
from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from scipy.io import wavfile

from talking_face_ros import demo
from talking_face_ros.arkit import ARKIT_NAMES
from talking_face_ros.frames_io import load_frames

NS = 1_000_000_000
PERIOD = 33_333_333  # ns, one frame at 30 fps as the node's grid rounds it


def test_the_bundled_sample_is_three_to_four_seconds_of_16khz_speech_with_bilabials():
    from talking_face_ros.speech.espeak import text_to_arpabet

    rate, pcm = wavfile.read(demo.SAMPLE_WAV)
    assert (rate, pcm.dtype, pcm.ndim) == (16000, np.int16, 1)
    assert 3.0 <= len(pcm) / rate <= 4.0
    assert np.abs(pcm).max() > 0.3 * 32768  # speech at a useful level, not silence
    assert demo.SAMPLE_TEXT.read_text().strip() == demo.SAMPLE_SENTENCE
    phones = {p for word in text_to_arpabet(demo.SAMPLE_SENTENCE) for p in word}
    assert {"P", "B", "M"} <= phones  # lips must close: the easiest lip-sync error to see


def test_place_audio_puts_each_sample_at_its_stamp():
    audio = np.array([0.5, -0.25, 0.125], np.float32)
    start = 7 * NS
    # 1 kHz: the first sample is stamped 4 ms after the clock's start -> 4 samples of silence;
    # the clock runs to 10 ms -> 3 more silent samples behind the audio.
    out = demo.place_audio(audio, 1000, first_sample_ns=start + 4_000_000, start_ns=start, end_ns=start + 10_000_000)
    np.testing.assert_array_equal(out, [0, 0, 0, 0, 0.5, -0.25, 0.125, 0, 0, 0])
    # A clock that ends inside the audio never cuts it.
    assert len(demo.place_audio(audio, 1000, first_sample_ns=start, start_ns=start, end_ns=start + NS // 1000)) == 3
    with pytest.raises(ValueError, match="before the clock's start"):
        demo.place_audio(audio, 1000, first_sample_ns=start - 2_000_000, start_ns=start, end_ns=start + NS)


def _frame(k, *, speaking=False, utterance=0, label="neutral", stamp0=100 * NS):
    t = stamp0 + k * PERIOD
    stamp = SimpleNamespace(sec=t // NS, nanosec=t % NS)
    return SimpleNamespace(frame_index=1000 + k, header=SimpleNamespace(stamp=stamp),
                           speaking=speaking, utterance_id=utterance, emotion_label=label, emotion_intensity=2,
                           emotion="text", names=list(ARKIT_NAMES), weights=[k / 100] * 52, fps=30.0)


def test_the_window_is_the_speech_frames_with_half_a_second_of_rest_around_them():
    # Frames 0..59; utterance 3 speaks in frames 20..29, an earlier utterance 2 in frames 2..4.
    frames = [_frame(k, speaking=20 <= k < 30 or 2 <= k < 5, utterance=3 if k >= 20 else 2) for k in range(60)]
    rec = demo.Recording.of(frames)
    assert rec.period_ns == PERIOD
    np.testing.assert_array_equal(rec.speech(3), np.arange(20, 30))
    # 0.5 s is 15 periods (499999995 ns <= 0.5 s): frames 5..44.
    assert rec.window(3) == slice(5, 45)
    assert rec.window(3, before_s=0.1, after_s=10.0) == slice(17, 60)  # 3 frames before; after: all there is
    assert rec.continuous(slice(0, 60))
    with pytest.raises(demo.DemoError, match="no speech frames for utterance 4"):
        rec.window(4)

    lost = demo.Recording.of(frames[:30] + frames[31:])  # one frame lost
    assert not lost.continuous(slice(0, 59)) and lost.continuous(slice(0, 30))
    shifted = frames[:10] + [_frame(k, stamp0=100 * NS + 1) for k in range(10, 20)]  # stamps off by 1 ns
    assert not demo.Recording.of(shifted).continuous(slice(0, 20))


def test_missing_model_and_bad_wav_are_clear_errors(tmp_path, monkeypatch):
    monkeypatch.setattr(demo, "DEFAULT_MODEL", tmp_path / "default_model")
    with pytest.raises(demo.DemoError, match=r"no default model is installed at .*default_model: pass .*--model"):
        demo.run_demo(out=tmp_path / "out")
    with pytest.raises(demo.DemoError, match="--model .*empty: no bundle.json"):
        demo.run_demo(model=tmp_path / "empty", out=tmp_path / "out")
    (tmp_path / "bundle").mkdir()
    (tmp_path / "bundle" / "bundle.json").write_text("{}")
    with pytest.raises(demo.DemoError, match="WAV file not found: .*nothing.wav"):
        demo.run_demo(model=tmp_path / "bundle", wav=tmp_path / "nothing.wav", out=tmp_path / "out")
    assert not (tmp_path / "out").exists()


def _parse(argv):
    from talking_face_ros.commands import demo as command

    parser = argparse.ArgumentParser(prog="talking-face")
    command.register(parser.add_subparsers(dest="command"))
    return parser.parse_args(argv)


def test_the_demo_command_runs_the_installed_node_on_the_sample(tmp_path, capsys):
    pytest.importorskip("rclpy", reason="rclpy not installed (scripts/build_ros.sh)")
    pytest.importorskip("talking_face_ros.msg", reason="messages not built: scripts/build_ros.sh")
    if not (Path(sys.prefix) / "lib" / "talking_face_ros" / "talking_face_node").is_file():
        pytest.skip("node executables not installed (scripts/build_ros.sh)")
    from talking_face_ros.bundle import make_random_bundle

    bundle = make_random_bundle(tmp_path / "bundle")
    out = tmp_path / "demo"
    args = _parse(["demo", "--model", str(bundle), "--out", str(out), "--size", "64"])
    assert args.func(args) == 0
    printed = capsys.readouterr().out
    summary = printed.strip().splitlines()[-1]
    assert summary.endswith("stamps continuous, node stopped cleanly (exit 0)"), printed

    # frames.csv: time + the 52 ARKit columns, one row per 1/30 s from 0.
    header = (out / "frames.csv").read_text().splitlines()[0].split(",")
    assert header == ["time", *ARKIT_NAMES]
    times, weights, _ = load_frames(out / "frames.csv")
    assert times[0] == 0.0
    np.testing.assert_allclose(np.diff(times), 1 / 30, atol=2e-6)  # the CSV keeps 6 decimals
    assert np.all((weights >= 0) & (weights <= 1))

    # The speech frames cover the 3.27 s sample (plus a pad of less than one frame), after
    # 0.5 s of rest and before 0.5 s more; the model's emotion label of the text shows.
    m = re.search(r"(\d+) written \((\d+) speaking from t=([\d.]+) s\), emotion (.*), stamps", summary)
    assert m, summary
    written, speaking, start = int(m[1]), int(m[2]), float(m[3])
    rate, sample = wavfile.read(demo.SAMPLE_WAV)
    assert written == len(times)
    assert len(sample) / rate * 30 <= speaking <= len(sample) / rate * 30 + 2
    assert start == pytest.approx(0.5, abs=1e-6)
    assert written == speaking + 30  # 15 frames (0.5 s) of rest on either side
    assert m[4].split(" -> ")[-1].startswith("happy")

    # speech.wav is the sample on the frames' clock: it starts with the first speech frame,
    # less than one frame later (the pad that put the utterance on the node's frame grid).
    speech_rate, speech = wavfile.read(out / "speech.wav")
    assert speech_rate == rate
    lead = np.flatnonzero(speech)[0] - np.flatnonzero(sample)[0]
    np.testing.assert_array_equal(speech[lead:lead + len(sample)], sample)
    assert 0 <= lead / rate - start < 1 / 30
    assert len(speech) >= len(times) / 30 * rate - 1

    assert (out / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (out / "contact_sheet.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    ffprobe = shutil.which("ffprobe")
    if ffprobe:
        probe = subprocess.run([ffprobe, "-v", "error", "-count_frames", "-show_entries",
                                "stream=codec_type,nb_read_frames,width", "-of", "compact=p=0:nk=1",
                                str(out / "face.mp4")], capture_output=True, text=True, check=True).stdout
        lines = probe.splitlines()
        assert f"video|64|{len(times)}" in lines and any(line.startswith("audio|") for line in lines), probe
