import pytest
import torch

from hf_vqgen.sampling import apply_guidance, draw_tokens, filter_logits


def test_filter_logits_top_k_and_top_p():
    logits = torch.log(torch.tensor([[0.5, 0.3, 0.15, 0.05]]))
    assert torch.isinf(filter_logits(logits, top_k=2, top_p=None)[0, 2:]).all()
    kept = ~torch.isinf(filter_logits(logits, top_k=None, top_p=0.7))
    assert kept.tolist() == [[True, True, False, False]]  # 0.5 < 0.7 <= 0.8: the crossing token stays


def test_apply_guidance_extrapolates_from_the_unconditional_half():
    conditional, unconditional = torch.tensor([[2.0, 0.0]]), torch.tensor([[1.0, 1.0]])
    logits = torch.cat([conditional, unconditional])
    assert torch.equal(apply_guidance(logits, 1.0), logits)
    assert torch.equal(apply_guidance(logits, 3.0), torch.tensor([[4.0, -2.0]]))


def test_draw_tokens_greedy_at_zero_and_within_top_k():
    logits = torch.randn(3, 5, 10, generator=torch.Generator().manual_seed(0))
    assert torch.equal(draw_tokens(logits, temperature=0), logits.argmax(-1))
    drawn = draw_tokens(logits, top_k=2, generator=torch.Generator().manual_seed(1))
    top2 = logits.topk(2, dim=-1).indices
    assert drawn.shape == (3, 5) and (top2 == drawn.unsqueeze(-1)).any(-1).all()


@pytest.mark.parametrize("shape", [(4, 7), (2, 3, 7)])
def test_draw_tokens_is_seeded_and_row_ordered(shape):
    """The same generator state gives the same ids, and a (B, N, K) call equals the flattened (B*N, K) call."""
    logits = torch.randn(*shape, generator=torch.Generator().manual_seed(2))
    first = draw_tokens(logits, generator=torch.Generator().manual_seed(3))
    again = draw_tokens(logits.reshape(-1, shape[-1]), generator=torch.Generator().manual_seed(3))
    assert torch.equal(first.flatten(), again)
