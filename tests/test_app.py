"""The web demo's functions (`hf_vqgen.demo.functions`, `hf_vqgen.demo.loading`), called as the page calls them, on
tiny saved pipelines; and the page itself built (not served) from `examples/app.py`."""

import importlib.util
import itertools
import json
from pathlib import Path

import numpy as np
import PIL.Image
import pytest
import torch
from transformers import GPT2LMHeadModel

from hf_vqgen import TokenLayout, VQGenPipeline
from hf_vqgen.data import FASHION_MNIST_CLASSES
from hf_vqgen.data.emoji import EMOJI_CATEGORIES, EMOJI_STYLES
from hf_vqgen.demo.functions import (
    DISPLAY_SIZE,
    complete,
    editor_image_and_mask,
    grid_shape,
    inpaint,
    load_image,
    prepare_image,
    reverse_process,
    sample,
    token_mask_from_pixels,
)
from hf_vqgen.demo.loading import (
    DemoInputError,
    DemoPipeline,
    class_choices,
    gallery_images,
    load_demo_pipelines,
    read_card,
)

from .conftest import tiny_vqvae
from .pipelines.test_pipeline_discrete_diffusion import tiny_pipeline as tiny_diffusion
from .pipelines.test_pipeline_vqgen import tiny_pipeline as tiny_ar


ROOT = Path(__file__).resolve().parents[1]
EMOJI_CARD = {"dataset": "emoji", "hyperparameters": {"dataset_name": "emoji", "label_columns": ["label", "style"]}}


def save_tiny_pipelines(folder: Path) -> tuple[Path, Path]:
    """The tests' tiny AR and diffusion pipelines (8x8 grey images, 4x4 tokens, 3 classes), saved."""
    ar, diffusion = folder / "ar", folder / "diffusion"
    tiny_ar().save_pretrained(ar)
    tiny_diffusion().save_pretrained(diffusion)
    return ar, diffusion


@pytest.fixture(scope="module")
def entries(tmp_path_factory):
    return load_demo_pipelines([str(path) for path in save_tiny_pipelines(tmp_path_factory.mktemp("pipelines"))])


def rgb_entry() -> DemoPipeline:
    vqvae = tiny_vqvae(in_channels=3, out_channels=3).eval()
    layout = TokenLayout.for_tokenizer(vqvae)
    torch.manual_seed(0)
    prior = GPT2LMHeadModel(layout.gpt2_config(n_layer=1, n_head=2, n_embd=16)).eval()
    pipeline = VQGenPipeline(vqvae=vqvae, prior=prior)
    pipeline.set_progress_bar_config(disable=True)
    return DemoPipeline("rgb (AR)", pipeline, "rgb", class_choices(0))


# class names


def test_class_names_come_from_the_card_the_dataset_or_numbers():
    fashion = class_choices(10, {"dataset": "fashion_mnist"})
    assert fashion.names == FASHION_MNIST_CLASSES and fashion.levels == (FASHION_MNIST_CLASSES,)
    assert fashion.class_labels(["Sneaker"], 2) == [7, 7]
    assert fashion.class_labels([fashion.any_choice(0)], 12) == [*range(10), 0, 1]
    recorded = class_choices(2, {"dataset": "fashion_mnist", "class_names": ["cat", "dog"]})
    assert recorded.names == ("cat", "dog")
    assert class_choices(3, {"dataset": "fashion_mnist"}).names == ("class 0", "class 1", "class 2")  # wrong count
    assert class_choices(3).names == ("class 0", "class 1", "class 2")
    unconditional = class_choices(0)
    assert unconditional.levels == () and unconditional.class_labels([None], 4) is None
    with pytest.raises(DemoInputError, match="Unknown class 'Hat'"):
        fashion.class_labels(["Hat"], 1)


