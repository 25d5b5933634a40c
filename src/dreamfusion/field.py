"""The 3D model: a dense voxel grid of density and albedo (DVGO / Plenoxels style).

Measured against the alternatives on 2 CPU cores (see docs/DESIGN-NOTES.md): a dense
grid needs no MLP, is one `grid_sample` per step, and its density gradient, hence the
surface normal, is one more cheap stencil over the grid instead of six extra field
evaluations per sample.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .config import FieldConfig
from .toyworld.world import grid_points


class GridField(nn.Module):
    """Density and albedo on (R, R, R) grids over [-bound, bound]^3.

    Grid index [i, j, k] is the point (x_i, y_j, z_k) (toyworld.world.grid_points).
    Each raw grid is a sum of levels upsampled to R. Density sigma = softplus(raw);
    albedo rho = sigmoid(raw); both are interpolated after activation.
    """

    def __init__(self, cfg: FieldConfig, generator: torch.Generator | None = None):
        super().__init__()
        self.cfg = cfg

        def level(channels: tuple[int, ...], r: int) -> nn.Parameter:
            noise = torch.randn(*channels, r, r, r, generator=generator) * cfg.init_noise
            return nn.Parameter(noise)

        self.density_levels = nn.ParameterList([level((), r) for r in cfg.density_levels])
        self.albedo_levels = nn.ParameterList([level((3,), r) for r in cfg.albedo_levels])
        # Density blob so the scene starts as a soft ball rather than empty space.
        radius = grid_points(cfg.resolution, cfg.bound).norm(p=cfg.blob_exponent, dim=-1)
        with torch.no_grad():
            blob = cfg.blob_density * (1.0 - radius / cfg.blob_radius)
            self.density_levels[-1] += upsample(blob[None], cfg.density_levels[-1])[0]

    @property
    def device(self) -> torch.device:
        return self.density_levels[0].device

    def _upsampled_sum(self, levels: nn.ParameterList) -> Tensor:
        """(C, R, R, R): levels summed coarse to fine, each partial sum upsampled once."""
        return self._finish(upsample(self._level_sum(levels), self.cfg.resolution))

    def _level_sum(self, levels: nn.ParameterList) -> Tensor:
        """(C, r, r, r) at the finest level's r: cascading (16 -> 32, add, -> 64) costs
        one full-size upsample instead of one per level; upsampling is linear, so the
        sum is the same."""
        total = None
        for grid in levels:
            g = grid if grid.dim() == 4 else grid[None]
            if total is not None:
                g = g + upsample(total, g.shape[-1])
            total = g
        return total

    def _finish(self, total: Tensor) -> Tensor:
        if self.cfg.mirror_x:  # axis 1 of (C, R, R, R) is x, its cells symmetric about 0
            total = (total + total.flip(1)) / 2
        return total

    @property
    def density_raw(self) -> Tensor:
        """(R, R, R) pre-activation density."""
        return self._upsampled_sum(self.density_levels)[0]

    @property
    def albedo_raw(self) -> Tensor:
        """(3, R, R, R) pre-activation albedo."""
        return self._upsampled_sum(self.albedo_levels)

    @property
    def voxel_size(self) -> float:
        return 2 * self.cfg.bound / self.cfg.resolution

    def density_grid(self) -> Tensor:
        """(R, R, R) activated density."""
        return F.softplus(self.density_raw)

    def feature_volume(self, density: Tensor | None = None,
                       box: tuple[Tensor, Tensor] | None = None) -> "FeatureVolume":
        """Density, its gradient (3) and albedo (3), ready for sampling.

        The gradient is a central difference over one voxel each side: a wide step,
        so normals are smooth (narrow steps gave speckled shading in the prototype).
        `density`: this field's `density_grid()` when already computed. `box` (lo, hi):
        build only the cells that trilinear samples inside it read (the same values as
        the full volume there; reads the box on the host, so meant for the CPU).
        """
        sigma = self.density_grid() if density is None else density
        r = self.cfg.resolution
        start, stop = (0, 0, 0), (r, r, r)
        if box is not None and not self.cfg.mirror_x:
            start, stop = self.cells_around(*box)
        crop = tuple(slice(a, b) for a, b in zip(start, stop))
        grad = density_gradient(sigma, self.voxel_size, start, stop)
        # a box is never cut with mirror_x, so the mirror applies only to whole grids
        albedo = self._finish(upsample_cells(self._level_sum(self.albedo_levels), r, start,
                                             stop))
        data = torch.cat([sigma[crop][None], grad, torch.sigmoid(albedo)], dim=0)
        return FeatureVolume(data, start, stop, r, self.cfg.bound)

    def cells_around(self, lo: Tensor, hi: Tensor) -> tuple[tuple[int, ...], tuple[int, ...]]:
        """[start, stop) cell ranges per axis holding every trilinear corner of points in
        the box [lo, hi] (3,) (one cell of margin each side)."""
        r, b, h = self.cfg.resolution, self.cfg.bound, self.voxel_size
        first = ((lo + b) / h).floor().long() - 1
        last = ((hi + b) / h).floor().long() + 1
        start = tuple(max(int(v), 0) for v in first.tolist())
        stop = tuple(min(int(v) + 1, r) for v in last.tolist())
        return start, stop

    def query(self, points: Tensor, volume: "FeatureVolume | None" = None) -> dict[str, Tensor]:
        """Field values at points (..., 3): density (...), normal (..., 3), albedo (..., 3).

        Pass `volume` (from `feature_volume`) to share one volume over several queries.
        """
        if volume is None:
            volume = self.feature_volume()
        feats = volume.sample(points)
        grad = feats[..., 1:4]
        normal = -grad / (grad.norm(dim=-1, keepdim=True) + 1e-6)
        return {"density": feats[..., 0], "normal": normal, "albedo": feats[..., 4:7]}

    def density(self, points: Tensor) -> Tensor:
        """Density at points (..., 3) -> (...)."""
        return sample_volume(self.density_grid()[None], points, self.cfg.bound)[..., 0]

    def albedo(self, points: Tensor) -> Tensor:
        """Albedo at points (..., 3) -> (..., 3) in [0, 1]."""
        return sample_volume(torch.sigmoid(self.albedo_raw), points, self.cfg.bound)

    @torch.no_grad()
    def occupied_box(self, threshold: float = 0.1, margin: float = 0.1,
                     density: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """(lo, hi), each (3,): bounding box of cells with density > threshold, grown by
        `margin` so the surface can still move outward; the whole cube if none.
        Pass `density` (R, R, R) when it is already computed. No host-device sync."""
        density = self.density_grid() if density is None else density
        occupied = density > threshold
        b, r = self.cfg.bound, self.cfg.resolution
        half = self.voxel_size / 2 + margin
        xy = occupied.any(2)  # (R, R)
        hits = (xy.any(1), xy.any(0), occupied.any(0).any(0))  # (R,) each, per axis
        lo, hi = [], []
        for hit in hits:
            first = hit.int().argmax()
            last = r - 1 - hit.flip(0).int().argmax()
            lo.append(-b + (first + 0.5) * self.voxel_size - half)
            hi.append(-b + (last + 0.5) * self.voxel_size + half)
        lo, hi = torch.stack(lo).clamp(min=-b), torch.stack(hi).clamp(max=b)
        anything = hits[0].any()
        return torch.where(anything, lo, -b), torch.where(anything, hi, b)

    @torch.no_grad()
    def occupancy(self, density: Tensor) -> Tensor | None:
        """(R, R, R) bool: cells above `empty_density` or next to one (26-neighbours), from
        an activated density grid; None when nothing is skipped (empty_density 0).

        A point whose nearest cell is unmarked has all 8 trilinear corners below the
        threshold, so its interpolated density is below it too."""
        if self.cfg.empty_density <= 0:
            return None
        return dilate(density > self.cfg.empty_density)

    def occupied_at(self, occupancy: Tensor, points: Tensor) -> Tensor:
        """bool (...): the occupancy cell nearest to each of points (..., 3)."""
        r = self.cfg.resolution
        # float index arithmetic (exact below 2^24 cells) is twice as fast as int64 here
        cell = ((points + self.cfg.bound) * (1.0 / self.voxel_size)).floor_().clamp_(0, r - 1)
        flat = cell[..., 0] * (r * r) + cell[..., 1] * r + cell[..., 2]
        return occupancy.reshape(-1)[flat.long()]

    def param_groups(self, cfg) -> list[tuple[list, float, bool]]:
        """(parameters, learning rate, warmed up?) per optimiser group, from a RunConfig."""
        return [(list(self.density_levels), cfg.optim.lr_density, True),
                (list(self.albedo_levels), cfg.optim.lr_albedo, False)]

    def regularisers(self, cfg) -> tuple[dict[str, Tensor], dict[str, float]]:
        """(losses, weights) the field adds to any guidance's: total variation if set."""
        if cfg.reg.tv > 0:
            return {"tv": self.tv_loss()}, {"tv": cfg.reg.tv}
        return {}, {}

    def tv_loss(self) -> Tensor:
        """Mean squared difference of neighbouring finest-level densities (smoothness prior)."""
        d = self.density_levels[-1]
        return sum(((d.diff(dim=k)) ** 2).mean() for k in range(3)) / 3


