"""WAV reading/writing and resampling (talking_face_ros.speech.audio)."""
from __future__ import annotations

import struct

import numpy as np
import pytest
from scipy.io import wavfile

from talking_face_ros.speech.audio import load_wav, resample_audio, save_wav, to_mono


def _pcm_wav_bytes(frames: np.ndarray, rate: int, bits: int) -> bytes:
    """A canonical PCM WAV written by hand (scipy cannot write 24-bit)."""
    frames = np.atleast_2d(frames.T).T  # (samples, channels)
    channels = frames.shape[1]
    width = bits // 8
    if bits == 24:
        ints = frames.astype("<i4").reshape(-1)
        data = b"".join(int(v).to_bytes(4, "little", signed=True)[:3] for v in ints)
    else:
        data = frames.astype({8: "u1", 16: "<i2", 32: "<i4"}[bits]).tobytes()
    fmt = struct.pack("<HHIIHH", 1, channels, rate, rate * channels * width, channels * width, bits)
    return (b"RIFF" + struct.pack("<I", 4 + 8 + len(fmt) + 8 + len(data)) + b"WAVE"
            + b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack("<I", len(data)) + data)


@pytest.mark.parametrize(
    "bits, full_scale",
    [(16, 32768), (24, 8388608), (32, 2147483648)],
)
def test_integer_pcm_is_scaled_by_its_full_scale(tmp_path, bits, full_scale):
    values = np.array([0, full_scale // 2, -full_scale // 4, full_scale - 1, -full_scale])
    path = tmp_path / f"x{bits}.wav"
    path.write_bytes(_pcm_wav_bytes(values, 8000, bits))
    audio, rate = load_wav(path)
    assert rate == 8000 and audio.dtype == np.float32
    np.testing.assert_allclose(audio, [0.0, 0.5, -0.25, 1.0, -1.0], atol=1.0 / 32768)


def test_eight_bit_pcm_is_unsigned_around_128(tmp_path):
    path = tmp_path / "x8.wav"
    path.write_bytes(_pcm_wav_bytes(np.array([128, 192, 64, 0]), 11025, 8))
    audio, rate = load_wav(path)
    assert rate == 11025
    np.testing.assert_allclose(audio, [0.0, 0.5, -0.5, -1.0])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_float_wav_passes_through(tmp_path, dtype):
    x = np.array([0.0, 0.25, -0.75, 1.0], dtype=dtype)
    wavfile.write(tmp_path / "f.wav", 48000, x)
    audio, rate = load_wav(tmp_path / "f.wav")
    assert rate == 48000
    np.testing.assert_allclose(audio, x, atol=1e-7)


def test_multichannel_is_downmixed_by_mean(tmp_path):
    left = np.array([1000, -2000, 3000], dtype=np.int16)
    right = np.array([3000, 2000, -1000], dtype=np.int16)
    third = np.array([-1000, 0, 1000], dtype=np.int16)
    wavfile.write(tmp_path / "s.wav", 16000, np.stack([left, right, third], axis=1))
    audio, _ = load_wav(tmp_path / "s.wav")
    np.testing.assert_allclose(audio, (left + right + third) / 3 / 32768, atol=1e-7)


def test_save_then_load_round_trips_within_one_lsb(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.uniform(-0.9, 0.9, 5000).astype(np.float32)
    path = save_wav(tmp_path / "sub" / "r.wav", x, 22050)
    rate, raw = wavfile.read(path)
    assert rate == 22050 and raw.dtype == np.int16  # 16-bit PCM on disk
    audio, rate = load_wav(path)
    assert rate == 22050
    assert np.max(np.abs(audio - x)) <= 0.5 / 32768 + 1e-7


def test_save_clips_out_of_range_and_rejects_nan(tmp_path):
    save_wav(tmp_path / "c.wav", np.array([2.0, -3.0, 0.5]), 8000)
    audio, _ = load_wav(tmp_path / "c.wav")
    np.testing.assert_allclose(audio, [32767 / 32768, -1.0, 0.5])
    with pytest.raises(ValueError, match="NaN"):
        save_wav(tmp_path / "n.wav", np.array([0.0, np.nan]), 8000)


def test_missing_file_names_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nothere.wav"):
        load_wav(tmp_path / "nothere.wav")


def test_not_a_wav_names_the_file(tmp_path):
    (tmp_path / "text.wav").write_text("this is not audio at all")
    with pytest.raises(ValueError, match="text.wav"):
        load_wav(tmp_path / "text.wav")
    (tmp_path / "empty.wav").write_bytes(b"")
    with pytest.raises(ValueError, match="empty.wav"):
        load_wav(tmp_path / "empty.wav")


def test_truncated_wav_names_the_file(tmp_path):
    good = _pcm_wav_bytes(np.arange(1000) - 500, 16000, 16)
    (tmp_path / "cut_data.wav").write_bytes(good[: len(good) // 2])
    with pytest.raises(ValueError, match="cut_data.wav.*truncated"):
        load_wav(tmp_path / "cut_data.wav")
    (tmp_path / "cut_header.wav").write_bytes(good[:30])
    with pytest.raises(ValueError, match="cut_header.wav"):
        load_wav(tmp_path / "cut_header.wav")


def test_resampling_length_and_pitch():
    sr_in, sr_out = 22050, 16000
    t = np.arange(sr_in) / sr_in  # exactly one second
    tone = np.sin(2 * np.pi * 440.0 * t).astype(np.float32)
    out = resample_audio(tone, sr_in, sr_out)
    assert out.dtype == np.float32 and len(out) == sr_out
    spectrum = np.abs(np.fft.rfft(out * np.hanning(len(out))))
    assert np.argmax(spectrum) * sr_out / len(out) == pytest.approx(440.0, abs=1.0)
    assert np.sqrt(np.mean(out[1000:-1000] ** 2)) == pytest.approx(np.sqrt(0.5), rel=0.01)
    same = resample_audio(tone, sr_in, sr_in)
    np.testing.assert_array_equal(same, tone)
    with pytest.raises(ValueError):
        resample_audio(tone, 0, 16000)


def test_to_mono_shapes():
    assert to_mono(np.zeros(7)).shape == (7,)
    np.testing.assert_allclose(to_mono(np.array([[1.0, 3.0], [2.0, 4.0]])), [2.0, 3.0])
    with pytest.raises(ValueError, match="shape"):
        to_mono(np.zeros((2, 2, 2)))


def test_riff_without_fmt_chunk_is_a_clear_error(tmp_path):
    import struct

    path = tmp_path / "nofmt.wav"
    data = b"\x00\x00" * 10
    path.write_bytes(b"RIFF" + struct.pack("<I", 4 + 8 + len(data)) + b"WAVE" + b"data"
                     + struct.pack("<I", len(data)) + data)
    with pytest.raises(ValueError, match="nofmt.wav"):
        load_wav(path)


def test_read_wav_keeps_channels_and_to_int16_scales_by_full_scale(tmp_path):
    from talking_face_ros.speech.audio import read_wav, to_int16

    stereo = np.array([[0.5, -0.25], [-1.0, 0.0], [0.999, 0.1]], dtype=np.float32)
    wavfile.write(tmp_path / "f.wav", 8000, stereo)
    data, rate = read_wav(tmp_path / "f.wav")
    assert rate == 8000 and data.shape == (3, 2) and data.dtype == np.float32
    np.testing.assert_array_equal(to_int16(data, "f.wav"), [[16384, -8192], [-32768, 0], [32735, 3277]])
    u8 = np.array([0, 128, 255], dtype=np.uint8)
    wavfile.write(tmp_path / "u8.wav", 8000, u8)
    np.testing.assert_array_equal(to_int16(read_wav(tmp_path / "u8.wav")[0], "u8.wav")[:, 0], [-32768, 0, 32512])
    bad = np.array([0.0, np.nan], dtype=np.float32)
    wavfile.write(tmp_path / "nan.wav", 8000, bad)
    with pytest.raises(ValueError, match="NaN"):
        to_int16(read_wav(tmp_path / "nan.wav")[0], "nan.wav")
