"""``talking-face animate``: a speech WAV (or a whole corpus split) + emotion text -> ARKit frames.

    talking-face animate speech.wav --emotion "slightly happy" --out face.csv
    talking-face animate --corpus out/corpus-2h --split test --out-dir out/pred --samples 5

The second form writes ``<utterance id>.npz`` per utterance of the split, animated with the
utterance's own emotion text and voice (voices the model was not trained on get the default
identity), ready for ``talking-face evaluate``. ``--samples N`` adds N stochastic samples to each
``.npz`` (field ``samples``) for the sampling metrics (MEE, CE, Diversity).
"""
from __future__ import annotations

import argparse
from pathlib import Path

from ..paths import DEFAULT_MODEL_DIR

DEFAULT_MODEL = DEFAULT_MODEL_DIR


def register(sub) -> None:
    p = sub.add_parser("animate", help="animate speech with a trained model (WAV or a corpus split)",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    _add_arguments(p)
    p.set_defaults(func=_run)


def _add_arguments(p) -> None:
    p.add_argument("input", nargs="?", type=Path, help="speech WAV (any rate, mono or multi-channel)")
    p.add_argument("--emotion", default="", help="emotion text, e.g. 'slightly happy' (default: the model's)")
    p.add_argument("--identity", default=None, help="speaker identity of the model (default: unknown speaker)")
    p.add_argument("--model", type=Path, default=None,
                   help=f"model bundle folder (default: {DEFAULT_MODEL} when present)")
    p.add_argument("--seed", type=int, default=0, help="seed of the sampling (temperature > 0, --samples)")
    p.add_argument("--temperature", type=float, default=0.0,
                   help="code sampling temperature of the main output (0: most likely codes)")
    p.add_argument("--samples", type=int, default=0, help="stochastic samples to add to an .npz output")
    p.add_argument("--sample-temperature", type=float, default=1.0, help="temperature of those samples")
    p.add_argument("--out", type=Path, help="output frame file: .npz, .csv or .json")
    p.add_argument("--corpus", type=Path, help="corpus folder: animate a whole split instead of INPUT")
    p.add_argument("--split", default="test", help="corpus split (with --corpus)")
    p.add_argument("--out-dir", type=Path, help="folder for <utterance id>.npz (with --corpus)")
    p.add_argument("--limit", type=int, default=None, help="only the first N utterances (with --corpus)")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda")
    p.add_argument("--backend", default="torch", choices=("torch", "onnx"),
                   help="torch, or onnx (onnxruntime: TensorRT > CUDA > CPU; the model is exported once)")
    p.add_argument("--precision", default="auto", choices=("auto", "fp32", "fp16"),
                   help="auto: fp16 on CUDA, fp32 on the CPU")
    p.add_argument("--threads", type=int, default=None, help="CPU threads for torch and the speech encoder")
    p.add_argument("--speech-precision", default="auto", choices=("auto", "fp32", "int8"),
                   help="Moonshine's matrix products: auto (int8 on the CPU, fp32 on a GPU), fp32 or int8")


def main(argv=None) -> int:
    """Run the command without the ``talking-face`` front end (tests, scripts); errors raise."""
    p = argparse.ArgumentParser(prog="talking-face animate")
    _add_arguments(p)
    return _run(p.parse_args(argv))


def default_model() -> Path:
    if (DEFAULT_MODEL / "bundle.json").is_file():
        return DEFAULT_MODEL
    raise ValueError(
        f"no model given and no default model at {DEFAULT_MODEL}. Train one with "
        "`talking-face train --config config/train_default.yaml --corpus CORPUS --out RUN_DIR` "
        "and pass its bundle with --model RUN_DIR/bundle (any folder holding bundle.json)")


def _run(args) -> int:
    corpus_mode = args.corpus is not None
    if corpus_mode == (args.input is not None):
        raise ValueError("give either INPUT.wav (with --out) or --corpus DIR (with --out-dir)")
    if corpus_mode and args.out_dir is None:
        raise ValueError("--corpus needs --out-dir")
    if not corpus_mode and args.out is None:
        raise ValueError("INPUT.wav needs --out OUT.npz|.csv|.json")
    if args.samples < 0:
        raise ValueError(f"--samples must be >= 0, got {args.samples}")
    if args.samples and not corpus_mode and args.out.suffix.lower() != ".npz":
        raise ValueError(f"--samples are stored in an .npz file only, not {args.out.suffix!r}")
    if args.samples and args.sample_temperature <= 0:
        raise ValueError("--sample-temperature must be > 0 for --samples to differ")
    if args.threads is not None and args.threads < 1:
        raise ValueError(f"--threads must be >= 1, got {args.threads}")
    if not corpus_mode and not args.input.is_file():
        raise FileNotFoundError(f"WAV file not found: {args.input}")
    engine = _engine(args)
    if corpus_mode:
        return _animate_corpus(engine, args)
    from ..frames_io import save_frames
    from ..speech.audio import load_wav

    audio, rate = load_wav(args.input)
    times, weights, samples = _animate(engine, audio, rate, args.emotion, args.identity, args)
    save_frames(args.out, times, weights, fps=engine.fps, samples=samples)
    print(f"wrote {args.out}: {len(weights)} frames at {engine.fps:g} fps "
          f"({len(audio) / rate:.2f} s of speech, emotion {engine.emotion!r})")
    return 0


def _engine(args):
    from ..engine import Engine

    if args.threads is not None:
        import torch

        torch.set_num_threads(args.threads)
    speech = {"threads": args.threads} if args.threads is not None else {}
    if args.speech_precision != "auto":  # a Moonshine option; other speech encoders refuse it clearly
        speech["precision"] = args.speech_precision
    options = {"speech": speech} if speech else None
    return Engine.from_bundle(args.model if args.model is not None else default_model(), device=args.device,
                              backend=args.backend, precision=args.precision, encoder_options=options)


def _animate(engine, audio, rate, emotion, identity, args):
    """Main output at --temperature, then --samples draws at --sample-temperature (seeds seed+1..)."""
    times, weights = engine.animate(audio, rate, emotion=emotion, identity=identity, seed=args.seed,
                                    temperature=args.temperature)
    samples = None
    if args.samples:
        import numpy as np

        samples = np.stack([engine.animate(audio, rate, emotion=emotion, identity=identity, seed=args.seed + k,
                                           temperature=args.sample_temperature)[1]
                            for k in range(1, args.samples + 1)])
    return times, weights, samples


def _animate_corpus(engine, args) -> int:
    from tqdm import tqdm

    from ..corpus.format import Corpus
    from ..frames_io import save_frames

    corpus = Corpus(args.corpus)
    utts = corpus.split(args.split)[: args.limit] if args.limit else corpus.split(args.split)
    if not utts:
        raise ValueError(f"{args.corpus}: split {args.split!r} has no utterances")
    known = set(engine.bundle.identities)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    unknown = 0
    for u in tqdm(utts, desc=f"animate {args.split}"):
        sample = corpus.load(u)
        identity = u.voice_id if u.voice_id in known else None  # test voices are new speakers
        unknown += identity is None
        times, weights, samples = _animate(engine, sample.audio, sample.sample_rate, u.emotion_text,
                                           identity, args)
        save_frames(args.out_dir / f"{u.id}.npz", times, weights, fps=engine.fps, samples=samples)
    print(f"wrote {len(utts)} files to {args.out_dir} ({unknown} with voices the model does not know, "
          "animated with the default identity)")
    return 0
