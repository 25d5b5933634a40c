"""A UV atlas (xatlas) and a colour texture baked from the vertex colours, for the GLB.

Editors and game engines read a material's base-colour texture; many ignore vertex
colours (glTF's COLOR_0) or multiply them with the material. So the exported GLB carries
the mesh split along the atlas's seams, its UVs and a PNG texture; the PLY and OBJ keep
the vertex colours. xatlas is the `texture` extra (in the test install); without it, or
for a mesh of more than MAX_FACES faces, the GLB keeps vertex colours as before.
"""
from __future__ import annotations

import importlib.util

import numpy as np
import trimesh
from PIL import Image

MAX_FACES = 10_000
"""Meshes with more faces keep vertex colours only: the whole texture took 0.5-0.7 s for a
refine-stage mesh of 4k faces but 15-30 s for the 30-40k faces of marching cubes on a
128^3 field (`--no-refine`), longer than the rest of the export."""
DILATE_TEXELS = 4
"""Texels grown around every chart, so that filtering and mipmaps read no background."""


def available() -> bool:
    """Whether xatlas is installed."""
    return importlib.util.find_spec("xatlas") is not None


def wanted(mesh: trimesh.Trimesh, size: int) -> bool:
    """Whether `mesh` gets a texture of `size` texels: it has vertex colours and at most
    MAX_FACES faces, size > 0 and xatlas is installed."""
    return (size > 0 and mesh.visual.kind == "vertex" and len(mesh.faces) <= MAX_FACES
            and available())


