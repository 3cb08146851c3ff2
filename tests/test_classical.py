"""segcourse.classical: hand-written Otsu and region growing cross-checked against scikit-image; the wrappers' contracts."""

from __future__ import annotations

import numpy as np
import pytest
from skimage import data, filters, measure, segmentation

from segcourse import classical as C
from segcourse.metrics.instances import match_instances


def _random_images(n=40, seed=0):
    rng = np.random.default_rng(seed)
    for _ in range(n):
        a, b = rng.uniform(20, 120), rng.uniform(130, 240)
        frac = rng.uniform(0.05, 0.6)
        size = int(rng.integers(50, 400))
        values = np.where(rng.random(size) < frac, rng.normal(b, rng.uniform(3, 30), size), rng.normal(a, rng.uniform(3, 30), size))
        yield values.clip(0, 255).astype(np.uint8).reshape(1, size)


def test_otsu_matches_skimage_on_random_and_real_images():
    images = list(_random_images()) + [data.coins(), data.camera(), data.moon()]
    for image in images:
        assert C.otsu_threshold(image) == filters.threshold_otsu(image)


@pytest.mark.parametrize("values, expected", [
    # two levels: every t in [17, 229] separates them equally well; ties go to the smallest t, 17
    ([17, 17, 230], 17),
    # 0,0,10,10: between-class variance is largest for the split {0,0} | {10,10}: t = 0
    ([0, 0, 10, 10], 0),
    # constant image: its value (nothing to separate)
    ([5, 5, 5], 5),
])
def test_otsu_tiny_cases(values, expected):
    assert C.otsu_threshold(np.array([values], np.uint8)) == expected


def test_histogram_and_global_threshold():
    image = np.array([[0, 1, 1], [255, 3, 3]], np.uint8)
    hist = C.histogram(image)
    assert hist.shape == (256,) and hist[[0, 1, 3, 255]].tolist() == [1, 2, 2, 1] and hist.sum() == 6
    np.testing.assert_array_equal(C.global_threshold(image, 1), [[False, False, False], [True, True, True]])


@pytest.mark.parametrize("bad, error, match", [
    (np.zeros((4, 4), np.float32), TypeError, "uint8"),
    (np.zeros((4, 4, 3), np.uint8), ValueError, "shape"),
    ([[1, 2]], TypeError, "numpy array"),
])
def test_images_are_validated(bad, error, match):
    with pytest.raises(error, match=match):
        C.otsu_threshold(bad)


def test_to_uint8():
    np.testing.assert_array_equal(C.to_uint8(np.array([[0.0, 0.5, 1.0]])), [[0, 128, 255]])
    np.testing.assert_array_equal(C.to_uint8(np.ones((2, 2))), np.zeros((2, 2)))


def test_adaptive_threshold_matches_threshold_local_and_handles_a_gradient():
    rng = np.random.default_rng(1)
    image = (rng.random((40, 60)) * 255).astype(np.uint8)
    want = image > filters.threshold_local(image.astype(float), 21, method="mean", offset=3)
    np.testing.assert_array_equal(C.adaptive_threshold(image, 21, 3, method="mean"), want)
    # bright squares on a strong ramp: the global threshold loses the dark side, the local one does not
    ramp = np.tile(np.linspace(20, 200, 120), (60, 1))
    truth = np.zeros((60, 120), bool)
    for x in range(5, 120, 20):
        truth[20:32, x:x + 10] = True
    image = (ramp + 40 * truth).clip(0, 255).astype(np.uint8)
    glob = C.global_threshold(image, C.otsu_threshold(image))
    local = C.adaptive_threshold(image, 41, offset=-5)
    assert (local == truth).mean() > 0.97 > (glob == truth).mean()
    with pytest.raises(ValueError, match="odd"):
        C.adaptive_threshold(image, 40)
    with pytest.raises(ValueError, match="method"):
        C.adaptive_threshold(image, 41, method="median")


def test_morphology():
    mask = np.zeros((15, 15), bool)
    mask[3:12, 3:12] = True
    mask[7, 7] = False          # a hole
    mask[0, 14] = True          # a speck
    filled = C.fill_holes(mask)
    assert filled[7, 7] and filled.sum() == mask.sum() + 1
    opened = C.open_mask(mask, 1)
    assert not opened[0, 14] and opened[5, 5]
    closed = C.close_mask(mask, 1)
    assert closed[7, 7] and closed[3, 3]                  # the hole is closed, the corner kept
    edge = np.zeros((5, 5), bool)
    edge[:, :2] = True
    np.testing.assert_array_equal(C.close_mask(edge, 2), edge)   # touching the border: not eroded away
    small = C.remove_small(mask, 5)
    assert not small[0, 14] and small.sum() == mask.sum() - 1
    np.testing.assert_array_equal(C.open_mask(mask, 0), mask)
    np.testing.assert_array_equal(C.open_mask(mask.astype(np.uint8), 1), opened)   # 0/1 numbers: the same mask
    with pytest.raises(ValueError, match="binary mask.*mask > 0"):
        C.open_mask(mask.astype(np.uint8) * 255)
    with pytest.raises(ValueError, match="threshold it"):
        C.open_mask(np.full((4, 4), 0.5))                                        # probabilities, refused
    with pytest.raises(TypeError, match="binary mask"):
        C.open_mask(np.full((4, 4), "a"))
    with pytest.raises(ValueError, match="radius"):
        C.open_mask(mask, -1)


