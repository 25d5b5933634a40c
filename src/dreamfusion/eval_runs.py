"""`dreamfusion eval RUN_DIR...`: the paper's R-precision plus the toy world's ground truth.

For each run: render the evaluation views (elevation 30, every 45 degrees) as Color
(shaded, albedo x headlight) and Geo (textureless: white material, same light) images,
rank all 216 captions of the world for each image with the retrieval model, and count
the images whose top caption is the run's caption (R-precision with R = 1, averaged
over views). The ground-truth scores of TOYWORLD.md come from the exported mesh.
"""
from __future__ import annotations

import json
from pathlib import Path

import torch
from torch import Tensor

from .cameras import ring_cameras
from .canonical import snap_turn
from .toyworld.captions import CaptionError, parse_caption

EVAL_ELEVATION, EVAL_VIEWS, EVAL_SIZE = 30.0, 8, 64


def eval_cameras():
    return ring_cameras(EVAL_VIEWS, el=EVAL_ELEVATION)


def r_precision(model, images: Tensor, caption: str) -> float:
    """Share of images (B, 3, H, W) whose best caption is `caption`: the toy retrieval
    model ranks the world's 216 captions, a CLIP scorer those of its captions file."""
    return model.r_precision(images, caption)


def render_eval_views(field) -> dict[str, Tensor]:
    """{'color': (V, 3, 64, 64), 'geo': (V, 3, 64, 64)} on white, headlight."""
    from .render import Shading, render_chunked
    cams = eval_cameras().to(field.device)
    n = len(cams)
    color, geo = render_chunked(field, cams, EVAL_SIZE, 64,
                                [Shading.lit(cams), Shading.lit(cams, textureless=True)],
                                torch.ones(n, 3, device=field.device))["images"]
    return {"color": color.cpu(), "geo": geo.cpu()}


def photo_eval_views(caption: str) -> dict[str, Tensor]:
    """The same views of the true object (the paper's "GT photos" row)."""
    from .toyworld.render import render_objects
    obj = parse_caption(caption).obj
    cams = eval_cameras()
    clay = torch.zeros(len(cams), dtype=torch.bool)
    return {"color": render_objects([obj] * len(cams), cams, EVAL_SIZE, "shaded", None, clay),
            "geo": render_objects([obj] * len(cams), cams, EVAL_SIZE, "shaded", None, ~clay)}


def mesh_ground_truth(run_dir: Path, caption: str) -> dict:
    """score_mesh of the run's exported mesh: as written in metrics.json by the export,
    else computed from mesh.ply; {} without a mesh."""
    try:
        gt = json.loads((run_dir / "metrics.json").read_text()).get("ground_truth")
    except (OSError, ValueError):
        gt = None
    if gt:
        return gt
    path = run_dir / "mesh.ply"
    if not path.exists():
        return {}
    import trimesh

    from .evaluate import score_mesh
    return score_mesh(trimesh.load(path, force="mesh"), parse_caption(caption))


def ground_truth_scores(run_dir: Path, caption: str) -> dict:
    """Volume IoU, shape retrieval, colours (and Janus) of the run's mesh."""
    gt = mesh_ground_truth(run_dir, caption)
    if not gt:
        return {}
    out = {k: gt[k] for k in ("iou", "iou_unsnapped", "retrieved_shape", "color_name")
           if k in gt}
    obj = parse_caption(caption).obj
    out["shape_right"] = gt.get("retrieved_shape") == obj.shape
    out["color_right"] = gt.get("color_name") == obj.color
    if obj.front_color is not None:
        out["front_right"] = gt.get("front_color_name") == obj.front_color
        out["janus"] = gt.get("back_color_name") == obj.front_color
        out["back_right"] = gt.get("back_color_name") == obj.color
    return out


def in_toy_world(caption: str) -> bool:
    try:
        parse_caption(caption)
    except CaptionError:
        return False
    return True


