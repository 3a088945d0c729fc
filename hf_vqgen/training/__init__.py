from .checkpointing import list_checkpoints, load_checkpoint, resolve_resume_checkpoint, save_checkpoint
from .losses import VQGANLoss, VQGANLossConfig
from .tracking import init_trackers


__all__ = [
    "VQGANLoss",
    "VQGANLossConfig",
    "init_trackers",
    "list_checkpoints",
    "load_checkpoint",
    "resolve_resume_checkpoint",
    "save_checkpoint",
]
