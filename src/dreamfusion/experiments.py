"""`dreamfusion experiment table1|ablation`: the paper's grids, run, scored and written up.

Each run is the real `dreamfusion generate` in a subprocess (several in parallel, one
torch thread each when the cores are shared), in its own folder under --root, so the
grid is resumable: finished runs are kept, interrupted ones resumed, missing ones run.
Then every run is scored by `eval` and the tables are written as Markdown (into a
marked section of --results, e.g. docs/RESULTS.md) and JSON.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from . import runs
from .toyworld.captions import all_objects, single_color_objects

ONE_STAGE = ("--no-refine",)
"""The paper's experiments train the field alone: every run of a grid skips the refine
stage (issue 17's), so the tables compare with the paper's."""
ABLATION = {  # Figure 6: each setting adds one ingredient
    "(i) base": ["--no-view-prompts", "--shading", "albedo"],
    "(ii) + view-dependent prompts": ["--shading", "albedo"],
    "(iii) + lighting": ["--shading", "lambertian"],
    "(iv) + textureless shading": [],
}
TABLE1_METHODS = {  # setting (run folder) -> (row name, generate options)
    "dreamfields": ("Dream Fields", ["--method", "dreamfields"]),
    "clipmesh": ("CLIP-Mesh", ["--method", "clipmesh"]),
    "dreamfusion": ("DreamFusion (toy prior)", []),
}
"""The baselines are guided by retrieval model A (toy-a), their generate default."""
PAPER_TABLE1 = {"GT photos": ("77.1", "—"), "Dream Fields": ("78.6", "1.3"),
                "CLIP-Mesh": ("67.8", "—"), "DreamFusion (toy prior)": ("75.1", "42.5")}
"""The paper's Table 1, CLIP B/32 column (Color / Geo R-precision, %)."""
QUICK_TABLE1 = {"dreamfusion": ["a green cone", "a blue torus", "a red cube with a yellow front"],
                "dreamfields": ["a green cone"], "clipmesh": ["a green cone"]}


@dataclass(frozen=True)
class Run:
    setting: str
    caption: str
    seed: int
    args: tuple[str, ...]

    def folder(self, root: Path) -> Path:
        slug = runs.slugify(self.setting, 24)
        return root / slug / f"{runs.slugify(self.caption)}-s{self.seed}"


def table1_captions(subset: int | None) -> list[str]:
    """All 216 single-colour and front-coloured captions, or a spread-out subset of
    `subset` of them: every shape and colour in turn, single-colour and front-coloured
    alternating (a fixed list, so a later, larger run reuses the finished folders)."""
    objects = all_objects()
    if subset is None or subset >= len(objects):
        return [o.text for o in objects]
    singles = [o for o in objects if o.front_color is None]
    fronts = [o for o in objects if o.front_color is not None]
    picked = []
    for i in range(subset):
        pool = singles if i % 2 == 0 else fronts
        k = i // 2
        picked.append(pool[(k * 7) % len(pool)] if pool is singles else pool[(k * 37) % len(pool)])
    return list(dict.fromkeys(o.text for o in picked))


def table1_grid(quick: bool, seeds: list[int], methods: list[str] | None = None,
                subset: int | None = None) -> list[Run]:
    """Each method x captions x seeds: QUICK_TABLE1 for --quick, else table1_captions."""
    grid = []
    for method in methods or list(TABLE1_METHODS):
        captions = QUICK_TABLE1[method] if quick else table1_captions(subset)
        args = (*TABLE1_METHODS[method][1], *ONE_STAGE)
        grid += [Run(method, c, s, args) for c in captions for s in seeds]
    return grid


def ablation_grid(quick: bool, seeds: list[int]) -> list[Run]:
    """Front-coloured captions, one per shape (one caption for --quick), x 4 settings."""
    if quick:
        captions = ["a red cube with a yellow front"]
    else:
        fronts = [o for o in all_objects() if o.front_color is not None]
        shapes = dict.fromkeys(o.shape for o in single_color_objects())
        captions = [next(o.text for o in fronts if o.shape == s and o.color == "red")
                    for s in shapes]
    return [Run(name, c, s, (*args, *ONE_STAGE)) for name, args in ABLATION.items()
            for c in captions for s in seeds]


# -- running -------------------------------------------------------------------------
def execute(grid: list[Run], root: Path, executor, extra: list[str],
            log: Callable[[str], None]) -> dict[Run, int]:
    """Run what is not finished on `executor` (executors.py; an int = a local pool of that
    many processes); exit code per run (0 = finished)."""
    from .executors import Job, LocalExecutor, run_state
    if isinstance(executor, int):
        executor = LocalExecutor(executor)
    by_job = {Job(r.caption, r.seed, r.folder(root), (*r.args, *extra),
                  f"{r.setting} / {r.caption} / seed {r.seed}"): r for r in grid}

    def done(job: Job, result) -> None:
        if not result.skipped:
            log(f"{'done' if result.code == 0 else 'FAILED'}: {job.name()}"
                + ("" if result.code == 0 else f" ({result.error})"))

    todo = sum(run_state(j.folder) != "finished" for j in by_job)
    log(f"{len(grid)} runs, {len(grid) - todo} already finished")
    results = executor.run(list(by_job), done)
    return {by_job[job]: result.code for job, result in results.items()}


# -- scoring and writing up ----------------------------------------------------------
def score(grid: list[Run], root: Path, codes: dict[Run, int], model,
          others: dict | None = None) -> list[dict]:
    """evaluate_run of every run (model, plus `others` {name: model}), failures marked."""
    from .eval_runs import evaluate_run
    rows = []
    for run in grid:
        folder = run.folder(root)
        if not (folder / runs.CHECKPOINT).exists():
            rows.append({"setting": run.setting, "caption": run.caption, "seed": run.seed,
                         "failed": True})
            continue
        row = evaluate_run(folder, model, others)
        rows.append({"setting": run.setting, **row, "failed": codes.get(run, 0) != 0})
    return rows


def gt_photo_row(captions: list[str], models: dict) -> dict:
    """R-precision of the true objects' renders (the paper's GT images row), per model:
    keys color_r_precision[_NAME] as evaluate_run writes them ('' for the first)."""
    from .eval_runs import photo_eval_views, r_precision
    sums: dict[str, float] = {}

    def add(key: str, value: float) -> None:
        sums[key] = sums.get(key, 0.0) + value

    for caption in captions:
        views = photo_eval_views(caption)
        for i, (name, model) in enumerate(models.items()):
            suffix = "" if i == 0 else "_" + name
            for kind in ("color", "geo"):
                add(f"{kind}_r_precision{suffix}", r_precision(model, views[kind], caption))
            add(f"geo_shape_r_precision{suffix}", model.shape_r_precision(views["geo"], caption))
    return {key: total / len(captions) for key, total in sums.items()}


def pct(value: float | None) -> str:
    return "—" if value is None else f"{100 * value:.1f}"


def table1_markdown(rows: list[dict], gt: dict, quick: bool) -> str:
    """Rows GT photos, each method; Color / Geo R-precision under retrieval models A and B.
    Baselines are guided by A, so their A scores are in parentheses, as the paper marks
    a CLIP that is both guide and judge."""
    from .eval_runs import summary
    seeds = sorted({r["seed"] for r in rows})
    captions = sorted({r["caption"] for r in rows})
    lines = [
        f"R-precision (%) over {len(captions)} captions x seeds {seeds} "
        f"({len(rows)} runs{', --quick' if quick else ''}); each retrieval model ranks all "
        "216 captions of the world for each of 8 views (elevation 30). A and B are two "
        "independently trained retrieval models (CLIP stand-ins); (parentheses): scored by "
        "the model that guided the optimisation. Paper: CLIP B/32. Geo is the paper's "
        "(all 216 captions ranked on textureless renders: 35 of a shape's 36 captions "
        "differ only in colour, so it cannot measure geometry here); Geo shape ranks the "
        "six shapes on the same renders (colour marginalised). IoU as exported (after the "
        "turn snap) and without it.",
        "",
        "| method | Color A | Geo A | Geo shape A | Color B | Geo B | Geo shape B "
        "| paper Color | paper Geo | runs | mean IoU | IoU without snap | Janus rate |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        table1_row("GT photos", gt, False, len(captions))]
    for setting, (name, _) in TABLE1_METHODS.items():
        done = [r for r in rows if r["setting"] == setting and not r.get("failed")]
        if done or any(r["setting"] == setting for r in rows):
            lines.append(table1_row(name, summary(done), setting != "dreamfusion", len(done)))
    lines += [f"\nFailed runs: {sum(r.get('failed', False) for r in rows)}.", ""]
    return "\n".join(lines)


def table1_row(name: str, s: dict, guided_by_a: bool, n: int) -> str:
    """One row; the IoU and Janus cells stay empty where `s` has no IoU (GT photos)."""
    a, b = ([pct(s.get(f"{kind}_r_precision{suffix}")) for kind in ("color", "geo", "geo_shape")]
            for suffix in ("", "_b"))
    if guided_by_a:
        a = [f"({v})" for v in a]
    paper = PAPER_TABLE1[name]
    iou = s.get("iou")
    tail = ["", "", ""] if iou is None else [
        f"{iou:.3f}", f"{s.get('iou_unsnapped', iou):.3f}", pct(s.get("janus"))]
    return (f"| {name} | {' | '.join(a + b)} | {paper[0]} | {paper[1]} | {n} | "
            f"{' | '.join(tail)} |")


def ablation_markdown(rows: list[dict], quick: bool) -> str:
    from .eval_runs import summary
    lines = [f"Figure 6 ablation ({len(rows)} runs{', --quick' if quick else ''}): "
             "front-coloured captions; Janus = the back is painted the front colour; back "
             "right = the back is the body colour.", "",
             "| setting | Color R-prec | Geo R-prec (216 captions) | Geo shape R-prec "
             "(6 shapes) | mean IoU | IoU without snap | front right | Janus rate | back right |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for setting in ABLATION:
        s = summary([r for r in rows if r["setting"] == setting and not r.get("failed")])
        lines.append(f"| {setting} | {pct(s.get('color_r_precision'))} | "
                     f"{pct(s.get('geo_r_precision'))} | "
                     f"{pct(s.get('geo_shape_r_precision'))} | {s.get('iou', 0):.3f} | "
                     f"{s.get('iou_unsnapped', s.get('iou', 0)):.3f} | "
                     f"{pct(s.get('front_right'))} | {pct(s.get('janus'))} | "
                     f"{pct(s.get('back_right'))} |")
    return "\n".join(lines) + "\n"


def settings_figure(grid: list[Run], root: Path, path: Path, settings) -> Path | None:
    """views.png of one run per setting (the same caption and seed where the grid has
    them), stacked top to bottom in the order of `settings`."""
    from PIL import Image
    first = grid[0]
    images = []
    for setting in settings:
        same = [r for r in grid if r.setting == setting]
        if not same:
            continue
        run = next((r for r in same if (r.caption, r.seed) == (first.caption, first.seed)),
                   same[0])
        views = run.folder(root) / "views.png"
        if views.exists():
            images.append(Image.open(views).convert("RGB"))
    if not images:
        return None
    width = max(i.width for i in images)
    sheet = Image.new("RGB", (width, sum(i.height for i in images)), "white")
    y = 0
    for image in images:
        sheet.paste(image, (0, y))
        y += image.height
    path.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(path)
    return path


def write_section(path: Path, name: str, text: str) -> None:
    """Replace (or append) the block between <!-- experiment:NAME --> markers."""
    start, end = f"<!-- experiment:{name} -->", f"<!-- /experiment:{name} -->"
    block = f"{start}\n{text.rstrip()}\n{end}\n"
    old = path.read_text() if path.exists() else ""
    if start in old and end in old:
        new = old[:old.index(start)] + block + old[old.index(end) + len(end) + 1:]
    else:
        new = old + ("\n" if old and not old.endswith("\n") else "") + "\n" + block
    runs.atomic_write_bytes(path, new.encode())


def run_experiment(name: str, quick: bool, seeds: list[int], executor, root: Path,
                   results: Path | None, extra: list[str],
                   log: Callable[[str], None] = print, methods: list[str] | None = None,
                   subset: int | None = None) -> dict:
    from .retrieval.model import load_named
    grid = (table1_grid(quick, seeds, methods, subset) if name == "table1"
            else ablation_grid(quick, seeds))
    # A quick or subset grid writes its own section and figure, beside the full grid's.
    variant = name + ("-quick" if quick else f"-subset{subset}" if subset else "")
    codes = execute(grid, root, executor, extra, log)
    model = load_named("toy-a")
    others = {"b": load_named("toy-b")} if name == "table1" else None
    rows = score(grid, root, codes, model, others)
    if name == "table1":
        gt = gt_photo_row(sorted({r.caption for r in grid}), {"a": model, **others})
        text = table1_markdown(rows, gt, quick)
        methods = [m for m in TABLE1_METHODS if any(r.setting == m for r in grid)]
        figure = settings_figure(grid, root, (results.parent if results else root)
                                 / f"{variant}.png", methods)
        if figure is not None:
            rows_named = ", ".join(TABLE1_METHODS[m][0] for m in methods)
            text += (f"\n![{grid[0].caption}, seed {grid[0].seed}, one run per method, top "
                     f"to bottom: {rows_named}; rows: albedo, shaded, textureless]"
                     f"({figure.name})\n")
        data = {"rows": rows, "gt_photos": gt}
    else:
        figure = settings_figure(grid, root, (results.parent if results else root)
                                 / f"{variant}.png", ABLATION)
        text = ablation_markdown(rows, quick)
        if figure is not None:
            text += (f"\n![one run per setting, top to bottom (i) to (iv); rows: albedo, "
                     f"shaded, textureless]({figure.name})\n")
        data = {"rows": rows}
    runs.write_json(root / f"{name}.json", data)
    runs.atomic_write_bytes(root / f"{name}.md", text.encode())
    if results is not None:
        write_section(results, variant, text)
    log(text)
    return data
