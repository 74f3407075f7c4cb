"""The ``latentdim`` command line: thin Typer commands over :mod:`latentdim.api`."""

from __future__ import annotations

import json
import shlex
import signal
import sys
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from typer.core import TyperCommand, TyperGroup

from latentdim._version import __version__
from latentdim.errors import LatentdimError, TrainingInterrupted


class _FlagsTakeNoValue:
    """Help that shows a flag (``--strict``, ``--json``, ``--help``) as a flag: Typer prints a
    ``<bool>`` type beside it, which reads as if it took a value."""

    def get_params(self, ctx):  # noqa: ANN001, ANN201 - click's signature
        params = super().get_params(ctx)  # type: ignore[misc]
        for param in params:
            if getattr(param, "is_bool_flag", False) and param.metavar is None:
                param.metavar = ""  # an empty type column
        return params


class Command(_FlagsTakeNoValue, TyperCommand):
    pass


class Group(_FlagsTakeNoValue, TyperGroup):
    pass


app = typer.Typer(
    cls=Group,
    help="How many latent dimensions does your data really have? Trains a MaskAAE and reports m_A.",
    no_args_is_help=True,
    add_completion=True,  # --install-completion, --show-completion (bash, zsh, fish, PowerShell)
    pretty_exceptions_enable=False,
)
err_console = Console(stderr=True, emoji=False)  # paths such as ":x:.png" print as they are
# The summary of `estimate` (its table and what it wrote) goes to stdout, progress and errors to
# stderr: `latentdim estimate ... > summary.txt` keeps the result.
out_console = Console(emoji=False)


class Device(str, Enum):
    auto = "auto"
    cpu = "cpu"
    cuda = "cuda"


class Preset(str, Enum):
    auto = "auto"
    mlp = "mlp"
    mnist = "mnist"
    fmnist = "fmnist"
    cifar = "cifar"
    celeba = "celeba"
    conv = "conv"


class Precision(str, Enum):
    float32 = "float32"
    bfloat16 = "bfloat16"


class Schedule(str, Enum):
    latentdim = "latentdim"
    reference = "reference"


def fail(message: str) -> None:
    """One red line on stderr and exit code 2. The message is printed as it is: a file name such as
    ``[draft] :x:.png`` is neither Rich markup nor an emoji code."""
    err_console.print(Text.assemble(("error:", "bold red"), " ", message), highlight=False, soft_wrap=True)
    raise typer.Exit(code=2)


def parse_interval(text: str) -> tuple[int | None, float | None]:
    """``--checkpoint-every``: '500' -> every 500 steps; '10m' -> every 10 minutes; '30s' -> 30 seconds."""
    value = text.strip().lower()
    try:
        if value.endswith("m"):
            seconds = float(value[:-1]) * 60
        elif value.endswith("s"):
            seconds = float(value[:-1])
        else:
            steps = int(value)
            if steps < 1:
                raise ValueError
            return steps, None
        if not seconds > 0 or seconds != seconds or seconds == float("inf"):
            raise ValueError
        return None, seconds
    except ValueError:
        fail(f"--checkpoint-every takes a step count such as 500 or minutes such as 10m, got {text!r}")
        raise  # unreachable: fail() exits


class StopRequest:
    """What the signal handlers saw: the first SIGINT/SIGTERM asks training to stop after the
    current step (and checkpoint); a second SIGINT interrupts at once."""

    def __init__(self) -> None:
        self.signal: int | None = None

    def requested(self) -> bool:
        return self.signal is not None


@contextmanager
def stop_on_signals() -> Iterator[StopRequest]:
    stop = StopRequest()

    def handle(signum: int, frame: object) -> None:
        if stop.signal is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt
        stop.signal = signum

    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        for sig in previous:
            signal.signal(sig, handle)
    except ValueError:  # not the main thread (e.g. a test runner's worker): no handlers
        previous = {}
    try:
        yield stop
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def version_callback(value: bool) -> None:
    if value:
        print(f"latentdim {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[
        bool, typer.Option("--version", callback=version_callback, is_eager=True, help="Show the version and exit.")
    ] = False,
) -> None:
    """How many latent dimensions does your data really have? Trains a MaskAAE and reports m_A."""


