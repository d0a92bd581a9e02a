"""Phones from a local phoneme-recognition CTC model (wav2vec2 or HuBERT fine-tuned on phonemes).

The folder holds what `save_pretrained` writes (config.json and the weights) and the tokenizer's
vocab.json. Tokens may be ARPAbet (stress digits allowed) or IPA as espeak writes it; nothing is
ever downloaded.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from talking_faces.audio import SAMPLE_RATE
from talking_faces.errors import TalkingFacesError

from .phonemes import ARPABET, SILENCE, Phone, tidy

# IPA (as espeak writes it for English) -> ARPAbet; longer symbols are matched first.
IPA_TO_ARPABET: dict[str, str] = {
    "p": "P", "b": "B", "m": "M", "f": "F", "v": "V", "θ": "TH", "ð": "DH", "t": "T", "d": "D", "ɾ": "D",
    "k": "K", "g": "G", "ɡ": "G", "ŋ": "NG", "h": "HH", "tʃ": "CH", "dʒ": "JH", "ʃ": "SH", "ʒ": "ZH",
    "s": "S", "z": "Z", "n": "N", "l": "L", "ɫ": "L", "ɹ": "R", "r": "R", "j": "Y", "w": "W",
    "ɑ": "AA", "ɒ": "AA", "a": "AA", "æ": "AE", "ʌ": "AH", "ə": "AH", "ɐ": "AH", "ɔ": "AO", "aʊ": "AW",
    "aɪ": "AY", "ɛ": "EH", "ɜ": "ER", "ɚ": "ER", "ɝ": "ER", "eɪ": "EY", "e": "EY", "ɪ": "IH", "ᵻ": "IH",
    "i": "IY", "oʊ": "OW", "o": "OW", "əʊ": "OW", "ɔɪ": "OY", "ʊ": "UH", "u": "UW",
}
SILENCE_TOKENS = frozenset({"|", " ", "sil", "sp", "spn", "pau", "h#", "<sil>"})
MAX_PHONE_S = 0.08  # a CTC spike stands for at most this much phone on either side; the rest is silence


def token_phone(token: str) -> str | None:
    """The ARPAbet phone (or SIL) a vocabulary token stands for; None for special tokens (blank, unk, bos)."""
    if token.lower() in SILENCE_TOKENS:
        return SILENCE
    arpabet = token.upper().rstrip("012")
    if arpabet in ARPABET:
        return arpabet
    ipa = token.replace("ˈ", "").replace("ˌ", "").replace("ː", "")
    return IPA_TO_ARPABET.get(ipa)


def ctc_phones(log_probs: np.ndarray, phones_of_ids: list[str | None], blank: int, duration: float) -> list[Phone]:
    """Greedy CTC decoding of `(F, C)` frame scores into contiguous phones over `[0, duration]`.

    Repeats collapse and blanks drop; each phone spans its frames, widened to the midpoint of
    the gap to its neighbours but by no more than MAX_PHONE_S; what is left is SIL.
    """
    frame_s = duration / max(log_probs.shape[0], 1)
    best = np.argmax(log_probs, axis=1)
    spikes: list[list] = []  # [phone, first frame, last frame]
    previous = blank
    for f, c in enumerate(best.tolist()):
        if c != blank and c != previous and phones_of_ids[c] is not None:
            spikes.append([phones_of_ids[c], f, f])
        elif c != blank and c == previous and spikes:
            spikes[-1][2] = f
        previous = c
    spikes = [s for s in spikes if s[0] != SILENCE]
    phones = []
    for k, (name, first, last) in enumerate(spikes):
        start, end = first * frame_s, (last + 1) * frame_s
        lo = 0.5 * (spikes[k - 1][2] + 1 + first) * frame_s if k else 0.0
        hi = 0.5 * (last + 1 + spikes[k + 1][1]) * frame_s if k + 1 < len(spikes) else duration
        phones.append((name, max(lo, start - MAX_PHONE_S), min(hi, end + MAX_PHONE_S)))
    return tidy(phones, duration)


class CtcPhonemes:
    """A wav2vec2 or HuBERT CTC model and its vocabulary, loaded from a local folder (CPU)."""

    def __init__(self, folder: str | Path) -> None:
        import torch
        from transformers import AutoConfig, HubertForCTC, Wav2Vec2ForCTC

        folder = Path(folder)
        if not (folder / "config.json").is_file() or not (folder / "vocab.json").is_file():
            raise TalkingFacesError(
                f"{folder} is not a phoneme-CTC model folder (it needs config.json, the weights and vocab.json); "
                "pass the folder save_pretrained wrote, with the tokenizer's vocab.json."
            )
        config = AutoConfig.from_pretrained(folder, local_files_only=True)
        classes = {"wav2vec2": Wav2Vec2ForCTC, "hubert": HubertForCTC}
        if config.model_type not in classes:
            raise TalkingFacesError(f"{folder} holds a {config.model_type} model; --phonemes takes wav2vec2 or HuBERT CTC models.")
        vocab: dict[str, int] = json.loads((folder / "vocab.json").read_text(encoding="utf-8"))
        if len(vocab) > config.vocab_size:
            raise TalkingFacesError(f"{folder}/vocab.json has {len(vocab)} tokens but the model outputs {config.vocab_size}; use the model's own vocab.")
        self.model = classes[config.model_type].from_pretrained(folder, local_files_only=True).eval()
        self.phones_of_ids: list[str | None] = [None] * config.vocab_size
        for token, index in vocab.items():
            self.phones_of_ids[index] = token_phone(token)
        self.blank = int(config.pad_token_id if config.pad_token_id is not None else 0)
        self.normalize = self._normalize_setting(folder)
        self._torch = torch
        if not any(p in ARPABET for p in self.phones_of_ids if p):
            raise TalkingFacesError(f"No token of {folder}/vocab.json is an English phoneme (ARPAbet or IPA); is it a phoneme model?")

    @staticmethod
    def _normalize_setting(folder: Path) -> bool:
        preprocessor = folder / "preprocessor_config.json"
        if preprocessor.is_file():
            return bool(json.loads(preprocessor.read_text()).get("do_normalize", True))
        return True

    def phonemes(self, audio: np.ndarray) -> list[Phone]:
        """Contiguous phones of `(N,)` float32 16 kHz audio."""
        duration = audio.shape[0] / SAMPLE_RATE
        x = audio.astype(np.float32)
        if self.normalize:
            x = (x - x.mean()) / np.sqrt(x.var() + 1e-7)
        with self._torch.inference_mode():
            logits = self.model(self._torch.from_numpy(x)[None]).logits[0]
        return ctc_phones(logits.float().numpy(), self.phones_of_ids, self.blank, duration)


def load_ctc(folder: str | Path) -> CtcPhonemes:
    """The phoneme-CTC model in a local folder; a one-line error when the folder is missing or not one."""
    if not Path(folder).is_dir():
        raise TalkingFacesError(f"Phoneme model folder not found: {folder}; pass a local folder with config.json, weights and vocab.json.")
    return CtcPhonemes(folder)
