"""Emotion accuracy of generated motion: a small classifier trained on corpus motion.

It reads 52 ARKit curves (any length, 30 fps) and predicts the MEAD emotion and its intensity,
the way a person watching the face would, without the audio or the text. Trained on the train
split of the corpus, scored on held-out voices and sentences; its own accuracy there is the
ceiling for the "emotion accuracy" of any generator scored with it.

Architecture: two temporal convolutions over the weights and their velocities, mean+max
pooling over time, and two heads (8 emotions, 3 intensities). ~40k parameters: it must be
cheap to run inside evaluation and small enough to ship with the package.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..arkit import NUM_BLENDSHAPES
from ..emotions import EMOTION_INDEX, EMOTIONS, INTENSITIES
from ..paths import ASSETS_DIR

DEFAULT_PATH = ASSETS_DIR / "emotion_classifier.safetensors"


@dataclass
class ClassifierConfig:
    channels: int = 64  # width of the temporal convolutions
    kernel: int = 5  # frames per convolution tap
    fps: float = 30.0  # frame rate the classifier was trained at
    crop_seconds: float = 3.0  # training crop length


class EmotionNet(nn.Module):
    def __init__(self, cfg: ClassifierConfig):
        super().__init__()
        c, k = cfg.channels, cfg.kernel
        self.body = nn.Sequential(
            nn.Conv1d(2 * NUM_BLENDSHAPES, c, k, padding=k // 2), nn.GELU(),
            nn.Conv1d(c, c, k, padding=2 * (k // 2), dilation=2), nn.GELU(),
        )
        self.emotion = nn.Linear(2 * c, len(EMOTIONS))
        self.intensity = nn.Linear(2 * c, len(INTENSITIES))

    def forward(self, x: torch.Tensor, mask: torch.Tensor):
        """x: (batch, frames, 52) weights; mask: (batch, frames) True where a frame is real."""
        vel = torch.diff(x, dim=1, prepend=x[:, :1]) * 10.0
        h = self.body(torch.cat([x, vel], dim=-1).transpose(1, 2)).transpose(1, 2)
        m = mask.unsqueeze(-1).to(h.dtype)
        mean = (h * m).sum(1) / m.sum(1).clamp(min=1.0)
        mx = h.masked_fill(~mask.unsqueeze(-1), -1e4).amax(1)
        z = torch.cat([mean, mx], dim=-1)
        return self.emotion(z), self.intensity(z)


def _batch(seqs: list[np.ndarray]):
    n = max(len(s) for s in seqs)
    x = np.zeros((len(seqs), n, NUM_BLENDSHAPES), np.float32)
    mask = np.zeros((len(seqs), n), bool)
    for i, s in enumerate(seqs):
        x[i, : len(s)] = s
        mask[i, : len(s)] = True
    return torch.from_numpy(x), torch.from_numpy(mask)


class EmotionClassifier:
    """Loaded classifier: ``predict`` a list of (frames, 52) arrays."""

    def __init__(self, net: EmotionNet, cfg: ClassifierConfig, meta: dict | None = None):
        self.net, self.cfg, self.meta = net.eval(), cfg, meta or {}

    @classmethod
    def load(cls, path=DEFAULT_PATH) -> "EmotionClassifier":
        from safetensors.torch import load_file

        path = Path(path)
        cfg_path = path.with_suffix(".json")
        if not path.is_file() or not cfg_path.is_file():
            raise FileNotFoundError(f"emotion classifier not found at {path} (+ .json); train one with "
                                    "`talking-face emotion-classifier train`")
        meta = json.loads(cfg_path.read_text())
        cfg = ClassifierConfig(**meta["config"])
        net = EmotionNet(cfg)
        net.load_state_dict(load_file(str(path)))
        return cls(net, cfg, meta)

    def save(self, path) -> None:
        from safetensors.torch import save_file

        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        save_file({k: v.contiguous() for k, v in self.net.state_dict().items()}, str(path))
        path.with_suffix(".json").write_text(json.dumps(dict(self.meta, config=asdict(self.cfg)), indent=1))

    @torch.no_grad()
    def predict_proba(self, seqs: list[np.ndarray], *, batch_size: int = 64):
        emo, inten = [], []
        for i in range(0, len(seqs), batch_size):
            x, mask = _batch([np.asarray(s, np.float32) for s in seqs[i : i + batch_size]])
            e, k = self.net(x, mask)
            emo.append(e.softmax(-1).numpy())
            inten.append(k.softmax(-1).numpy())
        return np.concatenate(emo), np.concatenate(inten)

    def predict(self, seqs: list[np.ndarray]) -> tuple[list[str], list[int]]:
        e, k = self.predict_proba(seqs)
        return [EMOTIONS[i] for i in e.argmax(1)], [INTENSITIES[i] for i in k.argmax(1)]


def accuracy(clf: EmotionClassifier, seqs, emotions, intensities) -> dict:
    """Emotion accuracy, intensity accuracy (non-neutral only) and joint accuracy."""
    pe, pk = clf.predict(seqs)
    emo_ok = np.array([a == b for a, b in zip(pe, emotions)])
    non_neutral = np.array([e != "neutral" for e in emotions])
    int_ok = np.array([a == b for a, b in zip(pk, intensities)])
    return {
        "n": int(len(seqs)),
        "emotion": float(emo_ok.mean()) if len(seqs) else float("nan"),
        "intensity": float(int_ok[non_neutral].mean()) if non_neutral.any() else float("nan"),
        "emotion_and_intensity": float((emo_ok & (int_ok | ~non_neutral)).mean()) if len(seqs) else float("nan"),
    }


def _augment(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Motion a generator might produce: smoother or noisier, with more or less articulation."""
    x = x.copy()
    if rng.random() < 0.5:  # temporal smoothing of 1-3 frames
        k = int(rng.integers(2, 4))
        kernel = np.ones(k) / k
        x = np.apply_along_axis(lambda c: np.convolve(c, kernel, mode="same"), 0, x)
    x *= rng.uniform(0.85, 1.15)
    x += rng.normal(0, 0.015, size=x.shape)
    return np.clip(x, 0.0, 1.0).astype(np.float32)