def result_table(result) -> Table:  # noqa: ANN001 - EstimateResult
    """The result's rows (:func:`latentdim.result.result_rows`, the report's too) as a Rich table:
    m_A green when settled, yellow when not; warnings yellow."""
    from latentdim.result import result_rows

    table = Table(title="latentdim estimate", show_header=False, title_justify="left")
    table.add_column("field", style="bold")
    table.add_column("value")
    answer = "bold green" if result.settled else "bold yellow"
    for row in result_rows(result.to_dict()):
        if row.tone == "answer":
            table.add_row(row.label, Text.assemble((row.lead, answer), row.text[len(row.lead):]))
        else:
            table.add_row(row.label, Text(row.text, style="bold yellow" if row.tone == "warn" else ""))
    return table


def continue_command(argv: list[str], folder: str, max_steps: int) -> str:
    """The command that continues a run stopped at its step limit: ``argv`` with ``--resume
    folder`` (unless it has one) and ``--max-steps`` set to ``max_steps``."""
    args, i = [], 0
    while i < len(argv):
        arg = argv[i]
        if arg == "--max-steps":
            i += 2
            continue
        if not arg.startswith("--max-steps="):
            args.append(arg)
        i += 1
    if "--resume" not in args and not any(a.startswith("--resume=") for a in args):
        args += ["--resume", folder]
    return "latentdim " + shlex.join([*args, "--max-steps", str(max_steps)])


