"""Train the talking-face models from a corpus and a YAML config; the result is a model bundle.

    talking-face train --config config/train_default.yaml --corpus out/corpus-2h --out runs/default
    torchrun --nproc_per_node=2 -m talking_face_ros.train --config ... --corpus ... --out ...
    (--stage features: only fill the feature cache; --resume: continue after an interruption)

Stages (``model: predictor``, the default): stage 1 trains the hierarchical motion VQ-VAE on
motion alone; stage 2 freezes it and trains the code predictor from speech features to its
codes. A predictor whose refine head has a speech branch (``predictor.refine_branch_layers``)
has a stage 3: everything frozen but the refine head and its branch, trained on the codes the
predictor draws at inference. ``model: regression`` has one stage, the direct-regression
baseline. The run folder::

    config.yaml          the config as run (with --set overrides), read back by --resume
    run.json             corpus and feature-cache folders of the run
    log.csv              stage, step, split (train/val), metric, value, seconds: one row each
    curves.png           the log drawn, redrawn at each validation
    stage1/ stage2/ ...  last/: the state to resume from (weights, optimiser, step);
                         best.safetensors: the weights of the lowest val loss (best_metric) so far;
                         model.safetensors + done.json: the stage's result (best or last weights)
    bundle/              bundle.json + model.safetensors (see bundle.py), written at the end

Determinism: a batch, its crops and every random draw of a step (dropouts, code noise, dead-code
restarts) depend only on (seed, stage, step, rank): each step reseeds torch. So a resumed run
repeats the losses of an uninterrupted one exactly, without RNG state in the checkpoint.

Distributed: under torchrun each rank takes every world-th example of the global batch and
DistributedDataParallel averages gradients; the VQ codebooks are synchronised by the quantiser
itself (``model/quantizer.py``). Rank 0 validates, logs and writes files.
"""
from __future__ import annotations

import argparse
import copy
import csv
import hashlib
import inspect
import json
import math
import os
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from torch import nn

from .emotions import EMOTION_INDEX
from .features import ChunkPlan

MODEL_KINDS = ("predictor", "regression")
STAGE_DEFAULTS = {
    "steps": 1000,  # optimiser steps
    "batch_size": 16,  # utterances per step (over all ranks)
    "lr": 1.0e-3,  # peak learning rate (AdamW)
    "min_lr_ratio": 0.05,  # the cosine decay ends at lr * this
    "warmup": 100,  # steps of linear warm-up
    "weight_decay": 0.01,
    "betas": [0.9, 0.99],
    "grad_clip": 1.0,  # max global gradient norm (0: off)
    "crop_s": 6.0,  # longer utterances are cut to a random window of this length
    "bucket": 8,  # batches per length-sorted group (less padding)
    "log_every": 25,  # steps between train-loss rows in log.csv
    "eval_every": 500,  # steps between validations (and at the last step)
    "checkpoint_every": 500,  # steps between saved states
    "keep_best": True,  # the stage's result is the weights of its lowest val loss, not its last step
    "best_metric": "loss",  # the validation figure keep_best minimises ("loss", or e.g. "lve_bs": lip error)
}
TOP_DEFAULTS = {
    "seed": 0,
    "threads": None,  # torch intra-op threads; None: one per core
    "encoders": {"speech": {"kind": "moonshine"}, "text": {"kind": "minilm"}},
    "plan": {},  # features.ChunkPlan fields
    "feature_workers": 2,  # processes extracting speech features for the cache
    "default_emotion": "neutral",  # bundle.json: the emotion text when none is given
    "model": "predictor",  # "predictor" (VQ-VAE, then code predictor) or "regression"
    "vqvae": {},  # model.config.VQVAEConfig fields
    "predictor": {},  # model.config.PredictorConfig fields
    "regression": {},  # model.config.RegressionConfig fields
    "stage1": {},  # STAGE_DEFAULTS fields for the VQ-VAE (or the regression baseline)
    "stage2": {},  # ... for the code predictor
    "stage3": {},  # ... for the refine head and its speech branch (predictor.refine_branch_layers > 0)
    "eval": {"utterances": 20},  # val utterances decoded for the metrics (LVE, closure)
    "bundle_dtype": "float32",  # "float16" halves the bundle file
    # A regression run (its folder) trained with the refine branch's network: stage 3 starts the
    # branch from its weights instead of at random (scripts/train_default.sh trains it beside stages 1-2).
    "branch_init": None,
}
# What a new stage 2 on a finished stage 1 (--stage 2) may change; the rest shaped stage 1.
STAGE2_FREE = ("stage2", "stage3", "predictor", "eval", "threads", "feature_workers", "default_emotion",
               "bundle_dtype", "branch_init")
# ... and a new stage 3 on a finished stage 2 (--stage 3): of the predictor, only the branch.
STAGE3_FREE = ("stage3", "eval", "threads", "feature_workers", "default_emotion", "bundle_dtype", "branch_init")
STAGE3_PREDICTOR_FREE = ("refine_branch_layers", "refine_branch_dim", "refine_temperature")
FILLED_BY_DATA = ("num_speakers", "speech_dim", "text_dim")  # set from the corpus and the encoders


# ---------------------------------------------------------------------------------------------
# Config


