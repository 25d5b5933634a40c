"""Perp-Neg: the perpendicular projection, the azimuth weights, the prompts per camera,
and SDS steps that move a render the right way with the toy prior."""
import pytest
import torch

from dreamfusion.cameras import Cameras
from dreamfusion.config import GuidanceConfig, override
from dreamfusion.guidance.perp_neg import combine, perpendicular, view_mix
from dreamfusion.guidance.sds import score_distillation
from dreamfusion.guidance.toy import ToyPrior
from dreamfusion.prompts import PromptSet


def test_perpendicular_component_is_orthogonal_and_completes_x():
    gen = torch.Generator().manual_seed(0)
    x, y = torch.randn(4, 3, 5, 5, generator=gen), torch.randn(4, 3, 5, 5, generator=gen)
    p = perpendicular(x, y)
    assert torch.allclose((p * y).flatten(1).sum(1), torch.zeros(4), atol=1e-4)
    parallel = x - p  # a multiple of y, per sample
    coef = (parallel * y).flatten(1).sum(1) / (y * y).flatten(1).sum(1)
    assert torch.allclose(parallel, coef[:, None, None, None] * y, atol=1e-5)
    assert torch.equal(perpendicular(x, torch.zeros_like(y)), x)  # nothing to project out
    assert torch.allclose(perpendicular(3 * y, y), torch.zeros_like(y), atol=1e-5)


def test_weights_vanish_for_the_view_that_is_the_positive_one():
    cfg = GuidanceConfig()
    front_half, r, w = view_mix(torch.tensor([0.0, 45.0, 90.0, -90.0, 135.0, 180.0]), cfg)
    assert front_half.tolist() == [True, True, False, False, False, False]
    assert torch.allclose(r, torch.tensor([1.0, 0.5, 1.0, 1.0, 0.5, 0.0]))
    # front: the front negative is off, the side one on (-(4 - 2.426))
    assert w[0].tolist() == pytest.approx([0.0, -1.574], abs=2e-3)
    # side (either sign of azimuth): the side negative off, the front one on
    for row in (2, 3):
        assert w[row].tolist() == pytest.approx([0.0, -1.574], abs=2e-3)  # (side, front)
    # back: both on, the front one strongest
    assert w[5].tolist() == pytest.approx([-0.394, -1.967], abs=2e-3)
    assert (w <= 1e-3).all()  # never a positive push


def test_combine_without_negatives_is_classifier_free_guidance():
    gen = torch.Generator().manual_seed(1)
    eps_u, eps_c = torch.randn(2, 3, 4, 4, generator=gen), torch.randn(2, 3, 4, 4, generator=gen)
    neg = torch.randn(2, 2, 3, 4, 4, generator=gen)
    got = combine(eps_u, eps_c, neg, torch.zeros(2, 2), 7.5)
    assert torch.allclose(got, eps_u + 7.5 * (eps_c - eps_u), atol=1e-5)
    # a negative along the positive direction changes nothing (only its perpendicular part)
    along = (eps_u + 2 * (eps_c - eps_u))[:, None].expand(2, 2, 3, 4, 4)
    assert torch.allclose(combine(eps_u, eps_c, along, -torch.ones(2, 2), 7.5), got, atol=1e-4)


def toy_prompts(caption="a red cube with a yellow front", size=16):
    prior = ToyPrior(size=size, bank_size=24, uncond_bank_size=48)
    return prior, PromptSet(prior, caption, view_dependent=True)


def test_cameras_get_mixed_positives_and_their_negatives():
    prior, prompts = toy_prompts(size=8)
    cfg = override(GuidanceConfig(), perp_neg=True)
    cams = Cameras.from_angles([10.0, 10.0, 10.0, 80.0, 10.0], [30.0, 120.0, 180.0, 30.0, 30.0])
    plain = torch.tensor([False, False, False, False, True])
    c = prompts.conditions(cams, plain, cfg)
    ids = {v: int(prompts.views[v][0]) for v in ("front", "side", "back", "overhead")}
    # (bank a, bank b, share of a) of each positive
    assert c["cond"][0].tolist() == pytest.approx([ids["front"], ids["side"], 1 - 30 / 90])
    assert c["cond"][1].tolist() == pytest.approx([ids["side"], ids["back"], 2 - 120 / 90])
    assert c["cond"][2].tolist() == pytest.approx([ids["side"], ids["back"], 0.0])  # all back
    assert c["cond"][3].tolist() == [ids["overhead"]] * 2 + [1.0]  # overhead: its own prompt
    assert torch.equal(c["cond"][4], prompts.base)  # plain: the caption as is
    assert c["negatives"][:, :, 0].tolist() == [[ids["front"], ids["side"]],
                                                [ids["side"], ids["front"]],
                                                [ids["side"], ids["front"]],
                                                [ids["front"], ids["side"]],
                                                [ids["front"], ids["side"]]]
    assert (c["neg_weights"][3:] == 0).all() and (c["neg_weights"][:3] < 0).any(dim=1).all()
    off = prompts.conditions(cams, plain, GuidanceConfig())
    assert set(off) == {"cond", "uncond"}


def yellow_share(image):
    """Share of object pixels that read yellow (red and green high, blue low)."""
    r, g, b = image[:, 0], image[:, 1], image[:, 2]
    obj = (image < 0.9).any(dim=1)
    yellow = (r > 0.5) & (g > 0.5) & (b < 0.4)
    return float((yellow & obj).sum() / obj.sum().clamp(min=1))


@pytest.mark.parametrize("az", [90.0, 180.0])
def test_sds_steps_with_perp_neg_paint_a_side_or_back_render_away_from_the_front(az):
    """An image that looks like the front view of "a red cube with a yellow front"
    (its yellow face towards the camera), seen by a side or back camera: SDS steps
    with Perp-Neg on the pixels take the yellow away (the side and back of that cube
    are red)."""
    prior, prompts = toy_prompts()
    cfg = override(GuidanceConfig(), perp_neg=True, t_min=0.3, t_min_start=0.3, t_max=0.6,
                   t_max_final=0.6, guidance_scale=1.5)
    start = prior.bank("a red cube with a yellow front, front view")
    start = start[torch.tensor([yellow_share(start[i:i + 1]) for i in range(len(start))]).argmax()]
    image = start[None].clone().requires_grad_(True)
    opt = torch.optim.Adam([image], lr=0.02)
    cams = Cameras.from_angles([10.0], [az])
    gen = torch.Generator().manual_seed(2)
    for step in range(60):
        texts = prompts.conditions(cams, None, cfg)
        loss = score_distillation(prior, image.clamp(0, 1), cfg=cfg, step=step, total_steps=60,
                                  generator=gen, **texts)["sds"]
        opt.zero_grad()
        loss.backward()
        opt.step()
    before, after = yellow_share(start[None]), yellow_share(image.detach().clamp(0, 1))
    # measured: 1.0 -> 0.0 at both azimuths; with the weights' signs flipped (negatives
    # pulling towards the front) 0.35 and 0.49 stay yellow
    assert before > 0.3 and after < 0.1 * before
