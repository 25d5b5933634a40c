"""Configuration: one frozen dataclass per component, every field documented, and presets.

Configs are built once (preset + command-line overrides), frozen, saved as JSON in the run
folder, and never mutated during training; schedules are functions of ``step``.
"""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, replace
from dataclasses import field as _field
from typing import Any, Literal

from .cameras import CameraSampling


@dataclass(frozen=True)
class FieldConfig:
    """The NeRF: dense voxel grids of density and albedo, trilinearly interpolated.

    Each quantity is a sum of grids at several resolutions (coarse to `resolution`),
    upsampled to the finest: coarse levels pool the noisy SDS gradients of many pixels,
    fine levels add detail (a dense cousin of Instant-NGP's multiresolution encoding)."""

    resolution: int = 64
    """Finest grid: cells per axis over [-bound, bound]^3."""
    density_levels: tuple[int, ...] = (16, 32, 64)
    """Resolutions of the density grids that are summed (each upsampled to resolution)."""
    albedo_levels: tuple[int, ...] = (8, 16, 32)
    """Resolutions of the albedo grids that are summed."""
    bound: float = 1.0
    """Half-width of the cube the field covers; the toy world fits in the unit sphere."""
    blob_density: float = 10.0
    """Initial pre-activation density at the centre (threestudio-style linear blob)."""
    blob_radius: float = 0.65
    """Radius at which the initial blob's pre-activation density crosses zero. It covers
    the bottoms of the world's objects (y = -0.5): the cameras barely see a bottom, so a
    bottom the blob did not start solid tends to stay hollow (purple cone IoU 0.71-0.73
    at 0.5, 0.80-0.83 at 0.65; docs/DESIGN-NOTES.md)."""
    blob_exponent: float = 2.0
    """The blob is a ball of the p-norm with this p: 2 = sphere (paper); larger values
    give a rounded box aligned with the world axes."""
    init_noise: float = 0.0
    """Std of Gaussian noise added to the initial grids."""
    empty_density: float = 0.01
    """Rendering treats density below this as empty space: a sample whose trilinear
    stencil touches no grid cell above it (one cell of dilation) is skipped and reads
    density 0, so a ray loses at most 1 - exp(-0.01 L) opacity over a skipped length L
    (under 2% across the whole unit sphere). On a CPU the skipped samples are never
    queried (4-6x fewer once the shape has formed); 0 = every sample of every ray that
    crosses the occupied box is queried."""
    mirror_x: bool = False
    """Keep the field symmetric under x -> -x (each grid averaged with its mirror image,
    so gradients are symmetrised too). Every toy-world object and its photo
    distribution have this symmetry; real captions need not, so SD / IF keep it off."""


@dataclass(frozen=True)
class RenderConfig:
    """Volume rendering of the field."""

    samples: int = 32
    """Stratified samples per ray, between the ray's entry and exit of the box around
    the occupied part of the field (within the unit sphere)."""
    formation_size: int = 0
    """Render size (and, for the toy prior, photo size) during the formation steps; 0 =
    the run's size throughout. Larger renders while the shape forms keep a pyramid from
    settling turned (docs/DESIGN-NOTES.md), for a little more time per run."""
    formation_steps: tuple[float, float] = (0.125, 0.5)
    """The formation steps: [start, end) as fractions of the run."""
    background: Literal["white", "black", "random", "learned"] = "white"
    """Background: a fixed colour, a random solid colour per image, or an MLP of the
    ray direction trained with the field (the paper's choice)."""


