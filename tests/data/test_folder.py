"""SegmentationFolder: pairing by stem, transforms applied to image and mask together, one test per bad input."""

from __future__ import annotations

import random
from pathlib import Path

import albumentations as A
import numpy as np
import pytest
import torch
from PIL import Image

from segcourse.constants import IGNORE_INDEX
from segcourse.data import SegmentationFolder
from segcourse.files import save_indexed_png

PALETTE = [(0, 0, 0), (255, 0, 0), (0, 255, 0)]


def _write_pair(root: Path, stem: str, value: int, size=(12, 16), image_ext=".png", mask_ext=".png"):
    """An image whose red channel is ``10 * value`` and a mask that is ``value`` everywhere except a left column of 0."""
    h, w = size
    (root / "images").mkdir(parents=True, exist_ok=True)
    (root / "masks").mkdir(parents=True, exist_ok=True)
    image = np.zeros((h, w, 3), dtype=np.uint8)
    image[..., 0] = 10 * value
    image[:, :2, 1] = 200                       # a marker on the left, to see flips
    Image.fromarray(image).save(root / "images" / f"{stem}{image_ext}", quality=100)
    mask = np.full((h, w), value, dtype=np.uint8)
    mask[:, :2] = 0
    if mask_ext == ".png":
        save_indexed_png(root / "masks" / f"{stem}{mask_ext}", mask, PALETTE)
    else:
        Image.fromarray(mask).save(root / "masks" / f"{stem}{mask_ext}")
    return image, mask


@pytest.fixture
def good(tmp_path):
    root = tmp_path / "ds"
    _write_pair(root, "b", 2, image_ext=".jpg")          # JPEG image + PNG mask
    _write_pair(root, "a", 1)
    _write_pair(root, "c", 0, mask_ext=".bmp")
    _write_pair(root, "10", 1, image_ext=".tif")          # sorted("10", "a") != numeric order: stems decide
    return root


def test_returns_float_image_in_unit_range_and_int64_mask(good):
    ds = SegmentationFolder(good, num_classes=3)
    assert len(ds) == 4
    image, mask = ds[ds.stems.index("a")]
    assert image.shape == (3, 12, 16) and image.dtype == torch.float32
    assert 0.0 <= float(image.min()) and float(image.max()) <= 1.0
    assert mask.shape == (12, 16) and mask.dtype == torch.int64
    assert torch.isclose(image[0, 5, 5], torch.tensor(10 / 255))
    assert set(mask.unique().tolist()) == {0, 1}


def test_pairs_by_stem_whatever_the_extensions_and_listing_order(good, monkeypatch):
    original = Path.iterdir

    def shuffled(self):
        entries = list(original(self))
        random.Random(len(str(self))).shuffle(entries)
        return iter(entries)

    monkeypatch.setattr(Path, "iterdir", shuffled)
    ds = SegmentationFolder(good, num_classes=3)
    for (image_path, mask_path), stem in zip(ds.pairs, ds.stems):
        assert image_path.stem == mask_path.stem == stem
    for i in range(len(ds)):
        image, mask = ds[i]
        value = int(mask.max())                              # the mask's class id ...
        red = float(image[0, 5, 5]) * 255                    # ... is encoded in its own image's red channel
        assert abs(red - 10 * value) <= 3, (ds.stems[i], red, value)


def test_transform_moves_image_and_mask_together(good):
    ds = SegmentationFolder(good, num_classes=3, transform=A.HorizontalFlip(p=1.0))
    image, mask = ds[ds.stems.index("a")]
    # the green marker and the 0-column moved from the left edge to the right edge, together
    assert float(image[1, 0, -1]) > 0.7 and float(image[1, 0, 0]) < 0.1
    assert int(mask[0, -1]) == 0 and int(mask[0, 0]) == 1


def test_resize_transform_keeps_mask_ids_exact(good):
    ds = SegmentationFolder(good, num_classes=3, transform=A.Resize(25, 31))
    image, mask = ds[ds.stems.index("b")]
    assert image.shape == (3, 25, 31) and mask.shape == (25, 31)
    assert set(mask.unique().tolist()) <= {0, 2}             # nearest neighbour: no in-between ids


def test_normalising_transform_with_totensor_is_accepted(good):
    from albumentations.pytorch import ToTensorV2

    ds = SegmentationFolder(good, num_classes=3, transform=A.Compose([A.Normalize(), ToTensorV2()]))
    image, mask = ds[0]
    assert image.dtype == torch.float32 and image.shape == (3, 12, 16) and float(image.min()) < 0
    assert mask.dtype == torch.int64


