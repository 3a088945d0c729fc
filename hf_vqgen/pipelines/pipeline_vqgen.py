"""`VQGenPipeline`: a GPT-2 prior over VQ-VAE codebook ids ("Taming Transformers" style) + the tokenizer's decoder."""

from __future__ import annotations

import numbers

import PIL.Image
import torch
from transformers import GPT2LMHeadModel

from ..models.vq_model import VQVAEModel
from ..vocabulary import TokenLayout
from .autoregressive_sampling import build_input_ids, next_tokens, sample_with_cache
from .token_pipeline import TokenImagePipeline, VQGenPipelineOutput, check_tokenizer_identity


GUIDANCE_SCHEDULES = ("constant", "linear", "linear_decreasing")


def scheduled_guidance(guidance_scale: float, schedule: str, position: int, num_tokens: int) -> float:
    """The guidance scale at the `position`-th of `num_tokens` sampled tokens."""
    if schedule == "linear":
        return 1.0 + (guidance_scale - 1.0) * (position + 1) / num_tokens
    if schedule == "linear_decreasing":  # the mirror image: guide the top rows (the image's kind) hardest
        return 1.0 + (guidance_scale - 1.0) * (num_tokens - position) / num_tokens
    return guidance_scale


class VQGenPipeline(TokenImagePipeline):
    r"""
    Sample images by drawing codebook ids from an autoregressive GPT-2 prior (KV-cached, only codes are ever
    emitted) and decoding them with the VQ-VAE tokenizer.

    Args:
        vqvae ([`VQVAEModel`]): The tokenizer.
        prior ([`~transformers.GPT2LMHeadModel`]): Its config records the token layout (see `hf_vqgen.vocabulary`).

    Example:

    ```py
    >>> from hf_vqgen import VQGenPipeline

    >>> pipeline = VQGenPipeline.from_pretrained("path/to/pipeline")  # or a Hub repo id
    >>> images = pipeline(batch_size=8, class_labels=[0] * 8, guidance_scale=2.0).images
    ```
    """

    model_cpu_offload_seq = "prior->vqvae"
    has_exact_likelihood = True
    kind_label = "AR"
    builtin_sampling_defaults = {
        "guidance_scale": 1.0,
        "guidance_schedule": "constant",
        "temperature": 1.0,
        "top_k": None,
        "top_p": None,
    }

    def __init__(self, vqvae: VQVAEModel, prior: GPT2LMHeadModel):
        super().__init__()
        layout = TokenLayout.from_config(prior.config)
        layout.check_tokenizer(vqvae)
        check_tokenizer_identity(prior.config, vqvae)
        self.register_modules(vqvae=vqvae, prior=prior)

    @property
    def prior_model(self) -> GPT2LMHeadModel:
        return self.prior

    def completion_inputs(self, image, num_prefix_rows: int) -> dict:
        return {"image": image, "num_prefix_rows": num_prefix_rows}  # the rest of the grid, in raster order

    @property
    def layout(self) -> TokenLayout:
        """The token layout the prior's config records (built anew on each access: read it once per call)."""
        return TokenLayout.from_config(self.prior.config)

    def compile_prior(self, **compile_kwargs) -> None:
        """Sample through `torch.compile(self.prior, **compile_kwargs)` from now on, with the static KV cache (so
        every step has the same shapes). The compiled module is kept beside the component, never saved; the first
        call compiles (seconds to minutes). Measured on CPU in `benchmarks/results/ar_static_cache.json`."""
        self._compiled_prior = torch.compile(self.prior, **compile_kwargs)

    # inputs

    def check_inputs(self, layout, guidance_scale, temperature, top_k, top_p, generator):
        self.check_sampling_inputs(layout, guidance_scale, temperature, top_k, generator)
        self.check_top_p(top_p)

    @staticmethod
    def check_top_p(top_p) -> None:
        if top_p is not None and not (isinstance(top_p, numbers.Real) and 0 < top_p <= 1):
            raise ValueError(f"`top_p` must be in (0, 1], got {top_p}.")

    def check_sampling_values(self, layout, **values) -> None:
        super().check_sampling_values(layout, **values)
        self.check_top_p(values.get("top_p"))
        self.check_guidance_schedule(values.get("guidance_schedule"))

    @staticmethod
    def check_guidance_schedule(schedule) -> None:
        if schedule not in GUIDANCE_SCHEDULES:
            raise ValueError(f"`guidance_schedule` must be one of {GUIDANCE_SCHEDULES}, got {schedule!r}.")

    def prepare_prefix(self, layout, batch_size, prefix_token_ids, image, num_prefix_rows) -> torch.Tensor | None:
        """The given first codes (B, L) in raster order, from `prefix_token_ids` or from encoding `image`."""
        if image is None and num_prefix_rows is not None:
            raise ValueError("`num_prefix_rows` needs the `image` whose first token rows it keeps.")
        if image is not None:
            if prefix_token_ids is not None:
                raise ValueError("Pass either `prefix_token_ids` or `image` + `num_prefix_rows`, not both.")
            if (
                not isinstance(num_prefix_rows, numbers.Integral)
                or isinstance(num_prefix_rows, bool)
                or not 0 <= num_prefix_rows <= layout.grid_height
            ):
                raise ValueError(
                    f"`num_prefix_rows` must be an integer in [0, {layout.grid_height}], got {num_prefix_rows!r}."
                )
            token_ids = self.vqvae.encode_to_ids(self.image_to_tensor(image))
            prefix_token_ids = token_ids[:, :num_prefix_rows].flatten(1)
        if prefix_token_ids is None:
            return None
        prefix = torch.as_tensor(prefix_token_ids, device=self.device)
        if prefix.dtype.is_floating_point or prefix.dtype.is_complex or prefix.dtype == torch.bool:
            raise ValueError(f"`prefix_token_ids` must hold integer codebook ids, got {prefix.dtype}.")
        if prefix.ndim == 3 and prefix.shape[2] != layout.grid_width:
            raise ValueError(
                f"`prefix_token_ids` as token rows must be (batch_size, rows, {layout.grid_width}), got "
                f"{tuple(prefix.shape)}."
            )
        prefix = (prefix.flatten(1) if prefix.ndim == 3 else prefix).long()
        if prefix.ndim != 2 or prefix.shape[0] != batch_size:
            raise ValueError(f"`prefix_token_ids` must be (batch_size={batch_size}, L), got {tuple(prefix.shape)}.")
        if prefix.shape[1] > layout.num_tokens:
            raise ValueError(f"The prefix has {prefix.shape[1]} codes but a grid holds only {layout.num_tokens}.")
        if prefix.numel() and (prefix.min() < 0 or prefix.max() >= layout.num_codes):
            raise ValueError(f"`prefix_token_ids` must be codebook ids in [0, {layout.num_codes - 1}].")
        return prefix

    # sampling

    @torch.no_grad()
    def __call__(
        self,
        batch_size: int | None = None,
        class_labels: list[int] | torch.Tensor | None = None,
        guidance_scale: float | None = None,
        temperature: float | None = None,
        top_k: int | None = None,
        top_p: float | None = None,
        generator: torch.Generator | None = None,
        prefix_token_ids: torch.Tensor | None = None,
        image: PIL.Image.Image | list[PIL.Image.Image] | torch.Tensor | None = None,
        num_prefix_rows: int | None = None,
        output_type: str = "pil",
        return_dict: bool = True,
        static_cache: bool = False,
        guidance_schedule: str | None = None,
    ) -> VQGenPipelineOutput | tuple:
        r"""
        Args:
            batch_size (`int`, *optional*): Number of images; defaults to the number of `image`s, else 1.
            class_labels (`list[int]` or `torch.LongTensor` of shape `(batch_size,)`, *optional*): Classes for a
                class-conditional prior; `None` samples from the null class (unconditionally).
            guidance_scale (`float`, *optional*): Classifier-free guidance on the logits,
                `uncond + s * (cond - uncond)`; 1 disables it (one forward per token instead of two).
            temperature (`float`, *optional*): Softmax temperature; 0 samples greedily.
            top_k (`int`, *optional*): Sample among the k most likely codes only (0: all codes).
            top_p (`float`, *optional*): Nucleus sampling (1: all codes).
            guidance_schedule (`str`, *optional*): `"constant"` (`guidance_scale` at every token), `"linear"` (from
                1 at the first sampled token to `guidance_scale` at the last: free early layout, guided detail) or
                `"linear_decreasing"` (from `guidance_scale` at the first token down to 1: guided layout, free detail).

            The four settings above default to the pipeline's `sampling_defaults` (saved with it by
            `set_sampling_defaults`; else guidance 1, temperature 1, no top-k / top-p).
            generator (`torch.Generator`, *optional*): Makes sampling reproducible.
            prefix_token_ids (`torch.LongTensor` of shape `(batch_size, L)` or `(batch_size, rows, w)`, *optional*):
                Given first codes in raster order, kept exactly; the rest of the grid is completed.
            image (PIL image(s) or `torch.Tensor` `(B, C, H, W)` in [-1, 1], *optional*): Complete this image
                from its first `num_prefix_rows` token rows.
            num_prefix_rows (`int`, *optional*): Rows of `image`'s tokens to keep.
            output_type (`str`, *optional*, defaults to `"pil"`): `"pil"`, `"np"`, `"pt"` or `"token_ids"`.
            return_dict (`bool`, *optional*, defaults to `True`): Return a [`VQGenPipelineOutput`] or a tuple.
            static_cache (`bool`, *optional*, defaults to `False`): Preallocate the KV cache to the whole sequence
                (fixed shapes at every step; the same codes). Always used after `compile_prior()`.
        """
        layout = self.layout
        settings = self.call_settings(
            layout, class_labels, guidance_scale=guidance_scale, guidance_schedule=guidance_schedule,
            temperature=temperature, top_k=top_k, top_p=top_p,
        )  # fmt: skip
        guidance_scale, guidance_schedule, temperature, top_k, top_p = settings.values()
        self.check_guidance_schedule(guidance_schedule)
        batch_size = self.resolve_batch_size(batch_size, image)
        batch_size = self.check_batch_and_output(batch_size, output_type)
        class_labels = self.prepare_class_labels(class_labels, batch_size, layout)
        self.check_inputs(layout, guidance_scale, temperature, top_k, top_p, generator)
        prefix = self.prepare_prefix(layout, batch_size, prefix_token_ids, image, num_prefix_rows)

        # 1. prompt [BOS, class, prefix] (and its null-class copy for guidance)
        guided = guidance_scale != 1.0
        input_ids = build_input_ids(layout, batch_size, class_labels, prefix, guided).to(self.device)
        num_new = layout.num_tokens - (0 if prefix is None else prefix.shape[1])
        code_mask = layout.code_mask(self.device)

        position = [0]  # tokens sampled so far, for the guidance schedule

        def step(logits: torch.Tensor) -> torch.Tensor:
            scale = scheduled_guidance(guidance_scale, guidance_schedule, position[0], num_new)
            position[0] += 1
            if guided and scale == 1.0:  # an unguided step of a guided run: the conditional rows only
                logits = logits.chunk(2)[0]
            return next_tokens(logits, code_mask, scale, temperature, top_k, top_p, generator)

        # 2. sample the remaining codes with the KV cache
        compiled = getattr(self, "_compiled_prior", None)
        prior, static_cache = (self.prior, static_cache) if compiled is None else (compiled, True)
        with self.progress_bar(total=num_new) as progress:
            new = sample_with_cache(prior, input_ids, num_new, step, progress, static_cache=static_cache)
        codes = new if prefix is None else torch.cat([prefix, new], dim=1)
        token_ids = codes.view(batch_size, layout.grid_height, layout.grid_width)

        # 3. decode
        images = self.decode(token_ids, output_type)
        self.maybe_free_model_hooks()
        if not return_dict:
            return images, token_ids
        return VQGenPipelineOutput(images=images, token_ids=token_ids)
