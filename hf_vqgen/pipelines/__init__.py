from .pipeline_vqgen import VQGenPipeline, VQGenPipelineOutput


__all__ = ["VQGenPipeline", "VQGenPipelineOutput"]
