"""The soft rasteriser against a brute-force per-pixel, per-face reference, and the
CLIP-Mesh model built on it."""
import math
from dataclasses import replace

import pytest
import torch
import trimesh

from dreamfusion.cameras import Cameras
from dreamfusion.config import MeshConfig
from dreamfusion.mesh_model import MeshModel, face_normals, icosphere
from dreamfusion.rasterize import RasterSettings, pixel_centres, project, rasterize
from dreamfusion.render import Shading


def _segment_d2(p, a, b):
    ab, ap = b - a, p - a
    s = torch.clamp((ap @ ab) / torch.clamp(ab @ ab, min=1e-12), 0, 1)
    return ((a + s * ab - p) ** 2).sum()


def reference(screen, faces, values, size, st: RasterSettings):
    """Loops over images, pixels and faces, written from the SoftRas formulas directly."""
    out_v, out_a = [], []
    for b in range(screen.shape[0]):
        img_v, img_a = [], []
        for p in pixel_centres(size):
            covers, scores, attrs = [], [], []
            for f, (i, j, k) in enumerate(faces.tolist()):
                a, bb, c = screen[b, i, :2], screen[b, j, :2], screen[b, k, :2]
                area = (bb - a)[0] * (c - a)[1] - (bb - a)[1] * (c - a)[0]
                l1 = ((p - a)[0] * (c - a)[1] - (p - a)[1] * (c - a)[0]) / area
                l2 = ((bb - a)[0] * (p - a)[1] - (bb - a)[1] * (p - a)[0]) / area
                bary = torch.stack([1 - l1 - l2, l1, l2])
                inside = bool((bary >= 0).all())
                d2 = torch.minimum(torch.minimum(_segment_d2(p, a, bb), _segment_d2(p, bb, c)),
                                   _segment_d2(p, c, a))
                covers.append(torch.sigmoid((d2 if inside else -d2) / st.sigma))
                w = bary.clamp(0, 1)
                w = w / w.sum()
                zs = screen[b, [i, j, k], 2]
                inv_z = (w / zs).sum()
                z_norm = torch.clamp((inv_z - 1 / st.far) / (1 / st.near - 1 / st.far), 0, 1)
                scores.append(z_norm / st.gamma)
                attrs.append((w[:, None] * values[b, f]).sum(0))
            cover, score = torch.stack(covers), torch.stack(scores)
            weight = cover * torch.exp(score - score.max().detach())
            weight = weight / weight.sum().clamp(min=1e-30)
            img_v.append((weight[:, None] * torch.stack(attrs)).sum(0))
            img_a.append(1 - torch.prod(1 - cover))
        out_v.append(torch.stack(img_v))
        out_a.append(torch.stack(img_a))
    return torch.stack(out_v), torch.stack(out_a)


def _tetrahedron():
    v = torch.tensor([[0.0, 0.45, 0.0], [-0.4, -0.3, 0.3], [0.45, -0.3, 0.25],
                      [0.0, -0.25, -0.45]])
    f = torch.tensor([[0, 1, 2], [0, 2, 3], [0, 3, 1], [1, 3, 2]])
    return v, f


def test_projection_matches_the_camera_rays():
    cams = Cameras.from_angles([10.0, 50.0], [30.0, -120.0], [2.2, 2.0])
    origins, dirs = cams.rays(8)
    points = origins[:, 2, 5] + 1.7 * dirs[:, 2, 5]  # along the ray of row 2, column 5
    screen = project(points[:, None, :].clone(), cams)  # each camera sees its own point
    centre = pixel_centres(8).reshape(8, 8, 2)[2, 5]
    assert torch.allclose(screen[0, 0, :2], centre, atol=1e-5)
    assert torch.allclose(screen[1, 0, :2], centre, atol=1e-5)
    assert screen[0, 0, 2] == pytest.approx(1.7 * float(dirs[0, 2, 5] @ cams.axes()[2][0]),
                                            rel=1e-5)