@app.command(cls=Command)
def estimate(
    source: Annotated[str, typer.Argument(help="A folder of images (png, jpg, bmp, gif, tiff, webp; read recursively); an HDF5 (.h5; vectors above 256 MiB stream from disk), NumPy (.npy, .npz) or CSV (.csv, .tsv; one sample per row, an optional header row) file of vectors (N, d) or images (N, H, W[, C]) / (N, C, H, W); or built-in data: synthetic:n=8[,d=128][,samples=20000][,seed=0].")],
    capacity: Annotated[int, typer.Option("--capacity", "-m", help="Latent size m to start from; pick it well above the dimension you expect.")] = 64,
    key: Annotated[Optional[str], typer.Option(help="Dataset inside the HDF5 file, or array inside the .npz. \\[default: the file's only one]")] = None,
    preset: Annotated[Preset, typer.Option(help="Architecture: mlp (vectors); the MaskAAE papers' image networks mnist and fmnist (28x28 gray), cifar (32x32 colour), celeba (64x64 colour); conv (other image sizes, scales with --image-size). auto: vectors -> mlp, 28x28 gray -> mnist, 32x32 colour -> cifar, 64x64 colour -> celeba, other images -> conv.")] = Preset.auto,
    channels: Annotated[Optional[int], typer.Option(help="Images: 1 (grayscale) or 3 (colour). \\[default: from the data (gray when every pixel has R = G = B), or the preset's]")] = None,
    image_size: Annotated[Optional[int], typer.Option(help="Images: resize the shorter side and centre-crop to this square size. \\[default: the preset's resolution]")] = None,
    strict: Annotated[bool, typer.Option("--strict", help="Images: stop at an unreadable file instead of skipping it (skipped files are counted in the summary).")] = False,
    no_mask: Annotated[bool, typer.Option("--no-mask", help="Train the WAE-GP baseline: the same model with the mask fixed at one.")] = False,
    seed: Annotated[int, typer.Option(help="Seed for initialisation and training; the same seed repeats a CPU run exactly on the same kind of CPU.")] = 0,
    device: Annotated[Device, typer.Option(help="auto uses a CUDA GPU when there is one.")] = Device.auto,
    max_steps: Annotated[Optional[int], typer.Option(help="Stop after this many steps even if the mask has not settled (the table then says so; with --out, --resume DIR and a larger --max-steps continue). \\[default: 50000; 10000 with --no-mask; 500000 with --schedule reference]")] = None,
    schedule: Annotated[Schedule, typer.Option(help="latentdim: once the auto-encoder has converged, dims close in rounds, each checked against --loss-budget, fast. reference: the papers' lambda3 schedule (slow).")] = Schedule.latentdim,
    closing_pressure: Annotated[Optional[float], typer.Option(help="Weight beta of latentdim's closing pressure on the mask, which closes dims when --loss-budget is 0. \\[default: 5]")] = None,
    loss_budget: Annotated[Optional[float], typer.Option(help="Close dimensions only while the held-out reconstruction keeps all but this fraction of what the latent code explains (never less than 3x the training noise): the dimensions whose removal costs least close in rounds, each measured after the networks adapt (500 steps for vectors, 1,000 for images), a round that costs more is undone, and closing stops when removing one dimension fails twice. 0 turns the rule off (then the closing pressure closes until m_A is stable). \\[default: 0.02]")] = None,
    verify: Annotated[bool, typer.Option("--verify/--no-verify", help="Vectors: once elimination ends at m, check m-1, m-2, ... with plain auto-encoders trained afresh at that code size (5,000 steps each, 15-30 s on a CPU core; several sizes at once on several cores) and close the dimensions they show the data do not need: a size is kept while its held-out error stays within half the loss budget of the best fresh error. It first tries m+1: when one code fewer is over that limit, it goes up instead and reopens what elimination closed too many. Elimination alone over-counts manifolds whose chart needs periodic functions and closed curves (docs/accuracy.md).")] = True,
    batch_size: Annotated[int, typer.Option(help="Samples per update.")] = 64,
    compile: Annotated[Optional[str], typer.Option("--compile", metavar="BACKEND", help="Compile the training step's networks with torch.compile: inductor (torch's compiler) or cudagraphs (CUDA graphs, GPU). Off by default: on a 2-core CPU the compiled step is slower (and compiling takes half a minute); on a GPU it is not measured yet (docs/design.md). \\[default: off]")] = None,
    precision: Annotated[Precision, typer.Option(help="bfloat16 runs the training step's forward passes under autocast in bfloat16 (optimisers and the critic's closed form stay float32). No faster on a 2-core CPU; on a GPU not measured yet.")] = Precision.float32,
    width: Annotated[Optional[int], typer.Option(help="Hidden-layer width override, for quick looks. A narrower network is faster but can need more codes than the data's dimension. \\[default: the preset's]")] = None,
    depth: Annotated[Optional[int], typer.Option(help="Vectors: hidden layers of the encoder and decoder. Deeper networks fit curved manifolds' charts better (docs/accuracy.md) and cost more per step. \\[default: 1, the papers']")] = None,
    out: Annotated[Optional[Path], typer.Option(help="Folder for result.json, checkpoint.pt, the mask history (csv, png), covariance.npy and its heat map, and for images grids of samples and reconstructions. \\[default: none: nothing is written]")] = None,
    export: Annotated[Optional[Path], typer.Option(help="Also write the masked generator as ONNX to this file (see `latentdim export`). \\[default: none]")] = None,
    fid_weights: Annotated[Optional[Path], typer.Option(help="Images: the FID Inception weights (weights-inception-2015-12-05-6726825d.pth). \\[default: $LATENTDIM_FID_WEIGHTS, else the torch hub cache, downloaded when online]")] = None,
    fid_samples: Annotated[int, typer.Option(help="Images: generated and real images compared by FID / KID (Inception takes ~0.5 s an image on a CPU).")] = 10_000,
    resume: Annotated[Optional[Path], typer.Option(help="Continue an interrupted run from the checkpoint in its --out folder (repeat the original command and add this).")] = None,
    force: Annotated[bool, typer.Option("--force", help="With --out: replace the files of an earlier run in that folder (without it such a folder is refused).")] = False,
    checkpoint_every: Annotated[str, typer.Option(help="With --out: write checkpoint.pt every N steps ('500') or minutes ('10m').")] = "10m",
    no_baselines: Annotated[bool, typer.Option("--no-baselines", help="Skip the classical estimators (TwoNN, MLE, local PCA on up to 5,000 samples) shown beside m_A.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print exactly one JSON object on stdout and nothing else there.")] = False,
) -> None:
    """Estimate the latent dimension m_A of a data set.

    Examples: latentdim estimate synthetic:n=8 --capacity 16;
    torchrun --nproc-per-node 2 -m latentdim estimate data.h5 --capacity 32 (two processes, one model);
    latentdim estimate ./images --capacity 128 --out runs/images
    """
    from latentdim.result import EstimateWarning
    from latentdim.api import estimate as run_estimate
    from latentdim.progress import run_display
    from latentdim.settings import training_config
    from latentdim.training.distributed import launched_rank

    main = launched_rank() == 0  # under torchrun the ranks above 0 train in silence
    try:
        config = training_config(use_mask=not no_mask, schedule=schedule.value, batch_size=batch_size, max_steps=max_steps,
                                 closing_pressure=closing_pressure, loss_budget=loss_budget, verify=verify,
                                 compile=compile, precision=precision.value)
    except LatentdimError as e:
        fail(str(e))
    steps_every, seconds_every = parse_interval(checkpoint_every)
    command = "latentdim " + shlex.join(sys.argv[1:])
    with stop_on_signals() as stop:
        try:
            with run_display(err_console) as display, warnings.catch_warnings():
                warnings.simplefilter("ignore", EstimateWarning)  # the table says it, in colour
                result = run_estimate(
                    source, capacity, key=key, preset=preset.value, channels=channels, image_size=image_size,
                    strict=strict, use_mask=not no_mask, seed=seed, device=device.value,
                    config=config, width=width, depth=depth, out=out, export=export,
                    on_step=display.on_step if main else None, baselines=not no_baselines,
                    on_load=display.on_load if main else None, resume=resume, should_stop=stop.requested,
                    checkpoint_steps=steps_every, checkpoint_seconds=seconds_every, command=command,
                    fid_weights=fid_weights, fid_samples=fid_samples, on_stage=display.on_stage if main else None,
                    overwrite=force, max_steps=max_steps,
                )
        except LatentdimError as e:
            fail(str(e))
        except TrainingInterrupted as e:
            _say_interrupted(e, stop.signal, command, resume is not None)
        except KeyboardInterrupt:  # a second Ctrl-C, or one before training started
            err_console.print("[yellow]interrupted[/]")
            raise typer.Exit(code=130)
        except RuntimeError:  # torchrun: the collective broke because another rank ended
            if main:
                raise
            err_console.print(f"rank {launched_rank()}: stopped because another process of this run ended (rank 0 says why)")
            raise typer.Exit(code=1)
    if not main:
        return
    if as_json:
        sys.stdout.write(json.dumps(result.to_dict()) + "\n")
    else:
        _print_result(result, export)


