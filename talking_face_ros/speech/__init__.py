"""Speech for the talking face: synthetic voices with exact phoneme timings, and real speech.

- espeak:  espeak-ng synthesis through its C library, with sample-accurate ARPAbet timelines
- prosody: how the eight MEAD emotions move a voice's pitch, range, rate and loudness
- audio:   WAV input/output and resampling (float32 mono everywhere)
- align:   forced alignment of recorded speech to its transcript (pocketsphinx)

Submodules are imported on use; importing this package loads neither espeak-ng nor pocketsphinx.
"""
