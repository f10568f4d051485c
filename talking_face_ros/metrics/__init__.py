"""The field's evaluation metrics in plain numpy.

Submodules:

* ``vertex``: LVE, MVE, FDD and EVE on ``(frames, V, 3)`` meshes, as CodeTalker's script computes them;
* ``sampling``: ProbTalk3D's MEE, CE and Diversity over N samples per input;
* ``blendshape``: the same metrics on ``(frames, 52)`` ARKit weights (imported as a module,
  because its names repeat the vertex ones);
* ``regions``: lip / upper-face / eye-and-forehead masks for the ICT-FaceKit rig, and meshes from weights;
* ``lipsync``: lip-sync checks that need only the weights and the phoneme timings or the audio.

The torch-based ``emotion_classifier`` is not imported here, so ``import talking_face_ros.metrics``
stays light.
"""
from . import blendshape, lipsync, regions, sampling, vertex
from .lipsync import (
    ClosureRate,
    Lag,
    OpennessAgreement,
    audio_envelope_lag,
    audio_motion_lag,
    bilabial_closure_rate,
    lip_gap_curve,
    vowel_openness_agreement,
)
from .regions import ict_regions, ict_vertices
from .sampling import ce, ce_per_frame, diversity, mee, mee_per_frame
from .vertex import (
    CM2_TO_M2,
    CM2_TO_MM2,
    eve,
    fdd,
    lve,
    lve_per_frame,
    mve,
    mve_per_frame,
    upper_face_dynamics,
)

__all__ = [
    "blendshape", "lipsync", "regions", "sampling", "vertex",
    "ClosureRate", "Lag", "OpennessAgreement", "audio_envelope_lag", "audio_motion_lag",
    "bilabial_closure_rate", "lip_gap_curve", "vowel_openness_agreement",
    "ict_regions", "ict_vertices",
    "ce", "ce_per_frame", "diversity", "mee", "mee_per_frame",
    "CM2_TO_M2", "CM2_TO_MM2", "eve", "fdd", "lve", "lve_per_frame", "mve", "mve_per_frame",
    "upper_face_dynamics",
]
