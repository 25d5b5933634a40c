"""Hard rasterisation with antialiased silhouettes, in plain PyTorch (the refine stage's
renderer; after nvdiffrast's rasterise / interpolate / antialias split, Laine et al. 2020).

1. `rasterize_hard` (no gradient): each front-facing face is tested against the pixel
   centres of its bounding box; a z-buffer (scatter-min of the perspective-correct depth)
   keeps the nearest face per pixel. Cost grows with the pixels the faces cover, not
   with pixels x faces as the soft rasteriser's does.
2. `interpolate`: perspective-correct barycentrics of each pixel's face, recomputed from
   the projected vertices with gradients, interpolate per-corner values.
3. `antialias`: where two neighbouring pixels show different faces and the edge crossed
   between their centres is a silhouette (the face across it is turned away, or absent),
   the colours are blended by how far the edge lies past the midpoint. The crossing point
   depends on the vertices, so the silhouette moves the image smoothly and passes
   gradients to the vertex positions, as a soft edge does.

Screen coordinates are rasterize.project's: x right, y up, both in [-1, 1]; row 0 of an
image is its top. A face is front-facing when its corners run counter-clockwise on screen
(mesh_model's faces are counter-clockwise seen from outside).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

NEAR = 1e-3
"""Faces with a corner nearer the camera plane than this are dropped."""


@dataclass
class Raster:
    """Which face each pixel shows, for B views of one mesh at size x size."""

    face: Tensor
    """(B, H, W) long: face index, -1 where no face covers the pixel centre."""
    front: Tensor
    """(B, F) bool: the face is front-facing in that view."""
    depth: Tensor
    """(B, H, W): camera depth of the surface seen, inf where no face covers the pixel."""
    size: int


def pixel_grid(size: int, device=None) -> tuple[Tensor, Tensor]:
    """(x (W,), y (H,)) screen coordinates of the pixel centres, y from the top row down."""
    c = (torch.arange(size, device=device, dtype=torch.float32) + 0.5) / size * 2 - 1
    return c, -c


def signed_area(tri: Tensor) -> Tensor:
    """(...) twice the signed screen area of triangles (..., 3, >=2); > 0: counter-clockwise."""
    a, b, c = tri[..., 0, :2], tri[..., 1, :2], tri[..., 2, :2]
    return (b[..., 0] - a[..., 0]) * (c[..., 1] - a[..., 1]) - \
        (b[..., 1] - a[..., 1]) * (c[..., 0] - a[..., 0])


def screen_barycentrics(tri: Tensor, q: Tensor) -> Tensor:
    """(..., 3) barycentrics of screen points q (..., 2) in triangles (..., 3, >=2)."""
    a, b, c = tri[..., 0, :2], tri[..., 1, :2], tri[..., 2, :2]
    area = signed_area(tri)
    area = torch.where(area.abs() < 1e-12, torch.full_like(area, 1e-12), area)
    l1 = ((q[..., 0] - a[..., 0]) * (c[..., 1] - a[..., 1])
          - (q[..., 1] - a[..., 1]) * (c[..., 0] - a[..., 0])) / area
    l2 = ((b[..., 0] - a[..., 0]) * (q[..., 1] - a[..., 1])
          - (b[..., 1] - a[..., 1]) * (q[..., 0] - a[..., 0])) / area
    return torch.stack([1 - l1 - l2, l1, l2], dim=-1)


def perspective_weights(bary: Tensor, z: Tensor) -> Tensor:
    """Perspective-correct interpolation weights (..., 3) from screen barycentrics and the
    corners' camera depths z (..., 3)."""
    w = bary / z
    return w / w.sum(-1, keepdim=True)