@dataclass(frozen=True)
class ShadingConfig:
    """The paper's shading schedule: albedo only first, then random lambertian/textureless."""

    albedo_only_fraction: float = 0.067
    """Fraction of the steps (from the start) rendered with albedo only (paper: ~1k of 15k,
    0.067). Longer albedo phases paint the photos' shading into the volume and leave
    dark objects hollow (docs/DESIGN-NOTES.md)."""
    shaded_probability: float = 0.75
    """After the albedo-only phase: probability that an image is shaded."""
    textureless_probability: float = 0.5
    """Of the shaded images: probability of white material (geometry only)."""
    ambient: float = 0.3
    """Ambient light l_a of shaded renders (toy photos use 0.3; paper 0.1)."""
    diffuse: float = 0.7
    """Diffuse light l_rho of shaded renders (toy photos use 0.7; paper 0.9)."""
    light_jitter: float = 0.5
    """Light direction = normalize(camera position + N(0, jitter^2 I)), as the photos."""
    albedo_brightness: float = 0.8
    """Albedo-only renders show albedo x this. The paper uses 1, but every photo a
    prior has seen is lit: the toy world's average 0.79-0.83 of the albedo over the
    object (0.3 + 0.7 n.l), so at 1 the albedo-only renders pull the albedo darker (red
    body 0.85 -> 0.68; orange fronts read as red, yellow as orange). Real priors: 1."""


@dataclass(frozen=True)
class GuidanceConfig:
    """Score distillation sampling."""

    backend: Literal["toy", "sd", "if"] = "toy"
    """Diffusion prior. `toy`: the built-in exact prior of the toy world; `sd`: Stable
    Diffusion 1.x/2.x; `if`: DeepFloyd IF stage I (both need the diffusers extra)."""
    model: str = ""
    """sd / if: Hub id or local folder in diffusers layout ('' = the backend's default id:
    stabilityai/stable-diffusion-2-1-base, DeepFloyd/IF-I-XL-v1.0)."""
    local_files_only: bool = False
    """sd / if: never download (HF_HUB_OFFLINE=1 does the same)."""
    revision: str = ""
    """sd / if: Hub revision (branch, tag or commit) of a Hub id; '' = the default branch."""
    precision: Literal["auto", "fp32", "fp16", "bf16"] = "auto"
    """sd / if: dtype of the frozen text encoder and UNet; auto = fp16 on CUDA, fp32 on
    CPU (fp16 weight files are asked for where the model has them). The SDS arithmetic
    (noise estimate, guidance, gradient) is float32 whatever this is."""
    vae_precision: Literal["auto", "fp32", "fp16", "bf16"] = "fp32"
    """sd: dtype of the VAE encoder, which carries the only gradient back to the field.
    fp32 by default: the encoder is small (34M parameters; its fp32 pass costs little next
    to the UNet's) and fp16 changes the latents measurably (docs/DESIGN-NOTES.md,
    "Precision of the real priors"); auto = as `precision`."""
    channels_last: bool = False
    """sd / if: channels-last memory format for the UNet."""
    compile: bool = False
    """sd / if: torch.compile the UNet (slow first steps, faster later)."""
    text_cache: bool = True
    """sd / if: cache text embeddings on disk (~/.cache/dreamfusion) so that the text
    encoder is loaded only for new prompts (DREAMFUSION_NO_CACHE=1 or --no-cache: off)."""
    guidance_scale: float = 1.5
    """Classifier-free guidance s in eps_u + s (eps_c - eps_u). With the exact toy prior
    it is the main geometry knob: larger s inflates the shape (cone IoU 0.90 at 1.5,
    0.74 at 2, 0.67 at 3, 0.57 at 6; docs/DESIGN-NOTES.md)."""
    t_min: float = 0.02
    """Lower end of the diffusion time range at the end of training (fraction of T)."""
    t_min_start: float = 0.7
    """Lower end at the start of training, annealed linearly to t_min (= t_min disables).
    Small t pulls a render to the single nearest photo of the exact prior; starting
    with large t lets the early field settle on the caption's average look first."""
    t_max: float = 0.98
    """Upper end of the time range at the start of training."""
    t_max_final: float = 0.35
    """Upper end at the end of training (linear anneal from t_max); = t_max disables."""
    noise_samples: int = 1
    """Draws of (t, eps) per render, their SDS gradients averaged: less noise for the
    price of K prior calls (cheap for the toy prior, K U-Net passes for a real one)."""
    weighting: Literal["sds", "uniform"] = "sds"
    """w(t): `sds` = sigma_t^2 = 1 - alphabar_t (paper), `uniform` = 1."""
    grad_clip: float = 0.0
    """Clip the SDS gradient elementwise to +-this value (0 = off)."""
    view_prompts: bool = True
    """Append ', front view' / ', side view' / ... to the caption by camera angle."""
    plain_camera_fraction: float = 0.5
    """Fraction of the cameras drawn like the photos of a caption without a view suffix
    (front-biased) and given the caption as is; the rest use the paper's uniform
    cameras and view prompts. With uniform cameras nothing pins the turn of a cube
    about the vertical axis; matching the plain caption's front-biased photos with
    front-biased cameras does (cube IoU 0.67-0.70 -> 0.81-0.82; docs/DESIGN-NOTES.md)."""
    plain_camera_start: float = 0.0
    """Fraction of the steps before which no camera is plain (all uniform with view
    prompts): the front-biased cameras at the large t of the early steps favour a
    corner-on turn of a cube or pyramid (docs/DESIGN-NOTES.md)."""
    negative_prompt: str = ""
    """Text of the unconditional branch (empty = the true unconditional)."""
    perp_neg: bool = False
    """Perp-Neg (guidance/perp_neg.py): the positive prompt mixed between the two view
    prompts either side of the camera's azimuth, the other views as negatives through
    the component perpendicular to the positive guidance; 2 more prior passes per image.
    Needs view prompts; overhead and plain cameras keep their own prompt."""
    perp_neg_f_fs: tuple[float, float, float] = (4.0, 0.5, -2.426)
    """(a, b, c) of the front negative's weight -(a exp(-b r) + c) between front and
    side, r the front's share (0 at the front; threestudio's defaults, all four)."""
    perp_neg_f_sf: tuple[float, float, float] = (4.0, 0.5, -2.426)
    """The side negative's, of 1 - r, between front and side (0 at the side)."""
    perp_neg_f_sb: tuple[float, float, float] = (1.0, 0.5, -0.606)
    """The side negative's between side and back, r the side's share (0 at the side)."""
    perp_neg_f_fsb: tuple[float, float, float] = (1.0, 0.5, 0.967)
    """The front negative's between side and back."""
    bank_size: int = 2048
    """Toy prior: photos per caption in the exact denoiser's bank. With 128, neighbouring
    photos of a side view lie ~11 degrees apart and their posterior mean at the true
    object erases the thin strip of front colour a side camera sees (the SDS pull on
    it points away from the front colour); with 512 it points towards it
    (docs/DESIGN-NOTES.md, "Where fronts are lost"). 2048: fronts right in 66 of 72 runs
    of the front spread against 64 with 512 (docs/RESULTS.md, issue 18)."""
    mirror_photos: bool = False
    """Toy prior: each bank also holds every photo flipped left-right, an exact photo of
    the same text from -az (every toy object is symmetric under x -> -x): twice the
    photos, none rendered. On in the refine stage (refine.mirror_photos)."""
    uncond_bank_size: int = 512
    """Toy prior: photos of random captions in the unconditional bank."""
    prior_seed: int = 0
    """Toy prior: seed of the photo banks (independent of the run seed)."""
    bank_cache: bool = True
    """Toy prior: keep the photo banks on disk (~/.cache/dreamfusion/photo-banks, keyed
    by caption, sizes, seed and the toy world's code, checksummed), so a run starts
    in a fraction of a second; DREAMFUSION_NO_CACHE=1 or --no-cache bypasses it."""


