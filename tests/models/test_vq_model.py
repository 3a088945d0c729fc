import pytest
import torch
from diffusers import VQModel

from hf_vqgen import VQVAEModel

from ..conftest import tiny_vqvae


def _trained_a_little(model: VQVAEModel, images: torch.Tensor) -> VQVAEModel:
    """A few updates so that the codebook and EMA buffers are not at their initial values."""
    model.train()
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    for _ in range(3):
        output = model(images)
        ((output.sample - images).abs().mean() + output.commit_loss).backward()
        optimizer.step()
        optimizer.zero_grad()
    return model.eval()


@pytest.mark.parametrize("codebook_update", ["loss", "ema"])
def test_stock_vqmodel_loads_checkpoint_and_matches(tmp_path, images, codebook_update):
    model = _trained_a_little(tiny_vqvae(codebook_update=codebook_update, kmeans_init=True), images)
    model.save_pretrained(tmp_path)
    assert (tmp_path / "diffusion_pytorch_model.safetensors").is_file()
    assert not list(tmp_path.glob("*.bin"))

    stock = VQModel.from_pretrained(tmp_path).eval()
    with torch.no_grad():
        stock_latents = stock.encode(images).latents
        stock_reconstruction = stock.decode(stock_latents).sample
        stock_ids = stock.quantize(stock_latents)[2][2].view(images.shape[0], 4, 4)
        quant = stock.quantize.get_codebook_entry(stock_ids.flatten(), (images.shape[0], 4, 4, 4))
        stock_decoded_ids = stock.decode(quant, force_not_quantize=True).sample.clamp(-1, 1)
        reconstruction = model(images).sample

    token_ids = model.encode_to_ids(images)
    assert torch.equal(token_ids, stock_ids)
    assert torch.equal(reconstruction, stock_reconstruction)
    assert torch.equal(model.decode_ids(token_ids), stock_decoded_ids)


def test_token_api_shapes_and_range(images):
    model = tiny_vqvae().eval()
    assert model.latent_shape == (4, 4)
    token_ids = model.encode_to_ids(images)
    assert token_ids.shape == (4, 4, 4) and token_ids.dtype == torch.long
    assert 0 <= token_ids.min() and token_ids.max() < 32
    decoded = model.decode_ids(token_ids)
    assert decoded.shape == images.shape
    assert decoded.min() >= -1 and decoded.max() <= 1
    # larger images than sample_size give larger grids
    assert model.encode_to_ids(torch.zeros(2, 1, 16, 8)).shape == (2, 8, 4)


@pytest.mark.parametrize("training", [False, True])
def test_encode_to_ids_never_changes_state(images, training):
    model = _trained_a_little(tiny_vqvae(codebook_update="ema", kmeans_init=True, dead_code_threshold=5.0), images)
    model.train(training)
    before = {name: tensor.clone() for name, tensor in model.state_dict().items()}
    for _ in range(3):
        model.encode_to_ids(torch.rand(4, 1, 8, 8) * 2 - 1)
    after = model.state_dict()
    assert all(torch.equal(before[name], after[name]) for name in before)


def test_fresh_kmeans_model_is_not_initialised_by_encoding(images):
    model = tiny_vqvae(kmeans_init=True).eval()
    codebook = model.quantize.embedding.weight.clone()
    model.encode_to_ids(images)
    model(images)  # eval-mode forward must not initialise either
    assert torch.equal(model.quantize.embedding.weight, codebook)
    assert not bool(model.quantize.initialized)


def test_wrong_channel_count_raises(images):
    model = tiny_vqvae()
    with pytest.raises(ValueError, match="in_channels=1"):
        model.encode_to_ids(images.repeat(1, 3, 1, 1))
    with pytest.raises(ValueError, match="in_channels=1"):
        model(images.repeat(1, 3, 1, 1))


@pytest.mark.parametrize("size", [(7, 8), (8, 9)])
def test_size_not_divisible_by_downsampling_raises(size):
    with pytest.raises(ValueError, match="divisible by the downsampling factor 2"):
        tiny_vqvae().encode_to_ids(torch.zeros(1, 1, *size))


def test_decode_ids_rejects_bad_ids():
    model = tiny_vqvae()
    with pytest.raises(ValueError, match=r"\[0, 31\]"):
        model.decode_ids(torch.full((1, 4, 4), 32))
    with pytest.raises(ValueError, match="3-D"):
        model.decode_ids(torch.zeros(16, dtype=torch.long))
    with pytest.raises(ValueError, match="integer"):
        model.decode_ids(torch.zeros(1, 4, 4))


def test_mismatched_block_lists_raise():
    with pytest.raises(ValueError, match="same length"):
        tiny_vqvae(block_out_channels=(8, 16, 16))


def test_round_trip_keeps_quantizer_options(tmp_path):
    model = tiny_vqvae(codebook_update="ema", dead_code_threshold=2.0, use_cosine_codes=True)
    model.save_pretrained(tmp_path)
    loaded = VQVAEModel.from_pretrained(tmp_path)
    assert loaded.config.codebook_update == "ema" and loaded.quantize.use_ema
    assert loaded.quantize.dead_code_threshold == 2.0 and loaded.quantize.use_cosine
    for name, tensor in model.state_dict().items():
        assert torch.equal(tensor, loaded.state_dict()[name]), name


def test_output_survives_accelerate_mixed_precision_conversion(images):
    from accelerate.utils.operations import convert_to_fp32

    output = tiny_vqvae()(images.to(torch.bfloat16).float())
    output = type(output)(**{k: v.to(torch.bfloat16) if v.is_floating_point() else v for k, v in output.items()})
    converted = convert_to_fp32(output)
    assert converted.sample.dtype == torch.float32 and converted.token_ids.dtype == torch.long


@pytest.mark.parametrize(
    "quantizer",
    [
        {"kmeans_init": True, "dead_code_threshold": 1.0, "codebook_update": "ema"},
        {"quantizer_type": "fsq", "fsq_levels": [4, 4], "num_vq_embeddings": 16, "vq_embed_dim": 2},
    ],
    ids=["vq", "fsq"],
)
def test_a_training_forward_traces_as_one_graph_no_host_syncs(quantizer):
    """`torch.compile` keeps the training step in one graph: no `.item()`, data-dependent branch or data-dependent
    output shape in the forward (input checks live at the entry points)."""
    model = tiny_vqvae(**quantizer).train()
    images = torch.rand(4, 1, 8, 8) * 2 - 1
    model(images)  # the first step initialises the codebook (k-means): a one-off sync, outside the steady state
    torch._dynamo.reset()
    explanation = torch._dynamo.explain(model)(images)
    assert explanation.graph_break_count == 0, [str(reason.reason)[:300] for reason in explanation.break_reasons]
