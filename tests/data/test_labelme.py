"""Labelme JSON -> masks: shape rasterisation, class mapping, overlap order, errors, the shipped sample."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from segcourse.constants import IGNORE_INDEX
from segcourse.data.labelme import (
    class_map_from_names,
    convert_labelme_folder,
    labelme_image,
    labelme_to_instances,
    labelme_to_mask,
    load_labelme,
    read_labels_txt,
    shape_to_mask,
)

SAMPLE = Path(__file__).resolve().parents[2] / "datasets" / "samples" / "labelme"
CLASSES = ["_background_", "a", "b"]


def _doc(*shapes, h=20, w=30):
    return {"shapes": list(shapes), "imageHeight": h, "imageWidth": w, "imagePath": None, "imageData": None}


def _shape(label, points, kind="polygon", group_id=None):
    return {"label": label, "points": points, "shape_type": kind, "group_id": group_id, "flags": {}}


# ---- single shapes, expected areas derived by hand --------------------------------------------
def test_rectangle_covers_both_corners_inclusive():
    # corners (2, 3) and (7, 5): columns 2..7 (6) x rows 3..5 (3) = 18 pixels, outline included
    m = shape_to_mask(_shape("a", [[7, 5], [2, 3]], "rectangle"), 10, 12)
    assert m.dtype == bool and m.shape == (10, 12)
    assert m.sum() == 18
    rows, cols = np.nonzero(m)
    assert (rows.min(), rows.max(), cols.min(), cols.max()) == (3, 5, 2, 7)   # x is the column, y the row


def test_polygon_axis_aligned_square_matches_rectangle():
    square = [[1, 1], [5, 1], [5, 4], [1, 4]]                  # columns 1..5, rows 1..4 -> 5 x 4 = 20
    m = shape_to_mask(_shape("a", square), 8, 8)
    assert m.sum() == 20
    assert np.array_equal(m, shape_to_mask(_shape("a", [[1, 1], [5, 4]], "rectangle"), 8, 8))


def test_circle_area_close_to_pi_r_squared():
    # centre (20, 20), a point at distance 10 -> radius 10, area ~ pi * 100 = 314 (+ the outline ring)
    m = shape_to_mask(_shape("a", [[20, 20], [26, 28]], "circle"), 41, 41)
    assert abs(int(m.sum()) - np.pi * 100) < 2 * np.pi * 10            # within one perimeter of pixels
    assert m[20, 20] and m[20, 30] and not m[20, 32] and not m[0, 0]


def test_polygon_agrees_with_skimage_inside():
    from skimage.draw import polygon as sk_polygon

    pts = np.array([[3.0, 2.0], [25.0, 4.0], [20.0, 17.0], [6.0, 14.0]])
    m = shape_to_mask(_shape("a", pts.tolist()), 20, 30)
    ref = np.zeros((20, 30), bool)
    rr, cc = sk_polygon(pts[:, 1], pts[:, 0], (20, 30))
    ref[rr, cc] = True
    assert (ref & ~m).sum() == 0                                # every interior pixel is filled
    from scipy.ndimage import binary_dilation
    assert (m & ~binary_dilation(ref)).sum() == 0               # extra pixels only on the outline


@pytest.mark.parametrize("kind, points, message", [
    ("polygon", [[0, 0], [1, 1]], "at least 3"),
    ("rectangle", [[0, 0]], "2 opposite corners"),
    ("circle", [[0, 0], [1, 1], [2, 2]], "centre"),
    ("hexagon", [[0, 0]], "expected one of"),
])
def test_malformed_shapes_raise(kind, points, message):
    with pytest.raises(ValueError, match=message):
        shape_to_mask(_shape("a", points, kind), 5, 5)


# ---- class mapping ------------------------------------------------------------------------------
def test_labels_map_through_class_list_and_dict():
    doc = _doc(_shape("b", [[0, 0], [4, 4]], "rectangle"))
    assert labelme_to_mask(doc, CLASSES)[2, 2] == 2
    assert labelme_to_mask(doc, {"_background_": 0, "b": 7})[2, 2] == 7
    assert labelme_to_mask(doc, {"b": IGNORE_INDEX})[2, 2] == IGNORE_INDEX


def test_unknown_label_names_file_and_label(tmp_path):
    path = tmp_path / "img_7.json"
    path.write_text(json.dumps(_doc(_shape("a", [[0, 0], [2, 2]], "rectangle"),
                                    _shape("zebra", [[0, 0], [2, 2]], "rectangle"))))
    with pytest.raises(ValueError, match=r"img_7\.json.*'zebra'"):
        labelme_to_mask(path, CLASSES)


@pytest.mark.parametrize("bad, error", [("ab", TypeError), (["a", "a"], ValueError), ({"a": 300}, ValueError)])
def test_bad_class_lists(bad, error):
    with pytest.raises(error):
        class_map_from_names(bad)


def test_labels_txt_ignore_first(tmp_path):
    path = tmp_path / "labels.txt"
    path.write_text("__ignore__\n_background_\ncar\n\nperson\n")
    assert read_labels_txt(path) == {"__ignore__": IGNORE_INDEX, "_background_": 0, "car": 1, "person": 2}


# ---- overlap order ------------------------------------------------------------------------------
def _overlapping():
    big = _shape("a", [[0, 0], [19, 19]], "rectangle")          # 400 px, drawn first
    small = _shape("b", [[5, 5], [9, 9]], "rectangle")          # 25 px inside it
    return big, small


@pytest.mark.parametrize("order, overlap, centre", [
    ("big-first", "later", 2), ("big-first", "earlier", 1), ("big-first", "smaller", 2),
    ("small-first", "later", 1), ("small-first", "earlier", 2), ("small-first", "smaller", 2),
])
def test_overlap_modes(order, overlap, centre):
    big, small = _overlapping()
    shapes = (big, small) if order == "big-first" else (small, big)
    mask = labelme_to_mask(_doc(*shapes, h=20, w=20), CLASSES, overlap=overlap)
    assert mask[7, 7] == centre
    assert mask[15, 15] == 1
    assert (mask == 2).sum() == (25 if centre == 2 else 0)


def test_unknown_overlap_mode():
    with pytest.raises(ValueError, match="overlap"):
        labelme_to_mask(_doc(*_overlapping()), CLASSES, overlap="largest")


def test_group_id_joins_pieces_into_one_instance():
    left = _shape("a", [[0, 0], [3, 3]], "rectangle", group_id=1)
    right = _shape("a", [[10, 0], [13, 3]], "rectangle", group_id=1)
    other = _shape("b", [[20, 0], [23, 3]], "rectangle")
    inst, classes = labelme_to_instances(_doc(left, right, other), CLASSES)
    assert inst.dtype == np.int32
    assert inst[1, 1] == inst[1, 11] == 1 and inst[1, 21] == 2
    assert classes == {1: 1, 2: 2}


# ---- the shipped sample ------------------------------------------------------------------------
@pytest.mark.parametrize("stem", ["street_01", "street_02"])
def test_shipped_sample(stem):
    classes = read_labels_txt(SAMPLE / "labels.txt")
    data = load_labelme(SAMPLE / f"{stem}.json")
    mask = labelme_to_mask(data, classes)
    image = labelme_image(data)
    assert image.shape == (data["imageHeight"], data["imageWidth"], 3) and image.dtype == np.uint8
    assert mask.shape == image.shape[:2] and mask.dtype == np.uint8
    # every label drawn in the file appears in the mask (nothing fully covered in the sample)
    drawn = {classes[s["label"]] for s in data["shapes"]}
    assert drawn <= set(np.unique(mask).tolist())
    # the building rectangle's corner pixel is building where no later shape covers it
    (x0, y0), _ = data["shapes"][0]["points"]
    assert mask[int(y0), int(x0)] == classes[data["shapes"][0]["label"]]


def test_convert_folder_writes_paired_pngs(tmp_path):
    classes = read_labels_txt(SAMPLE / "labels.txt")
    palette = [(0, 0, 0), (128, 64, 128), (70, 70, 70), (107, 142, 35), (0, 0, 142), (220, 20, 60)]
    stems = convert_labelme_folder(SAMPLE, tmp_path / "out", classes, palette=palette)
    assert stems == ["street_01", "street_02"]
    for stem in stems:
        with Image.open(tmp_path / "out" / "masks" / f"{stem}.png") as mask, \
                Image.open(tmp_path / "out" / "images" / f"{stem}.png") as image:
            assert mask.mode == "P"                                        # an indexed PNG
            assert np.array_equal(np.asarray(mask), labelme_to_mask(SAMPLE / f"{stem}.json", classes))
            assert image.size == mask.size
    assert not list((tmp_path / "out").rglob("*.tmp"))


def test_image_size_mismatch_is_reported(tmp_path):
    Image.fromarray(np.zeros((5, 6, 3), np.uint8)).save(tmp_path / "x.png")
    doc = _doc(h=20, w=30)
    doc["imagePath"] = "x.png"
    path = tmp_path / "x.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(ValueError, match="5x6"):
        labelme_image(load_labelme(path))


def test_not_labelme(tmp_path):
    path = tmp_path / "y.json"
    path.write_text('{"foo": 1}')
    with pytest.raises(ValueError, match="missing key"):
        load_labelme(path)


def test_shipped_sample_occluded_car_is_one_instance():
    classes = read_labels_txt(SAMPLE / "labels.txt")
    data = load_labelme(SAMPLE / "street_02.json")
    cars = [s for s in data["shapes"] if s["label"] == "car"]
    assert len(cars) == 2 and cars[0]["group_id"] == cars[1]["group_id"] is not None   # two pieces, one group
    instances, inst_classes = labelme_to_instances(data, classes)
    assert len(data["shapes"]) == 6 and instances.max() == 5                           # 6 shapes, 5 objects
    car_ids = [i for i, c in inst_classes.items() if c == classes["car"]]
    assert len(car_ids) == 1
    from scipy import ndimage
    assert ndimage.label(instances == car_ids[0])[1] == 2                               # visible in two pieces


def test_the_image_is_turned_upright_by_its_exif_orientation_as_labelme_shows_it(tmp_path):
    """Labelme applies the EXIF orientation before showing a photo, so its annotations are in the upright frame."""
    from PIL import Image

    from segcourse.data.labelme import labelme_image

    stored = np.zeros((4, 6, 3), np.uint8)           # stored 4 rows x 6 columns ...
    stored[0, 0] = 255                               # a marker in the stored top-left corner
    exif = Image.Exif()
    exif[0x0112] = 6                                 # ... displayed rotated 90 degrees clockwise: 6 rows x 4 columns
    Image.fromarray(stored).save(tmp_path / "photo.jpg", exif=exif, quality=100)
    data = {"__file__": str(tmp_path / "photo.json"), "imagePath": "photo.jpg", "imageData": None,
            "imageHeight": 6, "imageWidth": 4, "shapes": []}
    upright = labelme_image(data)
    assert upright.shape == (6, 4, 3)
    assert upright[0, -1].mean() > 128                # the stored top-left is now the top-right corner