def upsample(grid: Tensor, r: int) -> Tensor:
    """Trilinear resize of a (C, r0, r0, r0) cell-centred grid to (C, r, r, r).

    Doubling (every level step of the presets) takes the separable path, whose backward
    pass is 3-5x faster on CPU than `F.interpolate`'s; `upsample_reference` is its twin.
    """
    r0 = grid.shape[-1]
    if r0 == r:
        return grid
    if r == 2 * r0 and r0 > 1:
        return upsample_any(grid)
    return upsample_reference(grid, r)


def upsample_reference(grid: Tensor, r: int) -> Tensor:
    """`upsample` by `F.interpolate` (trilinear, align_corners=False), for any ratio."""
    if grid.shape[-1] == r:
        return grid
    return F.interpolate(grid[None], size=(r, r, r), mode="trilinear", align_corners=False)[0]


def double_along(grid: Tensor, axis: int) -> Tensor:
    """Linear x2 upsampling of cell-centred samples along one axis, edges clamped.

    New cells 2i and 2i+1 sit a quarter cell either side of old cell i:
    0.75 c[i] + 0.25 c[i-1] and 0.75 c[i] + 0.25 c[i+1] (exactly F.interpolate's weights).
    """
    n = grid.shape[axis]
    prev = torch.cat([grid.narrow(axis, 0, 1), grid.narrow(axis, 0, n - 1)], axis)
    nxt = torch.cat([grid.narrow(axis, 1, n - 1), grid.narrow(axis, n - 1, 1)], axis)
    shape = list(grid.shape)
    shape[axis] *= 2
    return torch.stack([torch.lerp(grid, prev, 0.25), torch.lerp(grid, nxt, 0.25)],
                       axis + 1).reshape(shape)