@pytest.mark.parametrize("connectivity", [1, 2])
def test_connected_components_match_skimage(connectivity):
    rng = np.random.default_rng(connectivity)
    for _ in range(10):
        mask = rng.random((25, 31)) < 0.45
        labels, n = C.connected_components(mask, connectivity)
        want = measure.label(mask, connectivity=connectivity)
        assert labels.dtype == np.int32 and n == want.max()
        np.testing.assert_array_equal(labels, want)   # same raster-order numbering
    with pytest.raises(ValueError, match="connectivity"):
        C.connected_components(mask, 3)


def test_region_grow_seed_mode_equals_skimage_flood():
    image = data.coins()[::2, ::2]
    for seed, tol in [((30, 30), 10), ((50, 40), 25), ((100, 100), 5)]:
        got = C.region_grow(image, [seed], tol, mode="seed") > 0
        want = segmentation.flood(image, seed, tolerance=tol, connectivity=1)
        np.testing.assert_array_equal(got, want)



def test_flood_fill_equals_skimage_flood_and_region_grow():
    image = data.coins()[::2, ::2]
    for seed, tol in [((30, 30), 10), ((50, 40), 25), ((100, 100), 5)]:
        want = segmentation.flood(image, seed, tolerance=tol, connectivity=1)
        np.testing.assert_array_equal(C.flood_fill(image, seed, tol), want)
    with pytest.raises(ValueError, match="outside"):
        C.flood_fill(image, (500, 0), 3)


def test_flood_from_clicks_adds_positive_and_removes_negative_floods():
    # three flat stripes 0 | 100 | 0: a positive click in the middle takes the middle stripe only
    image = np.zeros((4, 9), np.uint8)
    image[:, 3:6] = 100
    middle = np.zeros((4, 9), bool)
    middle[:, 3:6] = True
    np.testing.assert_array_equal(C.flood_from_clicks(image, [(1, 4, True)], 10), middle)
    # with a tolerance of 100 the flood takes everything; a negative click on the left stripe removes it
    left = np.zeros((4, 9), bool)
    left[:, :3] = True
    np.testing.assert_array_equal(C.flood_from_clicks(image, [(1, 4, True), (0, 0, False)], 100), np.zeros_like(middle))
    np.testing.assert_array_equal(C.flood_from_clicks(image, [(1, 4, True), (0, 0, False)], 10), middle)
    assert not C.flood_from_clicks(image, [], 10).any()

def test_region_grow_competing_seeds_and_mean_mode():
    # left half 50, right half 200: two seeds grow exactly their own half, nothing overlaps
    image = np.full((6, 10), 50, np.uint8)
    image[:, 5:] = 200
    labels = C.region_grow(image, [(0, 0), (5, 9)], tolerance=10)
    assert (labels[:, :5] == 1).all() and (labels[:, 5:] == 2).all()
    # a slow ramp: the running mean follows it a little further than the seed value does
    ramp = np.tile(np.arange(0, 60, 2, dtype=np.uint8), (3, 1))   # 0, 2, ..., 58
    seed_mode = C.region_grow(ramp, [(1, 0)], tolerance=10, mode="seed")
    mean_mode = C.region_grow(ramp, [(1, 0)], tolerance=10, mode="mean")
    assert (seed_mode > 0).sum() == 3 * 6                # levels 0..10: six columns
    assert (mean_mode > 0).sum() > (seed_mode > 0).sum()
    with pytest.raises(ValueError, match="outside"):
        C.region_grow(image, [(6, 0)], 5)
    with pytest.raises(ValueError, match="distinct"):
        C.region_grow(image, [(0, 0), (0, 0)], 5)
    with pytest.raises(ValueError, match="tolerance"):
        C.region_grow(image, [(0, 0)], -1)


def _two_touching_disks():
    yy, xx = np.mgrid[:40, :60]
    a = (yy - 20) ** 2 + (xx - 20) ** 2 <= 11 ** 2
    b = (yy - 20) ** 2 + (xx - 39) ** 2 <= 11 ** 2
    gt = np.zeros((40, 60), np.int32)
    gt[a] = 1
    gt[b & ~a] = 2
    return a | b, gt


