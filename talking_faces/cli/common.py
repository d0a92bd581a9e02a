"""The typer applications every CLI module registers its commands on, and the error boundary."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click
import typer
from rich.console import Console

from talking_faces.errors import TalkingFacesError

app = typer.Typer(
    name="talkface",
    help="Speech to emotional 3D facial animation (AU-blendshapes, AUBlendNet, speech adapters).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
train_app = typer.Typer(help="Train AUBlendNet, FaceFormer, FaceDiffuser or LG-LDM.", no_args_is_help=True)
data_app = typer.Typer(help="Convert datasets into the layouts talkface reads.", no_args_is_help=True)
# `talkface eval --dataset ...` scores speech models; `talkface eval aublendnet ...` scores bases.
eval_app = typer.Typer(help="Evaluate speech models (LVE, FDD, V-LVE, diversity) or AUBlendNet bases.")
app.add_typer(train_app, name="train")
app.add_typer(data_app, name="data")
app.add_typer(eval_app, name="eval")

console = Console(stderr=True)

# Options of the diffusion speech models, shared by `talkface render` and `talkface eval`.
SEED_HELP = "Seed of the model's random draws (same seed, same animation); default: a new draw each run."
SAMPLES_HELP = "Samples to draw (diffusion models)."
SAMPLER_HELP = "Diffusion sampler: ddpm, ddim or dpmpp (default: as the checkpoint's upstream code samples)."
STEPS_HELP = "Denoising steps for --sampler (default: the sampler's upstream count)."
VQVAE_HELP = "Stage-1 VQ-VAE checkpoint (LG-LDM)."


def model_options(sampler: str | None, steps: int | None, vqvae: Path | None) -> dict[str, Any]:
    """The adapter options (`from_checkpoint(**options)`) that were given on the command line."""
    given = {"sampler": sampler, "steps": steps, "vqvae": vqvae}
    return {name: value for name, value in given.items() if value is not None}


@contextmanager
def epoch_progress(epochs: int, enabled: bool = True) -> Iterator[tuple[Callable[[int, int, int, float], None], Callable[[Any], None]]]:
    """A rich progress bar for a training loop: yields its `(on_step, on_epoch)` callbacks.

    `on_step(epoch, step, steps, loss)` moves the bar; `on_epoch(result)` prints the epoch's line
    (train loss, val loss, the checkpoint written) from an `EpochResult`.
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    with Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), TimeRemainingColumn(),
        console=console, disable=not enabled,
    ) as progress:
        task = progress.add_task("epoch", total=None)

        def on_step(epoch: int, step: int, steps: int, loss: float) -> None:
            progress.update(task, description=f"epoch {epoch}/{epochs} loss {loss:.3e}", total=steps, completed=step)

        def on_epoch(result: Any) -> None:
            val_text = f", val {result.val_loss:.3e}" if result.val_loss is not None else ""
            saved = f", wrote {result.checkpoint}" if result.checkpoint and enabled else ""
            progress.console.print(f"epoch {result.epoch}: train {result.train_loss:.3e}{val_text}{saved}")

        yield on_step, on_epoch


def main() -> None:
    """Entry point of the `talkface` console script: one-line errors, no tracebacks."""
    command = typer.main.get_command(app)
    try:
        command.main(prog_name="talkface", standalone_mode=False)
    except TalkingFacesError as exc:
        console.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
        sys.exit(2)
    except click.exceptions.Abort:
        console.print("[bold red]aborted[/]")
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        console.print("[bold red]interrupted[/]")
        sys.exit(130)
    except Exception as exc:
        if os.environ.get("TALKFACE_DEBUG"):
            raise
        console.print(
            f"[bold red]internal error:[/] {exc.__class__.__name__}: {exc} (set TALKFACE_DEBUG=1 for the traceback)",
            highlight=False,
            soft_wrap=True,
        )
        sys.exit(1)