def load_config(path, overrides=()) -> dict:
    """The YAML config at ``path`` with ``key.sub=value`` overrides, checked and with defaults filled.

    A config may start from another: ``base: train_default.yaml`` (relative to the file) reads
    that one first; each section given here then replaces the base's keys one by one (for
    ``encoders``, the speech / text parts as a whole), so an ablation states only what differs.
    """
    import yaml

    path = Path(path)
    cfg = _read_yaml(path)
    for item in overrides:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ValueError(f"--set {item!r}: expected KEY=VALUE, e.g. stage1.steps=100")
        node = cfg
        *parents, leaf = key.split(".")
        for p in parents:
            if node.get(p) is None:  # absent, or an empty section in the YAML
                node[p] = {}
            node = node[p]
            if not isinstance(node, dict):
                raise ValueError(f"--set {item!r}: {p} is not a section")
        node[leaf] = yaml.safe_load(value)
    return check_config(cfg, where=str(path))


def _read_yaml(path: Path, seen=()) -> dict:
    import yaml

    if not path.is_file():
        raise FileNotFoundError(f"no config file {path}")
    if path.resolve() in seen:
        raise ValueError(f"{path}: 'base' configs form a loop")
    try:
        cfg = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ValueError(f"{path}: not valid YAML ({exc})") from None
    if not isinstance(cfg, dict):
        raise ValueError(f"{path}: expected a mapping at the top level")
    base = cfg.pop("base", None)
    if base is None:
        return cfg
    merged = _read_yaml(path.parent / base, seen + (path.resolve(),))
    for key, value in cfg.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = {**merged[key], **value}
        else:
            merged[key] = value
    return merged


def check_config(cfg: dict, *, where: str = "config") -> dict:
    """Defaults filled in and every section validated; ValueError naming the bad key."""
    from .model.config import PredictorConfig, RegressionConfig, VQVAEConfig

    unknown = sorted(set(cfg) - set(TOP_DEFAULTS))
    if unknown:
        raise ValueError(f"{where}: unknown key(s) {unknown}; known: {sorted(TOP_DEFAULTS)}")
    out = copy.deepcopy(TOP_DEFAULTS)
    out.update(copy.deepcopy(cfg))
    out["eval"] = {**TOP_DEFAULTS["eval"], **(out["eval"] or {})}
    if out["model"] not in MODEL_KINDS:
        raise ValueError(f"{where}: model must be one of {MODEL_KINDS}, got {out['model']!r}")
    if out["bundle_dtype"] not in ("float32", "float16"):
        raise ValueError(f"{where}: bundle_dtype must be 'float32' or 'float16', got {out['bundle_dtype']!r}")
    for stage in ("stage1", "stage2", "stage3"):
        section = out[stage] or {}
        bad = sorted(set(section) - set(STAGE_DEFAULTS))
        if bad:
            raise ValueError(f"{where}: {stage}: unknown key(s) {bad}; known: {sorted(STAGE_DEFAULTS)}")
        out[stage] = {**STAGE_DEFAULTS, **section}
        for key in ("steps", "batch_size", "log_every", "eval_every", "checkpoint_every", "bucket"):
            value = out[stage][key]
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{where}: {stage}.{key} must be an integer >= 1, got {value!r}")
        if not isinstance(out[stage]["keep_best"], bool):
            raise ValueError(f"{where}: {stage}.keep_best must be true or false")
        if not isinstance(out[stage]["best_metric"], str) or not out[stage]["best_metric"]:
            raise ValueError(f"{where}: {stage}.best_metric must be the name of a validation figure, "
                             f"got {out[stage]['best_metric']!r}")
    for name, cls in (("vqvae", VQVAEConfig), ("predictor", PredictorConfig), ("regression", RegressionConfig)):
        section = out[name] or {}
        fixed = sorted(set(section) & set(FILLED_BY_DATA))
        if fixed:
            raise ValueError(f"{where}: {name}.{fixed[0]} is set from the corpus and encoders; remove it")
        try:
            cls.from_dict(section)
        except ValueError as exc:
            raise ValueError(f"{where}: {name}: {exc}") from None
        out[name] = section
    try:
        ChunkPlan.from_dict(out["plan"])
    except (ValueError, TypeError) as exc:
        raise ValueError(f"{where}: plan: {exc}") from None
    if not isinstance(out["eval"], dict) or set(out["eval"]) - {"utterances"}:
        raise ValueError(f"{where}: eval takes only 'utterances'")
    if out["threads"] is not None and (not isinstance(out["threads"], int) or out["threads"] < 1):
        raise ValueError(f"{where}: threads must be an integer >= 1 or null, got {out['threads']!r}")
    return out


def _with_model_defaults(cfg: dict) -> dict:
    """``cfg`` with every model field filled in, so that a field added later with its default
    value compares equal to a config written before it existed."""
    import dataclasses

    from .model.config import PredictorConfig, RegressionConfig, VQVAEConfig

    out = dict(cfg)
    for name, cls in (("vqvae", VQVAEConfig), ("predictor", PredictorConfig), ("regression", RegressionConfig)):
        defaults = {f.name: f.default for f in dataclasses.fields(cls) if f.name not in FILLED_BY_DATA}
        out[name] = {**defaults, **(cfg.get(name) or {})}
    return out


def stages_of(cfg: dict) -> list[str]:
    """Stage kinds in order: what stage1 / stage2 / stage3 train."""
    if cfg["model"] != "predictor":
        return ["regression"]
    return ["vqvae", "predictor"] + (["refine"] if (cfg["predictor"] or {}).get("refine_branch_layers") else [])


# ---------------------------------------------------------------------------------------------
# Data: the whole corpus in memory (2 h = 216k frames: 45 MB of motion, 180 MB of fp16 features)


