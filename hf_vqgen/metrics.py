"""Quality figures. Tokenizer metrics so far: PSNR and codebook usage / perplexity over a whole split."""

from __future__ import annotations

import torch
from tqdm.auto import tqdm


def _check_images(name: str, images: torch.Tensor) -> None:
    if images.ndim != 4 or images.numel() == 0:
        raise ValueError(f"`{name}` must be a non-empty (B, C, H, W) tensor, got shape {tuple(images.shape)}.")
    if not torch.isfinite(images).all():
        raise ValueError(f"`{name}` contains NaN or infinite values.")


def psnr(images: torch.Tensor, references: torch.Tensor) -> torch.Tensor:
    """Per-image PSNR in dB of `images` against `references`, both (B, C, H, W) in [-1, 1].

    Computed on the [0, 1] scale (peak 1); returns a (B,) tensor. Identical images give `inf`.
    """
    _check_images("images", images)
    _check_images("references", references)
    if images.shape != references.shape:
        raise ValueError(f"`images` {tuple(images.shape)} and `references` {tuple(references.shape)} differ in shape.")
    mse = ((images.float() - references.float()) / 2).pow(2).flatten(1).mean(dim=1)
    return -10.0 * torch.log10(mse)


def codebook_statistics(token_counts: torch.Tensor) -> dict[str, float]:
    """Usage (fraction of codes used at least once) and perplexity (exp of the entropy) of a code histogram."""
    if token_counts.ndim != 1 or token_counts.sum() <= 0:
        raise ValueError("`token_counts` must be a 1-D histogram with at least one count.")
    probs = token_counts.double() / token_counts.sum()
    entropy = -(probs[probs > 0] * probs[probs > 0].log()).sum()
    return {"codebook_usage": float((token_counts > 0).double().mean()), "perplexity": float(entropy.exp())}


@torch.no_grad()
def evaluate_tokenizer(model, dataloader, device: torch.device | str | None = None) -> dict[str, float]:
    """Mean PSNR (dB) of reconstructions through the token bottleneck, codebook usage and perplexity over every
    batch of `dataloader` (rows with `pixel_values` in [-1, 1]). The model is used as it is (call `.eval()`)."""
    device = device or next(model.parameters()).device
    counts = torch.zeros(model.config.num_vq_embeddings, dtype=torch.long)
    psnr_sum, num_images = 0.0, 0
    for batch in tqdm(dataloader, desc="Evaluating tokenizer", leave=False):
        pixel_values = batch["pixel_values"].to(device)
        token_ids = model.encode_to_ids(pixel_values)
        reconstructions = model.decode_ids(token_ids)
        psnr_sum += float(psnr(reconstructions, pixel_values).sum())
        num_images += pixel_values.shape[0]
        counts += torch.bincount(token_ids.flatten().cpu(), minlength=counts.numel())
    if num_images == 0:
        raise ValueError("`dataloader` yielded no images.")
    return {"psnr": psnr_sum / num_images, **codebook_statistics(counts), "num_images": num_images}