def _say_interrupted(e: TrainingInterrupted, signum: int | None, command: str, resuming: bool) -> None:
    """Where the checkpoint went and the command that resumes; exits 130 (Ctrl-C) or 143 (SIGTERM)."""
    name = "SIGTERM" if signum == signal.SIGTERM else "Ctrl-C"
    if e.checkpoint:
        folder = Path(e.checkpoint).parent
        again = command if resuming else f"{command} --resume {shlex.quote(str(folder))}"
        err_console.print(f"[yellow]{name}: stopped after step {e.step}; checkpoint written to {escape(str(e.checkpoint))}[/]", highlight=False, soft_wrap=True)
        err_console.print(f"resume with: {escape(again)}", highlight=False, soft_wrap=True)
    else:
        err_console.print(f"[yellow]{name}: stopped after step {e.step}; nothing saved (use --out DIR to keep checkpoints)[/]", highlight=False, soft_wrap=True)
    raise typer.Exit(code=143 if signum == signal.SIGTERM else 130)


def _print_result(result, export: Path | None) -> None:  # noqa: ANN001 - EstimateResult
    """The table, what was written where, and how to continue a run that stopped at its limit."""
    out_console.print(result_table(result))
    if result.files:
        names = ", ".join(Path(p).name for p in result.files.values())
        folder = Path(next(iter(result.files.values()))).parent  # --out, or the --resume folder
        out_console.print(f"wrote {escape(names)} to {escape(str(folder))}", highlight=False, soft_wrap=True)
        if not result.settled and result.stop_reason == "max_steps":
            again = continue_command(sys.argv[1:], str(folder), 2 * result.steps)
            out_console.print(f"[yellow]continue with:[/] {escape(again)}", highlight=False, soft_wrap=True)
    if export is not None:
        out_console.print(f"wrote the generator (input z of size {result.m_active}) to {escape(str(export))}", highlight=False, soft_wrap=True)


