"""The typer applications every CLI module registers its commands on, and the error boundary.

Exit codes: 0 success (bare `talkface` shows the help), 1 internal error, 2 a usage error or a
problem with the input (one line naming it and the fix), 130 Ctrl-C, 143 SIGTERM. On every
non-zero exit the commands' cleanup has run: no output and no temporary file is left.
"""

from __future__ import annotations

import gc
import os
import signal
import sys
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.text import Text

from talking_faces import __version__
from talking_faces.errors import TalkingFacesError


def _click_exception_modules() -> list:
    """typer's own copy of click (recent typer) and the click package, where installed.

    typer raises the first; code written against click (or an older typer) raises the second.
    """
    modules = []
    try:
        from typer._click import exceptions as vendored

        modules.append(vendored)
    except ImportError:
        pass
    try:
        from click import exceptions as package

        modules.append(package)
    except ImportError:
        pass
    return modules


_CLICK_EXCEPTIONS = _click_exception_modules()


def _classes(name: str) -> tuple[type[BaseException], ...]:
    return tuple(getattr(module, name) for module in _CLICK_EXCEPTIONS if hasattr(module, name))


EXIT_USAGE = 2
EXIT_INTERRUPTED = 128 + signal.SIGINT  # 130, as shells report Ctrl-C
EXIT_TERMINATED = 128 + signal.SIGTERM  # 143
NO_ARGS_IS_HELP = _classes("NoArgsIsHelpError")
USAGE_ERRORS = _classes("UsageError")
CLICK_ERRORS = _classes("ClickException")
ABORTS = (typer.Abort, *_classes("Abort"))
EXITS = (typer.Exit, *_classes("Exit"))

# Commands that leave nothing to the interpreter's exit (no Ray, process pool or open file): they
# end with os._exit once stdout and stderr are flushed.
FAST_EXIT_COMMANDS = frozenset({"render"})

# Plain click help (rich_markup_mode=None): it wraps to the terminal and never cuts a flag name.
HELP_SETTINGS = {"help_option_names": ["--help", "-h"], "max_content_width": 100}


def _typer(**options) -> typer.Typer:
    return typer.Typer(no_args_is_help=True, rich_markup_mode=None, context_settings=HELP_SETTINGS, **options)


app = _typer(
    name="talkface",
    help="Speech to emotional 3D facial animation (AU-blendshapes, AUBlendNet, speech adapters).",
    add_completion=False,
    pretty_exceptions_enable=False,
)
train_app = _typer(help="Train AUBlendNet, FaceFormer, FaceDiffuser or LG-LDM.")
data_app = _typer(help="Convert datasets into the layouts talkface reads.")
# `talkface eval --dataset ...` scores speech models; `talkface eval aublendnet ...` scores bases.
eval_app = typer.Typer(
    help="Evaluate speech models (LVE, FDD, V-LVE, diversity) or AUBlendNet bases.",
    rich_markup_mode=None, context_settings=HELP_SETTINGS,
)
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


def model_options(sampler: str | None, steps: int | None, vqvae: Path | None, phonemes: Path | None = None) -> dict[str, Any]:
    """The adapter options (`from_checkpoint(**options)`) that were given on the command line."""
    given = {"sampler": sampler, "steps": steps, "vqvae": vqvae, "phonemes": phonemes}
    return {name: value for name, value in given.items() if value is not None}


SPEECH_DATASETS = ("vocaset", "mead")


@contextmanager
def speech_training_run(
    model: str, encoder: str, dataset: str, data_root: Path, out: Path, device: str,
    audio_encoder: Path | None, allow_random_audio_encoder: bool, resume_or_none: Callable[[Path], Any],
) -> Iterator[tuple[Any, list, list, Any]]:
    """The shared set-up of `talkface train faceformer|facediffuser`: yields `(ctx, train, val, resumed)`.

    Checks the dataset name, starts the (DDP) process group, finds a run to resume in `out`,
    refuses a new run without local `encoder` weights unless random ones are allowed, reads the
    train and val splits, and tears the process group down at the end.
    """
    from talking_faces.data import read_dataset
    from talking_faces.training import setup_distributed, teardown_distributed

    if dataset not in SPEECH_DATASETS:
        raise TalkingFacesError(f"Unknown --dataset {dataset!r}; use one of {', '.join(SPEECH_DATASETS)}.")
    ctx = setup_distributed(device)
    try:
        resumed = resume_or_none(out)
        if resumed is None and audio_encoder is None and not allow_random_audio_encoder:
            raise TalkingFacesError(
                f"A new {model} run needs {encoder} weights: pass --audio-encoder DIR (a local transformers folder), "
                "or --allow-random-audio-encoder to start from random weights."
            )
        train, val = read_dataset(dataset, data_root, "train"), read_dataset(dataset, data_root, "val")
        if resumed is not None and ctx.is_main:
            console.print(f"resuming {out} after epoch {resumed[-1]['epoch']}")
        yield ctx, train, val, resumed
    finally:
        teardown_distributed(ctx)


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