@dataclass(frozen=True)
class RegularizerConfig:
    """Loss weights of the regularisers."""

    orientation: float = 1e-2
    """Orientation loss weight (paper: 1e-2)."""
    opacity: float = 0.0
    """Weight of sqrt(acc^2 + 0.01) (paper 1e-3..5e-3; too strong empties the scene)."""
    tv: float = 0.0
    """Total variation of the density grid (smoothness; not in the paper)."""


@dataclass(frozen=True)
class OptimConfig:
    """Adam on the field's grids."""

    lr_density: float = 0.1
    """Learning rate of the density grids."""
    lr_albedo: float = 0.05
    """Learning rate of the albedo grids."""
    lr_background: float = 1e-3
    """Learning rate of the learned background MLP."""
    density_warmup: float = 0.0
    """Fraction of the steps over which the density learning rate ramps up linearly from
    zero (the paper warms up its learning rate); the albedo is not held back."""
    lr_final: float = 1.0
    """Learning-rate factor reached at the last step, decayed geometrically from 1
    (every group; 1 = constant rates)."""


@dataclass(frozen=True)
class ExportConfig:
    """What is written at the end of a run."""

    enabled: bool = True
    """Export mesh, turntable and view grid at the end of the run."""
    mesh_resolution: int = 128
    """Marching-cubes grid cells per axis."""
    threshold: float = 0.0
    """Density threshold for marching cubes; 0 = choose it so that hard silhouettes
    match the rendered opacity over several views."""
    snap_turn: bool = True
    """Turn the finished field about y so that a four-fold object's faces sit on the
    world axes, as every toy-world object's do, before export (the toy prior cannot
    tell the turns apart, so the turn a run ends with is its random draws'; cubes and
    pyramids of the Table 1 grid: goal met in 12 of 24 runs without, 24 with;
    docs/DESIGN-NOTES.md). Fields without a clear four-fold mode are exported as they
    are. Off for Stable Diffusion and IF, whose objects need not be axis-aligned."""
    fill_hidden: bool = True
    """Export the solid the renders show: fill the pockets that a skin with holes hides
    (cells whose axis rays meet the solid in 5 of 6 directions; mesh.fill_occluded).
    A trained field's inside is never seen, and some fields are a hollow skin whose thin
    underside has holes: their meshes had inner shells and tunnels (a purple sphere:
    IoU 0.42, Euler characteristic -44; filled 0.90). Enclosed cavities are filled
    either way. Off for Stable Diffusion and IF, whose objects may be cups."""
    texture_size: int = 0
    """Side of the GLB's colour texture, baked from the vertex colours over a UV atlas
    (xatlas, the `texture` extra); 0, xatlas not installed or a mesh of more than
    texture.MAX_FACES faces (marching cubes without the refine stage): vertex colours
    only. 512 holds the smooth colours of a refined mesh's ~5k faces. Off by default:
    unwrapping, baking and writing take 0.5-0.7 s, 2% of a refined run, which would take
    the refine stage's cost from 1.28x to about 1.30x that of --no-refine
    (docs/DESIGN-NOTES.md)."""
    turntable_frames: int = 24
    turntable_size: int = 96
    view_size: int = 96