def test_watershed_separates_touching_disks_where_components_merge():
    mask, gt = _two_touching_disks()
    cc, n = C.connected_components(mask)
    merged = match_instances(cc, gt)
    assert n == 1 and merged.tp <= 1 and merged.fn >= 1      # one blob, IoU ~0.5 with each: at most one found
    ws, markers = C.watershed_instances(mask, min_distance=5, return_markers=True)
    assert ws.max() == 2 and markers.max() == 2
    assert match_instances(ws, gt).tp == 2
    assert ((ws > 0) == mask).all()                           # every foreground pixel labelled
    # markers far apart only: one marker, one object
    assert C.watershed_instances(mask, min_distance=25).max() == 1


def test_watershed_gives_every_component_a_label():
    mask = np.zeros((20, 20), bool)
    mask[2, 2] = True              # a single pixel: no local maximum with min_distance 5 after smoothing
    mask[10:16, 10:16] = True
    labels = C.watershed_instances(mask, min_distance=5)
    assert labels[2, 2] > 0 and labels.max() == 2
    with pytest.raises(ValueError, match="min_distance"):
        C.watershed_instances(mask, min_distance=0)


def test_between_class_variance_is_otsus_curve():
    """Its argmax is scikit-image's Otsu threshold; one value checked by hand; empty classes marked -1."""
    for image in list(_random_images(n=10, seed=3)) + [data.coins()]:
        curve = C.between_class_variance(image)
        assert curve.shape == (256,) and int(np.argmax(curve)) == filters.threshold_otsu(image)
    # levels 0, 0, 10, 10 at t = 0: w0 = w1 = 2, m0 = 0, m1 = 10 -> 2 * 2 * 10**2 = 400
    curve = C.between_class_variance(np.array([[0, 0, 10, 10]], np.uint8))
    assert curve[0] == pytest.approx(400.0)
    assert (curve[10:] == -1).all()                         # t >= 10: the foreground is empty


def test_gaussian_blur_matches_scipy_and_removes_speckle():
    from scipy import ndimage

    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (30, 40)).astype(np.uint8)
    want = np.round(ndimage.gaussian_filter(image.astype(float), 1.5)).clip(0, 255).astype(np.uint8)
    np.testing.assert_array_equal(C.gaussian_blur(image, 1.5), want)
    np.testing.assert_array_equal(C.gaussian_blur(image, 0), image)
    # a bright square in strong noise: thresholding the blurred image gives far fewer pieces
    clean = np.full((64, 64), 60.0)
    clean[20:44, 20:44] = 180
    noisy = (clean + rng.normal(0, 45, clean.shape)).clip(0, 255).astype(np.uint8)
    pieces = lambda im: C.connected_components(C.global_threshold(im, C.otsu_threshold(im)))[1]
    assert pieces(C.gaussian_blur(noisy, 1.5)) < pieces(noisy) / 5
    with pytest.raises(ValueError, match="sigma"):
        C.gaussian_blur(image, -1)


def test_region_grow_without_tolerance_assigns_every_pixel_to_the_most_similar_region():
    """tolerance=inf with a background seed is Adams & Bischof's SRG: nothing stays unlabelled, nothing leaks."""
    image = np.full((20, 30), 40, np.uint8)
    image[5:15, 5:12] = 200                     # a bright object
    image[4:16, 18:26] = 120                    # a mid-grey object, closer to the background than the first
    labels = C.region_grow(image, [(10, 8), (10, 21), (0, 0)], tolerance=np.inf)
    assert (labels > 0).all()
    assert (labels[5:15, 5:12] == 1).all() and (labels[4:16, 18:26] == 2).all()
    assert (labels[image == 40] == 3).all()
    with pytest.raises(ValueError, match="tolerance"):
        C.region_grow(image, [(0, 0)], float("nan"))


def test_watershed_distance_is_the_map_the_watershed_floods():
    from scipy import ndimage

    mask, _ = _two_touching_disks()
    raw = C.watershed_distance(mask, smooth=0)
    np.testing.assert_allclose(raw, ndimage.distance_transform_edt(mask))
    smoothed = C.watershed_distance(mask, smooth=1.0)
    assert (smoothed[~mask] == 0).all() and not np.allclose(smoothed, raw)
    _, markers = C.watershed_instances(mask, min_distance=5, return_markers=True)
    peaks = np.argwhere(markers > 0)
    for r, c in peaks:                          # each marker sits on a local maximum of the smoothed map
        assert smoothed[r, c] == smoothed[max(r - 5, 0):r + 6, max(c - 5, 0):c + 6].max()
