"""Generates a corpus: plans who says what with which emotion, then synthesises it in parallel.

Determinism: the plan is a pure function of the seed, and each utterance draws its randomness
from ``numpy.random.default_rng([seed, index])``, so a corpus is the same whatever the number of
workers. Utterances are consumed in plan order until the requested hours are reached.

Splits: every plan slot belongs to train, val or test (16:2:2 of every 20 slots); its voice and
its sentence come from that split's voices and sentences, so test voices and test sentences are
never heard in training. Train utterances use 'seen' emotion phrasings only; val and test
alternate 'seen' and 'heldout' phrasings, so text generalisation can be measured.
"""
from __future__ import annotations

import itertools
import multiprocessing as mp
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..emotions import EMOTIONS, INTENSITIES
from .format import FORMAT_NAME, FORMAT_VERSION, SPLITS, Utterance, write_manifest, write_utterance

SPLIT_PATTERN = ("train",) * 16 + ("val",) * 2 + ("test",) * 2


@dataclass(frozen=True)
class Planned:
    index: int
    split: str
    voice_id: str
    sentence_id: int
    sentence: str
    emotion: str
    intensity: int
    text_split: str
    emotion_text: str

    @property
    def id(self) -> str:
        return f"{self.index:05d}_{self.voice_id}_s{self.sentence_id:04d}_{self.emotion}{self.intensity}"


def plan(seed: int):
    """Endless, deterministic stream of :class:`Planned` utterances."""
    from . import emotion_text, sentences, voices

    rng = np.random.default_rng(seed)
    cyclers = {}
    for split in SPLITS:
        vs = [v.voice_id for v in voices.voices_in(split)]
        ss = sentences.sentences_in(split)
        if not vs or not ss:
            raise ValueError(f"split {split!r} has no voices or no sentences")
        cyclers[split] = (
            _shuffled_cycle(vs, rng),
            _shuffled_cycle(ss, rng),
            itertools.cycle(EMOTIONS),
            itertools.cycle(("seen", "heldout")),
        )
    for index in itertools.count():
        split = SPLIT_PATTERN[index % len(SPLIT_PATTERN)]
        voice_cycle, sentence_cycle, emotion_cycle, text_cycle = cyclers[split]
        voice_id = next(voice_cycle)
        sentence_id, sentence = next(sentence_cycle)
        emotion = next(emotion_cycle)
        urng = np.random.default_rng([seed, index])
        intensity = 1 if emotion == "neutral" else int(urng.choice(INTENSITIES))
        text_split = "seen" if split == "train" else next(text_cycle)
        text = emotion_text.describe(emotion, intensity, urng, split=text_split)
        yield Planned(index, split, voice_id, int(sentence_id), sentence, emotion, intensity, text_split, text)


def _shuffled_cycle(items, rng):
    """Cycle through ``items`` in a fresh random order each pass (balanced coverage)."""
    items = list(items)
    while True:
        for i in rng.permutation(len(items)):
            yield items[i]


def loudness_envelope(audio: np.ndarray, sample_rate: int, fps: float, frames: int) -> np.ndarray:
    """RMS loudness of the audio around each motion frame, over a window of TWO frame periods.

    The teacher's brow emphasis reads it. It is smoother than metrics.lipsync.rms_envelope (one
    period, for measuring lag) on purpose, and it stays as it is so that the corpus, and with it
    the shipped default model, is reproduced exactly by the documented commands.
    """
    hop = sample_rate / fps
    centres = (np.arange(frames) * hop).astype(np.int64)
    half = int(hop)
    csum = np.concatenate([[0.0], np.cumsum(audio.astype(np.float64) ** 2)])
    lo = np.clip(centres - half, 0, len(audio))
    hi = np.clip(centres + half, 0, len(audio))
    energy = (csum[hi] - csum[lo]) / np.maximum(hi - lo, 1)
    return np.sqrt(energy).astype(np.float32)


