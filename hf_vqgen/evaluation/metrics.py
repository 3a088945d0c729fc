"""Quality figures.

Distribution metrics work on features (N, D) of real and generated images from any backbone (see
`hf_vqgen.evaluation.features`): FID, KID, precision / recall (k-NN manifolds) and the Inception-Score analogue on
class logits. Image metrics work on (B, C, H, W) tensors in [-1, 1]: PSNR, SSIM. Tokenizer metrics: codebook usage
and perplexity of a code histogram (`hf_vqgen.evaluation.tokenizer` runs them over a split).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ..vocabulary import IGNORE_INDEX


# input checks


def _check_images(name: str, images: torch.Tensor) -> None:
    if images.ndim != 4 or images.numel() == 0:
        raise ValueError(f"`{name}` must be a non-empty (B, C, H, W) tensor, got shape {tuple(images.shape)}.")
    if not torch.isfinite(images).all():
        raise ValueError(f"`{name}` contains NaN or infinite values.")


def _check_features(name: str, features: torch.Tensor, min_rows: int = 2) -> torch.Tensor:
    if features.ndim != 2 or features.shape[0] < min_rows or features.shape[1] == 0:
        raise ValueError(f"`{name}` must be (N, D) features with N >= {min_rows}, got shape {tuple(features.shape)}.")
    if not torch.isfinite(features).all():
        raise ValueError(f"`{name}` contains NaN or infinite values.")
    return features.double()


# image metrics


def psnr(images: torch.Tensor, references: torch.Tensor) -> torch.Tensor:
    """Per-image PSNR in dB of `images` against `references`, both (B, C, H, W) in [-1, 1].

    Computed on the [0, 1] scale (peak 1); returns a (B,) tensor. Identical images give `inf`.
    """
    _check_images("images", images)
    _check_images("references", references)
    if images.shape != references.shape:
        raise ValueError(f"`images` {tuple(images.shape)} and `references` {tuple(references.shape)} differ in shape.")
    mse = ((images.float() - references.float()) / 2).pow(2).flatten(1).mean(dim=1)
    return -10.0 * torch.log10(mse)


def ssim(images: torch.Tensor, references: torch.Tensor, window_size: int = 7, sigma: float = 1.5) -> torch.Tensor:
    """Per-image SSIM (Wang et al. 2004) of `images` against `references`, (B, C, H, W) in [-1, 1], on the [0, 1]
    scale with a Gaussian window (7x7 by default, small enough for 28x28 images; valid positions only)."""
    _check_images("images", images)
    _check_images("references", references)
    if images.shape != references.shape:
        raise ValueError(f"`images` {tuple(images.shape)} and `references` {tuple(references.shape)} differ in shape.")
    if min(images.shape[-2:]) < window_size:
        raise ValueError(f"Images of {tuple(images.shape[-2:])} pixels are smaller than window_size={window_size}.")
    x, y = (images.double() + 1) / 2, (references.double() + 1) / 2
    channels = x.shape[1]
    coords = torch.arange(window_size, dtype=torch.float64) - (window_size - 1) / 2
    gauss = torch.exp(-(coords**2) / (2 * sigma**2))
    window = (gauss[:, None] * gauss[None, :] / gauss.sum() ** 2).expand(channels, 1, -1, -1).to(x.device)

    def blur(t: torch.Tensor) -> torch.Tensor:
        return F.conv2d(t, window, groups=channels)

    mu_x, mu_y = blur(x), blur(y)
    var_x, var_y = blur(x * x) - mu_x**2, blur(y * y) - mu_y**2
    cov = blur(x * y) - mu_x * mu_y
    c1, c2 = 0.01**2, 0.03**2
    ssim_map = ((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / ((mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2))
    return ssim_map.flatten(1).mean(dim=1).float()


# distribution metrics on features


def frechet_distance(features: torch.Tensor, reference_features: torch.Tensor) -> float:
    """Fréchet distance between Gaussians fitted to two feature sets (N, D) — FID with Inception features
    (Heusel et al. 2017). Tr(sqrt(S1 S2)) is computed as the trace of sqrt(sqrt(S1) S2 sqrt(S1)), a symmetric PSD
    matrix, in float64."""
    a, b = _check_features("features", features), _check_features("reference_features", reference_features)
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"Feature dimensions differ: {a.shape[1]} vs {b.shape[1]}.")
    mean_diff = a.mean(0) - b.mean(0)
    cov_a, cov_b = torch.cov(a.T), torch.cov(b.T)
    eigenvalues, eigenvectors = torch.linalg.eigh(cov_a)
    sqrt_a = eigenvectors @ torch.diag(eigenvalues.clamp(min=0).sqrt()) @ eigenvectors.T
    trace_sqrt = torch.linalg.eigvalsh(sqrt_a @ cov_b @ sqrt_a).clamp(min=0).sqrt().sum()
    return float(mean_diff @ mean_diff + cov_a.trace() + cov_b.trace() - 2 * trace_sqrt)


def kernel_distance(
    features: torch.Tensor,
    reference_features: torch.Tensor,
    subset_size: int = 1000,
    num_subsets: int = 50,
    seed: int = 0,
) -> tuple[float, float]:
    """KID (Bińkowski et al. 2018): unbiased MMD^2 with the cubic polynomial kernel (x.y / D + 1)^3, averaged over
    random subsets; returns (mean, std). Unlike FID it is unbiased in the sample count."""
    a, b = _check_features("features", features), _check_features("reference_features", reference_features)
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"Feature dimensions differ: {a.shape[1]} vs {b.shape[1]}.")
    size = min(subset_size, a.shape[0], b.shape[0])
    generator = torch.Generator().manual_seed(seed)
    estimates = []
    for _ in range(num_subsets):
        x = a[torch.randperm(a.shape[0], generator=generator)[:size]]
        y = b[torch.randperm(b.shape[0], generator=generator)[:size]]
        k_xx, k_yy = (x @ x.T / a.shape[1] + 1) ** 3, (y @ y.T / a.shape[1] + 1) ** 3
        k_xy = (x @ y.T / a.shape[1] + 1) ** 3
        off_diagonal = (k_xx.sum() - k_xx.trace() + k_yy.sum() - k_yy.trace()) / (size * (size - 1))
        estimates.append(off_diagonal - 2 * k_xy.mean())
    estimates = torch.stack(estimates)
    return float(estimates.mean()), float(estimates.std()) if num_subsets > 1 else 0.0


def _kth_neighbour_radii(features: torch.Tensor, k: int, chunk: int) -> torch.Tensor:
    radii = []
    for start in range(0, features.shape[0], chunk):
        distances = torch.cdist(features[start : start + chunk], features)
        radii.append(distances.kthvalue(k + 1, dim=1).values)  # k + 1: the point itself is at distance 0
    return torch.cat(radii)


def _fraction_inside(queries: torch.Tensor, centres: torch.Tensor, radii: torch.Tensor, chunk: int) -> float:
    inside = [
        (torch.cdist(queries[start : start + chunk], centres) <= radii[None]).any(dim=1)
        for start in range(0, queries.shape[0], chunk)
    ]
    return float(torch.cat(inside).double().mean())


def precision_recall(
    features: torch.Tensor, reference_features: torch.Tensor, k: int = 3, chunk: int = 1024
) -> dict[str, float]:
    """Improved precision and recall (Kynkäänniemi et al. 2019): each set's manifold is the union of balls reaching
    every point's k-th nearest neighbour; precision is the fraction of generated points inside the reference
    manifold, recall the fraction of reference points inside the generated one. Both depend on the sample count:
    compare at equal n, and report them together (one real image repeated scores precision 1.0)."""
    a, b = (
        _check_features("features", features, k + 1),
        _check_features("reference_features", reference_features, k + 1),
    )
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"Feature dimensions differ: {a.shape[1]} vs {b.shape[1]}.")
    a, b = a.float(), b.float()
    return {
        "precision": _fraction_inside(a, b, _kth_neighbour_radii(b, k, chunk), chunk),
        "recall": _fraction_inside(b, a, _kth_neighbour_radii(a, k, chunk), chunk),
    }


def classifier_score(logits: torch.Tensor, num_splits: int = 10) -> tuple[float, float]:
    """Inception-Score analogue (Salimans et al. 2016) on any classifier's logits (N, num_classes):
    exp(E_x KL(p(y|x) || p(y))) per split; returns (mean, std). Ranges from 1 to num_classes."""
    logits = _check_features("logits", logits)
    log_probs = logits.log_softmax(dim=1)
    scores = []
    for part in log_probs.chunk(num_splits):
        log_marginal = part.exp().mean(0).log()
        scores.append((part.exp() * (part - log_marginal)).sum(1).mean().exp())
    scores = torch.stack(scores)
    return float(scores.mean()), float(scores.std()) if len(scores) > 1 else 0.0


def recognisability(logits: torch.Tensor, threshold: float = 0.5) -> dict[str, float]:
    """How confidently a classifier names one class for each image, from its logits (N, num_classes): the mean top-1
    probability and the share of images whose top-1 probability reaches `threshold`. With an identity head (e.g. every
    emoji of a dataset) it says how often a generated image is recognisably *one* of them; score real images and
    their reconstructions the same way for its ceiling."""
    logits = _check_features("logits", logits, min_rows=1)
    top1 = logits.softmax(dim=1).max(dim=1).values
    return {"recognisability": float(top1.mean()), "recognisable_share": float((top1 >= threshold).double().mean())}


# tokenizer metrics


def codebook_statistics(token_counts: torch.Tensor) -> dict[str, float]:
    """Usage (fraction of codes used at least once) and perplexity (exp of the entropy) of a code histogram."""
    if token_counts.ndim != 1 or token_counts.sum() <= 0:
        raise ValueError("`token_counts` must be a 1-D histogram with at least one count.")
    probs = token_counts.double() / token_counts.sum()
    entropy = -(probs[probs > 0] * probs[probs > 0].log()).sum()
    return {"codebook_usage": float((token_counts > 0).double().mean()), "perplexity": float(entropy.exp())}


def distribution_metrics(
    features: torch.Tensor,
    reference_features: torch.Tensor,
    logits: torch.Tensor | None = None,
    k: int = 3,
    kid_subset_size: int = 1000,
) -> dict[str, float]:
    """FID, KID (mean, std), precision and recall of `features` against `reference_features`, plus the classifier
    score when `logits` are given. All in the same feature space; compare figures only at equal sample counts."""
    kid_mean, kid_std = kernel_distance(features, reference_features, subset_size=kid_subset_size)
    results = {
        "fid": frechet_distance(features, reference_features),
        "kid": kid_mean,
        "kid_std": kid_std,
        **precision_recall(features, reference_features, k=k),
        "num_samples": features.shape[0],
        "num_reference": reference_features.shape[0],
    }
    if logits is not None:
        results["classifier_score"], results["classifier_score_std"] = classifier_score(logits)
        results |= recognisability(logits)
    return results


@torch.no_grad()
def heldout_bits_per_token(prior, layout, token_ids: torch.Tensor, labels: torch.Tensor | None, batch_size: int = 256):
    """Held-out negative log-likelihood of an autoregressive prior on code sequences `token_ids` (N, h*w): bits per
    token, and per image (h*w tokens). Class-conditional priors are scored given the true `labels`."""
    if token_ids.ndim != 2 or token_ids.shape[0] == 0:
        raise ValueError(f"`token_ids` must be a non-empty (N, h*w) tensor, got shape {tuple(token_ids.shape)}.")
    device = next(prior.parameters()).device
    total_nats, total_tokens = 0.0, 0
    for start in range(0, token_ids.shape[0], batch_size):
        class_labels = labels[start : start + batch_size].to(device) if layout.num_classes else None
        input_ids, targets = layout.autoregressive_sequence(
            token_ids[start : start + batch_size].to(device), class_labels
        )
        count = int((targets[:, 1:] != IGNORE_INDEX).sum())
        total_nats += float(prior(input_ids=input_ids, labels=targets).loss) * count
        total_tokens += count
    bits = total_nats / total_tokens / math.log(2)
    return {"bits_per_token": bits, "bits_per_image": bits * layout.num_tokens}