@dataclass
class Example:
    id: str
    motion: torch.Tensor  # (T, 52) float32
    speech: torch.Tensor  # (T, speech_dim) float16
    text: int  # row of the text-embedding table
    identity: int  # 0 = unknown speaker (every val/test voice), 1.. = training voices
    emotion: int  # class of emotions.EMOTIONS
    phonemes: list | None = None  # only for the utterances the metrics decode


class Data:
    """Utterances per split plus the identity and text tables."""

    def __init__(self, corpus, cache, *, metric_utterances: int):
        from .corpus.format import read_utterance

        self.fps = corpus.fps
        train_voices = sorted({u.voice_id for u in corpus.split("train")})
        self.identities = ["default", *train_voices]
        row = {v: i + 1 for i, v in enumerate(train_voices)}
        text_row = cache.text_index()
        self.text_table = cache.text_embeddings
        self.splits: dict[str, list[Example]] = {"train": [], "val": []}
        val = corpus.split("val")
        pick = {val[i].id for i in _spread(len(val), metric_utterances)}
        for split in self.splits:
            for u in corpus.split(split):
                _, motion, phonemes = read_utterance(corpus.root / u.file)
                speech = cache.speech[u.id]
                if len(speech) != len(motion):
                    raise ValueError(f"{cache.folder}: features of {u.id} have {len(speech)} frames, "
                                     f"the motion {len(motion)}; delete the cache folder and rerun")
                self.splits[split].append(Example(
                    id=u.id, motion=torch.from_numpy(motion), speech=speech, text=text_row[u.emotion_text],
                    identity=row.get(u.voice_id, 0), emotion=EMOTION_INDEX[u.emotion],
                    phonemes=phonemes if u.id in pick else None))
        if not self.splits["train"]:
            raise ValueError(f"{corpus.root}: the corpus has no train utterances")
        self.metric_examples = [e for e in self.splits["val"] if e.phonemes is not None]

    def collate(self, examples: list[Example], crops: list[int], length: int) -> dict[str, torch.Tensor]:
        """Padded batch: each example from frame ``crops[i]`` for at most ``length`` frames."""
        pieces = [(e.motion[c:c + length], e.speech[c:c + length]) for e, c in zip(examples, crops)]
        T = max(len(m) for m, _ in pieces)
        B = len(examples)
        motion = torch.zeros(B, T, pieces[0][0].shape[1])
        speech = torch.zeros(B, T, pieces[0][1].shape[1])
        mask = torch.zeros(B, T, dtype=torch.bool)
        for i, (m, s) in enumerate(pieces):
            motion[i, :len(m)] = m
            speech[i, :len(s)] = s.float()
            mask[i, :len(m)] = True
        return {"motion": motion, "speech": speech, "mask": mask,
                "identity": torch.tensor([e.identity for e in examples]),
                "text": self.text_table[[e.text for e in examples]],
                "emotion": torch.tensor([e.emotion for e in examples])}


class BatchPlan:
    """Which examples and crops make global batch ``step``: a pure function of (seed, stage, step).

    Each epoch is a seeded permutation, cut into groups of ``bucket`` batches that are sorted by
    length (utterances of similar length share a batch: less padding), in shuffled batch order.
    """

    def __init__(self, examples: list[Example], *, batch_size: int, bucket: int, seed: int, stage: str,
                 crop_frames: int, align: int):
        if batch_size > len(examples):
            raise ValueError(f"batch_size {batch_size} is larger than the {len(examples)} train utterances")
        self.examples, self.batch_size, self.bucket = examples, batch_size, bucket
        self.seed, self.stage, self.crop, self.align = seed, stage, crop_frames, align
        self.per_epoch = len(examples) // batch_size
        self._epoch, self._batches = None, None

    def indices(self, step: int) -> list[int]:
        epoch, k = divmod(step, self.per_epoch)
        if epoch != self._epoch:
            g = torch.Generator().manual_seed(_seed(self.seed, self.stage, "epoch", epoch))
            order = torch.randperm(len(self.examples), generator=g).tolist()
            size = self.batch_size * self.bucket
            batches = []
            used = self.per_epoch * self.batch_size
            for start in range(0, used, size):
                group = sorted(order[start:min(start + size, used)], key=lambda i: len(self.examples[i].motion))
                batches += [group[j:j + self.batch_size] for j in range(0, len(group), self.batch_size)]
            self._batches = [batches[i] for i in torch.randperm(len(batches), generator=g).tolist()]
            self._epoch = epoch
        return self._batches[k]

    def crops(self, step: int, idx: list[int]) -> list[int]:
        """Crop starts on the coarsest code grid, where the model's codes are anchored."""
        g = torch.Generator().manual_seed(_seed(self.seed, self.stage, "crop", step))
        out = []
        for i in idx:
            slack = (len(self.examples[i].motion) - self.crop) // self.align
            out.append(int(torch.randint(slack + 1, (1,), generator=g)) * self.align if slack > 0 else 0)
        return out


def _spread(n: int, k: int) -> list[int]:
    """``k`` indices spread evenly over ``range(n)`` (all of them when n <= k)."""
    if n <= k:
        return list(range(n))
    return sorted({int(i * n / k) for i in range(k)})


def _seed(*parts) -> int:
    return int.from_bytes(hashlib.sha256(repr(parts).encode()).digest()[:7], "little")


# ---------------------------------------------------------------------------------------------
# Models and one training step


