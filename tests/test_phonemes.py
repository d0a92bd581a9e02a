import json
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from pocketsphinx import get_model_path

from talking_faces.adapters.phoneme_ctc import MAX_PHONE_S, ctc_phones, load_ctc, token_phone
from talking_faces.adapters.phonemes import (
    ARPABET,
    PHONE_LOOP_FRAME_RATES,
    SILENCE,
    PhonemeRecognizer,
    add_bilabials,
    audible_steps,
    extend_stop_closures,
    label_labial_gaps,
    label_labial_murmurs,
    murmur_fraction,
    pool_bilabials,
    relabel_non_labial_bursts,
    snap_to_sound,
    spell,
    stretch_last_word,
    tidy,
    transcript_words,
)
from talking_faces.adapters.viseme import VisemeAdapter
from talking_faces.audio import SAMPLE_RATE
from talking_faces.errors import TalkingFacesError

BILABIALS = {"P", "B", "M"}
# my name (M, M), speak (P), smile (M), papa (P, P), baked, big, blue (B x3), pie (P)
SAMPLE_BILABIALS = 10


@pytest.fixture(scope="module")
def recognizer() -> PhonemeRecognizer:
    return PhonemeRecognizer()


def _assert_well_formed(phones, duration):
    names = [p[0] for p in phones]
    assert set(names) <= set(ARPABET) | {SILENCE}
    assert phones[0][1] == 0.0
    assert phones[-1][2] == pytest.approx(duration, abs=1e-9)
    for (_, start, end), (_, next_start, _) in zip(phones, phones[1:]):
        assert start < end == next_start  # sorted and contiguous
    assert all(a != b or a != SILENCE for a, b in zip(names, names[1:]))  # SIL runs are merged


def test_recognition_format_and_order(recognizer, speech):
    phones = recognizer.recognize_phones(speech)
    _assert_well_formed(phones, speech.shape[0] / SAMPLE_RATE)
    spoken = [p for p in phones if p[0] != SILENCE]
    assert len(spoken) >= 40  # about 70 phones are spoken in the 9.3 s sample
    assert phones[0][0] == SILENCE and 0.3 <= phones[0][2] <= 0.7  # the file opens with 0.5 s of silence
    assert phones[-1][0] == SILENCE and phones[-1][1] >= 8.3  # and ends in silence after 8.6 s


def test_alignment_gives_the_transcript_phones_at_plausible_times(recognizer, speech, transcript):
    phones = recognizer.align(speech, transcript)
    _assert_well_formed(phones, speech.shape[0] / SAMPLE_RATE)
    spoken = [p for p in phones if p[0] != SILENCE]
    assert [p[0] for p in spoken[:5]] == ["HH", "AH", "L", "OW", "DH"]  # "hello th..."
    assert [p[0] for p in spoken[-2:]] == ["P", "AY"]  # "... pie"
    assert spoken[0][1] == pytest.approx(0.5, abs=0.05)
    assert spoken[-1][2] == pytest.approx(8.62, abs=0.05)
    bilabials = [p for p in spoken if p[0] in BILABIALS]
    assert len(bilabials) == SAMPLE_BILABIALS
    papa_baked = [p for p in bilabials if p[1] > 6.5]
    assert [p[0] for p in papa_baked] == ["P", "P", "B", "B", "B", "P"]  # papa baked a big blue pie
    assert all(0.02 <= end - start <= 0.2 for _, start, end in bilabials)


def test_out_of_dictionary_word_is_spelled_and_aligned(recognizer, speech, transcript):
    text = transcript.replace("Talking Faces", "Talkingfaces")
    assert "\ntalkingfaces " not in Path(get_model_path("en-us/cmudict-en-us.dict")).read_text()
    phones = recognizer.align(speech, text)
    _assert_well_formed(phones, speech.shape[0] / SAMPLE_RATE)
    names = [p[0] for p in phones if p[0] != SILENCE]
    assert sum(n in BILABIALS for n in names) == SAMPLE_BILABIALS
    # the spelled word sits between "is" (Z) and "I" (AY), where "talking faces" is spoken
    word = [p for p in phones if 2.3 <= p[1] < 3.35 and p[0] != SILENCE]
    assert [p[0] for p in word] == spell("talkingfaces")


