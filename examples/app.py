"""A web demo over hf_vqgen pipelines (Gradio): Sample, Complete, Inpaint and Reverse diffusion tabs.

    python examples/app.py                                       # the shipped pipelines found in pretrained/
    python examples/app.py --pipeline DIR_OR_REPO_ID --pipeline ... --port 7860

Each button calls a plain function of `hf_vqgen.demo.functions` (the same ones the tests call); bad input shows a
message in the page and the app keeps serving. Needs the `app` extra (`pip install -e ".[app]"`); `make app`.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import logging
import os
import tempfile
from pathlib import Path

import gradio as gr

from hf_vqgen.demo.functions import (
    MAX_BATCH_SIZE,
    complete,
    editor_image_and_mask,
    enlarge,
    inpaint,
    load_image,
    model_view,
    reverse_process,
    sample,
)
from hf_vqgen.demo.loading import DemoInputError, DemoPipeline, load_demo_pipelines


logger = logging.getLogger("hf_vqgen.app")
ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ("fashion-mnist-ar", "fashion-mnist-diffusion", "emoji-ar", "emoji-diffusion")
MAX_FILE_SIZE = "20mb"
# system fonts: the default theme's web fonts would be fetched from the internet by the browser
THEME = gr.themes.Default(font=["ui-sans-serif", "system-ui", "sans-serif"], font_mono=["ui-monospace", "monospace"])
CSS = """
.pixels img { image-rendering: pixelated; }  /* small model images stay crisp when the browser enlarges them */
.fit .grid-container { grid-template-columns: repeat(var(--grid-cols), minmax(0, 1fr)) !important;
  grid-auto-rows: auto !important; }