def build_model(cfg: dict, kind: str, *, num_speakers: int, speech_dim: int, text_dim: int, vqvae=None):
    from .model import CodePredictor, HierarchicalMotionVQVAE, RegressionBaseline
    from .model.config import PredictorConfig, RegressionConfig, VQVAEConfig

    if kind == "vqvae":
        return HierarchicalMotionVQVAE(VQVAEConfig(**cfg["vqvae"], num_speakers=num_speakers, text_dim=text_dim))
    if kind in ("predictor", "refine"):
        # "refine": ``vqvae`` is stage 2's predictor, whose weights the new one starts from
        fields = dict(cfg["predictor"], num_speakers=num_speakers, speech_dim=speech_dim, text_dim=text_dim)
        if kind == "predictor":
            fields["refine_branch_layers"] = 0  # stage 3 adds the speech branch and its gate
            return CodePredictor(PredictorConfig(**fields), vqvae)
        model = CodePredictor(PredictorConfig(**fields), vqvae.vqvae)
        missing, unexpected = model.load_state_dict(vqvae.state_dict(), strict=False)
        new = [k for k in missing if not k.startswith(("refine_branch.", "refine_branch_in.", "refine_gate."))]
        if unexpected or new:
            raise ValueError(f"stage 3: stage 2's predictor does not fit the config (missing {new}, "
                             f"unexpected {unexpected})")
        if cfg["branch_init"] and model.refine_branch is not None:
            _init_branch(model.refine_branch, Path(cfg["branch_init"]))
        model.requires_grad_(False)
        for module in model.refine_modules():
            module.requires_grad_(True)
        return model
    return RegressionBaseline(RegressionConfig(**cfg["regression"], num_speakers=num_speakers,
                                               speech_dim=speech_dim, text_dim=text_dim))


def _init_branch(branch, folder: Path) -> None:
    """Load the weights of a finished regression run into the refine head's speech branch."""
    from .model.checkpoint import load_model

    path = folder / "stage1" / "model.safetensors"
    if not (folder / "stage1" / "done.json").is_file():
        raise ValueError(f"branch_init: {folder} holds no finished regression run ({path} missing); train it "
                         "first with config/train_default_branch.yaml (scripts/train_default.sh does)")
    trained = load_model(path, device="cpu")
    loss_only = {"lip_weight", "velocity_weight", "gap_weight", "closed_weight"}
    mine = {k: v for k, v in branch.config.to_dict().items() if k not in loss_only}
    theirs = {k: v for k, v in trained.config.to_dict().items() if k not in loss_only}
    if type(trained).__name__ != "RegressionBaseline" or mine != theirs:
        diff = sorted(k for k in mine if mine[k] != theirs.get(k))
        raise ValueError(f"branch_init: {path} is not a network like the refine branch (differs in {diff})")
    branch.load_state_dict(trained.state_dict())


def forward(model, kind: str, batch: dict) -> dict:
    """The model's training forward on a batch: a dict of scalar tensors with ``loss``."""
    common = dict(mask=batch["mask"], identity=batch["identity"], text=batch["text"])
    if kind == "vqvae":
        return model(batch["motion"], emotion=batch["emotion"], **common)
    if kind == "refine":
        inner = model.module if isinstance(model, nn.parallel.DistributedDataParallel) else model
        return inner.refine_forward(batch["speech"], motion=batch["motion"], **common)
    return model(batch["speech"], motion=batch["motion"], **common)


def learning_rate(step: int, s: dict) -> float:
    """Linear warm-up, then cosine decay from ``lr`` to ``lr * min_lr_ratio`` at the last step."""
    if step < s["warmup"]:
        return s["lr"] * (step + 1) / s["warmup"]
    progress = min(1.0, (step - s["warmup"]) / max(1, s["steps"] - s["warmup"]))
    return s["lr"] * (s["min_lr_ratio"] + (1 - s["min_lr_ratio"]) * 0.5 * (1 + math.cos(math.pi * progress)))


# ---------------------------------------------------------------------------------------------
# Validation: losses on the val split and real metrics on a few decoded val utterances


@torch.no_grad()
def evaluate(model, kind: str, data: Data, s: dict, device) -> dict[str, float]:
    from .metrics.blendshape import lve, mve
    from .metrics.lipsync import bilabial_closure_rate

    was_training = model.training
    model.eval()
    crop = round(s["crop_s"] * data.fps)
    val = sorted(data.splits["val"], key=lambda e: len(e.motion))
    sums, frames = {}, 0
    for i in range(0, len(val), s["batch_size"]):
        part = val[i:i + s["batch_size"]]
        batch = _to(data.collate(part, [0] * len(part), crop), device)
        n = int(batch["mask"].sum())
        for k, v in forward(model, kind, batch).items():
            sums[k] = sums.get(k, 0.0) + float(v) * n
        frames += n
    out = {k: v / max(frames, 1) for k, v in sums.items()}

    lves, mves, closed, total, closed_gt, total_gt = [], [], 0, 0, 0, 0  # closures pooled over utterances
    for e in data.metric_examples:
        text = data.text_table[e.text].to(device)
        if kind == "vqvae":
            pred = model.reconstruct(e.motion[None].to(device), identity=torch.zeros(1, dtype=torch.long,
                                     device=device), text=text[None])[0]
        else:
            pred = model.predict(e.speech.float().to(device), text, 0)
        pred, gt = pred.cpu().numpy(), e.motion.numpy()
        lves.append(lve(pred, gt))
        mves.append(mve(pred, gt))
        r = bilabial_closure_rate(pred, data.fps, e.phonemes)
        r_gt = bilabial_closure_rate(gt, data.fps, e.phonemes)
        closed, total = closed + r.closed, total + r.total
        closed_gt, total_gt = closed_gt + r_gt.closed, total_gt + r_gt.total
    if data.metric_examples:
        out["lve_bs"] = float(np.mean(lves))
        out["mve_bs"] = float(np.mean(mves))
        out["closure"] = closed / total if total else math.nan
        out["closure_gt"] = closed_gt / total_gt if total_gt else math.nan
    model.train(was_training)
    return out


