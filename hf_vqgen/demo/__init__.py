"""The web demo's logic without Gradio (`examples/app.py` wires it to widgets): `loading` finds the pipelines, their
class names and gallery images; `functions` samples, completes, inpaints and shows the reverse process."""