def test_transcript_that_does_not_match_warns_and_falls_back(recognizer, speech, transcript):
    clip = speech[: int(3.3 * SAMPLE_RATE)]  # "Hello there. My name is Talking Faces."
    for text in ("Hello there. My name is Zorblax Quimby.", "hello", "...!"):
        with pytest.warns(UserWarning, match="does not match the audio") as caught:
            phones = recognizer.align(clip, text)
        assert len(caught) == 1 and "\n" not in str(caught[0].message)
        _assert_well_formed(phones, clip.shape[0] / SAMPLE_RATE)
        assert sum(p[0] != SILENCE for p in phones) >= 10


def _with_digital_silence(speech: np.ndarray, lead_s: float, tail_s: float) -> np.ndarray:
    """The sample with its quiet stretches set to exact zeros and padded with exact zeros."""
    quiet = np.abs(speech) < 1e-3
    clip = np.where(quiet, 0.0, speech).astype(np.float32)
    return np.concatenate([np.zeros(int(lead_s * SAMPLE_RATE), np.float32), clip, np.zeros(int(tail_s * SAMPLE_RATE), np.float32)])


@pytest.mark.parametrize("lead_s, tail_s", [(0.0, 0.0), (1.5, 2.0)])
def test_digital_silence_aligns_without_falling_back(recognizer, speech, transcript, lead_s, tail_s):
    clip = _with_digital_silence(speech, lead_s, tail_s)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a fall-back would warn
        phones = recognizer.align(clip, transcript)
    _assert_well_formed(phones, clip.shape[0] / SAMPLE_RATE)
    spoken = [p for p in phones if p[0] != SILENCE]
    assert sum(p[0] in BILABIALS for p in spoken) == SAMPLE_BILABIALS
    assert spoken[0][1] == pytest.approx(lead_s + 0.5, abs=0.05)  # the speech starts 0.5 s into the sample
    assert [p[0] for p in spoken[-2:]] == ["P", "AY"]


def test_recognised_words_find_most_bilabials(recognizer, speech, transcript):
    aligned = [p for p in recognizer.align(speech, transcript) if p[0] in BILABIALS]
    phones = recognizer.recognize(speech)
    _assert_well_formed(phones, speech.shape[0] / SAMPLE_RATE)
    found = [p for p in phones if p[0] in BILABIALS]
    hits = sum(any(fs < e + 0.05 and fe > s - 0.05 for _, fs, fe in found) for _, s, e in aligned)
    assert hits >= 0.8 * len(aligned)  # 9 of 10


