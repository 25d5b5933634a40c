"""Command line: `dreamfusion generate CAPTION` and `dreamfusion export RUN_DIR`.

Every user error (bad caption, bad option value, a folder that already holds a run)
is one sentence on stderr and a non-zero exit, never a traceback.
"""
from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from . import __version__
from .config import PRESETS, RunConfig, override, preset
from .errors import UserError
from .interrupts import RunInterrupted
from .options import SHADING_MODES, RunOptions, parse_set, resolve_config

EXIT_USAGE, EXIT_FAILED, EXIT_INTERRUPTED = 2, 1, 130


# -- argument types ------------------------------------------------------------------
def _whole_number(text: str, minimum: int) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < minimum:
        raise argparse.ArgumentTypeError(f"must be {minimum} or more, got {value}")
    return value


def positive_int(text: str) -> int:
    return _whole_number(text, 1)


def nonnegative_int(text: str) -> int:
    return _whole_number(text, 0)


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value > 0 or value != value or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive finite number, got {text}")
    return value


def nonnegative_float(text: str) -> float:
    if text.strip() in ("0", "0.0"):
        return 0.0
    return positive_float(text)


def render_size(text: str) -> int:
    value = positive_int(text)
    if not 8 <= value <= 512:
        raise argparse.ArgumentTypeError(f"must be between 8 and 512 pixels, got {value}")
    return value


# -- parser --------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dreamfusion",
        description="Text to 3D by Score Distillation Sampling (DreamFusion). "
                    "Runs offline on a CPU with the built-in toy-world prior.")
    parser.add_argument("--version", action="version", version=f"dreamfusion {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    add_generate(sub)
    add_export(sub)
    add_eval(sub)
    add_experiment(sub)
    add_retrieval_train(sub)
    add_serve(sub)
    add_batch(sub)
    return parser


def add_executor_options(p) -> None:
    """Where the runs execute; shared by batch and experiment."""
    p.add_argument("--executor", choices=("local", "ray"), default="local",
                   help="local (default): a process pool on this machine (--jobs at once); "
                        'ray: one Ray task per run (pip install "dreamfusion[ray]")')
    p.add_argument("--address", metavar="ADDR",
                   help="ray: the cluster to join (default: start a local Ray instance)")
    p.add_argument("--cpus-per-run", type=positive_float, default=1.0,
                   help="ray: CPUs reserved per run (default 1)")
    p.add_argument("--gpus-per-run", type=nonnegative_float, default=0.0,
                   help="ray: GPUs reserved per run (default 0; 1 on GPU nodes)")
    p.add_argument("--no-shared-fs", action="store_true",
                   help="ray: the nodes do not see the runs' folder; each run works in a "
                        "temporary folder of its node and is sent back at every "
                        "checkpoint and at the end")


def add_batch(sub) -> None:
    p = sub.add_parser(
        "batch", help="one run per caption of a file, several at a time, with a summary",
        description="Run `generate` for every caption of CAPTIONS_FILE (one per line; blank "
                    "lines skipped) and each --seeds, --jobs at a time, into DIR/<caption>-s<seed>; "
                    "print a summary table and write it to DIR/batch.json. The file is "
                    "checked whole before anything starts. Calling the same command again "
                    "skips finished runs and resumes interrupted ones; Ctrl-C stops the runs "
                    "with their checkpoints.")
    p.add_argument("captions_file", type=Path, metavar="CAPTIONS_FILE")
    p.add_argument("--out", type=Path, required=True, metavar="DIR", help="folder of the runs")
    p.add_argument("--jobs", type=positive_int, default=1, help="runs at once (default 1)")
    p.add_argument("--seeds", type=nonnegative_int, nargs="+", default=[0],
                   help="seeds per caption (default 0)")
    add_executor_options(p)
    p.add_argument("--config", type=Path, metavar="FILE",
                   help="YAML or JSON file of settings for every run (as generate's)")
    add_config_options(p)
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_batch)


