from .scheduling_discrete_diffusion import DiscreteDiffusionScheduler, DiscreteDiffusionSchedulerOutput


__all__ = ["DiscreteDiffusionScheduler", "DiscreteDiffusionSchedulerOutput"]