@app.command(cls=Command)
def export(
    run: Annotated[Path, typer.Argument(help="The --out folder of `latentdim estimate` (holding checkpoint.pt), or the checkpoint file itself.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="ONNX file to write, e.g. model.onnx (replaced if it exists).")],
    uint8: Annotated[bool, typer.Option("--uint8", help="Image models: output uint8 RGB (batch, 3, H, W) in 0..255, the form torch-fidelity needs.")] = False,
) -> None:
    """Export the masked generator to ONNX: input z (batch, m_A) ~ N(0, I), output data in your units.

    Example: latentdim export runs/a -o model.onnx
    """
    from latentdim.export import export_onnx

    try:
        info = export_onnx(run, output, uint8=uint8)
    except LatentdimError as e:
        fail(str(e))
    out_shape = ", ".join(["batch", *map(str, info.output_shape)])
    err_console.print(
        f"wrote {escape(str(info.path))}: z (batch, {info.m_active}) -> {info.kind} ({out_shape}) {info.output_dtype}; "
        f"m_A = {info.m_active} of capacity {info.capacity}",
        highlight=False, soft_wrap=True,
    )


class SampleFormat(str, Enum):
    h5 = "h5"
    npy = "npy"


@app.command(cls=Command)
def sample(
    model: Annotated[Path, typer.Argument(help="An ONNX generator from `latentdim export` (or any ONNX model with one float input (batch, k)).")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Output folder (created if missing): PNGs and grid.png for images, samples.h5 or samples.npy for vectors.")] = Path("samples"),
    n: Annotated[int, typer.Option("-n", "--num-samples", help="Number of samples to draw.")] = 100,
    seed: Annotated[int, typer.Option(help="Seed of z ~ N(0, I); the same seed gives the same samples.")] = 0,
    batch_size: Annotated[int, typer.Option(help="Samples per onnxruntime call; bounds memory for large -n.")] = 256,
    fmt: Annotated[Optional[SampleFormat], typer.Option("--format", help="Vector models: h5 (dataset 'samples') or npy. \\[default: h5]")] = None,
) -> None:
    """Draw samples from an exported generator with onnxruntime (no torch needed).

    Example: latentdim sample model.onnx -n 100 -o samples/
    """

    from latentdim.progress import run_display
    from latentdim.sample import NoMetadataWarning
    from latentdim.sample import sample as run_sample

    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", NoMetadataWarning)
            with run_display(err_console) as display:
                info = run_sample(
                    model, n, output, seed=seed, batch_size=batch_size, fmt=fmt.value if fmt else None,
                    on_progress=lambda done, total: display.on_stage("sampling", done, total),
                )
    except LatentdimError as e:
        fail(str(e))
    for w in caught:
        if issubclass(w.category, NoMetadataWarning):
            err_console.print(f"[yellow]warning:[/] {escape(str(w.message))}", highlight=False, soft_wrap=True)
    shape = "x".join(map(str, info.shape))
    if info.kind == "images":
        where = f"{len(info.files) - 1} PNG files and grid.png in {output}"
    else:
        where = f"{info.files[0]}" + (" (dataset 'samples')" if info.files[0].suffix == ".h5" else "")
    err_console.print(f"wrote {info.n} {info.kind} of shape {shape} (seed {info.seed}) to {escape(where)}", highlight=False, soft_wrap=True)


@app.command(cls=Command)
def sweep(
    source: Annotated[str, typer.Argument(help="Data, as for `latentdim estimate`.")],
    capacities: Annotated[str, typer.Option(help="Capacities m to train at, separated by commas.")] = "4,8,16,24,32",
    seeds: Annotated[str, typer.Option(help="Seeds, separated by commas; m_A is then shown as median and range.")] = "0",
    no_wae: Annotated[bool, typer.Option("--no-wae", help="Skip the WAE baseline (--no-mask) at each capacity.")] = False,
    jobs: Annotated[int, typer.Option(help="Runs at once, each in its own process with one thread.")] = 1,
    out: Annotated[Optional[Path], typer.Option(help="Folder for sweep.csv (one row per run), sweep.json and sweep.png (Frechet distance and m_A against capacity). \\[default: none]")] = None,
    key: Annotated[Optional[str], typer.Option(help="Dataset inside the HDF5 file, or array inside the .npz.")] = None,
    preset: Annotated[Preset, typer.Option(help="Architecture, as for `latentdim estimate`.")] = Preset.auto,
    device: Annotated[Device, typer.Option(help="auto uses a CUDA GPU when there is one.")] = Device.auto,
    max_steps: Annotated[Optional[int], typer.Option(help="Step limit of each run. \\[default: estimate's: 50000; 10000 for the WAE]")] = None,
    batch_size: Annotated[int, typer.Option(help="Samples per update.")] = 64,
    width: Annotated[Optional[int], typer.Option(help="Hidden-layer width override. \\[default: the preset's]")] = None,
    depth: Annotated[Optional[int], typer.Option(help="Vectors: hidden layers of the encoder and decoder. \\[default: 1]")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print exactly one JSON object on stdout and nothing else there.")] = False,
) -> None:
    """Train MaskAAE and the WAE baseline at several capacities and seeds (the papers' Figure 4).

    The WAE's Frechet distance is lowest near the data's dimension and grows on both sides; MaskAAE's
    stays flat once the capacity is enough, and its m_A stays put.
    Example: latentdim sweep synthetic:n=8 --capacities 2,4,8,16,32 --seeds 0,1,2 --jobs 2 --out runs/sweep
    """
    from latentdim.sweep import parse_list, write_sweep
    from latentdim.sweep import sweep as run_sweep

    try:
        grid_m, grid_s = parse_list(capacities, "capacities", 1), parse_list(seeds, "seeds", 0)

        def said(run, done: int, total: int) -> None:  # noqa: ANN001 - SweepRun
            fd = "n/a" if run.frechet_distance is None else f"{run.frechet_distance:.4f}"
            err_console.print(f"[{done}/{total}] capacity {run.capacity} seed {run.seed} {run.model}: m_A {run.m_active}, "
                              f"Frechet distance {fd}, {run.steps} steps in {run.seconds:.0f} s", highlight=False)

        def starting(capacity: int, seed: int, model: str) -> None:
            err_console.print(f"capacity {capacity} seed {seed} {model}: training ...", highlight=False)

        if jobs > 1:
            err_console.print(f"{len(grid_m) * len(grid_s) * (1 if no_wae else 2)} runs, {jobs} at a time ...", highlight=False)
        result = run_sweep(source, grid_m, grid_s, wae=not no_wae, jobs=jobs, on_run=said, on_start=starting if jobs == 1 else None, key=key, preset=preset.value,
                           device=device.value, max_steps=max_steps, batch_size=batch_size, width=width, depth=depth)
        files = write_sweep(result, out) if out is not None else {}
    except LatentdimError as e:
        fail(str(e))
    if as_json:
        sys.stdout.write(json.dumps(result.to_dict()) + "\n")
        return
    out_console.print(sweep_table(result))
    if files:
        out_console.print(f"wrote {', '.join(p.name for p in files.values())} to {escape(str(out))}", highlight=False, soft_wrap=True)


def sweep_table(result) -> Table:  # noqa: ANN001 - SweepResult
    """Per capacity: MaskAAE's m_A (median [min-max] over the seeds) and both models' median Frechet distance."""
    table = Table(title=f"latentdim sweep of {escape(result.source)}", title_justify="left")
    for name in ("capacity", "MaskAAE m_A", "Frechet MaskAAE", "Frechet WAE", "settled"):
        table.add_column(name, justify="right" if name != "settled" else "left")
    for row in result.summary():
        med, lo, hi = row["m_active_median"], row["m_active_min"], row["m_active_max"]
        m_a = f"{med:g}" + (f" [{lo}-{hi}]" if lo != hi else "")
        fds = ["n/a" if row[k] is None else f"{row[k]:.4f}" for k in ("fd_maskaae", "fd_wae")]
        table.add_row(str(row["capacity"]), m_a, *fds, "yes" if row["settled"] else Text("no", style="yellow"))
    return table