def add_serve(sub) -> None:
    p = sub.add_parser(
        "serve", help="a local web page: type a caption, watch it form, turn it in 3D",
        description="A local web app (needs: pip install \"dreamfusion[web]\"): a page to "
                    "start runs, watch their previews, turn the result in a 3D viewer and "
                    "download it, and the JSON API behind it (README, \"Web page\"). Runs "
                    "are queued; at most --max-parallel train at once.")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=port_number, default=7860)
    p.add_argument("--runs", type=Path, default=Path("runs"), metavar="DIR",
                   help="folder of the web runs (default ./runs)")
    p.add_argument("--auth", metavar="USER:PASS", help="HTTP basic auth on every route")
    p.add_argument("--max-parallel", type=positive_int, default=1,
                   help="runs training at once; the others wait in a queue (default 1)")
    p.add_argument("--backend", choices=("toy", "sd", "if"), default=None,
                   help="the prior of every run (default toy; sd / if allow free text)")
    p.add_argument("--model", metavar="ID_OR_DIR", help="sd / if: the model of every run")
    p.set_defaults(func=cmd_serve)


def port_number(text: str) -> int:
    value = positive_int(text)
    if value > 65535:
        raise argparse.ArgumentTypeError(f"must be a port number up to 65535, got {value}")
    return value


def add_experiment(sub) -> None:
    p = sub.add_parser(
        "experiment", help="run a paper experiment: table1 or ablation (Figure 6)",
        description="Run the grid of an experiment (captions x seeds [x settings]) with "
                    "`generate`, several runs at a time, resumable (finished runs are kept), "
                    "then score every run with `eval` and write the tables.")
    p.add_argument("name", choices=("table1", "ablation"))
    p.add_argument("--quick", action="store_true",
                   help="a small grid that finishes in a few minutes on 2 cores (CI uses it)")
    p.add_argument("--seeds", type=nonnegative_int, nargs="+", default=None,
                   help="seeds per caption (default 0 1; 0 with --quick)")
    p.add_argument("--jobs", type=positive_int, default=2, help="runs in parallel")
    add_executor_options(p)
    p.add_argument("--methods", nargs="+", choices=("dreamfusion", "dreamfields", "clipmesh"),
                   default=None, help="table1: the rows to run (default all three)")
    p.add_argument("--subset", type=positive_int, metavar="N", default=None,
                   help="table1: a fixed, spread-out subset of N of the 216 captions (every "
                        "shape and colour, single-colour and front-coloured alternating)")
    p.add_argument("--root", type=Path, default=None,
                   help="folder of the runs (default experiments/NAME[-quick])")
    p.add_argument("--results", type=Path, metavar="FILE",
                   help="also write the tables into this Markdown file (e.g. docs/RESULTS.md), "
                        "in a section of their own that a rerun replaces")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="passed to every generate (e.g. --set steps=400)")
    p.set_defaults(func=cmd_experiment)


def add_eval(sub) -> None:
    p = sub.add_parser(
        "eval", help="score finished runs: R-precision (Color, Geo) and ground truth",
        description="For each run folder, render the evaluation views (elevation 30, every "
                    "45 deg) shaded (Color) and textureless (Geo), rank all captions of the "
                    "toy world with the retrieval model (the analogue of CLIP) and report "
                    "R-precision, plus volume IoU, shape, colour and the Janus failure from "
                    "the exported mesh. Prints a Markdown table.")
    p.add_argument("run_dirs", type=Path, nargs="+", metavar="RUN_DIR")
    p.add_argument("--json", type=Path, metavar="FILE", help="also write the scores as JSON")
    p.add_argument("--markdown", type=Path, metavar="FILE", help="also write the table")
    p.add_argument("--retrieval", metavar="NAME_OR_WEIGHTS", default="toy-a",
                   help="the toy world's retrieval model: toy-a (default) or toy-b, shipped "
                        "in the package, or a weights file")
    p.add_argument("--clip", metavar="ID_OR_DIR",
                   help="score with a real CLIP model instead (transformers; local folder or "
                        "Hub id), against the captions of --captions")
    p.add_argument("--captions", type=Path, metavar="FILE",
                   help="with --clip: the caption set, one per line, including every run's")
    p.set_defaults(func=cmd_eval)


