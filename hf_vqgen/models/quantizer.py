"""The quantizer interface `VQVAEModel` builds on, and its learned-codebook implementation `VectorQuantizer`:
nearest-code lookup plus the codebook-learning tricks.

What the tokenizer needs from a quantizer (`Quantizer`, a protocol: any `nn.Module` with these members works):

- `n_e` (codebook size K) and `vq_embed_dim` (code dimension d), as diffusers' quantizer names them;
- `forward(z)`: latents (B, d, h, w) -> `(z_q, loss, QuantizerInfo)`, `z_q` with straight-through gradients, `loss` a
  scalar the training objective adds, `QuantizerInfo` the batch's perplexity, codebook usage and ids (B, h, w);
- `lookup_ids(z)`: the ids (B, h, w) `forward` would choose, changing no state;
- `get_codebook_entry(ids, shape)`: ids -> code vectors ((B, d, h, w) with `shape=(B, h, w, d)`);
- an `embedding` `nn.Embedding` (K, d) holding the codes, so that checkpoints load in stock `diffusers.VQModel`.

Implementations are registered in `QUANTIZERS` (`quantizer_type` in the tokenizer's config): `"vq"` (this module's
`VectorQuantizer`) and `"fsq"` (`hf_vqgen.models.fsq.FiniteScalarQuantizer`). A new quantizer is one class and one
entry there.

The codebook lives in ``embedding`` (an `nn.Embedding`, as in `diffusers.models.autoencoders.vae.VectorQuantizer`)
so that a checkpoint loads into stock `diffusers.VQModel`. Everything else here is training-time state.
"""

from __future__ import annotations

from typing import NamedTuple, Protocol

import torch
import torch.distributed as dist
import torch.nn as nn
import torch.nn.functional as F


CODEBOOK_UPDATES = ("loss", "ema")


class QuantizerInfo(NamedTuple):
    """Third element of the quantizer's output, in the slot diffusers uses for `(perplexity, _, indices)`."""

    perplexity: torch.Tensor  # scalar, exp(entropy) of the code histogram of this batch (all ranks when training)
    codebook_usage: torch.Tensor  # scalar in [0, 1], fraction of codes used at least once in this batch
    token_ids: torch.Tensor  # (B, h, w) int64


class Quantizer(Protocol):
    """What `VQVAEModel` needs from a quantizer (see the module docstring)."""

    n_e: int
    vq_embed_dim: int
    embedding: nn.Embedding

    def __call__(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, QuantizerInfo]: ...

    def lookup_ids(self, z: torch.Tensor) -> torch.Tensor: ...

    def get_codebook_entry(self, indices: torch.Tensor, shape: tuple[int, ...] | None = None) -> torch.Tensor: ...


def code_counts(ids: torch.Tensor, num_codes: int) -> torch.Tensor:
    """How often each of `num_codes` codes occurs in `ids`, as floats. Unlike `torch.bincount`, the output's shape
    does not depend on the ids' values, so a compiled training step keeps one graph."""
    return torch.zeros(num_codes, device=ids.device).index_add_(0, ids, torch.ones_like(ids, dtype=torch.float))


# distributed helpers: every rank must hold the same codebook, so statistics are summed and
# random choices are made on rank 0 and broadcast (DDP's buffer broadcast alone drops other ranks' statistics).


def _distributed() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def _all_reduce_sum(tensor: torch.Tensor) -> torch.Tensor:
    if _distributed():
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor


def _broadcast_from_main(*tensors: torch.Tensor) -> None:
    if _distributed():
        for tensor in tensors:
            dist.broadcast(tensor, src=0)


def _sample_rows(vectors: torch.Tensor, num: int) -> torch.Tensor:
    """`num` rows of `vectors` (N, D) drawn without replacement when possible."""
    if vectors.shape[0] >= num:
        index = torch.randperm(vectors.shape[0], device=vectors.device)[:num]
    else:
        index = torch.randint(0, vectors.shape[0], (num,), device=vectors.device)
    return vectors[index]


