"""hf_vqgen: generative image modelling over VQ-VAE tokens, in the diffusers / transformers style.

Names are imported on first use (PEP 562), so that `import hf_vqgen.pipelines` (inference) does not import the
data-loading stack (`datasets`, the emoji builder) that `load_image_dataset` needs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .lazy_exports import lazy_exports


__version__ = "0.1.0.dev0"

# public name -> the module that defines it
_EXPORTS = {
    "PixelTransform": ".data.pixels",
    "load_image_dataset": ".data.images",
    "with_pixel_values": ".data.images",
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


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)


if TYPE_CHECKING:  # for type checkers and IDEs: the same names, eagerly
    from .data.images import load_image_dataset, with_pixel_values
    from .data.pixels import PixelTransform
    from .models import VQVAEModel
    from .pipelines import (
        DiscreteDiffusionPipeline,
        DiscreteDiffusionPipelineOutput,
        VQGenPipeline,
        VQGenPipelineOutput,
        export_reverse_process,
        load_pipeline,
    )
    from .schedulers import DiscreteDiffusionScheduler
    from .vocabulary import TokenLayout