def add_retrieval_train(sub) -> None:
    p = sub.add_parser(
        "retrieval-train", help="train the toy world's retrieval model (the CLIP analogue)",
        description="Train the retrieval model on freshly rendered photos of the toy world "
                    "and report its accuracy on 3000 held-out photos. Writes the weights "
                    "to a new file (retrieval-weights.pt, -2, -3, ... in the current "
                    "folder) unless --out is given; the weights shipped in the package "
                    "are replaced only by naming them with --out.")
    p.add_argument("--out", type=Path, metavar="FILE",
                   help="where to write the weights (an existing file is replaced)")
    p.add_argument("--photos", type=positive_int, default=16000, help="training photos")
    p.add_argument("--epochs", type=positive_int, default=6)
    p.add_argument("--width", type=positive_int, default=32, help="channels of the first layer")
    p.add_argument("--seed", type=nonnegative_int, default=0)
    p.set_defaults(func=cmd_retrieval_train)


def add_generate(sub) -> None:
    p = sub.add_parser(
        "generate", help="turn a caption into a 3D object (mesh, video, previews)",
        description="Optimise a NeRF so that its renders match CAPTION under the diffusion "
                    "prior, then export a mesh (GLB/OBJ/PLY), a turntable video and a PNG "
                    "grid of fixed views into one run folder.")
    p.add_argument("caption", nargs="?",
                   help='what to make, e.g. "a red cube" (the toy prior knows '
                   '"a {colour} {shape}" and "a {colour} {shape} with a {colour} front"); '
                   "may instead come from --config, and is left out with --resume")
    p.add_argument("--resume", type=Path, metavar="RUN_DIR",
                   help="continue an interrupted run from its last checkpoint, with its saved "
                        "config (running the same command with the same --out does too)")
    p.add_argument("--config", type=Path, metavar="FILE",
                   help="YAML or JSON file of settings, with the nested keys of a run's "
                        "config.json (any subset); options given on the command line win")
    p.add_argument("--out", type=Path, metavar="DIR",
                   help="run folder (default: a new folder under ./runs/ named from the caption)")
    p.add_argument("--overwrite", action="store_true",
                   help="allow --out to name a folder that already holds a run, replacing it")
    add_config_options(p)
    p.add_argument("--seed", type=nonnegative_int, help="random seed (default 0)")
    p.add_argument("--no-export", action="store_true",
                   help="skip the mesh/video export at the end (`dreamfusion export` redoes it)")
    p.add_argument("--quiet", action="store_true", help="no progress bar (the summary still prints)")
    p.set_defaults(func=cmd_generate)


