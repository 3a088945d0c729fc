from .classifier import ImageClassifier
from .discriminator import PatchDiscriminator
from .quantizer import QuantizerInfo, VectorQuantizer
from .shape_classifier import ShapeClassifier
from .vq_model import VQVAEModel, VQVAEOutput


__all__ = [
    "ImageClassifier",
    "PatchDiscriminator",
    "QuantizerInfo",
    "ShapeClassifier",
    "VQVAEModel",
    "VQVAEOutput",
    "VectorQuantizer",
]
