"""How well a tokenizer reconstructs: the one loop that `train_vqvae.py`'s final evaluation, `evaluate.py
--tokenizer` and the benchmarks share."""

from __future__ import annotations

from collections.abc import Iterable

import torch
from tqdm.auto import tqdm

from .metrics import codebook_statistics, psnr, ssim


@torch.no_grad()
def evaluate_tokenizer(
    tokenizer, batches: Iterable, device: torch.device | str | None = None, keep_reconstructions: bool = False
) -> dict | tuple[torch.Tensor, dict]:
    """
    Reconstruct every image of `batches` through the token bottleneck and measure it: mean PSNR (dB) and SSIM,
    codebook usage and perplexity, and the number of images.

    Args:
        tokenizer: a `VQVAEModel` (or a quantizer-compatible tokenizer), used as it is (call `.eval()`).
        batches: (B, C, H, W) tensors in [-1, 1], or dataloader rows holding them as `pixel_values`.
        device: where to run; the tokenizer's own device by default.
        keep_reconstructions: also return the reconstructions (N, C, H, W), on the CPU.

    Returns:
        The figures, or `(reconstructions, figures)` with `keep_reconstructions`.
    """
    device = device or next(tokenizer.parameters()).device
    counts = torch.zeros(tokenizer.config.num_vq_embeddings, dtype=torch.long)
    psnr_sum, ssim_sum, num_images, kept = 0.0, 0.0, 0, []
    for batch in tqdm(batches, desc="Evaluating tokenizer", leave=False):
        pixel_values = (batch["pixel_values"] if isinstance(batch, dict) else batch).to(device)
        token_ids = tokenizer.encode_to_ids(pixel_values)
        reconstructions = tokenizer.decode_ids(token_ids)
        psnr_sum += float(psnr(reconstructions, pixel_values).sum())
        ssim_sum += float(ssim(reconstructions, pixel_values).sum())
        num_images += pixel_values.shape[0]
        counts += torch.bincount(token_ids.flatten().cpu(), minlength=counts.numel())
        if keep_reconstructions:
            kept.append(reconstructions.cpu())
    if num_images == 0:
        raise ValueError("`batches` held no images.")
    figures = {
        "psnr": psnr_sum / num_images,
        "ssim": ssim_sum / num_images,
        **codebook_statistics(counts),
        "num_images": num_images,
    }
    return (torch.cat(kept), figures) if keep_reconstructions else figures