def add_config_options(p) -> None:
    """The options that choose a run's settings, shared by generate and batch."""
    p.add_argument("--preset", choices=PRESETS, default=None,
                   help="settings bundle for the chosen prior: fast (default; toy: about a "
                        "minute on 2 CPU cores) or quality (larger renders and grid, more "
                        "steps); README lists each backend's presets and their sources")
    p.add_argument("--steps", type=positive_int, help="optimisation steps (overrides the preset)")
    p.add_argument("--size", type=render_size,
                   help="render resolution in pixels during training (preset: 32 fast, 64 quality)")
    p.add_argument("--batch-size", type=positive_int, help="cameras per step")
    p.add_argument("--guidance", type=positive_float,
                   help="classifier-free guidance scale s (default 1.5 for the toy prior, "
                        "100 for sd, 20 for if)")
    p.add_argument("--device", choices=("cpu", "cuda", "auto"), default=None,
                   help="where to run (default auto: CUDA if available, else CPU); may be "
                        "changed when resuming")
    p.add_argument("--backend", choices=("toy", "sd", "if"), default=None,
                   help="diffusion prior: toy = the built-in exact prior of the toy world "
                        "(default); sd = Stable Diffusion 1.x/2.x; if = DeepFloyd IF stage I "
                        '(sd and if need: pip install "dreamfusion[diffusers]")')
    p.add_argument("--model", metavar="ID_OR_DIR",
                   help="sd / if: a local folder in diffusers layout or a Hub id (default "
                        "stabilityai/stable-diffusion-2-1-base or DeepFloyd/IF-I-XL-v1.0); "
                        "HF_HUB_OFFLINE=1 never downloads")
    p.add_argument("--method", choices=("dreamfusion", "dreamfields", "clipmesh"), default=None,
                   help="dreamfusion (default): a NeRF guided by score distillation; the "
                        "paper's baselines: dreamfields = the same NeRF guided by an "
                        "image-caption model (CLIP), clipmesh = a deformed sphere mesh "
                        "guided by it")
    p.add_argument("--guide-model", metavar="NAME_OR_DIR",
                   help="dreamfields / clipmesh: the image-caption model: toy-a (default) or "
                        "toy-b, the toy world's retrieval models; retrieval weights (.pt); or "
                        "a CLIP folder or Hub id (needs the diffusers extra)")
    p.add_argument("--no-view-prompts", action="store_true",
                   help="do not append ', front view' etc. to the caption (shows the Janus problem)")
    p.add_argument("--perp-neg", action=argparse.BooleanOptionalAction, default=None,
                   help="Perp-Neg: view prompts mixed by azimuth, the other views as "
                        "negatives through their perpendicular component (default off)")
    p.add_argument("--refine", action=argparse.BooleanOptionalAction, default=None,
                   help="after the field, refine its surface as a mesh through a rasteriser "
                        "at refine.size with the same guidance (refine.* settings; default "
                        "on in the toy preset fast, off in the others)")
    p.add_argument("--shading", choices=tuple(SHADING_MODES), default=None,
                   help="shading during training: full = paper schedule (albedo, then "
                        "lambertian and textureless), lambertian = no textureless renders, "
                        "albedo = no lighting at all (ablations of the paper's Figure 6)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override any config field by dotted name, e.g. "
                        "--set guidance.t_max_final=0.4 (see config.json of a run)")
    p.add_argument("--no-cache", action="store_true",
                   help="neither read nor write the on-disk cache of the toy prior's photo "
                        "banks and of text embeddings (DREAMFUSION_NO_CACHE=1 does the same)")


def add_export(sub) -> None:
    p = sub.add_parser(
        "export", help="redo the export of a finished run from its checkpoint",
        description="Re-export RUN_DIR from its checkpoint: mesh (GLB/OBJ/PLY), turntable "
                    "video, PNG grid of views and ground-truth metrics. Replaces those "
                    "files in RUN_DIR; the checkpoint and config are never touched.")
    p.add_argument("run_dir", type=Path, help="a folder written by `dreamfusion generate`")
    p.add_argument("--mesh-resolution", type=positive_int,
                   help="marching-cubes grid cells per axis (default: the run's config)")
    p.add_argument("--threshold", type=positive_float,
                   help="density threshold (default: matched to the rendered silhouettes)")
    p.add_argument("--device", choices=("cpu", "cuda", "auto"), default="auto",
                   help="where to run (default auto)")
    p.set_defaults(func=cmd_export)


# -- config from arguments -----------------------------------------------------------
CONFIG_OPTIONS = ("caption", "config", "preset", "steps", "seed", "size", "batch_size",
                  "guidance", "backend", "model", "method", "guide_model", "no_view_prompts",
                  "perp_neg", "refine",
                  "shading", "no_export", "set",
                  "out", "overwrite")
"""Options that choose settings or a folder (not allowed with --resume)."""


def given_options(args: argparse.Namespace) -> list[str]:
    """Names of the CONFIG_OPTIONS the user gave."""
    return [name for name in CONFIG_OPTIONS if getattr(args, name) not in (None, False, [])]


def options_from_args(args: argparse.Namespace) -> RunOptions:
    """The generate command's options as the RunOptions the Python API takes."""
    settings: dict[str, Any] = {}
    for item in args.set:
        key, sep, raw = item.partition("=")
        if not sep:
            raise UserError(f"--set expects KEY=VALUE, got {item!r}")
        settings[key] = raw
    return RunOptions(
        caption=args.caption, config=args.config, preset=args.preset, backend=args.backend,
        steps=args.steps, seed=args.seed, size=args.size, batch_size=args.batch_size,
        guidance=args.guidance, device=args.device, model=args.model, method=args.method,
        guide_model=args.guide_model, view_prompts=False if args.no_view_prompts else None,
        perp_neg=args.perp_neg, refine=args.refine, shading=args.shading,
        export=False if args.no_export else None, cache=False if args.no_cache else None,
        settings=settings)


