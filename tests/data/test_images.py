"""Tests of latentdim.data.images: image folders and HDF5 image arrays as uint8 (N, C, S, S)."""

from __future__ import annotations

import io
from pathlib import Path

import h5py
import numpy as np
import pytest
from numpy.testing import assert_array_equal
from PIL import Image, ImageFile

from latentdim.data import images as images_module
from latentdim.data.images import ImageData, is_image_hdf5, load_images, native_image_shape
from latentdim.errors import LatentdimError


def _raises(match: str, fn, *args, **kwargs) -> str:
    """Asserts ``fn`` raises a one-line LatentdimError matching ``match``; returns the message."""
    with pytest.raises(LatentdimError, match=match) as info:
        fn(*args, **kwargs)
    message = str(info.value)
    assert "\n" not in message and message.strip() == message
    return message


def _save(image: Image.Image, path: Path, **kwargs) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path, **kwargs)
    return path


def _gray(value: int, size: tuple[int, int] = (8, 8)) -> Image.Image:
    return Image.new("L", size, value)


def _rgb(colour: tuple[int, int, int], size: tuple[int, int] = (8, 8)) -> Image.Image:
    return Image.new("RGB", size, colour)


def _pattern(height: int = 12, width: int = 12, seed: int = 0) -> np.ndarray:
    """A random RGB picture (H, W, 3) uint8."""
    return np.random.default_rng(seed).integers(0, 256, size=(height, width, 3), dtype=np.uint8)


def _h5(path: Path, **datasets: np.ndarray) -> Path:
    with h5py.File(path, "w") as file:
        for name, data in datasets.items():
            file.create_dataset(name, data=data)
    return path


# ---------------------------------------------------------------------------------------------
# Formats and modes


