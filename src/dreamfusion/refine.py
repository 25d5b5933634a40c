"""Stage 2, the refine stage (issue 17): the stage-1 field's surface becomes a mesh whose
vertices and colours the same guidance optimises through the hard rasteriser
(hard_raster.py), at a larger render size, with the regularisers that keep a mesh clean
(Magic3D's coarse-to-fine; threestudio's geometry conversion).

The stage is a composition like any method: a SurfaceMesh (mesh_model.py) and an
SDSGuidance built from `refine_config(cfg)`, the stage-2 view of the run's config."""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch
import trimesh

from .canonical import snap_turn
from .config import RunConfig, override
from .export import choose_threshold, density_on_grid
from .field import GridField
from .flat_start import cut_flat
from .guidance.base import DiffusionBackend
from .mesh import color_vertices, extract_mesh, largest_shell
from .mesh_model import SurfaceMesh
from .train import Stage, Trainer, train


def refine_config(cfg: RunConfig) -> RunConfig:
    """The run's config as stage 2 sees it: its steps, size and batch; no albedo-only
    or formation phase; a fixed low-noise time range (stage 1 ends there); no opacity
    or orientation penalty (a mesh has neither a density nor normals to orient)."""
    r = cfg.refine
    g = cfg.guidance
    return override(cfg, steps=r.steps, size=r.size, batch_size=r.batch_size, **{
        "render.formation_size": 0, "shading.albedo_only_fraction": 0.0,
        "reg.opacity": 0.0, "reg.orientation": 0.0, "guidance.bank_size": r.bank_size,
        "guidance.mirror_photos": r.mirror_photos,
        "guidance.t_min_start": g.t_min, "guidance.t_max": g.t_max_final,
        "guidance.plain_camera_start": 0.0, "optim.density_warmup": 0.0,
        "cameras.dist_ends": r.distance_ends,
        "optim.lr_final": 1.0})


def taubin(mesh: trimesh.Trimesh, iterations: int) -> trimesh.Trimesh:
    """A copy smoothed by Taubin's lambda|mu passes (0.5, -0.53): bumps go, volume stays."""
    out = mesh.copy()
    if iterations > 0:
        trimesh.smoothing.filter_taubin(out, lamb=0.5, nu=0.53, iterations=iterations)
    return out


@torch.no_grad()
def initial_mesh(field: GridField, cfg: RunConfig) -> tuple[trimesh.Trimesh, float]:
    """(the field's surface as one closed, outward-facing shell with vertex colours, the
    turn snapped in degrees): the field is turned like the export turns it, meshed at
    refine.mesh_resolution (largest blob, cavities filled, largest piece of the mesh),
    smoothed, then cut flat at both ends (refine.flat_start)."""
    turn = 0.0
    if cfg.export.snap_turn:
        field, turn = snap_turn(field)
    threshold = cfg.export.threshold if cfg.export.threshold > 0 else choose_threshold(field)
    mesh = extract_mesh(density_on_grid(field, cfg.refine.mesh_resolution), threshold,
                        bound=field.cfg.bound, fill_hidden=cfg.export.fill_hidden)
    mesh = cut_flat(taubin(largest_shell(mesh), cfg.refine.smooth_iterations),
                    cfg.refine.flat_start)

    def albedo_fn(points: torch.Tensor) -> torch.Tensor:
        return field.albedo(points.to(field.device).float()).cpu()

    mesh = color_vertices(mesh, albedo_fn, inset=0.5 * field.voxel_size)
    return mesh, turn


def surface_model(field: GridField, cfg: RunConfig) -> SurfaceMesh:
    """The refine stage's starting model, on the field's device."""
    mesh, turn = initial_mesh(field, cfg)
    model = SurfaceMesh.from_trimesh(mesh, cfg.refine)
    model.turned.fill_(turn)
    return model.to(field.device)


def run_refine(cfg: RunConfig, run_dir: Path, field_trainer: Trainer | None,
               backend: DiffusionBackend | None, progress: bool, state: dict | None,
               log: Callable[[str], None]) -> Trainer:
    """Stage 2: from the finished field of `field_trainer`, or from a refine-stage
    checkpoint `state`. The toy prior gets photos of the refine size; a real prior
    (which resizes renders itself) is the stage-1 one when it is loaded already."""
    stage_cfg = refine_config(cfg)
    if state is not None:
        model = SurfaceMesh.from_state(state["field"], cfg.refine)
        before = 0.0
    else:
        model = surface_model(field_trainer.field, cfg)
        before = field_trainer.elapsed
        log(f"refine stage: {len(model.faces)} faces, {stage_cfg.steps} steps at "
            f"{stage_cfg.size}x{stage_cfg.size}")
    if cfg.guidance.backend == "toy":
        backend = None  # train builds the toy prior at the stage's size
    stage = Stage("refine", cfg.steps, cfg.steps + cfg.refine.steps, cfg, before)
    return train(stage_cfg, run_dir, backend=backend, progress=progress, state=state, log=log,
                 model=model, stage=stage)