def config_from_args(args: argparse.Namespace) -> RunConfig:
    """preset, then --config FILE, then the options, then --set; checked and validated."""
    opts = options_from_args(args)
    if opts.caption is None and opts.config is None:
        raise UserError('no caption given; say what to make, e.g. dreamfusion generate '
                        '"a red cube" (or continue a run with --resume RUN_DIR)')
    return resolve_config(opts)


# -- commands ------------------------------------------------------------------------
def cmd_generate(args: argparse.Namespace) -> int:
    from .lifecycle import resume_run, start_run
    if args.resume is not None:
        refuse_options_with_resume(args)
        resume_run(args.resume, args.device, not args.quiet, log_line)
        return 0
    cfg = config_from_args(args)
    start_run(cfg, args.out, args.overwrite, not args.quiet, log_line)
    return 0


def refuse_options_with_resume(args: argparse.Namespace) -> None:
    extra = given_options(args)
    if extra:
        names = ", ".join("CAPTION" if n == "caption" else "--" + n.replace("_", "-")
                          for n in extra)
        raise UserError(f"--resume continues a run with its saved settings; leave out {names} "
                        "(only --device and --quiet may be given)")


def log_line(msg: str) -> None:
    print(msg, file=sys.stderr)


def cmd_export(args: argparse.Namespace) -> int:
    from . import runs
    from .lifecycle import check_device
    from .pipeline import reexport
    check_device(args.device)
    try:
        cfg = runs.load_config(args.run_dir)
    except runs.RunFolderError as err:
        raise UserError(str(err)) from None
    changes = {"device": args.device}
    if args.mesh_resolution:
        changes["export.mesh_resolution"] = args.mesh_resolution
    if args.threshold:
        changes["export.threshold"] = args.threshold
    reexport(override(cfg, **changes), args.run_dir,
             log=lambda msg: print(msg, file=sys.stderr))
    return 0


def cmd_batch(args: argparse.Namespace) -> int:
    from .batch import batch_jobs, checker, markdown, read_captions, run_batch, write_summary
    args.caption, args.seed, args.no_export = None, None, False
    options = options_from_args(args)
    captions = read_captions(args.captions_file, checker(options))
    executor = make_executor(args, args.out)
    jobs = batch_jobs(captions, args.seeds, args.out, generate_args(args))
    try:
        rows = run_batch(jobs, executor, log_line, progress=not args.quiet)
    except KeyboardInterrupt:
        log_line("dreamfusion: batch stopped; the runs kept their checkpoints. Run the "
                 "same command again to go on.")
        return EXIT_INTERRUPTED
    print(markdown(rows), end="")
    log_line(f"summary written to {write_summary(args.out, rows)}")
    return 0 if all(r["status"] == "finished" for r in rows) else EXIT_FAILED


def make_executor(args: argparse.Namespace, root: Path):
    """The executor the options ask for; `root` = the driver's folder of the runs."""
    from .executors import LocalExecutor, RayExecutor
    if args.executor == "local":
        if args.no_shared_fs or args.address:
            raise UserError("--address and --no-shared-fs go with --executor ray")
        return LocalExecutor(args.jobs)
    try:
        import ray  # noqa: F401
    except ImportError:
        raise UserError('--executor ray needs Ray: pip install "dreamfusion[ray]"') from None
    return RayExecutor(args.address, args.cpus_per_run, args.gpus_per_run,
                       copy_back_to=root if args.no_shared_fs else None)


