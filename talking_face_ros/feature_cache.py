"""Precomputed encoder outputs of a corpus: speech features per utterance, text embeddings per text.

Why a cache: the speech encoder costs far more than the networks trained on its output (one
Moonshine pass per 0.48 s chunk, each over 2.6 s of audio), and its output never changes while
the encoder, the chunk plan and the corpus stay the same. So it runs once and every training
run, ablation and resumed run reads the same numbers.

Features are computed with ``features.encode_planned`` and the plan of the training config: the
same passes on the same samples as the live engine makes, so the network is trained on exactly
the inputs it will see (see ``features.py`` for why that matters).

Layout of one cache folder, ``<root>/<key>/``, where the key is a digest of the corpus manifest,
the stored encoder config, the plan and the frame rate (change any of them: a new folder)::

    meta.json                  what the key was made of, the parts, "complete": true when done
    speech-00000.safetensors   one float16 (frames, feature_dim) tensor per utterance id
    speech-00001.safetensors   ... parts of PART_SIZE utterances, written atomically one by one,
                               so an interrupted extraction resumes at the first missing part
    text.safetensors           "embeddings" (texts, text_dim) float32; texts in its header (JSON)

Float16 halves the memory of a 2-hour corpus to ~180 MB; Moonshine features are O(1) in size,
where float16 keeps three significant digits, far below the chunking effects measured in
``encoders/moonshine.py``.
"""
from __future__ import annotations

import hashlib
import json
import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .features import ChunkPlan

FORMAT = "talking_face_feature_cache"
VERSION = 1
PART_SIZE = 128  # utterances per speech file
RUNTIME_KEYS = ("device", "threads", "batch_size", "cache_size")  # encoder options that do not change outputs


@dataclass
class FeatureCache:
    """A complete cache loaded into memory (torch tensors, float16 speech, float32 text)."""

    folder: Path
    speech: dict  # utterance id -> (frames, feature_dim) float16 tensor
    texts: list[str]  # distinct emotion texts, sorted
    text_embeddings: object  # (len(texts), text_dim) float32 tensor
    meta: dict

    @property
    def speech_dim(self) -> int:
        return int(self.meta["speech_dim"])

    @property
    def text_dim(self) -> int:
        return int(self.text_embeddings.shape[1])

    def text_index(self) -> dict[str, int]:
        return {t: i for i, t in enumerate(self.texts)}


def stored_encoders(encoders_cfg: dict) -> dict:
    """The encoder config without the options that only say how to run it here."""
    out = {}
    for part in ("speech", "text"):
        c = (encoders_cfg or {}).get(part) or {"kind": "moonshine" if part == "speech" else "minilm"}
        c = {"kind": c} if isinstance(c, str) else dict(c)
        out[part] = {k: (str(v) if isinstance(v, Path) else v) for k, v in sorted(c.items())
                     if k not in RUNTIME_KEYS}
    return out


def cache_key(corpus, *, encoders_cfg: dict, plan: ChunkPlan, fps: float) -> str:
    """16 hex digits naming the cache of ``corpus`` for this encoder, plan and frame rate.

    The source code that computes the features (``features.py`` and the encoder modules) is part
    of the key: a changed chunking rule or preprocessing must never meet features made by the
    old one. The price is a recomputation after any edit of those files.
    """
    manifest = (Path(corpus.root) / "manifest.json").read_bytes()
    encoders = stored_encoders(encoders_cfg)
    what = {"format": FORMAT, "version": VERSION, "manifest": hashlib.sha256(manifest).hexdigest(),
            "encoders": encoders, "plan": plan.to_dict(), "fps": float(fps),
            "code": _code_digest(encoders)}
    return hashlib.sha256(json.dumps(what, sort_keys=True).encode()).hexdigest()[:16]


