"""Lets `diffusers.DiffusionPipeline.from_pretrained(..., custom_pipeline=...)` find the pipeline class; needs `pip install hf_vqgen`."""

from hf_vqgen.pipelines.pipeline_discrete_diffusion import DiscreteDiffusionPipeline  # noqa: F401
