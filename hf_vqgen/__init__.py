"""hf_vqgen: generative image modelling over VQ-VAE tokens, in the diffusers / transformers style.

Names are imported on first use (PEP 562), so that `import hf_vqgen.pipelines` (inference) does not import the
data-loading stack (`datasets`, the emoji builder) that `load_image_dataset` needs.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING


__version__ = "0.1.0.dev0"

# public name -> the module that defines it
_EXPORTS = {
    "PixelTransform": ".pixels",
    "load_image_dataset": ".data",
    "with_pixel_values": ".data",
    "VQVAEModel": ".models",
    "DiscreteDiffusionPipeline": ".pipelines",
    "DiscreteDiffusionPipelineOutput": ".pipelines",
    "VQGenPipeline": ".pipelines",
    "VQGenPipelineOutput": ".pipelines",
    "export_reverse_process": ".pipelines",
    "load_pipeline": ".pipelines",
    "DiscreteDiffusionScheduler": ".schedulers",
    "TokenLayout": ".vocabulary",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'hf_vqgen' has no attribute {name!r}")
    value = getattr(importlib.import_module(_EXPORTS[name], __name__), name)
    globals()[name] = value  # imported once
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


if TYPE_CHECKING:  # for type checkers and IDEs: the same names, eagerly
    from .data import load_image_dataset, with_pixel_values
    from .models import VQVAEModel
    from .pipelines import (
        DiscreteDiffusionPipeline,
        DiscreteDiffusionPipelineOutput,
        VQGenPipeline,
        VQGenPipelineOutput,
        export_reverse_process,
        load_pipeline,
    )
    from .pixels import PixelTransform
    from .schedulers import DiscreteDiffusionScheduler
    from .vocabulary import TokenLayout
