import numpy as np
import pytest

from talking_face_ros.arkit import ARKIT_NAMES
from talking_face_ros.frames_io import load_frames, save_frames


@pytest.mark.parametrize("suffix", [".npz", ".csv", ".json"])
def test_round_trip(tmp_path, suffix):
    rng = np.random.default_rng(0)
    w = rng.random((17, 52)).astype(np.float32)
    t = np.arange(17) / 30.0
    path = save_frames(tmp_path / f"f{suffix}", t, w)
    t2, w2, samples = load_frames(path)
    np.testing.assert_allclose(t2, t, atol=1e-6)
    np.testing.assert_allclose(w2, w, atol=1e-5)
    assert samples is None


def test_csv_header_is_time_then_arkit_names(tmp_path):
    path = save_frames(tmp_path / "f.csv", [0.0], np.zeros((1, 52)))
    assert path.read_text().splitlines()[0].split(",") == ["time", *ARKIT_NAMES]


def test_csv_columns_in_other_order_are_mapped(tmp_path):
    names = list(reversed(ARKIT_NAMES))
    row = [0.0] + [ARKIT_NAMES.index(n) / 100 for n in names]
    path = tmp_path / "rev.csv"
    path.write_text(",".join(["time", *names]) + "\n" + ",".join(map(str, row)) + "\n")
    _, w, _ = load_frames(path)
    np.testing.assert_allclose(w[0], np.arange(52) / 100, atol=1e-6)


def test_npz_samples_kept(tmp_path):
    s = np.random.default_rng(1).random((3, 5, 52))
    path = save_frames(tmp_path / "s.npz", np.arange(5) / 30, s[0], samples=s)
    _, _, samples = load_frames(path)
    assert samples.shape == (3, 5, 52)


def test_bad_files_name_the_problem(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("time," + ",".join(ARKIT_NAMES) + "\n0.0,1,2\n")
    with pytest.raises(ValueError, match="line 2"):
        load_frames(bad)
    nan = tmp_path / "nan.csv"
    nan.write_text("time," + ",".join(ARKIT_NAMES) + "\n0.0," + ",".join(["nan"] * 52) + "\n")
    with pytest.raises(ValueError, match="NaN"):
        load_frames(nan)
    with pytest.raises(ValueError, match="unknown frame format"):
        save_frames(tmp_path / "x.txt", [0.0], np.zeros((1, 52)))
    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"not a zip file at all")
    with pytest.raises(ValueError, match="unreadable"):
        load_frames(junk)
    with pytest.raises(FileNotFoundError):
        load_frames(tmp_path / "missing.csv")