def unwrap(vertices: np.ndarray, faces: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(vmapping (V2,), faces (F, 3), uv (V2, 2) in [0, 1], origin bottom left) of an atlas
    of `vertices` (V, 3) and `faces` (F, 3): atlas vertex i is mesh vertex vmapping[i]."""
    import xatlas
    vmapping, new_faces, uv = xatlas.parametrize(np.asarray(vertices, dtype=np.float32),
                                                 np.asarray(faces, dtype=np.uint32))
    return vmapping.astype(np.int64), new_faces.astype(np.int64), uv.astype(np.float64)


def texel_centres(size: int) -> np.ndarray:
    """(size, size, 2) uv of each texel's centre; row 0 is the image's top (v = 1)."""
    u = (np.arange(size) + 0.5) / size
    return np.stack(np.meshgrid(u, 1.0 - u, indexing="xy"), axis=-1)


def bake(uv: np.ndarray, faces: np.ndarray, colours: np.ndarray, size: int
         ) -> tuple[np.ndarray, np.ndarray]:
    """(texture (size, size, 3), covered (size, size) bool): each texel whose centre lies
    in a face's uv triangle (either winding) gets the face's corner `colours` (V2, 3)
    interpolated there. Faces are done in chunks of similar size, each face over the texels
    of its chunk's largest bounding box."""
    texture = np.zeros((size, size, 3))
    covered = np.zeros((size, size), dtype=bool)
    corners = uv[faces] * size  # (F, 3, 2) in texel units, v up
    lo = np.floor(corners.min(axis=1)).astype(int)  # (F, 2): column, row from the bottom
    spans = (np.ceil(corners.max(axis=1)).astype(int) - lo).max(axis=1) + 1
    order = np.argsort(spans)  # chunks of faces of similar size: little padding
    for start in range(0, len(faces), 1024):
        chunk = order[start:start + 1024]
        span = int(spans[chunk].max())
        offsets = np.stack(np.meshgrid(np.arange(span), np.arange(span), indexing="xy"),
                           -1).reshape(-1, 2)
        texel = lo[chunk, None, :] + offsets[None]  # (f, T, 2) integer column, row-from-bottom
        centre = texel + 0.5
        bary = _barycentric(corners[chunk], centre)  # (f, T, 3)
        inside = (bary >= -1e-9).all(-1) & (texel >= 0).all(-1) & (texel < size).all(-1)
        f_idx, t_idx = np.nonzero(inside)
        colour = (bary[f_idx, t_idx, :, None] * colours[faces[chunk][f_idx]]).sum(1)
        col = texel[f_idx, t_idx, 0]
        row = size - 1 - texel[f_idx, t_idx, 1]
        texture[row, col] = colour
        covered[row, col] = True
    return texture, covered


def _barycentric(tri: np.ndarray, p: np.ndarray) -> np.ndarray:
    """(f, T, 3) barycentric coordinates of points p (f, T, 2) in triangles tri (f, 3, 2);
    degenerate triangles give -1 (outside)."""
    a, b, c = tri[:, None, 0], tri[:, None, 1], tri[:, None, 2]
    area = ((b - a)[..., 0] * (c - a)[..., 1] - (b - a)[..., 1] * (c - a)[..., 0])  # (f, 1)
    safe = np.where(np.abs(area) > 1e-12, area, 1.0)

    def cross(o, q):  # twice the signed area of (o, q, p)
        return (q - o)[..., 0] * (p - o)[..., 1] - (q - o)[..., 1] * (p - o)[..., 0]

    bary = np.stack([cross(b, c), cross(c, a), cross(a, b)], axis=-1) / safe[..., None]
    return np.where(np.abs(area)[..., None] > 1e-12, bary, -1.0)


def bake_reference(uv: np.ndarray, faces: np.ndarray, colours: np.ndarray, size: int
                   ) -> tuple[np.ndarray, np.ndarray]:
    """The reference twin of `bake`: every texel against every face, one at a time (slow;
    for tests). A texel on an edge that two faces of a chart share gets the same colour
    from either, so the order the faces are done in does not matter."""
    texture = np.zeros((size, size, 3))
    covered = np.zeros((size, size), dtype=bool)
    centres = texel_centres(size)
    for f in faces:
        (ax, ay), (bx, by), (cx, cy) = uv[f]
        area = (bx - ax) * (cy - ay) - (by - ay) * (cx - ax)
        if abs(area) * size * size <= 1e-12:
            continue
        for row in range(size):
            for col in range(size):
                px, py = centres[row, col]
                w = [((cx - bx) * (py - by) - (cy - by) * (px - bx)) / area,
                     ((ax - cx) * (py - cy) - (ay - cy) * (px - cx)) / area,
                     ((bx - ax) * (py - ay) - (by - ay) * (px - ax)) / area]
                if min(w) >= -1e-9:
                    texture[row, col] = sum(wi * colours[v] for wi, v in zip(w, f))
                    covered[row, col] = True
    return texture, covered


def dilate(texture: np.ndarray, covered: np.ndarray, texels: int = DILATE_TEXELS) -> np.ndarray:
    """The texture with each uncovered texel within `texels` of a chart set to the mean of
    its covered 8-neighbours, ring by ring."""
    out, done = texture.copy(), covered.copy()
    for _ in range(texels):
        total = np.zeros_like(out)
        count = np.zeros(done.shape)
        padded, pad_done = np.pad(out, ((1, 1), (1, 1), (0, 0))), np.pad(done, 1)
        for dr in (-1, 0, 1):
            for dc in (-1, 0, 1):
                window = (slice(1 + dr, 1 + dr + done.shape[0]), slice(1 + dc, 1 + dc + done.shape[1]))
                total += padded[window] * pad_done[window][..., None]
                count += pad_done[window]
        grow = ~done & (count > 0)
        out[grow] = total[grow] / count[grow][:, None]
        done = done | grow
    return out


def textured(mesh: trimesh.Trimesh, size: int) -> trimesh.Trimesh:
    """`mesh` (with vertex colours) split along an atlas's seams, with its UVs and a
    size x size texture baked from its vertex colours as the material's base colour."""
    vmapping, faces, uv = unwrap(mesh.vertices, mesh.faces)
    rgb = np.asarray(mesh.visual.vertex_colors)[:, :3].astype(np.float64) / 255.0
    texture, covered = bake(uv, faces, rgb[vmapping], size)
    image = Image.fromarray(np.round(dilate(texture, covered) * 255).astype(np.uint8))
    material = trimesh.visual.material.PBRMaterial(
        baseColorTexture=image, metallicFactor=0.0, roughnessFactor=1.0)
    visual = trimesh.visual.TextureVisuals(uv=uv, material=material)
    return trimesh.Trimesh(np.asarray(mesh.vertices)[vmapping], faces, visual=visual,
                           process=False)
