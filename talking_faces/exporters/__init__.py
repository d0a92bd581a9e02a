"""Exports of an animation and of a rig, for the tools animators use (see docs/character.md).

`export_animation(path, ...)` writes one file, its format chosen by the suffix:

- `.glb`: the identity with its 32 AU morph targets (plus, for offsets that are not AU weights, the
  fewest PCA morph targets that reproduce them within 0.1 mm) and an animation of the weights at the
  frame rate; the speech is written beside it as `.wav`.
- `.csv`: ARKit-52 curves in the Live Link Face layout (Unreal Live Link, MetaHuman, ARKit rigs).
- `.json`: the 32 AU weight curves with their names and the frame rate.

`export_animation` takes the identity, its AU basis, the frame rate, AU weights `(T, 32)` and/or speech
offsets `(T, V, 3)`, so any render loop can call them. Everything is written in the identity's own
units, axes and vertex order.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from talking_faces.aus import AU_NAMES, NUM_AUS
from talking_faces.atomic import same_file
from talking_faces.errors import TalkingFacesError

if TYPE_CHECKING:  # the CLI imports this package for its help text: keep it light
    from talking_faces.basis import AUBasis
    from talking_faces.head_frame import HeadFrame
    from talking_faces.head_landmarks import HeadAnalysis
    from talking_faces.identity import Identity

EXPORT_SUFFIXES = (".glb", ".csv", ".json")
EXPORT_HELP = (
    "Also export the animation (repeatable; format by suffix): .glb (head, AU morph targets and their animation, "
    "WAV beside it), .csv (ARKit-52 curves, Live Link Face layout), .json (the 32 AU curves)."
)
PCA_TOLERANCE_M = 1e-4  # 0.1 mm: how closely PCA morph targets reproduce speech offsets


@dataclass(frozen=True)
class ExportReport:
    """What an export wrote, with one line for the user (e.g. the PCA or NNLS error in mm)."""

    path: Path
    note: str


def check_export_path(path: str | Path, inputs: tuple[str | Path | None, ...] = ()) -> Path:
    """Raise unless `path` has a supported suffix and neither it nor the WAV written beside a .glb is
    one of the `inputs` (inputs are never overwritten); returns it as a Path."""
    path = Path(path)
    if path.suffix.lower() not in EXPORT_SUFFIXES:
        raise TalkingFacesError(f"Cannot export {path}: unknown format {path.suffix!r}; use one of {', '.join(EXPORT_SUFFIXES)}.")
    written = [path] + ([path.with_suffix(".wav")] if path.suffix.lower() == ".glb" else [])
    for item in (Path(i) for i in inputs if i is not None):
        for out in written:
            if same_file(out, item):
                raise TalkingFacesError(f"Exporting {path} would overwrite the input {item}; choose another export name.")
    return path


def _frame(identity: Identity, analysis: HeadAnalysis | None) -> HeadFrame:
    """The head's units and axes: from its analysis, else detected, else its width alone."""
    from talking_faces.head_frame import detect_mesh_frame, units_only_frame

    if analysis is not None:
        return analysis.frame
    detected = None if identity.faces is None else detect_mesh_frame(identity.vertices, identity.faces)
    return units_only_frame(identity.vertices) if detected is None else detected


def au_curves(basis: AUBasis, au_weights: np.ndarray | None, speech_offsets=None) -> tuple[np.ndarray, np.ndarray | None]:
    """Total AU weights `(T, 32)`: the given weights plus speech offsets `(T, V, 3)` solved onto the basis
    (per-frame NNLS), and the solve's RMS per-vertex residual `(T,)` (None without offsets)."""
    from talking_faces.solve import fit_weights

    if au_weights is None and speech_offsets is None:
        raise TalkingFacesError("Nothing to export: give AU weights or speech offsets.")
    weights = None if au_weights is None else np.asarray(au_weights, dtype=np.float64)
    residual = None
    if speech_offsets is not None:
        fitted, residual = fit_weights(speech_offsets, basis.offsets)
        weights = fitted if weights is None else weights + fitted
    return weights, residual


