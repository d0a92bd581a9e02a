"""`talkface data ...`: converting dataset downloads into the layouts talkface reads."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

from .common import console, data_app


@data_app.command("vocaset")
def vocaset(
    raw: Path = typer.Option(
        ..., help="Raw VOCASET folder: data_verts.npy, raw_audio_fixed.pkl, subj_seq_to_idx.pkl, templates.pkl."
    ),
    out: Path = typer.Option(..., help="Output folder for wav/, vertices_npy/ and templates.pkl."),
) -> None:
    """Convert the raw VOCASET release into the processed layout (wav/, vertices_npy/, templates.pkl)."""
    from talking_faces.data.vocaset_raw import convert_raw_vocaset

    with Progress(TextColumn("Converting VOCASET"), BarColumn(), MofNCompleteColumn(), console=console) as progress:
        task = progress.add_task("convert", total=None)
        counts = convert_raw_vocaset(raw, out, on_sequence=lambda name, total: progress.update(task, advance=1, total=total))
    console.print(f"[green]wrote[/] {counts['written']} sequences to {out} (skipped {counts['skipped']} without audio or frames)")
