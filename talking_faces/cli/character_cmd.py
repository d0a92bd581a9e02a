"""`talkface rig` and `talkface landmarks`: your own head's AU/ARKit rig as a .glb, and a check of its landmarks."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Optional

import typer

from talking_faces.atomic import same_file
from talking_faces.errors import TalkingFacesError

from .common import app, console

IDENTITY_HELP = "Your head: OBJ, PLY, GLB/glTF or NPZ with faces, in any units, Y-up or Z-up."
LANDMARKS_HELP = "Landmarks JSON (named points as vertex indices or coordinates) to use instead of, or to correct, detection."


def _analyse(identity: Path, landmarks: Optional[Path]):
    from talking_faces.identity import load_identity
    from talking_faces.rig import analyse_identity

    face = load_identity(identity)
    if face.faces is None:
        raise TalkingFacesError(f"{identity} holds vertices but no faces; pass the head as OBJ, PLY, GLB or NPZ with faces.")
    return face, analyse_identity(face, landmarks)


def _not_the_input(out: Path, identity: Path) -> None:
    if same_file(out, identity):
        raise TalkingFacesError(f"The output {out} is the input mesh; choose another output name (inputs are never overwritten).")


def _warn(caught: list) -> None:
    for warning in caught:
        console.print(f"[yellow]warning:[/] {warning.message}", highlight=False, soft_wrap=True)


@app.command(help="Build the 32 AU blendshapes (and with --arkit the 52 ARKit ones) for your head and write them as a .glb.")
def rig(
    identity: Path = typer.Option(..., help=IDENTITY_HELP),
    out: Path = typer.Option(..., help="Output .glb: the head with its morph targets (names in mesh.extras.targetNames)."),
    arkit: bool = typer.Option(False, help="Also write the 52 ARKit blendshapes (eyeBlinkLeft ... tongueOut)."),
    landmarks: Optional[Path] = typer.Option(None, help=LANDMARKS_HELP),
) -> None:
    from talking_faces.exporters import export_rig
    from talking_faces.rig import build_rig_basis
    from talking_faces.video import check_output_writable

    if out.suffix.lower() != ".glb":
        raise TalkingFacesError(f"The rig is written as .glb, not {out.suffix!r}; name the output e.g. rig.glb.")
    _not_the_input(out, identity)
    check_output_writable(out)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        face, analysis = _analyse(identity, landmarks)
        basis = build_rig_basis(face, landmarks_file=landmarks, analysis=analysis)
    _warn(caught)
    report = export_rig(out, face, basis, analysis, arkit=arkit)
    console.print(f"[green]wrote[/] {out} ({report.note})")


@app.command(help="Detect the rig landmarks of your head and draw them on a front and side view, for a quick check.")
def landmarks(
    identity: Path = typer.Option(..., help=IDENTITY_HELP),
    out: Path = typer.Option(..., help="Check image (.png): the head front and side with its landmarks."),
    save: Optional[Path] = typer.Option(None, help="Also write the landmarks as an editable JSON (the head's own units and axes)."),
    landmarks: Optional[Path] = typer.Option(None, help=LANDMARKS_HELP),
    size: int = typer.Option(512, min=64, max=4096, help="Height of each view in pixels."),
    gl: str = typer.Option("auto", help="OpenGL backend: auto, osmesa or egl."),
) -> None:
    from talking_faces.atomic import atomic_write
    from talking_faces.gl import use_backend
    from talking_faces.landmark_sheet import landmark_sheet
    from talking_faces.video import check_output_writable

    if out.suffix.lower() != ".png":
        raise TalkingFacesError(f"The check image is written as .png, not {out.suffix!r}; name it e.g. check.png.")
    for path in (out, save) if save is not None else (out,):
        _not_the_input(path, identity)
        check_output_writable(path)
    use_backend(gl)
    face, analysis = _analyse(identity, landmarks)
    for note in analysis.warnings:
        console.print(f"[yellow]warning:[/] {note}", highlight=False, soft_wrap=True)
    sheet = landmark_sheet(face, analysis, size=size, gl=gl)
    from PIL import Image

    atomic_write(out, lambda tmp: Image.fromarray(sheet).save(tmp, format="PNG"))
    if save is not None:
        atomic_write(save, lambda tmp: tmp.write_text(analysis.landmarks_json()))
    console.print(f"[green]wrote[/] {out}" + (f" and {save}" if save else "") + f" (head in {analysis.frame.describe()})")
