"""hf_vqgen: generative image modelling over VQ-VAE tokens, in the diffusers / transformers style."""

from .data import PixelTransform, load_image_dataset, with_pixel_values
from .models import VQVAEModel


__version__ = "0.1.0.dev0"

__all__ = ["PixelTransform", "VQVAEModel", "load_image_dataset", "with_pixel_values"]
