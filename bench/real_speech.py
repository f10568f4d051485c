"""Lip-sync of a model on real speech: the recording `beckett.wav` that moonshine-cpp ships.

    .venv/bin/python bench/real_speech.py [--model talking_face_ros/assets/default_model] [--out out/real_speech]

The speech is aligned to its transcript with pocketsphinx; the model animates the audio alone;
bilabial closure, vowel openness agreement and audio-to-motion lag are measured against the
alignment. The motion teacher driven by the same alignment is printed beside it as a reference
(it sees the phonemes, the model only hears the audio).
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    from talking_face_ros.paths import DEFAULT_MODEL_DIR

    ap.add_argument("--model", type=Path, default=DEFAULT_MODEL_DIR)
    ap.add_argument("--emotion", default="neutral")
    ap.add_argument("--out", type=Path, default=ROOT / "out" / "real_speech")
    args = ap.parse_args()

    from talking_face_ros.commands.lipsync import score
    from talking_face_ros.data.sample import frame_count
    from talking_face_ros.engine import Engine
    from talking_face_ros.frames_io import save_frames
    from talking_face_ros.speech.align import BECKETT_TRANSCRIPT, align, beckett_wav_path
    from talking_face_ros.speech.audio import load_wav
    from talking_face_ros.teacher import phonemes_to_blendshapes

    wav = beckett_wav_path()
    audio, sr = load_wav(wav)
    phonemes = align(audio, sr, BECKETT_TRANSCRIPT)
    engine = Engine.from_bundle(args.model, device="cpu")
    times, model_w = engine.animate(audio, sr, emotion=args.emotion)
    fps = engine.fps
    teacher_w = phonemes_to_blendshapes(phonemes, duration=len(audio) / sr, fps=fps)
    rows = {"model": score(model_w, fps, audio, sr, phonemes),
            "teacher on the alignment": score(teacher_w, fps, audio, sr, phonemes)}
    args.out.mkdir(parents=True, exist_ok=True)
    save_frames(args.out / "beckett_model.csv", times, model_w)
    (args.out / "real_speech.json").write_text(json.dumps(rows, indent=1))
    print(f"{wav.name}: {len(audio) / sr:.2f} s, {sum(p.phone != 'SIL' for p in phonemes)} phones aligned, "
          f"{frame_count(len(audio) / sr, fps)} frames")
    print(f"{'':26s} {'closure':>8s} {'bilabials':>9s} {'vowel rho':>9s} {'lag (fr)':>8s}")
    for name, r in rows.items():
        rho = r["vowel_openness_spearman"]
        print(f"{name:26s} {r['bilabial_closure']:8.3f} {r['bilabials']:9d} "
              f"{(rho if rho is not None else float('nan')):9.3f} {str(r['lag_frames']):>8s}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