def test_ignore_index_is_allowed_in_masks(tmp_path):
    _write_pair(tmp_path, "x", 1)
    mask = np.ones((12, 16), dtype=np.uint8)
    mask[0, 0] = IGNORE_INDEX
    save_indexed_png(tmp_path / "masks" / "x.png", mask, PALETTE)
    _, got = SegmentationFolder(tmp_path, num_classes=2)[0]
    assert int(got[0, 0]) == IGNORE_INDEX


def test_works_with_a_dataloader(good):
    loader = torch.utils.data.DataLoader(SegmentationFolder(good, num_classes=3), batch_size=2)
    images, masks = next(iter(loader))
    assert images.shape == (2, 3, 12, 16) and masks.shape == (2, 12, 16)


# ------------------------------------------------------------------------------------------ bad input, one per case
def test_image_without_mask(good):
    (good / "masks" / "a.png").unlink()
    with pytest.raises(ValueError, match=r"image .*a\.png has no mask"):
        SegmentationFolder(good, num_classes=3)


def test_mask_without_image(good):
    (good / "images" / "a.png").unlink()
    with pytest.raises(ValueError, match=r"mask .*a\.png has no image"):
        SegmentationFolder(good, num_classes=3)


def test_image_and_mask_of_different_sizes(good):
    _write_pair(good, "a", 1, size=(12, 15))
    Image.fromarray(np.zeros((12, 16, 3), dtype=np.uint8)).save(good / "images" / "a.png")
    ds = SegmentationFolder(good, num_classes=3)
    with pytest.raises(ValueError, match=r"size mismatch: image .*a\.png is 16x12 .* mask .*a\.png is 15x12"):
        ds[ds.stems.index("a")]


def test_mask_values_out_of_range(good):
    save_indexed_png(good / "masks" / "a.png", np.full((12, 16), 3, dtype=np.uint8), PALETTE)
    ds = SegmentationFolder(good, num_classes=3)
    with pytest.raises(ValueError, match=r"mask .*a\.png has values \[3\] outside \[0, 3\)"):
        ds[ds.stems.index("a")]
    with pytest.raises(ValueError, match="a.png"):
        ds.validate()


def test_mask_saved_as_0_255_is_reported(tmp_path):
    _write_pair(tmp_path, "x", 1)
    Image.fromarray(np.full((12, 16), 255, dtype=np.uint8)).save(tmp_path / "masks" / "x.png")
    ds = SegmentationFolder(tmp_path, num_classes=2, ignore_index=-1)
    with pytest.raises(ValueError, match=r"values \[255\].*mask // 255"):
        ds[0]


def test_unreadable_file(good):
    (good / "images" / "a.png").write_bytes(b"this is not a PNG at all")
    ds = SegmentationFolder(good, num_classes=3)
    with pytest.raises(ValueError, match=r"cannot read image .*a\.png"):
        ds[ds.stems.index("a")]


def test_truncated_file(good):
    path = good / "masks" / "a.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 3, (64, 64), dtype=np.uint8)).save(path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    ds = SegmentationFolder(good, num_classes=3)
    with pytest.raises(ValueError, match=r"cannot read mask .*a\.png"):
        ds[ds.stems.index("a")]


def test_jpeg_mask_is_rejected(good):
    Image.fromarray(np.zeros((12, 16), dtype=np.uint8)).save(good / "masks" / "d.jpg")
    Image.fromarray(np.zeros((12, 16, 3), dtype=np.uint8)).save(good / "images" / "d.png")
    with pytest.raises(ValueError, match=r"d\.jpg is a JPEG"):
        SegmentationFolder(good, num_classes=3)


def test_colour_mask_is_rejected(good):
    Image.fromarray(np.zeros((12, 16, 3), dtype=np.uint8)).save(good / "masks" / "a.png")
    ds = SegmentationFolder(good, num_classes=3)
    with pytest.raises(ValueError, match=r"mask .*a\.png has mode 'RGB'"):
        ds[ds.stems.index("a")]


def test_two_files_with_one_stem(good):
    Image.fromarray(np.zeros((12, 16, 3), dtype=np.uint8)).save(good / "images" / "a.jpg")
    with pytest.raises(ValueError, match=r"share the stem 'a'"):
        SegmentationFolder(good, num_classes=3)


def test_missing_folders_and_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        SegmentationFolder(tmp_path / "nowhere", num_classes=2)
    (tmp_path / "images").mkdir()
    with pytest.raises(ValueError, match=r"folder of masks .* does not exist"):
        SegmentationFolder(tmp_path, num_classes=2)
    (tmp_path / "masks").mkdir()
    with pytest.raises(ValueError, match="no images found"):
        SegmentationFolder(tmp_path, num_classes=2)
    with pytest.raises(ValueError, match="num_classes"):      # a bad value: ValueError (was TypeError)
        SegmentationFolder(tmp_path, num_classes=0)
    with pytest.raises(TypeError, match="num_classes"):       # a wrong type
        SegmentationFolder(tmp_path, num_classes=2.0)
    with pytest.raises(TypeError, match="transform"):
        SegmentationFolder(tmp_path, num_classes=2, transform="flip")


