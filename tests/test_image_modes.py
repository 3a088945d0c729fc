"""The one image rule (`hf_vqgen.data.image_modes.to_model_mode`): every mode, both channel counts, actual pixel values."""

import numpy as np
import pytest
import torch
from PIL import Image

from hf_vqgen import PixelTransform
from hf_vqgen.data.image_modes import to_model_mode


WHITE = (255, 255, 255)


def _image(mode: str, values, dtype=np.uint8) -> Image.Image:
    """A 1-pixel-high image of `len(values)` pixels, built from raw bytes (premultiplied as given for La/RGBa)."""
    values = np.asarray(values, dtype=dtype)
    return Image.frombytes(mode, (len(values), 1), values.tobytes())


def _palette(transparent: bool) -> Image.Image:
    image = _image("P", [0, 1])
    image.putpalette([10, 20, 30, 200, 100, 0])  # index 0 -> (10, 20, 30), index 1 -> (200, 100, 0)
    if transparent:
        image.info["transparency"] = 0
    return image


def _blend(colour, alpha, background=WHITE):
    return tuple(round((c * alpha + b * (255 - alpha)) / 255) for c, b in zip(colour, background))


def _grey(value):
    return (value,) * 3


def _luma(rgb) -> int:
    return Image.new("RGB", (1, 1), rgb).convert("L").getpixel((0, 0))


# mode -> image, its pixels as RGB after the rule (1 channel: their luma)
CASES = {
    "1": (lambda: Image.fromarray(np.array([[True, False]])), [WHITE, _grey(0)]),
    "L": (lambda: _image("L", [0, 77, 255]), [_grey(0), _grey(77), WHITE]),
    "LA": (
        lambda: _image("LA", [[100, 0], [100, 128], [100, 255]]),
        [WHITE, _blend(_grey(100), 128), _grey(100)],
    ),
    "La": (lambda: _image("La", [[0, 0], [100, 255]]), [WHITE, _grey(100)]),
    "PA": (lambda: _image("PA", [[0, 0], [0, 255]]), [WHITE, _grey(0)]),
    "P": (lambda: _palette(transparent=False), [(10, 20, 30), (200, 100, 0)]),
    "P-transparency": (lambda: _palette(transparent=True), [WHITE, (200, 100, 0)]),
    "RGB": (lambda: _image("RGB", [[10, 20, 30]]), [(10, 20, 30)]),
    "RGBA": (
        lambda: _image("RGBA", [[10, 20, 30, 0], [200, 0, 100, 128], [10, 20, 30, 255]]),
        [WHITE, _blend((200, 0, 100), 128), (10, 20, 30)],
    ),
    "RGBa": (lambda: _image("RGBa", [[0, 0, 0, 0], [10, 20, 30, 255]]), [WHITE, (10, 20, 30)]),
    "CMYK": (lambda: _image("CMYK", [[0, 0, 0, 0], [0, 255, 255, 0]]), [WHITE, (255, 0, 0)]),
    "YCbCr": (lambda: _image("YCbCr", [[128, 128, 128]]), [_grey(128)]),
    "I": (lambda: _image("I", [0, 32768, 65535], np.int32), [_grey(0), _grey(128), WHITE]),
    "I;16": (lambda: _image("I;16", [0, 0x8080, 257, 65535], "<u2"), [_grey(0), _grey(128), _grey(1), WHITE]),
    "I;16B": (lambda: _image("I;16B", [0x8080, 65535], ">u2"), [_grey(128), WHITE]),
    "F": (lambda: _image("F", [0.0, 0.5, 1.0], np.float32), [_grey(0), _grey(128), WHITE]),
}


@pytest.mark.parametrize("num_channels", [1, 3])
@pytest.mark.parametrize("case", list(CASES))
def test_every_mode_gives_the_documented_pixels(case, num_channels):
    make, expected_rgb = CASES[case]
    image = make()
    out = to_model_mode(image, num_channels)
    assert out.mode == ("L" if num_channels == 1 else "RGB") and out.size == image.size
    expected = [_luma(rgb) for rgb in expected_rgb] if num_channels == 1 else expected_rgb
    assert [out.getpixel((x, 0)) for x in range(out.width)] == expected


def test_background_is_configurable():
    image = _image("RGBA", [[10, 20, 30, 0], [200, 0, 100, 128]])
    out = to_model_mode(image, 3, background=(0, 128, 255))
    assert [out.getpixel((x, 0)) for x in range(2)] == [(0, 128, 255), _blend((200, 0, 100), 128, (0, 128, 255))]
    assert to_model_mode(_image("LA", [[100, 0]]), 1, background=0).getpixel((0, 0)) == 0  # an int is a grey level


@pytest.mark.parametrize("background", [(0, 0), (0, 0, 256), -1, (0.5, 0, 0)])
def test_bad_background_is_refused(background):
    with pytest.raises(ValueError, match="background"):
        to_model_mode(Image.new("L", (1, 1)), 1, background=background)
    with pytest.raises(ValueError, match="background"):
        PixelTransform(8, background=background)


@pytest.mark.parametrize("mode", ["LAB", "HSV"])
def test_other_modes_are_refused_by_name(mode):
    with pytest.raises(ValueError, match=f"mode '{mode}' is not supported"):
        to_model_mode(Image.new(mode, (2, 2)), 3)


@pytest.mark.parametrize("values", [[0.0, 1.5], [-0.1, 0.5], [float("nan"), 0.5], [0.0, 255.0]])
def test_float_outside_unit_range_is_refused(values):
    with pytest.raises(ValueError, match=r"mode 'F'.*\[0, 1\]"):
        to_model_mode(_image("F", values, np.float32), 1)


@pytest.mark.parametrize("values", [[0, 65536], [-1, 0]])
def test_32_bit_integer_outside_16_bit_range_is_refused(values):
    with pytest.raises(ValueError, match=r"mode 'I'.*\[0, 65535\]"):
        to_model_mode(_image("I", values, np.int32), 1)


@pytest.mark.parametrize("mode, num_channels", [("L", 1), ("RGB", 3)])
def test_target_mode_images_pass_through_untouched(mode, num_channels):
    image = Image.new(mode, (3, 3))
    assert to_model_mode(image, num_channels) is image


def test_grey_pixels_are_bit_identical_to_before():
    """Fashion-MNIST's mode-L images give exactly `array / 127.5 - 1`, as before the rule existed."""
    array = np.random.default_rng(0).integers(0, 256, (28, 28), dtype=np.uint8)
    pixels = PixelTransform(28, 1)(Image.fromarray(array))
    assert torch.equal(pixels, torch.from_numpy(array[None].astype(np.float32) / 127.5 - 1.0))


def test_16_bit_png_and_transparent_png_from_disk(tmp_path):
    Image.fromarray(np.full((8, 8), 0x8080, dtype=np.uint16)).save(tmp_path / "grey16.png")
    with Image.open(tmp_path / "grey16.png") as image:
        assert image.mode == "I;16"
        pixels = PixelTransform(8, 1)(image)
    assert torch.allclose(pixels, torch.full_like(pixels, 128 / 127.5 - 1), atol=1e-6)  # mid-grey, not white
    Image.new("RGBA", (8, 8), (0, 0, 0, 0)).save(tmp_path / "clear.png")
    with Image.open(tmp_path / "clear.png") as image:
        assert torch.equal(PixelTransform(8, 3)(image), torch.ones(3, 8, 8))  # white background, not black
    with Image.open(tmp_path / "clear.png") as image:
        assert torch.equal(PixelTransform(8, 3, background=0)(image), -torch.ones(3, 8, 8))
