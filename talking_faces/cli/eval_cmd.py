"""`talkface eval`: LVE, FDD, V-LVE and diversity of a speech model on VOCASET or 3D MEAD.

Two modes:
- `--predictions DIR`: score precomputed `{sequence}_condition_{condition}.npy` files;
- `--model NAME [--checkpoint C] [--au-basis B | --aublendnet S2 --codebook S1]`: run a speech adapter
  over the split and score it alone and with AU-basis emotion offsets (the rows of Table 4).
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import click
import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from .common import SAMPLER_HELP, SEED_HELP, STEPS_HELP, VQVAE_HELP, console, eval_app, model_options


@eval_app.callback(invoke_without_command=True)
def evaluate(
    ctx: typer.Context,
    dataset: Optional[str] = typer.Option(None, help="vocaset, mead (layout detected), mead-emote or mead-lgldm."),
    data_root: Optional[Path] = typer.Option(None, help="Dataset folder."),
    split: str = typer.Option("test", help="train, val, test or all (EMOTE-style MEAD also: pred-train, pred-val, pred-test)."),
    regions: Optional[Path] = typer.Option(None, help="FLAME_masks.pkl, or a folder with lve.txt and fdd.txt."),
    out: Optional[Path] = typer.Option(None, help="Output folder: results.md/json/csv and the resume cache."),
    predictions: Optional[Path] = typer.Option(None, help="Folder of {sequence}_condition_{condition}.npy predictions."),
    method: Optional[str] = typer.Option(None, help="Row name for --predictions (default: the folder's name)."),
    skip_missing: bool = typer.Option(False, help="Skip sequences without predictions (listed in the report); default: fail."),
    model: Optional[str] = typer.Option(None, help="Speech adapter to run, e.g. faceformer."),
    checkpoint: Optional[Path] = typer.Option(None, help="The adapter's checkpoint."),
    style: Optional[str] = typer.Option(None, help="Speaking style (training subject) for the scored animation."),
    style_diversity: bool = typer.Option(True, help="Compute the model row's diversity over the adapter's styles."),
    au_basis: Optional[Path] = typer.Option(None, help="AUBlendSet basis for the +AUBlendNet row."),
    aublendnet: Optional[Path] = typer.Option(None, help="AUBlendNet stage-2 checkpoint for the +AUBlendNet row."),
    codebook: Optional[Path] = typer.Option(None, help="AUBlendNet stage-1 (AU codebook) checkpoint."),
    flame_model: Optional[Path] = typer.Option(None, help="FLAME generic_model.pkl, for datasets stored as FLAME parameters."),
    device: str = typer.Option("auto", help="auto, cpu or cuda (adapter mode)."),
    seed: Optional[int] = typer.Option(None, help=SEED_HELP),
    num_samples: int = typer.Option(1, min=1, help="Samples per sequence for the sample-diversity column (diffusion models)."),
    sampler: Optional[str] = typer.Option(None, help=SAMPLER_HELP),
    steps: Optional[int] = typer.Option(None, min=1, help=STEPS_HELP),
    vqvae: Optional[Path] = typer.Option(None, help=VQVAE_HELP),
    save_predictions: Optional[Path] = typer.Option(None, help="Also write what was scored as DIR/<method>/{sequence}_condition_0.npy."),
    workers: int = typer.Option(1, min=1, help="Sequences scored in parallel (processes; models load once per worker)."),
    ray: Optional[str] = typer.Option(None, "--ray", help="Ray address, or 'local', to run the per-sequence map on Ray."),
) -> None:
    """Score a speech model (LVE, FDD, V-LVE, diversity) on a dataset split; see docs/eval.md."""
    if ctx.invoked_subcommand is not None:
        return
    required = (("dataset", dataset), ("data-root", data_root), ("regions", regions), ("out", out))
    missing = [f"--{name}" for name, value in required if value is None]
    if missing:
        raise click.UsageError(f"Missing {', '.join(missing)}; see `talkface eval --help`.", ctx=ctx)
    if (predictions is None) == (model is None):
        raise click.UsageError("Give exactly one of --predictions DIR or --model NAME.", ctx=ctx)

    from talking_faces.errors import TalkingFacesError
    from talking_faces.data import read_dataset
    from talking_faces.eval.regions import load_regions
    from talking_faces.eval.report import write_reports
    from talking_faces.eval.runner import evaluate as run_evaluation
    from talking_faces.eval.scorers import AdapterSpec, PredictionSpec

    region_set = load_regions(regions)
    if predictions is not None:
        if not predictions.is_dir():
            raise TalkingFacesError(f"Predictions folder not found: {predictions}; pass the folder of .npy predictions.")
        spec = PredictionSpec(predictions, region_set, method or predictions.resolve().name)
    else:
        spec = AdapterSpec(model, checkpoint, region_set, device=device, style=style, style_diversity=style_diversity,
                           au_basis=au_basis, aublendnet=aublendnet, codebook=codebook, seed=seed,
                           num_samples=num_samples, model_options=tuple(model_options(sampler, steps, vqvae).items()),
                           save_predictions=save_predictions)
    sequences = read_dataset(dataset, data_root, split, flame_model)
    context = {"data_root": str(data_root.resolve()), "split": split}
    columns = (TextColumn("Scoring {task.fields[name]}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
               TimeRemainingColumn())
    with Progress(*columns, console=console) as progress:
        task = progress.add_task("eval", total=len(sequences), name=f"{dataset} {split}")
        result = run_evaluation(
            dataset, sequences, spec, out, context=context, workers=workers, ray_address=ray, skip_missing=skip_missing,
            on_progress=lambda done, total: progress.update(task, completed=done, total=total),
        )
    files = write_reports(result, out)
    console.print(f"[green]scored[/] {result.computed} sequences ({result.cached} from cache); "
                  f"wrote {', '.join(map(str, files))}")