def box_pixels(tri: Tensor, keep: Tensor, size: int, grow: float = 0.0
               ) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """(view, face, rows, cols), each (N,): every pixel whose centre lies in the screen
    bounding box, grown by `grow` pixels, of the kept faces. tri (B, F, 3, >=2) screen
    corners, keep (B, F) bool."""
    n_faces, device = tri.shape[1], tri.device
    # bounding boxes in pixel indices (column i has centre x = (i + 0.5) * 2 / size - 1)
    col = (tri[..., 0] + 1) * size / 2 - 0.5
    row = (1 - tri[..., 1]) * size / 2 - 0.5
    c0 = (col.amin(-1) - grow).ceil().clamp(0, size).long()
    c1 = (col.amax(-1) + grow).floor().clamp(-1, size - 1).long()
    r0 = (row.amin(-1) - grow).ceil().clamp(0, size).long()
    r1 = (row.amax(-1) + grow).floor().clamp(-1, size - 1).long()
    w, h = (c1 - c0 + 1).clamp(min=0), (r1 - r0 + 1).clamp(min=0)
    count = torch.where(keep, w * h, torch.zeros_like(w)).reshape(-1)  # (B * F,)
    slot = torch.arange(int(count.sum()), device=device)
    owner = torch.repeat_interleave(torch.arange(len(count), device=device), count)
    local = slot - (torch.cumsum(count, 0) - count)[owner]
    wo = w.reshape(-1)[owner]
    cols = c0.reshape(-1)[owner] + local % wo.clamp(min=1)
    rows = r0.reshape(-1)[owner] + local // wo.clamp(min=1)
    return owner // n_faces, owner % n_faces, rows, cols


@torch.no_grad()
def rasterize_hard(screen: Tensor, faces: Tensor, size: int) -> Raster:
    """The nearest front-facing face at each pixel centre. screen (B, V, 3) from
    rasterize.project; faces (F, 3)."""
    b, device = screen.shape[0], screen.device
    tri = screen[:, faces]  # (B, F, 3, 3)
    front = (signed_area(tri) > 0) & (tri[..., 2] > NEAR).all(-1)
    view, face, rows, cols = box_pixels(tri, front, size)
    xs, ys = pixel_grid(size, device)
    q = torch.stack([xs[cols], ys[rows]], dim=-1)
    t = tri[view, face]  # (N, 3, 3)
    bary = screen_barycentrics(t, q)
    inside = (bary >= 0).all(-1)
    depth = 1 / (bary / t[..., 2]).sum(-1)
    pixel = (view * size + rows) * size + cols
    pixel, face, depth = pixel[inside], face[inside], depth[inside]
    nearest = torch.full((b * size * size,), float("inf"), device=device)
    nearest.scatter_reduce_(0, pixel, depth, reduce="amin")
    won = depth == nearest[pixel]  # ties (a shared edge): the larger face index
    best = torch.full((b * size * size,), -1, dtype=torch.long, device=device)
    best.scatter_reduce_(0, pixel[won], face[won], reduce="amax")
    return Raster(best.reshape(b, size, size), front, nearest.reshape(b, size, size), size)


def interpolate(raster: Raster, screen: Tensor, faces: Tensor, corner_values: Tensor
                ) -> tuple[Tensor, Tensor, Tensor]:
    """(values (B, C, H, W), coverage (B, 1, H, W), depth (B, 1, H, W)): each covered
    pixel's face values interpolated perspective-correctly (0 where uncovered), with
    gradients to the screen positions and the values. corner_values: (B, F, 3, C)."""
    b, size = screen.shape[0], raster.size
    hit = raster.face >= 0
    view, rows, cols = hit.nonzero(as_tuple=True)
    face = raster.face[view, rows, cols]
    xs, ys = pixel_grid(size, screen.device)
    tri = screen[view[:, None], faces[face]]  # (N, 3, 3)
    weights = perspective_weights(screen_barycentrics(tri, torch.stack([xs[cols], ys[rows]], -1)),
                                  tri[..., 2])
    vals = (weights[..., None] * corner_values[view, face]).sum(1)  # (N, C)
    depth = (weights * tri[..., 2]).sum(-1)
    out = screen.new_zeros(b, size, size, vals.shape[-1]).index_put((view, rows, cols), vals)
    z = screen.new_zeros(b, size, size).index_put((view, rows, cols), depth)
    return out.permute(0, 3, 1, 2), hit[:, None].to(screen.dtype), z[:, None]