def density_gradient(sigma: Tensor, h: float, start: tuple[int, ...] = (0, 0, 0),
                     stop: tuple[int, ...] | None = None) -> Tensor:
    """(3, X, Y, Z) central-difference gradient of a (R, R, R) grid, edges replicated,
    at the cells [start, stop) of each axis (default all)."""
    r = sigma.shape[0]
    stop = stop or (r, r, r)
    # the cells with one neighbour each side; the grid's own edges are replicated
    sub = sigma[tuple(slice(max(a - 1, 0), min(b + 1, r)) for a, b in zip(start, stop))]
    pad = []
    for a, b in reversed(list(zip(start, stop))):  # F.pad lists the last axis first
        pad += [int(a == 0), int(b == r)]
    if any(pad):
        sub = F.pad(sub[None, None], tuple(pad), mode="replicate")[0, 0]
    gx = (sub[2:, 1:-1, 1:-1] - sub[:-2, 1:-1, 1:-1]) / (2 * h)
    gy = (sub[1:-1, 2:, 1:-1] - sub[1:-1, :-2, 1:-1]) / (2 * h)
    gz = (sub[1:-1, 1:-1, 2:] - sub[1:-1, 1:-1, :-2]) / (2 * h)
    return torch.stack([gx, gy, gz])


