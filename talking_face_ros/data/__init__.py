"""Motion data: the common sample type, motion resampling and loaders for real capture formats.

Every source becomes a ``MotionSample`` (``sample``): Live Link Face CSV takes (``livelink``),
EmoTalk's 3D-ETF blendshape sequences (``etf3d``) and VOCASET / BIWI vertex sequences
(``vertex_sequences``). ``load_dataset`` (``datasets``) walks a directory of any of them and
reports each malformed file instead of stopping at the first.
"""
from .resample import resample_motion
from .sample import MotionSample, frame_count

_FROM_DATASETS = ("FormatError", "LoadError", "LoadReport", "load_dataset")
__all__ = ["MotionSample", "frame_count", "resample_motion", *_FROM_DATASETS]


def __getattr__(name):
    # The loaders pull in scipy's WAV reader; importing the sample type alone should not.
    if name in _FROM_DATASETS:
        from . import datasets

        return getattr(datasets, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
