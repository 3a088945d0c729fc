import pytest
import torch

from hf_vqgen import TokenLayout


def test_layout_ids_are_contiguous_and_distinct():
    layout = TokenLayout(
        num_codes=256, grid_height=7, grid_width=7, num_classes=10, use_mask_token=True, num_noise_levels=4
    )
    ids = [layout.bos_token_id, *layout.class_token_ids(torch.arange(11)).flatten().tolist(), layout.mask_token_id]
    ids += list(range(layout.first_noise_level_token_id, layout.vocab_size))
    assert ids == list(range(256, layout.vocab_size)) and layout.vocab_size == 256 + 1 + 10 + 1 + 1 + 4
    assert layout.null_class_token_id == 267 and layout.sequence_length == 2 + 49
    assert layout.code_mask().sum() == 256


def test_unconditional_layout():
    layout = TokenLayout(num_codes=16, grid_height=2, grid_width=3)
    assert layout.null_class_token_id is None and layout.mask_token_id is None
    assert layout.vocab_size == 17 and layout.prefix_length == 1
    assert layout.prompt(2, None).tolist() == [[16], [16]]


def test_gpt2_config_round_trips_the_layout():
    layout = TokenLayout(num_codes=32, grid_height=4, grid_width=4, num_classes=3)
    config = layout.gpt2_config(n_layer=1, n_head=2, n_embd=16)
    assert config.n_positions == layout.sequence_length and config.eos_token_id is None
    assert TokenLayout.from_config(config) == layout


def test_class_factors_give_one_token_per_factor_with_its_own_null():
    layout = TokenLayout(num_codes=16, grid_height=2, grid_width=2, num_classes=6, class_factors=(3, 2))
    # class c = i_1 * 2 + i_2; ids 17..19 + null 20 for the first factor, 21..22 + null 23 for the second
    assert layout.class_token_ids(torch.tensor([0, 1, 5, 6])).tolist() == [[17, 21], [17, 22], [19, 22], [20, 23]]
    assert layout.prefix_length == 3 and layout.null_class_token_id == 20 and layout.vocab_size == 24
    assert layout.prompt(1, None).tolist() == [[16, 20, 23]]
    assert TokenLayout.from_config(layout.gpt2_config(1, 1, 8)) == layout
    diffusion = TokenLayout(16, 2, 2, num_classes=6, use_mask_token=True, num_noise_levels=3, class_factors=(3, 2))
    assert diffusion.mask_token_id == 24 and diffusion.denoiser_prefix_length == 3 and diffusion.vocab_size == 28
    assert "class_factors" not in TokenLayout(16, 2, 2, num_classes=6).to_dict()  # one-token configs as before
    with pytest.raises(ValueError, match="class_factors"):
        TokenLayout(16, 2, 2, num_classes=6, class_factors=(4, 2))


def test_bad_layouts_and_labels():
    with pytest.raises(ValueError, match="num_codes"):
        TokenLayout(num_codes=0, grid_height=1, grid_width=1)
    layout = TokenLayout(num_codes=8, grid_height=2, grid_width=2, num_classes=2)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        layout.check_class_labels(torch.tensor([2]))
    with pytest.raises(ValueError, match="unconditional"):
        TokenLayout(8, 2, 2).check_class_labels(torch.tensor([0]))


def test_built_priors_use_pytorch_sdpa_attention():
    from transformers import BertForMaskedLM, GPT2LMHeadModel

    layout = TokenLayout(16, 2, 2, num_classes=3, use_mask_token=True, num_noise_levels=4)
    assert GPT2LMHeadModel(layout.gpt2_config(1, 2, 16)).config._attn_implementation == "sdpa"
    assert BertForMaskedLM(layout.bert_config(1, 2, 16)).config._attn_implementation == "sdpa"
