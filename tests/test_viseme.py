import numpy as np
import pytest
import torch

from talking_faces.adapters import SpeechRequest, adapter_class
from talking_faces.adapters.phonemes import ARPABET, SILENCE
from talking_faces.adapters.viseme import (
    DOMINANCE,
    PHONE_VISEMES,
    RELEASE_S,
    VISEME_AUS,
    VisemeAdapter,
    loudness,
    speech_weights,
)
from talking_faces.audio import SAMPLE_RATE
from talking_faces.aus import AU_INDEX, AU_NAMES
from talking_faces.basis import AUBasis
from talking_faces.errors import TalkingFacesError
from talking_faces.identity import Identity
from talking_faces.speech import speak

FPS = VisemeAdapter.fps
LIP_AUS = {"AU10", "AU16", "AU17", "AU18", "AU20", "AU22", "AU23", "AU24", "AU25", "AU26", "AU27", "AU28"}
OPEN_VOWELS = {"AA", "AE", "AH", "AO", "AW", "AY", "EH", "EY"}
UPPER, LOWER, LEFT, RIGHT, BROW = range(5)
PRESSOR = VISEME_AUS["PP"]["AU24"]


def speech_offsets(adapter, audio, identity, basis, text=None, fps=FPS) -> torch.Tensor:
    """`(T, V, 3)` Offset_spe through the speech path."""
    request = SpeechRequest(audio=audio, identity=identity, basis=basis, text=text, fps=fps)
    track = speak(adapter, request)
    return track.offsets(0, track.num_frames, torch.from_numpy(basis.offsets))


def _opening(weights: np.ndarray) -> np.ndarray:
    return weights[:, AU_INDEX["AU25"]] + weights[:, AU_INDEX["AU26"]]


@pytest.fixture(scope="module")
def face() -> tuple[Identity, AUBasis]:
    """Five vertices: upper and lower lip centres, mouth corners, a brow. Offsets in metres."""
    vertices = np.array([[0, 0, 0], [0, -0.001, 0], [-0.025, -0.0005, 0], [0.025, -0.0005, 0], [0, 0.06, 0]], np.float32)
    offsets = np.zeros((32, 5, 3), np.float32)
    offsets[AU_INDEX["AU26"], LOWER, 1] = -0.012  # jaw drop
    offsets[AU_INDEX["AU25"], [UPPER, LOWER], 1] = [0.002, -0.003]  # lips part
    offsets[AU_INDEX["AU16"], LOWER, 1] = -0.002
    offsets[AU_INDEX["AU24"], [UPPER, LOWER], 1] = [-0.0005, 0.0005]  # pressed together
    offsets[AU_INDEX["AU18"], [LEFT, RIGHT], 0] = [0.006, -0.006]  # pucker pulls the corners in
    offsets[AU_INDEX["AU20"], [LEFT, RIGHT], 0] = [-0.005, 0.005]
    for name in set(AU_NAMES) - LIP_AUS:
        offsets[AU_INDEX[name], BROW, 1] = 0.004  # every non-lip AU moves the brow
    return Identity(vertices, None, "lips"), AUBasis(offsets, vertices, "test")


@pytest.fixture(scope="module")
def adapter() -> VisemeAdapter:
    return VisemeAdapter.from_checkpoint(None, device="cpu")


@pytest.fixture(scope="module")
def phones(adapter, speech, transcript):
    return adapter.recognizer.align(speech, transcript)


@pytest.fixture(scope="module")
def offsets(adapter, speech, transcript, face) -> torch.Tensor:
    identity, basis = face
    return speech_offsets(adapter, speech, identity, basis, text=transcript)


@pytest.fixture(scope="module")
def weights(phones, speech) -> np.ndarray:
    return speech_weights(phones, speech, FPS)


def _frame(t: float) -> int:
    return int(round(t * FPS))