def _to(batch: dict, device) -> dict:
    return {k: v.to(device) for k, v in batch.items()}


# ---------------------------------------------------------------------------------------------
# Log and plot


class Log:
    """log.csv in long form (one value per row), so stages with different metrics share one file."""

    FIELDS = ("stage", "step", "split", "metric", "value", "seconds")

    def __init__(self, path: Path, *, enabled: bool):
        self.path, self.enabled = path, enabled
        if enabled and not path.is_file():
            with path.open("w", newline="") as f:
                csv.writer(f).writerow(self.FIELDS)

    def write(self, stage: str, step: int, split: str, values: dict[str, float], seconds: float):
        """``seconds``: time spent in the stage so far (summed over resumed runs)."""
        if not self.enabled:
            return
        t = round(seconds, 2)
        with self.path.open("a", newline="") as f:
            w = csv.writer(f)
            for k, v in values.items():
                w.writerow((stage, step, split, k, repr(float(v)), t))

    def truncate_after(self, stage: str, step: int) -> None:
        """Drop rows of ``stage`` after ``step`` (written after the state a resumed run starts from)."""
        if not self.enabled or not self.path.is_file():
            return
        rows = read_log(self.path)
        keep = [r for r in rows if not (r["stage"] == stage and int(r["step"]) > step)]
        with self.path.open("w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=self.FIELDS)
            w.writeheader()
            w.writerows(keep)


def read_log(path) -> list[dict]:
    with Path(path).open(newline="") as f:
        return list(csv.DictReader(f))


def plot_log(csv_path, png_path) -> None:
    """One panel per (stage, metric): train (blue) and val (orange, dots) against the step.

    The ground truth's closure rate is drawn as a dashed line in the closure panel; metrics that
    never leave 0 (unused loss terms) get no panel. No per-panel legends or tight_layout: they
    take most of matplotlib's time with 30 panels.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    series: dict[tuple, dict[str, list]] = {}
    for r in read_log(csv_path):
        d = series.setdefault((r["stage"], r["metric"]), {})
        d.setdefault(r["split"], []).append((int(r["step"]), float(r["value"])))
    reference = {stage: d["val"] for (stage, metric), d in series.items() if metric == "closure_gt"}
    panels = [(key, d) for key, d in series.items()
              if key[1] not in ("lr", "closure_gt") and any(v != 0 for pts in d.values() for _, v in pts)]
    if not panels:
        return
    cols = 5
    rows = -(-len(panels) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.0 * cols, 2.2 * rows), squeeze=False)
    for ax, ((stage, metric), d) in zip(axes.flat, panels):
        for split, color in (("train", "tab:blue"), ("val", "tab:orange")):
            if split in d:
                x, y = zip(*d[split])
                ax.plot(x, y, color=color, lw=1, marker="." if split == "val" else None)
        if metric == "closure" and stage in reference:
            x, y = zip(*reference[stage])
            ax.plot(x, y, color="gray", lw=1, ls="--")
        ax.set_title(f"{stage}: {metric}", fontsize=8)
        ax.tick_params(labelsize=6)
    for ax in list(axes.flat)[len(panels):]:
        ax.axis("off")
    fig.suptitle("blue: train (mean over log_every steps), orange: val, dashed: ground truth", fontsize=9,
                 y=1 - 0.1 / (2.2 * rows))
    fig.subplots_adjust(left=0.05, right=0.98, bottom=0.05, top=1 - 0.7 / (2.2 * rows), hspace=0.45, wspace=0.3)
    tmp = Path(png_path).with_suffix(".tmp.png")
    fig.savefig(tmp, dpi=72)
    plt.close(fig)
    os.replace(tmp, png_path)


# ---------------------------------------------------------------------------------------------
# Resumable state: weights via model.checkpoint, optimiser tensors via safetensors, rest in JSON


def save_state(folder: Path, model, optimizer, info: dict) -> None:
    """Write ``folder``/last/ as a whole: the previous state stays until the new one is complete."""
    from safetensors.torch import save_file

    from .model.checkpoint import save_model

    tmp, last, old = folder / "last.tmp", folder / "last", folder / "last.old"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    save_model(model, tmp / "model.safetensors")
    sd = optimizer.state_dict()
    tensors = {f"{i}.{k}": v.detach().cpu().contiguous() for i, st in sd["state"].items() for k, v in st.items()}
    save_file(tensors, str(tmp / "optimizer.safetensors"),
              metadata={"param_groups": json.dumps(sd["param_groups"])})
    (tmp / "state.json").write_text(json.dumps(info, indent=1))
    if last.exists():
        shutil.rmtree(old, ignore_errors=True)
        last.rename(old)
    tmp.rename(last)
    shutil.rmtree(old, ignore_errors=True)


def load_state(folder: Path) -> Path | None:
    """The folder of the newest complete saved state, or None."""
    for name in ("last", "last.old"):
        if (folder / name / "state.json").is_file():
            return folder / name
    return None


def load_optimizer(path: Path, optimizer) -> None:
    from safetensors import safe_open

    with safe_open(str(path / "optimizer.safetensors"), framework="pt") as f:
        groups = json.loads(f.metadata()["param_groups"])
        state: dict = {}
        for key in f.keys():
            i, name = key.split(".", 1)
            state.setdefault(int(i), {})[name] = f.get_tensor(key)
    device = next(p for g in optimizer.param_groups for p in g["params"]).device
    state = {i: {k: (v if k == "step" else v.to(device)) for k, v in st.items()} for i, st in state.items()}
    optimizer.load_state_dict({"state": state, "param_groups": groups})


# ---------------------------------------------------------------------------------------------
# One stage


@dataclass
class Context:
    cfg: dict
    out: Path
    data: Data
    device: torch.device
    rank: int
    world: int
    progress: bool
    log: Log
    interrupt_at: tuple[int, int] | None  # (stage number, step): stop there with the state saved


def train_stage(ctx: Context, number: int, kind: str, *, resume: bool, vqvae=None):
    """Train stage ``number`` (1, 2 or 3) of kind vqvae / predictor / refine / regression; returns the model.

    Returns None when interrupted by ``ctx.interrupt_at`` (the state is saved).
    """
    from tqdm import tqdm

    from .model.checkpoint import load_model, save_model

    s, cfg, data = ctx.cfg[f"stage{number}"], ctx.cfg, ctx.data
    folder = ctx.out / f"stage{number}"
    name = f"stage{number}"
    if (folder / "model.safetensors").is_file() and (folder / "done.json").is_file():
        return load_model(folder / "model.safetensors", device=ctx.device)

    if ctx.rank == 0:
        folder.mkdir(parents=True, exist_ok=True)
    dims = dict(num_speakers=len(data.identities) - 1, speech_dim=data.splits["train"][0].speech.shape[1],
                text_dim=data.text_table.shape[1])
    torch.manual_seed(_seed(cfg["seed"], name, "init"))
    model = build_model(cfg, kind, vqvae=vqvae, **dims).to(ctx.device)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=s["lr"], betas=tuple(s["betas"]), weight_decay=s["weight_decay"])
    start, offset_s, best = 0, 0.0, {"value": None, "step": 0}  # of the validation figure best_metric
    saved = load_state(folder)
    if saved is not None:
        if not resume:
            raise ValueError(f"{folder} holds a saved state; pass --resume to continue it or use another --out")
        info = json.loads((saved / "state.json").read_text())
        loaded = load_model(saved / "model.safetensors", device=ctx.device)
        if loaded.config.to_dict() != model.config.to_dict():
            raise ValueError(f"{saved}: the saved model's config differs from {ctx.out / 'config.yaml'}")
        model.load_state_dict(loaded.state_dict())
        load_optimizer(saved, optimizer)
        start, offset_s, best = info["step"], info["seconds"], info["best"]
        best.setdefault("value", best.pop("loss", None))  # states saved before best_metric existed
        if ctx.rank == 0:
            ctx.log.truncate_after(name, start)
    model.train()
    net = model
    if ctx.world > 1:
        # The quantiser keeps its codebook buffers equal on all ranks itself: no buffer broadcast.
        ddp = nn.parallel.DistributedDataParallel
        no_sync = ({"forward_sync_buffers": False} if "forward_sync_buffers" in inspect.signature(ddp).parameters
                   else {"broadcast_buffers": False})
        on_gpu = {"device_ids": [ctx.device.index]} if ctx.device.type == "cuda" else {}
        net = ddp(model, **no_sync, **on_gpu)

    if s["batch_size"] < ctx.world:
        raise ValueError(f"{name}.batch_size ({s['batch_size']}) must be at least the number of processes "
                         f"({ctx.world})")
    plan = BatchPlan(data.splits["train"], batch_size=s["batch_size"], bucket=s["bucket"], seed=cfg["seed"],
                     stage=name, crop_frames=round(s["crop_s"] * data.fps), align=model.align)
    sums: dict[str, float] = {}
    t0 = time.perf_counter()
    bar = tqdm(range(start, s["steps"]), desc=f"{name} ({kind})", initial=start, total=s["steps"],
               disable=not (ctx.progress and ctx.rank == 0), dynamic_ncols=True)

    def seconds():
        return offset_s + time.perf_counter() - t0

    def save(step):
        if ctx.rank == 0:
            save_state(folder, model, optimizer, {"step": step, "kind": kind, "seconds": seconds(), "best": best})

    try:
        for step in bar:
            idx = plan.indices(step)
            crops = plan.crops(step, idx)
            mine = list(range(ctx.rank, len(idx), ctx.world))
            batch = _to(data.collate([data.splits["train"][idx[i]] for i in mine], [crops[i] for i in mine],
                                     plan.crop), ctx.device)
            torch.manual_seed(_seed(cfg["seed"], name, "step", step, ctx.rank))
            lr = learning_rate(step, s)
            for group in optimizer.param_groups:
                group["lr"] = lr
            out = forward(net, kind, batch)
            optimizer.zero_grad(set_to_none=True)
            out["loss"].backward()
            if s["grad_clip"] > 0:
                out["grad_norm"] = torch.nn.utils.clip_grad_norm_(params, s["grad_clip"])
            optimizer.step()

            for k, v in out.items():
                sums[k] = sums.get(k, 0.0) + v.item()
            done = step + 1
            if done % s["log_every"] == 0 or done == s["steps"]:
                n = (done - 1) % s["log_every"] + 1
                means = {k: v / n for k, v in sums.items()}
                ctx.log.write(name, done, "train", {**means, "lr": lr}, seconds())
                bar.set_postfix(loss=f"{means['loss']:.4f}")
                sums = {}
            if done % s["eval_every"] == 0 or done == s["steps"]:
                if ctx.rank == 0:
                    val = evaluate(model, kind, data, s, ctx.device)
                    ctx.log.write(name, done, "val", val, seconds())
                    metric = s["best_metric"]
                    if metric not in val:
                        raise ValueError(f"{name}.best_metric {metric!r} is not a validation figure of this "
                                         f"stage; it has {sorted(val)}")
                    if best["value"] is None or val[metric] < best["value"]:
                        best = {"value": val[metric], "step": done}
                        save_model(model, folder / "best.safetensors")
                    plot_log(ctx.log.path, ctx.out / "curves.png")
                    shown = ", ".join(f"{k} {val[k]:.4g}" for k in ("loss", "lve_bs", "closure") if k in val)
                    tqdm.write(f"{name} step {done}/{s['steps']} ({seconds() / 60:.1f} min): val {shown}")
                _barrier(ctx.world)
            if done % s["checkpoint_every"] == 0 or done == s["steps"]:
                save(done)
            if ctx.interrupt_at == (number, done) and done < s["steps"]:
                save(done)
                bar.close()
                return None
    except KeyboardInterrupt:
        # No save here: the interrupt may have come in the middle of an optimiser update.
        if ctx.rank == 0:
            saved = load_state(folder)
            at = json.loads((saved / "state.json").read_text())["step"] if saved else 0
            print(f"\ninterrupted: {name} continues from step {at} with --resume", file=sys.stderr)
        raise
    bar.close()
    model.eval()
    _barrier(ctx.world)
    if s["keep_best"] and (folder / "best.safetensors").is_file():
        model.load_state_dict(load_model(folder / "best.safetensors", device=ctx.device).state_dict())
    if ctx.rank == 0:
        save_model(model, folder / "model.safetensors")
        kept = best["step"] if s["keep_best"] else s["steps"]
        (folder / "done.json").write_text(json.dumps({"steps": s["steps"], "kind": kind, "weights_of_step": kept,
                                                      "best_metric": s["best_metric"], "val_best": best["value"]}))
    _barrier(ctx.world)
    return model


# ---------------------------------------------------------------------------------------------
# The whole run


@dataclass
class Result:
    out: Path
    bundle: Path | None  # None when only stage 1 of a two-stage model ran, or interrupted
    model: nn.Module | None  # the last trained network (this rank's copy)


def train(config, corpus_dir, out, *, stage: str = "all", resume: bool = False, device: str = "auto",
          cache_dir=None, overrides=(), progress: bool = True,
          interrupt_at: tuple[int, int] | None = None) -> Result:
    """Run the stages of ``config`` (a YAML path or a checked dict) on ``corpus_dir``, writing ``out``.

    stage: "1", "2", "3", "all", or "features" (only fill the feature cache, write no run folder);
    resume: continue the run in ``out`` (its config.yaml is used);
    cache_dir: where feature caches live (default: ``<corpus>/feature_cache``); interrupt_at:
    (stage, step) to stop at with the state saved, as an interruption would (for tests).
    """
    import yaml

    from .corpus.format import Corpus
    from .encoders.base import resolve_torch_device
    from .feature_cache import build_feature_cache, load_feature_cache

    out = Path(out)
    rank, world, local = _init_distributed(device)
    saved_cfg = out / "config.yaml"
    if resume:
        if not saved_cfg.is_file():
            raise FileNotFoundError(f"--resume: {saved_cfg} not found (nothing to resume)")
        cfg = load_config(saved_cfg, overrides)
        run = json.loads((out / "run.json").read_text())
        corpus_dir = corpus_dir or run["corpus"]
        cache_dir = cache_dir or run["cache"]
    else:
        if config is None:
            raise ValueError("a config is needed (--config) unless --resume")
        cfg = load_config(config, overrides) if not isinstance(config, dict) else check_config(config)
        if saved_cfg.is_file() and stage != "features":
            if stage not in ("2", "3") or not (out / f"stage{int(stage) - 1}" / "done.json").is_file():
                raise ValueError(f"{out} already holds a run; pass --resume to continue it or use another --out")
            before = _with_model_defaults(check_config(yaml.safe_load(saved_cfg.read_text())))
            now = _with_model_defaults(cfg)
            free = STAGE2_FREE if stage == "2" else STAGE3_FREE
            changed = sorted(k for k in now if k not in free and now[k] != before[k])
            if stage == "3" and "predictor" in changed:
                keys = set(now["predictor"]) | set(before["predictor"])
                if all(k in STAGE3_PREDICTOR_FREE or now["predictor"].get(k) == before["predictor"].get(k)
                       for k in keys):
                    changed.remove("predictor")
            if changed:
                raise ValueError(f"{out}: --config differs from the run's {saved_cfg} in {changed}, "
                                 f"which the earlier stages were trained with")
    if corpus_dir is None:
        raise ValueError("a corpus is needed (--corpus)")
    if stage not in ("1", "2", "3", "all", "features"):
        raise ValueError(f"stage must be 1, 2, 3, all or features, got {stage!r}")
    kinds = stages_of(cfg)
    if stage not in ("all", "features") and int(stage) > len(kinds):
        raise ValueError(f"this config has {len(kinds)} stage(s) ({', '.join(kinds)}); stage 3 needs "
                         "predictor.refine_branch_layers > 0" if len(kinds) == 2 else
                         "model 'regression' has one stage; use --stage 1 or all")

    torch.set_num_threads(cfg["threads"] or os.cpu_count() or 1)
    dev = torch.device(f"cuda:{local}" if world > 1 and resolve_torch_device(device) == "cuda"
                       else resolve_torch_device(device))
    corpus = Corpus(corpus_dir)
    cache_dir = Path(cache_dir) if cache_dir else corpus.root / "feature_cache"
    plan = ChunkPlan.from_dict(cfg["plan"])
    enc_cfg = _encoders_for(cfg["encoders"], dev.type)
    folder = build_feature_cache(corpus, encoders_cfg=enc_cfg, plan=plan, fps=corpus.fps, root=cache_dir,
                                 workers=cfg["feature_workers"], rank=rank, world=world, progress=progress)
    if stage == "features":
        if rank == 0:
            print(f"feature cache: {folder}")
        return Result(out=out, bundle=None, model=None)

    _barrier(world)  # every rank has checked the folder before rank 0 writes into it
    if rank == 0:
        out.mkdir(parents=True, exist_ok=True)
        saved_cfg.write_text(yaml.safe_dump(cfg, sort_keys=False))
        (out / "run.json").write_text(json.dumps({"corpus": str(corpus.root), "cache": str(cache_dir)}, indent=1))
    _barrier(world)
    cache = load_feature_cache(folder, ids=[u.id for u in corpus.utterances if u.split in ("train", "val")])
    data = Data(corpus, cache, metric_utterances=cfg["eval"]["utterances"])
    ctx = Context(cfg=cfg, out=out, data=data, device=dev, rank=rank, world=world, progress=progress,
                  log=Log(out / "log.csv", enabled=rank == 0), interrupt_at=interrupt_at)

    model = None
    for number, kind in enumerate(kinds, start=1):
        if stage != "all" and int(stage) != number:
            if number == int(stage) - 1:
                done = out / f"stage{number}" / "model.safetensors"
                if not (out / f"stage{number}" / "done.json").is_file():
                    raise ValueError(f"--stage {stage} needs a finished stage {number} in {out} ({done} missing)")
                from .model.checkpoint import load_model
                model = load_model(done, device=dev)
            continue
        model = train_stage(ctx, number, kind, resume=resume, vqvae=model if kind in ("predictor", "refine") else None)
        if model is None:
            return Result(out=out, bundle=None, model=None)
    bundle = None
    if stage == "all" or int(stage) == len(kinds):
        bundle = out / "bundle"
        if rank == 0:
            write_bundle(bundle, model, cfg, data, corpus, plan)
        _barrier(world)
    if world > 1:
        dist.destroy_process_group()
    return Result(out=out, bundle=bundle, model=model)


def write_bundle(folder: Path, model, cfg: dict, data: Data, corpus, plan: ChunkPlan) -> Path:
    from .bundle import save_bundle

    final = {}
    log_path = folder.parent / "log.csv"
    if log_path.is_file():
        for r in read_log(log_path):
            if r["split"] == "val":
                final[f"{r['stage']}/{r['metric']}"] = float(r["value"])  # the last value wins
    trained = {"corpus": str(corpus.root), "corpus_hours": round(corpus.hours(), 3), "seed": cfg["seed"],
               "steps": {f"stage{i}": cfg[f"stage{i}"]["steps"] for i in range(1, len(stages_of(cfg)) + 1)},
               "final_val": final}
    dtype = torch.float16 if cfg["bundle_dtype"] == "float16" else None
    return save_bundle(folder, model.eval(), encoders_cfg=cfg["encoders"], plan=plan, fps=data.fps,
                       identities=data.identities, dtype=dtype,
                       extra={"default_emotion": cfg["default_emotion"], "trained": trained})


def _encoders_for(enc_cfg: dict, device: str) -> dict:
    """The config's encoders on the CPU for a CPU run, else on the best device each can use.

    "auto" rather than "cuda": Moonshine runs in onnxruntime, which may lack CUDA where torch has it.
    """
    out = {}
    for part in ("speech", "text"):
        c = enc_cfg.get(part) or {}
        c = {"kind": c} if isinstance(c, str) else dict(c)
        c.setdefault("device", "cpu" if device == "cpu" else "auto")
        out[part] = c
    return out


def _init_distributed(device: str) -> tuple[int, int, int]:
    """(rank, world size, local rank); initialises the process group under torchrun."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return 0, 1, 0
    local = int(os.environ.get("LOCAL_RANK", "0"))
    if not dist.is_initialized():
        use_cuda = device != "cpu" and torch.cuda.is_available()
        if use_cuda:
            torch.cuda.set_device(local)
        dist.init_process_group("nccl" if use_cuda else "gloo")
    return dist.get_rank(), dist.get_world_size(), local


def _barrier(world: int) -> None:
    if world > 1:
        dist.barrier()


# ---------------------------------------------------------------------------------------------
# Command line (shared by `talking-face train` and `python -m talking_face_ros.train`)


def run_from_args(args) -> int:
    result = train(args.config, args.corpus, args.out, stage=args.stage, resume=args.resume, device=args.device,
                   cache_dir=args.cache, overrides=args.overrides, progress=not args.no_progress)
    if int(os.environ.get("RANK", "0")) == 0:
        print(f"run folder: {result.out}" + (f"; bundle: {result.bundle}" if result.bundle else ""))
    return 0


def main(argv=None) -> int:
    from .commands.train import add_arguments

    parser = argparse.ArgumentParser(prog="python -m talking_face_ros.train", description=__doc__.split("\n")[0])
    add_arguments(parser)
    return run_from_args(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
