"""The synthetic generators: determinism, contracts, consistency, and the properties lessons rely on."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from scipy import ndimage

from segcourse.data import SPLIT_OFFSETS, default_count, default_size, generate, get_info, load_arrays
from segcourse.data.synthetic import DEFAULT_COUNT, GENERATORS

NAMES = sorted(GENERATORS)
WITH_INSTANCES = ("cells", "shapes", "shapes-multiscale", "street")


@pytest.mark.parametrize("name", NAMES)
def test_same_arguments_give_identical_samples_and_seed_or_index_change_them(name):
    a, b = generate(name, 3, size=48, seed=1), generate(name, 3, size=48, seed=1)
    for field in ("image", "mask", "instances", "panoptic"):
        x, y = getattr(a, field), getattr(b, field)
        assert (x is None and y is None) or np.array_equal(x, y), field
    assert not np.array_equal(a.image, generate(name, 3, size=48, seed=2).image)
    assert not np.array_equal(a.image, generate(name, 4, size=48, seed=1).image)


@pytest.mark.parametrize("name", NAMES)
def test_shapes_dtypes_and_class_ids(name):
    info = get_info(name)
    s = generate(name, 0, size=(40, 56))
    assert s.image.shape == (40, 56, 3) and s.image.dtype == np.uint8
    assert s.mask.shape == (40, 56) and s.mask.dtype == np.uint8
    assert int(s.mask.max()) < info.num_classes
    if name in WITH_INSTANCES:
        assert s.instances.shape == (40, 56) and s.instances.dtype == np.uint16
    else:
        assert s.instances is None
    if name == "street":
        assert s.panoptic.shape == (40, 56, 2) and s.panoptic.dtype == np.int64
    else:
        assert s.panoptic is None


@pytest.mark.parametrize("name", WITH_INSTANCES)
@pytest.mark.parametrize("index", [0, 1, 2])
def test_instances_are_consistent_with_the_semantic_mask(name, index):
    info = get_info(name)
    s = generate(name, index, size=64)
    ids = np.unique(s.instances)
    ids = ids[ids != 0]
    # ids are 1..K without gaps
    np.testing.assert_array_equal(ids, np.arange(1, len(ids) + 1))
    # every instance covers pixels of exactly one thing class
    for i in ids:
        classes = np.unique(s.mask[s.instances == i])
        assert len(classes) == 1 and int(classes[0]) in info.things, (i, classes)
    # thing pixels have an instance, stuff/background pixels none
    is_thing = np.isin(s.mask, info.things)
    np.testing.assert_array_equal(is_thing, s.instances > 0)


@pytest.mark.parametrize("index", [0, 5])
def test_street_panoptic_matches_mask_and_instances(index):
    info = get_info("street")
    s = generate("street", index, size=96)
    np.testing.assert_array_equal(s.panoptic[..., 0], s.mask)
    is_thing = np.isin(s.mask, info.things)
    np.testing.assert_array_equal(s.panoptic[..., 1], np.where(is_thing, s.instances, 0))
    assert set(np.unique(s.mask[~is_thing])) <= set(info.stuff)


def test_street_has_stuff_and_things_at_several_scales():
    areas = []
    for i in range(12):
        s = generate("street", i, size=128)
        assert {0, 4} <= set(np.unique(s.mask).tolist())        # road and sky in every scene
        areas += np.bincount(s.instances.ravel())[1:].tolist()
    areas = np.array([a for a in areas if a > 0])
    assert areas.min() < 60 and areas.max() > 600, (areas.min(), areas.max())


def _touching_pairs(instances: np.ndarray) -> int:
    """Number of unordered instance pairs that share an 8-connected border."""
    pairs = set()
    h, w = instances.shape
    for dy, dx in ((0, 1), (1, 0), (1, 1), (1, -1)):
        a = instances[max(0, -dy):h - max(0, dy), max(0, -dx):w - max(0, dx)]
        b = instances[max(0, dy):, max(0, dx):][:a.shape[0], :a.shape[1]] if dx >= 0 else \
            instances[dy:, :w + dx][:a.shape[0], :a.shape[1]]
        sel = (a != b) & (a > 0) & (b > 0)
        pairs |= {tuple(sorted(p)) for p in zip(a[sel].tolist(), b[sel].tolist())}
    return len(pairs)


def test_touching_pairs_helper_on_a_hand_made_map():
    # 1 touches 2 (side by side), 3 touches 2 diagonally only, 4 is isolated: pairs {1,2}, {2,3}
    m = np.array([[1, 2, 0, 0, 0],
                  [1, 2, 0, 0, 4],
                  [0, 0, 3, 0, 0]])
    assert _touching_pairs(m) == 2
    assert _touching_pairs(np.array([[0, 5], [6, 0]])) == 1      # anti-diagonal neighbours touch too
    assert _touching_pairs(np.array([[0, 0, 5], [6, 0, 0]])) == 0  # two pixels apart: no contact


def test_cells_touch_so_connected_components_merge_them():
    touching, merged, total = 0, 0, 0
    for i in range(8):
        s = generate("cells", i, size=96)
        touching += _touching_pairs(s.instances)
        n_inst = int(s.instances.max())
        n_cc = ndimage.label(s.mask)[1]
        merged += n_inst - n_cc
        total += n_inst
    assert touching >= 2 * 8, touching          # clusters, not isolated blobs
    assert merged >= 0.2 * total, (merged, total)  # labelling the true mask already merges >= 20 % of the nuclei


def test_cells_are_brighter_than_background_and_illumination_is_uneven():
    s = generate("cells", 0, size=128)
    grey = s.image.astype(float).mean(axis=-1)
    assert grey[s.mask == 1].mean() > 2 * grey[s.mask == 0].mean()
    # the same nuclei under flat light (the illumination knob draws no random numbers, so only the light changes):
    # the brightness ratio uneven/flat differs between image quarters, i.e. the light is a spatial field
    flat = generate("cells", 0, size=128, illumination=0.0).image.astype(float).mean(axis=-1)
    fg = s.mask == 1
    ratios = []
    for rows in (slice(0, 64), slice(64, 128)):
        for cols in (slice(0, 64), slice(64, 128)):
            sel = fg[rows, cols]
            ratios.append(grey[rows, cols][sel].mean() / flat[rows, cols][sel].mean())
    assert max(ratios) - min(ratios) > 0.1, ratios
    assert max(ratios) <= 1.02, ratios          # light only dims, never brightens


def test_aerial_foreground_fraction_is_in_the_documented_band():
    # datasets/aerial/README.md: buildings cover 3-6 % of a split's pixels
    data = load_arrays("aerial", "train", count=48, size=128)
    fraction = data["masks"].mean()
    assert 0.03 <= fraction <= 0.06, fraction


def test_shapes_objects_are_large_and_few_and_multiscale_adds_small_ones():
    def areas(name):
        out = []
        for i in range(16):
            out += np.bincount(generate(name, i, size=96).instances.ravel())[1:].tolist()
        return np.array(out)

    plain, multi = areas("shapes"), areas("shapes-multiscale")
    assert len(plain) <= 4 * 16
    assert np.median(plain) > 0.02 * 96 * 96                  # a typical object covers > 2 % of the image
    assert np.percentile(multi, 10) < np.percentile(plain, 10) / 2


def test_every_shape_class_occurs():
    data = load_arrays("shapes", "train", count=16, size=64)
    assert set(np.unique(data["masks"]).tolist()) == {0, 1, 2, 3}


def test_load_arrays_stacks_generate_and_splits_are_disjoint():
    train = load_arrays("cells", "train", count=3, size=32)
    val = load_arrays("cells", "val", count=3, size=32)
    assert train["images"].shape == (3, 32, 32, 3) and train["images"].dtype == np.uint8
    assert train["masks"].dtype == np.int64 and train["instances"].dtype == np.int64
    np.testing.assert_array_equal(train["images"][1], generate("cells", 1, size=32).image)
    np.testing.assert_array_equal(val["images"][1], generate("cells", SPLIT_OFFSETS["val"] + 1, size=32).image)
    assert not any(np.array_equal(t, v) for t in train["images"] for v in val["images"])
    # the offsets leave room for the largest default split
    largest = max(c for splits in DEFAULT_COUNT.values() for counts in splits.values() for c in counts)
    offsets = sorted(SPLIT_OFFSETS.values())
    assert all(b - a > largest for a, b in itertools.pairwise(offsets))


def test_load_arrays_returns_copies_of_its_cache():
    first = load_arrays("shapes", "val", count=2, size=32)
    first["images"][:] = 0
    second = load_arrays("shapes", "val", count=2, size=32)
    assert second["images"].any()


def test_street_arrays_include_panoptic():
    data = load_arrays("street", "val", count=2, size=32)
    assert data["panoptic"].shape == (2, 32, 32, 2) and data["panoptic"].dtype == np.int64
    np.testing.assert_array_equal(data["panoptic"][..., 0], data["masks"])


def test_defaults_follow_the_mode(monkeypatch):
    monkeypatch.setenv("SEGCOURSE_MODE", "smoke")
    smoke = default_size("cells"), default_count("cells", "train")
    monkeypatch.setenv("SEGCOURSE_MODE", "quick")
    quick = default_size("cells"), default_count("cells", "train")
    assert smoke[0] < quick[0] and smoke[1] < quick[1]
    monkeypatch.setenv("SEGCOURSE_MODE", "smoke")
    assert load_arrays("cells", "val")["images"].shape[:3] == (default_count("cells", "val"), smoke[0], smoke[0])


@pytest.mark.parametrize("call, error, words", [
    (lambda: generate("cats", 0), ValueError, "unknown synthetic dataset"),
    (lambda: generate("cells", -1), ValueError, "index"),
    (lambda: generate("cells", 0, size=8), ValueError, "at least 16"),
    (lambda: generate("cells", 0, size="big"), TypeError, "size"),
    (lambda: generate("cells", 0, seed=1.5), TypeError, "seed"),
    (lambda: generate("cells", 0, size=32, colour="red"), ValueError, "unknown knob"),
    (lambda: load_arrays("cells", "holdout"), ValueError, "split"),
    (lambda: load_arrays("cells", count=0), ValueError, "count"),
])
def test_bad_arguments_raise_clear_errors(call, error, words):
    with pytest.raises(error, match=words):
        call()


def test_knobs_change_the_sample():
    few = generate("shapes", 0, size=64, objects=(1, 1))
    assert int(few.instances.max()) <= 1
    dense = generate("cells", 0, size=96, coverage=(0.5, 0.5))
    sparse = generate("cells", 0, size=96, coverage=(0.05, 0.05))
    assert dense.mask.mean() > sparse.mask.mean()


def test_street_panoptic_layout_is_what_torchmetrics_panoptic_quality_expects():
    import torch
    from torchmetrics.detection import PanopticQuality

    info = get_info("street")
    s = generate("street", 2, size=64)
    target = torch.from_numpy(s.panoptic)[None]                     # (1, H, W, 2): (category, instance)
    pq = PanopticQuality(things=set(info.things), stuffs=set(info.stuff))
    assert float(pq(target, target)) == pytest.approx(1.0)
    # dropping the instance ids of the things merges all cars into one segment: PQ falls below 1
    merged = target.clone()
    merged[..., 1] = torch.where(merged[..., 1] > 0, 1, 0)
    assert int(s.instances.max()) >= 2
    pq.reset()
    assert float(pq(merged, target)) < 1.0
