"""The procedural motion teacher: phoneme timings + emotion + speaking style -> ARKit curves.

It generates the motion half of the synthetic corpus and is the reference the metrics judge
against, so its curves are physically grounded: coarticulated visemes, lips sealed on every
bilabial (on the ICT rig's lip gap), FACS expressions, blinks and gaze. It accepts timings from
any source (espeak-ng, pocketsphinx alignments of real speech).
"""
from .expression import expression_layer
from .motion import phonemes_to_blendshapes

__all__ = ["expression_layer", "phonemes_to_blendshapes"]