def test_emoji_classes_are_picked_as_category_and_style():
    recorded = {i: f"{c} / {s}" for i, (c, s) in enumerate(itertools.product(EMOJI_CATEGORIES, EMOJI_STYLES))}
    choices = class_choices(30, EMOJI_CARD, recorded)  # the names the training run recorded (pipeline.id2label)
    assert choices.levels == (EMOJI_CATEGORIES, EMOJI_STYLES) and choices.level_labels == ("category", "style")
    assert choices.names[0] == f"{EMOJI_CATEGORIES[0]} / {EMOJI_STYLES[0]}"
    category, style = EMOJI_CATEGORIES.index("Animals & Nature"), EMOJI_STYLES.index("twemoji")
    assert choices.class_labels(["Animals & Nature", "twemoji"], 1) == [category * 3 + style]
    assert choices.names[category * 3 + style] == "Animals & Nature / twemoji"
    assert choices.class_labels(["Flags", None], 4) == [27, 28, 29, 27]  # every style of one category
    assert choices.class_labels([None, choices.any_choice(1)], 30) == list(range(30))
    only_categories = class_choices(10, {"dataset": "emoji", "hyperparameters": {"label_columns": ["label"]}})
    assert only_categories.levels == (EMOJI_CATEGORIES,)


def test_the_card_is_read_from_its_context_else_from_the_readme(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "model_card.json").write_text(json.dumps(EMOJI_CARD))
    assert read_card(tmp_path / "a")["dataset"] == "emoji"
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "README.md").write_text("---\ndatasets:\n- zalando-datasets/fashion_mnist\n---\n# card\n")
    assert read_card(tmp_path / "b")["dataset"] == "fashion_mnist"
    assert read_card(tmp_path) == {}


# loading and galleries


def test_pipelines_load_with_names_datasets_and_test_images(entries):
    ar, diffusion = entries
    assert (ar.name, diffusion.name) == ("ar (AR)", "diffusion (diffusion)")
    assert not ar.has_reverse_process and diffusion.has_reverse_process and diffusion.max_steps == 20
    assert ar.dataset == diffusion.dataset  # no card: grouped by image size, so shown side by side
    assert ar.classes.names == ("class 0", "class 1", "class 2")
    assert ar.test_images and ar.test_images[0].size == (8, 8)  # drawn shapes: no dataset is known


def test_galleries_come_from_shipped_images_or_fashion_mnist_or_nothing(tmp_path, fake_fashion_mnist):
    (tmp_path / "test_images").mkdir()
    for i in range(2):
        PIL.Image.new("RGB", (64, 64), (i, 0, 0)).save(tmp_path / "test_images" / f"{i}.png")
    PIL.Image.new("RGBA", (64, 64), (0, 0, 0, 0)).save(tmp_path / "test_images" / "2.png")  # transparent: on white
    pixels = [im.getpixel((0, 0)) for im in gallery_images(tmp_path, "emoji", 64, 3)]
    assert pixels == [(0, 0, 0), (1, 0, 0), (255, 255, 255)]
    fashion = gallery_images(tmp_path / "none", "fashion_mnist", 28, 1)
    assert fashion and {im.size for im in fashion} == {(28, 28)}  # one per class found in the (fake) test split
    assert gallery_images(tmp_path / "none", "emoji", 64, 3) == []  # upload only


def test_a_pipeline_without_test_images_shares_those_of_its_dataset(tmp_path):
    ar, diffusion = save_tiny_pipelines(tmp_path)
    for folder, dataset in ((ar, "emoji"), (diffusion, "emoji")):
        (folder / "model_card.json").write_text(json.dumps({"dataset": dataset}))
    (ar / "test_images").mkdir()
    PIL.Image.new("L", (8, 8), 7).save(ar / "test_images" / "0.png")
    with_images, without = load_demo_pipelines([str(ar), str(diffusion)])
    assert without.test_images == with_images.test_images and without.test_images[0].getpixel((0, 0)) == 7
    (diffusion / "model_card.json").write_text(json.dumps({"dataset": "another"}))
    assert load_demo_pipelines([str(ar), str(diffusion)])[1].test_images == []  # not another dataset's images


# the four tabs