def export_animation(
    paths: str | Path | list[str | Path],
    identity: Identity,
    basis: AUBasis,
    fps: float,
    au_weights: np.ndarray | None = None,
    speech_offsets=None,
    audio: np.ndarray | None = None,
    analysis: HeadAnalysis | None = None,
    landmarks_file: str | Path | None = None,
) -> list[ExportReport]:
    """Write an animation to one or more files; each format follows the suffix of its path.

    Args:
        paths: output files (.glb, .csv, .json).
        identity: the neutral head M0 `(V, 3)`.
        basis: its AU basis `(32, V, 3)`.
        fps: frame rate of the curves.
        au_weights: `(T, 32)` AU weights (emotion track, viseme speech), or None.
        speech_offsets: `(T, V, 3)` Offset_spe of a learned adapter (numpy, torch or a memory map), or None.
            The animation is M0 + speech_offsets + au_weights @ basis.
        audio: `(N,)` 16 kHz speech, written beside a .glb as WAV.
        analysis: the head's frame and landmarks (`rig.analyse_identity`); found when a .csv needs them,
            with the landmarks of `landmarks_file` if given.
    Returns:
        One report per file, with the fitting errors in millimetres.
    """
    paths = [check_export_path(p) for p in ([paths] if isinstance(paths, (str, Path)) else paths)]
    if au_weights is None and speech_offsets is None:
        raise TalkingFacesError("Nothing to export: give AU weights or speech offsets.")
    basis.check_matches(identity.num_vertices)
    suffixes = {p.suffix.lower() for p in paths}
    if analysis is None and ".csv" in suffixes:
        from talking_faces.rig import analyse_identity

        analysis = analyse_identity(identity, landmarks_file)
    frame = _frame(identity, analysis)
    weights, residual = au_curves(basis, au_weights, speech_offsets) if suffixes & {".csv", ".json"} else (None, None)
    reports = []
    for path in paths:
        suffix = path.suffix.lower()
        if suffix == ".json":
            from .curves import write_au_json

            write_au_json(path, weights, fps)
            reports.append(ExportReport(path, _residual_note(residual, frame)))
        elif suffix == ".csv":
            from talking_faces.arkit import arkit_shapes, arkit_weights

            from .livelink import write_live_link_csv

            shapes = arkit_shapes(identity, basis.offsets, analysis)
            curves, arkit_residual = arkit_weights(weights, basis.offsets, shapes)
            write_live_link_csv(path, curves, fps)
            note = _residual_note(residual, frame)
            fit = f"ARKit fit {_rms_residual(arkit_residual, frame)}"
            reports.append(ExportReport(path, (note + "; " if note else "") + fit))
        else:
            reports.append(_export_glb(path, identity, basis, fps, au_weights, speech_offsets, audio, frame))
    return reports


def _residual_note(residual: np.ndarray | None, frame: HeadFrame) -> str:
    if residual is None:
        return ""
    return f"speech offsets solved to AU weights (NNLS), {_rms_residual(residual, frame)}"


def _rms_residual(residual: np.ndarray, frame: HeadFrame) -> str:
    """The text "RMS residual M mm (max X)" of per-frame residuals `(T,)` in the head's units."""
    mm = 1000.0 * frame.scale
    return f"RMS residual {mm * residual.mean():.3f} mm (max {mm * residual.max():.3f})"


def _export_glb(path, identity, basis, fps, au_weights, speech_offsets, audio, frame: HeadFrame) -> ExportReport:
    from talking_faces.solve import pca_to_tolerance

    from .gltf import write_glb

    targets, names, note = [basis.offsets], list(AU_NAMES), ""
    num_frames = len(au_weights) if au_weights is not None else len(speech_offsets)
    weights = [np.zeros((num_frames, NUM_AUS), np.float32) if au_weights is None else np.asarray(au_weights, np.float32)]
    if speech_offsets is not None:
        components, coefficients, error = pca_to_tolerance(speech_offsets, PCA_TOLERANCE_M / frame.scale)
        targets.append(components)
        names += [f"speech_pca_{k:02d}" for k in range(len(components))]
        weights.append(coefficients)
        note = f"{len(components)} PCA morph targets for the speech offsets, max error {1000.0 * frame.scale * error:.4f} mm"
    write_glb(path, identity.vertices, identity.faces, np.concatenate(targets), names, np.concatenate(weights, axis=1), fps,
              frame.scale * frame.rotation)
    if audio is not None:
        import soundfile

        from talking_faces.atomic import atomic_write
        from talking_faces.audio import SAMPLE_RATE

        wav = path.with_suffix(".wav")
        atomic_write(wav, lambda tmp: soundfile.write(str(tmp), np.asarray(audio, np.float32), SAMPLE_RATE))
        note = (note + "; " if note else "") + f"audio {wav.name}"
    return ExportReport(path, note)


def export_rig(path: str | Path, identity: Identity, basis: AUBasis, analysis: HeadAnalysis, arkit: bool = False) -> ExportReport:
    """Write the head with its 32 AU morph targets (and the 52 ARKit shapes with `arkit`) as a .glb."""
    from .gltf import write_glb

    path = Path(path)
    if path.suffix.lower() != ".glb":
        raise TalkingFacesError(f"A rig is written as .glb, not {path.suffix!r}; name the output RIG.glb.")
    targets, names = [basis.offsets], list(AU_NAMES)
    if arkit:
        from talking_faces.arkit import ARKIT_NAMES, arkit_shapes

        targets.append(arkit_shapes(identity, basis.offsets, analysis))
        names += list(ARKIT_NAMES)
    frame = analysis.frame
    write_glb(path, identity.vertices, identity.faces, np.concatenate(targets), names, None, None, frame.scale * frame.rotation)
    return ExportReport(path, f"{len(names)} morph targets; head in {frame.describe()}")
