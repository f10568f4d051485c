"""The peer benchmark's models and script at tiny sizes, so that bench/peers.py cannot rot.

Behaviour only (frame counts, masks, the autoregressive prefix, the report files); the timings
themselves are the script's business, not the tests'.
"""
from __future__ import annotations

import importlib.util
import json
import math
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

BENCH = Path(__file__).resolve().parents[1] / "bench"
pytestmark = pytest.mark.usefixtures("one_torch_thread")  # conftest.py


def _load(name: str):
    if str(BENCH) not in sys.path:
        sys.path.insert(0, str(BENCH))
    spec = importlib.util.spec_from_file_location(f"bench_{name}", BENCH / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def pm():
    return _load("peer_models")


@pytest.mark.parametrize("name", ["lam", "faceformer", "emotalk"])
def test_peer_streams_and_offline_give_30_fps_of_52_weights(pm, name):
    model, make_stream = pm.build_peer(name, tiny=True)
    audio = np.random.default_rng(0).normal(0, 0.1, 32000).astype(np.float32)
    stream = make_stream()
    chunks = [stream.push(audio[i:i + 16000]) for i in (0, 16000)]
    assert [c.shape for c in chunks] == [(30, 52), (30, 52)]
    assert np.isfinite(np.concatenate(chunks)).all()
    short = stream.push(audio[:4000])  # a quarter second: 7.5 frames, rounded up
    assert short.shape == (8, 52)
    offline = model.animate(torch.from_numpy(audio)[None])
    assert tuple(offline.shape) == (60, 52) and torch.isfinite(offline).all()


def test_faceformer_stream_decodes_over_the_whole_growing_prefix(pm):
    model, make_stream = pm.build_peer("faceformer", tiny=True)
    stream = make_stream()
    audio = np.zeros(16000, np.float32)
    for pushes in (1, 2, 3):
        stream.push(audio)
        assert stream.prefix.shape[1] == 1 + 30 * pushes  # style + every frame so far, never cut
        assert stream.memory.shape[1] == 30 * pushes
    # Autoregression is real: the same memory with another start (speaker style) changes the frames.
    memory = torch.randn(1, 10, model.audio_map.out_features)
    a = model.decode(model.start("cpu", 0), memory, 10)[1]
    b = model.decode(model.start("cpu", 1), memory, 10)[1]
    assert not torch.allclose(a, b)


def test_periodic_bias_is_causal_and_steps_every_period(pm):
    bias = pm.periodic_bias(4, 70, 30)
    assert bias.shape == (4, 70, 70)
    assert torch.isinf(bias[:, 0, 1:]).all() and (bias[:, 0, 1:] < 0).all()  # no look ahead
    assert (bias.diagonal(dim1=1, dim2=2) == 0).all()
    row = bias[0, 69]
    assert (row[40:] == 0).all() and (row[10:40] == row[39]).all() and row[39] < 0 and row[9] < row[39]
    assert (bias[3, 69, :40] > bias[0, 69, :40]).all()  # later heads have gentler slopes
    mask = pm.diagonal_memory_mask(3, 5)
    assert mask.tolist() == [[False, True, True, True, True], [True, False, True, True, True],
                             [True, True, False, True, True]]


def test_windowed_stream_sees_only_its_window(pm):
    model, make_stream = pm.build_peer("lam", tiny=True)
    rng = np.random.default_rng(1)
    tail = rng.normal(0, 0.1, 40000).astype(np.float32)  # longer than the 34,133-sample window
    first, second = make_stream(), make_stream()
    first.push(rng.normal(0, 0.1, 16000).astype(np.float32))
    second.push(rng.normal(0, 0.1, 48000).astype(np.float32))
    np.testing.assert_allclose(first.push(tail), second.push(tail), atol=1e-5)


def test_script_writes_the_report_for_every_system(tmp_path):
    peers = _load("peers")
    out = tmp_path / "bench"
    systems = ["ours-default", "ours-w2v-clip", "lam", "faceformer", "emotalk"]
    assert peers.main(["--quick", "--tiny", "--in-process", "--seconds", "1", "--systems", ",".join(systems),
                       "--offline", "faceformer", "--small-chunk", "0.5", "--streams", "none", "--threads", "1",
                       "--stream-repeats", "2", "--no-profile", "--out", str(out)]) == 0
    report = json.loads((out / "peers.json").read_text())
    rows = {(r["system"], r["mode"], r.get("chunk_s")): r for r in report["results"]}
    assert not [r for r in report["results"] if "error" in r]
    for name in systems:
        row = rows[(name, "stream", 1.0)]
        assert abs(row["frames"] - 30) <= 1, (name, row["frames"])
        assert row["rtf"] > 0 and row["chunks"] == 1 and row["peak_rss_mb"] > 0 and row["params"] > 0
    assert rows[("ours-default", "stream", 0.5)]["chunks"] == 2
    own = rows[("ours-default", "stream", 0.96)]  # the model's own feature chunk (the bundle's plan)
    assert own["chunks"] == 2 and own["runs"] == 2  # medians of two runs, with their range
    assert own["rtf_range"][0] <= own["rtf"] <= own["rtf_range"][1]
    assert own["p95_range"][0] <= own["latency_ms"]["p95"] <= own["p95_range"][1]
    assert rows[("faceformer", "offline", None)]["frames"] == 30
    assert {c["what"].split(",")[0] for c in report["targets"]} == {
        "stream RTF", "p95 chunk latency ms (1 s chunks)", "p95 chunk latency ms (0.96 s chunks",
        "speed-up over LAM-style stream"}
    assert all(isinstance(c["met"], bool) for c in report["targets"])
    text = (out / "peers.md").read_text()
    assert all(f"| {name} |" in text for name in systems)
    assert math.isfinite(report["meta"]["wall_s"])


def test_stream_cap_reuses_the_shorter_run_and_refuses_faceformer(tmp_path):
    peers = _load("peers")
    out = tmp_path / "bench"
    assert peers.main(["--tiny", "--in-process", "--seconds", "1,2", "--systems", "lam", "--stream-cap", "lam=1",
                       "--offline", "none", "--streams", "none", "--threads", "1", "--no-profile",
                       "--out", str(out)]) == 0
    rows = {r["seconds"]: r for r in json.loads((out / "peers.json").read_text())["results"]}
    assert rows[2.0]["audio_s"] == 1.0 and rows[2.0]["same_run_as_s"] == 1.0
    assert "(first 1 s, the 1 s run)" in (out / "peers.md").read_text()
    with pytest.raises(SystemExit):
        peers.parse_args(["--stream-cap", "faceformer=10"])