def generate_args(args: argparse.Namespace) -> tuple[str, ...]:
    """batch's run options as generate's command line (caption, seed and folder aside)."""
    out: list[str] = []
    for name in ("config", "preset", "steps", "size", "batch_size", "guidance", "device",
                 "backend", "model", "method", "guide_model", "shading"):
        value = getattr(args, name)
        if value is not None:
            out += ["--" + name.replace("_", "-"), str(value)]
    flags = {"no_view_prompts": "--no-view-prompts", "no_cache": "--no-cache"}
    out += [flag for name, flag in flags.items() if getattr(args, name)]
    for name in ("perp_neg", "refine"):
        value = getattr(args, name)
        if value is not None:
            out.append(f"--{'' if value else 'no-'}{name.replace('_', '-')}")
    for item in args.set:
        out += ["--set", item]
    return tuple(out)


def cmd_serve(args: argparse.Namespace) -> int:
    from .web.serve import serve
    backend_args: tuple[str, ...] = ()
    if args.backend is not None:
        backend_args += ("--backend", args.backend)
    if args.model is not None:
        backend_args += ("--model", args.model)
    serve(args.host, args.port, args.runs, args.auth, args.max_parallel, backend_args)
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from . import runs
    from .eval_runs import evaluate_run, markdown_table, write_reports
    model = load_scorer(args)
    rows = []
    for run_dir in args.run_dirs:
        try:
            rows.append(evaluate_run(run_dir, model))
        except runs.RunFolderError as err:
            raise UserError(str(err)) from None
    print(markdown_table(rows), end="")
    write_reports(rows, args.json, args.markdown)
    return 0


def cmd_experiment(args: argparse.Namespace) -> int:
    from .experiments import run_experiment
    base = preset("fast")
    parse_set(args.set, base)  # reject bad keys before any run starts
    seeds = args.seeds if args.seeds is not None else ([0] if args.quick else [0, 1])
    root = args.root or Path("experiments") / f"{args.name}{'-quick' if args.quick else ''}"
    extra = [a for item in args.set for a in ("--set", item)]
    run_experiment(args.name, args.quick, seeds, make_executor(args, root), root, args.results,
                   extra, log=log_line, methods=args.methods, subset=args.subset)
    return 0


def load_scorer(args: argparse.Namespace):
    """The toy retrieval model, or a CLIP scorer with its caption set (--clip)."""
    if (args.clip is None) != (args.captions is None):
        raise UserError("--clip and --captions go together: a CLIP model ranks the captions "
                        "of a file")
    if args.clip is not None:
        from .model_loading import BackendLoadError
        from .retrieval.clip import ClipRetrieval, read_captions
        try:
            return ClipRetrieval(args.clip, read_captions(args.captions))
        except (OSError, ValueError, BackendLoadError) as err:
            raise UserError(str(err)) from None
    from .retrieval.model import load_named
    try:
        return load_named(args.retrieval)
    except (OSError, RuntimeError, KeyError) as err:
        raise UserError(f"cannot load the retrieval model: {err}") from None


def cmd_retrieval_train(args: argparse.Namespace) -> int:
    import json

    from .retrieval.train import save, train_retrieval
    model, report = train_retrieval(args.photos, args.epochs, args.width, args.seed,
                                    log=log_line)
    out = args.out or new_weights_path(Path.cwd())
    save(model, report, out)
    print(json.dumps(report, indent=2))
    log_line(f"weights written to {out}")
    return 0


def new_weights_path(folder: Path) -> Path:
    """retrieval-weights.pt, or -2, -3, ... : a file that does not exist yet."""
    path, n = folder / "retrieval-weights.pt", 1
    while path.exists():
        n += 1
        path = folder / f"retrieval-weights-{n}.pt"
    return path


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except UserError as err:
        print(f"dreamfusion: error: {err}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("dreamfusion: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except RunInterrupted as err:
        print(f"dreamfusion: {err}", file=sys.stderr)
        return 128 + err.signum
    except Exception as err:  # known failure types carry a user-facing message
        from .pipeline import USER_FACING_ERRORS
        if isinstance(err, USER_FACING_ERRORS):
            print(f"dreamfusion: error: {err}", file=sys.stderr)
            return EXIT_FAILED
        raise


if __name__ == "__main__":
    sys.exit(main())