def edge_neighbours(faces: Tensor) -> Tensor:
    """(F, 3) long: the face across the edge opposite each corner (-1 if none)."""
    n = faces.shape[0]
    edges = torch.stack([faces[:, [1, 2]], faces[:, [2, 0]], faces[:, [0, 1]]], 1)  # (F, 3, 2)
    key = edges.sort(-1).values.reshape(-1, 2)
    _, inverse, counts = torch.unique(key, dim=0, return_inverse=True, return_counts=True)
    order = torch.argsort(inverse, stable=True)
    start = torch.cumsum(counts, 0) - counts
    out = torch.full((n * 3,), -1, dtype=torch.long, device=faces.device)
    pair = counts[inverse] == 2
    first = order[start[inverse]]
    second = order[start[inverse] + 1].where(counts[inverse] > 1, first)
    other = torch.where(first == torch.arange(n * 3, device=faces.device), second, first)
    out[pair] = torch.div(other[pair], 3, rounding_mode="floor")
    return out.reshape(n, 3)


def shifted(face: Tensor, dr: int, dc: int) -> Tensor:
    """(B, H, W): the face map seen from each pixel's neighbour at (+dr, +dc); -2 off the
    image."""
    size = face.shape[-1]
    out = torch.full_like(face, -2)
    src = lambda d: slice(max(d, 0), size + min(d, 0))  # noqa: E731
    dst = lambda d: slice(max(-d, 0), size + min(-d, 0))  # noqa: E731
    out[:, dst(dr), dst(dc)] = face[:, src(dr), src(dc)]
    return out


def segment_exit(tri: Tensor, p: Tensor, q: Tensor) -> tuple[Tensor, Tensor]:
    """(s (N,), corner (N,)): where the segment p -> q (N, 2) leaves triangles (N, 3, >=2),
    as a fraction of the way, and the corner opposite the edge it leaves by (s > 1 or
    inf: it does not leave before q)."""
    lp, lq = screen_barycentrics(tri, p), screen_barycentrics(tri, q)
    falling = lq < lp  # the coordinate reaches 0 at lp / (lp - lq) on the way
    ratio = torch.where(falling, lp / (lp - lq).clamp(min=1e-12), torch.full_like(lp, float("inf")))
    return ratio.min(-1)


PAIRS = ((0, 1), (0, -1), (1, 0), (-1, 0))
"""Neighbour directions (rows, columns) of the antialiasing passes."""


def crosses_across(tri: Tensor, corner: Tensor, along_rows: Tensor) -> Tensor:
    """(N,) bool: the edge opposite `corner` of each triangle (N, 3, >=2) runs more across
    its pixel pair's direction than along it (along_rows (N,) bool: the pair is in one
    row), so that each stretch of an outline is blended by one pass, horizontal or
    vertical, and counted once."""
    n = torch.arange(len(tri), device=tri.device)
    a, b = tri[n, (corner + 1) % 3, :2], tri[n, (corner + 2) % 3, :2]
    dx, dy = (b - a).abs().unbind(-1)
    return torch.where(along_rows, dy >= dx, dx > dy)


def candidate_pairs(raster: Raster, near_rim: Tensor | None) -> tuple[Tensor, ...]:
    """(view, row_p, col_p, row_q, col_q), each (N,): the pixel pairs p, q = p + (dr, dc)
    of every direction in PAIRS where p shows a face and q, inside the image, another
    one or none; only from `near_rim` pixels when given."""
    found = []
    for dr, dc in PAIRS:
        fq = shifted(raster.face, dr, dc)
        candidate = (raster.face >= 0) & (fq != raster.face) & (fq != -2)
        if near_rim is not None:
            candidate &= near_rim
        view, rp, cp = candidate.nonzero(as_tuple=True)
        found.append((view, rp, cp, rp + dr, cp + dc))
    return tuple(torch.cat(parts) for parts in zip(*found))


