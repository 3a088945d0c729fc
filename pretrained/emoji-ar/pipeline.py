"""Lets `diffusers.DiffusionPipeline.from_pretrained(..., custom_pipeline=...)` find the pipeline class; needs `pip install hf_vqgen`."""

from hf_vqgen.pipelines.pipeline_vqgen import VQGenPipeline  # noqa: F401
