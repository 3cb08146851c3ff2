"""A torchvision Mask R-CNN (tiny backbone, CPU) trains through ``fit`` with ``DetectionTask``."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from segcourse import seed_everything
from segcourse.train import DetectionTask, detection_collate, fit, load_checkpoint, register_model
from segcourse.train.amp import Precision
from segcourse.train.distributed import DistInfo


class _Boxes(Dataset):
    """Images with one or two filled rectangles; each rectangle is an instance (box + mask + label)."""

    def __init__(self, n: int = 4, size: int = 48):
        g = torch.Generator().manual_seed(0)
        self.items = []
        for i in range(n):
            image = torch.rand(3, size, size, generator=g) * 0.2
            boxes, masks, labels = [], [], []
            for k in range(1 + i % 2):
                x1, y1 = 4 + 20 * k, 6 + 3 * i
                x2, y2 = x1 + 16, y1 + 14
                mask = torch.zeros(size, size, dtype=torch.uint8)
                mask[y1:y2, x1:x2] = 1
                image[:, y1:y2, x1:x2] += 0.7
                boxes.append([x1, y1, x2, y2])
                masks.append(mask)
                labels.append(1 + k)
            self.items.append((image, {"boxes": torch.tensor(boxes, dtype=torch.float32),
                                       "labels": torch.tensor(labels), "masks": torch.stack(masks)}))

    def __len__(self):
        return len(self.items)

    def __getitem__(self, i):
        return self.items[i]


def tiny_mask_rcnn(num_classes: int = 3) -> nn.Module:
    """torchvision's MaskRCNN on a two-convolution backbone (one feature map, stride 4)."""
    from torchvision.models.detection import MaskRCNN
    from torchvision.models.detection.anchor_utils import AnchorGenerator
    from torchvision.models.detection.faster_rcnn import FastRCNNPredictor, TwoMLPHead
    from torchvision.models.detection.mask_rcnn import MaskRCNNHeads, MaskRCNNPredictor
    from torchvision.ops import MultiScaleRoIAlign

    backbone = nn.Sequential(nn.Conv2d(3, 16, 3, stride=2, padding=1), nn.BatchNorm2d(16), nn.ReLU(),
                             nn.Conv2d(16, 16, 3, stride=2, padding=1), nn.ReLU())
    backbone.out_channels = 16
    return MaskRCNN(
        backbone, num_classes=None, min_size=48, max_size=48,
        rpn_anchor_generator=AnchorGenerator(sizes=((8, 16, 32),), aspect_ratios=((0.5, 1.0, 2.0),)),
        box_roi_pool=MultiScaleRoIAlign(["0"], output_size=7, sampling_ratio=2),
        mask_roi_pool=MultiScaleRoIAlign(["0"], output_size=14, sampling_ratio=2),
        box_head=TwoMLPHead(16 * 7 * 7, 64), box_predictor=FastRCNNPredictor(64, num_classes),
        mask_head=MaskRCNNHeads(16, (16, 16), 1), mask_predictor=MaskRCNNPredictor(16, 16, num_classes),
        box_batch_size_per_image=32, rpn_batch_size_per_image=32,
        rpn_pre_nms_top_n_train=100, rpn_post_nms_top_n_train=50,
        rpn_pre_nms_top_n_test=100, rpn_post_nms_top_n_test=50,
    )


@pytest.fixture
def loaders():
    data = _Boxes()
    return (DataLoader(data, batch_size=2, shuffle=True, collate_fn=detection_collate),
            DataLoader(data, batch_size=2, collate_fn=detection_collate))


