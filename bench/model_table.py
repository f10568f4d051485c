"""The model table: the full model against three baselines, same data, same encoders, one command.

    .venv/bin/python bench/model_table.py --corpus out/corpus-2h --runs out/runs --train --out docs/model_table.md

For each row it trains the config (with --train, when its run folder has no bundle yet), animates
every test utterance (held-out voices, sentences and half held-out phrasings) with the bundle,
adds --samples stochastic samples for MEE / CE / Diversity, scores them with
`talking-face evaluate`, and writes one Markdown table (+ JSON) of all rows.

Rows: (a) direct regression without VQ, (b) single-level VQ (CodeTalker-like, non-autoregressive),
(c) hierarchical without the internal condition, all three on the full model's first recipe
(config/train_v1.yaml), which is row (d0); (d) the full model as shipped (config/train_default.yaml:
lip-gap loss in both stages, the refine head with its speech branch and gate (stage 3), stages 2
and 3 kept at their lowest validation lip error).
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ROWS = [
    ("regression", "(a) regression, no VQ", "config/train_ablation_regression.yaml"),
    ("single_level", "(b) single-level VQ", "config/train_ablation_single_level.yaml"),
    ("no_internal", "(c) hierarchical, no internal condition", "config/train_ablation_no_internal.yaml"),
    ("v1", "(d0) full model, first recipe", "config/train_v1.yaml"),
    ("default", "(d) full model (default)", "config/train_default.yaml"),
]
COLUMNS = [  # (metrics.json key, header, format)
    ("mve", "MVE cm", "{:.4f}"), ("lve_mm2", "LVE mm²", "{:.2f}"), ("fdd", "FDD cm²", "{:.5f}"),
    ("eve_mm2", "EVE mm²", "{:.2f}"), ("mee_mm2", "MEE mm²", "{:.2f}"), ("ce_mm2", "CE mm²", "{:.2f}"),
    ("diversity", "Div cm", "{:.4f}"),
    ("bs_mve", "MVE w", "{:.4f}"), ("bs_lve", "LVE w²", "{:.4f}"), ("bs_fdd", "FDD w²", "{:.5f}"),
    ("bs_eve", "EVE w²", "{:.4f}"), ("bs_mee", "MEE w²", "{:.4f}"), ("bs_ce", "CE w²", "{:.4f}"),
    ("bs_diversity", "Div w", "{:.4f}"),
    ("emotion_seen", "emo acc seen", "{:.3f}"), ("emotion_heldout", "emo acc held-out", "{:.3f}"),
    ("bilabial_closure", "bilabial closure", "{:.3f}"), ("lag_frames_median", "lag (frames)", "{:+.1f}"),
]


def run(cmd: list[str]) -> None:
    print("+", " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True, cwd=ROOT)


def _row_metrics(path: Path) -> dict:
    m = json.loads(path.read_text())
    for text_split in ("seen", "heldout"):
        acc = m.get(f"emotion_accuracy_{text_split}")
        m[f"emotion_{text_split}"] = acc["emotion"] if acc else None
    return m


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpus", type=Path, required=True)
    ap.add_argument("--runs", type=Path, default=ROOT / "out" / "runs", help="run folders, one per row")
    ap.add_argument("--train", action="store_true", help="train rows whose bundle is missing")
    ap.add_argument("--rows", default=",".join(r[0] for r in ROWS), help="comma-separated subset of rows")
    ap.add_argument("--samples", type=int, default=3, help="stochastic samples per utterance (MEE/CE/Div)")
    ap.add_argument("--limit", type=int, default=None, help="only the first N test utterances")
    ap.add_argument("--reuse", action="store_true",
                    help="keep a row's eval/metrics.json when it is newer than its bundle (no re-animation)")
    ap.add_argument("--out", type=Path, default=ROOT / "out" / "model_table.md")
    args = ap.parse_args()
    exe = str(ROOT / ".venv" / "bin" / "talking-face")
    wanted = args.rows.split(",")
    results = {}
    for name, label, config in ROWS:
        if name not in wanted:
            continue
        run_dir = args.runs / name
        bundle = run_dir / "bundle"
        if not (bundle / "bundle.json").is_file():
            if not args.train:
                print(f"skip {name}: no bundle in {bundle} (use --train)")
                continue
            run([exe, "train", "--config", config, "--corpus", str(args.corpus), "--out", str(run_dir),
                 "--no-progress"] + (["--resume"] if (run_dir / "config.yaml").is_file() else []))
        metrics = run_dir / "eval" / "metrics.json"
        fresh = metrics.is_file() and metrics.stat().st_mtime > (bundle / "bundle.json").stat().st_mtime
        if args.reuse and fresh:
            print(f"reuse {metrics}")
            results[name] = (label, _row_metrics(metrics))
            continue
        pred = run_dir / "test_predictions"
        # A regression model has no codes to sample: its MEE / CE / Diversity cells stay empty.
        samples = 0 if name == "regression" else args.samples
        cmd = [exe, "animate", "--model", str(bundle), "--corpus", str(args.corpus), "--split", "test",
               "--out-dir", str(pred), "--samples", str(samples)]
        run(cmd + (["--limit", str(args.limit)] if args.limit else []))
        run([exe, "evaluate", "--corpus", str(args.corpus), "--pred", str(pred), "--out", str(run_dir / "eval")]
            + (["--limit", str(args.limit)] if args.limit else []))
        results[name] = (label, _row_metrics(metrics))
    lines = ["| model | " + " | ".join(h for _, h, _ in COLUMNS) + " |",
             "|---|" + "---|" * len(COLUMNS)]
    for name, (label, m) in results.items():
        cells = [fmt.format(m[k]) if m.get(k) is not None else "–" for k, _, fmt in COLUMNS]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    table = "\n".join(lines)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(table + "\n")
    args.out.with_suffix(".json").write_text(json.dumps({k: v[1] for k, v in results.items()}, indent=1))
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
