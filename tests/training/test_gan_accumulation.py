"""With gradient accumulation, the discriminator learns from every micro-batch of an optimisation step, and the
generator's backward leaves nothing on it."""

import copy
import sys
from pathlib import Path

import torch

from hf_vqgen.training.accelerator import build_accelerator

from ..test_examples import TINY_VQVAE_ARGS


sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "examples"))
import train_vqvae  # noqa: E402


def test_discriminator_gradient_is_the_sum_over_accumulated_micro_batches(tmp_path, fake_fashion_mnist):
    args = train_vqvae.parse_args(TINY_VQVAE_ARGS + [
        "--output_dir", str(tmp_path / "run"), "--gradient_accumulation_steps", "2", "--disc_weight", "0.5",
        "--disc_start", "0", "--max_train_steps", "1",
    ])  # fmt: skip
    accelerator = build_accelerator(args)
    parts = train_vqvae.build_components(args, accelerator)
    discriminator = accelerator.unwrap_model(parts.discriminator)
    initial = copy.deepcopy(discriminator)  # D does not change before the syncing step's optimizer step
    seen, captured = [], {}
    original_loss = parts.criterion.discriminator_loss

    def recording_loss(real, fake, disc):
        seen.append((real.detach().clone(), fake.detach().clone()))
        return original_loss(real, fake, disc)

    parts.criterion.discriminator_loss = recording_loss
    disc_optimizer = parts.optimizers[1]
    original_step = disc_optimizer.optimizer.step

    def capturing_step(*a, **k):
        captured["grads"] = [p.grad.clone() for p in discriminator.parameters()]
        return original_step(*a, **k)

    disc_optimizer.optimizer.step = capturing_step
    batches = iter(parts.train_loader)
    for micro_step in range(2):
        train_vqvae.training_step(next(batches), parts, accelerator, args, step=0)
        if micro_step == 0:  # the generator's backward must have left no gradient on D
            assert "grads" not in captured

    expected = [torch.zeros_like(p) for p in initial.parameters()]
    for real, fake in seen:
        reference = copy.deepcopy(initial)
        loss, _ = original_loss(real, fake, reference)
        grads = torch.autograd.grad(loss / 2, list(reference.parameters()))  # accelerate divides by the steps
        expected = [e + g for e, g in zip(expected, grads)]
    assert len(seen) == 2 and "grads" in captured
    for got, want in zip(captured["grads"], expected):
        torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-6)