def test_labial_gaps_and_bilabials_of_a_second_recogniser():
    t = np.arange(SAMPLE_RATE) / SAMPLE_RATE
    rng = np.random.default_rng(0)
    vowel = 0.3 * np.sin(2 * np.pi * 150 * t)
    low_burst = 0.3 * np.sin(2 * np.pi * 300 * t)  # weak and low: a lip release
    high_burst = 0.3 * np.diff(rng.standard_normal(t.shape[0] + 1))  # white noise differenced: a T-like hiss
    phones = [("AA", 0.0, 0.3), ("SIL", 0.3, 0.36), ("AA", 0.36, 0.6), ("SIL", 0.6, 0.9), ("AA", 0.9, 1.0)]
    for burst, expected in ((low_burst, "P"), (high_burst, SILENCE)):
        audio = np.where((t < 0.3) | (t >= 0.4), vowel, 0.0)
        audio = np.where((t >= 0.36) & (t < 0.4), burst, audio)
        audio[int(0.6 * SAMPLE_RATE) : int(0.9 * SAMPLE_RATE)] = 0.0
        labelled = label_labial_gaps(phones, audio.astype(np.float32))
        assert labelled[1] == (expected, 0.3, 0.36)
        assert labelled[3] == (SILENCE, 0.6, 0.9)  # a pause, not a stop closure
        for heard in ("T", "K", "TH"):  # a recogniser's voiceless phone over the closure and burst
            phones_heard = [("AA", 0.0, 0.3), (heard, 0.3, 0.4), ("AA", 0.4, 1.0)]
            assert label_labial_gaps(phones_heard, audio.astype(np.float32))[1][0] == ("P" if expected == "P" else heard)
        voiced = [("AA", 0.0, 0.3), ("DH", 0.3, 0.4), ("AA", 0.4, 1.0)]  # voicing pulls a burst's centroid down: left alone
        assert label_labial_gaps(voiced, audio.astype(np.float32))[1][0] == "DH"
        heard_as_p = [("AA", 0.0, 0.3), ("P", 0.3, 0.4), ("AA", 0.4, 1.0)]  # a P with a hiss for a burst is T
        assert relabel_non_labial_bursts(heard_as_p, audio.astype(np.float32))[1][0] == ("P" if expected == "P" else "T")
    base = [("SIL", 0.0, 0.2), ("AA", 0.2, 0.5), ("M", 0.5, 0.55), ("AA", 0.55, 1.0)]
    merged = add_bilabials(base, [("B", 0.3, 0.35), ("M", 0.51, 0.56), ("T", 0.7, 0.8)])
    assert merged == [("SIL", 0.0, 0.2), ("AA", 0.2, 0.3), ("B", 0.3, 0.35), ("AA", 0.35, 0.5), ("M", 0.5, 0.55), ("AA", 0.55, 1.0)]
    third = [("SIL", 0.0, 0.8), ("P", 0.8, 0.85), ("AA", 0.85, 1.0)]  # pooled: every source's bilabials, once each
    pooled = pool_bilabials([base, None, [("B", 0.3, 0.35), ("M", 0.51, 0.56), ("T", 0.7, 0.8)], third])
    assert pooled == merged[:-1] + [("AA", 0.55, 0.8), ("P", 0.8, 0.85), ("AA", 0.85, 1.0)]


@pytest.mark.parametrize("burst_hz, expected", [(400.0, "P"), (1000.0, "P"), (2000.0, "K"), (3500.0, "T")])
def test_a_p_whose_burst_is_not_labial_is_t_or_k(burst_hz, expected):
    # a vowel, a 60 ms silent closure, then a 20 ms burst of one tone: its centroid is the tone's frequency
    audio = np.concatenate([_tones(0.3, (0.3, 150.0)), np.zeros(int(0.06 * SAMPLE_RATE), np.float32),
                            _tones(0.03, (0.3, burst_hz)), _tones(0.3, (0.3, 150.0))])
    phones = [("AA", 0.0, 0.3), ("P", 0.3, 0.39), ("AA", 0.39, 0.69)]
    assert relabel_non_labial_bursts(phones, audio)[1] == (expected, 0.3, 0.39)
    assert relabel_non_labial_bursts([("SIL", 0.0, 0.69)], audio) == [("SIL", 0.0, 0.69)]


def _tones(seconds: float, *parts: tuple[float, float]) -> np.ndarray:
    """Sum of sines `(amplitude, hz)` on whole cycles of the 10 ms analysis frames (bin centres)."""
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    return sum(a * np.sin(2 * np.pi * hz * t) for a, hz in parts).astype(np.float32)


@pytest.mark.parametrize("low, mid, expected", [
    (0.18, 0.1, 1.0),  # low band 5.1 dB over the mid band: a murmur
    (0.14, 0.1, 0.0),  # 2.9 dB: under the 4 dB threshold
    (0.1, 0.1, 0.0),  # an open glide: F1 and F2 put as much energy in 400-4000 Hz
    (0.3, 0.0, 1.0),  # all below 400 Hz
])
def test_murmur_fraction_needs_the_energy_below_400_hz(low, mid, expected):
    audio = _tones(0.3, (low, 200.0), (mid, 1000.0))
    assert murmur_fraction(audio, 0.05, 0.25, loud=0.2) == pytest.approx(expected)


