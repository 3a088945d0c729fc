"""hf_vqgen: generative image modelling over VQ-VAE tokens, in the diffusers / transformers style."""

from .data import PixelTransform, load_image_dataset, with_pixel_values
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


__version__ = "0.1.0.dev0"

__all__ = [
    "DiscreteDiffusionPipeline",
    "DiscreteDiffusionPipelineOutput",
    "DiscreteDiffusionScheduler",
    "PixelTransform",
    "TokenLayout",
    "VQGenPipeline",
    "VQGenPipelineOutput",
    "VQVAEModel",
    "export_reverse_process",
    "load_image_dataset",
    "load_pipeline",
    "with_pixel_values",
]