# ------------------------------------------------------------------------------------------ EXIF orientation
def _exif(orientation: int) -> Image.Exif:
    exif = Image.Exif()
    exif[0x0112] = orientation          # the Orientation tag, as a phone writes it
    return exif


def _stored_photo(h: int, w: int) -> np.ndarray:
    """A photo as the sensor stored it: distinct values everywhere, a bright block in the top-left corner."""
    photo = (np.arange(h * w * 3, dtype=np.int64).reshape(h, w, 3) % 97).astype(np.uint8)
    photo[:3, :2] = 255
    return photo


@pytest.mark.parametrize("ext", [".png", ".jpg"])
def test_exif_orientation_is_applied_to_a_rotated_photo(tmp_path, ext):
    # stored 16 x 24 (H x W) with Orientation 6: viewers (and Labelme) show it rotated 90° clockwise, 24 x 16
    from segcourse.data.folder import read_image

    stored = np.full((16, 24, 3), 40, np.uint8)
    stored[:8, :8] = 255                                     # a bright block (on JPEG's 8 x 8 grid) top-left
    (tmp_path / "images").mkdir()
    (tmp_path / "masks").mkdir()
    Image.fromarray(stored).save(tmp_path / "images" / f"p{ext}", exif=_exif(6), quality=100)
    displayed = np.rot90(stored, k=-1)                       # 90° clockwise: the block is now top-right
    got = read_image(tmp_path / "images" / f"p{ext}")
    assert got.shape == displayed.shape == (24, 16, 3)
    np.testing.assert_array_equal(got > 128, displayed > 128)
    # the mask drawn on the displayed photo (bright block = class 1) pairs with it
    mask = (displayed[..., 0] > 128).astype(np.uint8)
    save_indexed_png(tmp_path / "masks" / "p.png", mask, PALETTE)
    image, target = SegmentationFolder(tmp_path, num_classes=2)[0]
    assert image.shape == (3, 24, 16) and target.shape == (24, 16)
    torch.testing.assert_close(image[0] > 0.5, target == 1)


def test_exif_orientation_is_applied_to_a_square_photo(tmp_path):
    # a square photo would pass the size check rotated: its pixels must still come out as displayed
    from segcourse.data.folder import read_image

    stored = _stored_photo(10, 10)
    for orientation, displayed in ((3, np.rot90(stored, 2)), (6, np.rot90(stored, -1)), (8, np.rot90(stored, 1)),
                                   (2, stored[:, ::-1]), (1, stored)):
        path = tmp_path / f"o{orientation}.png"
        Image.fromarray(stored).save(path, exif=_exif(orientation))
        np.testing.assert_array_equal(read_image(path), displayed, err_msg=f"orientation {orientation}")


def test_mask_with_an_exif_orientation_is_refused(tmp_path):
    _write_pair(tmp_path, "x", 1, size=(10, 10))
    Image.fromarray(np.ones((10, 10), np.uint8)).save(tmp_path / "masks" / "x.png", exif=_exif(6))
    with pytest.raises(ValueError, match=r"mask .*x\.png carries EXIF orientation 6"):
        SegmentationFolder(tmp_path, num_classes=2)[0]


# ------------------------------------------------------------------------------------------ 32-bit masks
def test_negative_ids_in_a_32_bit_mask_are_rejected_naming_file_and_value(tmp_path):
    _write_pair(tmp_path, "x", 1)
    mask = np.ones((12, 16), np.int32)
    mask[3, 4] = -1
    mask[5, 5] = -7
    Image.fromarray(mask).save(tmp_path / "masks" / "x.tif")      # mode "I": 32-bit signed
    (tmp_path / "masks" / "x.png").unlink()
    with Image.open(tmp_path / "masks" / "x.tif") as written:
        assert written.mode == "I"
    ds = SegmentationFolder(tmp_path, num_classes=2)
    with pytest.raises(ValueError, match=r"mask .*x\.tif has negative values \[-7, -1\]"):
        ds[0]
    # a negative ignore_index is honoured, and a valid 32-bit mask reads as int64 class ids
    mask[5, 5] = -1
    Image.fromarray(mask).save(tmp_path / "masks" / "x.tif")
    _, got = SegmentationFolder(tmp_path, num_classes=2, ignore_index=-1)[0]
    assert got.dtype == torch.int64 and int(got[3, 4]) == -1 and int(got[0, 0]) == 1
