"""`TokenImagePipeline`: what both priors' pipelines share — their output class, Hub-id resolution, input checks,
image encoding and decoding token grids to the requested output type."""

from __future__ import annotations

import contextvars
import json
import logging
import math
import numbers
import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import PIL.Image
import torch
from diffusers import DiffusionPipeline
from diffusers.image_processor import VaeImageProcessor
from diffusers.pipelines.pipeline_utils import ImagePipelineOutput
from safetensors.torch import load_file

from ..data.pixels import PixelTransform
from ..publishing import push_folder_to_hub
from ..utils import check_weights_folder, portable_path, state_dict_digest
from .hub_resolution import resolve_pretrained_path


logger = logging.getLogger(__name__)
OUTPUT_TYPES = ("pil", "np", "pt", "token_ids")
# the prior's config attribute naming the tokenizer it was trained with (`hf_vqgen.utils.state_dict_digest`)
TOKENIZER_HASH_KEY = "tokenizer_weights_sha256"
# what travels with a pipeline to the Hub besides its components
CARD_FILES = (
    "README.md",
    "model_card.json",
    "samples.png",
    "reverse_process.gif",
    "reverse_process.png",
    "eval_results.json",
)


def read_model_index(folder: str | os.PathLike, name_or_path) -> dict:
    """The `model_index.json` of a pipeline folder (`name_or_path` is what the user asked for, for the error)."""
    index = Path(folder) / "model_index.json"
    if not index.is_file():
        raise ValueError(f"{name_or_path} is not a saved pipeline: it has no model_index.json.")
    try:
        content = json.loads(index.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ValueError(f"{index} is not valid JSON ({error}): the pipeline folder is damaged; re-save it.") from None
    if not isinstance(content, dict) or not isinstance(content.get("_class_name"), str):
        raise ValueError(f"{index} names no pipeline class (`_class_name`): the pipeline folder is damaged.")
    return content


@dataclass
class TokenImagePipelineOutput(ImagePipelineOutput):
    """
    What every token pipeline returns.

    Args:
        images (`list[PIL.Image.Image]`, `np.ndarray` (B, H, W, C) or `torch.Tensor` (B, C, H, W), in [0, 1]):
            Decoded samples; `None` for `output_type="token_ids"`.
        token_ids (`torch.LongTensor` of shape `(batch_size, h, w)`): The sampled codebook ids.
    """

    token_ids: torch.LongTensor | None = None


@dataclass
class VQGenPipelineOutput(TokenImagePipelineOutput):
    """Output of [`VQGenPipeline`]: `images` and `token_ids` as in [`TokenImagePipelineOutput`]."""


# set while `from_pretrained` builds a pipeline whose tokenizer files it has already checked (any load dtype)
_IDENTITY_CHECKED_ON_DISK: contextvars.ContextVar[bool] = contextvars.ContextVar("identity_checked", default=False)


def _identity_error(recorded: str, actual: str) -> ValueError:
    return ValueError(
        f"The prior was trained on the tokens of another tokenizer (its config records {TOKENIZER_HASH_KEY}="
        f"{recorded}; this tokenizer's weights hash to {actual}): pair it with the tokenizer it was trained on."
    )


def check_tokenizer_identity(prior_config, vqvae) -> None:
    """Raise a `ValueError` unless `vqvae` is the tokenizer whose tokens the prior was trained on: its weights hash,
    recorded in the prior's config at training time (`tokenizer_weights_sha256`), must match. Same codebook size and
    grid are not enough: another tokenizer's code 17 means another patch. The hash is of the float32 weights:
    `from_pretrained` checks the files on disk (so any load dtype is checked); a tokenizer built in memory in another
    dtype cannot be hashed comparably and is let through with a warning, as is a prior without the record."""
    recorded = getattr(prior_config, TOKENIZER_HASH_KEY, None)
    if recorded is None:
        logger.warning(
            "The prior's config records no %s: it cannot be checked that this tokenizer is the one it was trained "
            "with (a prior saved by an older version, or built by hand).",
            TOKENIZER_HASH_KEY,
        )
        return
    if _IDENTITY_CHECKED_ON_DISK.get():
        return
    if vqvae.dtype != torch.float32:
        logger.warning(
            "The tokenizer is in %s: its identity (hashed in float32) cannot be checked against the prior's record. "
            "Load the pipeline with from_pretrained (which checks the files) or pass a float32 tokenizer.",
            vqvae.dtype,
        )
        return
    actual = state_dict_digest(vqvae.state_dict())
    if actual != recorded:
        raise _identity_error(recorded, actual)


def check_tokenizer_files(folder: Path, index: dict) -> None:
    """The identity check of `check_tokenizer_identity` on a saved pipeline's files (float32 as stored, whatever
    dtype the pipeline is then loaded in)."""
    prior_name = next((name for name in ("prior", "denoiser") if name in index), None)
    weights = folder / "vqvae" / "diffusion_pytorch_model.safetensors"
    config_file = folder / str(prior_name) / "config.json"
    if prior_name is None or not weights.is_file() or not config_file.is_file():
        return  # nothing to check here; the constructor checks what it can
    recorded = json.loads(config_file.read_text()).get(TOKENIZER_HASH_KEY)
    if recorded is None:
        return  # the constructor warns
    tensors = load_file(weights)
    if any(t.dtype != torch.float32 for t in tensors.values() if t.is_floating_point()):
        return  # stored in another precision: the constructor checks what it can
    actual = state_dict_digest(tensors)
    if actual != recorded:
        raise _identity_error(recorded, actual)


# the prior's config attribute holding the sampling settings a pipeline uses when a call does not name them
SAMPLING_DEFAULTS_KEY = "sampling_defaults"


def split_scheduler_settings(scheduler, settings: dict) -> tuple[dict, dict]:
    """(call arguments, scheduler config overrides) of sampling `settings`: a name is the scheduler's when its config
    has it (e.g. diffusion's `choice_temperature`, applied as diffusers does:
    `Scheduler.from_config(scheduler.config, **overrides)`); without a scheduler (None) all are call arguments."""
    names = set(scheduler.config) if scheduler is not None else set()
    overrides = {key: value for key, value in settings.items() if key in names}
    return {key: value for key, value in settings.items() if key not in overrides}, overrides


def apply_scheduler_settings(pipeline, overrides: dict) -> None:
    """Rebuild `pipeline`'s scheduler from its config with `overrides` (as diffusers does: `from_config`), registered
    so that `save_pretrained` saves it."""
    scheduler = pipeline.scheduler
    pipeline.register_modules(scheduler=type(scheduler).from_config(scheduler.config, **overrides))


class TokenImagePipeline(DiffusionPipeline):
    """Base class of pipelines that sample codebook ids and decode them with a `VQVAEModel` (`self.vqvae`).

    Sampling settings a call leaves as `None` come from the defaults saved with the pipeline (like transformers'
    `generation_config`): `set_sampling_defaults(...)` records them in the prior's config, so they travel with
    `save_pretrained` / the Hub; without saved defaults the library's own (`builtin_sampling_defaults`) apply."""

    builtin_sampling_defaults: dict = {}  # argument -> value when neither the call nor the pipeline names one
    has_reverse_process: bool = False  # denoises the whole grid over steps: `num_inference_steps`, every step's grid
    has_exact_likelihood: bool = False  # its prior scores a token grid's exact log-likelihood (held-out bits/token)
    kind_label: str = "token"  # how pages and names call this kind of prior ("AR", "diffusion")

    def completion_inputs(self, image, num_prefix_rows: int) -> dict:
        """The call arguments that complete `image` from its first `num_prefix_rows` token rows (every prior can;
        each says how)."""
        raise NotImplementedError

    @property
    def prior_model(self):
        """The transformers model whose config records the token layout and the sampling defaults."""
        raise NotImplementedError

    @property
    def id2label(self) -> dict[int, str] | None:
        """What each class label means (`{0: "T-shirt/top", ...}`), as the training run recorded it from its data;
        None for an unconditional prior or one saved without names."""
        num_classes = self.layout.num_classes
        mapping = getattr(self.prior_model.config, "id2label", None) or {}
        if not num_classes or len(mapping) != num_classes:
            return None
        if all(re.fullmatch(r"LABEL_\d+", str(name)) for name in mapping.values()):
            return None  # transformers' placeholders, not the data's names
        return {int(index): name for index, name in mapping.items()}

    @property
    def sampling_defaults(self) -> dict:
        """The sampling settings a call uses for arguments it leaves as `None` (saved ones over the builtin ones)."""
        saved = getattr(self.prior_model.config, SAMPLING_DEFAULTS_KEY, None) or {}
        return {**self.builtin_sampling_defaults, **saved}

    def set_sampling_defaults(self, **defaults) -> None:
        """Record sampling settings (e.g. `temperature=0.9, top_k=100`) as this pipeline's defaults; they are saved
        in the prior's config. Names other than this pipeline's sampling arguments are refused; values are checked
        as a call would check them."""
        unknown = sorted(set(defaults) - set(self.builtin_sampling_defaults))
        if unknown:
            raise ValueError(
                f"{unknown} are not sampling arguments of {type(self).__name__}: "
                f"choose among {sorted(self.builtin_sampling_defaults)}."
            )
        merged = {**(getattr(self.prior_model.config, SAMPLING_DEFAULTS_KEY, None) or {}), **defaults}
        self.check_sampling_values(self.layout, **{**self.builtin_sampling_defaults, **merged})
        setattr(self.prior_model.config, SAMPLING_DEFAULTS_KEY, merged)

    def select_sampling_arguments(self, **given) -> dict:
        """The sampling settings among `given` that this pipeline takes (None values: its defaults apply); a setting
        given a value that this kind of pipeline has no use for is refused, never silently dropped (e.g. `top_p` for
        a diffusion pipeline)."""
        unused = sorted(
            name for name, value in given.items() if value is not None and name not in self.builtin_sampling_defaults
        )
        if unused:
            raise ValueError(
                f"{unused} do not apply to a {type(self).__name__}: its sampling settings are "
                f"{sorted(self.builtin_sampling_defaults)}."
            )
        return {name: value for name, value in given.items() if name in self.builtin_sampling_defaults}

    def call_settings(self, layout, class_labels, **given) -> dict:
        """A call's sampling settings: each as given, else the pipeline's default; `top_k=0` means no top-k (None);
        guidance without class labels follows `guidance_without_labels`."""
        settings = self.resolve_sampling(**given)
        settings["top_k"] = settings.get("top_k") or None
        settings["guidance_scale"] = self.guidance_without_labels(
            settings["guidance_scale"], explicit=given.get("guidance_scale") is not None, labels=class_labels,
            layout=layout,
        )  # fmt: skip
        return settings

    def resolve_sampling(self, **given) -> dict:
        """Each sampling argument as the call gave it, else the pipeline's default."""
        defaults = self.sampling_defaults
        return {name: defaults.get(name) if value is None else value for name, value in given.items()}

    @staticmethod
    def guidance_without_labels(guidance_scale, explicit: bool, labels, layout) -> float:
        """Guidance compares a class with the null class: without `class_labels` it has nothing to do. Asked for
        explicitly, that is an error; a saved default is then simply not applied (1.0). (An unconditional prior's
        guidance is refused by `check_sampling_inputs`.)"""
        valid = isinstance(guidance_scale, numbers.Real) and math.isfinite(guidance_scale)
        if not valid or labels is not None or guidance_scale == 1.0 or not layout.num_classes:  # others check those
            return guidance_scale
        if explicit:
            raise ValueError(
                f"`guidance_scale={guidance_scale}` needs `class_labels`: guidance pushes samples towards their class, "
                "and unconditional samples have none (pass class_labels, or drop guidance_scale)."
            )
        return 1.0

    def check_sampling_values(self, layout, **values) -> None:
        """Check resolved sampling values (what `set_sampling_defaults` stores must pass the call's checks)."""
        self.check_sampling_inputs(layout, values["guidance_scale"], values["temperature"], values.get("top_k"), None)

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, allow_pickle: bool = False, **kwargs):
        """A local folder, or a Hub repo id resolved with `huggingface_hub.snapshot_download` first (so the Hub
        and a populated offline cache both work); `revision`, `token`, `cache_dir`, `local_files_only` pass on.

        Every component named in `model_index.json` must be there, with safetensors weights: a component with
        pickle weights only is refused unless `allow_pickle=True` (a `ValueError` either way names the folder).
        Components load in float32 unless `dtype` (or the older `torch_dtype`) says otherwise (diffusers' default
        for its own models, here applied to the transformers prior as well), whatever precision the weights are
        stored in."""
        path, kwargs = resolve_pretrained_path(pretrained_model_name_or_path, kwargs)
        index = read_model_index(path, pretrained_model_name_or_path)
        if cls is not TokenImagePipeline and index["_class_name"] != cls.__name__:
            raise ValueError(
                f"{pretrained_model_name_or_path} holds a {index['_class_name']}, not a {cls.__name__}: load it with "
                f"{index['_class_name']}.from_pretrained or `hf_vqgen.load_pipeline`, which reads the class."
            )
        components = {name: spec for name, spec in index.items() if not name.startswith("_") and spec}
        for name, (_, class_name) in components.items():
            if class_name.endswith("Scheduler"):
                if not (Path(path) / name / "scheduler_config.json").is_file():
                    raise ValueError(f"The pipeline's `{name}` component: {Path(path) / name} is missing.")
                continue
            check_weights_folder(Path(path) / name, allow_pickle, f"The pipeline's `{name}` component")
        kwargs.setdefault("use_safetensors", None if allow_pickle else True)
        if "torch_dtype" not in kwargs:  # diffusers >= 0.42 calls it `dtype`; an old-style argument is passed on
            kwargs.setdefault("dtype", torch.float32)
        check_tokenizer_files(Path(path), index)
        token = _IDENTITY_CHECKED_ON_DISK.set((Path(path) / "vqvae" / "diffusion_pytorch_model.safetensors").is_file())
        try:
            return super().from_pretrained(path, **kwargs)
        finally:
            _IDENTITY_CHECKED_ON_DISK.reset(token)

    def save_pretrained(self, save_directory: str | os.PathLike, **kwargs) -> None:
        """diffusers' `save_pretrained` (safetensors), plus a one-line `pipeline.py` that re-exports this class, so
        that plain diffusers can load the folder too: `DiffusionPipeline.from_pretrained(folder,
        custom_pipeline=folder, trust_remote_code=True)` (with hf_vqgen installed)."""
        kwargs.setdefault("safe_serialization", True)
        super().save_pretrained(save_directory, **kwargs)
        index_path = Path(save_directory) / "model_index.json"
        index = json.loads(index_path.read_text())
        if index.get("_name_or_path"):  # where it was loaded from: never this machine's absolute path
            index["_name_or_path"] = portable_path(index["_name_or_path"])
            index_path.write_text(json.dumps(index, indent=2, sort_keys=True) + "\n")
        (Path(save_directory) / "pipeline.py").write_text(
            f'"""Lets `diffusers.DiffusionPipeline.from_pretrained(..., custom_pipeline=...)` find the pipeline class; '
            f'needs `pip install hf_vqgen`."""\n\nfrom {type(self).__module__} import {type(self).__name__}  # noqa: F401\n'
        )

    def push_to_hub(
        self,
        repo_id: str,
        commit_message: str = "Upload hf_vqgen pipeline",
        private: bool | None = None,
        token: str | None = None,
        card_folder: str | os.PathLike | None = None,
    ) -> str:
        """Save the pipeline (safetensors) and upload it to `repo_id` in one commit (`upload_folder`), with the model
        card, its context and the sample images of `card_folder` (default: the folder it was loaded from, when that
        has a card). Checkpoints, logs and cached tokens are never uploaded. Returns the commit URL."""
        source = Path(card_folder or self.config.get("_name_or_path") or "")
        with tempfile.TemporaryDirectory() as folder:
            self.save_pretrained(folder)
            for name in CARD_FILES:
                if source.is_dir() and (source / name).is_file():
                    shutil.copy2(source / name, Path(folder) / name)
            return push_folder_to_hub(folder, repo_id, token=token, private=private, commit_message=commit_message)

    @staticmethod
    def check_batch_and_output(batch_size, output_type) -> int:
        """`batch_size` as an `int` (Python or NumPy integers), after checking it and `output_type`."""
        if not isinstance(batch_size, numbers.Integral) or isinstance(batch_size, bool) or batch_size < 1:
            raise ValueError(f"`batch_size` must be a positive integer, got {batch_size!r}.")
        if output_type not in OUTPUT_TYPES:
            raise ValueError(f"`output_type` must be one of {OUTPUT_TYPES}, got {output_type!r}.")
        return int(batch_size)

    @staticmethod
    def check_sampling_inputs(layout, guidance_scale, temperature, top_k, generator) -> None:
        for name, value in (("temperature", temperature), ("guidance_scale", guidance_scale)):
            if not isinstance(value, numbers.Real) or not math.isfinite(value):
                raise ValueError(f"`{name}` must be a finite number, got {value!r}.")
        if temperature < 0:
            raise ValueError(f"`temperature` must be >= 0 (0 = argmax), got {temperature}.")
        if top_k is not None and (not isinstance(top_k, numbers.Integral) or isinstance(top_k, bool) or top_k < 0):
            raise ValueError(f"`top_k` must be an integer >= 1 (or 0: no top-k), got {top_k!r}.")
        if guidance_scale != 1.0 and layout.null_class_token_id is None:
            raise ValueError("`guidance_scale` != 1 needs a class-conditional prior with a null class.")
        if generator is not None and not isinstance(generator, torch.Generator):
            raise TypeError(
                f"`generator` must be a torch.Generator (e.g. torch.Generator().manual_seed(0)), got "
                f"{type(generator).__name__}."
            )

    def prepare_class_labels(self, class_labels, batch_size: int, layout) -> torch.Tensor | None:
        if class_labels is None:
            return None
        labels = torch.as_tensor(class_labels, device=self.device)
        if labels.dtype.is_floating_point or labels.dtype.is_complex or labels.dtype == torch.bool:
            raise ValueError(f"`class_labels` must be integers, got {labels.dtype} values {labels.tolist()}.")
        labels = labels.long().view(-1)
        if labels.shape != (batch_size,):
            raise ValueError(
                f"`class_labels` must hold one label per sample ({batch_size}), got {tuple(labels.shape)}."
            )
        layout.check_class_labels(labels)
        return labels

    def image_to_tensor(self, image) -> torch.Tensor:
        """PIL image(s) (converted by `hf_vqgen.data.image_modes.to_model_mode` and resized) or a (B, C, H, W) / (C, H, W)
        float tensor in [-1, 1] of the tokenizer's size -> (B, C, H, W) on the pipeline's device."""
        config = self.vqvae.config
        if isinstance(image, PIL.Image.Image) or (isinstance(image, list) and isinstance(image[0], PIL.Image.Image)):
            images = image if isinstance(image, list) else [image]
            transform = PixelTransform(config.sample_size, config.in_channels)
            return torch.stack([transform(img) for img in images]).to(self.device)
        if not isinstance(image, torch.Tensor):
            raise ValueError("`image` must be a PIL image, a list of them, or a (B, C, H, W) tensor in [-1, 1].")
        tensor = image[None] if image.ndim == 3 else image
        expected = (config.in_channels, config.sample_size, config.sample_size)
        if tensor.ndim != 4 or tuple(tensor.shape[1:]) != expected:
            raise ValueError(
                f"`image` must be a (B, {expected[0]}, {expected[1]}, {expected[2]}) tensor for this tokenizer (its "
                f"in_channels and sample_size), got shape {tuple(image.shape)}; PIL images are resized for you."
            )
        self.vqvae.check_pixel_values(tensor)  # float, finite, in [-1, 1]
        return tensor.to(self.device, self.vqvae.dtype)

    @staticmethod
    def resolve_batch_size(batch_size: int | None, image) -> int:
        """`batch_size`, defaulting to the number of `image`s (else 1); a conflict with `image` is an error."""
        if image is None:
            return 1 if batch_size is None else batch_size
        single = isinstance(image, PIL.Image.Image) or (isinstance(image, torch.Tensor) and image.ndim == 3)
        count = 1 if single else len(image)
        if batch_size is not None and batch_size != count:
            raise ValueError(f"`image` holds {count} images but `batch_size` is {batch_size}.")
        return count

    def decode(self, token_ids: torch.Tensor, output_type: str):
        """(B, h, w) codebook ids -> images of `output_type` (None for "token_ids")."""
        if output_type == "token_ids":
            return None
        decoded = self.vqvae.decode_ids(token_ids)
        return VaeImageProcessor(do_resize=False).postprocess(decoded, output_type=output_type)