def _crossings(raster: Raster, screen: Tensor, faces: Tensor, neighbours: Tensor,
               near_rim: Tensor | None, hops: int = 16) -> tuple[Tensor, ...]:
    """Pixel pairs (p, q) of neighbours in every direction where the surface seen at p
    reaches a silhouette edge before q's centre and is in front of what q shows: (view,
    row_p, col_p, row_q, col_q, s), s in [0, 1] the crossing's fraction of the way from p
    to q (with gradients). The surface is followed from p's face across front-facing
    neighbours (up to `hops` faces: slivers near an outline too thin to cover a pixel
    centre) to the first edge whose face across is turned away or absent; the pairs of
    all four directions walk together (one loop, not four). near_rim (B, H, W): the
    pixels such a walk can start from (`rim_pixels`), or None to try every pair (the
    plain twin)."""
    view, rp, cp, rq, cq = candidate_pairs(raster, near_rim)
    xs, ys = pixel_grid(raster.size, screen.device)
    p, q = torch.stack([xs[cp], ys[rp]], -1), torch.stack([xs[cq], ys[rq]], -1)
    face = raster.face[view, rp, cp]
    with torch.no_grad():  # which face's edge is the outline
        found = torch.zeros_like(face, dtype=torch.bool)
        corner = torch.zeros_like(face)
        active = torch.arange(len(face), device=face.device)  # pairs still walking
        for _ in range(hops):
            here = face[active]
            s, exit_corner = segment_exit(screen[view[active, None], faces[here]], p[active],
                                          q[active])
            across = neighbours[here, exit_corner]
            edge = (across < 0) | ~raster.front[view[active], across.clamp(min=0)]
            hit, walk = edge & (s <= 1), ~edge & (s <= 1)
            found[active[hit]] = True
            corner[active[hit]] = exit_corner[hit]
            face[active[walk]] = across[walk]
            active = active[walk]
            if len(active) == 0:
                break
        tri = screen[view[:, None], faces[face]]
        lq = screen_barycentrics(tri, q)
        in_front = 1 / (lq / tri[..., 2]).sum(-1) < raster.depth[view, rq, cq]
        keep = found & in_front & crosses_across(tri, corner, rq == rp)
    view, rp, cp, rq, cq, face = (t[keep] for t in (view, rp, cp, rq, cq, face))
    s, _ = segment_exit(screen[view[:, None], faces[face]], p[keep], q[keep])
    return view, rp, cp, rq, cq, s.clamp(0, 1)


@torch.no_grad()
def rim_pixels(raster: Raster, screen: Tensor, faces: Tensor, neighbours: Tensor) -> Tensor:
    """(B, H, W) bool: pixels within one pixel of the screen box of a rim face (a
    front-facing face with an edge whose face across is turned away or absent). A
    crossing lies on a rim face's outline edge, at most one pixel from the pixel its walk
    starts at, so only these pixels can start one; on a mesh of pixel-sized faces they
    are a few percent of the image."""
    b, size = screen.shape[0], raster.size
    across_front = torch.gather(raster.front, 1, neighbours.clamp(min=0).reshape(1, -1).expand(b, -1))
    outline = (neighbours.reshape(1, -1) < 0) | ~across_front  # (B, F * 3)
    rim = raster.front & outline.reshape(b, -1, 3).any(-1)
    view, _, rows, cols = box_pixels(screen[:, faces], rim, size, grow=1.001)
    out = torch.zeros(b, size, size, dtype=torch.bool, device=screen.device)
    out[view, rows, cols] = True
    return out


def silhouette_crossings(raster: Raster, screen: Tensor, faces: Tensor, neighbours: Tensor,
                         prefilter: bool = True) -> tuple[Tensor, ...]:
    """The silhouette crossings of the views (`_crossings`, all directions at once): they
    depend on the geometry only, so one set serves every image of the views. prefilter:
    walk only from `rim_pixels` (False: from every pair, the reference; same result)."""
    near_rim = rim_pixels(raster, screen, faces, neighbours) if prefilter else None
    return _crossings(raster, screen, faces, neighbours, near_rim)


def antialias(image: Tensor, crossings: tuple[Tensor, ...]) -> Tensor:
    """(B, C, H, W) `image` with its silhouettes blended: for each pair of neighbouring
    pixels p, q across a silhouette of p's face crossed at s (fraction from p to q), q
    takes (s - 0.5) of p's colour when s > 0.5 (the face reaches into q's cell), else p
    takes (0.5 - s) of q's. crossings: silhouette_crossings of the image's views."""
    view, rp, cp, rq, cq, s = crossings
    pixels = image.permute(0, 2, 3, 1)  # (B, H, W, C)
    at_p, at_q = pixels[view, rp, cp], pixels[view, rq, cq]  # (N, C)
    into_q = (s - 0.5).clamp(min=0)[:, None]
    into_p = (0.5 - s).clamp(min=0)[:, None]
    delta = torch.zeros_like(pixels).index_put((view, rq, cq), into_q * (at_p - at_q),
                                               accumulate=True)
    delta = delta.index_put((view, rp, cp), into_p * (at_q - at_p), accumulate=True)
    return (pixels + delta).permute(0, 3, 1, 2)


