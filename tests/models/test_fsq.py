"""FSQ, the second quantizer behind `VQVAEModel`'s quantizer interface."""

import math

import pytest
import torch
from diffusers import VQModel

from hf_vqgen import VQVAEModel
from hf_vqgen.models import QUANTIZERS, FiniteScalarQuantizer

from ..conftest import tiny_vqvae


LEVELS = [8, 6, 5]  # 240 codes, an even and an odd level count


def tiny_fsq_vqvae() -> VQVAEModel:
    return tiny_vqvae(quantizer_type="fsq", fsq_levels=LEVELS, num_vq_embeddings=math.prod(LEVELS), vq_embed_dim=3)


def test_ids_and_codes_are_a_bijection_over_the_implicit_codebook():
    quantizer = FiniteScalarQuantizer(LEVELS)
    ids = torch.arange(math.prod(LEVELS))
    codes = quantizer.ids_to_codes(ids)
    assert codes.shape == (240, 3) and codes.min() >= -1 and codes.max() <= 1
    assert torch.equal(quantizer.codes_to_ids(codes * quantizer._half_width), ids)
    assert torch.equal(quantizer.embedding.weight, codes)  # the materialised table is the implicit codebook


def test_every_code_is_reachable_and_forward_matches_lookup():
    quantizer = FiniteScalarQuantizer(LEVELS)
    # a latent that `bound` maps onto each grid point: the preimage of every code, as (1, 3, 240, 1)
    digits = quantizer.ids_to_codes(torch.arange(240)) * quantizer._half_width
    levels = torch.tensor(LEVELS, dtype=torch.float32)
    half_l, offset = (levels - 1) * (1 + 1e-3) / 2, (levels % 2 == 0).float() * 0.5
    z = (torch.atanh((digits + offset) / half_l) - torch.atanh(offset / half_l)).T[None, :, :, None]
    z_q, loss, info = quantizer(z)
    assert float(loss) == 0.0 and float(info.codebook_usage) == 1.0  # no codebook loss; every code reachable
    assert torch.equal(info.token_ids.flatten(), torch.arange(240))
    assert torch.equal(info.token_ids, quantizer.lookup_ids(z))
    assert torch.equal(z_q, quantizer.get_codebook_entry(info.token_ids, (1, 240, 1, 3)))


def test_gradients_pass_straight_through():
    quantizer = FiniteScalarQuantizer(LEVELS)
    z = torch.randn(2, 3, 4, 4, requires_grad=True)
    quantizer(z)[0].sum().backward()
    assert z.grad is not None and z.grad.abs().sum() > 0


def test_fsq_tokenizer_decodes_identically_in_stock_vqmodel(tmp_path, images):
    model = tiny_fsq_vqvae().eval()
    model.save_pretrained(tmp_path)
    reloaded = VQVAEModel.from_pretrained(tmp_path).eval()
    stock = VQModel.from_pretrained(tmp_path).eval()  # ignores quantizer_type / fsq_levels, loads the table
    with torch.no_grad():
        token_ids = model.encode_to_ids(images)
        assert torch.equal(reloaded.encode_to_ids(images), token_ids)
        quant = stock.quantize.get_codebook_entry(token_ids.flatten(), (images.shape[0], 4, 4, 3))
        stock_decoded = stock.decode(quant, force_not_quantize=True).sample.clamp(-1, 1)
    assert torch.equal(model.decode_ids(token_ids), stock_decoded)


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"fsq_levels": None}, "fsq_levels"),
        ({"num_vq_embeddings": 256}, "product of `fsq_levels`"),
        ({"vq_embed_dim": 4}, "len\\(fsq_levels\\)"),
        ({"fsq_levels": [8, 1, 5]}, ">= 2"),
        ({"quantizer_type": "rvq"}, "quantizer_type"),
    ],
)
def test_inconsistent_fsq_configs_are_refused(overrides, message):
    config = {"quantizer_type": "fsq", "fsq_levels": LEVELS, "num_vq_embeddings": 240, "vq_embed_dim": 3} | overrides
    with pytest.raises(ValueError, match=message):
        tiny_vqvae(**config)


def test_registry_names_both_quantizers():
    assert set(QUANTIZERS) == {"vq", "fsq"}
