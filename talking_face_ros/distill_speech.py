"""Train the causal speech encoder (``encoders/causal_speech.py``) to imitate Moonshine's features.

    talking-face distill-speech --corpus out/corpus-2h --out out/runs/causal_speech [--steps 3000]

The teacher's features come from the corpus' feature cache (Moonshine on the chunk plan of the
default config, at the motion frame rate), so the teacher never runs here. The student reads
each utterance from its first sample, as the live engine does after a flush; its 50 Hz frames
are mapped to the motion rate by the same linear interpolation as ``features.StreamingFeatures``
(frame g depicts 20 g + 17.5 ms), and the loss is the squared error to the teacher's features,
each channel standardised by its spread over the training split. Validation reports that error,
the cosine similarity and the relative error ||student - teacher|| / ||teacher|| on ``val``.

The folder ``--out`` gets the best weights by validation error (config.json +
model.safetensors, what ``CausalSpeechEncoder(model_path=...)`` loads), log.csv and log.png.
"""
from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import numpy as np

from .encoders.causal_speech import (
    FRAME_SPAN, FRAME_STRIDE, CausalSpeechConfig, build_network, save_network,
)

TEACHER_PLAN = {"chunk_s": 0.96, "left_s": 0.96, "right_s": 0.192}  # config/train_default.yaml's


def find_teacher_cache(corpus_dir: Path) -> Path:
    """The newest complete Moonshine feature cache of the corpus on the default chunk plan."""
    found = []
    for meta_path in (Path(corpus_dir) / "feature_cache").glob("*/meta.json"):
        try:
            meta = json.loads(meta_path.read_text())
        except (OSError, ValueError):
            continue
        if meta.get("complete") and meta.get("encoders", {}).get("speech", {}).get("kind") == "moonshine" \
                and meta.get("plan") == TEACHER_PLAN:
            found.append((meta_path.stat().st_mtime, meta_path.parent))
    if not found:
        raise FileNotFoundError(
            f"{corpus_dir}/feature_cache: no complete Moonshine cache on the plan {TEACHER_PLAN}; make one with "
            f"`talking-face train --config config/train_default.yaml --corpus {corpus_dir} --out RUN --stage features`")
    return max(found)[1]


