"""model_loading: fp16 variant files, and the model identity that keys the embedding cache."""
import os

import pytest
import torch

pytest.importorskip("diffusers")

from dreamfusion.model_loading import has_variant, load_weights, model_identity  # noqa: E402
from tiny_models import tiny_stable_diffusion  # noqa: E402


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """A tiny SD folder whose unet also has fp16 variant files with a marked weight."""
    from diffusers import UNet2DConditionModel
    root = tiny_stable_diffusion(tmp_path_factory.mktemp("sd"))
    unet = UNet2DConditionModel.from_pretrained(root / "unet")
    with torch.no_grad():
        unet.conv_in.bias.fill_(0.25)  # tells the variant's weights from the full ones
    unet.to(torch.float16).save_pretrained(root / "unet", variant="fp16")
    return root


def test_fp16_loads_the_variant_files_and_fp32_the_full_ones(folder):
    from diffusers import UNet2DConditionModel
    assert has_variant(str(folder), "unet", "fp16") and not has_variant(str(folder), "vae", "fp16")
    half = load_weights(UNet2DConditionModel, str(folder), "unet", True, torch.float16)
    full = load_weights(UNet2DConditionModel, str(folder), "unet", True, torch.float32)
    assert half.dtype == torch.float16 and full.dtype == torch.float32
    assert torch.all(half.conv_in.bias == 0.25)
    assert not torch.any(full.conv_in.bias == 0.25)


def test_a_part_without_variant_files_loads_its_full_files_in_fp16(folder):
    from diffusers import AutoencoderKL
    vae = load_weights(AutoencoderKL, str(folder), "vae", True, torch.float16)
    ref = load_weights(AutoencoderKL, str(folder), "vae", True, torch.float32)
    assert vae.dtype == torch.float16
    torch.testing.assert_close(vae.encoder.conv_in.weight.float(), ref.encoder.conv_in.weight,
                               atol=1e-3, rtol=1e-3)


def test_the_identity_changes_with_the_config_and_the_weights(folder):
    parts = ("text_encoder", "tokenizer")
    first = model_identity(str(folder), parts)
    assert model_identity(str(folder), parts) == first
    config = folder / "text_encoder" / "config.json"
    text = config.read_text()
    config.write_text(text + " ")
    assert model_identity(str(folder), parts) != first
    config.write_text(text)
    assert model_identity(str(folder), parts) == first
    weights = next((folder / "text_encoder").glob("*.safetensors"))
    stat = weights.stat()
    os.utime(weights, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    if stat.st_size >= 4 << 20:  # large files are known by size and modification time
        assert model_identity(str(folder), parts) != first
    else:  # small ones by content: touching them changes nothing
        assert model_identity(str(folder), parts) == first


def test_a_hub_id_is_known_by_its_revision():
    assert model_identity("someone/some-model", ("unet",), "v1.2") == "someone/some-model@v1.2"
    assert model_identity("someone/some-model", ("unet",)) == "someone/some-model@main"
