"""`DiscreteDiffusionPipeline`: a bidirectional denoiser + `DiscreteDiffusionScheduler` over VQ-VAE codebook ids,
decoded by the tokenizer; the whole grid is denoised in parallel."""

from __future__ import annotations

import copy
import numbers
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import PIL.Image
import torch
import torch.nn.functional as F
from transformers import PreTrainedModel

from ..data.pixels import PixelTransform
from ..models.vq_model import VQVAEModel
from ..sampling import apply_guidance
from ..schedulers import DiscreteDiffusionScheduler
from ..vocabulary import TokenLayout
from .token_pipeline import TokenImagePipeline, TokenImagePipelineOutput, check_tokenizer_identity


@dataclass
class DiscreteDiffusionPipelineOutput(TokenImagePipelineOutput):
    """
    Args:
        images, token_ids: As in [`TokenImagePipelineOutput`].
        intermediates (`list`, *optional*): With `return_intermediates=True`, the decoded grid after each reverse
            step (MASK positions shown as the denoiser's current guess), each in `output_type`.
        num_steps_run (`int`): Reverse steps actually taken (fewer than `num_inference_steps` when the original
            sampler converged early).
    """

    intermediates: list | None = None
    num_steps_run: int = 0


class DiscreteDiffusionPipeline(TokenImagePipeline):
    r"""
    Sample images by iteratively denoising a whole grid of codebook ids with a bidirectional transformer, then decode
    them with the VQ-VAE tokenizer.

    Args:
        vqvae ([`VQVAEModel`]): The tokenizer.
        denoiser ([`~transformers.BertForMaskedLM`] or any masked-LM transformers model): Reads
            [noise level?, class?, grid] and predicts the clean codes; its config records the token layout.
        scheduler ([`DiscreteDiffusionScheduler`]): Corruption kind, schedule and sampler.

    Example:

    ```py
    >>> from hf_vqgen import DiscreteDiffusionPipeline

    >>> pipeline = DiscreteDiffusionPipeline.from_pretrained("path/to/pipeline")  # or a Hub repo id
    >>> out = pipeline(batch_size=8, class_labels=[0] * 8, num_inference_steps=16, return_intermediates=True)
    >>> out.images[0].save("sample.png")
    ```
    """

    model_cpu_offload_seq = "denoiser->vqvae"
    builtin_sampling_defaults = {"guidance_scale": 1.0, "num_inference_steps": 16, "temperature": 1.0, "top_k": None}

    def __init__(self, vqvae: VQVAEModel, denoiser: PreTrainedModel, scheduler: DiscreteDiffusionScheduler):
        super().__init__()
        layout = TokenLayout.from_config(denoiser.config)
        layout.check_tokenizer(vqvae)
        check_tokenizer_identity(denoiser.config, vqvae)
        if scheduler.config.num_vq_embeddings != layout.num_codes:
            raise ValueError(
                f"The scheduler has {scheduler.config.num_vq_embeddings} codes but the denoiser {layout.num_codes}."
            )
        if scheduler.config.mask_token_id not in (None, layout.mask_token_id):
            raise ValueError(
                f"The scheduler's mask_token_id {scheduler.config.mask_token_id} != the denoiser's "
                f"{layout.mask_token_id}."
            )
        if layout.num_noise_levels not in (0, scheduler.config.num_train_timesteps):
            raise ValueError(
                f"The denoiser knows {layout.num_noise_levels} noise levels but the scheduler has "
                f"{scheduler.config.num_train_timesteps} timesteps."
            )
        self.register_modules(vqvae=vqvae, denoiser=denoiser, scheduler=scheduler)

    has_reverse_process = True
    kind_label = "diffusion"

    @property
    def prior_model(self) -> PreTrainedModel:
        return self.denoiser

    def completion_inputs(self, image, num_prefix_rows: int) -> dict:
        layout = self.layout
        token_mask = torch.zeros(layout.grid_height, layout.grid_width, dtype=torch.bool)
        token_mask[num_prefix_rows:] = True  # inpaint every token row below the first `num_prefix_rows`
        return {"image": image, "token_mask": token_mask}

    def check_sampling_values(self, layout, **values) -> None:
        super().check_sampling_values(layout, **values)
        steps = values.get("num_inference_steps")
        if not isinstance(steps, numbers.Integral) or isinstance(steps, bool) or steps < 1:
            raise ValueError(f"`num_inference_steps` must be a positive integer, got {steps!r}.")

    @property
    def layout(self) -> TokenLayout:
        """The token layout the denoiser's config records (built anew on each access: read it once per call)."""
        return TokenLayout.from_config(self.denoiser.config)

    # inputs

    def prepare_known_tokens(self, layout, batch_size, image, mask_image, token_ids, token_mask):
        """Inpainting: (known (B, N) bool, their ids (B, N)) or (None, None). `mask_image` / `token_mask` mark what
        to *regenerate* (white / True), as in diffusers' inpainting pipelines; everything else stays fixed."""
        if image is None and token_ids is None:
            if mask_image is not None or token_mask is not None:
                raise ValueError("`mask_image` / `token_mask` need the `image` or `token_ids` they refer to.")
            return None, None
        if image is not None and token_ids is not None:
            raise ValueError("Pass either `image` or `token_ids` to inpaint, not both.")
        if (mask_image is None) == (token_mask is None):
            raise ValueError("Inpainting needs exactly one of `mask_image` or `token_mask`.")
        if image is not None:
            token_ids = self.vqvae.encode_to_ids(self.image_to_tensor(image))
        token_ids = torch.as_tensor(token_ids, device=self.device).long()
        if token_ids.shape != (batch_size, layout.grid_height, layout.grid_width):
            raise ValueError(
                f"`token_ids` must be (batch_size={batch_size}, {layout.grid_height}, {layout.grid_width}), "
                f"got {tuple(token_ids.shape)}."
            )
        if token_ids.min() < 0 or token_ids.max() >= layout.num_codes:
            raise ValueError(f"`token_ids` must be codebook ids in [0, {layout.num_codes - 1}].")
        if mask_image is not None:
            check_mask_matches_image(mask_image, image)
            token_mask = self.mask_image_to_tokens(layout, mask_image, batch_size)
        token_mask = _binary_mask(torch.as_tensor(token_mask, device=self.device), "token_mask")
        if token_mask.ndim == 2:
            token_mask = token_mask.expand(batch_size, -1, -1)
        if token_mask.shape != token_ids.shape:
            raise ValueError(
                f"`token_mask` must be {tuple(token_ids.shape)} (or (h, w)), got {tuple(token_mask.shape)}."
            )
        return ~token_mask.flatten(1), token_ids.flatten(1)

    def mask_image_to_tokens(self, layout, mask_image, batch_size) -> torch.Tensor:
        """A pixel mask (white = regenerate) -> (B, h, w) token mask: a token is regenerated if any of its pixels is."""
        if isinstance(mask_image, PIL.Image.Image):
            mask_image = [mask_image]
        if isinstance(mask_image, list):
            transform = PixelTransform(self.vqvae.config.sample_size, self.vqvae.config.in_channels)
            mask_image = torch.stack([torch.from_numpy(_binary_pixels(transform.fit_mask(m))) for m in mask_image])
            mask_image = mask_image.unsqueeze(1)
        mask = _binary_mask(torch.as_tensor(mask_image, device=self.device), "mask_image").float()
        mask = mask.view(-1, 1, *mask.shape[-2:])
        if mask.shape[0] not in (1, batch_size):
            raise ValueError(f"`mask_image` holds {mask.shape[0]} masks for a batch of {batch_size}.")
        tokens = F.adaptive_max_pool2d(mask, (layout.grid_height, layout.grid_width)) > 0.5
        return tokens[:, 0].expand(batch_size, -1, -1)

    # sampling

    def denoiser_logits(self, layout, token_ids, timestep, class_labels, guidance_scale, bf16=False) -> torch.Tensor:
        """Logits over the codes (B, N, K) in float32, with classifier-free guidance when `guidance_scale` != 1 (the
        conditional and unconditional rows in one batched forward); the forward under bf16 autocast if `bf16`."""
        inputs = layout.denoiser_input(token_ids, torch.as_tensor(timestep), class_labels)
        if guidance_scale != 1.0:
            unconditional = layout.denoiser_input(token_ids, torch.as_tensor(timestep), None)
            inputs = torch.cat([inputs, unconditional])
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=bf16):
            logits = self.denoiser(input_ids=inputs).logits[:, layout.denoiser_prefix_length :, : layout.num_codes]
        return apply_guidance(logits.float(), guidance_scale)

    @torch.no_grad()
    def __call__(
        self,
        batch_size: int | None = None,
        class_labels: list[int] | torch.Tensor | None = None,
        guidance_scale: float | None = None,
        num_inference_steps: int | None = None,
        temperature: float | None = None,
        top_k: int | None = None,
        generator: torch.Generator | None = None,
        image: PIL.Image.Image | list[PIL.Image.Image] | torch.Tensor | None = None,
        mask_image: PIL.Image.Image | list[PIL.Image.Image] | torch.Tensor | None = None,
        token_ids: torch.Tensor | None = None,
        token_mask: torch.Tensor | None = None,
        output_type: str = "pil",
        return_dict: bool = True,
        callback_on_step_end: Callable | None = None,
        return_intermediates: bool = False,
        bf16: bool | None = None,
    ) -> DiscreteDiffusionPipelineOutput | tuple:
        r"""
        Args:
            batch_size (`int`, *optional*): Number of images; defaults to the number of `image`s / `token_ids`, else 1.
            class_labels (`list[int]` or `torch.LongTensor` of shape `(batch_size,)`, *optional*): Classes for a
                class-conditional denoiser; `None` samples from the null class.
            guidance_scale (`float`, *optional*): Classifier-free guidance on the logits.
            num_inference_steps (`int`, *optional*): Reverse steps (at most num_train_timesteps).
            temperature (`float`, *optional*): Softmax temperature for drawing codes; 0 = argmax.
            top_k (`int`, *optional*): Draw among the k most likely codes only (0: all codes).

            The four settings above default to the pipeline's `sampling_defaults` (saved with it by
            `set_sampling_defaults`; else guidance 1, 16 steps, temperature 1, no top-k).
            generator (`torch.Generator`, *optional*): Makes sampling reproducible.
            image (PIL image(s) or `torch.Tensor` `(B, C, H, W)` in [-1, 1], *optional*): Image to inpaint, with
                `mask_image` (white = regenerate) or `token_mask`.
            mask_image (PIL image(s) or `torch.Tensor` `(B, 1, H, W)` in [0, 1], *optional*): Pixel mask.
            token_ids (`torch.LongTensor` of shape `(B, h, w)`, *optional*): A token grid to inpaint (instead of
                `image`), with `token_mask` (`(B, h, w)` or `(h, w)` bool, True = regenerate).
            output_type (`str`, *optional*, defaults to `"pil"`): `"pil"`, `"np"`, `"pt"` or `"token_ids"`.
            return_dict (`bool`, *optional*, defaults to `True`): Return a [`DiscreteDiffusionPipelineOutput`] or
                a tuple `(images, token_ids)`.
            callback_on_step_end (`Callable`, *optional*): Called as `callback(pipeline, step, timestep,
                {"token_ids": grid})` after each step; may return `{"token_ids": new_grid}` to change the grid.
            return_intermediates (`bool`, *optional*, defaults to `False`): Also return every step's decoded grid
                (see `hf_vqgen.pipelines.reverse_process.export_reverse_process` for a GIF and a strip).
            bf16 (`bool`, *optional*): Run the denoiser under bf16 autocast (sampling stays float32). Default: on a
                CUDA device that supports bf16, off elsewhere (CPUs without bf16 matrix units run it slower).
        """
        layout = self.layout
        settings = self.call_settings(
            layout, class_labels, guidance_scale=guidance_scale, num_inference_steps=num_inference_steps,
            temperature=temperature, top_k=top_k,
        )  # fmt: skip
        guidance_scale, num_inference_steps, temperature, top_k = settings.values()
        # a scheduler of this call's own: its timesteps are per-call state, so a pipeline shared between threads
        # never sees another call's steps
        scheduler = copy.deepcopy(self.scheduler)
        if token_ids is not None and batch_size is None:
            batch_size = len(token_ids)
        batch_size = self.resolve_batch_size(batch_size, image)
        batch_size = self.check_batch_and_output(batch_size, output_type)
        class_labels = self.prepare_class_labels(class_labels, batch_size, layout)
        self.check_sampling_inputs(layout, guidance_scale, temperature, top_k, generator)
        scheduler.set_timesteps(num_inference_steps, device=self.device)
        if bf16 is None:  # native bf16 only (Ampere and newer): emulated bf16 on older GPUs is slower than float32
            bf16 = self.device.type == "cuda" and torch.cuda.get_device_capability(self.device) >= (8, 0)
        known, known_ids = self.prepare_known_tokens(layout, batch_size, image, mask_image, token_ids, token_mask)

        # 1. start fully corrupted (random codes or all MASK), known tokens in place
        grid = scheduler.initial_sample((batch_size, layout.num_tokens), generator=generator)
        grid = grid.to(self.device)
        if known is not None:
            grid = torch.where(known, known_ids, grid)

        # 2. reverse process
        intermediates, steps_run = [], 0
        for i, t in enumerate(self.progress_bar(scheduler.timesteps)):
            logits = self.denoiser_logits(layout, grid, t, class_labels, guidance_scale, bf16)
            out = scheduler.step(logits, t, grid, generator=generator, temperature=temperature, top_k=top_k)
            new_grid = out.prev_sample
            if known is not None:
                new_grid = torch.where(known, known_ids, new_grid)
            if callback_on_step_end is not None:  # before the convergence test: the callback may edit the grid
                changed = callback_on_step_end(self, i, t, {"token_ids": new_grid})
                new_grid = (changed or {}).get("token_ids", new_grid)
            converged = scheduler.config.sampler == "resample" and torch.equal(new_grid, grid)
            grid, steps_run = new_grid, steps_run + 1
            if return_intermediates:
                shown = grid
                if layout.mask_token_id is not None:
                    shown = torch.where(grid == layout.mask_token_id, out.pred_original_sample, grid)
                shown = shown.view(batch_size, layout.grid_height, layout.grid_width)
                intermediates.append(self.decode(shown, "pil" if output_type == "token_ids" else output_type))
            if converged:  # the original sampler: nothing changed, so nothing will
                break

        token_ids = grid.view(batch_size, layout.grid_height, layout.grid_width)
        images = self.decode(token_ids, output_type)
        self.maybe_free_model_hooks()
        if not return_dict:
            return images, token_ids
        return DiscreteDiffusionPipelineOutput(
            images=images,
            token_ids=token_ids,
            intermediates=intermediates if return_intermediates else None,
            num_steps_run=steps_run,
        )


