"""`talkface render`: audio in, MP4 of a talking, emoting face out."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from talking_faces.emotion import SPEC_GRAMMAR
from talking_faces.errors import TalkingFacesError
from talking_faces.exporters import EXPORT_HELP, check_export_path

from .common import SAMPLER_HELP, SAMPLES_HELP, SEED_HELP, STEPS_HELP, VQVAE_HELP, app, collect_from_here, console, model_options

OUTPUT_SUFFIX = "_talkface.mp4"

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


def _verbatim(text: str) -> str:
    """`text` with click's no-rewrap marker before each paragraph, so the grammar keeps its lines."""
    return "\n\n".join("\b\n" + paragraph for paragraph in text.strip().split("\n\n"))


def default_output(audio: Path) -> Path:
    """`<audio name>_talkface.mp4` in the current folder: never the input, whatever its suffix."""
    return Path(f"{audio.stem}{OUTPUT_SUFFIX}")


def check_options(audio: Path, out: Path, save_vertices: Path | None, emotion: str, model: str, device: str,
                  size: int, inputs: tuple[tuple[str, Path | None], ...]) -> None:
    """Every option and path check that needs no model: a mistake is reported in a fraction of a second.

    `inputs`: (option, path or None) of every input file, the audio first.
    """
    from talking_faces.adapters import check_adapter_name
    from talking_faces.atomic import check_not_an_input, check_output_writable
    from talking_faces.audio import check_audio_file
    from talking_faces.devices import check_device_name
    from talking_faces.emotion import parse_emotion
    from talking_faces.video import check_size

    parse_emotion(emotion)
    check_adapter_name(model)
    check_device_name(device)
    check_size(size)
    check_audio_file(audio)
    for option, path in inputs[1:]:
        if path is not None and not path.exists():
            raise TalkingFacesError(f"{option} {path} does not exist; pass the path of an existing file.")
    check_not_an_input(out, inputs, "--out")
    check_output_writable(out)
    if save_vertices is not None:
        check_not_an_input(save_vertices, (*inputs, ("--out", out)), "--save-vertices")
        check_output_writable(save_vertices)