def upsample_cells(grid: Tensor, r: int, start: tuple[int, ...], stop: tuple[int, ...]) -> Tensor:
    """`upsample(grid, r)[:, start:stop]` per axis, computing only what those cells read
    when r doubles the grid (a fine cell reads its coarse cell and one neighbour)."""
    r0 = grid.shape[-1]
    full = start == (0, 0, 0) and stop == (r, r, r)
    if r != 2 * r0 or full:
        return upsample(grid, r)[(slice(None),) + tuple(slice(a, b) for a, b in zip(start, stop))]
    first = [max(a // 2 - 1, 0) for a in start]
    last = [min((b - 1) // 2 + 1, r0 - 1) for b in stop]
    coarse = grid[(slice(None),) + tuple(slice(f, l + 1) for f, l in zip(first, last))]
    fine = upsample_any(coarse)  # cells [2 first, 2 last + 2); its edge cells clamp wrongly
    return fine[(slice(None),) + tuple(slice(a - 2 * f, b - 2 * f)
                                       for a, b, f in zip(start, stop, first))]


def upsample_any(grid: Tensor) -> Tensor:
    """x2 on each axis of a (C, X, Y, Z) box of cells (need not be a cube)."""
    for axis in (1, 2, 3):
        grid = double_along(grid, axis)
    return grid


class FeatureVolume:
    """(C, X, Y, Z) features on the cells [start, stop) of each axis of a field's R^3
    grid over [-bound, bound]^3; samples outside the grid read zero, as the full grid's."""

    def __init__(self, data: Tensor, start: tuple[int, ...], stop: tuple[int, ...],
                 resolution: int, bound: float):
        self.data, self.start, self.stop = data, start, stop
        self.resolution, self.bound = resolution, bound

    def sample(self, points: Tensor) -> Tensor:
        """Trilinear features at points (..., 3) -> (..., C)."""
        r = self.resolution
        if self.start == (0, 0, 0) and self.stop == (r, r, r):  # no host tensor needed
            return sample_volume(self.data, points, self.bound)
        h = 2 * self.bound / self.resolution
        lo = torch.tensor([-self.bound + a * h for a in self.start], device=points.device)
        hi = torch.tensor([-self.bound + b * h for b in self.stop], device=points.device)
        return sample_region(self.data, points, lo, hi)


def dilate(mask: Tensor) -> Tensor:
    """bool (R, R, R): cells of `mask` or among their 26 neighbours (separable OR of
    shifts; 20x cheaper on CPU than `max_pool3d`, which `dilate_reference` uses)."""
    for axis in range(3):
        grown = mask.clone()
        n = mask.shape[axis]
        grown.narrow(axis, 1, n - 1).logical_or_(mask.narrow(axis, 0, n - 1))
        grown.narrow(axis, 0, n - 1).logical_or_(mask.narrow(axis, 1, n - 1))
        mask = grown
    return mask


def dilate_reference(mask: Tensor) -> Tensor:
    """`dilate` by a 3x3x3 max pool."""
    return F.max_pool3d(mask.float()[None, None], 3, stride=1, padding=1)[0, 0] > 0


def sample_volume(volume: Tensor, points: Tensor, bound: float) -> Tensor:
    """Trilinear sample of a (C, R, R, R) volume (axes x, y, z) at points (..., 3) -> (..., C).

    Points outside the cube read zero (padding_mode='zeros').
    """
    shape = points.shape[:-1]
    # grid_sample wants (x, y, z) coordinates for the (W, H, D) = (z, y, x) axes.
    coords = (points.reshape(1, -1, 1, 1, 3)[..., [2, 1, 0]] / bound)
    return _grid_sample(volume, coords, shape)


def sample_region(volume: Tensor, points: Tensor, lo: Tensor, hi: Tensor) -> Tensor:
    """`sample_volume` for a (C, X, Y, Z) volume whose cells tile the box [lo, hi] (3,)."""
    shape = points.shape[:-1]
    centre, half = (lo + hi) / 2, (hi - lo) / 2
    coords = ((points.reshape(1, -1, 1, 1, 3) - centre) / half)[..., [2, 1, 0]]
    return _grid_sample(volume, coords, shape)


def _grid_sample(volume: Tensor, coords: Tensor, shape: torch.Size) -> Tensor:
    out = F.grid_sample(volume[None], coords, mode="bilinear", padding_mode="zeros",
                        align_corners=False)
    # Contiguous (P, C): per-channel slices of a transposed view made the normal's norm
    # alone cost 12 ms per training step.
    return out.reshape(volume.shape[0], -1).t().contiguous().reshape(*shape, volume.shape[0])


class LearnedBackground(nn.Module):
    """Background colour as a small MLP of the ray direction (the paper's choice)."""

    def __init__(self, hidden: int = 16):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(3, hidden), nn.ReLU(), nn.Linear(hidden, 3))

    def forward(self, dirs: Tensor) -> Tensor:
        """dirs (..., 3) unit vectors -> colour (..., 3) in [0, 1]."""
        return torch.sigmoid(self.net(dirs))
