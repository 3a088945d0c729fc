"""`VQVAEModel`: a `diffusers.VQModel` with a better quantizer and a token-id API.

This module path (`hf_vqgen.models.vq_model`) is recorded in every saved pipeline's `model_index.json`: keep it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from diffusers import VQModel
from diffusers.configuration_utils import register_to_config
from diffusers.models.modeling_utils import ModelMixin  # noqa: F401  (diffusers' loader looks it up in this module)
from diffusers.utils import BaseOutput

from ..utils import check_weights_folder
from .quantizers import build_quantizer


# float rounding of [-1, 1] data; an image in [0, 255] or [0, 1] * 255 is far outside
PIXEL_RANGE_TOLERANCE = 1e-3


@dataclass
class VQVAEOutput(BaseOutput):
    """
    Output of [`VQVAEModel.forward`].

    Args:
        sample (`torch.Tensor` of shape `(batch_size, num_channels, height, width)`): Reconstruction in [-1, 1].
        commit_loss (`torch.Tensor`): Scalar codebook + commitment loss.
        token_ids (`torch.LongTensor` of shape `(batch_size, latent_height, latent_width)`): Code ids.
        perplexity (`torch.Tensor`): Scalar perplexity of the code histogram of this batch.
        codebook_usage (`torch.Tensor`): Scalar fraction of the codebook used in this batch.
    """

    sample: torch.Tensor
    # defaults let Accelerate's mixed-precision wrapper rebuild the output from a dict, as for diffusers' outputs
    commit_loss: torch.Tensor | None = None
    token_ids: torch.LongTensor | None = None
    perplexity: torch.Tensor | None = None
    codebook_usage: torch.Tensor | None = None


class VQVAEModel(VQModel):
    r"""
    A VQ-VAE image tokenizer: [`~diffusers.VQModel`] whose quantizer learns its codebook well, plus
    `encode_to_ids` / `decode_ids`.

    Every [`~diffusers.VQModel`] argument keeps its meaning and default. A checkpoint saved by `save_pretrained`
    loads into stock `diffusers.VQModel.from_pretrained` and reconstructs identically (the extra quantizer buffers
    are training state and are ignored there), provided `use_cosine_codes=False`.

    Parameters (beyond [`~diffusers.VQModel`]'s; see [`~hf_vqgen.models.quantizer.VectorQuantizer`] for details):
        codebook_update (`str`, *optional*, defaults to `"loss"`): `"loss"` or `"ema"`.
        commitment_beta (`float`, *optional*, defaults to 0.25): Weight of the commitment loss.
        ema_decay (`float`, *optional*, defaults to 0.99): Decay of the codebook EMA statistics.
        ema_epsilon (`float`, *optional*, defaults to 1e-5): Laplace smoothing of the EMA cluster sizes.
        kmeans_init (`bool`, *optional*, defaults to `False`): k-means codebook initialisation on the first batch.
        kmeans_iters (`int`, *optional*, defaults to 10): Iterations of that k-means.
        dead_code_threshold (`float`, *optional*, defaults to 0.0): Restart codes used less than this per step.
        use_cosine_codes (`bool`, *optional*, defaults to `False`): l2-normalised codes and lookups.
        quantizer_type (`str`, *optional*, defaults to `"vq"`): `"vq"` (the learned codebook above) or `"fsq"`
            (finite scalar quantization, [`~hf_vqgen.models.fsq.FiniteScalarQuantizer`]; the VQ options are unused).
        fsq_levels (`list[int]`, *optional*): FSQ's values per code dimension; `num_vq_embeddings` must be their
            product and `vq_embed_dim` their count.

    Example:

    ```py
    >>> import torch
    >>> from hf_vqgen import VQVAEModel

    >>> model = VQVAEModel(
    ...     in_channels=1, out_channels=1, down_block_types=("DownEncoderBlock2D",) * 3,
    ...     up_block_types=("UpDecoderBlock2D",) * 3, block_out_channels=(32, 64, 64), latent_channels=64,
    ...     vq_embed_dim=16, sample_size=28, num_vq_embeddings=256,
    ... ).eval()
    >>> model.latent_shape
    (7, 7)
    >>> token_ids = model.encode_to_ids(torch.zeros(2, 1, 28, 28))
    >>> token_ids.shape
    torch.Size([2, 7, 7])
    >>> model.decode_ids(token_ids).shape
    torch.Size([2, 1, 28, 28])
    ```
    """

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, *args, allow_pickle: bool = False, **kwargs):
        """As `ModelMixin.from_pretrained`; a local folder whose weights are pickles only is refused unless
        `allow_pickle=True` (loading a pickle can run arbitrary code)."""
        folder = Path(pretrained_model_name_or_path) / (kwargs.get("subfolder") or "")
        if folder.is_dir():
            check_weights_folder(folder, allow_pickle, "The tokenizer")
            kwargs.setdefault("use_safetensors", None if allow_pickle else True)
        return super().from_pretrained(pretrained_model_name_or_path, *args, **kwargs)

    @register_to_config
    def __init__(
        self,
        in_channels: int = 3,
        out_channels: int = 3,
        down_block_types: tuple[str, ...] = ("DownEncoderBlock2D",),
        up_block_types: tuple[str, ...] = ("UpDecoderBlock2D",),
        block_out_channels: tuple[int, ...] = (64,),
        layers_per_block: int = 1,
        act_fn: str = "silu",
        latent_channels: int = 3,
        sample_size: int = 32,
        num_vq_embeddings: int = 256,
        norm_num_groups: int = 32,
        vq_embed_dim: int | None = None,
        scaling_factor: float = 0.18215,
        norm_type: str = "group",
        mid_block_add_attention: bool = True,
        lookup_from_codebook: bool = False,
        force_upcast: bool = False,
        codebook_update: str = "loss",
        commitment_beta: float = 0.25,
        ema_decay: float = 0.99,
        ema_epsilon: float = 1e-5,
        kmeans_init: bool = False,
        kmeans_iters: int = 10,
        dead_code_threshold: float = 0.0,
        use_cosine_codes: bool = False,
        quantizer_type: str = "vq",
        fsq_levels: list[int] | None = None,
    ):
        if len(down_block_types) != len(block_out_channels) or len(up_block_types) != len(block_out_channels):
            raise ValueError(
                "`down_block_types`, `up_block_types` and `block_out_channels` must have the same length, got "
                f"{len(down_block_types)}, {len(up_block_types)} and {len(block_out_channels)}."
            )
        super().__init__(
            in_channels=in_channels,
            out_channels=out_channels,
            down_block_types=down_block_types,
            up_block_types=up_block_types,
            block_out_channels=block_out_channels,
            layers_per_block=layers_per_block,
            act_fn=act_fn,
            latent_channels=latent_channels,
            sample_size=sample_size,
            num_vq_embeddings=num_vq_embeddings,
            norm_num_groups=norm_num_groups,
            vq_embed_dim=vq_embed_dim,
            scaling_factor=scaling_factor,
            norm_type=norm_type,
            mid_block_add_attention=mid_block_add_attention,
            lookup_from_codebook=lookup_from_codebook,
            force_upcast=force_upcast,
        )
        self.quantize = build_quantizer(dict(self.config))  # the registered quantizer of `quantizer_type`

    # geometry

    @property
    def downsample_factor(self) -> int:
        """Pixels per token along each side: 2 ** (number of blocks - 1)."""
        return 2 ** (len(self.config.block_out_channels) - 1)

    @property
    def latent_shape(self) -> tuple[int, int]:
        """Token grid `(h, w)` for square inputs of `config.sample_size` pixels."""
        side = self.config.sample_size // self.downsample_factor
        return side, side

    def check_pixel_values(self, pixel_values: torch.Tensor) -> None:
        """Raise a `ValueError` naming the problem unless `pixel_values` is a finite float (B, in_channels, H, W)
        tensor in [-1, 1] with H, W divisible by `downsample_factor`. (Reads the values: a host sync; the training
        `forward` checks only what the tensor's metadata tells, `check_pixel_shape`.)"""
        self.check_pixel_shape(pixel_values)
        if not torch.isfinite(pixel_values).all():
            raise ValueError("`pixel_values` contains NaN or infinite values.")
        low, high = float(pixel_values.min()), float(pixel_values.max())
        if low < -1 - PIXEL_RANGE_TOLERANCE or high > 1 + PIXEL_RANGE_TOLERANCE:
            raise ValueError(
                f"`pixel_values` must lie in [-1, 1], got values in [{low:g}, {high:g}] (images in [0, 255]: "
                "`x / 127.5 - 1`; in [0, 1]: `x * 2 - 1`)."
            )

    def check_pixel_shape(self, pixel_values: torch.Tensor) -> None:
        """The checks of `check_pixel_values` that need no values (shape, channels, divisibility, dtype)."""
        if pixel_values.ndim != 4:
            raise ValueError(f"`pixel_values` must be 4-D (B, C, H, W), got shape {tuple(pixel_values.shape)}.")
        if pixel_values.shape[1] != self.config.in_channels:
            raise ValueError(
                f"`pixel_values` has {pixel_values.shape[1]} channels but the model expects "
                f"in_channels={self.config.in_channels}."
            )
        height, width = pixel_values.shape[-2:]
        if height % self.downsample_factor or width % self.downsample_factor:
            raise ValueError(
                f"`pixel_values` height and width ({height}x{width}) must be divisible by the downsampling factor "
                f"{self.downsample_factor} (2 ** (len(block_out_channels) - 1))."
            )
        if not pixel_values.dtype.is_floating_point:
            raise ValueError(
                f"`pixel_values` must be a float tensor in [-1, 1], got {pixel_values.dtype} (uint8 images in "
                "[0, 255]: `x.float() / 127.5 - 1`)."
            )

    # token API

    @torch.no_grad()
    def encode_to_ids(self, pixel_values: torch.Tensor) -> torch.LongTensor:
        """Encode images `pixel_values` (B, C, H, W) in [-1, 1] to code ids (B, H / f, W / f), f the
        `downsample_factor`. Pure: no parameter or buffer changes, in train or eval mode."""
        self.check_pixel_values(pixel_values)
        return self.quantize.lookup_ids(self.encode(pixel_values).latents)

    @torch.no_grad()
    def decode_ids(self, token_ids: torch.LongTensor) -> torch.Tensor:
        """Decode code ids `token_ids` (B, h, w) to images (B, C, h * f, w * f) clamped to [-1, 1]."""
        if token_ids.ndim != 3:
            raise ValueError(f"`token_ids` must be 3-D (B, h, w), got shape {tuple(token_ids.shape)}.")
        if token_ids.dtype.is_floating_point:
            raise ValueError(f"`token_ids` must be an integer tensor, got {token_ids.dtype}.")
        if token_ids.numel() and (token_ids.min() < 0 or token_ids.max() >= self.config.num_vq_embeddings):
            raise ValueError(
                f"`token_ids` must lie in [0, {self.config.num_vq_embeddings - 1}], "
                f"got values in [{int(token_ids.min())}, {int(token_ids.max())}]."
            )
        quant = self.quantize.get_codebook_entry(token_ids.long(), (*token_ids.shape, self.quantize.vq_embed_dim))
        return self._decode_quantized(quant).clamp(-1.0, 1.0)

    def _decode_quantized(self, quant: torch.Tensor) -> torch.Tensor:
        hidden = self.post_quant_conv(quant)
        return self.decoder(hidden, quant if self.config.norm_type == "spatial" else None)

    # training forward

    def forward(self, sample: torch.Tensor, return_dict: bool = True) -> VQVAEOutput | tuple[torch.Tensor, ...]:
        r"""
        Encode, quantize and decode `sample` (B, C, H, W) in [-1, 1].

        In training mode the quantizer also updates its codebook statistics (see [`VectorQuantizer`]). With
        `return_dict=False` the tuple starts with `(sample, commit_loss)` as [`~diffusers.VQModel.forward`] does.
        Only the shape is checked here (values are checked at the entry points, `encode_to_ids` and the pipelines):
        a per-step host sync would break `torch.compile` graphs.
        """
        self.check_pixel_shape(sample)
        quant, commit_loss, info = self.quantize(self.encode(sample).latents)
        reconstruction = self._decode_quantized(quant)
        if not return_dict:
            return reconstruction, commit_loss, info.token_ids, info.perplexity, info.codebook_usage
        return VQVAEOutput(
            sample=reconstruction,
            commit_loss=commit_loss,
            token_ids=info.token_ids,
            perplexity=info.perplexity,
            codebook_usage=info.codebook_usage,
        )