def _show_version(value: bool) -> None:
    if value:
        print(f"talkface {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", is_eager=True, callback=_show_version, help="Print the version and exit."),
) -> None:
    """Speech to emotional 3D facial animation (AU-blendshapes, AUBlendNet, speech adapters)."""


class Terminated(BaseException):
    """SIGTERM, raised in the main thread so that it unwinds the same cleanup as Ctrl-C.

    A BaseException like KeyboardInterrupt: `except Exception` blocks let it pass, and every
    `except BaseException` / `finally` that removes a temporary file or stops ffmpeg runs.
    """


def _raise_on_signal(signum: int, frame: object) -> None:
    # Every signal raises, so that one swallowed by a library does not make the process unstoppable.
    raise Terminated() if signum == signal.SIGTERM else KeyboardInterrupt()


def _error(message: str, label: str = "error:") -> None:
    # A Text, not markup: messages hold paths and specs with brackets.
    style = "bold red" if label.endswith("error:") else "bold yellow"
    console.print(Text.assemble((label, style), " ", message), highlight=False, soft_wrap=True)


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _usage_error(exc: Exception) -> int:
    ctx = getattr(exc, "ctx", None)
    where = ctx.command_path if ctx is not None else "talkface"
    message = _one_line(exc.format_message()).rstrip(".")
    _error(f"{message}; see `{where} --help`.")
    return EXIT_USAGE


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    _error(_one_line(str(message)), "warning:")


def run(args: Sequence[str] | None = None) -> int:
    """Run `talkface` with `args` (default: sys.argv[1:]) and return its exit status; never exits.

    Every failure is reported on stderr as one line, and so is every warning.
    """
    with warnings.catch_warnings():
        warnings.showwarning = _show_warning
        return _run(list(sys.argv[1:] if args is None else args))


def _run(args: list[str]) -> int:
    command = typer.main.get_command(app)
    try:
        with command.make_context("talkface", args) as ctx:
            command.invoke(ctx)
        return 0
    except NO_ARGS_IS_HELP as exc:
        # typer prints the help while building the error; plain click puts it in the message.
        if exc.format_message():
            print(exc.format_message())
        return 0
    except EXITS as exc:  # --help and --version
        return exc.exit_code
    except USAGE_ERRORS as exc:
        return _usage_error(exc)
    except TalkingFacesError as exc:
        _error(_one_line(str(exc)))
        return EXIT_USAGE
    except CLICK_ERRORS as exc:
        _error(_one_line(exc.format_message()))
        return exc.exit_code
    except Terminated:
        console.print("terminated", highlight=False, markup=False)
        return EXIT_TERMINATED
    except (KeyboardInterrupt, *ABORTS):
        console.print("interrupted", highlight=False, markup=False)
        return EXIT_INTERRUPTED
    except Exception as exc:
        if os.environ.get("TALKFACE_DEBUG"):
            raise
        _error(_one_line(f"{exc.__class__.__name__}: {exc} (set TALKFACE_DEBUG=1 for the traceback)"), "internal error:")
        return 1


def collect_from_here() -> None:
    """Turn the cyclic garbage collector back on, leaving out every object made so far (they live to the end)."""
    gc.freeze()
    gc.enable()


def main() -> None:
    """Entry point of the `talkface` console script: `run()` with SIGTERM and Ctrl-C unwinding the cleanup."""
    for signum in (signal.SIGINT, signal.SIGTERM):
        if signal.getsignal(signum) is not signal.SIG_IGN:  # a shell's background job keeps ignoring Ctrl-C
            signal.signal(signum, _raise_on_signal)
    fast_exit = bool(sys.argv[1:2]) and sys.argv[1] in FAST_EXIT_COMMANDS
    if fast_exit:
        # Start-up creates about a million long-lived objects (torch, pyrender, trimesh, scipy) and
        # the cyclic collector would walk them again and again: 10% of the import time. The
        # command calls `collect_from_here()` once its models and renderer are made.
        gc.disable()
    status = run()
    if fast_exit:
        # Tearing down the interpreter after torch and pyrender costs about 0.9 CPU-s and does
        # nothing for these commands: their files are closed and renamed, ffmpeg waited for.
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except OSError:  # a closed pipe (`talkface render ... | head`): nothing left to say
                pass
        os._exit(status)
    sys.exit(status)
