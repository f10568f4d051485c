"""``talking-face train``: train a model from a corpus and a YAML config (see talking_face_ros/train.py)."""
from __future__ import annotations

import argparse
from pathlib import Path


def register(sub) -> None:
    p = sub.add_parser("train", help="train the VQ-VAE + code predictor (or a baseline) into a model bundle")
    add_arguments(p)
    p.set_defaults(func=_run)


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The options of `talking-face train`, also those of `python -m talking_face_ros.train` (torchrun)."""
    p.add_argument("--config", type=Path, help="YAML training config (e.g. config/train_default.yaml)")
    p.add_argument("--corpus", type=Path, help="corpus folder (from `talking-face corpus generate`)")
    p.add_argument("--out", type=Path, required=True, help="run folder to write")
    p.add_argument("--stage", default="all", choices=("1", "2", "3", "all", "features"),
                   help="stage to run (default: all); 'features' only fills the feature cache")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its last saved state")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda (default: auto)")
    p.add_argument("--cache", type=Path, help="feature cache folder (default: CORPUS/feature_cache)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config value, e.g. --set stage1.steps=200 (repeatable)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")


def _run(args) -> int:
    from ..train import run_from_args

    return run_from_args(args)
