"""``talking-face lipsync``: lip-sync measures of any animation of any speech, no ground truth needed.

Phoneme timings come from a ``phonemes.json`` (as ``say`` writes) or from forced alignment of
the speech to its transcript with pocketsphinx (real recordings).
"""
from __future__ import annotations

import json
from pathlib import Path


def register(sub) -> None:
    p = sub.add_parser("lipsync", help="bilabial closure, vowel openness and audio-to-motion lag of an animation")
    p.add_argument("frames", type=Path, help="frame file (.csv/.npz/.json) animating the speech")
    p.add_argument("--audio", required=True, type=Path, help="the speech (WAV)")
    timing = p.add_mutually_exclusive_group(required=True)
    timing.add_argument("--transcript", help="what is said; aligned with pocketsphinx")
    timing.add_argument("--phonemes", type=Path, help="phonemes.json with phone/start/end entries")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=_run)


def load_phonemes_json(path: Path):
    from ..phonemes import PhonemeSegment

    try:
        return [PhonemeSegment(str(d["phone"]), float(d["start"]), float(d["end"]))
                for d in json.loads(Path(path).read_text())]
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise ValueError(f"{path}: not a phoneme list ({exc})") from None


def score(weights, fps, audio, sample_rate, phonemes) -> dict:
    from ..metrics import lipsync

    c = lipsync.bilabial_closure_rate(weights, fps, phonemes)
    v = lipsync.vowel_openness_agreement(weights, fps, phonemes)
    lag = lipsync.audio_motion_lag(weights, fps, phonemes)
    env = lipsync.audio_envelope_lag(weights, fps, audio, sample_rate)
    return {"bilabial_closure": c.rate, "bilabials": c.total, "vowel_openness_spearman": v.spearman,
            "vowel_pairs_ordered": v.pairwise, "vowels": v.vowels, "lag_frames": lag.frames,
            "lag_seconds": lag.seconds, "envelope_lag_frames": env.frames}


def _run(args) -> int:
    import numpy as np

    from ..frames_io import load_frames
    from ..speech.audio import load_wav

    times, weights, _ = load_frames(args.frames)
    fps = 1.0 / float(np.median(np.diff(times))) if len(times) > 1 else 30.0
    audio, sr = load_wav(args.audio)
    if args.phonemes:
        phonemes = load_phonemes_json(args.phonemes)
    else:
        from ..speech.align import align

        phonemes = align(audio, sr, args.transcript)
    result = score(weights, fps, audio, sr, phonemes)
    if args.json:
        print(json.dumps(result, indent=1))
    else:
        for k, v in result.items():
            print(f"{k:26s} {v}")
    return 0
