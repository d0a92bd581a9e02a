"""`talkface render`: audio in, MP4 of a talking, emoting face out."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import numpy as np
import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from talking_faces.atomic import atomic_write
from talking_faces.emotion import SPEC_GRAMMAR
from talking_faces.errors import TalkingFacesError

from .common import SAMPLER_HELP, SAMPLES_HELP, SEED_HELP, STEPS_HELP, VQVAE_HELP, app, console, model_options

EMOTION_HELP = (
    "Emotion spec. Presets neutral, happy, sad, surprise, fear, angry, disgust, contempt with an intensity "
    "in [0, 1] (happy:0.7); mixtures (happy:0.5+surprise:0.3); raw AUs (AU12:0.8+AU6:0.4); keyframes in "
    "seconds with smooth transitions (neutral@0,happy:0.8@1.5,sad:0.6@4)."
)


def _stage_progress() -> Progress:
    return Progress(
        SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        console=console, transient=False, disable=not console.is_terminal,  # logs and pipes get only the result line
    )


@app.command(help="Render speech as an MP4 of a 3D face that talks and shows an emotion.\n\nEmotion specs (--emotion):\n\n" + SPEC_GRAMMAR)
def render(
    audio: Path = typer.Argument(..., help="Speech audio (WAV, FLAC, MP3, M4A, OGG; any sample rate)."),
    identity: Optional[Path] = typer.Option(None, help="Neutral mesh (OBJ, PLY, NPY, NPZ). Default: the bundled character."),
    emotion: str = typer.Option("neutral", help=EMOTION_HELP),
    au_basis: Optional[Path] = typer.Option(None, help="AUBlendSet basis: identity folder or (33, V*3) .npy."),
    aublendnet: Optional[Path] = typer.Option(None, help="AUBlendNet stage-2 checkpoint (with --codebook), FLAME only."),
    codebook: Optional[Path] = typer.Option(None, help="AUBlendNet stage-1 (AU codebook) checkpoint."),
    model: str = typer.Option("viseme", help="Speech model: viseme (no weights), faceformer or facediffuser (with --checkpoint), lgldm (with --checkpoint and --vqvae)."),
    checkpoint: Optional[Path] = typer.Option(None, help="Speech model checkpoint, e.g. FaceFormer's vocaset.pth."),
    style: Optional[str] = typer.Option(None, help="Speaking style: training-subject name or index (learned models)."),
    text: Optional[str] = typer.Option(None, help="Transcript, for forced alignment of phonemes (viseme model)."),
    out: Optional[Path] = typer.Option(None, help="Output MP4. Default: <audio name>.mp4 in the current folder."),
    fps: float = typer.Option(30.0, min=1.0, max=240.0, help="Video frame rate."),
    size: int = typer.Option(512, min=64, max=4096, help="Video width and height in pixels."),
    device: str = typer.Option("auto", help="auto, cpu or cuda."),
    gl: str = typer.Option("auto", help="OpenGL backend: auto, osmesa or egl."),
    save_vertices: Optional[Path] = typer.Option(None, help="Also write the final (T, V, 3) float32 vertices to this .npy."),
    seed: Optional[int] = typer.Option(None, help=SEED_HELP),
    num_samples: int = typer.Option(1, min=1, help=SAMPLES_HELP + " Sample k > 0 is written to <out>_sample<k>.mp4."),
    sampler: Optional[str] = typer.Option(None, help=SAMPLER_HELP),
    steps: Optional[int] = typer.Option(None, min=1, help=STEPS_HELP),
    vqvae: Optional[Path] = typer.Option(None, help=VQVAE_HELP),
) -> None:
    from talking_faces.emotion import parse_emotion
    from talking_faces.gl import use_backend
    from talking_faces.pipeline import animate, load_identity_or_default
    from talking_faces.video import check_output_writable, check_size, render_mp4

    out = out if out is not None else Path(audio.stem + ".mp4")
    check_size(size)
    check_output_writable(out)
    use_backend(gl)  # a missing OpenGL library fails now, not after the animation
    if save_vertices is not None:
        check_output_writable(save_vertices)
    parse_emotion(emotion)  # a bad spec fails before any file is read
    face = load_identity_or_default(identity)
    if face.faces is None:
        raise TalkingFacesError(
            f"{identity} holds vertices but no faces, so it cannot be rendered; pass it as OBJ, PLY or NPZ with faces."
        )
    with _stage_progress() as progress:
        stages = progress.add_task("Starting", total=None)

        def stage(name: str) -> None:
            progress.update(stages, description=name)

        animation = animate(
            audio, identity=face, emotion=emotion, model=model, checkpoint=checkpoint, au_basis=au_basis,
            aublendnet=aublendnet, codebook=codebook, style=style, text=text, fps=fps, device=device, stage=stage,
            seed=seed, num_samples=num_samples, model_options=model_options(sampler, steps, vqvae),
        )
        progress.update(stages, description="Animation ready", total=1, completed=1)
        frames = progress.add_task("Rendering frames", total=animation.vertices.shape[0])
        render_mp4(animation, out, size=size, gl=gl, on_frame=lambda: progress.advance(frames))
    if save_vertices is not None:
        atomic_write(save_vertices, lambda tmp: np.save(tmp, animation.vertices))
    console.print(f"[green]wrote[/] {out} ({animation.vertices.shape[0]} frames, {animation.duration:.2f} s)")