def test_mask_rcnn_trains_through_fit_and_records_each_loss(loaders, tmp_path):
    train, val = loaders
    seed_everything(0)
    model = tiny_mask_rcnn()
    calls = []

    def count_detections(model, loader, device):
        assert not model.training  # metric_fn sees the model in eval mode: predictions, not losses
        images, _ = next(iter(loader))
        out = model([img.to(device) for img in images])
        calls.append(len(out))
        return {"detections": sum(len(o["boxes"]) for o in out) / len(out)}

    before = {k: v.clone() for k, v in model.state_dict().items()}
    bn_before = model.backbone[1].running_mean.clone()
    history = fit(model, train, val, loss_fn=None, task=DetectionTask(metric_fn=count_detections), epochs=1,
                  lr=1e-3, clip_grad_norm=10.0, checkpoint=tmp_path / "det.safetensors", progress=False,
                  verbose=False, config={"model": "tiny-mask-rcnn"})
    record = history.records[0]
    for key in ("train_loss", "train_loss_classifier", "train_loss_box_reg", "train_loss_mask",
                "train_loss_objectness", "train_loss_rpn_box_reg", "val_loss", "val_loss_mask", "val_detections"):
        assert key in record, key
    parts = [v for k, v in record.items() if k.startswith("val_loss_")]
    assert record["val_loss"] == pytest.approx(sum(parts), rel=1e-5)  # the total is the sum of the parts
    assert history.monitor == "val_loss" and calls == [2]
    assert any(not torch.equal(before[k], v) for k, v in model.state_dict().items() if v.is_floating_point())
    # the checkpoint holds the trained detector and reloads into a fresh one
    register_model("tiny-mask-rcnn", tiny_mask_rcnn)
    loaded, config = load_checkpoint(tmp_path / "det.safetensors")
    assert config["monitor"] == "val_loss"
    torch.testing.assert_close(loaded.backbone[0].weight, model.backbone[0].weight)
    # validation ran the model in train mode for its losses, but did not touch BatchNorm statistics:
    # only the 2 training batches moved them, which we check by re-running validation alone
    stats = model.backbone[1].running_mean.clone()
    DetectionTask().evaluate(model, val, device=torch.device("cpu"), precision=Precision(), progress=False,
                             dist_info=DistInfo())
    assert torch.equal(model.backbone[1].running_mean, stats)
    assert not torch.equal(stats, bn_before)


def test_detection_task_explains_a_wrong_loader():
    task = DetectionTask()
    with pytest.raises(TypeError, match="detection_collate"):
        task.to_device(torch.zeros(3), torch.device("cpu"), None)
    with pytest.raises(TypeError, match="'boxes'"):
        task.to_device(([torch.zeros(3, 4, 4)], [torch.zeros(4)]), torch.device("cpu"), None)


def test_an_explicit_monitor_is_honoured_or_refused(loaders):
    # issue 24: an explicit monitor="val_miou" was silently replaced by the detector's val_loss; now a key
    # the task records is used as given, and one it never records stops the run after its first epoch
    train, val = loaders
    seed_everything(0)
    with pytest.raises(ValueError, match=r"monitor='val_miou' is not among the recorded keys of DetectionTask.*"
                                         r"val_loss_mask"):
        fit(tiny_mask_rcnn(), train, val, task=DetectionTask(), monitor="val_miou", epochs=1, progress=False,
            verbose=False)
    history = fit(tiny_mask_rcnn(), train, val, task=DetectionTask(), monitor="val_loss_mask", epochs=1,
                  progress=False, verbose=False)
    assert history.monitor == "val_loss_mask" and history.mode == "min"
    history = fit(tiny_mask_rcnn(), train, val, task=DetectionTask(), epochs=1, progress=False, verbose=False)
    assert history.monitor == "val_loss"  # unset: the task's own


def test_detection_validation_iterates_the_loader_once(loaders):
    # tqdm(loader) calls iter() in its constructor and the for loop again: a DataLoader then starts twice
    _, val = loaders
    passes = []

    class Counting:
        def __len__(self):
            return len(val)

        def __iter__(self):
            passes.append(1)
            return iter(val)

    task = DetectionTask()
    task.evaluate(tiny_mask_rcnn(), Counting(), device=torch.device("cpu"), precision=Precision(),
                  progress=True, dist_info=DistInfo())
    assert len(passes) == 1


def test_detection_task_takes_no_segmentation_options(loaders):
    train, val = loaders
    with pytest.raises(TypeError, match="loss_fn belong to the default segmentation task"):
        fit(tiny_mask_rcnn(), train, val, task=DetectionTask(), loss_fn=nn.CrossEntropyLoss(), epochs=1)