def reference_image(screen: Tensor, faces: Tensor, corner_values: Tensor, background: Tensor,
                    size: int, hops: int = 16) -> Tensor:
    """The plain twin of rasterize_hard + interpolate + compositing + antialias: pixel by
    pixel and face by face in Python loops (slow; for tests on tiny images). screen
    (B, V, 3), corner_values (B, F, 3, C), background (B, C). Returns (B, C, H, W)."""
    b_n, n_faces = screen.shape[0], faces.shape[0]
    xs, ys = pixel_grid(size, screen.device)
    neighbours = edge_neighbours(faces)
    images, maps = [], []
    for b in range(b_n):
        tri_all = screen[b][faces]
        front = [bool(signed_area(t) > 0) and bool((t[:, 2] > NEAR).all()) for t in tri_all]
        face_map = [[-1] * size for _ in range(size)]
        depth_map = [[float("inf")] * size for _ in range(size)]
        rows = []
        for r in range(size):
            row = []
            for c in range(size):
                q = torch.stack([xs[c], ys[r]])
                for f in range(n_faces):
                    if not front[f]:
                        continue
                    lam = screen_barycentrics(tri_all[f], q)
                    if bool((lam >= 0).all()):
                        d = float((1 / (lam / tri_all[f][:, 2]).sum()).detach())
                        if d < depth_map[r][c] or (d == depth_map[r][c] and f > face_map[r][c]):
                            face_map[r][c], depth_map[r][c] = f, d
                f = face_map[r][c]
                if f < 0:
                    row.append(background[b])
                    continue
                w = perspective_weights(screen_barycentrics(tri_all[f], q), tri_all[f][:, 2])
                row.append((w[:, None] * corner_values[b, f]).sum(0))
            rows.append(row)
        images.append(rows)
        maps.append((face_map, depth_map, front, tri_all))
    out = [[[images[b][r][c] for c in range(size)] for r in range(size)] for b in range(b_n)]
    for b in range(b_n):
        face_map, depth_map, front, tri_all = maps[b]
        for r in range(size):
            for c in range(size):
                for dr, dc in ((0, 1), (0, -1), (1, 0), (-1, 0)):
                    r2, c2 = r + dr, c + dc
                    f = face_map[r][c]
                    if f < 0 or not (0 <= r2 < size and 0 <= c2 < size) or face_map[r2][c2] == f:
                        continue
                    p, q = torch.stack([xs[c], ys[r]]), torch.stack([xs[c2], ys[r2]])
                    found = False
                    for _ in range(hops):
                        lp, lq = screen_barycentrics(tri_all[f], p), screen_barycentrics(tri_all[f], q)
                        s, corner = float("inf"), -1
                        for i in range(3):
                            ratio = float((lp[i] / (lp[i] - lq[i])).detach())
                            if lq[i] < lp[i] and ratio < s:
                                s, corner = ratio, i
                        if s > 1:
                            break
                        across = int(neighbours[f, corner])
                        if across < 0 or not front[across]:
                            found = True
                            break
                        f = across
                    if not found:
                        continue
                    lq = screen_barycentrics(tri_all[f], q)
                    if not float((1 / (lq / tri_all[f][:, 2]).sum()).detach()) < depth_map[r2][c2]:
                        continue
                    edge = tri_all[f][(corner + 2) % 3, :2] - tri_all[f][(corner + 1) % 3, :2]
                    vertical_edge = bool(edge[1].abs() >= edge[0].abs())
                    if vertical_edge != (dr == 0):
                        continue
                    lp = screen_barycentrics(tri_all[f], p)
                    s = torch.stack([lp[i] / (lp[i] - lq[i]) if lq[i] < lp[i] else lp[i] * 0 + float("inf")
                                     for i in range(3)]).min().clamp(0, 1)
                    at_p, at_q = images[b][r][c], images[b][r2][c2]
                    if s > 0.5:
                        out[b][r2][c2] = out[b][r2][c2] + (s - 0.5) * (at_p - at_q)
                    else:
                        out[b][r][c] = out[b][r][c] + (0.5 - s) * (at_q - at_p)
    return torch.stack([torch.stack([torch.stack(row) for row in img]) for img in out]).permute(0, 3, 1, 2)
