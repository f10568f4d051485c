"""The shared core: ARKit layout, phoneme inventory, lip geometry, motion resampling."""
import numpy as np
import pytest

from talking_face_ros import arkit, lip_geometry, paths, phonemes
from talking_face_ros.data.resample import resample_motion
from talking_face_ros.data.sample import MotionSample, frame_count


def test_arkit_layout():
    assert len(arkit.ARKIT_NAMES) == 52 == len(set(arkit.ARKIT_NAMES))
    assert list(arkit.ARKIT_NAMES) == sorted(arkit.ARKIT_NAMES)  # Apple's alphabetical order
    assert arkit.mirror_name("eyeBlinkLeft") == "eyeBlinkRight"
    assert arkit.mirror_name("mouthRight") == "mouthLeft"
    assert arkit.mirror_name("jawOpen") == "jawOpen"
    for n in arkit.ARKIT_NAMES:
        assert arkit.mirror_name(n) in arkit.INDEX


def test_lip_gap_coefficients_match_the_ict_rig():
    path = paths.ict_rig_path()
    if path is None:
        pytest.skip("ICT-FaceKit rig not available")
    g0, per = lip_geometry.gap_coefficients_from_ict(path)
    assert abs(g0 - lip_geometry.NEUTRAL_GAP) < 1e-3
    np.testing.assert_allclose(per, lip_geometry.GAP_PER_WEIGHT, atol=1e-3)


def test_lip_gap_physics():
    w = np.zeros(52, np.float32)
    assert lip_geometry.lips_closed(w)
    w[arkit.INDEX["jawOpen"]] = 0.5
    assert lip_geometry.lip_gap(w) > 1.0  # half-open jaw: over a centimetre
    w[arkit.INDEX["mouthClose"]] = 0.45  # mouthClose against the open jaw shuts the lips
    assert lip_geometry.lips_closed(w)


def test_phoneme_segments_validate():
    with pytest.raises(ValueError):
        phonemes.PhonemeSegment("XX", 0, 1)
    with pytest.raises(ValueError):
        phonemes.PhonemeSegment("AA", 1, 0.5)
    assert phonemes.normalise_arpabet("ah0") == "AH"
    assert phonemes.normalise_arpabet("sil") == "SIL"
    with pytest.raises(ValueError, match="overlap"):
        phonemes.validate_timeline([phonemes.PhonemeSegment("P", 0, 0.2), phonemes.PhonemeSegment("AA", 0.1, 0.3)])


def test_resample_motion_keeps_shared_instants():
    x = np.arange(61, dtype=np.float32)[:, None].repeat(52, 1) / 60  # 1 s at 60 fps, ramp
    y = resample_motion(x, 60, 30)
    assert y.shape == (31, 52)
    np.testing.assert_allclose(y[:, 0], x[::2, 0], atol=1e-6)
    z = resample_motion(x, 60, 25)
    np.testing.assert_allclose(z[:, 0], np.arange(26) / 25, atol=1e-6)  # a ramp stays a ramp


def test_frame_count_and_sample():
    assert frame_count(1.0, 30) == 30
    assert frame_count(1.01, 30) == 31
    assert frame_count(0.0, 30) == 1
    with pytest.raises(ValueError, match="mono"):
        MotionSample("x", np.zeros((2, 10)), 16000, 30, blendshapes=np.zeros((3, 52)))
    with pytest.raises(ValueError, match="blendshapes or vertices"):
        MotionSample("x", np.zeros(10), 16000, 30)
