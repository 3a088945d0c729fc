import gzip
import struct

import numpy as np
import pytest
import torch

from hf_vqgen import VQVAEModel


def write_fake_fashion_mnist(folder):
    """Tiny Fashion-MNIST look-alike in IDX format (48 train, 24 test images) in `folder`."""
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for prefix, count in (("train", 48), ("t10k", 24)):
        images = rng.integers(0, 256, size=(count, 28, 28), dtype=np.uint8)
        labels = rng.integers(0, 10, size=count, dtype=np.uint8)
        with gzip.open(folder / f"{prefix}-images-idx3-ubyte.gz", "wb") as f:
            f.write(struct.pack(">IIII", 2051, count, 28, 28) + images.tobytes())
        with gzip.open(folder / f"{prefix}-labels-idx1-ubyte.gz", "wb") as f:
            f.write(struct.pack(">II", 2049, count) + labels.tobytes())
    return folder


@pytest.fixture
def fake_fashion_mnist(tmp_path, monkeypatch):
    """`write_fake_fashion_mnist`, pointed to by the env variable."""
    folder = write_fake_fashion_mnist(tmp_path / "fashion-mnist")
    monkeypatch.setenv("HF_VQGEN_FASHION_MNIST_DIR", str(folder))
    return folder


def tiny_vqvae(**overrides) -> VQVAEModel:
    """Two-block tokenizer: 8x8 grayscale images -> 4x4 token grids."""
    config = {
        "in_channels": 1,
        "out_channels": 1,
        "down_block_types": ("DownEncoderBlock2D",) * 2,
        "up_block_types": ("UpDecoderBlock2D",) * 2,
        "block_out_channels": (8, 16),
        "latent_channels": 8,
        "vq_embed_dim": 4,
        "norm_num_groups": 4,
        "sample_size": 8,
        "num_vq_embeddings": 32,
    }
    config.update(overrides)
    torch.manual_seed(0)
    return VQVAEModel(**config)


@pytest.fixture
def images() -> torch.Tensor:
    generator = torch.Generator().manual_seed(0)
    return torch.rand(4, 1, 8, 8, generator=generator) * 2 - 1
