from .checkpointing import list_checkpoints, resolve_resume_checkpoint, save_checkpoint
from .images import reconstruction_grid, to_pil_images
from .losses import VQGANLoss, VQGANLossConfig


__all__ = [
    "VQGANLoss",
    "VQGANLossConfig",
    "list_checkpoints",
    "reconstruction_grid",
    "resolve_resume_checkpoint",
    "save_checkpoint",
    "to_pil_images",
]
