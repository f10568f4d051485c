"""`evaluate` on real corpus motion: ground truth scores perfectly; degraded predictions do not."""
import json

import numpy as np
import pytest

from talking_face_ros import paths
from talking_face_ros.cli import main
from talking_face_ros.evaluation import evaluate, write_report
from talking_face_ros.frames_io import save_frames


def _write_predictions(corpus, folder, transform, *, samples=False):
    folder.mkdir(parents=True, exist_ok=True)
    for u in corpus.split("test"):
        bs = corpus.load(u).blendshapes
        pred = transform(bs)
        extra = {"samples": np.stack([pred, np.clip(pred + 0.02, 0, 1), np.clip(pred - 0.02, 0, 1)])} if samples else {}
        save_frames(folder / f"{u.id}.npz", np.arange(len(pred)) / corpus.fps, pred, **extra)


def test_ground_truth_is_perfect(small_corpus):
    r = evaluate(small_corpus, "gt", ict_path=paths.ict_rig_path(), progress=False)
    assert r["scored"] == 6 and not r["missing"] and not r["errors"]
    assert r["bs_lve"] == 0 and r["bs_mve"] == 0
    if paths.ict_rig_path() is not None:
        assert r["lve"] == 0 and r["mve"] == 0 and r["eve"] == 0
    assert r["bilabial_closure"] == 1.0
    assert abs(r["lag_frames_median"]) <= 1


def test_delayed_predictions_show_lag_and_error(small_corpus, tmp_path):
    delay = 3
    _write_predictions(small_corpus, tmp_path / "late", lambda bs: np.concatenate([np.repeat(bs[:1], delay, 0), bs[:-delay]]))
    r = evaluate(small_corpus, tmp_path / "late", ict_path=None, progress=False)
    assert r["bs_lve"] > 0.001
    assert 2 <= r["lag_frames_median"] <= 4
    assert r["bilabial_closure"] < 1.0


def test_sampling_metrics_and_report(small_corpus, tmp_path):
    _write_predictions(small_corpus, tmp_path / "p", lambda bs: bs, samples=True)
    (tmp_path / "p" / f"{small_corpus.split('test')[0].id}.npz").write_bytes(b"garbage")
    r = evaluate(small_corpus, tmp_path / "p", ict_path=paths.ict_rig_path(), progress=False)
    assert len(r["errors"]) == 1 and r["scored"] == 5
    assert r["bs_mee"] < 1e-4  # the mean of +-0.02 samples is the truth (but for clipping at 0)
    assert r["bs_ce"] == pytest.approx(0.0, abs=1e-6)  # one sample is exactly the truth
    assert r["bs_diversity"] > 0.01
    js, md = write_report(r, tmp_path / "report")
    assert json.loads(js.read_text())["scored"] == 5
    assert "bilabial closure rate" in md.read_text()
    assert list((tmp_path / "report").glob("lipgap_*.png"))


def test_cli_reports_missing_folder(small_corpus, tmp_path, capsys):
    assert main(["evaluate", "--corpus", str(small_corpus.root), "--pred", str(tmp_path / "nope"),
                 "--out", str(tmp_path / "r")]) == 2
    assert "no such prediction folder" in capsys.readouterr().err
