"""Distributed training: two CPU processes (gloo) on the small corpus end with identical weights."""
from __future__ import annotations

import os
import socket

import pytest
import torch
import torch.multiprocessing as mp
from safetensors.torch import load_file, save_file

from test_train import tiny_setup

STEPS = 6


def _worker(rank: int, world: int, port: int, cfg: dict, corpus: str, cache: str, out: str) -> None:
    os.environ.update(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(world),
                      MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    from talking_face_ros.train import train

    result = train(cfg, corpus, out, device="cpu", cache_dir=cache, progress=False)
    state = {k: v.detach().contiguous() for k, v in result.model.state_dict().items()}
    save_file(state, os.path.join(out, f"rank{rank}.safetensors"))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory, small_corpus):
    return tiny_setup(tmp_path_factory, small_corpus)


def test_two_processes_train_in_step_and_rank_zero_writes_the_run(tiny, tmp_path):
    from talking_face_ros.bundle import load_bundle
    from talking_face_ros.train import read_log

    stage = dict(tiny["cfg"]["stage1"], steps=STEPS, eval_every=STEPS, log_every=2)
    cfg = dict(tiny["cfg"], stage1=stage, stage2=dict(stage))
    out = tmp_path / "ddp"
    args = (2, _free_port(), cfg, str(tiny["corpus"].root), str(tiny["cache"]), str(out))
    mp.start_processes(_worker, args=args, nprocs=2, start_method="spawn")

    r0, r1 = load_file(str(out / "rank0.safetensors")), load_file(str(out / "rank1.safetensors"))
    assert r0.keys() == r1.keys()
    # every weight and buffer, the frozen VQ-VAE's EMA codebooks included, is the same on both ranks
    assert [k for k in r0 if not torch.equal(r0[k], r1[k])] == []
    # ... including the codebooks that stage 1 started from rank 0's data and kept in sync by EMA
    assert bool(r0["vqvae.vq_low.initialized"]) and bool(r0["vqvae.vq_high.initialized"])

    rows = read_log(out / "log.csv")  # only rank 0 writes: one row per (stage, step, split, metric)
    keys = [(r["stage"], r["step"], r["split"], r["metric"]) for r in rows]
    assert len(keys) == len(set(keys))
    assert {("stage1", str(STEPS), "val", "lve_bs"), ("stage2", str(STEPS), "val", "closure")} <= set(keys)
    bundle = load_bundle(out / "bundle", device="cpu")
    final = bundle.model.state_dict()
    assert all(torch.equal(final[k], r0[k]) for k in r0)
