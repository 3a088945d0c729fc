"""Measuring quality: the metric maths, the feature spaces they are computed in, and the scoring loops.

    metrics.py    FID, KID, precision / recall, classifier score, recognisability, PSNR, SSIM, codebook figures
    features.py   feature extractors (the project's classifiers, Inception) and cached reference features
    tokenizer.py  evaluate_tokenizer: reconstructions through the token bottleneck, measured
    scoring.py    sampling with classes cycled, scoring image sets, conditioning agreement, nearest training images

Names are imported on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..lazy_exports import lazy_exports


_EXPORTS = {
    "distribution_metrics": ".metrics",
    "frechet_distance": ".metrics",
    "psnr": ".metrics",
    "ssim": ".metrics",
    "recognisability": ".metrics",
    "heldout_bits_per_token": ".metrics",
    "load_feature_extractor": ".features",
    "extract_features": ".features",
    "reference_features": ".features",
    "evaluate_tokenizer": ".tokenizer",
    "score_images": ".scoring",
    "sample_images": ".scoring",
    "condition_accuracy": ".scoring",
    "head_agreement": ".scoring",
    "nearest_training_images": ".scoring",
}
__all__ = sorted(_EXPORTS)

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)


if TYPE_CHECKING:
    from .features import extract_features, load_feature_extractor, reference_features
    from .metrics import distribution_metrics, frechet_distance, heldout_bits_per_token, psnr, recognisability, ssim
    from .scoring import condition_accuracy, head_agreement, nearest_training_images, sample_images, score_images
    from .tokenizer import evaluate_tokenizer