@pytest.mark.parametrize(
    ("ext", "kwargs", "tolerance"),
    [
        ("png", {}, 0),
        ("bmp", {}, 0),
        ("tiff", {}, 0),
        ("tif", {}, 0),
        ("webp", {"lossless": True}, 0),
        ("gif", {}, 0),
        ("jpg", {"quality": 95, "subsampling": 0}, 8),
        ("JPEG", {"quality": 95, "subsampling": 0}, 8),
    ],
)
def test_each_format_decodes_to_the_saved_pixels(tmp_path, ext, kwargs, tolerance):
    colours = [(200, 30, 40), (10, 220, 90), (60, 60, 250), (255, 255, 0)]
    picture = np.zeros((16, 16, 3), np.uint8)
    for i, colour in enumerate(colours):  # four solid 8 x 8 quadrants
        picture[(i // 2) * 8 : (i // 2) * 8 + 8, (i % 2) * 8 : (i % 2) * 8 + 8] = colour
    fmt = "JPEG" if ext.lower() in ("jpg", "jpeg") else None
    _save(Image.fromarray(picture), tmp_path / "d" / f"x.{ext}", format=fmt, **kwargs)
    data = load_images(tmp_path / "d")
    assert isinstance(data, ImageData)
    assert data.images.dtype == np.uint8 and data.images.shape == (1, 3, 16, 16)
    assert data.native_shape == (3, 16, 16) and data.skipped == 0
    got = data.images[0].transpose(1, 2, 0).astype(int)
    assert np.abs(got - picture).max() <= tolerance


def test_gif_gives_its_first_frame(tmp_path):
    first, second = _rgb((250, 0, 0)), _rgb((0, 250, 0))
    _save(first, tmp_path / "d" / "anim.gif", save_all=True, append_images=[second])
    assert Image.open(tmp_path / "d" / "anim.gif").n_frames == 2
    data = load_images(tmp_path / "d")
    assert_array_equal(data.images[0, :, 0, 0], [250, 0, 0])


def test_gray_png_gives_one_channel(tmp_path):
    pixels = np.arange(64, dtype=np.uint8).reshape(8, 8) * 3
    _save(Image.fromarray(pixels), tmp_path / "d" / "a.png")
    data = load_images(tmp_path / "d")
    assert data.images.shape == (1, 1, 8, 8)
    assert_array_equal(data.images[0, 0], pixels)


def test_rgba_is_composited_over_white(tmp_path):
    pixels = np.zeros((8, 8, 4), np.uint8)
    pixels[..., :3] = (10, 20, 30)
    pixels[0, 0, 3] = 0  # fully transparent: white
    pixels[0, 1, 3] = 255  # opaque: the colour itself
    pixels[0, 2, 3] = 128  # half: between
    _save(Image.fromarray(pixels, mode="RGBA"), tmp_path / "d" / "a.png")
    data = load_images(tmp_path / "d")
    assert data.images.shape == (1, 3, 8, 8)
    assert_array_equal(data.images[0, :, 0, 0], [255, 255, 255])
    assert_array_equal(data.images[0, :, 0, 1], [10, 20, 30])
    expected = [(c * 128 + 255 * 127 + 127) // 255 for c in (10, 20, 30)]
    assert_array_equal(data.images[0, :, 0, 2], expected)


def test_gray_with_alpha_stays_gray_and_is_composited(tmp_path):
    pixels = np.zeros((8, 8, 2), np.uint8)
    pixels[..., 0] = 40
    pixels[..., 1] = 255
    pixels[3, 3, 1] = 0
    _save(Image.fromarray(pixels, mode="LA"), tmp_path / "d" / "a.png")
    data = load_images(tmp_path / "d")
    assert data.images.shape == (1, 1, 8, 8)
    assert data.images[0, 0, 3, 3] == 255 and data.images[0, 0, 0, 0] == 40


def test_palette_gray_is_one_channel_and_colour_palette_three(tmp_path):
    gray = Image.fromarray(np.arange(64, dtype=np.uint8).reshape(8, 8)).convert("P")
    gray.putpalette([v for i in range(256) for v in (i, i, i)])
    _save(gray, tmp_path / "gray" / "p.png")
    data = load_images(tmp_path / "gray")
    assert data.images.shape == (1, 1, 8, 8)
    assert_array_equal(data.images[0, 0], np.arange(64).reshape(8, 8))

    colour = Image.new("P", (8, 8), 1)
    colour.putpalette([0, 0, 0, 200, 10, 20])
    _save(colour, tmp_path / "colour" / "p.png")
    data = load_images(tmp_path / "colour")
    assert data.images.shape == (1, 3, 8, 8)
    assert_array_equal(data.images[0, :, 4, 4], [200, 10, 20])


def test_palette_transparency_is_composited_over_white(tmp_path):
    image = Image.new("P", (8, 8), 1)
    image.putpalette([0, 0, 0, 200, 10, 20])
    image.putpixel((0, 0), 0)
    _save(image, tmp_path / "d" / "p.png", transparency=0)
    data = load_images(tmp_path / "d")
    assert_array_equal(data.images[0, :, 0, 0], [255, 255, 255])
    assert_array_equal(data.images[0, :, 1, 1], [200, 10, 20])


def test_palette_bmp_is_read(tmp_path):
    image = Image.new("P", (8, 8), 1)
    image.putpalette([0, 0, 0, 30, 140, 250])
    _save(image, tmp_path / "d" / "p.bmp")
    data = load_images(tmp_path / "d")
    assert_array_equal(data.images[0, :, 2, 2], [30, 140, 250])


def test_palette_tiff_is_read_through_the_decoded_palette(tmp_path):
    # TIFF palettes are planar ("RGB;L"), so the colour test decodes the image instead.
    gray = Image.new("P", (8, 8), 3)
    gray.putpalette([v for i in range(256) for v in (i, i, i)])
    _save(gray, tmp_path / "gray" / "p.tiff")
    colour = Image.new("P", (8, 8), 1)
    colour.putpalette([0, 0, 0, 9, 99, 199])
    _save(colour, tmp_path / "colour" / "p.tiff")
    assert_array_equal(load_images(tmp_path / "gray").images[0, :, 0, 0], [3])
    assert_array_equal(load_images(tmp_path / "colour").images[0, :, 0, 0], [9, 99, 199])


def test_sixteen_bit_gray_is_scaled_to_eight_bits(tmp_path):
    pixels = np.zeros((8, 8), np.uint16)
    pixels[0, :4] = [0, 257, 65535, 1000]
    _save(Image.fromarray(pixels), tmp_path / "d" / "a.png")
    assert Image.open(tmp_path / "d" / "a.png").mode in ("I;16", "I")
    data = load_images(tmp_path / "d")
    assert data.images.shape == (1, 1, 8, 8)
    assert_array_equal(data.images[0, 0, 0, :4], [0, 1, 255, round(1000 / 257)])


def test_bilevel_becomes_zero_and_255(tmp_path):
    image = Image.new("1", (8, 8), 0)
    image.putpixel((2, 2), 1)
    _save(image, tmp_path / "d" / "a.png")
    data = load_images(tmp_path / "d")
    assert data.images.shape == (1, 1, 8, 8)
    assert data.images[0, 0, 2, 2] == 255 and data.images[0, 0, 0, 0] == 0


def test_float_tiff_in_unit_range_is_scaled(tmp_path):
    pixels = np.zeros((8, 8), np.float32)
    pixels[0, :3] = [0.0, 0.5, 1.0]
    _save(Image.fromarray(pixels), tmp_path / "d" / "a.tiff")
    data = load_images(tmp_path / "d")
    assert_array_equal(data.images[0, 0, 0, :3], [0, 128, 255])


def test_cmyk_jpeg_is_colour(tmp_path):
    _save(Image.new("CMYK", (8, 8), (0, 255, 255, 0)), tmp_path / "d" / "a.jpg", quality=95)
    data = load_images(tmp_path / "d")
    assert data.images.shape == (1, 3, 8, 8)
    assert data.images[0, 0].mean() > 200 and data.images[0, 1].mean() < 60


# ---------------------------------------------------------------------------------------------
# Channels, order, files picked up


def test_channels_decided_from_the_data_and_forced(tmp_path):
    _save(_gray(10), tmp_path / "d" / "a.png")
    _save(_gray(20), tmp_path / "d" / "b.png")
    assert load_images(tmp_path / "d").images.shape == (2, 1, 8, 8)
    assert native_image_shape(tmp_path / "d") == (1, 8, 8)

    _save(_rgb((200, 100, 50)), tmp_path / "d" / "c.png")
    data = load_images(tmp_path / "d")
    assert data.images.shape == (3, 3, 8, 8)
    assert native_image_shape(tmp_path / "d") == (3, 8, 8)
    assert_array_equal(data.images[0, :, 0, 0], [10, 10, 10])  # gray repeated

    gray = load_images(tmp_path / "d", channels=1)
    assert gray.images.shape == (3, 1, 8, 8) and gray.native_shape == (1, 8, 8)
    luma = np.asarray(_rgb((200, 100, 50)).convert("L"))
    assert_array_equal(gray.images[2, 0], luma)  # Pillow's L conversion
    assert native_image_shape(tmp_path / "d", channels=1) == (1, 8, 8)

    colour = load_images(tmp_path / "d", channels=3)
    assert colour.images.shape == (3, 3, 8, 8)


def test_gray_pictures_saved_as_rgb_are_gray(tmp_path):
    # RGB and JPEG files whose every pixel has R = G = B: the data is gray, byte for byte what
    # channels=1 gives; one file with a colour pixel makes the whole folder colour.
    pixels = _pattern(10, 12)[..., 0]
    _save(Image.fromarray(np.stack([pixels] * 3, axis=-1), "RGB"), tmp_path / "d" / "a.png")
    _save(Image.fromarray(pixels[::-1], "L").convert("RGB"), tmp_path / "d" / "b.jpg", quality=90)
    assert native_image_shape(tmp_path / "d") == (3, 10, 12)  # the headers say colour
    data = load_images(tmp_path / "d")
    assert data.images.shape == (2, 1, 10, 10) and data.native_shape == (1, 10, 12)
    assert_array_equal(data.images, load_images(tmp_path / "d", channels=1).images)
    assert load_images(tmp_path / "d", channels=3).images.shape == (2, 3, 10, 10)

    tinted = np.stack([pixels] * 3, axis=-1)
    tinted[5, 5, 2] ^= 1  # one pixel one level off gray
    _save(Image.fromarray(tinted, "RGB"), tmp_path / "d" / "c.png")
    colour = load_images(tmp_path / "d")
    assert colour.images.shape == (3, 3, 10, 10) and colour.native_shape == (3, 10, 12)


def test_order_is_sorted_relative_posix_path(tmp_path):
    # Expected order: a/10.png, a/2.png, b/1.png, c.png (plain string order of the paths).
    names = {"b/1.png": 2, "c.png": 3, "a/2.png": 1, "a/10.png": 0}
    for name, index in names.items():
        _save(_gray(10 * index + 5), tmp_path / "d" / name)
    data = load_images(tmp_path / "d")
    assert_array_equal(data.images[:, 0, 0, 0], [5, 15, 25, 35])


def test_hidden_and_non_image_files_are_ignored(tmp_path):
    folder = tmp_path / "d"
    _save(_gray(7), folder / "a.PNG")
    _save(_gray(99), folder / ".hidden.png")
    _save(_gray(99), folder / ".git" / "x.png")
    (folder / "notes.txt").write_text("not an image")
    (folder / "README").write_text("no extension")
    data = load_images(folder)
    assert data.images.shape == (1, 1, 8, 8) and data.images[0, 0, 0, 0] == 7
    assert data.skipped == 0 and data.skipped_examples == []
    assert data.source == str(folder)


# ---------------------------------------------------------------------------------------------
# Sizes


def test_resize_keeps_the_centre(tmp_path):
    # 40 wide, 20 high: bands 0 | 128 | 255; the centred 20 x 20 square is the 128 band.
    pixels = np.zeros((20, 40), np.uint8)
    pixels[:, 10:30] = 128
    pixels[:, 30:] = 255
    _save(Image.fromarray(pixels), tmp_path / "d" / "a.png")
    data = load_images(tmp_path / "d", size=16)
    assert data.images.shape == (1, 1, 16, 16)
    assert data.native_shape == (1, 20, 40)
    out = data.images[0, 0].astype(int)
    assert np.all(out[:, 3:13] == 128)  # far from the crop edges: exactly the centre band
    assert np.all(np.abs(out - 128) < 40)  # neither outer band made it in


def test_native_size_of_a_non_square_image_is_its_shorter_side(tmp_path):
    _save(_gray(50, size=(30, 12)), tmp_path / "d" / "a.png")
    data = load_images(tmp_path / "d")
    assert data.images.shape == (1, 1, 12, 12) and data.native_shape == (1, 12, 30)
    assert np.all(data.images == 50)


def test_mixed_sizes_use_the_most_common(tmp_path):
    _save(_gray(1, size=(10, 10)), tmp_path / "d" / "a.png")
    _save(_gray(2, size=(12, 12)), tmp_path / "d" / "b.png")
    _save(_gray(3, size=(12, 12)), tmp_path / "d" / "c.png")
    data = load_images(tmp_path / "d")
    assert data.images.shape == (3, 1, 12, 12) and data.native_shape == (1, 12, 12)
    assert native_image_shape(tmp_path / "d") == (1, 12, 12)
    assert_array_equal(data.images[:, 0, 5, 5], [1, 2, 3])


def test_images_of_the_target_size_keep_their_bytes(tmp_path):
    pictures = [_pattern(16, 16, seed) for seed in range(3)]
    for i, picture in enumerate(pictures):
        _save(Image.fromarray(picture), tmp_path / "d" / f"{i}.png")
    expected = np.stack([p.transpose(2, 0, 1) for p in pictures])
    assert_array_equal(load_images(tmp_path / "d").images, expected)
    assert_array_equal(load_images(tmp_path / "d", size=16).images, expected)
    assert load_images(tmp_path / "d", size=8).images.shape == (3, 3, 8, 8)
    assert load_images(tmp_path / "d", size=24).images.shape == (3, 3, 24, 24)


def test_large_jpeg_is_scaled_to_the_target(tmp_path):
    _save(_rgb((120, 60, 30), size=(160, 96)), tmp_path / "d" / "a.jpg", quality=95)
    data = load_images(tmp_path / "d", size=16)
    assert data.images.shape == (1, 3, 16, 16) and data.native_shape == (3, 96, 160)
    assert np.abs(data.images[0, :, 8, 8].astype(int) - [120, 60, 30]).max() <= 6


def test_memmap_gives_the_same_array(tmp_path, monkeypatch):
    for i in range(4):
        _save(Image.fromarray(_pattern(12, 12, i)), tmp_path / "d" / f"{i}.png")
    _h5(tmp_path / "x.h5", X=_pattern(12, 12, 0)[None].repeat(3, axis=0))
    in_memory = load_images(tmp_path / "d", size=8)
    h5_in_memory = load_images(tmp_path / "x.h5")
    assert not isinstance(in_memory.images, np.memmap)
    monkeypatch.setattr(images_module, "_ram_budget_bytes", lambda: 0)
    mapped = load_images(tmp_path / "d", size=8)
    assert isinstance(mapped.images, np.memmap)
    assert_array_equal(mapped.images, in_memory.images)
    h5_mapped = load_images(tmp_path / "x.h5")
    assert isinstance(h5_mapped.images, np.memmap)
    assert_array_equal(h5_mapped.images, h5_in_memory.images)


def test_ram_budget_is_a_positive_number_or_none():
    budget = images_module._ram_budget_bytes()
    assert budget is None or budget >= 0


def test_progress_is_reported(tmp_path):
    for i in range(5):
        _save(_gray(i), tmp_path / "d" / f"{i}.png")
    calls: list[tuple[int, int]] = []
    load_images(tmp_path / "d", on_progress=lambda done, total: calls.append((done, total)))
    assert calls and calls[-1] == (5, 5)
    assert all(total == 5 for _, total in calls)
    assert [done for done, _ in calls] == sorted(done for done, _ in calls)


# ---------------------------------------------------------------------------------------------
# Unreadable files


def _png_bytes(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def _jpeg_bytes(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG")
    return buffer.getvalue()


def _folder_with_bad_files(tmp_path: Path) -> Path:
    folder = tmp_path / "d"
    _save(_gray(1), folder / "a_good.png")
    (folder / "b_garbage.png").write_bytes(b"this is not a png at all" * 10)
    noise = Image.fromarray(_pattern(64, 64)[..., 0])
    (folder / "c_truncated.png").write_bytes(_png_bytes(noise)[:2000])
    (folder / "d_truncated.jpg").write_bytes(_jpeg_bytes(noise)[:600])
    (folder / "e_empty.png").write_bytes(b"")
    _save(_gray(2), folder / "f_good.png")
    return folder


def test_corrupt_and_truncated_files_are_skipped_and_counted(tmp_path):
    folder = _folder_with_bad_files(tmp_path)
    data = load_images(folder)
    assert data.images.shape == (2, 1, 8, 8)
    assert_array_equal(data.images[:, 0, 0, 0], [1, 2])
    assert data.skipped == 4
    assert [e.split(":")[0] for e in data.skipped_examples] == [
        "b_garbage.png",
        "c_truncated.png",
        "d_truncated.jpg",
        "e_empty.png",
    ]
    assert all("\n" not in e for e in data.skipped_examples)


def test_truncated_files_count_even_if_pillow_was_told_to_load_them(tmp_path, monkeypatch):
    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", True)
    data = load_images(_folder_with_bad_files(tmp_path))
    assert data.skipped == 4
    assert ImageFile.LOAD_TRUNCATED_IMAGES is True  # restored


def test_strict_raises_on_the_first_unreadable_file(tmp_path):
    folder = _folder_with_bad_files(tmp_path)
    message = _raises("b_garbage.png", load_images, folder, strict=True)
    assert "--strict" in message and "remove" in message

    truncated = tmp_path / "t"
    _save(_gray(1), truncated / "a.png")
    (truncated / "b.png").write_bytes(_png_bytes(Image.fromarray(_pattern(64, 64)))[:2000])
    _raises(r"b\.png.*--strict", load_images, truncated, strict=True)


def test_skipped_examples_are_capped_at_five(tmp_path):
    folder = tmp_path / "d"
    _save(_gray(1), folder / "good.png")
    for i in range(7):
        (folder / f"bad{i}.png").write_bytes(b"junk")
    data = load_images(folder)
    assert data.skipped == 7 and len(data.skipped_examples) == 5
    assert data.skipped_examples[0].startswith("bad0.png: ")


def test_decompression_bomb_raises_even_without_strict(tmp_path, monkeypatch):
    _save(_gray(1), tmp_path / "d" / "a.png")
    _save(_gray(2, size=(20, 10)), tmp_path / "d" / "big.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 150)  # 200 pixels: Pillow only warns
    message = _raises(r"big\.png has 20 x 10 pixels.*limit of 150", load_images, tmp_path / "d")
    assert "remove it or resize it" in message
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 90)  # 200 > 2 x 90: Pillow raises
    _raises(r"big\.png has 200 pixels.*limit of 90", load_images, tmp_path / "d")
    _raises(r"big\.png.*decompression-bomb", native_image_shape, tmp_path / "d")


# ---------------------------------------------------------------------------------------------
# Folder and argument errors


def test_folder_errors(tmp_path):
    _raises("no such file or folder", load_images, tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    _raises("holds no files", load_images, tmp_path / "empty")
    _raises("holds no files", native_image_shape, tmp_path / "empty")
    (tmp_path / "text").mkdir()
    (tmp_path / "text" / "a.txt").write_text("x")
    _raises(r"no image files \(png, jpg, .*\) found below", load_images, tmp_path / "text")
    (tmp_path / "bad").mkdir()
    for name in ("a.png", "b.jpg"):
        (tmp_path / "bad" / name).write_bytes(b"junk")
    message = _raises(
        "none of the 2 image files below .* could be read; first: a.png", load_images,
        tmp_path / "bad",
    )
    assert "b.jpg" not in message
    _raises("none of the 2 image files", native_image_shape, tmp_path / "bad")


def test_single_image_and_other_files_are_refused(tmp_path):
    image = _save(_gray(1), tmp_path / "a.png")
    _raises("single image file; pass the folder", load_images, image)
    other = tmp_path / "a.txt"
    other.write_text("x")
    _raises("neither a folder of images nor an HDF5 file", load_images, other)


def test_argument_errors(tmp_path):
    _save(_gray(1), tmp_path / "d" / "a.png")
    for channels in (0, 2, 4, True):
        _raises("channels must be 1 .* or 3", load_images, tmp_path / "d", channels=channels)
    _raises("channels must be", native_image_shape, tmp_path / "d", channels=2)
    for size in (4, 7, 0, -8, 16.0, "16", True):
        _raises("image size must be .* at least 8", load_images, tmp_path / "d", size=size)
    assert load_images(tmp_path / "d", size=np.int64(8)).images.shape == (1, 1, 8, 8)
    _raises("--key applies to HDF5 files only", load_images, tmp_path / "d", key="X")


def test_tiny_images_need_an_explicit_size(tmp_path):
    _save(_gray(9, size=(6, 6)), tmp_path / "d" / "a.png")
    _raises("6 x 6 pixels, smaller than 8; pass --image-size", load_images, tmp_path / "d")
    data = load_images(tmp_path / "d", size=8)
    assert data.images.shape == (1, 1, 8, 8) and np.all(data.images == 9)


# ---------------------------------------------------------------------------------------------
# HDF5


def test_hdf5_layouts(tmp_path):
    pictures = np.stack([_pattern(10, 10, seed) for seed in range(3)])  # (N, H, W, 3)
    nchw = pictures.transpose(0, 3, 1, 2)
    _h5(tmp_path / "nhwc.h5", X=pictures)
    _h5(tmp_path / "nchw.h5", X=nchw)
    _h5(tmp_path / "nhw.h5", X=pictures[..., 0])
    _h5(tmp_path / "nhw1.h5", X=pictures[..., :1])
    for name in ("nhwc", "nchw"):
        data = load_images(tmp_path / f"{name}.h5")
        assert_array_equal(data.images, nchw)
        assert data.native_shape == (3, 10, 10) and data.source == f"{tmp_path / name}.h5:X"
        assert native_image_shape(tmp_path / f"{name}.h5") == (3, 10, 10)
    for name in ("nhw", "nhw1"):
        data = load_images(tmp_path / f"{name}.h5")
        assert_array_equal(data.images, nchw[:, :1])
        assert data.native_shape == (1, 10, 10)


def test_hdf5_four_channels_drop_alpha(tmp_path):
    rgba = np.concatenate([_pattern(8, 8)[None], np.zeros((1, 8, 8, 1), np.uint8)], axis=-1)
    _h5(tmp_path / "x.h5", X=rgba)
    data = load_images(tmp_path / "x.h5")
    assert_array_equal(data.images[0], rgba[0, ..., :3].transpose(2, 0, 1))
    assert native_image_shape(tmp_path / "x.h5") == (3, 8, 8)


def test_hdf5_ambiguous_layout_rule(tmp_path):
    # (N, 3, 8, 3): the spatial part (8, 3) is not square, (3, 8) neither -> channels first.
    # (N, 8, 8, 3): only the last axis can be channels -> channels last.
    # (N, 3, 3, 3): all square -> channels first.  (N, 4, 4, 3): (4, 3) is not square, (4, 4)
    # is -> channels last.
    for shape, expected in [
        ((1, 3, 8, 3), (3, 8, 3)),
        ((1, 8, 8, 3), (3, 8, 8)),
        ((1, 3, 3, 3), (3, 3, 3)),
        ((1, 4, 4, 3), (3, 4, 4)),
        ((1, 1, 9, 9), (1, 9, 9)),
    ]:
        _h5(tmp_path / "x.h5", X=np.zeros(shape, np.uint8))
        assert native_image_shape(tmp_path / "x.h5") == expected, shape


def test_hdf5_dtypes(tmp_path):
    base = np.stack([_pattern(8, 8, s)[..., 0] for s in range(2)])  # (2, 8, 8) uint8
    _h5(tmp_path / "f32.h5", X=(base / 255).astype(np.float32))
    _h5(tmp_path / "f64.h5", X=base / 255.0)
    _h5(tmp_path / "f16.h5", X=(base / 255).astype(np.float16))
    _h5(tmp_path / "i64.h5", X=base.astype(np.int64))
    _h5(tmp_path / "u16.h5", X=base.astype(np.uint16) * 257)
    for name in ("f32", "f64", "f16", "i64", "u16"):
        assert_array_equal(load_images(tmp_path / f"{name}.h5").images[:, 0], base, err_msg=name)
    mask = base > 128
    _h5(tmp_path / "bool.h5", X=mask)
    assert_array_equal(load_images(tmp_path / "bool.h5").images[:, 0], mask * 255)


@pytest.mark.parametrize(
    ("data", "match"),
    [
        (
            np.full((2, 8, 8), 1.5, np.float32),
            r"holds 1\.5 in image 0; float images must lie in \[0, 1\]: scale",
        ),
        (np.full((2, 8, 8), -0.25), r"holds -0\.25 in image 0.*store uint8"),
        (np.where(np.arange(128).reshape(2, 8, 8) == 100, np.nan, 0.5), r"holds nan in image 1"),
        (np.full((2, 8, 8), np.inf, np.float32), r"holds inf in image 0"),
        (
            np.full((1, 8, 8), 300, np.int32),
            r"holds 300 in image 0; integer images must lie in 0\.\.255",
        ),
        (np.full((1, 8, 8), -1, np.int8), r"holds -1 in image 0"),
        (np.zeros((1, 8, 8), np.complex64), r"dtype complex64; image arrays must hold"),
    ],
)
def test_hdf5_values_out_of_range(tmp_path, data, match):
    _h5(tmp_path / "x.h5", X=data)
    _raises(match, load_images, tmp_path / "x.h5")


def test_hdf5_out_of_range_is_found_in_a_later_chunk(tmp_path, monkeypatch):
    monkeypatch.setattr(images_module, "CHUNK_BYTES", 8 * 8 * 8 * 2)  # two images a chunk
    data = np.zeros((7, 8, 8), np.float32)
    data[5, 3, 3] = 2.0
    _h5(tmp_path / "x.h5", X=data)
    _raises(r"x\.h5:X holds 2\.0 in image 5", load_images, tmp_path / "x.h5")


def test_hdf5_chunks_and_resizing_match_one_pass(tmp_path, monkeypatch):
    pictures = np.stack([_pattern(10, 14, seed) for seed in range(7)])
    _h5(tmp_path / "x.h5", X=pictures)
    whole = load_images(tmp_path / "x.h5", size=8)
    assert whole.images.shape == (7, 3, 8, 8) and whole.native_shape == (3, 10, 14)
    monkeypatch.setattr(images_module, "CHUNK_BYTES", 10 * 14 * 3 * 8 * 3)  # three a chunk
    calls: list[tuple[int, int]] = []
    chunked = load_images(tmp_path / "x.h5", size=8, on_progress=lambda d, t: calls.append((d, t)))
    assert_array_equal(chunked.images, whole.images)
    assert calls[-1] == (7, 7)
    native = load_images(tmp_path / "x.h5")
    assert native.images.shape == (7, 3, 10, 10)


def test_hdf5_channel_override(tmp_path):
    pictures = np.stack([_pattern(8, 8, seed) for seed in range(2)])
    _h5(tmp_path / "x.h5", X=pictures)
    gray = load_images(tmp_path / "x.h5", channels=1)
    assert gray.images.shape == (2, 1, 8, 8) and gray.native_shape == (1, 8, 8)
    assert_array_equal(gray.images[0, 0], np.asarray(Image.fromarray(pictures[0]).convert("L")))
    _h5(tmp_path / "g.h5", X=pictures[..., 0])
    colour = load_images(tmp_path / "g.h5", channels=3)
    assert_array_equal(colour.images, np.repeat(pictures[:, None, :, :, 0], 3, axis=1))


def test_hdf5_key_selection(tmp_path):
    path = tmp_path / "x.h5"
    with h5py.File(path, "w") as file:
        file.create_dataset("images", data=np.full((2, 8, 8), 7, np.uint8))
        file.create_dataset("group/more", data=np.full((1, 8, 8, 3), 9, np.uint8))
        file.create_dataset("vectors", data=np.zeros((5, 3), np.float32))
    _raises(r"several datasets \(group/more, images, vectors\); pass --key NAME", load_images, path)
    _raises(r"several datasets", is_image_hdf5, path)
    listing = r"no dataset 'nope'; it has: group/more, images, vectors"
    _raises(listing, load_images, path, key="nope")
    assert load_images(path, key="images").images.shape == (2, 1, 8, 8)
    data = load_images(path, key="/group/more")
    assert data.images.shape == (1, 3, 8, 8) and data.source == f"{path}:group/more"
    assert is_image_hdf5(path, key="images") and is_image_hdf5(path, key="group/more")
    assert not is_image_hdf5(path, key="vectors")
    _raises(r"vector data, not images", load_images, path, key="vectors")


def test_hdf5_rank_and_size_errors(tmp_path):
    cases = {
        "rank1": np.zeros(5, np.uint8),
        "rank5": np.zeros((1, 2, 3, 4, 5), np.uint8),
        "scalar": np.uint8(3),
    }
    for name, data in cases.items():
        _h5(tmp_path / f"{name}.h5", X=data)
        _raises(r"has shape .*; images need \(N, H, W\), \(N, H, W, C\) or \(N, C, H, W\)",
                is_image_hdf5, tmp_path / f"{name}.h5")
        _raises(r"images need", load_images, tmp_path / f"{name}.h5")
    _h5(tmp_path / "nochan.h5", X=np.zeros((2, 8, 8, 5), np.uint8))
    _raises(r"needs its channels \(1, 3 or 4\) first", load_images, tmp_path / "nochan.h5")
    _h5(tmp_path / "empty.h5", X=np.zeros((0, 8, 8), np.uint8))
    _raises(r"is empty .* at least one image", load_images, tmp_path / "empty.h5")
    _h5(tmp_path / "tiny.h5", X=np.zeros((2, 4, 6), np.uint8))
    _raises(r"4 x 6 pixels, smaller than 8; pass --image-size", load_images, tmp_path / "tiny.h5")
    assert load_images(tmp_path / "tiny.h5", size=8).images.shape == (2, 1, 8, 8)
    with h5py.File(tmp_path / "none.h5", "w"):
        pass
    _raises("holds no datasets", load_images, tmp_path / "none.h5")
    _raises("no such HDF5 file", is_image_hdf5, tmp_path / "missing.h5")


def test_hdf5_and_folder_of_the_same_pictures_agree(tmp_path):
    pictures = [_pattern(12, 20, seed) for seed in range(3)]
    for i, picture in enumerate(pictures):
        _save(Image.fromarray(picture), tmp_path / "d" / f"{i}.png")
    _h5(tmp_path / "x.h5", X=np.stack(pictures))
    for kwargs in ({}, {"size": 8}, {"size": 16}, {"channels": 1, "size": 10}):
        from_folder = load_images(tmp_path / "d", **kwargs)
        from_hdf5 = load_images(tmp_path / "x.h5", **kwargs)
        assert from_folder.native_shape == from_hdf5.native_shape
        assert_array_equal(from_folder.images, from_hdf5.images, err_msg=str(kwargs))