@dataclass(frozen=True)
class MeshConfig:
    """CLIP-Mesh's 3D model: a subdivided sphere whose vertex offsets and colours are
    optimised through the soft rasteriser (method `clipmesh`)."""

    subdivisions: int = 3
    """Icosphere subdivisions: 3 = 642 vertices, 1280 faces."""
    radius: float = 0.5
    """Radius of the initial sphere (the toy world's objects fit in [-0.5, 0.5]^3)."""
    sigma: float = 3e-4
    """Edge softness of the rasteriser (squared image units; larger = blurrier edges,
    gradients from further away)."""
    gamma: float = 1e-2
    """Depth-blend temperature of the rasteriser."""
    lr_offsets: float = 0.005
    """Adam learning rate of the vertex offsets."""
    lr_colours: float = 0.01
    """Adam learning rate of the vertex colour logits (0.05 painted adversarial
    rainbow patches that the guide read as a front colour)."""
    laplacian: float = 20.0
    """Weight of the Laplacian smoothness loss on the vertex offsets. Red cube: weight
    0.5 crumpled the mesh into spikes (IoU 0.49), 5 left it lumpy (0.67), 20 (offsets
    lr 0.002) gave a smooth box (0.71)."""


@dataclass(frozen=True)
class RefineConfig:
    """Stage 2 (issue 17): the stage-1 field's surface as a mesh, whose vertices and
    colours are optimised by the same guidance through the hard rasteriser, at a larger
    render size (Magic3D's coarse-to-fine), with the regularisers that keep a mesh clean."""

    enabled: bool = True
    """Run the refine stage after the field (--refine / --no-refine). On in the toy
    world's fast preset, where it measures better than the field's own mesh (36
    single-colour captions x 2 seeds: docs/RESULTS.md); off in the quality and
    real-prior presets, where it is not measured yet."""
    steps: int = 300
    size: int = 64
    """Render side of the refine stage (the toy prior gets photos of this size)."""
    batch_size: int = 2
    mesh_resolution: int = 48
    """Marching-cubes cells per axis of the initial mesh (48: ~4k faces for the toy
    world's objects; the rasteriser's cost grows with the faces)."""
    smooth_iterations: int = 10
    """Taubin smoothing passes of the initial mesh (lambda 0.5, nu -0.53)."""
    flat_start: float = 0.15
    """The initial mesh is cut flat at its widest cross-sections within this share of its
    height at the bottom and at the top (flat_start.py; 0 = off): no camera faces the
    underside and a domed top looks flat enough at 64x64, so material there stays, while
    a cut too far grows back (docs/DESIGN-NOTES.md, "A flat start for the base and the
    top")."""
    bank_size: int = 2048
    """Toy prior: photos per caption at the refine size. The nearer a render's nearest
    photo, the less the bank's gaps bias the stage (docs/DESIGN-NOTES.md, "The photo
    bank's gaps bias the refine stage"): from the exact pyramids F 0.784 with 512, 0.844
    with 2048. A new caption's five 2048-photo banks take about 34 s to render on
    two cores (then cached, 25 MB each; docs/RESULTS.md)."""
    mirror_photos: bool = True
    """Toy prior: guidance.mirror_photos in the refine stage (each bank doubled by its
    left-right flips). The nearest photos to a render lie closer in camera and light, so
    the stage's pull is less biased by the bank's gaps (docs/DESIGN-NOTES.md, "The photo
    bank's gaps bias the refine stage")."""
    distance_ends: float = 1.0
    """cameras.dist_ends in the refine stage: the share of cameras at the near and far
    ends of the distance range, where the prior fixes the object's size (six runs, one
    per shape: IoU 0.916 -> 0.930 against uniform distances, higher for every shape;
    docs/DESIGN-NOTES.md)."""
    lr_vertices: float = 0.001
    """Adam's step length on the (smoothed) vertex offsets. Plain steps of 1e-3 roughened
    a smooth sphere (normal error 3.9 -> 12.8 deg) and 3e-4 kept it but moved a stage-1
    base hanging 0.05 below a cone too slowly to lift it; 1e-3 with step_smoothing 2
    lifts it and keeps the surface smooth (36 seed-1 fields: mean normal angle 9.5 ->
    8.6 deg, F >= 0.93 in 11 -> 17; docs/DESIGN-NOTES.md)."""
    step_smoothing: float = 2.0
    """lambda of the smoothed vertex updates (large_steps.py: the optimiser steps in
    (I + lambda L) x, so a step moves a patch, not a vertex); 0 = plain steps."""
    lr_colours: float = 0.01
    normal_consistency: float = 1.0
    """Weight of the mean 1 - cos between the normals of faces sharing an edge."""
    laplacian: float = 10.0
    """Weight of the mean squared uniform Laplacian of the vertex positions."""
    edge_length: float = 0.1
    """Weight of the mean squared relative deviation of edge lengths from their mean."""
    sigma: float = 1e-4
    """Edge softness of the rasteriser (squared image units; 1e-4 is a third of a pixel
    at 64 px)."""
    gamma: float = 1e-2
    """Depth-blend temperature of the rasteriser."""


