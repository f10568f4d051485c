"""``talking-face evaluate``: score a folder of predictions against a corpus split."""
from __future__ import annotations

from pathlib import Path


def register(sub) -> None:
    p = sub.add_parser("evaluate", help="score predictions against a corpus split (JSON + Markdown report)")
    p.add_argument("--corpus", required=True, type=Path, help="corpus directory")
    p.add_argument("--pred", required=True,
                   help="folder of <utterance id>.npz/.csv/.json frame files, or 'gt' to score the corpus itself")
    p.add_argument("--split", default="test", choices=("train", "val", "test"))
    p.add_argument("--out", required=True, type=Path, help="report folder (metrics.json, report.md, plots)")
    p.add_argument("--no-vertices", action="store_true", help="skip vertex-space metrics on the ICT rig")
    p.add_argument("--classifier", type=Path, default=None,
                   help="emotion classifier weights (default: the one shipped with the package)")
    p.add_argument("--limit", type=int, default=None, help="score only the first N utterances")
    p.set_defaults(func=_run)


def _run(args) -> int:
    from .. import paths
    from ..corpus.format import Corpus
    from ..evaluation import GT, evaluate, write_report
    from ..metrics.emotion_classifier import DEFAULT_PATH, EmotionClassifier

    if args.pred != GT and not Path(args.pred).is_dir():
        raise FileNotFoundError(f"{args.pred}: no such prediction folder")
    corpus = Corpus(args.corpus)
    ict = None if args.no_vertices else paths.ict_rig_path()
    if ict is None and not args.no_vertices:
        print("note: ICT-FaceKit rig not found (TALKING_FACE_ICT); vertex-space metrics skipped")
    clf = EmotionClassifier.load(args.classifier or DEFAULT_PATH)
    result = evaluate(corpus, args.pred, split=args.split, ict_path=ict, classifier=clf, limit=args.limit)
    js, md = write_report(result, args.out)
    print(md.read_text())
    print(f"wrote {js} and {md}")
    return 0
