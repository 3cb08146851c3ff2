"""COCO RLE / polygons written by hand, cross-checked against pycocotools (a test-only dependency)."""

from __future__ import annotations

import numpy as np
import pycocotools.mask as mask_api  # a pinned test dependency: a broken install must fail, not skip
import pytest

from segcourse.data.coco import (
    annotation_to_mask,
    coco_to_semantic,
    compress_counts,
    decompress_counts,
    mask_to_polygons,
    mask_to_rle,
    polygons_to_mask,
    rle_area,
    rle_decode,
    rle_encode,
    rle_to_bbox,
    rle_to_mask,
)


def _masks():
    rng = np.random.default_rng(0)
    yield "empty", np.zeros((7, 5), np.uint8)
    yield "full", np.ones((4, 6), np.uint8)
    yield "first pixel set", np.eye(5, dtype=np.uint8)
    yield "one pixel", np.pad(np.ones((1, 1), np.uint8), ((3, 2), (1, 4)))
    yield "noise 10%", (rng.random((31, 17)) < 0.1).astype(np.uint8)
    yield "noise 50%", (rng.random((40, 64)) < 0.5).astype(np.uint8)
    yy, xx = np.mgrid[:120, :90]
    yield "disc (long runs)", (((yy - 60) ** 2 + (xx - 40) ** 2) < 35 ** 2).astype(np.uint8)
    yield "single row", (rng.random((1, 50)) < 0.5).astype(np.uint8)


MASKS = list(_masks())


@pytest.mark.parametrize("mask, counts", [
    # column-major: 0 1 0 | 1 1 0 -> a 0-run of 1, a 1-run of 1, 0-run 1, 1-run 2, 0-run 1
    (np.array([[0, 1], [1, 1], [0, 0]]), [1, 1, 1, 2, 1]),
    # first pixel is 1 -> the counts start with a 0-run of length 0
    (np.array([[1, 0], [1, 0]]), [0, 2, 2]),
    (np.zeros((2, 3)), [6]),
    (np.ones((2, 3), bool), [0, 6]),
])
def test_rle_encode_hand_cases(mask, counts):
    assert rle_encode(mask) == counts
    assert np.array_equal(rle_decode(counts, mask.shape), mask.astype(np.uint8))


@pytest.mark.parametrize("name, mask", MASKS, ids=[n for n, _ in MASKS])
def test_compressed_rle_equals_pycocotools(name, mask):
    ref = mask_api.encode(np.asfortranarray(mask[:, :, None]))[0]
    ours = mask_to_rle(mask)
    assert ours["size"] == list(ref["size"])
    assert ours["counts"] == ref["counts"].decode("ascii")
    assert np.array_equal(rle_to_mask(ref), mask)                          # our decoder reads theirs
    assert np.array_equal(mask_api.decode(dict(ours, counts=ours["counts"].encode())), mask)  # theirs reads ours
    assert rle_area(ours) == int(mask_api.area(ref)) == int(mask.sum())
    np.testing.assert_allclose(rle_to_bbox(ours), mask_api.toBbox(ref))


@pytest.mark.parametrize("name, mask", MASKS, ids=[n for n, _ in MASKS])
def test_uncompressed_rle_equals_pycocotools(name, mask):
    ours = mask_to_rle(mask, compressed=False)
    # pycocotools turns uncompressed counts into its compressed form; both must decode to the mask
    ref = mask_api.frPyObjects(ours, *ours["size"])
    assert ref["counts"].decode("ascii") == compress_counts(ours["counts"])
    assert np.array_equal(mask_api.decode(ref), mask)
    assert sum(ours["counts"]) == mask.size


def test_compress_roundtrip_large_and_negative_differences():
    # differences x_i - x_{i-2} can be negative and span several 5-bit groups
    counts = [0, 100000, 3, 1, 70000, 2, 5, 31, 32, 15, 16, 1]
    assert decompress_counts(compress_counts(counts)) == counts
    assert decompress_counts(compress_counts(counts).encode()) == counts


@pytest.mark.parametrize("bad, message", [("0p", "not a COCO RLE character"), ("P", "ends in the middle")])
def test_decompress_rejects_garbage(bad, message):
    with pytest.raises(ValueError, match=message):
        decompress_counts(bad)