def build_feature_cache(
    corpus,  # corpus.format.Corpus
    *,
    encoders_cfg: dict,  # {"speech": {...}, "text": {...}} as in encoders.registry
    plan: ChunkPlan,
    fps: float,  # the motion frame rate the features are resampled to (the corpus' fps)
    root,  # folder holding caches; this one goes to root/<key>
    workers: int = 1,  # processes computing speech features (with more than one: one thread each)
    rank: int = 0,  # under torch.distributed: this process's share of the parts
    world: int = 1,
    progress: bool = True,  # tqdm bar
) -> Path:
    """Compute what is missing of the cache and return its folder (complete on return).

    Under ``torch.distributed`` every rank computes its share of the parts and waits for the
    others (the caller must have initialised the process group); rank 0 writes text and meta.
    """
    folder = Path(root) / cache_key(corpus, encoders_cfg=encoders_cfg, plan=plan, fps=fps)
    meta_path = folder / "meta.json"
    if meta_path.is_file() and json.loads(meta_path.read_text()).get("complete"):
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    ids = [u.id for u in corpus.utterances]
    parts = [ids[i:i + PART_SIZE] for i in range(0, len(ids), PART_SIZE)]
    todo = [k for k in range(len(parts)) if k % world == rank and not _part_path(folder, k).is_file()]
    speech_cfg = stored_encoders(encoders_cfg)["speech"] | _runtime(encoders_cfg, "speech")
    jobs = [(str(corpus.root), speech_cfg, plan.to_dict(), float(fps), parts[k], str(_part_path(folder, k)))
            for k in todo]
    if jobs:
        _run_jobs(jobs, workers=workers, progress=progress and rank == 0,
                  total=sum(len(j[4]) for j in jobs))
    if rank == 0:
        texts = sorted({u.emotion_text for u in corpus.utterances})
        _write_texts(folder / "text.safetensors", texts, encoders_cfg)
    _barrier(world)
    if rank == 0:
        speech_dim = _speech_dim(_part_path(folder, 0))
        meta = {"format": FORMAT, "version": VERSION, "corpus": str(corpus.root),
                "encoders": stored_encoders(encoders_cfg), "plan": plan.to_dict(), "fps": float(fps),
                "utterances": len(ids), "parts": len(parts), "speech_dim": speech_dim, "complete": True}
        tmp = folder / "meta.json.tmp"
        tmp.write_text(json.dumps(meta, indent=1))
        os.replace(tmp, meta_path)
    _barrier(world)
    return folder


def load_feature_cache(folder, *, ids=None) -> FeatureCache:
    """The cache in ``folder`` (must be complete); ``ids`` limits the speech to those utterances."""
    import torch
    from safetensors import safe_open

    folder = Path(folder)
    meta_path = folder / "meta.json"
    if not meta_path.is_file():
        raise FileNotFoundError(f"{folder}: no feature cache here (meta.json missing)")
    meta = json.loads(meta_path.read_text())
    if meta.get("format") != FORMAT or meta.get("version") != VERSION or not meta.get("complete"):
        raise ValueError(f"{meta_path}: not a complete {FORMAT} v{VERSION}")
    wanted = None if ids is None else set(ids)
    speech = {}
    for k in range(meta["parts"]):
        with safe_open(str(_part_path(folder, k)), framework="pt") as f:
            for key in f.keys():
                if wanted is None or key in wanted:
                    speech[key] = f.get_tensor(key)
    if wanted is not None and wanted - set(speech):
        missing = sorted(wanted - set(speech))
        raise ValueError(f"{folder}: no speech features for {missing[:3]} (the corpus changed?)")
    with safe_open(str(folder / "text.safetensors"), framework="pt") as f:
        texts = json.loads(f.metadata()["texts"])
        emb = f.get_tensor("embeddings").to(torch.float32)
    return FeatureCache(folder=folder, speech=speech, texts=texts, text_embeddings=emb, meta=meta)


# ---------------------------------------------------------------------------------------------


