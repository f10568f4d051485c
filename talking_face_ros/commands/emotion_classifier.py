"""``talking-face emotion-classifier``: train or score the motion emotion classifier."""
from __future__ import annotations

import json
from pathlib import Path


def register(sub) -> None:
    p = sub.add_parser("emotion-classifier", help="train / score the classifier behind 'emotion accuracy'")
    cs = p.add_subparsers(dest="ec_command", required=True, metavar="ACTION")
    t = cs.add_parser("train", help="train on a corpus' train split; report val/test accuracy")
    t.add_argument("--corpus", required=True, type=Path)
    t.add_argument("--out", type=Path, default=None, help="weights file (default: the one shipped in the package)")
    t.add_argument("--epochs", type=int, default=12)
    t.add_argument("--seed", type=int, default=0)
    t.set_defaults(func=_train)
    s = cs.add_parser("score", help="accuracy of a classifier on a corpus split's ground-truth motion")
    s.add_argument("--corpus", required=True, type=Path)
    s.add_argument("--split", default="test", choices=("train", "val", "test"))
    s.add_argument("--weights", type=Path, default=None)
    s.set_defaults(func=_score)


def _train(args) -> int:
    from ..corpus.format import Corpus
    from ..metrics.emotion_classifier import DEFAULT_PATH, train_emotion_classifier

    clf, report = train_emotion_classifier(Corpus(args.corpus), epochs=args.epochs, seed=args.seed)
    out = args.out or DEFAULT_PATH
    clf.save(out)
    print(json.dumps(report, indent=1))
    print(f"saved {out} (+ .json)")
    return 0


def _score(args) -> int:
    from ..corpus.format import Corpus
    from ..metrics.emotion_classifier import DEFAULT_PATH, EmotionClassifier, accuracy

    corpus = Corpus(args.corpus)
    clf = EmotionClassifier.load(args.weights or DEFAULT_PATH)
    us = corpus.split(args.split)
    out = {}
    for text_split in ("seen", "heldout", None):
        sel = [u for u in us if text_split is None or u.text_split == text_split]
        if sel:
            out[text_split or "all"] = accuracy(clf, [corpus.load(u).blendshapes for u in sel],
                                                [u.emotion for u in sel], [u.intensity for u in sel])
    print(json.dumps(out, indent=1))
    return 0