@dataclass(frozen=True)
class ClipGuidanceConfig:
    """Dream Fields and CLIP-Mesh: loss = -cos(image embedding of an augmented render,
    caption embedding), from an image-caption model (the analogue of CLIP)."""

    model: str = "toy-a"
    """`toy-a` / `toy-b`: the toy world's retrieval models shipped in the package (two
    independent trainings, standing for two CLIP sizes); a path to retrieval weights
    (.pt); or a CLIP folder or Hub id (transformers)."""
    local_files_only: bool = False
    """CLIP: never download (HF_HUB_OFFLINE=1 does the same)."""
    crops: int = 2
    """Augmented crops per render, each scored."""
    crop_scale: float = 0.8
    """Random square crops of this fraction of the side or more, resized back."""
    white_background: float = 0.5
    """Share of renders on white (the toy guide has only seen white backgrounds); the
    others get Dream Fields' random backgrounds."""
    background_noise: float = 0.5
    """Of the random backgrounds: share of smooth random noise (else a solid colour)."""
    transmittance_start: float = 0.3
    transmittance_target: float = 0.6
    """Dream Fields' loss -min(tau, mean transmittance), tau annealed from start to
    target over `transmittance_anneal` of the steps. Scaled to the toy world: its objects
    leave 55-85% of a render transparent (Dream Fields used 88% for its framing)."""
    transmittance_anneal: float = 0.5
    transmittance_weight: float = 0.5
    """Weight of the transmittance loss (Dream Fields only)."""