def synthesise(p: Planned, *, seed: int, fps: float, sample_rate: int):
    """Audio, phonemes and motion of one planned utterance."""
    from ..data.sample import frame_count
    from ..speech.espeak import synthesize
    from ..speech.prosody import emotion_prosody
    from ..teacher import phonemes_to_blendshapes
    from .voices import voice_by_id

    voice = voice_by_id(p.voice_id)
    speech = synthesize(p.sentence, voice=voice, prosody=emotion_prosody(p.emotion, p.intensity, voice),
                        sample_rate=sample_rate)
    duration = len(speech.audio) / sample_rate
    frames = frame_count(duration, fps)
    motion = phonemes_to_blendshapes(
        speech.phonemes, duration=duration, fps=fps, emotion=p.emotion, intensity=p.intensity,
        style=voice.style, seed=seed * 100003 + p.index,
        loudness=loudness_envelope(speech.audio, sample_rate, fps, frames), loudness_rate=fps,
    )
    return speech.audio, speech.phonemes, motion


def _work(args):
    p, seed, fps, sample_rate, root = args
    audio, phonemes, motion = synthesise(p, seed=seed, fps=fps, sample_rate=sample_rate)
    rel = f"utterances/{p.id}.npz"
    write_utterance(Path(root) / rel, audio=audio, blendshapes=motion, phonemes=phonemes)
    return Utterance(
        id=p.id, file=rel, split=p.split, voice_id=p.voice_id, sentence_id=p.sentence_id,
        sentence=p.sentence, emotion=p.emotion, intensity=p.intensity, emotion_text=p.emotion_text,
        text_split=p.text_split, duration=round(len(audio) / sample_rate, 6), frames=int(motion.shape[0]),
    )


def generate_corpus(
    out_dir,
    *,
    hours: float | None = None,  # stop once this much speech is generated ...
    utterances: int | None = None,  # ... or after this many utterances (one of the two)
    seed: int = 0,  # everything random derives from it
    fps: float = 30.0,  # motion frame rate
    sample_rate: int = 16000,  # audio rate
    workers: int = 0,  # processes; 0 = one per CPU core
    plots: int = 6,  # utterances pictured in plots/
    overwrite: bool = False,  # replace an existing corpus in out_dir
    progress: bool = True,  # show a progress bar
) -> dict:
    """Write a corpus to ``out_dir`` and return its manifest."""
    from tqdm import tqdm

    from . import voices

    if (hours is None) == (utterances is None):
        raise ValueError("give exactly one of hours or utterances")
    if hours is not None and hours <= 0 or utterances is not None and utterances <= 0:
        raise ValueError("hours / utterances must be positive")
    out = Path(out_dir)
    if (out / "manifest.json").exists():
        if not overwrite:
            raise ValueError(f"{out} already holds a corpus; pass overwrite (--force) to replace it")
        shutil.rmtree(out / "utterances", ignore_errors=True)
        shutil.rmtree(out / "plots", ignore_errors=True)
    (out / "utterances").mkdir(parents=True, exist_ok=True)

    target_s = hours * 3600.0 if hours is not None else None
    workers = workers or mp.cpu_count()
    jobs = ((p, seed, fps, sample_rate, str(out)) for p in plan(seed))
    entries: list[Utterance] = []
    total_s = 0.0
    t0 = time.perf_counter()
    bar = tqdm(total=round(target_s) if target_s else utterances, unit="s" if target_s else "utt",
               desc="corpus", disable=not progress, smoothing=0.05)
    ctx = mp.get_context("spawn")  # a fresh process per worker: espeak-ng's state is per process
    with ctx.Pool(workers) as pool:
        for entry in pool.imap(_work, jobs, chunksize=4):
            entries.append(entry)
            total_s += entry.duration
            bar.update(entry.duration if target_s else 1)
            if (target_s and total_s >= target_s) or (utterances and len(entries) >= utterances):
                break
        pool.terminate()
    bar.close()
    # Workers may have finished utterances past the stopping point: keep only the planned prefix.
    keep = {e.file for e in entries}
    for f in (out / "utterances").iterdir():
        if f"utterances/{f.name}" not in keep:
            f.unlink()
    elapsed = time.perf_counter() - t0

    manifest = {
        "format": FORMAT_NAME,
        "version": FORMAT_VERSION,
        "fps": fps,
        "sample_rate": sample_rate,
        "seed": seed,
        "generator": {"hours": hours, "utterances": utterances, "seconds_taken": round(elapsed, 2),
                      "workers": workers},
        "voices": [dict(v.to_dict(), split=voices.split_of(v.voice_id)) for v in voices.VOICES],
        "utterances": [e.to_dict() for e in entries],
    }
    write_manifest(out, manifest)
    if plots:
        from .format import Corpus
        from .plots import plot_utterances

        plot_utterances(Corpus(out), out / "plots", count=plots)
    return manifest
