"""hf_vqgen: generative image modelling over VQ-VAE tokens, in the diffusers / transformers style."""

from .data import PixelTransform, load_image_dataset, with_pixel_values
from .models import VQVAEModel
from .pipelines import VQGenPipeline, VQGenPipelineOutput
from .vocabulary import TokenLayout


__version__ = "0.1.0.dev0"

__all__ = [
    "PixelTransform",
    "TokenLayout",
    "VQGenPipeline",
    "VQGenPipelineOutput",
    "VQVAEModel",
    "load_image_dataset",
    "with_pixel_values",
]