def test_samples_are_a_grid_of_the_batch_and_the_seed_reproduces_them(entries):
    ar, diffusion = entries
    first = sample(ar, ["class 1"], guidance_scale=2.0, top_k=5, batch_size=10, seed=3)
    rows, columns = grid_shape(10)
    assert first.size == (columns * DISPLAY_SIZE, rows * DISPLAY_SIZE)  # 8x8 images enlarged 16 times
    assert np.array_equal(np.asarray(first), np.asarray(sample(ar, ["class 1"], 2.0, top_k=5, batch_size=10, seed=3)))
    assert not np.array_equal(np.asarray(first), np.asarray(sample(ar, ["class 1"], 2.0, top_k=5, batch_size=10)))
    reports = []
    grid = sample(diffusion, [None], num_inference_steps=4, batch_size=3, progress=lambda *r: reports.append(r))
    assert grid.size == (3 * DISPLAY_SIZE, DISPLAY_SIZE)
    assert [fraction for fraction, _ in reports] == [0.25, 0.5, 0.75, 1.0] and "step 4 of 4" in reports[-1][1]


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"batch_size": 0}, "batch size must be a whole number from 1 to 16"),
        ({"seed": -1}, "seed must be a whole number"),
        ({"seed": None}, "seed must be a whole number"),
        ({"num_inference_steps": 21}, "number of steps must be a whole number from 1 to 20"),
    ],
)
def test_bad_settings_are_named(entries, kwargs, message):
    with pytest.raises(DemoInputError, match=message):
        sample(entries[1], **kwargs)


@pytest.mark.parametrize("num_rows", [0, 2, 4])
def test_completions_show_original_reconstruction_and_both_priors(entries, num_rows):
    ar, diffusion = entries
    shown = complete(ar, diffusion, ar.test_images[0], num_rows, num_samples=2, num_inference_steps=3)
    assert [caption for _, caption in shown] == [
        f"original, {num_rows} rows kept", "reconstruction", "AR 1", "AR 2", "diffusion 1", "diffusion 2"
    ]  # fmt: skip
    assert {image.size for image, _ in shown} == {(DISPLAY_SIZE, DISPLAY_SIZE)}
    again = complete(ar, diffusion, ar.test_images[0], num_rows, num_samples=2, num_inference_steps=3)
    assert all(np.array_equal(np.asarray(a), np.asarray(b)) for (a, _), (b, _) in zip(shown, again))
    assert len(complete(None, diffusion, ar.test_images[0], num_rows, num_samples=1)) == 3  # one prior is enough
    with pytest.raises(DemoInputError, match="kept rows must be a whole number from 0 to 4"):
        complete(ar, diffusion, ar.test_images[0], 5)


def test_an_enlarged_gallery_image_comes_back_exactly(entries):
    image = entries[0].test_images[1]
    enlarged = image.resize((128, 128), PIL.Image.NEAREST)
    assert torch.equal(prepare_image(entries[0], enlarged), prepare_image(entries[0], image))


def test_inpainting_resamples_only_the_painted_tokens(entries):
    ar, diffusion = entries
    image = ar.test_images[0].resize((32, 32), PIL.Image.NEAREST)
    mask = np.zeros((32, 32), dtype=bool)
    mask[0:3, 0:3] = True  # one token of the 4x4 grid
    shown = inpaint(diffusion, image, mask, num_samples=2, num_inference_steps=3)
    assert [caption for _, caption in shown] == ["original", "1 tokens", "sample 1", "sample 2"]
    with pytest.raises(DemoInputError, match="mask is empty"):
        inpaint(diffusion, image, np.zeros((32, 32), dtype=bool))
    with pytest.raises(DemoInputError, match="mask is 8x8 pixels"):
        inpaint(diffusion, image, np.ones((8, 8), dtype=bool))
    with pytest.raises(DemoInputError, match="not a diffusion pipeline"):
        inpaint(ar, image, mask)


def test_token_mask_follows_the_center_crop():
    mask = np.zeros((16, 24), dtype=bool)  # wider than tall: 4 columns each side are cropped away
    mask[0, 4] = True
    tokens = token_mask_from_pixels(mask, (4, 4))
    assert tokens.nonzero().tolist() == [[0, 0]]
    mask[:, :4] = True  # painted only where the crop removes it
    mask[0, 4] = False
    with pytest.raises(DemoInputError, match="mask is empty"):
        token_mask_from_pixels(mask, (4, 4))


