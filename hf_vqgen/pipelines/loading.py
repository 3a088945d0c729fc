"""`load_pipeline`: open a saved hf_vqgen pipeline of either kind by reading its `model_index.json`."""

from __future__ import annotations

import os

from .hub_resolution import resolve_pretrained_path
from .pipeline_discrete_diffusion import DiscreteDiffusionPipeline
from .pipeline_vqgen import VQGenPipeline
from .token_pipeline import read_model_index


PIPELINE_CLASSES = {cls.__name__: cls for cls in (VQGenPipeline, DiscreteDiffusionPipeline)}


def load_pipeline(name_or_path: str | os.PathLike, **kwargs) -> VQGenPipeline | DiscreteDiffusionPipeline:
    """A `VQGenPipeline` or `DiscreteDiffusionPipeline` from a folder or Hub repo id, whichever it holds."""
    path, kwargs = resolve_pretrained_path(name_or_path, kwargs)
    class_name = read_model_index(path, name_or_path).get("_class_name")
    if class_name not in PIPELINE_CLASSES:
        raise ValueError(f"{path}/model_index.json names {class_name!r}; expected one of {sorted(PIPELINE_CLASSES)}.")
    return PIPELINE_CLASSES[class_name].from_pretrained(path, **kwargs)
