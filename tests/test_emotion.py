import numpy as np
import pytest

from talking_faces.aus import AU_INDEX, NUM_AUS
from talking_faces.emotion import parse_emotion
from talking_faces.errors import TalkingFacesError


def _constant(spec: str) -> np.ndarray:
    weights = parse_emotion(spec).weights(10, 30.0)
    assert weights.shape == (10, NUM_AUS) and weights.dtype == np.float32
    assert np.all(weights == weights[0])
    return weights[0]


def test_preset_scales_emfacs_aus():
    w = _constant("happy:0.7")
    expected = np.zeros(NUM_AUS, dtype=np.float32)
    expected[[AU_INDEX["AU6"], AU_INDEX["AU12"]]] = 0.7
    np.testing.assert_array_equal(w, expected)


@pytest.mark.parametrize(
    "emotion, aus",
    [
        ("sad", ["AU1", "AU4", "AU15"]),
        ("surprise", ["AU1", "AU2", "AU5", "AU26"]),
        ("fear", ["AU1", "AU2", "AU4", "AU5", "AU7", "AU20", "AU26"]),
        ("angry", ["AU4", "AU5", "AU7", "AU23"]),
        ("disgust", ["AU9", "AU15", "AU16"]),
    ],
)
def test_emfacs_table(emotion, aus):
    w = _constant(emotion)
    assert sorted(np.flatnonzero(w)) == sorted(AU_INDEX[a] for a in aus)
    assert np.all(w[np.flatnonzero(w)] == 1.0)


def test_neutral_is_zero_and_default_intensity_is_one():
    assert not _constant("neutral").any()
    np.testing.assert_array_equal(_constant("happy"), _constant("happy:1"))


def test_mixture_adds_per_au():
    w = _constant("happy:0.5+surprise:0.3+AU12:0.1")
    assert w[AU_INDEX["AU12"]] == pytest.approx(0.6)
    assert w[AU_INDEX["AU6"]] == pytest.approx(0.5)
    assert w[AU_INDEX["AU26"]] == pytest.approx(0.3)


def test_raw_aus_and_sided_names():
    w = _constant("AU12:0.8 + au6:0.4 + AU30L:0.2")
    assert w[AU_INDEX["AU12"]] == pytest.approx(0.8)
    assert w[AU_INDEX["AU6"]] == pytest.approx(0.4)
    assert w[AU_INDEX["AU30L"]] == pytest.approx(0.2)
    assert np.count_nonzero(w) == 3


def test_keyframes_hold_hit_and_ease():
    track = parse_emotion("neutral@0,happy:0.8@1.5,sad:0.6@4")
    fps = 30.0
    w = track.weights(int(5 * fps), fps)
    au12, au15 = AU_INDEX["AU12"], AU_INDEX["AU15"]
    assert w[0, au12] == 0.0
    assert w[45, au12] == pytest.approx(0.8)  # exactly on the keyframe at 1.5 s
    assert w[120, au15] == pytest.approx(0.6) and w[120, au12] == pytest.approx(0.0)
    assert w[149, au15] == pytest.approx(0.6)  # held after the last keyframe
    # smoothstep: halfway in time is halfway in weight, and the curve is monotonic
    assert track.weights(4, 4.0)[3, au12] == pytest.approx(0.4, abs=1e-6)  # t = 0.75 s
    assert np.all(np.diff(w[:46, au12]) >= 0)
    # zero velocity at keyframes: the first step is much smaller than the middle step
    assert w[1, au12] - w[0, au12] < 0.1 * (w[23, au12] - w[22, au12])


@pytest.mark.parametrize(
    "spec, phrase",
    [
        ("hapy:0.7", "did you mean 'happy'"),
        ("suprise", "did you mean 'surprise'"),
        ("AU13:0.5", "Unknown emotion or AU"),
        ("happy:abc", "Bad intensity"),
        ("happy:1.5", "outside [0, 1]"),
        ("happy:-0.2", "Bad intensity"),
        ("", "Empty emotion spec"),
        ("happy+", "Empty name"),
        ("happy@1,sad", "has no time"),
        ("happy@2,sad@1", "must increase"),
        ("happy@x", "Bad keyframe time"),
        ("__import__('os')", "Unknown emotion"),
    ],
)
def test_bad_specs_have_helpful_errors(spec, phrase):
    with pytest.raises(TalkingFacesError, match=None) as info:
        parse_emotion(spec)
    assert phrase in str(info.value)
    assert "\n" not in str(info.value)
