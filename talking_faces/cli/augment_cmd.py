"""`talkface augment`: an AU-labelled image set (the paper's section 5.4); see docs/augment.md."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from talking_faces.errors import TalkingFacesError

from .common import app, console

DEFAULT_CHARACTERS = 16


def text(path: Optional[Path]) -> Optional[str]:
    """Identity sources hold absolute paths as plain strings: picklable for workers, JSON for the manifest,
    and the same when a run is resumed from another folder."""
    return None if path is None else str(path.resolve())


@app.command(help="Render an AU-labelled image set for training AU detectors: many identities, sparse AU "
                  "combinations with exact labels, varied head poses, lights, skin tones and backgrounds. "
                  "Reruns with the same options resume; see docs/augment.md.")
def augment(
    out: Path = typer.Option(..., help="Output folder: images/, labels.csv, manifest.json (resumed if it exists)."),
    count: int = typer.Option(..., min=1, help="Number of images (a larger count on a finished set appends)."),
    characters: Optional[int] = typer.Option(
        None, min=0, help=f"Varied shapes of the bundled character (default {DEFAULT_CHARACTERS} when no other identity is given)."),
    identity: list[Path] = typer.Option([], help="Identity mesh (OBJ, PLY, NPZ); repeatable. Bases: --au-basis, AUBlendNet or the rig."),
    au_basis: Optional[Path] = typer.Option(None, help="AUBlendSet basis (folder or (33, V*3) .npy) for the --identity meshes."),
    aublendset: Optional[Path] = typer.Option(None, help="AUBlendSet identities: an identity folder, a folder of them, or .npy files."),
    faces: Optional[Path] = typer.Option(None, help="Mesh whose triangles draw --aublendset identities (e.g. any FLAME .ply)."),
    flame_model: Optional[Path] = typer.Option(None, help="FLAME generic_model.pkl: random FLAME heads (--flame-heads)."),
    flame_heads: int = typer.Option(8, min=0, help="Random FLAME heads drawn with --flame-model."),
    aublendnet: Optional[Path] = typer.Option(None, help="AUBlendNet stage-2 checkpoint (with --codebook): bases of FLAME identities."),
    codebook: Optional[Path] = typer.Option(None, help="AUBlendNet stage-1 (AU codebook) checkpoint."),
    size: int = typer.Option(224, min=16, max=4096, help="Image width and height in pixels."),
    yaw: float = typer.Option(30.0, min=0.0, max=90.0, help="Head yaw uniform in [-YAW, YAW] degrees."),
    pitch: float = typer.Option(15.0, min=0.0, max=60.0, help="Head pitch uniform in [-PITCH, PITCH] degrees."),
    roll: float = typer.Option(10.0, min=0.0, max=60.0, help="Head roll uniform in [-ROLL, ROLL] degrees."),
    seed: int = typer.Option(0, min=0, help="Seed of the whole set (identities' shapes, AUs, views)."),
    save_meshes: bool = typer.Option(False, help="Also write meshes/<stem>.npy and identities/<name>/{neutral,bases}.npy."),
    landmarks: bool = typer.Option(False, help="Also write landmarks.csv: 2D pixel positions of the rig landmarks."),
    workers: int = typer.Option(1, min=1, help="Rendering processes (each with its own GL context)."),
    ray: Optional[str] = typer.Option(None, "--ray", help="Ray address, or 'local', to spread rendering over a Ray cluster."),
    gl: str = typer.Option("auto", help="OpenGL backend: auto, osmesa or egl."),
) -> None:
    from talking_faces.augment import (AUBlendSetSource, AugmentOptions, CharacterSource, FlameSource, MeshSource,
                                       Views, aublendset_paths, run_augment)
    from talking_faces.gl import use_backend

    use_backend(gl)  # a missing OpenGL library fails now, not after the identities are built
    if (aublendnet is None) != (codebook is None):
        raise TalkingFacesError("AUBlendNet needs both checkpoints: --aublendnet STAGE2 and --codebook STAGE1.")
    if au_basis is not None and not identity:
        raise TalkingFacesError("--au-basis applies to --identity meshes; give one, or use --aublendset for AUBlendSet identities.")
    sources: list = [MeshSource(text(p), text(au_basis), text(aublendnet), text(codebook)) for p in identity]
    if aublendset is not None:
        faces_from = faces if faces is not None else next((p for p in identity), None)
        sources += [AUBlendSetSource(text(p), text(faces_from)) for p in aublendset_paths(aublendset)]
    if flame_model is not None:
        sources += [FlameSource(text(flame_model), seed, k, text(aublendnet), text(codebook)) for k in range(flame_heads)]
    if characters is None:
        characters = 0 if sources else DEFAULT_CHARACTERS
    sources = [CharacterSource(seed, k) for k in range(characters)] + sources
    options = AugmentOptions(count=count, size=size, seed=seed, views=Views(yaw, pitch, roll), save_meshes=save_meshes,
                             landmarks=landmarks, gl=gl)
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), TimeRemainingColumn())
    with Progress(*columns, console=console) as progress:
        building = progress.add_task("Building identities", total=len(sources))
        rendering = progress.add_task("Rendering images", total=count, start=False)

        def on_progress(done: int, total: int) -> None:
            progress.start_task(rendering)
            progress.update(rendering, completed=done, total=total)

        result = run_augment(out, sources, options, workers=workers, ray_address=ray,
                             on_identity=lambda done, total: progress.update(building, completed=done, total=total),
                             on_progress=on_progress)
    console.print(f"[green]rendered[/] {result.rendered} images ({result.existing} from an earlier run) in {out}; "
                  f"wrote {', '.join(str(f) for f in result.files)}")