def test_murmur_fraction_needs_voicing_and_counts_frames():
    murmur = _tones(0.3, (0.3, 200.0))
    assert murmur_fraction(murmur, 0.05, 0.25, loud=0.3 * 10 ** (40 / 20)) == 0.0  # 40 dB under the clip's loud level
    half = np.concatenate([murmur[: SAMPLE_RATE // 10], _tones(0.1, (0.3, 1000.0))])  # 100 ms murmur, then 100 ms open
    assert murmur_fraction(half, 0.0, 0.2, loud=0.2) == pytest.approx(0.5, abs=0.06)  # frames straddling the edge
    assert murmur_fraction(murmur, 0.1, 0.105, loud=0.2) == 0.0  # shorter than one frame


def test_a_lip_glide_over_a_murmur_is_m():
    audio = np.concatenate([_tones(0.2, (0.2, 1000.0)), _tones(0.1, (0.3, 200.0)), _tones(0.2, (0.2, 1000.0))])
    phones = [("AA", 0.0, 0.2), ("W", 0.2, 0.3), ("AA", 0.3, 0.5)]
    assert label_labial_murmurs(phones, audio, loud=0.2) == [("AA", 0.0, 0.2), ("M", 0.2, 0.3), ("AA", 0.3, 0.5)]
    over_a_vowel = [("W", 0.0, 0.2), ("AA", 0.2, 0.3), ("W", 0.3, 0.5)]  # mouth open: a W stays a W
    assert label_labial_murmurs(over_a_vowel, audio, loud=0.2) == over_a_vowel
    not_labial = [("AA", 0.0, 0.2), ("N", 0.2, 0.3), ("AA", 0.3, 0.5)]  # the murmur of N: its place is not the lips
    assert label_labial_murmurs(not_labial, audio, loud=0.2) == not_labial


def test_phone_loop_decodes_at_the_frame_rate_asked(recognizer, speech):
    clip = speech[: 3 * SAMPLE_RATE]
    for rate in PHONE_LOOP_FRAME_RATES:
        phones = recognizer.recognize_phones(clip, rate)
        _assert_well_formed(phones, clip.shape[0] / SAMPLE_RATE)
        # boundaries between two speech phones come from the decoder's frames (edges next to SIL are snapped)
        inner = [b for (n, _, b), (m, _, _) in zip(phones, phones[1:]) if SILENCE not in (n, m) and m != "P"]
        assert len(inner) >= 10
        assert np.allclose(np.asarray(inner) * rate, np.round(np.asarray(inner) * rate), atol=1e-6)


def test_audible_steps_follow_the_sound_at_any_level():
    t = np.arange(SAMPLE_RATE) / SAMPLE_RATE
    tone = np.where((t >= 0.3) & (t < 0.6), np.sin(2 * np.pi * 200 * t), 0.0)
    for gain in (1.0, 0.001):
        audible = audible_steps((gain * tone).astype(np.float32))
        assert audible.shape == (101,)
        assert np.flatnonzero(audible).tolist() == list(range(29, 60))  # 20 ms windows that touch the tone
    assert not audible_steps(np.zeros(SAMPLE_RATE, np.float32)).any()


def _steps(on_from: float, on_to: float, seconds: float = 2.0) -> np.ndarray:
    k = np.arange(int(seconds * 100) + 1)
    return (k >= round(on_from * 100)) & (k < round(on_to * 100))


def test_speech_edges_snap_to_the_sound():
    phones = [("SIL", 0.0, 0.74), ("M", 0.74, 0.77), ("EY", 0.77, 1.0), ("SIL", 1.0, 2.0)]
    snapped = snap_to_sound(phones, _steps(0.6, 1.1))
    assert snapped == [("SIL", 0.0, 0.6), ("M", 0.6, 0.77), ("EY", 0.77, pytest.approx(1.1)), ("SIL", pytest.approx(1.1), 2.0)]
    far = snap_to_sound(phones, _steps(0.2, 1.0))  # never by more than 150 ms
    assert far[0][2] == pytest.approx(0.59)


def test_stop_after_a_pause_gets_its_closure_and_the_last_word_its_length():
    phones = [("SIL", 0.0, 0.64), ("P", 0.64, 0.67), ("AY", 0.67, 0.8), ("SIL", 0.8, 1.0), ("B", 1.0, 1.05), ("AY", 1.05, 1.2)]
    closed = extend_stop_closures(phones)
    assert closed[:2] == [("SIL", 0.0, pytest.approx(0.56)), ("P", pytest.approx(0.56), 0.67)]
    assert closed[3:5] == phones[3:5]  # a voiced B keeps its own (snapped) start
    squeezed = [("G", 1.0, 1.05), ("EY", 1.05, 1.1), ("M", 1.1, 1.13)]
    stretched = stretch_last_word(squeezed, 0, _steps(1.0, 1.6))
    assert stretched[0][1] == 1.0 and stretched[-1][2] == pytest.approx(1.61)
    assert [p[0] for p in stretched] == ["G", "EY", "M"]
    assert stretched[1][1] == pytest.approx(1.0 + 0.05 * 0.61 / 0.13)  # proportional
    assert stretch_last_word(squeezed, 0, _steps(0.0, 1.13)) == squeezed  # nothing audible after it


def test_letter_to_sound_rules():
    assert spell("zorblax") == ["Z", "AO", "R", "B", "L", "AE", "K", "S"]
    assert spell("phone") == ["F", "AA", "N"]
    assert spell("yummy") == ["Y", "AH", "M", "IY"]
    assert spell("knight") == ["N", "AY", "T"]
    assert spell("'") == []
    for word in ("qwxyz", "strengths", "bubble", "o'brien"):
        assert set(spell(word)) <= set(ARPABET)


def test_transcript_words_normalise_punctuation_and_digits():
    assert transcript_words("Hello, MP3 world! It's 42 o'clock.") == [
        "hello", "mp", "three", "world", "it's", "four", "two", "o'clock"
    ]
    assert transcript_words("... !!") == []


def test_tidy_fills_gaps_clips_and_merges_silence():
    phones = [("P", 0.1, 0.2), ("+NSN+", 0.2, 0.3), ("SIL", 0.3, 0.35), ("AA", 0.4, 2.0)]
    assert tidy(phones, 1.0) == [("SIL", 0.0, 0.1), ("P", 0.1, 0.2), ("SIL", 0.2, 0.4), ("AA", 0.4, 1.0)]
    assert tidy([], 0.5) == [("SIL", 0.0, 0.5)]


def test_decoding_writes_nothing_to_stdout_or_stderr(capfd, speech, transcript):
    fresh = PhonemeRecognizer()  # decoders log while they load, so build new ones here
    clip = speech[: 2 * SAMPLE_RATE]
    assert len(fresh.recognize(clip)) > 1 and len(fresh.recognize_phones(clip)) > 1
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the clip holds more than "hello there"
        assert len(fresh.align(clip, "hello there")) > 1
    out, err = capfd.readouterr()
    assert out == "" and err == ""


# -- phoneme-CTC models from a local folder ---------------------------------------------------------

CTC_VOCAB = ["<pad>", "|", "<unk>", "P", "AA1", "M", "ɪ", "tʃ", "b"]


def test_ctc_tokens_map_to_arpabet():
    assert [token_phone(t) for t in CTC_VOCAB] == [None, SILENCE, None, "P", "AA", "M", "IH", "CH", "B"]
    assert token_phone("ˈaɪ") == "AY" and token_phone("iː") == "IY"


def test_ctc_greedy_decoding_to_contiguous_phones():
    ids = {t: k for k, t in enumerate(CTC_VOCAB)}
    # 50 frames of 20 ms: P at 10-11, AA at 12-19, blanks, M at 30, word break, b at 45
    frames = [0] * 50
    frames[10:12] = [ids["P"]] * 2
    frames[12:20] = [ids["AA1"]] * 8
    frames[30], frames[38], frames[45] = ids["M"], ids["|"], ids["b"]
    logits = np.full((50, len(CTC_VOCAB)), -5.0)
    logits[np.arange(50), frames] = 0.0
    phones = ctc_phones(logits, [token_phone(t) for t in CTC_VOCAB], 0, 1.0)
    # each spike widens by up to MAX_PHONE_S (80 ms), and never past the midpoint to the next spike
    expected = [("SIL", 0.0, 0.12), ("P", 0.12, 0.24), ("AA", 0.24, 0.48), ("SIL", 0.48, 0.52), ("M", 0.52, 0.70),
                ("SIL", 0.70, 0.82), ("B", 0.82, 1.0)]
    assert MAX_PHONE_S == 0.08
    assert [p[0] for p in phones] == [e[0] for e in expected]
    assert np.allclose([p[1:] for p in phones], [e[1:] for e in expected])


def _tiny_ctc_folder(folder: Path, kind: str) -> Path:
    from transformers import HubertConfig, HubertForCTC, Wav2Vec2Config, Wav2Vec2ForCTC

    settings = dict(vocab_size=len(CTC_VOCAB), hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                    intermediate_size=16, conv_dim=(8, 8), conv_stride=(5, 64), conv_kernel=(10, 64),
                    num_conv_pos_embeddings=4, num_conv_pos_embedding_groups=2, pad_token_id=0, do_stable_layer_norm=False)
    config_class, model_class = {"wav2vec2": (Wav2Vec2Config, Wav2Vec2ForCTC), "hubert": (HubertConfig, HubertForCTC)}[kind]
    torch.manual_seed(0)
    model_class(config_class(**settings)).save_pretrained(folder)
    (folder / "vocab.json").write_text(json.dumps({t: k for k, t in enumerate(CTC_VOCAB)}), encoding="utf-8")
    return folder


@pytest.mark.parametrize("kind", ["wav2vec2", "hubert"])
def test_tiny_ctc_model_from_a_local_folder(tmp_path, speech, kind):
    model = load_ctc(_tiny_ctc_folder(tmp_path, kind))
    clip = speech[: 2 * SAMPLE_RATE]
    _assert_well_formed(model.phonemes(clip), 2.0)
    adapter = VisemeAdapter.from_checkpoint(None, phonemes=tmp_path)
    weights = adapter.weights(clip, 30.0)
    assert weights.shape == (60, 32) and np.isfinite(weights).all()


def test_ctc_folder_errors(tmp_path):
    with pytest.raises(TalkingFacesError, match="not found"):
        load_ctc(tmp_path / "missing")
    with pytest.raises(TalkingFacesError, match="vocab.json"):
        load_ctc(tmp_path)


def test_render_takes_a_phoneme_model_folder(tmp_path, speech):
    import soundfile
    from typer.testing import CliRunner

    from talking_faces.cli import app
    from talking_faces.pipeline import animate

    assert "--phonemes" in CliRunner().invoke(app, ["render", "--help"], terminal_width=200).output
    wav = tmp_path / "speech.wav"
    soundfile.write(str(wav), speech[:SAMPLE_RATE], SAMPLE_RATE)
    with pytest.raises(TalkingFacesError, match="Phoneme model folder not found"):
        animate(wav, model_options={"phonemes": tmp_path / "missing"}, device="cpu")
    ctc = _tiny_ctc_folder(tmp_path / "ctc", "wav2vec2")
    assert animate(wav, model_options={"phonemes": ctc}, device="cpu").vertices.shape[0] == 30


def test_long_speech_is_decoded_in_pieces_cut_at_pauses(monkeypatch):
    """Without a transcript, speech longer than UTTERANCE_S is decoded in pieces cut in its pauses, and the
    pieces' phones join into one contiguous cover of the clip."""
    from talking_faces.adapters import phonemes

    rng = np.random.default_rng(3)
    rate = phonemes.SAMPLE_RATE
    speech = (0.2 * rng.standard_normal(int(7.0 * rate))).astype(np.float32)
    pauses = [(2.6, 2.8), (5.0, 5.25)]
    for start, stop in pauses:
        speech[int(start * rate) : int(stop * rate)] *= 1e-3
    bounds = phonemes.utterance_bounds(speech, longest=3.0)
    assert bounds[0][0] == 0 and bounds[-1][1] == speech.shape[0]
    assert all(a[1] == b[0] for a, b in zip(bounds, bounds[1:]))
    assert all(stop - start <= 3.0 * rate for start, stop in bounds)
    cuts = [start / rate for start, _ in bounds[1:]]
    assert len(cuts) == 2 and all(lo <= cut <= hi for cut, (lo, hi) in zip(cuts, pauses))
    assert phonemes.utterance_bounds(speech) == [(0, speech.shape[0])]  # shorter than UTTERANCE_S: one piece

    decoded = []
    monkeypatch.setattr(phonemes, "UTTERANCE_S", 3.0)
    recognizer = phonemes.PhonemeRecognizer()
    monkeypatch.setattr(recognizer, "recognize_utterance", lambda piece: decoded.append(piece.shape[0]) or [("AA", 0.1, piece.shape[0] / rate - 0.1)])
    phones = recognizer.recognize(speech)
    assert decoded == [stop - start for start, stop in phonemes.utterance_bounds(speech, longest=3.0)]
    assert phones[0][1] == 0.0 and phones[-1][2] == pytest.approx(speech.shape[0] / rate)
    assert all(a[2] == pytest.approx(b[1]) for a, b in zip(phones, phones[1:]))
    assert [name for name, _, _ in phones].count("AA") == 3


def test_decoders_made_ahead_are_taken_once_and_decode_like_new_ones(speech):
    """A worker process makes its decoders before the audio arrives; each is handed out once (a decoder's
    results depend on what it decoded before), and a recogniser with them gives a fresh one's phones."""
    from talking_faces.adapters import phonemes

    fresh = PhonemeRecognizer().phonemes(speech)
    phonemes.make_decoders_ahead(transcript=False)
    made = {key: list(decoders) for key, decoders in phonemes._SPARE_DECODERS.items() if decoders}
    assert len(made) == 2 + len(phonemes.PHONE_LOOP_FRAME_RATES)  # words, aligner, one phone loop per rate
    warm = PhonemeRecognizer()
    assert warm.phonemes(speech) == fresh
    assert not any(phonemes._SPARE_DECODERS.values())  # all taken
    used = {id(d) for d in (warm._words, warm._aligner, *warm._allphone.values())}
    assert used == {id(d) for decoders in made.values() for d in decoders}


def test_the_word_helper_gives_the_phones_of_one_process(speech, monkeypatch):
    """In the render's speech worker, long utterances search their words in a second process beside the
    phone loops: the phones are those of one process, utterance after utterance."""
    from talking_faces.adapters import phonemes

    clips = [speech, speech[::-1].copy()]
    here = PhonemeRecognizer()
    expected = [here.recognize(clip) for clip in clips]
    monkeypatch.setattr(phonemes, "_WORD_HELPER_ALLOWED", True)
    monkeypatch.setattr(phonemes, "WORD_HELPER_S", 0.5)
    split = PhonemeRecognizer()
    try:
        assert [split.recognize(clip) for clip in clips] == expected
        assert split._helper is not None and split._words is None  # the words were searched elsewhere
    finally:
        split._helper.close()
