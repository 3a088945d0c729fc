from .loading import load_pipeline
from .pipeline_discrete_diffusion import DiscreteDiffusionPipeline, DiscreteDiffusionPipelineOutput
from .pipeline_vqgen import VQGenPipeline
from .reverse_process import export_reverse_process
from .token_pipeline import TokenImagePipelineOutput, VQGenPipelineOutput


__all__ = [
    "DiscreteDiffusionPipeline",
    "DiscreteDiffusionPipelineOutput",
    "VQGenPipeline",
    "TokenImagePipelineOutput",
    "VQGenPipelineOutput",
    "export_reverse_process",
    "load_pipeline",
]