def test_rle_errors():
    with pytest.raises(ValueError, match="sum to 5"):
        rle_decode([2, 3], (2, 3))
    with pytest.raises(ValueError, match="binary"):
        rle_encode(np.array([[0, 2]]))
    with pytest.raises(ValueError, match="2-D"):
        rle_encode(np.zeros((2, 2, 2)))
    with pytest.raises(ValueError, match="'size' and 'counts'"):
        rle_to_mask([1, 2, 3])


def test_polygons_agree_with_pycocotools_up_to_the_outline():
    from scipy.ndimage import binary_dilation, binary_erosion

    h, w = 60, 80
    polys = [[10.0, 5.0, 70.0, 12.0, 55.0, 50.0, 8.0, 40.0], [72.0, 45.0, 78.0, 45.0, 78.0, 58.0]]
    ours = polygons_to_mask(polys, h, w).astype(bool)
    ref = mask_api.decode(mask_api.merge(mask_api.frPyObjects(polys, h, w))).astype(bool)
    # pycocotools walks the edges of a 5x upsampled polygon, Pillow tests pixel centres (outline
    # included): on steep edges they disagree by up to two pixels, never deeper inside or out
    band = binary_dilation(ours, iterations=2) & ~binary_erosion(ours, iterations=2)
    assert not ((ours ^ ref) & ~band).any()
    assert (ours ^ ref).sum() < 0.1 * ref.sum()
    iou = (ours & ref).sum() / (ours | ref).sum()
    assert iou > 0.9


def test_polygons_roundtrip_through_mask_to_polygons():
    mask = np.zeros((30, 40), np.uint8)
    mask[5:15, 8:30] = 1
    mask[20:27, 3:9] = 1
    polys = mask_to_polygons(mask)
    assert len(polys) == 2
    assert np.array_equal(polygons_to_mask(polys, 30, 40), mask)            # outlines through pixel centres
    assert all(len(p) == 8 for p in polys)                                  # a rectangle needs 4 vertices


def test_annotation_to_mask_dispatches_on_format():
    mask = np.zeros((10, 12), np.uint8)
    mask[2:6, 3:9] = 1
    poly = {"id": 1, "segmentation": [[3, 2, 8, 2, 8, 5, 3, 5]]}
    rle = {"id": 2, "segmentation": mask_to_rle(mask)}
    raw = {"id": 3, "segmentation": mask_to_rle(mask, compressed=False)}
    for ann in (poly, rle, raw):
        assert np.array_equal(annotation_to_mask(ann, 10, 12), mask)
    with pytest.raises(ValueError, match="RLE size"):
        annotation_to_mask(rle, 12, 10)
    with pytest.raises(ValueError, match="odd number|at least 3"):
        annotation_to_mask({"segmentation": [[1, 2, 3]]}, 10, 12)


def test_coco_to_semantic_small_on_top_and_crowd_ignored():
    big = np.zeros((20, 20), np.uint8)
    big[2:18, 2:18] = 1
    small = np.zeros((20, 20), np.uint8)
    small[8:11, 8:11] = 1
    crowd = np.zeros((20, 20), np.uint8)
    crowd[0:2, 0:5] = 1
    coco = {"images": [{"id": 4, "height": 20, "width": 20}], "categories": [],
            "annotations": [
                {"id": 1, "image_id": 4, "category_id": 9, "segmentation": mask_to_rle(small), "iscrowd": 0},
                {"id": 2, "image_id": 4, "category_id": 3, "segmentation": mask_to_rle(big), "iscrowd": 0},
                {"id": 3, "image_id": 4, "category_id": 3, "segmentation": mask_to_rle(crowd, compressed=False),
                 "iscrowd": 1}]}
    sem = coco_to_semantic(coco, 4, {3: 1, 9: 2}, crowd_value=255)
    assert sem[9, 9] == 2 and sem[3, 3] == 1 and sem[0, 0] == 255 and sem[19, 19] == 0
    with pytest.raises(ValueError, match="image_id 5"):
        coco_to_semantic(coco, 5)
