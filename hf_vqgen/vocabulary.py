"""The one owner of the token layout shared by both priors.

    ids 0 .. K-1                 codebook ids of the tokenizer (the only ids a prior ever emits)
    K                            BOS
    K+1 .. K+C                   one token per class (C = num_classes, may be 0)
    K+C+1                        the null class, for classifier-free guidance (only when C > 0)
    next                         MASK (discrete diffusion with absorbing noise; only when use_mask_token)
    next N                       noise-level tokens (discrete diffusion timestep conditioning; N = num_noise_levels)

With `class_factors` (e.g. (10, 3): category x style, C = 30) a class is given as one token per factor instead of one
token over the combinations: the class ids K+1 .. are then f_1 tokens and a null for the first factor, f_2 tokens and
a null for the second, and so on; class c = ((i_1 * f_2 + i_2) * f_3 + i_3) ... (the last factor fastest, as
`hf_vqgen.data.combine_label_columns` numbers combined labels), and the null class C is every factor's null.

An autoregressive sequence is [BOS, class?, t_1 ... t_hw] with the codes in raster order; a discrete-diffusion
denoiser reads [noise level?, class?, t_1 ... t_hw] (codes possibly corrupted or MASK); "class" is one position, or one
per factor. The layout is stored in the prior's `config.json` (extra attributes of its transformers config), so a
saved prior describes itself.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
from transformers import BertConfig, GPT2Config, PretrainedConfig


LAYOUT_KEYS = ("num_codes", "num_classes", "grid_height", "grid_width", "use_mask_token", "num_noise_levels")
OPTIONAL_LAYOUT_KEYS = {"class_factors": ()}  # priors saved before the key existed have the default


# the label that takes a position out of the loss (PyTorch's and transformers' cross-entropy default)
IGNORE_INDEX = -100


@dataclass(frozen=True)
class TokenLayout:
    num_codes: int
    grid_height: int
    grid_width: int
    num_classes: int = 0
    use_mask_token: bool = False
    num_noise_levels: int = 0
    class_factors: tuple[int, ...] = ()  # one class token per factor instead of one over the combinations

    def __post_init__(self):
        for name in ("num_codes", "grid_height", "grid_width"):
            if getattr(self, name) < 1:
                raise ValueError(f"`{name}` must be >= 1, got {getattr(self, name)}.")
        if self.num_classes < 0 or self.num_noise_levels < 0:
            raise ValueError("`num_classes` and `num_noise_levels` must be >= 0.")
        object.__setattr__(self, "class_factors", tuple(int(f) for f in self.class_factors))  # a JSON list too
        if self.class_factors and (
            len(self.class_factors) < 2
            or min(self.class_factors) < 1
            or math.prod(self.class_factors) != self.num_classes
        ):
            raise ValueError(
                f"`class_factors` must be >= 2 positive sizes whose product is num_classes={self.num_classes}, "
                f"got {list(self.class_factors)}."
            )

    # ids

    @property
    def bos_token_id(self) -> int:
        return self.num_codes

    @property
    def _factors(self) -> tuple[int, ...]:
        """The class factors, one (all classes) when the class is a single token."""
        return self.class_factors or ((self.num_classes,) if self.num_classes else ())

    @property
    def num_class_positions(self) -> int:
        """Class tokens in a sequence: 0 (unconditional), 1, or one per factor."""
        return len(self._factors)

    @property
    def _num_class_ids(self) -> int:
        return sum(size + 1 for size in self._factors)  # each factor's tokens and its null

    @property
    def null_class_token_id(self) -> int | None:
        """The null token of the (first) class position; None for an unconditional layout."""
        return self.num_codes + 1 + self._factors[0] if self.num_classes else None

    @property
    def mask_token_id(self) -> int | None:
        if not self.use_mask_token:
            return None
        return self.num_codes + 1 + self._num_class_ids

    @property
    def first_noise_level_token_id(self) -> int:
        return self.num_codes + 1 + self._num_class_ids + int(self.use_mask_token)

    @property
    def vocab_size(self) -> int:
        return self.first_noise_level_token_id + self.num_noise_levels

    @property
    def num_tokens(self) -> int:
        """Codes per image, h * w."""
        return self.grid_height * self.grid_width

    @property
    def prefix_length(self) -> int:
        """Tokens before the codes in an autoregressive sequence: BOS, and the class token(s) if conditional."""
        return 1 + self.num_class_positions

    @property
    def sequence_length(self) -> int:
        return self.prefix_length + self.num_tokens

    @property
    def denoiser_prefix_length(self) -> int:
        """Tokens before the codes in a denoiser's input: the noise level (if any levels) and the class token(s)."""
        return int(self.num_noise_levels > 0) + self.num_class_positions

    def check_class_labels(self, class_labels: torch.Tensor | None, allow_null: bool = False) -> None:
        if class_labels is None:
            return
        if self.num_classes == 0:
            raise ValueError("`class_labels` were given, but this prior is unconditional (num_classes=0).")
        upper = self.num_classes if allow_null else self.num_classes - 1
        if class_labels.numel() and (class_labels.min() < 0 or class_labels.max() > upper):
            null = f" ({self.num_classes} = the null class)" if allow_null else ""
            raise ValueError(f"`class_labels` must lie in [0, {upper}]{null}, got {class_labels.tolist()}.")

    def class_token_ids(self, class_labels: torch.Tensor) -> torch.Tensor:
        """Class labels (B,) in [0, C) -> their token ids (B, num_class_positions); the label C means the null class
        (every factor's null)."""
        self.check_class_labels(class_labels, allow_null=True)
        labels, null = class_labels.long(), class_labels.long() == self.num_classes
        columns, first_id = [], self.num_codes + 1
        for position, size in enumerate(self._factors):
            later = math.prod(self._factors[position + 1 :])
            index = torch.where(null, size, (labels // later) % size)  # `size`: this factor's null
            columns.append(index + first_id)
            first_id += size + 1
        return torch.stack(columns, dim=1)

    def code_mask(self, device: torch.device | str | None = None) -> torch.Tensor:
        """(vocab_size,) bool, True for codebook ids: logits of every other id are masked out when sampling."""
        mask = torch.zeros(self.vocab_size, dtype=torch.bool, device=device)
        mask[: self.num_codes] = True
        return mask

    def class_column(self, batch_size: int, class_labels: torch.Tensor | None, device=None) -> torch.Tensor:
        """(B, num_class_positions) class tokens of a conditional layout; `class_labels=None` means the null class for
        every row."""
        if class_labels is None:
            class_labels = torch.full((batch_size,), self.num_classes, dtype=torch.long, device=device)
        return self.class_token_ids(class_labels).to(device)

    def prompt(self, batch_size: int, class_labels: torch.Tensor | None, device=None) -> torch.Tensor:
        """(B, prefix_length) [BOS, class?] for autoregressive sampling or training."""
        bos = torch.full((batch_size, 1), self.bos_token_id, dtype=torch.long, device=device)
        if self.num_classes == 0:
            return bos
        return torch.cat([bos, self.class_column(batch_size, class_labels, device)], dim=1)

    def check_token_rows(self, token_ids: torch.Tensor) -> None:
        """Raise a `ValueError` unless `token_ids` (B, h*w) are rows of codebook ids of this layout's grid."""
        if token_ids.ndim != 2 or token_ids.shape[1] != self.num_tokens:
            raise ValueError(
                f"Token rows must be (batch, {self.num_tokens}) for a {self.grid_height}x{self.grid_width} grid, "
                f"got shape {tuple(token_ids.shape)}."
            )
        if token_ids.numel() and (token_ids.min() < 0 or token_ids.max() >= self.num_codes):
            raise ValueError(f"`token_ids` outside the codebook [0, {self.num_codes - 1}]: wrong tokenizer?")

    def autoregressive_sequence(
        self, token_ids: torch.Tensor, class_labels: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Code rows (B, h*w) -> GPT-2 `input_ids` [BOS, class?, codes] and `labels` with -100 on the prefix, so that
        the loss covers the code positions only (for training and for held-out likelihoods)."""
        self.check_token_rows(token_ids)
        prompt = self.prompt(token_ids.shape[0], class_labels, device=token_ids.device)
        input_ids = torch.cat([prompt, token_ids.long()], dim=1)
        labels = input_ids.clone()
        labels[:, : self.prefix_length] = IGNORE_INDEX
        return input_ids, labels

    def denoiser_input(
        self, token_ids: torch.Tensor, noise_levels: torch.Tensor | None, class_labels: torch.Tensor | None
    ) -> torch.Tensor:
        """(B, N) grid (codes or MASK) -> (B, prefix + N) denoiser input [noise level?, class?, grid]. Class labels
        `None` on a conditional layout means the null class; `noise_levels` are 0-based scheduler timesteps."""
        batch_size, device = token_ids.shape[0], token_ids.device
        parts = []
        if self.num_noise_levels:
            if noise_levels is None:
                raise ValueError("This denoiser is conditioned on the noise level: pass the timesteps.")
            levels = torch.as_tensor(noise_levels, device=device).long().expand(batch_size)
            parts.append((levels + self.first_noise_level_token_id).view(-1, 1))
        if self.num_classes:
            parts.append(self.class_column(batch_size, class_labels, device))
        return torch.cat([*parts, token_ids.long()], dim=1)

    # configs

    def to_dict(self) -> dict:
        record = asdict(self)
        if not self.class_factors:  # one class token: configs stay as they were before factors existed
            del record["class_factors"]
        return record

    @classmethod
    def from_config(cls, config: PretrainedConfig) -> TokenLayout:
        """The layout a prior's config records (see `gpt2_config`)."""
        missing = [key for key in LAYOUT_KEYS if not hasattr(config, key)]
        if missing:
            raise ValueError(f"The prior's config lacks the hf_vqgen token layout ({', '.join(missing)}).")
        optional = {key: getattr(config, key, default) for key, default in OPTIONAL_LAYOUT_KEYS.items()}
        layout = cls(**{key: getattr(config, key) for key in LAYOUT_KEYS}, **optional)
        if config.vocab_size != layout.vocab_size:
            raise ValueError(f"The prior's vocab_size {config.vocab_size} != {layout.vocab_size} of its token layout.")
        return layout

    @classmethod
    def for_tokenizer(cls, vqvae, num_classes: int = 0, **kwargs) -> TokenLayout:
        height, width = vqvae.latent_shape
        return cls(vqvae.config.num_vq_embeddings, height, width, num_classes, **kwargs)

    def check_tokenizer(self, vqvae) -> None:
        """Raise a `ValueError` unless `vqvae` produces this layout's codes and grid."""
        if vqvae.config.num_vq_embeddings != self.num_codes:
            raise ValueError(
                f"The prior models {self.num_codes} codes but the tokenizer's codebook has "
                f"{vqvae.config.num_vq_embeddings} (num_vq_embeddings)."
            )
        if tuple(vqvae.latent_shape) != (self.grid_height, self.grid_width):
            raise ValueError(
                f"The prior models {self.grid_height}x{self.grid_width} token grids but the tokenizer makes "
                f"{vqvae.latent_shape[0]}x{vqvae.latent_shape[1]}."
            )

    def gpt2_config(self, n_layer: int = 4, n_head: int = 4, n_embd: int = 128, dropout: float = 0.1) -> GPT2Config:
        """A `GPT2Config` for this layout (BOS set, no EOS: a sequence always has exactly h * w codes)."""
        return GPT2Config(
            vocab_size=self.vocab_size,
            n_positions=self.sequence_length,
            n_embd=n_embd,
            n_layer=n_layer,
            n_head=n_head,
            resid_pdrop=dropout,
            embd_pdrop=dropout,
            attn_pdrop=dropout,
            bos_token_id=self.bos_token_id,
            eos_token_id=None,
            pad_token_id=self.bos_token_id,
            loss_type="ForCausalLM",
            attn_implementation="sdpa",  # PyTorch's fused attention (flash / memory-efficient kernels on GPUs)
            **self.to_dict(),
        )

    def bert_config(
        self,
        num_hidden_layers: int = 4,
        num_attention_heads: int = 4,
        hidden_size: int = 128,
        dropout: float = 0.1,
    ) -> BertConfig:
        """A `BertConfig` for a bidirectional denoiser over [noise level?, class?, grid] (positions fit exactly)."""
        return BertConfig(
            vocab_size=self.vocab_size,
            hidden_size=hidden_size,
            num_hidden_layers=num_hidden_layers,
            num_attention_heads=num_attention_heads,
            intermediate_size=4 * hidden_size,
            hidden_act="gelu",
            hidden_dropout_prob=dropout,
            attention_probs_dropout_prob=dropout,
            max_position_embeddings=self.denoiser_prefix_length + self.num_tokens,
            type_vocab_size=1,
            pad_token_id=self.bos_token_id,  # unused by the denoiser; BERT freezes the pad embedding at zero
            tie_word_embeddings=True,
            attn_implementation="sdpa",
            **self.to_dict(),
        )
