"""Pieces of the training loop every example script shares."""

from __future__ import annotations

import math
import time

import torch
from accelerate import Accelerator


def check_finite_loss(accelerator: Accelerator, loss: torch.Tensor, step: int) -> float:
    """Stop every process, before the update, when any process's loss is NaN or infinite: the weights and the
    checkpoints written so far stay as they were. Returns the loss averaged over the processes."""
    losses = accelerator.gather(loss.detach().float().reshape(1))
    if not torch.isfinite(losses).all():
        raise FloatingPointError(
            f"Non-finite loss {losses.tolist()} at step {step}: training stopped before applying it, so the last "
            "checkpoint is intact; resume it with --resume_from_checkpoint latest (e.g. with a lower --learning_rate "
            "or --mixed_precision no)."
        )
    return float(losses.mean())


def backward_and_step(
    accelerator: Accelerator,
    loss: torch.Tensor,
    model: torch.nn.Module,
    optimizer,
    lr_scheduler,
    max_grad_norm: float,
    step: int,
) -> float:
    """Finite-loss check, backward, gradient clipping (on the step that syncs gradients), optimiser and scheduler
    step, zero grads. `step` is the optimisation step being taken (1-based), for the error message. Returns the
    loss averaged over the processes (what a single process with the whole batch would report)."""
    mean_loss = check_finite_loss(accelerator, loss, step)
    accelerator.backward(loss)
    if accelerator.sync_gradients and max_grad_norm > 0:
        accelerator.clip_grad_norm_(model.parameters(), max_grad_norm)
    optimizer.step()
    lr_scheduler.step()
    optimizer.zero_grad(set_to_none=True)
    return mean_loss


def resumed_batches(accelerator: Accelerator, loader, global_step: int, gradient_accumulation_steps: int):
    """The batches of the epoch that `global_step` falls in, without those a resumed run already trained on."""
    steps_per_epoch = math.ceil(len(loader) / gradient_accumulation_steps)
    epoch, skip = divmod(global_step, steps_per_epoch)
    loader.set_epoch(epoch)
    return accelerator.skip_first_batches(loader, skip * gradient_accumulation_steps)


def out_of_time(accelerator: Accelerator, start: float, max_minutes: float | None) -> bool:
    """True on every rank once any rank has trained `max_minutes` since `start` (`time.monotonic()`)."""
    if max_minutes is None:
        return False
    flag = torch.tensor(float(time.monotonic() - start > 60 * max_minutes), device=accelerator.device)
    return bool(accelerator.reduce(flag, reduction="sum") > 0)  # every rank stops at the same step
