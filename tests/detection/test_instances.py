"""The instance dataset (torchvision's detection format) and the box/mask-synchronised augmentation."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torchvision import tv_tensors
from torchvision.ops import masks_to_boxes
from torchvision.transforms import v2

from segcourse.data.instances import InstanceAugment, InstanceFolder, instance_dataset, target_from_instances

EDGE = torch.tensor([0.0, 0.0, 1.0, 1.0])   # masks_to_boxes gives the last pixel; the targets' x2, y2 are one past it


@pytest.mark.parametrize("name", ["cells", "shapes"])
def test_targets_match_the_coco_json(name, tmp_path):
    from segcourse.data import ensure_dataset

    root = ensure_dataset(name, "val", count=3, size=64, root=tmp_path)
    ds = InstanceFolder(root)
    coco = json.loads((root / "annotations.json").read_text())
    for i in range(len(ds)):
        image, t = ds[i]
        assert image.shape == (3, 64, 64) and image.dtype == torch.float32 and 0 <= image.min() <= image.max() <= 1
        assert t["boxes"].dtype == torch.float32 and t["labels"].dtype == torch.int64 and t["masks"].dtype == torch.uint8
        torch.testing.assert_close(t["boxes"], masks_to_boxes(t["masks"]).float() + EDGE)
        file_name = f"{ds.stems[i]}.png"
        img_id = next(im["id"] for im in coco["images"] if im["file_name"].endswith(file_name))
        anns = [a for a in coco["annotations"] if a["image_id"] == img_id]
        # every COCO object appears (none is a one-pixel sliver in these sets), with the same class and area
        assert sorted(a["category_id"] for a in anns) == sorted(t["labels"].tolist())
        assert sorted(a["area"] for a in anns) == sorted(t["area"].tolist())
        # COCO's bbox is [x, y, w, h] with w = last column - first column + 1 = x2 - x1 of continuous edges
        xywh = sorted(tuple(a["bbox"]) for a in anns)
        mine = sorted((b[0], b[1], b[2] - b[0], b[3] - b[1]) for b in t["boxes"].tolist())
        assert xywh == mine


def test_empty_image_gives_empty_targets_of_the_right_shapes():
    t = target_from_instances(np.zeros((20, 30), np.uint16))
    assert t["boxes"].shape == (0, 4) and t["boxes"].dtype == torch.float32
    assert t["labels"].shape == (0,) and t["labels"].dtype == torch.int64
    assert t["masks"].shape == (0, 20, 30) and t["masks"].dtype == torch.uint8
    image, out = InstanceAugment(degrees=10)(torch.rand(3, 20, 30), t)
    assert out["boxes"].shape == (0, 4) and out["masks"].shape == (0, 20, 30) and image.shape == (3, 20, 30)


def test_thin_objects_have_positive_boxes_and_small_ones_are_dropped():
    inst = np.zeros((10, 10), np.int64)
    inst[2:6, 3] = 1          # one pixel wide: continuous edges give width 1
    inst[5:9, 5:9] = 2
    inst[0, 9] = 3            # a single pixel
    t = target_from_instances(inst)
    assert t["boxes"].tolist() == [[3.0, 2.0, 4.0, 6.0], [5.0, 5.0, 9.0, 9.0], [9.0, 0.0, 10.0, 1.0]]
    assert target_from_instances(inst, min_pixels=2)["boxes"].tolist() == [[3.0, 2.0, 4.0, 6.0], [5.0, 5.0, 9.0, 9.0]]
    assert target_from_instances(inst, min_pixels=20)["boxes"].shape == (0, 4)


def test_labels_come_from_the_class_map():
    inst = np.zeros((8, 8), np.int64)
    classes = np.zeros((8, 8), np.int64)
    inst[1:4, 1:4], classes[1:4, 1:4] = 1, 3
    inst[5:8, 4:8], classes[5:8, 4:8] = 2, 2
    assert target_from_instances(inst, classes)["labels"].tolist() == [3, 2]


def test_flips_keep_boxes_and_masks_in_sync_and_agree_with_v2_boxes():
    ds = instance_dataset("cells", "val", count=2, size=64)
    image, t = ds[0]
    aug = InstanceAugment(hflip=1.0, vflip=1.0)
    img2, t2 = aug(image, t)
    torch.testing.assert_close(img2, image.flip(-1).flip(-2))
    torch.testing.assert_close(t2["masks"], t["masks"].flip(-1).flip(-2))
    torch.testing.assert_close(t2["boxes"], masks_to_boxes(t2["masks"]).float() + EDGE)
    # v2's own box transform (continuous edges, the targets' convention) gives the same boxes
    flipped = v2.Compose([v2.RandomHorizontalFlip(1.0), v2.RandomVerticalFlip(1.0)])(
        tv_tensors.BoundingBoxes(t["boxes"], format="XYXY", canvas_size=(64, 64)))
    torch.testing.assert_close(torch.as_tensor(flipped), t2["boxes"])
    assert t2["labels"].tolist() == t["labels"].tolist()


def test_instances_that_leave_the_image_are_dropped():
    inst = np.zeros((40, 40), np.int64)
    inst[2:10, 2:10] = 1        # near the left edge
    inst[20:30, 28:38] = 2      # near the right edge
    t = target_from_instances(inst)
    image = torch.rand(3, 40, 40)
    torch.manual_seed(0)
    for _ in range(20):
        _, t2 = InstanceAugment(hflip=0.5, vflip=0.5, degrees=30, scale=(0.7, 1.3), translate=(0.4, 0.4))(image, t)
        n = len(t2["labels"])
        assert t2["boxes"].shape == (n, 4) and t2["masks"].shape == (n, 40, 40) and t2["area"].shape == (n,)
        if n:
            torch.testing.assert_close(t2["boxes"], masks_to_boxes(t2["masks"]).float() + EDGE)
            assert (t2["masks"].flatten(1).sum(1) >= 4).all()
    torch.manual_seed(3)
    aug = InstanceAugment(hflip=0, vflip=0, translate=(0.6, 0.0))
    counts = {len(aug(image, t)[1]["labels"]) for _ in range(30)}
    assert min(counts) < 2, "a large horizontal shift should push one square out of the image"


def test_folder_errors(tmp_path):
    with pytest.raises(ValueError, match="instances/"):
        InstanceFolder(tmp_path)


@pytest.mark.parametrize("name", ["cells", "shapes"])
def test_coco_instances_reads_back_what_build_writes(name, tmp_path):
    from segcourse.data import ensure_dataset
    from segcourse.data.instances import CocoInstances

    root = ensure_dataset(name, "val", count=3, size=64, root=tmp_path)
    folder, coco = InstanceFolder(root), CocoInstances(root / "annotations.json")
    assert len(coco) == len(folder)
    raw = json.loads((root / "annotations.json").read_text())
    for i in range(len(coco)):
        (img_a, a), (img_b, b) = coco[i], folder[i]
        torch.testing.assert_close(img_a, img_b)
        key = lambda t: sorted(zip(t["boxes"].tolist(), t["labels"].tolist(), t["area"].tolist()))
        assert key(a) == key(b)
        # the COCO bbox [x, y, w, h] is [x1, y1, x2 - x1, y2 - y1] of the continuous-edge boxes
        anns = [x for x in raw["annotations"] if x["image_id"] == a["image_id"]]
        xywh = sorted(tuple(x["bbox"]) for x in anns)
        assert xywh == sorted((x1, y1, x2 - x1, y2 - y1) for x1, y1, x2, y2 in a["boxes"].tolist())


def test_coco_instances_errors_and_empty_images(tmp_path):
    from PIL import Image

    from segcourse.data.instances import CocoInstances

    with pytest.raises(ValueError, match="no COCO annotation file"):
        CocoInstances(tmp_path / "missing.json")
    (tmp_path / "images").mkdir()
    Image.fromarray(np.zeros((5, 6, 3), np.uint8)).save(tmp_path / "images" / "a.png")
    (tmp_path / "c.json").write_text(json.dumps({"images": [{"id": 7, "file_name": "a.png", "height": 5, "width": 6}],
                                                 "annotations": [], "categories": []}))
    image, t = CocoInstances(tmp_path / "c.json")[0]
    assert image.shape == (3, 5, 6) and t["boxes"].shape == (0, 4) and t["masks"].shape == (0, 5, 6) and t["image_id"] == 7
    (tmp_path / "d.json").write_text(json.dumps({"images": [], "annotations": [{"id": 1, "image_id": 3}]}))
    with pytest.raises(ValueError, match="image 3"):
        CocoInstances(tmp_path / "d.json")
