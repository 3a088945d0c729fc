from .classifier import ImageClassifier
from .discriminator import PatchDiscriminator
from .fsq import FiniteScalarQuantizer
from .quantizer import Quantizer, QuantizerInfo, VectorQuantizer
from .quantizers import QUANTIZERS, build_quantizer
from .shape_classifier import ShapeClassifier
from .vq_model import VQVAEModel, VQVAEOutput


__all__ = [
    "QUANTIZERS",
    "FiniteScalarQuantizer",
    "ImageClassifier",
    "PatchDiscriminator",
    "Quantizer",
    "QuantizerInfo",
    "ShapeClassifier",
    "VQVAEModel",
    "VQVAEOutput",
    "VectorQuantizer",
    "build_quantizer",
]
