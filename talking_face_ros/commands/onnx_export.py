"""``talking-face onnx-export``: a model bundle's networks as ONNX graphs + manifest (``onnx_export``)."""
from __future__ import annotations

from pathlib import Path


def register(sub) -> None:
    p = sub.add_parser(
        "onnx-export", help="export a model bundle to ONNX (predictor, decoder, encoders) for onnxruntime / "
                            "TensorRT, checked against PyTorch")
    p.add_argument("bundle", type=Path, nargs="?", default=None,
                   help="bundle folder (bundle.json + model.safetensors); default: the shipped default model")
    p.add_argument("--out", required=True, type=Path,
                   help="output folder: *.onnx, tokenizer.json, manifest.json (use BUNDLE/onnx to have "
                        "backend onnx find it without a cache)")
    p.add_argument("--no-encoders", action="store_true",
                   help="export the motion model only (the encoders then run as the bundle says)")
    p.add_argument("--opset", type=int, default=None, help="ONNX opset (default 17)")
    p.add_argument("--threads", type=int, default=None, help="onnxruntime threads of the parity check")
    p.set_defaults(func=_run)


def _run(args) -> int:
    from ..onnx_export import OPSET, export_bundle
    from ..paths import DEFAULT_MODEL_DIR

    folder = args.bundle or DEFAULT_MODEL_DIR
    manifest = export_bundle(folder, args.out, opset=args.opset or OPSET, encoders=not args.no_encoders,
                             threads=args.threads)
    print(f"wrote {args.out}: {manifest['model_kind']} bundle {folder}, opset {manifest['opset']}")
    for name, spec in manifest["graphs"].items():
        size = (args.out / spec["file"]).stat().st_size / 1e6
        check = manifest["parity"].get(name if name in ("speech", "text") else "motion", {})
        print(f"  {spec['file']:<16} {size:7.2f} MB   max |onnx - torch| {check.get('max_abs_diff', float('nan')):.2e}")
    for part, spec in manifest["encoders"].items():
        if part not in manifest["graphs"]:
            print(f"  {part} encoder {spec.get('name', spec.get('kind'))}: {spec.get('note', 'not exported')}")
    motion = manifest["parity"]["motion"]
    print(f"  motion check: lengths {motion['lengths']} frames, code agreement {motion['code_agreement']:.3f}")
    return 0