@app.command(help="Render speech as an MP4 of a 3D face that talks and shows an emotion.\n\n"
             "Emotion specs (--emotion):\n\n" + _verbatim(SPEC_GRAMMAR))
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
    out: Optional[Path] = typer.Option(None, help="Output MP4. Default: <audio name>_talkface.mp4 in the current folder."),
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
    landmarks: Optional[Path] = typer.Option(None, help="Landmarks JSON for the rig of your own head (see `talkface landmarks`)."),
    export: Optional[list[Path]] = typer.Option(None, help=EXPORT_HELP),
    phonemes: Optional[Path] = typer.Option(None, help="Local phoneme-CTC model folder (wav2vec2/HuBERT) for lip-sync without --text (viseme model)."),
) -> None:
    from talking_faces.gl import use_backend
    from talking_faces.atomic import check_output_writable

    out = out if out is not None else default_output(audio)
    inputs = (("audio", audio), ("--identity", identity), ("--au-basis", au_basis), ("--aublendnet", aublendnet),
              ("--codebook", codebook), ("--checkpoint", checkpoint), ("--vqvae", vqvae), ("--landmarks", landmarks),
              ("--phonemes", phonemes))
    check_options(audio, out, save_vertices, emotion, model, device, size, inputs)
    exports = export or []
    for path in exports:
        check_output_writable(check_export_path(path, inputs=tuple(p for _, p in inputs)))
    worker = _speech_worker(model, transcript=text is not None, phonemes=phonemes)  # first: it loads its models on the other core meanwhile
    try:
        use_backend(gl)  # a missing OpenGL library fails now, not after the animation

        from talking_faces.appearance import vertex_albedo
        from talking_faces.atomic import staged_outputs
        from talking_faces.pipeline import load_identity_or_default, render_sample, sample_path, stream_animation, view_rotation
        from talking_faces.render import FaceRenderer
        from talking_faces.threads import Background

        face = load_identity_or_default(identity)
        if face.faces is None:
            raise TalkingFacesError(
                f"{identity} is a point cloud (vertices without faces), so it cannot be rendered; "
                "pass the mesh as OBJ, PLY or NPZ with its triangles."
            )
        albedo = vertex_albedo(face.vertices, face.faces)  # eyes and lips, from the identity's landmarks, once
        # Exports join the stage (gather): every output of the run appears together, or none does.
        with _stage_progress() as progress, staged_outputs(gather=bool(exports)) as stage:
            stages = progress.add_task("Starting", total=None)

            def stage_name(name: str) -> None:
                progress.update(stages, description=name)

            speech = Background(lambda: stream_animation(
                audio, identity=face, emotion=emotion, model=model, checkpoint=checkpoint, au_basis=au_basis,
                aublendnet=aublendnet, codebook=codebook, style=style, text=text, fps=fps, device=device, stage=stage_name,
                seed=seed, num_samples=num_samples, model_options=model_options(sampler, steps, vqvae, phonemes), albedo=albedo,
                landmarks=landmarks, exports=bool(exports), worker=worker,
            ), name="talkface-speech")
            # The GL context and shaders are built while the speech is analysed.
            with FaceRenderer(face.vertices, face.faces, size=size, gl=gl, albedo=albedo, view=view_rotation(face)) as renderer:
                animation = speech.result()
                if worker is not None:
                    worker.close()  # its decoders' memory goes back now, not at the end of the render
                collect_from_here()
                progress.update(stages, description="Animation ready", total=1, completed=1)
                for k in range(animation.num_samples):
                    label = "Rendering frames" if animation.num_samples == 1 else f"Rendering sample {k}"
                    frames = progress.add_task(label, total=animation.num_frames)
                    vertices = None if save_vertices is None else stage.path(sample_path(save_vertices, k))
                    render_sample(animation, stage.path(sample_path(out, k)), renderer, vertices, sample=k,
                                  on_frame=lambda: progress.advance(frames))
            if exports:
                _export(exports, face, animation, audio, landmarks)
    finally:
        if worker is not None:
            worker.close()
    more = f" and {sample_path(out, 1).name} .. {sample_path(out, num_samples - 1).name}" if num_samples > 1 else ""
    console.print(f"[green]wrote[/] {out}{more} ({animation.num_frames} frames, {animation.duration:.2f} s)")


def _speech_worker(model: str, transcript: bool, phonemes: Path | None):
    """A worker process for the speech analysis of adapters that hold the GIL for long (the viseme model's
    pocketsphinx: `speech.speak_apart`), warming up (`SpeechAdapter.warm_up`) while the renderer starts
    on the other core; else None (also with `--phonemes`: a phoneme-CTC model runs in torch, in this process)."""
    from talking_faces.adapters import adapter_class
    from talking_faces.worker import WorkerProcess

    adapter = adapter_class(model)
    if not adapter.speaks_apart or phonemes is not None:
        return None
    worker = WorkerProcess(f"{model} speech", preload=("talking_faces.speech",))
    worker.run(adapter.warm_up, transcript)
    return worker


def _export(paths: list[Path], face, animation, audio: Path, landmarks: Path | None) -> None:
    """Write `--export` files of every sample (sample k > 0 to `<stem>_sample<k>`), AU curves on the animation's basis."""
    from talking_faces.audio import load_audio
    from talking_faces.exporters import export_animation
    from talking_faces.pipeline import sample_path

    speech = load_audio(audio)
    for k in range(animation.num_samples):
        au_weights, speech_offsets = animation.curves(k)
        for report in export_animation([sample_path(p, k) for p in paths], face, animation.basis, animation.fps,
                                       au_weights, speech_offsets, speech, landmarks_file=landmarks):
            console.print(f"[green]wrote[/] {report.path}" + (f" ({report.note})" if report.note else ""))