def _frame_rms(audio: np.ndarray, num_frames: int) -> np.ndarray:
    half = int(0.03 * SAMPLE_RATE)
    centres = (np.arange(num_frames) / FPS * SAMPLE_RATE).astype(int)
    return np.array([np.sqrt(np.mean(audio[max(c - half, 0) : c + half] ** 2)) for c in centres])


def test_tables_cover_arpabet_and_use_only_lip_aus():
    assert set(PHONE_VISEMES) == set(ARPABET) | {SILENCE}
    assert len(ARPABET) == 39 and len(VISEME_AUS) == 15
    assert {v for vs in PHONE_VISEMES.values() for v in vs} == set(VISEME_AUS) == set(DOMINANCE)
    for aus in VISEME_AUS.values():
        assert set(aus) <= LIP_AUS
        assert all(0.0 < w <= 1.0 for w in aus.values())
    assert VISEME_AUS["sil"] == {}


def test_output_shape_dtype_and_device(offsets, speech, face):
    identity, _ = face
    frames = round(speech.shape[0] / SAMPLE_RATE * FPS)
    assert frames == 280
    assert offsets.shape == (frames, identity.num_vertices, 3)
    assert offsets.dtype == torch.float32 and offsets.device.type == "cpu"
    assert float(offsets.abs().max()) > 0.005  # the jaw moves by millimetres


def test_registered_as_default_viseme_model():
    assert adapter_class("viseme") is VisemeAdapter
    assert VisemeAdapter.requires == {"basis"} and VisemeAdapter.topology is None
    assert {"text", "fps"} <= VisemeAdapter.accepts and "style" not in VisemeAdapter.accepts


def test_leading_and_trailing_silence_are_exactly_still(offsets, phones):
    first = next(p for p in phones if p[0] != SILENCE)
    last = [p for p in phones if p[0] != SILENCE][-1]
    leading = [k for k in range(offsets.shape[0]) if k / FPS <= first[1]]
    trailing = [k for k in range(offsets.shape[0]) if k / FPS >= last[2] + RELEASE_S]
    assert len(leading) == 16 and len(trailing) >= 10
    assert torch.count_nonzero(offsets[leading]) == 0
    assert torch.count_nonzero(offsets[trailing]) == 0
    assert torch.count_nonzero(offsets[leading[-1] + 2]) > 0  # and it starts moving right after


def test_bilabials_close_and_press_the_lips(offsets, weights, phones):
    bilabials = [p for p in phones if p[0] in {"P", "B", "M"}]
    assert len(bilabials) == 10
    for _, start, end in bilabials:
        k = _frame((start + end) / 2)
        for au in ("AU16", "AU25", "AU26"):
            assert weights[k, AU_INDEX[au]] == 0.0
        assert weights[k, AU_INDEX["AU24"]] >= PRESSOR - 1e-6
        gap = float(offsets[k, UPPER, 1] - offsets[k, LOWER, 1])
        assert gap == pytest.approx(-0.001 * weights[k, AU_INDEX["AU24"]], abs=1e-7)  # pressed, not parted


def test_vowels_open_the_mouth(offsets, weights, phones):
    vowels = [p for p in phones if p[0] in OPEN_VOWELS and p[2] - p[1] >= 0.08]
    assert len(vowels) >= 10
    openings = np.array([_opening(weights)[_frame((s + e) / 2)] for _, s, e in vowels])
    gaps = np.array([float(offsets[_frame((s + e) / 2), UPPER, 1] - offsets[_frame((s + e) / 2), LOWER, 1]) for _, s, e in vowels])
    assert openings.min() > 0.6 and openings.mean() > 0.85  # measured 0.80 and 0.98
    assert gaps.min() > 0.002 and gaps.mean() > 0.005  # millimetres of jaw and lip opening


def test_speech_moves_only_the_lips(offsets):
    assert torch.count_nonzero(offsets[:, BROW]) == 0


