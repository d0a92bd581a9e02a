"""`talkface eval lipsync`: audio-visual offset, bilabial closures, pause stillness and jitter of one render."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from .common import console, eval_app

ROWS = (
    ("offset_ms", "audio-visual offset (ms, + = lips first)", "{:+.0f}"),
    ("closure_rate", "bilabial closures reached", "{:.1%}"),
    ("closure_error_ms", "closure timing error (ms)", "{:.1f}"),
    ("pause_motion_mm", "lip motion in pauses (mm)", "{:.2f}"),
    ("jitter_mm", "frame-to-frame jitter (mm)", "{:.3f}"),
)


@eval_app.command("lipsync", help="Score the lip-sync of one render against its audio: offset, bilabial closures, "
                  "pause stillness, jitter. Needs no dataset; see docs/viseme.md.")
def eval_lipsync(
    audio: Path = typer.Argument(..., help="The speech the render was made from (any format ffmpeg reads)."),
    vertices: Path = typer.Argument(..., help="(T, V, 3) float vertices, e.g. from talkface render --save-vertices."),
    text: Optional[str] = typer.Option(None, help="Transcript; without it the words are recognised."),
    identity: Optional[Path] = typer.Option(None, help="Neutral mesh the render was made on (default: the bundled character). FLAME meshes need faces (PLY, OBJ)."),
    fps: float = typer.Option(30.0, min=1.0, max=240.0, help="Frame rate of the vertices."),
    phonemes: Optional[Path] = typer.Option(None, help="Local folder of a phoneme-CTC model (wav2vec2/HuBERT) for transcript-free timing."),
    json: Optional[Path] = typer.Option(None, "--json", help="Also write the figures as JSON to this file."),
) -> None:
    import json as json_module

    from talking_faces.adapters.phoneme_ctc import load_ctc
    from talking_faces.adapters.phonemes import PhonemeRecognizer
    from talking_faces.atomic import atomic_write
    from talking_faces.audio import load_audio
    from talking_faces.eval.lipsync import evaluate_render, load_vertex_sequence
    from talking_faces.pipeline import load_identity_or_default

    face = load_identity_or_default(identity)
    frames = load_vertex_sequence(vertices, face.num_vertices)
    speech = load_audio(audio)
    recognizer = PhonemeRecognizer(ctc=load_ctc(phonemes) if phonemes is not None else None)
    with console.status("Timing the phonemes"):
        phones = recognizer.phonemes(speech, text)
    scores = evaluate_render(speech, frames, face, fps, phones)
    table = Table(title=f"Lip-sync of {vertices.name} ({scores['frames']} frames, {scores['bilabials']} bilabials)")
    table.add_column("measure")
    table.add_column("value", justify="right")
    for key, label, form in ROWS:
        value = scores[key]
        table.add_row(label, "n/a" if isinstance(value, float) and math.isnan(value) else form.format(value))
    console.print(table)
    if json is not None:
        clean = {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in scores.items()}
        atomic_write(json, lambda tmp: tmp.write_text(json_module.dumps(clean, indent=2)))
        console.print(f"[green]wrote[/] {json}")
