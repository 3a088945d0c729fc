"""Every pipeline argument checked for type, shape and range up front, and one image rule for every way an image
enters (issue classes "every argument checked" and "one image rule for training and inference")."""

import io
import logging

import numpy as np
import PIL.Image
import pytest
import torch

from hf_vqgen.data.pixels import PixelTransform

from .test_pipeline_discrete_diffusion import tiny_pipeline as tiny_diffusion
from .test_pipeline_vqgen import tiny_pipeline as tiny_ar


def _seeded(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"prefix_token_ids": torch.zeros(2, 2, 3, dtype=torch.long)}, "token rows must be"),  # rows of 3, grid of 4
        ({"prefix_token_ids": torch.zeros(2, 4) + 0.7}, "integer codebook ids"),  # floats are not truncated
        ({"prefix_token_ids": torch.zeros(2, 4, dtype=torch.bool)}, "integer codebook ids"),
        ({"num_prefix_rows": 2}, "needs the `image`"),  # an unconditional sample would come back
        ({"image": torch.zeros(2, 1, 8, 8), "num_prefix_rows": True}, "integer in"),  # bool is not an int here
        ({"guidance_scale": 2.0}, "needs `class_labels`"),  # no labels: guidance would do nothing
    ],
)
def test_ar_arguments_that_would_be_ignored_or_truncated_are_refused(kwargs, match):
    with pytest.raises(ValueError, match=match):
        tiny_ar()(batch_size=2, generator=_seeded(), output_type="token_ids", **kwargs)


def test_numpy_integers_work_wherever_python_ints_do():
    pipeline = tiny_ar()
    out = pipeline(batch_size=np.int64(2), class_labels=np.array([0, 1]), top_k=np.int32(5), output_type="token_ids",
                   image=torch.zeros(2, 1, 8, 8), num_prefix_rows=np.int64(2), generator=_seeded())  # fmt: skip
    assert out.token_ids.shape == (2, 4, 4)


def test_guidance_without_labels_is_refused_for_diffusion_too():
    with pytest.raises(ValueError, match="needs `class_labels`"):
        tiny_diffusion()(batch_size=1, guidance_scale=3.0, num_inference_steps=2)


def test_a_saved_guidance_default_is_not_applied_to_unconditional_calls():
    pipeline = tiny_ar()
    reference = pipeline(batch_size=2, generator=_seeded(), output_type="token_ids").token_ids
    pipeline.set_sampling_defaults(guidance_scale=3.0)
    assert torch.equal(pipeline(batch_size=2, generator=_seeded(), output_type="token_ids").token_ids, reference)


def test_an_inpainting_mask_of_another_size_than_its_image_is_refused():
    pipeline = tiny_diffusion()
    image = PIL.Image.new("L", (16, 8), 128)
    with pytest.raises(ValueError, match="mask_image.*8x8 pixels but its `image` is 16x8"):
        pipeline(image=image, mask_image=PIL.Image.new("L", (8, 8), 255), num_inference_steps=2)


def test_a_non_square_mask_is_cropped_as_its_image_is():
    """The image is center-cropped to a square: the mask must mark the same pixels after the crop."""
    pipeline = tiny_diffusion()
    mask = PIL.Image.new("L", (16, 8), 0)
    mask.paste(255, (4, 0, 8, 4))  # inside the center crop's left half (crop = columns 4..11), top half
    token_mask = pipeline.mask_image_to_tokens(pipeline.layout, [PixelTransform(8, 1).fit_mask(mask)], 1)
    expected = torch.zeros(4, 4, dtype=torch.bool)
    expected[:2, :2] = True
    assert torch.equal(token_mask[0], expected)


def _png_with_orientation(orientation: int) -> PIL.Image.Image:
    image = PIL.Image.new("L", (8, 4), 0)
    image.paste(255, (0, 0, 2, 4))  # a white bar on the left
    exif = PIL.Image.Exif()
    exif[0x0112] = orientation
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", exif=exif)
    return PIL.Image.open(io.BytesIO(buffer.getvalue()))


def test_exif_orientation_is_applied_by_the_pixel_transform():
    rotated = _png_with_orientation(6)  # stored 8 wide x 4 high, "rotate 90 CW to display": 4 wide, 8 high
    upright = PixelTransform(8, 1, resize_mode="pad")(rotated)[0]  # padded to 8x8: the image in columns 2..5
    assert (upright[:2, 2:6] == 1.0).all()  # the bar, on the left as stored, is on top as displayed
    assert (upright[2:, 2:6] == -1.0).all()


def test_an_animated_image_warns_that_only_its_first_frame_is_used(caplog):
    frames = [PIL.Image.new("L", (8, 8), value) for value in (0, 255)]
    buffer = io.BytesIO()
    frames[0].save(buffer, format="GIF", save_all=True, append_images=frames[1:])
    with caplog.at_level(logging.WARNING):
        pixels = PixelTransform(8, 1)(PIL.Image.open(io.BytesIO(buffer.getvalue())))
    assert "first frame" in caplog.text and pixels.max() == -1.0  # frame 0 is black


@pytest.mark.parametrize(
    "name", ["./pretrained/no-such-pipeline", "pretrained/no-such-pipeline", "~/no/such/pipeline"]
)
def test_a_mistyped_local_pipeline_path_is_no_such_folder_not_a_hub_error(name, monkeypatch):
    from pathlib import Path

    from hf_vqgen import load_pipeline
    from hf_vqgen.pipelines import hub_resolution

    monkeypatch.chdir(Path(__file__).resolve().parents[2])  # the repository, where pretrained/ exists
    monkeypatch.setattr(hub_resolution, "snapshot_download", lambda **kwargs: pytest.fail("sent to the Hub"))
    with pytest.raises(ValueError, match="does not exist.*pipeline folder or a Hub model id"):
        load_pipeline(name)
