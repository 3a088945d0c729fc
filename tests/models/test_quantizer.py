import pytest
import torch

from hf_vqgen.models import VectorQuantizer
from hf_vqgen.models.quantizer import kmeans


def _clustered_data(num_clusters=64, per_cluster=16, dim=4, seed=0) -> torch.Tensor:
    """(B, D, h, w) latents drawn around `num_clusters` well separated centres far from the initial codebook."""
    generator = torch.Generator().manual_seed(seed)
    centres = torch.randn(num_clusters, dim, generator=generator) * 5 + 10
    points = centres.repeat_interleave(per_cluster, 0) + 0.05 * torch.randn(
        num_clusters * per_cluster, dim, generator=generator
    )
    return points.T.reshape(1, dim, -1, 8).contiguous()


def _usage_after_training(quantizer: VectorQuantizer, data: torch.Tensor, steps: int) -> float:
    quantizer.train()
    optimizer = torch.optim.SGD([p for p in quantizer.parameters() if p.requires_grad] or [torch.zeros(1)], lr=0.5)
    for _ in range(steps):
        _, loss, _ = quantizer(data)
        if loss.requires_grad:
            loss.backward()
            optimizer.step()
            optimizer.zero_grad()
    quantizer.eval()
    ids = quantizer.lookup_ids(data)
    return ids.unique().numel() / quantizer.n_e


def test_dead_codes_without_tricks_stay_dead():
    # all data lies far from the uniform(+-1/K) initial codes: one code wins everything
    quantizer = VectorQuantizer(64, 4, codebook_update="ema")
    assert _usage_after_training(quantizer, _clustered_data(), steps=20) < 0.1


@pytest.mark.parametrize("codebook_update", ["loss", "ema"])
def test_kmeans_init_and_restarts_bring_usage_above_90_percent(codebook_update):
    torch.manual_seed(0)
    quantizer = VectorQuantizer(
        64, 4, codebook_update=codebook_update, kmeans_init=True, dead_code_threshold=4.0, ema_decay=0.9
    )
    assert _usage_after_training(quantizer, _clustered_data(), steps=40) > 0.9
    assert bool(quantizer.initialized)


@pytest.mark.parametrize("codebook_update", ["loss", "ema"])
def test_codebook_trains_towards_data(codebook_update):
    torch.manual_seed(0)
    data = _clustered_data(num_clusters=8, per_cluster=32)
    # codes start at uniform(+-1/K), far from the data: learning must move them there
    quantizer = VectorQuantizer(8, 4, codebook_update=codebook_update, dead_code_threshold=1.0, ema_decay=0.9)
    quantizer.train()
    _, first_loss, _ = quantizer(data)
    _usage_after_training(quantizer, data, steps=60)
    quantizer.train()
    _, last_loss, _ = quantizer(data)
    assert last_loss < 0.1 * first_loss
    if codebook_update == "ema":
        assert not quantizer.embedding.weight.requires_grad


def test_forward_reports_statistics_and_straight_through_gradient():
    quantizer = VectorQuantizer(16, 4)
    z = torch.randn(2, 4, 3, 3, requires_grad=True)
    z_q, loss, info = quantizer(z)
    assert z_q.shape == z.shape and info.token_ids.shape == (2, 3, 3)
    assert 1.0 <= float(info.perplexity) <= 16 and 0 < float(info.codebook_usage) <= 1
    z_q.sum().backward()
    assert torch.allclose(z.grad, torch.ones_like(z))


def test_commitment_beta_weights_the_encoder_term():
    # non-legacy form: beta * ||z - sg[e]||^2 reaches the encoder, the codebook term is unweighted
    z = torch.randn(1, 4, 2, 2, requires_grad=True)
    quantizer = VectorQuantizer(8, 4, commitment_beta=0.0)
    _, loss, _ = quantizer(z)
    loss.backward()
    assert torch.count_nonzero(z.grad) == 0
    assert quantizer.embedding.weight.grad.abs().sum() > 0


def test_cosine_codes_are_unit_norm():
    quantizer = VectorQuantizer(8, 4, use_cosine_codes=True)
    z_q, _, _ = quantizer(torch.randn(2, 4, 3, 3))
    assert torch.allclose(z_q.norm(dim=1), torch.ones(2, 3, 3), atol=1e-5)


def test_kmeans_finds_separated_clusters():
    data = _clustered_data(num_clusters=4, per_cluster=50).permute(0, 2, 3, 1).reshape(-1, 4)
    torch.manual_seed(0)
    _, counts = kmeans(data, 4, num_iters=10)
    assert sorted(counts.tolist()) == [50.0] * 4


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"codebook_update": "adam"}, "codebook_update"),
        ({"ema_decay": 1.0}, "ema_decay"),
        ({"dead_code_threshold": -1.0}, "dead_code_threshold"),
    ],
)
def test_bad_options_raise(kwargs, match):
    with pytest.raises(ValueError, match=match):
        VectorQuantizer(8, 4, **kwargs)