def evaluate_run(run_dir: Path, model, others: dict | None = None) -> dict:
    """R-precision (Color, Geo) of one run folder with `model` (ToyRetrieval or a CLIP
    scorer), and the ground truth when its caption is in the toy world. Each model of
    `others` ({name: model}) adds `color_r_precision_NAME` and `geo_r_precision_NAME`."""
    from . import runs
    from .pipeline import load_field
    cfg = runs.load_config(run_dir)
    field = load_field(override_device(cfg), run_dir, log=lambda msg: None)
    if cfg.export.snap_turn:
        field, _ = snap_turn(field)  # score what the export wrote
    with torch.no_grad():
        views = render_eval_views(field)
    named = {"": model, **{f"_{k}": m for k, m in (others or {}).items()}}
    toy = in_toy_world(cfg.caption)
    try:
        scores = {f"{kind}_r_precision{suffix}": r_precision(m, views[kind], cfg.caption)
                  for suffix, m in named.items() for kind in ("color", "geo")}
        if toy:
            scores |= {f"geo_shape_r_precision{suffix}": m.shape_r_precision(views["geo"],
                                                                             cfg.caption)
                       for suffix, m in named.items()}
    except ValueError as err:
        raise runs.RunFolderError(f"{run_dir}: {err}") from None
    truth = ground_truth_scores(run_dir, cfg.caption) if toy else {}
    return {"run": str(run_dir), "caption": cfg.caption, "seed": cfg.seed,
            "method": cfg.method, **scores, **truth}


def override_device(cfg):
    from .config import override
    return override(cfg, device="cpu") if cfg.device == "cuda" and not torch.cuda.is_available() \
        else cfg


def mean(rows: list[dict], key: str) -> float | None:
    values = [float(r[key]) for r in rows if key in r]
    return sum(values) / len(values) if values else None


def summary(rows: list[dict]) -> dict:
    """Means over runs of every score (booleans become rates); R-precision under every
    retrieval model present (`color_r_precision`, `color_r_precision_b`, ...)."""
    r_prec = sorted({k for r in rows for k in r if k.startswith(
        ("color_r_precision", "geo_r_precision", "geo_shape_r_precision"))})
    keys = (*r_prec, "iou", "iou_unsnapped", "shape_right", "color_right", "front_right",
            "janus", "back_right")
    means = {k: mean(rows, k) for k in keys}
    return {k: v for k, v in means.items() if v is not None} | {"runs": len(rows)}


def markdown_table(rows: list[dict]) -> str:
    def fmt(v):
        return "" if v is None else (f"{v:.3f}" if isinstance(v, float) else str(v))
    head = ("caption", "seed", "Color R-prec", "Geo R-prec (216 captions)",
            "Geo shape R-prec (6 shapes)", "IoU as exported", "IoU without turn snap",
            "shape", "colour", "Janus")
    lines = ["| " + " | ".join(head) + " |", "|---|---:|---:|---:|---:|---:|---:|---|---|---|"]
    for r in rows:
        lines.append("| " + " | ".join(fmt(v) for v in (
            r["caption"], r["seed"], r["color_r_precision"], r["geo_r_precision"],
            r.get("geo_shape_r_precision"), r.get("iou"), r.get("iou_unsnapped"),
            r.get("retrieved_shape"), r.get("color_name"),
            ("yes" if r["janus"] else "no") if "janus" in r else None)) + " |")
    s = summary(rows)
    lines.append(f"| **mean over {s['runs']} runs** | | {fmt(s.get('color_r_precision'))} | "
                 f"{fmt(s.get('geo_r_precision'))} | {fmt(s.get('geo_shape_r_precision'))} | "
                 f"{fmt(s.get('iou'))} | {fmt(s.get('iou_unsnapped'))} | | | "
                 f"{fmt(s.get('janus'))} |")
    return "\n".join(lines) + "\n"


def write_reports(rows: list[dict], json_path: Path | None, md_path: Path | None) -> None:
    from .runs import atomic_write_bytes
    if json_path is not None:
        data = {"runs": rows, "summary": summary(rows)}
        atomic_write_bytes(json_path, (json.dumps(data, indent=2) + "\n").encode())
    if md_path is not None:
        atomic_write_bytes(md_path, markdown_table(rows).encode())