def _kmeans_plus_plus(vectors: torch.Tensor, num_clusters: int) -> torch.Tensor:
    """Seeds drawn one by one with probability proportional to the squared distance to the nearest seed so far."""
    centroids = torch.empty(num_clusters, vectors.shape[1], dtype=vectors.dtype, device=vectors.device)
    centroids[0] = _sample_rows(vectors, 1)[0]
    nearest = (vectors - centroids[0]).pow(2).sum(dim=1)
    for k in range(1, num_clusters):
        weights = nearest if nearest.sum() > 0 else torch.ones_like(nearest)  # fewer distinct points than clusters
        centroids[k] = vectors[torch.multinomial(weights, 1)[0]]
        nearest = torch.minimum(nearest, (vectors - centroids[k]).pow(2).sum(dim=1))
    return centroids


def kmeans(vectors: torch.Tensor, num_clusters: int, num_iters: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Lloyd's k-means on `vectors` (N, D) with k-means++ seeding (Arthur & Vassilvitskii 2007); returns centroids
    (K, D) and cluster sizes (K,). Empty clusters keep their previous centroid."""
    centroids = _kmeans_plus_plus(vectors, num_clusters)
    counts = torch.zeros(num_clusters, device=vectors.device)
    for _ in range(num_iters):
        assignment = torch.cdist(vectors, centroids).argmin(dim=1)
        counts = code_counts(assignment, num_clusters).to(vectors.dtype)
        sums = torch.zeros_like(centroids).index_add_(0, assignment, vectors)
        filled = counts > 0
        centroids[filled] = sums[filled] / counts[filled, None]
    return centroids, counts


# the quantizer


class VectorQuantizer(nn.Module):
    r"""
    Nearest-neighbour vector quantizer with a learned codebook.

    Parameters:
        num_vq_embeddings (`int`): Number of codes K.
        vq_embed_dim (`int`): Dimension of each code. A low dimension (e.g. 8-32) improves codebook usage
            ("Vector-quantized Image Modeling with Improved VQGAN", Yu et al. 2021).
        codebook_update (`str`, *optional*, defaults to `"loss"`):
            `"loss"`: the codebook is a parameter trained by the codebook loss ||sg[z] - e||^2 while the encoder gets
            the commitment loss beta * ||z - sg[e]||^2 (van den Oord et al. 2017; beta on the commitment term, i.e.
            diffusers' non-legacy form). `"ema"`: the codebook gets no gradient and follows exponential moving
            averages of the encoder outputs assigned to each code (Appendix A.1 of the same paper), with Laplace
            smoothing of the cluster sizes.
        commitment_beta (`float`, *optional*, defaults to 0.25): Weight of the commitment term.
        ema_decay (`float`, *optional*, defaults to 0.99): Decay of the EMA statistics (cluster sizes, code sums).
        ema_epsilon (`float`, *optional*, defaults to 1e-5): Laplace smoothing of the EMA cluster sizes.
        kmeans_init (`bool`, *optional*, defaults to `False`): Initialise the codebook by k-means on the first
            training batch (Zeghidour et al. 2021, SoundStream).
        kmeans_iters (`int`, *optional*, defaults to 10): Lloyd iterations of that k-means.
        dead_code_threshold (`float`, *optional*, defaults to 0.0): Codes whose EMA usage (vectors assigned per
            training step, summed over ranks) falls below this are re-seeded from current encoder outputs
            (Dhariwal et al. 2020, Jukebox). `0` disables restarts.
        use_cosine_codes (`bool`, *optional*, defaults to `False`): l2-normalise encoder outputs and codes before
            the lookup (Yu et al. 2021). The stored codebook is then normalised on use, so stock `VQModel`
            decodes these ids only approximately; keep it `False` where stock compatibility matters.
    """

    def __init__(
        self,
        num_vq_embeddings: int,
        vq_embed_dim: int,
        codebook_update: str = "loss",
        commitment_beta: float = 0.25,
        ema_decay: float = 0.99,
        ema_epsilon: float = 1e-5,
        kmeans_init: bool = False,
        kmeans_iters: int = 10,
        dead_code_threshold: float = 0.0,
        use_cosine_codes: bool = False,
    ):
        super().__init__()
        if codebook_update not in CODEBOOK_UPDATES:
            raise ValueError(f"`codebook_update` must be one of {CODEBOOK_UPDATES}, got {codebook_update!r}.")
        if not 0.0 < ema_decay < 1.0:
            raise ValueError(f"`ema_decay` must be in (0, 1), got {ema_decay}.")
        if dead_code_threshold < 0:
            raise ValueError(f"`dead_code_threshold` must be >= 0, got {dead_code_threshold}.")
        self.n_e = num_vq_embeddings  # diffusers' attribute names, read by code written for its quantizer
        self.vq_embed_dim = vq_embed_dim
        self.use_ema = codebook_update == "ema"
        self.beta = commitment_beta
        self.decay = ema_decay
        self.eps = ema_epsilon
        self.kmeans_init = kmeans_init
        self.kmeans_iters = kmeans_iters
        self.dead_code_threshold = dead_code_threshold
        self.use_cosine = use_cosine_codes

        self.embedding = nn.Embedding(num_vq_embeddings, vq_embed_dim)
        self.embedding.weight.data.uniform_(-1.0 / num_vq_embeddings, 1.0 / num_vq_embeddings)  # as diffusers
        # DDP must not wait for a gradient that never comes when the codebook follows EMAs
        self.embedding.weight.requires_grad_(not self.use_ema)
        self.register_buffer("initialized", torch.tensor(not kmeans_init))
        self._known_initialized = not kmeans_init  # Python-side copy: no host sync per step once True
        self.register_buffer("cluster_size", torch.ones(num_vq_embeddings))  # EMA of assignments per step
        if self.use_ema:
            self.register_buffer("embed_sum", self.embedding.weight.data.clone())  # EMA of assigned vector sums

    # lookup (pure functions of the current codebook: no state changes)

    def _flatten(self, z: torch.Tensor) -> torch.Tensor:
        """(B, D, h, w) -> (B*h*w, D) float32, normalised for cosine codes."""
        flat = z.permute(0, 2, 3, 1).reshape(-1, self.vq_embed_dim).float()
        return F.normalize(flat, dim=-1) if self.use_cosine else flat

    def codebook(self) -> torch.Tensor:
        """The codes as used by the lookup, (K, D)."""
        weight = self.embedding.weight
        return F.normalize(weight, dim=-1) if self.use_cosine else weight

    def lookup_ids(self, z: torch.Tensor) -> torch.Tensor:
        """Ids of the nearest codes to `z` (B, D, h, w) as (B, h, w) int64. Never changes any state."""
        batch, _, height, width = z.shape
        # cdist, as diffusers' quantizer uses, so that ids match stock VQModel exactly
        ids = torch.cdist(self._flatten(z), self.codebook().float()).argmin(dim=1)
        return ids.view(batch, height, width)

    def get_codebook_entry(self, indices: torch.Tensor, shape: tuple[int, ...] | None = None) -> torch.Tensor:
        """Codes for `indices`; with `shape=(B, h, w, D)` returned as (B, D, h, w), as in diffusers."""
        z_q = F.embedding(indices, self.codebook())
        if shape is not None:
            z_q = z_q.view(shape).permute(0, 3, 1, 2).contiguous()
        return z_q

    # training-time codebook maintenance

    @torch.no_grad()
    def _initialise_by_kmeans(self, flat: torch.Tensor) -> None:
        centroids, counts = kmeans(flat, self.n_e, self.kmeans_iters)
        if self.use_cosine:
            centroids = F.normalize(centroids, dim=-1)
        self.embedding.weight.data.copy_(centroids)
        self.cluster_size.copy_(counts.clamp(min=1.0))  # empty clusters keep their centroid under the EMA
        if self.use_ema:
            self.embed_sum.copy_(centroids * self.cluster_size[:, None])
        self.initialized.fill_(True)
        _broadcast_from_main(*self._state_tensors())

    def _state_tensors(self) -> list[torch.Tensor]:
        tensors = [self.embedding.weight.data, self.cluster_size]
        return tensors + [self.embed_sum] if self.use_ema else tensors

    @torch.no_grad()
    def _update_statistics(self, flat: torch.Tensor, ids: torch.Tensor, counts: torch.Tensor) -> None:
        self.cluster_size.mul_(self.decay).add_(counts, alpha=1 - self.decay)
        if not self.use_ema:
            return
        sums = _all_reduce_sum(torch.zeros_like(self.embed_sum).index_add_(0, ids, flat))
        self.embed_sum.mul_(self.decay).add_(sums, alpha=1 - self.decay)
        total = self.cluster_size.sum()
        smoothed = (self.cluster_size + self.eps) / (total + self.n_e * self.eps) * total
        weight = self.embed_sum / smoothed[:, None]
        self.embedding.weight.data.copy_(F.normalize(weight, dim=-1) if self.use_cosine else weight)

    @torch.no_grad()
    def _restart_dead_codes(self, flat: torch.Tensor) -> None:
        # no host sync (no `if dead.any()`): a candidate for every code, kept only where the code is dead, so a
        # compiled training step stays one graph
        dead = self.cluster_size < self.dead_code_threshold  # identical on every rank: statistics are all-reduced
        replacements = _sample_rows(flat, self.n_e).to(self.embedding.weight.dtype)
        _broadcast_from_main(replacements)
        self.embedding.weight.data.copy_(torch.where(dead[:, None], replacements, self.embedding.weight.data))
        self.cluster_size.copy_(torch.where(dead, torch.full_like(self.cluster_size, self.dead_code_threshold),
                                            self.cluster_size))  # fmt: skip
        if self.use_ema:
            self.embed_sum.copy_(torch.where(dead[:, None], replacements * self.dead_code_threshold, self.embed_sum))

    # forward

    def forward(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, QuantizerInfo]:
        """Quantize `z` (B, D, h, w). Returns `(z_q, loss, QuantizerInfo)`; `z_q` passes straight-through gradients.

        In training mode this also runs k-means initialisation (once), the EMA updates and dead-code restarts.
        """
        batch, _, height, width = z.shape
        with torch.autocast(device_type=z.device.type, enabled=False):  # distances in float32 under bf16
            flat = self._flatten(z)
            if self.training and not self._known_initialized:
                if not bool(self.initialized):  # a host sync, only until the codebook is known to be initialised
                    self._initialise_by_kmeans(flat.detach())
                self._known_initialized = True
            ids = torch.cdist(flat, self.codebook().float()).argmin(dim=1)
            z_q = F.embedding(ids, self.codebook()).float()  # the codes as they were when the ids were chosen
            commitment = F.mse_loss(flat, z_q.detach())
            loss = self.beta * commitment if self.use_ema else self.beta * commitment + F.mse_loss(z_q, flat.detach())
            z_q = flat + (z_q - flat).detach()  # straight-through estimator

            counts = code_counts(ids, self.n_e)
            if self.training:  # every rank trains in step; an eval forward may run on one rank only (no collective)
                counts = _all_reduce_sum(counts)
                self._update_statistics(flat.detach(), ids, counts)
                if self.dead_code_threshold > 0:
                    self._restart_dead_codes(flat.detach())
            probs = counts / counts.sum()
            perplexity = torch.exp(-(probs * torch.log(probs + 1e-10)).sum())
            usage = (counts > 0).float().mean()
        z_q = z_q.view(batch, height, width, -1).permute(0, 3, 1, 2).contiguous().to(z.dtype)
        return z_q, loss, QuantizerInfo(perplexity, usage, ids.view(batch, height, width))