def train_emotion_classifier(
    corpus,
    *,
    epochs: int = 12,  # passes over the training utterances
    batch_size: int = 32,  # crops per step
    lr: float = 2e-3,  # AdamW learning rate
    seed: int = 0,  # crops, augmentation and initialisation
    progress: bool = True,  # tqdm bar
) -> tuple[EmotionClassifier, dict]:
    """Train on the corpus' train split; return the classifier and its val/test accuracy."""
    from tqdm import tqdm

    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    cfg = ClassifierConfig(fps=corpus.fps)
    train = corpus.split("train")
    data = [(corpus.load(u).blendshapes, EMOTION_INDEX[u.emotion], u.intensity - 1) for u in train]
    net = EmotionNet(cfg)
    opt = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=1e-4)
    steps = epochs * max(1, len(data) // batch_size)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps)
    crop = int(cfg.crop_seconds * cfg.fps)
    ce = nn.CrossEntropyLoss(reduction="none")
    net.train()
    for _ in tqdm(range(steps), desc="emotion classifier", disable=not progress):
        idx = rng.integers(0, len(data), batch_size)
        seqs, emo, inten = [], [], []
        for i in idx:
            x, e, k = data[i]
            n = int(rng.integers(max(8, crop // 3), crop + 1))
            start = int(rng.integers(0, max(1, len(x) - n + 1)))
            seqs.append(_augment(x[start : start + n], rng))
            emo.append(e)
            inten.append(k)
        xb, mb = _batch(seqs)
        e_logits, k_logits = net(xb, mb)
        emo_t, int_t = torch.tensor(emo), torch.tensor(inten)
        has_int = (emo_t != EMOTION_INDEX["neutral"]).float()
        loss = ce(e_logits, emo_t).mean() + (ce(k_logits, int_t) * has_int).sum() / has_int.sum().clamp(min=1)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
    clf = EmotionClassifier(net, cfg)
    report = {}
    for split in ("val", "test"):
        us = corpus.split(split)
        seqs = [corpus.load(u).blendshapes for u in us]
        report[split] = accuracy(clf, seqs, [u.emotion for u in us], [u.intensity for u in us])
    clf.meta = {"trained_on": str(corpus.root), "corpus_hours": round(corpus.hours(), 3), "seed": seed,
                "epochs": epochs, "accuracy": report}
    return clf, report
