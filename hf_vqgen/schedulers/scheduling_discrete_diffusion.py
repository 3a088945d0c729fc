"""`DiscreteDiffusionScheduler`: corruption and reverse steps for diffusion over codebook ids.

Forward process. At noise level `t` in `0 .. T-1` (`T = num_train_timesteps`) every code of a grid is corrupted
independently with probability `gamma(t)`, where, with `s = (t + 1) / T`,

    linear:  gamma = s
    cosine:  gamma = cos(pi / 2 * (1 - s))        (MaskGIT's mask schedule cos(pi r / 2) with r = 1 - s)

and a corrupted code becomes

    uniform           a uniformly random code (the original recipe; D3PM-uniform, Austin et al. 2021)
    absorbing         the MASK token (MaskGIT, Chang et al. 2022; D3PM-absorbing)
    mask_and_replace  the MASK token, or with probability `replace_fraction` a uniformly random code
                      (VQ-Diffusion's mask-and-replace, Gu et al. 2022, with its two rates tied to one schedule)

Reverse process, two samplers (`sampler`):

    resample     the original recipe: every step draws every position from the denoiser's prediction
                 p(x_0 | x_t) at `temperature` (top-k optional); the pipeline stops early once no token changes.
    confidence   MaskGIT's parallel decoding (needs a MASK token): draw a candidate for every masked position,
                 score it by its log-probability plus Gumbel noise scaled by `choice_temperature * (1 - progress)`,
                 keep the highest-scoring ones and re-mask the `floor(m * gamma(t_next) / gamma(t))` lowest of the
                 m masked ones (m ~ gamma(t) * n on the schedule; fewer when inpainting), so that the grid
                 has no MASK left after the last step. Known (unmasked) tokens are never changed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.schedulers.scheduling_utils import SchedulerMixin
from diffusers.utils import BaseOutput

from ..sampling import draw_tokens
from ..utils import seeded_rand, seeded_randint


CORRUPTIONS = ("uniform", "absorbing", "mask_and_replace")
SCHEDULES = ("linear", "cosine")
SAMPLERS = ("resample", "confidence")


@dataclass
class DiscreteDiffusionSchedulerOutput(BaseOutput):
    """
    Args:
        prev_sample (`torch.LongTensor` of shape `(batch_size, num_tokens)`): The grid for the next (less noisy)
            step; may contain the MASK token with the confidence sampler.
        pred_original_sample (`torch.LongTensor` of shape `(batch_size, num_tokens)`): The denoiser's current
            guess of the clean grid (every position a code), e.g. to preview the reverse process.
    """

    prev_sample: torch.LongTensor
    pred_original_sample: torch.LongTensor


def gumbel_noise(shape, generator, device) -> torch.Tensor:
    uniform = seeded_rand(shape, generator, device).clamp_(1e-20, 1.0)
    return -torch.log((-torch.log(uniform)).clamp_(min=1e-20))


class DiscreteDiffusionScheduler(SchedulerMixin, ConfigMixin):
    r"""
    Discrete diffusion over VQ-VAE codebook ids (see the module docstring for the math and references).

    Args:
        num_vq_embeddings (`int`): Codebook size K; codes are the ids `0 .. K-1`.
        mask_token_id (`int`, *optional*): Id of the MASK token (required by `absorbing`, `mask_and_replace` and the
            confidence sampler).
        num_train_timesteps (`int`, defaults to 100): Noise levels T.
        corruption (`str`, defaults to `"absorbing"`): `"uniform"`, `"absorbing"` or `"mask_and_replace"`.
        schedule (`str`, defaults to `"cosine"`): `"linear"` or `"cosine"`.
        sampler (`str`, *optional*): `"resample"` (the original recipe) or `"confidence"` (MaskGIT); defaults to
            `"resample"` for uniform corruption and `"confidence"` otherwise.
        replace_fraction (`float`, defaults to 0.1): Share of corrupted codes that `mask_and_replace` replaces by a
            random code instead of MASK.
        choice_temperature (`float`, defaults to 4.5): Gumbel noise on the confidence scores (MaskGIT), annealed to 0.
    """

    order = 1

    @register_to_config
    def __init__(
        self,
        num_vq_embeddings: int,
        mask_token_id: int | None = None,
        num_train_timesteps: int = 100,
        corruption: str = "absorbing",
        schedule: str = "cosine",
        sampler: str | None = None,
        replace_fraction: float = 0.1,
        choice_temperature: float = 4.5,
    ):
        if num_vq_embeddings < 1:
            raise ValueError(f"`num_vq_embeddings` must be >= 1, got {num_vq_embeddings}.")
        if num_train_timesteps < 1:
            raise ValueError(f"`num_train_timesteps` must be >= 1, got {num_train_timesteps}.")
        if corruption not in CORRUPTIONS:
            raise ValueError(f"`corruption` must be one of {CORRUPTIONS}, got {corruption!r}.")
        if schedule not in SCHEDULES:
            raise ValueError(f"`schedule` must be one of {SCHEDULES}, got {schedule!r}.")
        sampler = sampler or ("resample" if corruption == "uniform" else "confidence")
        if sampler not in SAMPLERS:
            raise ValueError(f"`sampler` must be one of {SAMPLERS}, got {sampler!r}.")
        needs_mask = corruption != "uniform" or sampler == "confidence"
        if needs_mask and mask_token_id is None:
            raise ValueError(f"corruption={corruption!r} with sampler={sampler!r} needs a `mask_token_id`.")
        if mask_token_id is not None and mask_token_id < num_vq_embeddings:
            raise ValueError(f"`mask_token_id` {mask_token_id} collides with the codes 0..{num_vq_embeddings - 1}.")
        if not 0 <= replace_fraction <= 1:
            raise ValueError(f"`replace_fraction` must be in [0, 1], got {replace_fraction}.")
        self.register_to_config(sampler=sampler)
        self.num_inference_steps = None
        self.timesteps = torch.arange(num_train_timesteps - 1, -1, -1)

    # schedule

    def corruption_rate(self, timesteps: torch.Tensor | int) -> torch.Tensor:
        """gamma(t): the probability that a code is corrupted at noise level t (0-based, in [0, T-1])."""
        timesteps = torch.as_tensor(timesteps)
        s = (timesteps.double() + 1) / self.config.num_train_timesteps
        if self.config.schedule == "linear":
            return s.float()
        return torch.cos(math.pi / 2 * (1 - s)).clamp(0, 1).float()

    def set_timesteps(self, num_inference_steps: int, device: str | torch.device | None = None) -> None:
        """Evenly spaced noise levels from T-1 down to 0 (`num_inference_steps` of them)."""
        if not isinstance(num_inference_steps, int) or num_inference_steps < 1:
            raise ValueError(f"`num_inference_steps` must be a positive integer, got {num_inference_steps!r}.")
        if num_inference_steps > self.config.num_train_timesteps:
            raise ValueError(
                f"`num_inference_steps` ({num_inference_steps}) cannot exceed num_train_timesteps "
                f"({self.config.num_train_timesteps})."
            )
        steps = num_inference_steps
        timesteps = torch.linspace(self.config.num_train_timesteps - 1, 0, steps).round().long()
        self.timesteps = timesteps.to(device)
        self.num_inference_steps = steps

    def initial_sample(self, shape, generator=None, device=None) -> torch.LongTensor:
        """The grid sampling starts from: all MASK for the confidence sampler (it fills masked positions only), else
        the forward process's own limit (every code corrupted): uniformly random codes, all MASK, or for
        `mask_and_replace` MASK with a `replace_fraction` of random codes."""
        if self.config.corruption == "uniform" and self.config.sampler == "resample":
            return seeded_randint(self.config.num_vq_embeddings, shape, generator, device)
        if self.config.corruption == "mask_and_replace" and self.config.sampler == "resample":
            any_codes = torch.zeros(shape, dtype=torch.long, device=device)  # every one of them is corrupted
            return self.corrupt(any_codes, torch.tensor(1.0), generator)
        return torch.full(shape, self.config.mask_token_id, dtype=torch.long, device=device)

    # training

    def add_noise(
        self, token_ids: torch.LongTensor, timesteps: torch.Tensor, generator: torch.Generator | None = None
    ) -> torch.LongTensor:
        """Corrupt `token_ids` (B, N) at noise levels `timesteps` (B,) as the forward process says."""
        if token_ids.ndim != 2:
            raise ValueError(f"`token_ids` must be (batch, tokens), got shape {tuple(token_ids.shape)}.")
        timesteps = torch.as_tensor(timesteps, device=token_ids.device).view(-1)
        if timesteps.shape[0] != token_ids.shape[0]:
            raise ValueError(f"`timesteps` needs one entry per row ({token_ids.shape[0]}), got {timesteps.shape[0]}.")
        if timesteps.min() < 0 or timesteps.max() >= self.config.num_train_timesteps:
            raise ValueError(f"`timesteps` must lie in [0, {self.config.num_train_timesteps - 1}].")
        rate = self.corruption_rate(timesteps).to(token_ids.device).view(-1, 1)
        return self.corrupt(token_ids, rate, generator)

    def corrupt(self, token_ids: torch.LongTensor, rate: torch.Tensor, generator=None) -> torch.LongTensor:
        """Corrupt each code independently with probability `rate` (broadcast to `token_ids`)."""
        device = token_ids.device
        corrupted = seeded_rand(token_ids.shape, generator, device) < rate
        random_codes = seeded_randint(self.config.num_vq_embeddings, token_ids.shape, generator, device)
        if self.config.corruption == "uniform":
            return torch.where(corrupted, random_codes, token_ids)
        replacement = torch.full_like(token_ids, self.config.mask_token_id)
        if self.config.corruption == "mask_and_replace":
            replaced = seeded_rand(token_ids.shape, generator, device) < self.config.replace_fraction
            replacement = torch.where(replaced, random_codes, replacement)
        return torch.where(corrupted, replacement, token_ids)

    # sampling

    def step(
        self,
        logits: torch.Tensor,
        timestep: int | torch.Tensor,
        token_ids: torch.LongTensor,
        generator: torch.Generator | None = None,
        temperature: float = 1.0,
        top_k: int | None = None,
        return_dict: bool = True,
    ) -> DiscreteDiffusionSchedulerOutput | tuple:
        """
        One reverse step.

        Args:
            logits (`torch.Tensor` of shape `(batch_size, num_tokens, K)`): The denoiser's logits over the codes
                (columns beyond K, if any, are ignored), i.e. its prediction of the clean grid.
            timestep (`int`): The current noise level, an entry of `self.timesteps`.
            token_ids (`torch.LongTensor` of shape `(batch_size, num_tokens)`): The current grid.
            temperature (`float`): Softmax temperature for drawing codes; 0 takes the argmax.
            top_k (`int`, *optional*): Draw among the k most likely codes only.
        """
        if self.num_inference_steps is None:
            raise ValueError("Call `set_timesteps(num_inference_steps)` before `step`.")
        logits = logits[..., : self.config.num_vq_embeddings].float()
        candidates = draw_tokens(logits, temperature, top_k, None, generator)
        if self.config.sampler == "resample":
            prev_sample = candidates
        else:
            prev_sample = self._confidence_step(logits, candidates, timestep, token_ids, generator)
        if not return_dict:
            return prev_sample, candidates
        return DiscreteDiffusionSchedulerOutput(prev_sample=prev_sample, pred_original_sample=candidates)

    def _confidence_step(self, logits, candidates, timestep, token_ids, generator) -> torch.LongTensor:
        mask_id = self.config.mask_token_id
        masked = token_ids == mask_id
        position = int((self.timesteps == int(timestep)).nonzero()[0, 0])  # index of this step
        is_last = position + 1 >= len(self.timesteps)
        # masked now ~ gamma(t) * maskable, so gamma(t_next) / gamma(t) of them stay masked (this also holds when
        # inpainting, where only part of the grid is maskable); at least one is revealed per step
        rate = float(self.corruption_rate(timestep))
        next_rate = 0.0 if is_last else float(self.corruption_rate(self.timesteps[position + 1]))
        num_masked = masked.sum(dim=1)
        keep_masked = torch.minimum(torch.floor(num_masked * (next_rate / rate)).long(), num_masked - 1).clamp(min=0)
        # score the candidates; known tokens can never be re-masked
        log_probs = logits.log_softmax(dim=-1).gather(-1, candidates.unsqueeze(-1)).squeeze(-1)
        progress = (position + 1) / len(self.timesteps)
        noise = gumbel_noise(log_probs.shape, generator, log_probs.device)
        confidence = log_probs + self.config.choice_temperature * (1 - progress) * noise
        confidence = confidence.masked_fill(~masked, float("inf"))
        filled = torch.where(masked, candidates, token_ids)
        ranks = confidence.argsort(dim=1).argsort(dim=1)  # 0 = least confident
        remask = ranks < keep_masked.view(-1, 1)
        return filled.masked_fill(remask, mask_id)

    def __len__(self) -> int:
        return self.config.num_train_timesteps
