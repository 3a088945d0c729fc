from .checkpointing import list_checkpoints, load_checkpoint, resolve_resume_checkpoint, save_checkpoint
from .images import reconstruction_grid, to_pil_images
from .losses import VQGANLoss, VQGANLossConfig
from .tracking import init_trackers


__all__ = [
    "VQGANLoss",
    "VQGANLossConfig",
    "init_trackers",
    "list_checkpoints",
    "load_checkpoint",
    "reconstruction_grid",
    "resolve_resume_checkpoint",
    "save_checkpoint",
    "to_pil_images",
]