def test_the_image_editor_value_gives_the_image_and_its_painted_area():
    background = PIL.Image.new("RGB", (16, 16), "white")
    layer = PIL.Image.new("RGBA", (32, 32), (0, 0, 0, 0))
    layer.paste((255, 0, 0, 255), (0, 0, 8, 8))  # a layer twice the background's size: resized to it
    image, mask = editor_image_and_mask({"background": background, "layers": [layer], "composite": background})
    assert image.size == (16, 16) and mask.shape == (16, 16) and mask.sum() == 16
    with pytest.raises(DemoInputError, match="Nothing is painted"):
        editor_image_and_mask({"background": background, "layers": [PIL.Image.new("RGBA", (16, 16))]})
    with pytest.raises(DemoInputError, match="No image"):
        editor_image_and_mask({"background": None, "layers": []})


def test_reverse_process_gives_every_step_and_a_gif(entries, tmp_path):
    frames, gif_path = reverse_process(entries[1], ["class 2"], 5, seed=1, guidance_scale=2.0, output_dir=tmp_path)
    assert [caption for _, caption in frames] == [f"step {i}" for i in range(1, 6)]
    with PIL.Image.open(gif_path) as gif:
        assert gif.is_animated and gif.size == (DISPLAY_SIZE, DISPLAY_SIZE)
    with pytest.raises(DemoInputError, match="not a diffusion pipeline"):
        reverse_process(entries[0], output_dir=tmp_path)


# bad input


def test_bad_uploads_get_a_readable_message(entries, tmp_path):
    (tmp_path / "notes.png").write_text("not an image")
    PIL.Image.new("L", (4097, 4097)).save(tmp_path / "huge.png")
    PIL.Image.new("L", (64, 64), 128).save(tmp_path / "ok.png")
    (tmp_path / "truncated.png").write_bytes((tmp_path / "ok.png").read_bytes()[:60])
    with pytest.raises(DemoInputError, match="No image"):
        load_image(None)
    with pytest.raises(DemoInputError, match="notes.png is not an image"):
        load_image(tmp_path / "notes.png")
    with pytest.raises(DemoInputError, match="4097x4097 pixels; upload one of at most 4096x4096"):
        load_image(tmp_path / "huge.png")
    with pytest.raises(DemoInputError, match="could not be decoded|is not an image"):
        load_image(tmp_path / "truncated.png")
    with pytest.raises(DemoInputError, match="mode 'HSV' is not supported"):
        prepare_image(entries[0], PIL.Image.new("HSV", (8, 8)))


def test_a_grey_image_for_a_colour_pipeline_is_used_with_a_note():
    entry, notes = rgb_entry(), []
    shown = complete(entry, None, PIL.Image.new("L", (8, 8), 100), 2, num_samples=1, notes=notes)
    assert len(shown) == 3 and notes == [
        "The image is greyscale; this pipeline works in colour, so it was used as grey RGB."
    ]  # fmt: skip


# the page


@pytest.fixture(scope="module")
def app():
    pytest.importorskip("gradio")
    spec = importlib.util.spec_from_file_location("hf_vqgen_app", ROOT / "examples" / "app.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_page_builds_from_the_same_functions(app, entries, tmp_path):
    import gradio as gr

    demo = app.build_demo(entries, tmp_path)
    assert isinstance(demo, gr.Blocks)
    assert {"sample-button", "complete-button", "inpaint-button", "reverse-button"} <= {
        block.elem_id for block in demo.blocks.values()
    }  # fmt: skip
    failing = app.readable(lambda: load_image(None))
    with pytest.raises(gr.Error, match="No image"):
        failing()
    with pytest.raises(gr.Error, match=r"Something went wrong \(KeyError"):
        app.readable(lambda: {}["x"])()
    assert app.parse_args(["--pipeline", "a", "--pipeline", "b", "--port", "0"]).pipelines == ["a", "b"]


def test_switching_pipelines_gives_widget_settings_gradio_accepts(app, entries):
    import gradio as gr

    for entry in [*entries, rgb_entry()]:  # AR, diffusion, unconditional AR
        class_a, class_b, guidance, top_k, steps = app.sample_settings(entry)
        for setting in (class_a, class_b):
            gr.Dropdown(**setting)
        gr.Slider(0, 5, **guidance)
        gr.Slider(0, **top_k)
        gr.Slider(1, **{"maximum": 100, **steps})  # was: maximum 1 for an AR pipeline, refused by Gradio
        assert steps["visible"] == entry.has_reverse_process