@dataclass(frozen=True)
class FaultConfig:
    """What a run does about non-finite losses or gradients (NaN, inf)."""

    max_consecutive: int = 5
    """Faulty steps in a row (each skipped and counted) before rolling back to the last
    good checkpoint."""
    lr_factor: float = 0.5
    """Learning rates are multiplied by this at each rollback."""
    max_rollbacks: int = 3
    """Rollbacks before the run gives up (its last good checkpoint is kept)."""
    check_every: int = 10
    """Steps between reads of the losses on the host (each read waits for the GPU).
    Faulty steps are skipped on the device at once; a rollback comes at the next read,
    and the steps run meanwhile are rolled back with the rest."""


@dataclass(frozen=True)
class RunConfig:
    """Everything a run needs; saved as config.json in the run folder."""

    caption: str = "a red cube"
    method: Literal["dreamfusion", "dreamfields", "clipmesh"] = "dreamfusion"
    """`dreamfusion`: the NeRF guided by score distillation; the baselines of the paper's
    Table 1: `dreamfields` (the same NeRF guided by an image-caption model) and
    `clipmesh` (a deformed sphere mesh guided by it)."""
    steps: int = 800
    """Optimisation steps."""
    batch_size: int = 2
    """Cameras (images) per step."""
    size: int = 32
    """Render resolution (square) during training."""
    seed: int = 0
    device: Literal["cpu", "cuda", "auto"] = "auto"
    preview_every: int = 200
    """Save a preview image every this many steps (0 = never)."""
    checkpoint_every: int = 100
    """Write a resumable checkpoint every this many steps (0 = only at the end)."""
    field: FieldConfig = _field(default_factory=FieldConfig)
    render: RenderConfig = _field(default_factory=RenderConfig)
    shading: ShadingConfig = _field(default_factory=ShadingConfig)
    cameras: CameraSampling = _field(default_factory=CameraSampling)
    guidance: GuidanceConfig = _field(default_factory=GuidanceConfig)
    reg: RegularizerConfig = _field(default_factory=RegularizerConfig)
    optim: OptimConfig = _field(default_factory=OptimConfig)
    export: ExportConfig = _field(default_factory=ExportConfig)
    faults: FaultConfig = _field(default_factory=FaultConfig)
    mesh: MeshConfig = _field(default_factory=MeshConfig)
    refine: RefineConfig = _field(default_factory=RefineConfig)
    clip: ClipGuidanceConfig = _field(default_factory=ClipGuidanceConfig)


# -- presets --------------------------------------------------------------------------
@dataclass(frozen=True)
class Preset:
    """A named bundle of settings for one prior, and where its numbers come from."""

    backend: str
    name: str
    summary: str
    sources: str
    config: RunConfig


def _toy_quality() -> RunConfig:
    return RunConfig(
        steps=2000, batch_size=4, size=64, render=RenderConfig(samples=64),
        field=FieldConfig(resolution=96, density_levels=(24, 48, 96), albedo_levels=(12, 24, 48)),
        export=ExportConfig(mesh_resolution=192, turntable_frames=48, turntable_size=128,
                            view_size=128),
        refine=RefineConfig(enabled=False),  # not measured after a 64x64 field
    )


