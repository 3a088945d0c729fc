from .classifier import ImageClassifier
from .discriminator import PatchDiscriminator
from .quantizer import QuantizerInfo, VectorQuantizer
from .vq_model import VQVAEModel, VQVAEOutput


__all__ = ["ImageClassifier", "PatchDiscriminator", "QuantizerInfo", "VQVAEModel", "VQVAEOutput", "VectorQuantizer"]