def _code_digest(encoders: dict) -> str:
    import importlib.util

    from .encoders.registry import SPEECH_KINDS, TEXT_KINDS

    modules = ["talking_face_ros.features", "talking_face_ros.encoders.base",
               SPEECH_KINDS.get(encoders["speech"].get("kind"), ("talking_face_ros.encoders.base",))[0],
               TEXT_KINDS.get(encoders["text"].get("kind"), ("talking_face_ros.encoders.base",))[0]]
    h = hashlib.sha256()
    for name in modules:
        h.update(Path(importlib.util.find_spec(name).origin).read_bytes())
    if encoders["speech"].get("kind") == "causal":  # weights of our own making: retraining changes features
        from .encoders.causal_speech import SHIPPED

        folder = Path(encoders["speech"].get("model_path") or SHIPPED)
        h.update((folder / "model.safetensors").read_bytes() if (folder / "model.safetensors").is_file() else b"")
    return h.hexdigest()


def _part_path(folder: Path, k: int) -> Path:
    return folder / f"speech-{k:05d}.safetensors"


def _runtime(encoders_cfg: dict, part: str) -> dict:
    c = (encoders_cfg or {}).get(part) or {}
    return {k: v for k, v in c.items() if k in RUNTIME_KEYS} if isinstance(c, dict) else {}


def _run_jobs(jobs, *, workers: int, progress: bool, total: int) -> None:
    from tqdm import tqdm

    bar = tqdm(total=total, desc="speech features", unit="utt", disable=not progress)
    if workers <= 1:
        _init_worker(jobs[0][1], one_thread=False)
        for job in jobs:
            bar.update(_encode_part(job))
    else:
        import multiprocessing

        # spawn: a forked child would inherit torch/onnxruntime thread pools in an unknown state
        ctx = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=_init_worker,
                                 initargs=(jobs[0][1], True)) as pool:
            for n in pool.map(_encode_part, jobs):
                bar.update(n)
    bar.close()


_ENCODER = None  # the speech encoder of this worker process


def _init_worker(speech_cfg: dict, one_thread: bool) -> None:
    """Build this process's encoder; ``one_thread``: several processes share the cores."""
    global _ENCODER
    from .encoders import build_speech_encoder

    cfg = dict(speech_cfg)
    if one_thread:
        import torch

        torch.set_num_threads(1)
        if cfg.get("kind") == "moonshine":
            cfg.setdefault("threads", 1)
    if cfg.get("kind") == "moonshine":  # training features in full precision, unless a config says otherwise
        cfg.setdefault("precision", "fp32")
    _ENCODER = build_speech_encoder(cfg)


def _encode_part(job) -> int:
    """Speech features of one part's utterances, written as one safetensors file."""
    import torch
    from safetensors.torch import save_file

    from .corpus.format import Corpus, read_utterance
    from .features import encode_planned

    root, _, plan, fps, ids, path = job
    corpus = Corpus(root)
    plan = ChunkPlan.from_dict(plan)
    out = {}
    for utt_id in ids:
        utt = corpus.get(utt_id)
        audio, motion, _ = read_utterance(corpus.root / utt.file)
        feats = encode_planned(_ENCODER, audio, plan, fps=fps, num_frames=len(motion))
        out[utt_id] = torch.from_numpy(np.ascontiguousarray(feats)).to(torch.float16)
    tmp = path + ".tmp"
    save_file(out, tmp)
    os.replace(tmp, path)
    return len(ids)


def _write_texts(path: Path, texts: list[str], encoders_cfg: dict) -> None:
    import torch
    from safetensors.torch import save_file

    from .encoders import build_text_encoder

    if path.is_file():
        return
    encoder = build_text_encoder(stored_encoders(encoders_cfg)["text"] | _runtime(encoders_cfg, "text"))
    emb = torch.from_numpy(np.ascontiguousarray(encoder.encode(texts), dtype=np.float32))
    tmp = str(path) + ".tmp"
    save_file({"embeddings": emb}, tmp, metadata={"texts": json.dumps(texts)})
    os.replace(tmp, path)


def _speech_dim(path: Path) -> int:
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        return int(f.get_slice(next(iter(f.keys()))).get_shape()[1])


def _barrier(world: int) -> None:
    if world > 1:
        import torch.distributed as dist

        dist.barrier()