def _real_prior(backend: str, guidance_scale: float, steps: int, quality: bool) -> RunConfig:
    """The paper's and threestudio's settings where the toy world's tuned ones do not carry
    over (docs/DESIGN-NOTES.md, "Presets of the real priors", cites each number)."""
    fine = (32, 64, 128) if quality else (16, 32, 64)
    return RunConfig(
        steps=steps, batch_size=1, size=64, preview_every=500, checkpoint_every=500,
        field=FieldConfig(resolution=fine[-1], density_levels=fine,
                          albedo_levels=tuple(r // 2 for r in fine)),
        render=RenderConfig(samples=96 if quality else 64, background="learned"),
        shading=ShadingConfig(albedo_only_fraction=0.2, ambient=0.1, diffuse=0.9,
                              albedo_brightness=1.0),
        guidance=GuidanceConfig(backend=backend, guidance_scale=guidance_scale,
                                t_min=0.02, t_min_start=0.02, t_max=0.98, t_max_final=0.98,
                                plain_camera_fraction=0.0),
        optim=OptimConfig(lr_final=0.1),
        # Magic3D's fine stage: Stable Diffusion sees the mesh at 512 through its VAE (a
        # render at the VAE's size, not an upsampled 64x64 one); IF's stage I works at 64.
        # About a third of the field's steps (Magic3D: 3,000 after 5,000); the distances'
        # ends pin the size of the toy prior's photos only. Untested on real weights, so
        # off unless asked for (--refine).
        refine=RefineConfig(enabled=False, size=512 if backend == "sd" else 64, batch_size=1,
                            steps=steps // 3, distance_ends=0.0),
        export=ExportConfig(snap_turn=False, fill_hidden=False,
                            mesh_resolution=256 if quality else 128,
                            turntable_frames=48 if quality else 24,
                            turntable_size=256 if quality else 128,
                            view_size=256 if quality else 128),
    )


_THREESTUDIO = "threestudio configs/dreamfusion-{}.yaml (10k steps, 64x64, batch 1, s={})"
_PRESET_LIST = (
    Preset("toy", "fast", "about a minute on 2 CPU cores at 32x32",
           "tuned on the toy world (docs/DESIGN-NOTES.md, docs/RESULTS.md)", RunConfig()),
    Preset("toy", "quality", "64x64 renders, finer grid, 2000 steps",
           "tuned on the toy world", _toy_quality()),
    Preset("sd", "fast", "2,500 steps at 64x64: a first look at a caption",
           "a quarter of " + _THREESTUDIO.format("sd", 100), _real_prior("sd", 100.0, 2500, False)),
    Preset("sd", "quality", "10,000 steps at 64x64, finer grid",
           _THREESTUDIO.format("sd", 100) + "; the paper: 15k steps",
           _real_prior("sd", 100.0, 10000, True)),
    Preset("if", "fast", "2,500 steps at 64x64 (IF stage I's own resolution)",
           "a quarter of " + _THREESTUDIO.format("if", 20), _real_prior("if", 20.0, 2500, False)),
    Preset("if", "quality", "10,000 steps at 64x64, finer grid",
           _THREESTUDIO.format("if", 20) + "; the paper (Imagen, 64x64): 15k steps",
           _real_prior("if", 20.0, 10000, True)),
)
PRESET_TABLE: dict[tuple[str, str], Preset] = {(p.backend, p.name): p for p in _PRESET_LIST}
"""Every preset, by (backend, name)."""
PRESETS = ("fast", "quality")
BACKENDS = ("toy", "sd", "if")


def preset(name: str = "fast", backend: str = "toy") -> RunConfig:
    """The settings of a named preset for a prior: `fast` (default) or `quality`, for the
    toy world's exact prior, Stable Diffusion (`sd`) or DeepFloyd IF (`if`)."""
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r} (choose {' or '.join(PRESETS)})")
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r} (choose {', '.join(BACKENDS)})")
    return PRESET_TABLE[(backend, name)].config


def to_dict(cfg: Any) -> dict:
    """Nested plain dict (tuples become lists) for JSON."""
    return json.loads(json.dumps(dataclasses.asdict(cfg)))


def override(cfg: Any, **changes: Any) -> Any:
    """A copy of a frozen config with dotted-path changes, e.g. {'guidance.guidance_scale': 2}."""
    for path, value in changes.items():
        head, _, rest = path.partition(".")
        if rest:
            value = override(getattr(cfg, head), **{rest: value})
        cfg = replace(cfg, **{head: value})
    return cfg