.fit .thumbnail-item { width: auto !important; height: auto !important; aspect-ratio: 1; }  /* columns fit the box */
"""
# Gradio reads this default to pass each call its own tracker (following tqdm bars: the AR loop reports through one)
PROGRESS = gr.Progress(track_tqdm=True)
QUEUE = "pipelines"  # one job at a time: the pipelines (and their schedulers' state) are shared by every tab


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pipeline", action="append", dest="pipelines", metavar="DIR_OR_REPO_ID",
                        help="a saved pipeline (folder or Hub repo id); repeat for more. Default: the shipped "
                             f"pipelines that exist among pretrained/{{{','.join(SHIPPED)}}}")  # fmt: skip
    parser.add_argument("--host", default=None, help="default: $GRADIO_SERVER_NAME or 127.0.0.1")
    parser.add_argument("--port", type=int, default=None, help="default: $GRADIO_SERVER_PORT or 7860")
    return parser.parse_args(argv)


def default_pipelines() -> list[str]:
    found = [ROOT / "pretrained" / name for name in SHIPPED]
    return [str(path) for path in found if (path / "model_index.json").is_file()]


def readable(fn):
    """Run `fn` for the page: bad input becomes its message in the page, anything else a short error (the trace
    goes to the server's log); the app keeps serving either way."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except gr.Error:
            raise
        except (DemoInputError, ValueError, TypeError) as error:
            raise gr.Error(str(error), print_exception=False) from None
        except Exception as error:
            logger.exception("%s failed", fn.__name__)
            raise gr.Error(f"Something went wrong ({type(error).__name__}: {error}).", print_exception=False) from None

    return wrapper


def reporter(progress: gr.Progress):
    return lambda fraction, description: progress(fraction, desc=description)


# widgets shared by the tabs


def class_settings(entry: DemoPipeline) -> list[dict]:
    """Settings of the two class dropdowns for `entry`: one list of names, two (category, style), or none."""
    classes, settings = entry.classes, []
    for level in range(2):
        if level < len(classes.levels):
            any_choice = classes.any_choice(level)
            label = classes.level_labels[level].capitalize()
            settings.append({"choices": [any_choice, *classes.levels[level]], "value": any_choice, "label": label})
        else:
            settings.append({"choices": [], "value": None, "label": "", "visible": False})
    return [{"visible": True, **setting} for setting in settings]


def class_dropdowns(entry: DemoPipeline) -> tuple[gr.Dropdown, gr.Dropdown]:
    first, second = class_settings(entry)
    return gr.Dropdown(interactive=True, **first), gr.Dropdown(interactive=True, **second)


def steps_settings(entry: DemoPipeline | None, value: int = 8) -> dict:
    """The diffusion-steps slider for `entry`: up to its scheduler's timesteps; hidden for an AR pipeline."""
    if entry is None or not entry.has_reverse_process:
        return {"visible": False}
    maximum = max(entry.max_steps, 2)  # a slider needs minimum < maximum
    return {"visible": True, "maximum": maximum, "value": min(value, maximum)}


def steps_slider(entry: DemoPipeline | None, value: int = 8) -> gr.Slider:
    return gr.Slider(
        1, **{"maximum": 100, "value": value, **steps_settings(entry, value)}, step=1, label="Diffusion steps"
    )


def sample_settings(entry: DemoPipeline) -> list[dict]:
    """The Sample tab's widgets for `entry`: the two class dropdowns, guidance, top-k and the steps slider."""
    guidance = {"value": 1.5 if entry.classes.levels else 1.0}
    return [*class_settings(entry), guidance, {"maximum": entry.pipeline.layout.num_codes}, steps_settings(entry)]


def thumbnails(paths: list[str], elem_id: str) -> gr.Gallery:
    return gr.Gallery(paths, label="Test images (click one)", columns=5, height=180, object_fit="contain",
                      allow_preview=False, elem_classes=["pixels", "fit"], elem_id=elem_id)  # fmt: skip


def save_gallery(entry: DemoPipeline, folder: Path) -> list[str]:
    """`entry`'s test images, enlarged, as PNG files in `folder` (what the galleries show and hand to the inputs)."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, image in enumerate(entry.test_images):
        paths.append(str(folder / f"{i}.png"))
        enlarge(image).save(paths[-1])
    return paths


# the tabs


def sample_tab(entries: list[DemoPipeline]) -> None:
    by_name = {entry.name: entry for entry in entries}
    first = entries[0]
    with gr.Row():
        with gr.Column(scale=1):
            name = gr.Dropdown(list(by_name), value=first.name, label="Pipeline")
            class_a, class_b = class_dropdowns(first)
            guidance = gr.Slider(0, 5, value=1.5 if first.classes.levels else 1.0, step=0.1, label="Guidance scale")
            temperature = gr.Slider(0, 2, value=1.0, step=0.05, label="Temperature (0 = most likely code)")
            top_k = gr.Slider(0, first.pipeline.layout.num_codes, value=0, step=1, label="Top-k (0 = off)")
            steps = steps_slider(first)
            seed = gr.Number(0, precision=0, minimum=0, label="Seed")
            batch_size = gr.Slider(1, MAX_BATCH_SIZE, value=8, step=1, label="Batch size")
            button = gr.Button("Sample", variant="primary", elem_id="sample-button")
        output = gr.Image(
            label="Samples", type="pil", format="png", interactive=False, scale=2, elem_id="sample-output"
        )

    def select(selected):
        return [gr.update(**setting) for setting in sample_settings(by_name[selected])]

    name.change(select, name, [class_a, class_b, guidance, top_k, steps])

    @readable
    def run(selected, a, b, guidance, temperature, top_k, steps, seed, batch_size, progress=PROGRESS):
        return sample(
            by_name[selected], [a, b], guidance, temperature, top_k, steps, seed, batch_size, reporter(progress)
        )

    inputs = [name, class_a, class_b, guidance, temperature, top_k, steps, seed, batch_size]
    button.click(run, inputs, output, concurrency_id=QUEUE)


def datasets_of(entries: list[DemoPipeline]) -> dict[str, tuple[DemoPipeline | None, DemoPipeline | None]]:
    """dataset -> (its first AR pipeline, its first diffusion pipeline)."""
    groups: dict[str, list] = {}
    for entry in entries:
        pair = groups.setdefault(entry.dataset, [None, None])
        slot = int(entry.has_reverse_process)
        pair[slot] = pair[slot] or entry
    return {dataset: (ar, diffusion) for dataset, (ar, diffusion) in groups.items()}


def upload_box(elem_id: str) -> gr.File:
    """An upload field for one image. Uploads go through `hf_vqgen.demo.functions.load_image` before any image widget
    sees them, so a file that is no image gets a readable message rather than a failing widget."""
    return gr.File(file_types=["image"], type="filepath", label="...or upload one", height=120, elem_id=elem_id)


@contextlib.contextmanager
def refused_uploads():
    """Show why an upload cannot be used, as a warning: the handler then returns normally and empties the upload
    field (after an error Gradio would leave the refused file in it)."""
    try:
        yield
    except DemoInputError as error:
        gr.Warning(str(error), title="Upload refused")


def warn(notes: list[str]) -> None:
    for note in notes:
        gr.Warning(note)


def complete_tab(entries: list[DemoPipeline], workdir: Path) -> None:
    groups = datasets_of(entries)
    galleries = {
        dataset: save_gallery(ar or diffusion, workdir / f"complete-{i}")
        for i, (dataset, (ar, diffusion)) in enumerate(groups.items())
    }
    dataset, (ar, diffusion) = next(iter(groups.items()))
    first = ar or diffusion
    with gr.Row():
        with gr.Column(scale=1):
            name = gr.Dropdown(list(groups), value=dataset, label="Dataset")
            gallery = thumbnails(galleries[dataset], "complete-gallery")
            with gr.Row():
                upload = upload_box("complete-upload")
                image = gr.Image(type="filepath", image_mode=None, interactive=False, label="Image to complete",
                                 height=120, elem_classes="pixels", elem_id="complete-input")  # fmt: skip
            rows = gr.Slider(0, first.grid_height, value=first.grid_height // 2, step=1, label="Token rows to keep")
            num_samples = gr.Slider(1, 8, value=4, step=1, label="Completions per prior")
            steps = steps_slider(diffusion)
            seed = gr.Number(0, precision=0, minimum=0, label="Seed")
            button = gr.Button("Complete", variant="primary", elem_id="complete-button")
        output = gr.Gallery(label="Original, reconstruction, completions (AR, then diffusion)", columns=6,
                            height="auto", format="png", scale=2, elem_classes="fit", elem_id="complete-output")  # fmt: skip

    def select(selected):
        ar, diffusion = groups[selected]
        height = (ar or diffusion).grid_height
        return (
            gr.update(value=galleries[selected]),
            None,
            gr.update(maximum=height, value=height // 2),
            gr.update(**steps_settings(diffusion)),
        )

    def uploaded(path):
        with refused_uploads():
            load_image(path)  # a readable message for anything that is not an image
            return path, None
        return gr.update(), None

    name.change(select, name, [gallery, image, rows, steps])

    def pick(selected, event: gr.SelectData):
        return galleries[selected][event.index]

    gallery.select(pick, name, image)
    upload.upload(uploaded, upload, [image, upload])

    @readable
    def run(selected, image, rows, num_samples, steps, seed, progress=PROGRESS):
        ar, diffusion = groups[selected]
        notes = []
        shown = complete(ar, diffusion, image, rows, num_samples, steps, seed, reporter(progress), notes)
        warn(notes)
        return shown

    button.click(run, [name, image, rows, num_samples, steps, seed], output, concurrency_id=QUEUE)


def inpaint_tab(entries: list[DemoPipeline], workdir: Path) -> None:
    by_name = {entry.name: entry for entry in entries if entry.has_reverse_process}
    if not by_name:
        gr.Markdown("Inpainting needs a diffusion pipeline; none is loaded.")
        return
    first = next(iter(by_name.values()))
    galleries = {
        name: save_gallery(entry, workdir / f"inpaint-{i}") for i, (name, entry) in enumerate(by_name.items())
    }
    with gr.Row():
        with gr.Column(scale=1):
            name = gr.Dropdown(list(by_name), value=first.name, label="Diffusion pipeline")
            gallery = thumbnails(galleries[first.name], "inpaint-gallery")
            upload = upload_box("inpaint-upload")
            editor = gr.ImageEditor(type="pil", sources=[], label="Paint over what to regenerate", layers=False,
                                    brush=gr.Brush(colors=["#ff0000"], color_mode="fixed"), transforms=(),
                                    format="png", elem_classes="pixels", elem_id="inpaint-editor")  # fmt: skip
            num_samples = gr.Slider(1, 8, value=4, step=1, label="Samples")
            steps = steps_slider(first)
            seed = gr.Number(0, precision=0, minimum=0, label="Seed")
            button = gr.Button("Inpaint", variant="primary", elem_id="inpaint-button")
        output = gr.Gallery(label="Original, tokens to regenerate, samples", columns=6, format="png", scale=2,
                            height="auto", elem_classes="fit", elem_id="inpaint-output")  # fmt: skip

    def background(path):
        return {"background": path, "layers": [], "composite": path}

    def uploaded(selected, path):
        with refused_uploads():
            notes = []
            shown = model_view(by_name[selected], path, notes)  # what the model sees, at a size one can paint on
            warn(notes)
            saved = Path(tempfile.mkdtemp(dir=workdir)) / "upload.png"
            shown.save(saved)
            return background(str(saved)), None
        return gr.update(), None

    name.change(lambda selected: gr.update(value=galleries[selected]), name, gallery)

    def pick(selected, event: gr.SelectData):
        return background(galleries[selected][event.index])

    gallery.select(pick, name, editor)
    upload.upload(uploaded, [name, upload], [editor, upload])

    @readable
    def run(selected, edited, num_samples, steps, seed, progress=PROGRESS):
        image, mask = editor_image_and_mask(edited)
        return inpaint(by_name[selected], image, mask, num_samples, steps, seed, reporter(progress))

    button.click(run, [name, editor, num_samples, steps, seed], output, concurrency_id=QUEUE)


def reverse_tab(entries: list[DemoPipeline], workdir: Path) -> None:
    by_name = {entry.name: entry for entry in entries if entry.has_reverse_process}
    if not by_name:
        gr.Markdown("The reverse process needs a diffusion pipeline; none is loaded.")
        return
    first = next(iter(by_name.values()))
    with gr.Row():
        with gr.Column(scale=1):
            name = gr.Dropdown(list(by_name), value=first.name, label="Diffusion pipeline")
            class_a, class_b = class_dropdowns(first)
            guidance = gr.Slider(0, 5, value=2.0 if first.classes.levels else 1.0, step=0.1, label="Guidance scale")
            steps = steps_slider(first, value=16)
            seed = gr.Number(0, precision=0, minimum=0, label="Seed")
            button = gr.Button("Run the reverse process", variant="primary", elem_id="reverse-button")
        with gr.Column(scale=2):
            frames = gr.Gallery(label="Step by step", columns=8, height="auto", format="png", elem_classes="fit",
                                elem_id="reverse-frames")  # fmt: skip
            gif = gr.Image(label="GIF", type="filepath", interactive=False, height=200, elem_id="reverse-gif")

    def select(selected):
        entry = by_name[selected]
        return [*(gr.update(**setting) for setting in class_settings(entry)), gr.update(**steps_settings(entry, 16))]

    name.change(select, name, [class_a, class_b, steps])

    @readable
    def run(selected, a, b, guidance, steps, seed, progress=PROGRESS):
        folder = tempfile.mkdtemp(dir=workdir)
        return reverse_process(by_name[selected], [a, b], steps, seed, guidance, folder, reporter(progress))

    button.click(run, [name, class_a, class_b, guidance, steps, seed], [frames, gif], concurrency_id=QUEUE)


def build_demo(entries: list[DemoPipeline], workdir: str | os.PathLike) -> gr.Blocks:
    """The page: one tab per task over `entries`; files it writes (galleries, GIFs) go under `workdir`."""
    if not entries:
        raise ValueError("No pipelines to show: pass --pipeline DIR_OR_REPO_ID.")
    workdir = Path(workdir)
    with gr.Blocks(title="hf_vqgen demo", analytics_enabled=False) as demo:
        gr.Markdown("## hf_vqgen: images as VQ-VAE tokens, sampled by a GPT-2 or a discrete-diffusion prior")
        with gr.Tabs():
            with gr.Tab("Sample", id="sample"):
                sample_tab(entries)
            with gr.Tab("Complete", id="complete"):
                complete_tab(entries, workdir)
            with gr.Tab("Inpaint", id="inpaint"):
                inpaint_tab(entries, workdir)
            with gr.Tab("Reverse diffusion", id="reverse"):
                reverse_tab(entries, workdir)
    demo.queue(default_concurrency_limit=1)
    return demo


def main(args: argparse.Namespace) -> None:
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    logging.basicConfig(level=logging.INFO)
    logging.getLogger("httpx").setLevel(logging.WARNING)  # Gradio's own start-up requests to itself
    sources = args.pipelines or default_pipelines()
    if not sources:
        raise SystemExit("No pipelines: none of the shipped ones is in pretrained/; pass --pipeline DIR_OR_REPO_ID.")
    entries = load_demo_pipelines(sources)
    workdir = tempfile.mkdtemp(prefix="hf_vqgen_app_")
    demo = build_demo(entries, workdir)
    _, url, _ = demo.launch(
        server_name=args.host, server_port=args.port, share=False, ssr_mode=False, max_file_size=MAX_FILE_SIZE,
        allowed_paths=[workdir], theme=THEME, css=CSS, prevent_thread_lock=True,
    )  # fmt: skip
    print(f"hf_vqgen demo running at {url} with {', '.join(entry.name for entry in entries)}", flush=True)
    demo.block_thread()


if __name__ == "__main__":
    main(parse_args())
