"""The quantizers a `VQVAEModel` can be built with, by its config's `quantizer_type` (the interface they share is
`hf_vqgen.models.quantizer.Quantizer`). A new quantizer is one class and one entry in `QUANTIZERS`, with a builder
that reads its options from the tokenizer's config."""

from __future__ import annotations

import math

from .fsq import FiniteScalarQuantizer
from .quantizer import VectorQuantizer


def _vector_quantizer(config: dict) -> VectorQuantizer:
    return VectorQuantizer(
        config["num_vq_embeddings"],
        config["vq_embed_dim"] if config["vq_embed_dim"] is not None else config["latent_channels"],
        codebook_update=config["codebook_update"],
        commitment_beta=config["commitment_beta"],
        ema_decay=config["ema_decay"],
        ema_epsilon=config["ema_epsilon"],
        kmeans_init=config["kmeans_init"],
        kmeans_iters=config["kmeans_iters"],
        dead_code_threshold=config["dead_code_threshold"],
        use_cosine_codes=config["use_cosine_codes"],
    )


def _finite_scalar_quantizer(config: dict) -> FiniteScalarQuantizer:
    levels = config["fsq_levels"]
    if not levels:
        raise ValueError("`quantizer_type='fsq'` needs `fsq_levels` (e.g. [8, 8, 8] for 512 codes).")
    if min(levels) < 2:
        raise ValueError(f"`fsq_levels` must be integers >= 2, got {list(levels)}.")
    # the config's size fields must describe the implicit codebook: stock diffusers.VQModel builds its table from them
    if config["num_vq_embeddings"] != math.prod(levels):
        raise ValueError(
            f"`num_vq_embeddings` must be the product of `fsq_levels` {list(levels)} = {math.prod(levels)}, got "
            f"{config['num_vq_embeddings']}."
        )
    code_dim = config["vq_embed_dim"] if config["vq_embed_dim"] is not None else config["latent_channels"]
    if code_dim != len(levels):
        raise ValueError(f"`vq_embed_dim` must be len(fsq_levels) = {len(levels)} for FSQ, got {code_dim}.")
    return FiniteScalarQuantizer(levels)


QUANTIZERS = {"vq": _vector_quantizer, "fsq": _finite_scalar_quantizer}


def build_quantizer(config: dict):
    """The quantizer of a tokenizer config (a dict with `quantizer_type` and that quantizer's options)."""
    kind = config.get("quantizer_type", "vq")
    if kind not in QUANTIZERS:
        raise ValueError(f"`quantizer_type` must be one of {sorted(QUANTIZERS)}, got {kind!r}.")
    return QUANTIZERS[kind](config)