def test_rasterizer_matches_brute_force_values_and_gradients():
    torch.manual_seed(0)
    v, f = _tetrahedron()
    v = v.requires_grad_(True)
    values = torch.rand(2, 4, 3, 2, requires_grad=True)  # two channels per face corner
    cams = Cameras.from_angles([20.0, -5.0], [30.0, 200.0], 2.2)
    st = RasterSettings(sigma=2e-3, gamma=5e-2, cull=1e3)  # no face culled
    size = 6
    screen = project(v, cams)
    fast = rasterize(screen, f, values, size, st)
    culled = rasterize(screen, f, values, size, replace(st, cull=3.2))
    ref_v, ref_a = reference(screen, f, values, size, st)
    assert fast["values"].shape == (2, 2, size, size)
    assert fast["alpha"].shape == (2, 1, size, size)
    fast_v = fast["values"].permute(0, 2, 3, 1).reshape(2, -1, 2)
    fast_a = fast["alpha"].reshape(2, -1)
    # Values mean something where a face covers the pixel at all; far from every face the
    # reference's blend of vanishing coverages is 0/0, which the rasteriser culls.
    seen = fast_a > 1e-3
    assert torch.allclose(fast_v[seen], ref_v[seen], atol=1e-5)
    assert torch.allclose(fast_a, ref_a, atol=1e-5)
    # culling faces whose coverage is below 4e-5 changes little where anything is seen
    assert torch.allclose(culled["values"].permute(0, 2, 3, 1).reshape(2, -1, 2)[seen],
                          ref_v[seen], atol=1e-3)
    assert 0.05 < float(fast_a.detach().mean()) < 0.95  # the test sees edges, not all-or-nothing
    ref_v = torch.where(seen[..., None], ref_v, 0.0)
    probe_v = torch.randn_like(ref_v) * seen[..., None]
    probe_a = torch.randn_like(ref_a)
    grads_fast = torch.autograd.grad((fast_v * probe_v).sum() + (fast_a * probe_a).sum(),
                                     [v, values], retain_graph=True)
    grads_ref = torch.autograd.grad((ref_v * probe_v).sum() + (ref_a * probe_a).sum(),
                                    [v, values])
    for g_fast, g_ref in zip(grads_fast, grads_ref):
        assert g_fast.abs().sum() > 0
        assert torch.allclose(g_fast, g_ref, atol=1e-4, rtol=1e-3)


def test_sharp_rasterization_covers_the_projected_triangle():
    # A big triangle facing the camera at az 0: inside pixels get alpha ~1 and the
    # interpolated corner values, outside pixels alpha ~0.
    v = torch.tensor([[-0.6, -0.5, 0.0], [0.6, -0.5, 0.0], [0.0, 0.6, 0.0]])
    f = torch.tensor([[0, 1, 2]])
    cams = Cameras.from_angles([0.0], [0.0], 2.2)
    corners = torch.eye(3)[None, None]  # (1, 1, 3, 3): barycentrics as colours
    out = rasterize(project(v, cams), f, corners, 32, RasterSettings(sigma=1e-6))
    alpha = out["alpha"][0, 0]
    assert alpha[20, 16] > 0.99 and alpha[1, 1] < 1e-3 and alpha[31, 0] < 1e-3
    assert out["values"][0, :, 20, 16].sum() == pytest.approx(1.0, abs=1e-4)
    assert out["depth"][0, 0, 20, 16] == pytest.approx(2.2, abs=1e-3)


def test_nearer_face_hides_the_farther_one():
    quad = torch.tensor([[-0.5, -0.5], [0.5, -0.5], [0.0, 0.5]])
    near = torch.cat([quad, torch.full((3, 1), 0.3)], 1)  # z toward the camera at az 0
    far = torch.cat([quad, torch.full((3, 1), -0.3)], 1)
    v = torch.cat([far, near])
    f = torch.tensor([[0, 1, 2], [3, 4, 5]])
    colours = torch.stack([torch.zeros(3, 1), torch.ones(3, 1)])[None]  # far 0, near 1
    out = rasterize(project(v, Cameras.from_angles([0.0], [0.0], 2.2)), f, colours, 16)
    assert out["values"][0, 0, 9, 8] > 0.999


def test_mesh_model_renders_with_gradients_and_exports():
    model = MeshModel(MeshConfig(subdivisions=2))
    cams = Cameras.from_angles([20.0, 60.0], [0.0, 135.0], 2.2)
    shading = Shading.lit(cams)
    out = model.render(cams, 24, shading, torch.ones(2, 3),
                       more_shadings=[Shading.lit(cams, textureless=True)])
    assert out["image"].shape == (2, 3, 24, 24) and out["opacity"].shape == (2, 1, 24, 24)
    assert len(out["more_images"]) == 1
    # a sphere of radius 0.5 at distance 2.2 covers about pi r'^2 of the image
    r = 0.5 / (2.2 * math.tan(math.radians(20)))
    assert float(out["opacity"].detach().mean()) == pytest.approx(math.pi * r * r / 4, rel=0.15)
    (out["image"].mean() + model.laplacian_loss()).backward()
    assert model.offsets.grad.abs().sum() > 0 and model.colour_logits.grad.abs().sum() > 0
    mesh = model.to_trimesh()
    assert isinstance(mesh, trimesh.Trimesh) and mesh.is_watertight
    assert len(mesh.vertices) == 162 and mesh.visual.vertex_colors.shape == (162, 4)


def test_icosphere_faces_point_outward_and_laplacian_penalises_bumps():
    v, f = icosphere(2, 0.5)
    centres = v[f].mean(1)
    assert ((face_normals(v, f) * centres).sum(-1) > 0).all()
    model = MeshModel(MeshConfig(subdivisions=2))
    assert float(model.laplacian_loss().detach()) == 0.0
    with torch.no_grad():
        model.offsets[0] = 0.3 * model.base[0]
    model.laplacian_loss().backward()
    # the bump's own gradient pulls it back in (points against the outward offset)
    assert float(model.offsets.grad[0] @ model.base[0]) > 0