def test_opening_follows_loudness(adapter, weights, speech):
    rms = _frame_rms(speech, weights.shape[0])
    assert np.corrcoef(_opening(weights), rms)[0, 1] > 0.7  # measured 0.82 with the transcript
    recognised = adapter.weights(speech, FPS)
    assert np.corrcoef(_opening(recognised), rms)[0, 1] > 0.6  # and without one


def test_quiet_half_opens_less(phones, speech, weights):
    middle = speech.shape[0] // 2
    quiet = speech.copy()
    quiet[middle:] *= 0.2  # -14 dB
    quieter = speech_weights(phones, quiet, FPS)
    k = _frame(middle / SAMPLE_RATE)
    loud_open, quiet_open = _opening(weights), _opening(quieter)
    assert quiet_open[k:].sum() < 0.7 * loud_open[k:].sum()  # measured 0.53
    # the loud half barely changes (slightly up: the clip's reference level drops); measured 1.09
    assert 0.95 < quiet_open[:k].sum() / loud_open[:k].sum() < 1.2


def test_loudness_is_gated_and_normalised_per_clip():
    t = np.arange(2 * SAMPLE_RATE) / SAMPLE_RATE
    tone = np.sin(2 * np.pi * 220 * t).astype(np.float32)
    tone[SAMPLE_RATE:] *= 0.1  # second second 20 dB quieter
    clip = np.concatenate([np.zeros(SAMPLE_RATE, np.float32), tone])
    level = loudness(clip)
    assert level.shape == (clip.shape[0] // 160 + 1,)
    assert np.count_nonzero(level[:97]) == 0  # exactly 0 in silence, up to the window's reach
    assert level[110:190] == pytest.approx(1.0, abs=0.01)
    assert level[210:290] == pytest.approx(1.0 - 20.0 / 30.0, abs=0.01)
    assert np.count_nonzero(loudness(0.1 * clip)) == np.count_nonzero(level)  # per-clip level
    noise = 1e-4 * np.random.default_rng(0).standard_normal(SAMPLE_RATE).astype(np.float32)
    assert np.count_nonzero(loudness(noise)) == 0  # under -60 dBFS: the noise gate


@pytest.mark.parametrize("num_samples, frames", [(2 * SAMPLE_RATE, 60), (16_160, 30), (10, 1)])
def test_silent_clip_gives_a_still_face(adapter, face, num_samples, frames):
    identity, basis = face
    for audio in (np.zeros(num_samples, np.float32), 3e-4 * np.random.default_rng(1).standard_normal(num_samples).astype(np.float32)):
        out = speech_offsets(adapter, audio, identity, basis, text="hello there")
        assert out.shape == (frames, 5, 3)
        assert torch.count_nonzero(out) == 0


def test_coarticulation_on_hand_made_phones():
    phones = [("SIL", 0.0, 0.3), ("AA", 0.3, 0.5), ("M", 0.5, 0.56), ("AA", 0.56, 0.7), ("T", 0.7, 0.76),
              ("UW", 0.76, 1.0), ("SIL", 1.0, 1.5)]
    t = np.arange(int(1.5 * SAMPLE_RATE)) / SAMPLE_RATE
    audio = (0.3 * np.sin(2 * np.pi * 150 * t) * ((t >= 0.3) & (t < 1.0))).astype(np.float32)
    w = speech_weights(phones, audio, 100.0)  # 100 fps: read values at 10 ms
    pucker, press = w[:, AU_INDEX["AU18"]], w[:, AU_INDEX["AU24"]]
    assert np.count_nonzero(w[:31]) == 0  # leading silence
    assert _opening(w)[40] > 1.2 and _opening(w)[53] == 0.0 and press[53] >= PRESSOR - 1e-6
    assert pucker[73] > 0.25  # rounding of UW already shows on the T before it (anticipation)
    assert pucker[65] < pucker[73] < pucker[88]
    assert np.count_nonzero(w[int(100 * (1.0 + RELEASE_S)) + 2 :]) == 0  # still after the release


def test_errors_name_the_fix(adapter, face, speech):
    identity, basis = face
    with pytest.raises(TalkingFacesError, match="needs no checkpoint"):
        VisemeAdapter.from_checkpoint("model.pt")
    with pytest.raises(TalkingFacesError, match="takes no options"):
        VisemeAdapter.from_checkpoint(None, temperature=0.5)
    with pytest.raises(TalkingFacesError, match="needs --au-basis"):
        speak(adapter, SpeechRequest(audio=speech, identity=identity))
    with pytest.raises(TalkingFacesError, match="no training styles; drop --style"):
        speak(adapter, SpeechRequest(audio=speech, identity=identity, basis=basis, style="5"))
    with pytest.raises(TalkingFacesError, match="deterministic"):
        speak(adapter, SpeechRequest(audio=speech, identity=identity, basis=basis, num_samples=2))
    with pytest.warns(UserWarning, match="does not use --seed"):
        speak(adapter, SpeechRequest(audio=np.zeros(1600, np.float32), identity=identity, basis=basis,
                                     generator=torch.Generator().manual_seed(0)))
    other = AUBasis(np.zeros((32, 7, 3), np.float32), None, "other")
    with pytest.raises(TalkingFacesError, match="7 vertices"):
        speech_offsets(adapter, speech, identity, other)


def test_default_character_opens_on_vowels_and_closes_on_bilabials(adapter, speech, transcript, phones):
    character = pytest.importorskip("talking_faces.character")
    rig = pytest.importorskip("talking_faces.rig")
    identity, landmarks = character.load_default_character(), character.default_character_landmarks()
    out = speech_offsets(adapter, speech, identity, rig.build_rig_basis(identity), text=transcript).numpy()
    upper, lower = (int(np.argmin(np.linalg.norm(identity.vertices - landmarks.points[name], axis=1)))
                    for name in ("upper_lip_centre", "lower_lip_centre"))
    gap = identity.vertices[upper, 1] + out[:, upper, 1] - identity.vertices[lower, 1] - out[:, lower, 1]  # (T,) metres
    vowels = [_frame((s + e) / 2) for name, s, e in phones if name in OPEN_VOWELS and e - s >= 0.08]
    bilabials = [_frame((s + e) / 2) for name, s, e in phones if name in {"P", "B", "M"}]
    assert gap[vowels].min() > 0.004  # measured 5.4 to 9.1 mm
    assert -0.002 < gap[bilabials].min() and gap[bilabials].max() < 0.0  # pressed: measured -0.7 to -0.8 mm
    assert np.count_nonzero(out[: _frame(0.5)]) == 0  # neutral (1.8 mm apart) in the leading silence


def test_phones_heard_in_silence_do_not_move_the_lips():
    phones = [("SIL", 0.0, 0.2), ("UW", 0.2, 0.4), ("SIL", 0.4, 0.6), ("AA", 0.6, 0.9), ("SIL", 0.9, 1.0)]
    t = np.arange(SAMPLE_RATE) / SAMPLE_RATE
    audio = (0.3 * np.sin(2 * np.pi * 150 * t) * ((t >= 0.6) & (t < 0.9))).astype(np.float32)
    w = speech_weights(phones, audio, 100.0)
    assert np.count_nonzero(w[:60]) == 0  # the UW has no sound above the gate: it counts as silence
    assert _opening(w)[75] > 1.2


def test_any_frame_rate_keeps_bilabials_closed(adapter, speech, transcript, phones):
    w = adapter.weights(speech, 25.0, transcript)
    assert w.shape == (round(speech.shape[0] / SAMPLE_RATE * 25), 32)
    bilabials = [int(round((s + e) / 2 * 25)) for name, s, e in phones if name in {"P", "B", "M"}]
    assert _opening(w)[bilabials].max() == 0.0  # retiming 30 fps to 25 fps leaves up to 0.02 here
