"""Augmentation pipelines keep image and mask in sync and never invent, blur or rescale class ids."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from segcourse.constants import IGNORE_INDEX
from segcourse.data.augment import (
    LEVELS,
    audit_transform,
    describe_transform,
    eval_transform,
    mask_offset,
    paired_crop_flip,
    train_transform,
)


def _pair(h=48, w=64, seed=0):
    """A 4-class mask of blocks and an image whose grey level encodes the class (60 * id)."""
    rng = np.random.default_rng(seed)
    mask = np.zeros((h, w), np.uint8)
    for cid in (1, 2, 3):
        y, x = rng.integers(0, h - 12), rng.integers(0, w - 16)
        mask[y:y + 12, x:x + 16] = cid
    mask[:2, :] = IGNORE_INDEX
    image = np.repeat((mask.astype(np.int64) * 60 % 256).astype(np.uint8)[..., None], 3, axis=-1)
    return image, mask


@pytest.mark.parametrize("level", LEVELS)
def test_geometry_moves_image_and_mask_together(level):
    image, mask = _pair()
    t = train_transform((40, 40), level=level, photometric=False, seed=1)
    for _ in range(5):
        out = t(image=image, mask=mask)
        m, img = out["mask"], out["image"][..., 0].astype(np.int64)
        assert m.shape == img.shape == (40, 40) and m.dtype == np.uint8
        # away from class edges the image's grey level must name the mask's class (60 * id);
        # pixels filled from outside (mask = ignore) have image value 0, the ignored rows 196
        # (5x5: OpenCV samples nearest and linear half a pixel apart, so edges may differ by one pixel)
        flat = ndimage.minimum_filter(m, 5) == ndimage.maximum_filter(m, 5)
        flat[:2], flat[-2:], flat[:, :2], flat[:, -2:] = False, False, False, False   # edges may hide a crop cut
        valid = flat & (m != IGNORE_INDEX)
        assert np.array_equal(img[valid], m[valid].astype(np.int64) * 60 % 256)
        assert np.isin(img[flat & (m == IGNORE_INDEX)], [0, IGNORE_INDEX * 60 % 256]).all()


@pytest.mark.parametrize("level", LEVELS)
def test_pipelines_pass_the_audit(level):
    image, mask = _pair()
    report = audit_transform(train_transform(32, level=level, normalize=True, seed=0), image, mask, trials=8)
    assert set(report["ids_out"]) <= {0, 1, 2, 3, IGNORE_INDEX}
    assert report["dtype_out"] == "uint8"


def test_normalize_touches_only_the_image():
    image, mask = _pair()
    out = train_transform(None, level="none", normalize=True)(image=image, mask=mask)
    assert out["image"].dtype == np.float32
    # ImageNet normalisation of grey 0: (0 - 0.485) / 0.229
    assert out["image"][10, 0, 0] == pytest.approx((image[10, 0, 0] / 255 - 0.485) / 0.229, abs=1e-5)
    assert np.array_equal(out["mask"], mask)


def test_rotation_corners_are_ignored_not_background():
    import albumentations as A
    import cv2

    image = np.full((32, 32, 3), 200, np.uint8)
    mask = np.ones((32, 32), np.uint8)
    t = train_transform(None, level="strong", photometric=False, seed=3)
    # find an affine inside the pipeline and force a 45 degree rotation
    affine = next(op for op in t.transforms if isinstance(op, A.Affine))
    assert affine.mask_interpolation == cv2.INTER_NEAREST and affine.fill_mask == IGNORE_INDEX
    rotate = A.Compose([A.Affine(rotate=(45, 45), mask_interpolation=cv2.INTER_NEAREST, fill_mask=IGNORE_INDEX,
                                 border_mode=cv2.BORDER_CONSTANT, p=1)])
    m = rotate(image=image, mask=mask)["mask"]
    assert m[0, 0] == IGNORE_INDEX and m[16, 16] == 1 and set(np.unique(m)) == {1, IGNORE_INDEX}


def test_padding_uses_ignore_index():
    image, mask = _pair(20, 20)
    out = eval_transform(32)(image=image, mask=mask)
    assert out["mask"].shape == (32, 32)
    assert (out["mask"][0] == IGNORE_INDEX).all() and (out["mask"][:, 0] == IGNORE_INDEX).all()
    assert np.array_equal(out["mask"][6:26, 6:26], mask)                 # centred, untouched


def test_same_seed_same_augmentations():
    image, mask = _pair()
    a = [train_transform(32, level="medium", seed=7)(image=image, mask=mask)["mask"] for _ in range(1)]
    b = [train_transform(32, level="medium", seed=7)(image=image, mask=mask)["mask"] for _ in range(1)]
    assert np.array_equal(a[0], b[0])


# ---- the audit catches the three classic mask bugs ---------------------------------------------
def test_audit_catches_bilinear_mask_resize():
    import albumentations as A
    import cv2

    mask = np.zeros((16, 16), np.uint8)
    mask[:, 8:] = 3                                                     # ids 0 and 3; bilinear invents 1, 2
    image = np.zeros((16, 16, 3), np.uint8)
    bad = A.Compose([A.Resize(37, 37, mask_interpolation=cv2.INTER_LINEAR)])
    with pytest.raises(ValueError, match="invented class ids"):
        audit_transform(bad, image, mask, trials=1)
    good = A.Compose([A.Resize(37, 37)])
    assert audit_transform(good, image, mask, trials=1)["ids_out"] == [0, 3]


def test_audit_catches_normalised_mask_and_desync():
    image, mask = _pair()

    def divides_mask(image, mask):
        return {"image": image, "mask": mask / 255.0}

    def crops_only_image(image, mask):
        return {"image": image[:10], "mask": mask}

    with pytest.raises(ValueError, match="float64 mask"):
        audit_transform(divides_mask, image, mask, trials=1)
    with pytest.raises(ValueError, match="out of sync"):
        audit_transform(crops_only_image, image, mask, trials=1)
    with pytest.raises(TypeError, match="integer class ids"):
        audit_transform(divides_mask, image, mask.astype(np.float32))


@pytest.mark.parametrize("bad", [0, -3, (4,), (2.5, 3), "32", True])
def test_bad_sizes(bad):
    with pytest.raises(ValueError, match="size must be"):
        train_transform(bad)


def test_unknown_level():
    with pytest.raises(ValueError, match="expected one of"):
        train_transform(32, level="extreme")


# ---- the hand-written paired crop and flip ------------------------------------------------------
def test_paired_crop_flip_matches_its_documented_draws():
    image, mask = _pair(30, 40)
    rng, ref = np.random.default_rng(5), np.random.default_rng(5)
    img, m = paired_crop_flip(image, mask, (10, 12), rng)
    top, left, flip = ref.integers(0, 21), ref.integers(0, 29), ref.random() < 0.5
    want = mask[top:top + 10, left:left + 12]
    assert np.array_equal(m, want[:, ::-1] if flip else want)
    assert np.array_equal(img[..., 0], (m.astype(np.int64) * 60 % 256).astype(np.uint8))   # in sync
    assert m.flags.c_contiguous and m.dtype == mask.dtype


def test_paired_crop_flip_errors():
    image, mask = _pair(20, 20)
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="larger than the image"):
        paired_crop_flip(image, mask, 21, rng)
    with pytest.raises(ValueError, match="same"):
        paired_crop_flip(image[:5], mask, 4, rng)


def test_describe_transform_is_short_and_names_what_matters_for_masks():
    import albumentations as A
    import cv2

    lines = describe_transform(train_transform(64, level="medium", normalize=True))
    assert len(lines) <= 12 and all(len(line) < 110 for line in lines)
    affine = next(line for line in lines if line.startswith("Affine"))
    assert "p=0.7" in affine and "rotate ±30" in affine and "mask: nearest" in affine and f"fill_mask {IGNORE_INDEX}" in affine
    assert any(line.startswith("RandomBrightnessContrast") and "image only" in line for line in lines)
    assert any(line.startswith("    GaussianBlur") for line in lines)          # OneOf's children indented
    bad = describe_transform(A.Compose([A.Resize(8, 8, mask_interpolation=cv2.INTER_LINEAR)]))
    assert bad == ["Resize  p=1  height 8, width 8  [mask: interpolation 1 (NOT nearest)]"]
    legacy = describe_transform(A.Resize(8, 8, mask_interpolation=cv2.INTER_NEAREST))
    assert legacy == ["Resize  p=1  height 8, width 8  [mask: legacy nearest (shifted half a pixel; use INTER_NEAREST_EXACT)]"]
    assert describe_transform(A.Resize(8, 8, mask_interpolation=cv2.INTER_NEAREST_EXACT)) == [
        "Resize  p=1  height 8, width 8  [mask: nearest]"]


def test_mask_offset_legacy_nearest_resize_shifts_exact_and_warps_do_not():
    """The measured claim of lesson 02: legacy INTER_NEAREST resizes put the mask half an output pixel down-right
    of the bilinear image (the floor(j * in / out) rule, derived here); INTER_NEAREST_EXACT and warps do not."""
    import albumentations as A
    import cv2

    def resize(out, mask_interpolation):
        return A.Compose([A.Resize(out, out, interpolation=cv2.INTER_LINEAR, mask_interpolation=mask_interpolation)])

    n = 97
    for out in (40, 240):
        j = np.arange(out)
        sample = (j + 0.5) * n / out - 0.5                                   # where bilinear samples (input px)
        taken = np.floor(j * n / out)                                        # the legacy nearest rule
        inner = (sample >= 2) & (sample <= n - 3)
        expected = float(-((taken - sample)[inner]).mean() * out / n)
        rows, cols = mask_offset(resize(out, cv2.INTER_NEAREST), n)
        assert rows == pytest.approx(expected, abs=0.01) and cols == pytest.approx(expected, abs=0.01)
        assert expected == pytest.approx(0.5, abs=0.02)
        assert np.allclose(mask_offset(resize(out, cv2.INTER_NEAREST_EXACT), n), 0, atol=0.01)
    assert np.allclose(mask_offset(resize(2 * n, cv2.INTER_NEAREST), n), 0, atol=0.01)   # integer up-scaling: exact
    nearest = dict(interpolation=cv2.INTER_LINEAR, mask_interpolation=cv2.INTER_NEAREST, p=1.0)
    for seed in range(3):
        affine = A.Compose([A.Affine(scale=(0.7, 1.3), rotate=(-45, 45), shear=(-12, 12), **nearest)], seed=seed)
        elastic = A.Compose([A.ElasticTransform(alpha=30, sigma=5, **nearest)], seed=seed)
        assert np.allclose(mask_offset(affine), 0, atol=0.02)
        assert np.allclose(mask_offset(elastic), 0, atol=0.05)


def test_mask_offset_sees_a_mask_rolled_by_one_pixel():
    def roll_mask(image, mask):
        return {"image": image, "mask": np.roll(mask, 1, axis=1)}       # the mask moves one column right

    rows, cols = mask_offset(roll_mask, 32)
    assert rows == pytest.approx(0, abs=1e-9) and cols == pytest.approx(1, abs=1e-9)
    with pytest.raises(ValueError, match="size"):
        mask_offset(roll_mask, 4)


def test_audit_states_a_verdict():
    image, mask = _pair()
    report = audit_transform(train_transform(32, level="medium", seed=0), image, mask, trials=4)
    assert report["verdict"].startswith("passed: 4 draws") and "no new class" in report["verdict"]


def test_albumentations_older_than_2_is_refused(monkeypatch):
    """With 1.4 the 2.x keywords (fill_mask=) would be ignored with a warning and masks padded with 0."""
    import albumentations

    monkeypatch.setattr(albumentations, "__version__", "1.4.24")
    for build in (train_transform, eval_transform):
        with pytest.raises(ImportError, match=r"albumentations >= 2\.0.*found 1\.4\.24"):
            build(32)