def _sizes(images) -> list[tuple[int, int]] | None:
    """(width, height) of each PIL image, or the (W, H) of a tensor's last two dims; None for anything else."""
    if isinstance(images, PIL.Image.Image):
        return [images.size]
    if isinstance(images, list) and images and all(isinstance(i, PIL.Image.Image) for i in images):
        return [i.size for i in images]
    if isinstance(images, torch.Tensor) and images.ndim >= 2:
        return [(images.shape[-1], images.shape[-2])]
    return None


def check_mask_matches_image(mask_image, image) -> None:
    """A pixel mask must be drawn at its image's size: one of another size or aspect would be stretched or cropped
    differently from the image, so other tokens than the marked ones would be regenerated."""
    mask_sizes, image_sizes = _sizes(mask_image), _sizes(image)
    if mask_sizes is None or image_sizes is None:
        return  # token_ids instead of an image: the mask is checked against the grid later
    if len(mask_sizes) == 1:
        mask_sizes = mask_sizes * len(image_sizes)
    if len(image_sizes) == 1:
        image_sizes = image_sizes * len(mask_sizes)
    for index, (mask_size, image_size) in enumerate(zip(mask_sizes, image_sizes)):
        if mask_size != image_size:
            raise ValueError(
                f"`mask_image` {index} is {mask_size[0]}x{mask_size[1]} pixels but its `image` is "
                f"{image_size[0]}x{image_size[1]}: draw the mask at the image's size."
            )


def _binary_pixels(mask: PIL.Image.Image) -> np.ndarray:
    """A drawn mask image (mode "L", already at the model's size) -> 0 / 1: pixels at least half white regenerate."""
    grey = np.asarray(mask, dtype=np.float32) / 255.0
    return (grey >= 0.5).astype(np.float32)


def _binary_mask(mask: torch.Tensor, name: str) -> torch.Tensor:
    """A bool mask; numeric masks must hold only 0 and 1 (a soft 0.3 is neither "keep" nor "regenerate")."""
    if mask.dtype == torch.bool:
        return mask
    if mask.numel() and not ((mask == 0) | (mask == 1)).all():
        values = mask.unique()[:5].tolist()
        raise ValueError(
            f"`{name}` must be binary (bool, or 0 = keep / 1 = regenerate), got values such as {values}; "
            f"threshold it first, e.g. `{name} > 0.5`."
        )
    return mask.bool()