class Utterances:
    """Audio and teacher features of one split, in memory."""

    def __init__(self, corpus, cache, split: str, *, limit: int | None = None):
        from .corpus.format import read_utterance

        us = corpus.split(split)
        if limit is not None:
            us = us[:limit]
        self.audio = [read_utterance(corpus.root / u.file)[0] for u in us]
        self.features = [cache.speech[u.id] for u in us]
        self.fps = corpus.fps

    def __len__(self):
        return len(self.audio)

    def batch(self, index, *, max_s: float):
        """Padded (audio (B, N), targets (B, T, D), frame mask (B, T), student frames per utterance)."""
        import torch

        pieces = []
        for i in index:
            frames = min(len(self.features[i]), int(max_s * self.fps))
            samples = min(len(self.audio[i]), int(math.ceil(frames / self.fps * 16000)))
            pieces.append((self.audio[i][:samples], self.features[i][:frames]))
        # Zeros after each utterance, as the engine's flush pads its last chunk.
        N = max(len(a) for a, _ in pieces) + FRAME_SPAN
        N = (N - FRAME_SPAN) // FRAME_STRIDE * FRAME_STRIDE + FRAME_SPAN
        T = max(len(f) for _, f in pieces)
        audio = torch.zeros(len(pieces), N)
        target = torch.zeros(len(pieces), T, pieces[0][1].shape[1])
        mask = torch.zeros(len(pieces), T, dtype=torch.bool)
        valid = []
        for b, (a, f) in enumerate(pieces):
            audio[b, :len(a)] = torch.from_numpy(a)
            target[b, :len(f)] = f.float()
            mask[b, :len(f)] = True
            valid.append(max(1, -(-len(a) // FRAME_STRIDE)))  # frames the live stream's chunks complete
        return audio, target, mask, torch.tensor(valid)


def to_motion_rate(feats, frames: int, valid, fps: float):
    """(B, G, D) student frames -> (B, frames, D) at ``fps``, as ``StreamingFeatures._emit`` maps them."""
    import torch

    offset = (FRAME_SPAN - 1) / 2.0 / 16000
    pos = (torch.arange(frames, dtype=torch.float64) / fps - offset) * (16000 / FRAME_STRIDE)
    last = (valid - 1).to(torch.float64)[:, None]
    pos = torch.minimum(pos.clamp_min(0.0)[None], last)  # (B, frames)
    lo = pos.floor().long()
    hi = torch.minimum(lo + 1, last.long())
    frac = (pos - lo).to(feats.dtype)[..., None]
    pick = lambda idx: feats.gather(1, idx[..., None].expand(-1, -1, feats.shape[2]))  # noqa: E731
    return pick(lo) * (1.0 - frac) + pick(hi) * frac


def set_normalisation(net, data: Utterances, *, sample: int = 300) -> None:
    import torch

    with torch.no_grad():
        mels = [net.log_mel(torch.from_numpy(a)[None])[0] for a in data.audio[:sample] if len(a) >= 400]
        m = torch.cat(mels)
        net.mel_mean.copy_(m.mean(0))
        net.mel_std.copy_(m.std(0).clamp_min(1e-3))
        f = torch.cat([x.float() for x in data.features])
        net.feature_mean.copy_(f.mean(0))
        net.feature_std.copy_(f.std(0).clamp_min(1e-3))


def loss_and_metrics(net, audio, target, mask, valid, fps):
    import torch
    import torch.nn.functional as F

    pred = to_motion_rate(net.standardized(audio), target.shape[1], valid, fps)
    goal = (target - net.feature_mean) / net.feature_std
    m = mask[..., None].to(pred.dtype)
    mse = ((pred - goal).square() * m).sum() / (m.sum() * pred.shape[2])
    with torch.no_grad():
        raw = pred * net.feature_std + net.feature_mean
        cos = F.cosine_similarity(raw, target, dim=-1)[mask].mean()
        rel = (raw - target)[mask].norm() / target[mask].norm()
    return mse, {"mse": float(mse.detach()), "cosine": float(cos), "relative": float(rel)}


def evaluate(net, data: Utterances, *, batch_size: int, max_s: float) -> dict[str, float]:
    import torch

    net.eval()
    totals, count = {}, 0
    with torch.no_grad():
        for s in range(0, len(data), batch_size):
            idx = list(range(s, min(len(data), s + batch_size)))
            audio, target, mask, valid = data.batch(idx, max_s=max_s)
            _, metrics = loss_and_metrics(net, audio, target, mask, valid, data.fps)
            n = int(mask.sum())
            for k, v in metrics.items():
                totals[k] = totals.get(k, 0.0) + v * n
            count += n
    net.train()
    return {k: v / count for k, v in totals.items()}


def distill(corpus_dir, out, *, steps: int = 3000, batch_size: int = 16, lr: float = 2e-3, warmup: int = 200,
            max_s: float = 6.0, eval_every: int = 500, log_every: int = 50, val_utterances: int = 200, threads: int = 1, seed: int = 0,
            config: CausalSpeechConfig | None = None, cache=None, progress: bool = True) -> dict:
    """Train; returns the best validation metrics (also in ``out``/config.json)."""
    import torch
    from tqdm import tqdm

    from .corpus.format import Corpus
    from .feature_cache import load_feature_cache
    from .train import Log, plot_log

    torch.set_num_threads(threads)
    torch.manual_seed(seed)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    corpus = Corpus(corpus_dir)
    cache_dir = Path(cache) if cache is not None else find_teacher_cache(corpus.root)
    wanted = [u.id for u in corpus.utterances if u.split in ("train", "val")]
    teacher = load_feature_cache(cache_dir, ids=wanted)
    train_data = Utterances(corpus, teacher, "train")
    val_data = Utterances(corpus, teacher, "val", limit=val_utterances)
    config = config or CausalSpeechConfig(feature_dim=teacher.speech_dim)
    net = build_network(config)
    set_normalisation(net, train_data)
    optimizer = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=0.01)
    log = Log(out / "log.csv", enabled=True)
    rng = np.random.default_rng(seed)
    best, started, running = None, time.monotonic(), {}
    bar = tqdm(range(1, steps + 1), desc="distill speech", disable=not progress)
    for step in bar:
        scale = min(1.0, step / warmup) * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * step / steps)))
        for group in optimizer.param_groups:
            group["lr"] = lr * scale
        idx = rng.choice(len(train_data), size=batch_size, replace=False)
        audio, target, mask, valid = train_data.batch(idx, max_s=max_s)
        loss, metrics = loss_and_metrics(net, audio, target, mask, valid, train_data.fps)
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
        optimizer.step()
        for k, v in metrics.items():
            running[k] = running.get(k, 0.0) + v
        if step % log_every == 0:
            log.write("distill", step, "train", {k: v / log_every for k, v in running.items()},
                      time.monotonic() - started)
            bar.set_postfix(mse=f"{running['mse'] / log_every:.3f}")
            running = {}
        if step % eval_every == 0 or step == steps:
            val = evaluate(net, val_data, batch_size=batch_size, max_s=max_s)
            log.write("distill", step, "val", val, time.monotonic() - started)
            plot_log(out / "log.csv", out / "log.png")
            if best is None or val["mse"] < best["mse"]:
                best = {**val, "step": step}
                save_network(net, out, info={"corpus": str(corpus_dir), "teacher_cache": str(cache_dir),
                                             "steps": steps, "best_step": step, "seed": seed,
                                             "val": {k: round(v, 5) for k, v in val.items()},
                                             "seconds": round(time.monotonic() - started)})
            tqdm.write(f"step {step}: val mse {val['mse']:.4f} cosine {val['cosine']:.4f} "
                       f"relative {val['relative']:.4f}")
    return best


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--corpus", required=True, type=Path)
    p.add_argument("--out", required=True, type=Path, help="folder for the weights, log.csv and log.png")
    p.add_argument("--teacher-cache", type=Path, default=None,
                   help="feature cache folder with the teacher's features (default: the corpus' newest "
                        "Moonshine cache on the default chunk plan)")
    p.add_argument("--steps", type=int, default=3000)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--dim", type=int, default=256, help="stem and GRU width")
    p.add_argument("--layers", type=int, default=2, help="GRU layers")
    p.add_argument("--eval-every", type=int, default=500)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-progress", action="store_true")


def run_from_args(args) -> int:
    for name in ("steps", "batch_size", "dim", "layers", "eval_every", "threads"):
        if getattr(args, name) < 1:
            raise ValueError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
    if not args.lr > 0:
        raise ValueError(f"--lr must be > 0, got {args.lr}")
    best = distill(args.corpus, args.out, steps=args.steps, batch_size=args.batch_size, lr=args.lr,
                   eval_every=args.eval_every, threads=args.threads, seed=args.seed,
                   config=None if (args.dim, args.layers) == (256, 2) else
                   CausalSpeechConfig(dim=args.dim, layers=args.layers),
                   cache=args.teacher_cache, progress=not args.no_progress)
    print(json.dumps({"best": best, "weights": str(args.out)}, indent=1))
    return 0
