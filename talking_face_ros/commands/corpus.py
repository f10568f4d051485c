"""``talking-face corpus``: make, inspect and export the procedural talking-face corpus."""
from __future__ import annotations

import json
from pathlib import Path


def register(sub) -> None:
    p = sub.add_parser("corpus", help="generate / inspect / export the synthetic talking-face corpus")
    cs = p.add_subparsers(dest="corpus_command", required=True, metavar="ACTION")

    g = cs.add_parser("generate", help="synthesise a corpus (espeak-ng speech + motion teacher)")
    g.add_argument("--out", required=True, type=Path, help="corpus directory to write")
    size = g.add_mutually_exclusive_group(required=True)
    size.add_argument("--hours", type=float, help="hours of speech to generate")
    size.add_argument("--utterances", type=int, help="number of utterances to generate")
    g.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    g.add_argument("--fps", type=float, default=30.0, help="motion frame rate (default 30)")
    g.add_argument("--workers", type=int, default=0, help="processes (default: one per core)")
    g.add_argument("--plots", type=int, default=6, help="utterances to picture in OUT/plots (default 6)")
    g.add_argument("--force", action="store_true", help="replace an existing corpus in --out")
    g.set_defaults(func=_generate)

    i = cs.add_parser("info", help="summarise a corpus (sizes per split, emotions, voices)")
    i.add_argument("corpus", type=Path)
    i.add_argument("--json", action="store_true", help="print JSON instead of text")
    i.set_defaults(func=_info)

    pl = cs.add_parser("plot", help="picture utterances (waveform, phonemes, lip gap, key curves)")
    pl.add_argument("corpus", type=Path)
    pl.add_argument("--out", type=Path, default=None, help="folder for the PNGs (default CORPUS/plots)")
    pl.add_argument("--count", type=int, default=8, help="how many (the first of each emotion; default 8)")
    pl.set_defaults(func=_plot)

    v = cs.add_parser("vertices", help="export vertex sequences on a rig, VOCASET/BIWI-style layout")
    v.add_argument("corpus", type=Path)
    v.add_argument("--out", required=True, type=Path, help="folder for vertices_npy/, wav/, template.npy")
    v.add_argument("--split", default="test", choices=("train", "val", "test"))
    v.add_argument("--limit", type=int, default=20, help="at most this many utterances (default 20)")
    v.add_argument("--rig", default="ict", help="'ict' (packed ICT-FaceKit), 'robot', or a rig .npz")
    v.set_defaults(func=_vertices)


def _generate(args) -> int:
    from ..corpus.generate import generate_corpus

    m = generate_corpus(args.out, hours=args.hours, utterances=args.utterances, seed=args.seed, fps=args.fps,
                        workers=args.workers, plots=args.plots, overwrite=args.force)
    n = len(m["utterances"])
    hours = sum(u["duration"] for u in m["utterances"]) / 3600
    print(f"wrote {n} utterances, {hours:.2f} h of speech, to {args.out} "
          f"in {m['generator']['seconds_taken']:.0f} s")
    return 0


def summarise(corpus) -> dict:
    from collections import Counter

    out = {"root": str(corpus.root), "fps": corpus.fps, "sample_rate": corpus.sample_rate,
           "utterances": len(corpus), "hours": round(corpus.hours(), 3), "splits": {}}
    for split in ("train", "val", "test"):
        us = corpus.split(split)
        out["splits"][split] = {
            "utterances": len(us),
            "hours": round(sum(u.duration for u in us) / 3600, 3),
            "voices": len({u.voice_id for u in us}),
            "sentences": len({u.sentence_id for u in us}),
            "emotions": dict(Counter(u.emotion for u in us)),
            "text_splits": dict(Counter(u.text_split for u in us)),
        }
    return out


def _info(args) -> int:
    from ..corpus.format import Corpus

    s = summarise(Corpus(args.corpus))
    if args.json:
        print(json.dumps(s, indent=1))
        return 0
    print(f"{s['root']}: {s['utterances']} utterances, {s['hours']} h, {s['fps']} fps, {s['sample_rate']} Hz")
    for split, d in s["splits"].items():
        print(f"  {split:5s} {d['utterances']:5d} utt {d['hours']:6.3f} h  {d['voices']:2d} voices "
              f"{d['sentences']:4d} sentences  phrasings {d['text_splits']}")
    return 0


def _plot(args) -> int:
    from ..corpus.format import Corpus
    from ..corpus.plots import plot_utterances

    corpus = Corpus(args.corpus)
    for p in plot_utterances(corpus, args.out or corpus.root / "plots", count=args.count):
        print(p)
    return 0


def _vertices(args) -> int:
    import numpy as np
    from tqdm import tqdm

    from ..corpus.format import Corpus
    from ..speech.audio import save_wav

    from ..rig import load_rig

    corpus = Corpus(args.corpus)
    rig = load_rig(args.rig)
    (args.out / "vertices_npy").mkdir(parents=True, exist_ok=True)
    (args.out / "wav").mkdir(parents=True, exist_ok=True)
    np.save(args.out / "template.npy", rig.neutral.astype(np.float32))
    chosen = corpus.split(args.split)[: args.limit]
    for u in tqdm(chosen, desc="vertices"):
        s = corpus.load(u)
        verts = rig.mesh(s.blendshapes).astype(np.float32)
        np.save(args.out / "vertices_npy" / f"{u.id}.npy", verts.reshape(len(verts), -1))
        save_wav(args.out / "wav" / f"{u.id}.wav", s.audio, s.sample_rate)
    print(f"wrote {len(chosen)} vertex sequences ({rig.neutral.shape[0]} vertices) to {args.out}")
    return 0
