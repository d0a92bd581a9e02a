from pathlib import Path

import pytest
from pocketsphinx import get_model_path

from talking_faces.adapters.phonemes import (
    ARPABET,
    SILENCE,
    PhonemeRecognizer,
    spell,
    tidy,
    transcript_words,
)
from talking_faces.audio import SAMPLE_RATE

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
    phones = recognizer.recognize(speech)
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


def test_transcript_that_cannot_be_aligned_falls_back_to_recognition(recognizer, speech, transcript):
    text = transcript.replace("Talking Faces", "Zorblax Quimby")
    phones = recognizer.align(speech, text)
    _assert_well_formed(phones, speech.shape[0] / SAMPLE_RATE)
    assert sum(p[0] != SILENCE for p in phones) >= 40


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
    assert len(fresh.recognize(clip)) > 1
    assert len(fresh.align(clip, "hello there")) > 1
    out, err = capfd.readouterr()
    assert out == "" and err == ""
