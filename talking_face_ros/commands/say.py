"""``talking-face say``: speak a sentence with espeak-ng and animate it with the motion teacher.

The procedural teacher is the corpus' ground truth; this command shows it on any text, which is
the quickest way to see what the model learns from (and a text-driven face for robots that
speak through espeak-ng themselves).
"""
from __future__ import annotations

import json
from pathlib import Path


def register(sub) -> None:
    p = sub.add_parser("say", help="speak TEXT with espeak-ng and animate it with the motion teacher")
    p.add_argument("text", help="what to say")
    p.add_argument("--emotion", default="neutral", help="MEAD emotion (neutral, happy, sad, angry, surprised, "
                   "fearful, disgusted, contemptuous)")
    p.add_argument("--intensity", type=int, default=2, choices=(1, 2, 3))
    p.add_argument("--voice", default="us_annie", help="voice id from the corpus voices (default us_annie)")
    p.add_argument("--fps", type=float, default=30.0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", required=True, type=Path, help="folder for speech.wav, frames.csv, phonemes.json")
    p.add_argument("--video", action="store_true", help="also render face.mp4 and contact_sheet.png")
    p.add_argument("--rig", default="robot", help="rig for --video: 'robot' (default), 'ict' or a rig .npz")
    p.set_defaults(func=_run)


def _run(args) -> int:
    from ..corpus.voices import VOICES, voice_by_id
    from ..data.sample import frame_count
    from ..emotions import check
    from ..frames_io import save_frames
    from ..speech.audio import save_wav
    from ..speech.espeak import synthesize
    from ..speech.prosody import emotion_prosody
    from ..teacher import phonemes_to_blendshapes

    intensity = 1 if args.emotion == "neutral" else args.intensity
    check(args.emotion, intensity)
    try:
        voice = voice_by_id(args.voice)
    except (KeyError, ValueError):
        raise ValueError(f"unknown voice {args.voice!r}; one of {', '.join(v.voice_id for v in VOICES)}") from None
    speech = synthesize(args.text, voice=voice, prosody=emotion_prosody(args.emotion, intensity, voice))
    duration = len(speech.audio) / speech.sample_rate
    from ..corpus.generate import loudness_envelope

    frames = frame_count(duration, args.fps)
    weights = phonemes_to_blendshapes(
        speech.phonemes, duration=duration, fps=args.fps, emotion=args.emotion, intensity=intensity,
        style=voice.style, seed=args.seed,
        loudness=loudness_envelope(speech.audio, speech.sample_rate, args.fps, frames), loudness_rate=args.fps)
    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    wav = save_wav(out / "speech.wav", speech.audio, speech.sample_rate)
    times = [i / args.fps for i in range(len(weights))]
    save_frames(out / "frames.csv", times, weights)
    (out / "phonemes.json").write_text(json.dumps(
        [{"phone": p.phone, "start": round(p.start, 5), "end": round(p.end, 5)} for p in speech.phonemes], indent=0))
    print(f"{duration:.2f} s of speech, {len(weights)} frames -> {out}/speech.wav, frames.csv, phonemes.json")
    if args.video:
        from .render import render_outputs

        render_outputs(weights, args.fps, wav, out / "face.mp4", out / "contact_sheet.png", rig_spec=args.rig)
    return 0
